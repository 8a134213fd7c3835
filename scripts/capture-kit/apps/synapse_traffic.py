#!/usr/bin/env python3
"""Seeds a Synapse homeserver and drives the labelled capture's traffic (stdlib only).

Two modes, both run by scripts/make-capture.sh synapse:

  seed --base http://127.0.0.1:8008 --secret SECRET --out seed.json
      Registers users with the shared secret (/_synapse/admin/v1/register), creates
      public and private rooms with aliases, joins members and posts messages. Runs over
      loopback inside the server namespace BEFORE tcpdump starts.

  run --base http://10.82.0.2:80 --seed seed.json --duration 600 --scan-ns sy-scan
      --labels captures/synapse.labels.json --work DIR
      Benign personas (Element-like clients: login, filter, long-poll /sync, reading
      rooms, posting, editing and redacting their own messages, creating and closing
      their own rooms), a polling integration, a NAT'ed office, late-comers, and the
      attacks: a curl --parallel burst, stuffing and brute force of
      POST /_matrix/client/v3/login from a python thread pool (hydra's http-post-form
      cannot send the nested JSON body), an ffuf scan, a /profile enumeration, admin-API
      calls from an ordinary user, and a distributed low-and-slow stuffing. Every client
      binds its own source address; times are measured with time.time() and written to
      the labels file relative to t0, the moment the first request was sent.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
import re
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kit  # noqa: E402  (scripts/capture-kit/kit.py)

SERVER_NAME = "chat.example"
HOST_HEADER = "chat.example"
CS = "/_matrix/client/v3"

UA_WEB = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
UA_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
UA_FF = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
UA_ANDROID = "Element/1.6.18 (Google Pixel 7; Android 14; UQ1A.240205.004; Flavour GooglePlay; MatrixAndroidSdk2 1.6.18)"
UA_IOS = "Element/1.11.12 (iPhone; iOS 17.5; Scale/3.00)"
UA_HUMAN = [UA_WEB, UA_MAC, UA_FF, UA_ANDROID, UA_IOS]


def enc(s):
    """Percent-encode a path segment like matrix-js-sdk does (encodeURIComponent)."""
    return urllib.parse.quote(s, safe="!'()*-._~")


def uid(name):
    return f"@{name}:{SERVER_NAME}"


# ---------------------------------------------------------------------------------------
# seed data: names, rooms, chat lines
# ---------------------------------------------------------------------------------------
FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "kevin", "laura", "mike", "nadia", "oscar", "peggy", "quentin", "rachel", "sam",
         "tina", "umar", "vera", "walter", "xena", "yusuf", "zoe", "aaron", "bianca",
         "chen", "diego", "elena", "farah", "george", "hana", "igor", "jonas", "kira",
         "liam", "maya", "noah", "olga", "pablo", "rosa", "stefan", "tomas", "ursula",
         "viktor", "wendy", "yara", "zane", "amir", "beatriz", "colin", "dmitri", "emma",
         "felix", "gita", "hugo", "ines", "jakob"]
HANDLES = ["m.rossi", "j.chen", "priya.n", "k.tanaka", "l.dubois", "a.novak", "s.kowalski",
           "r.silva", "t.nguyen", "h.mueller", "o.hansen", "e.garcia", "b.obrien",
           "f.moretti", "c.larsen", "d.petrov", "n.kaur", "y.sato", "g.rahman", "p.jansen"]
BOTS = ["ci-bot", "rss-bridge", "standup-bot"]
SURNAMES = ["Smith", "Jones", "Martin", "Lee", "Walker", "Young", "King", "Wright", "Lopez",
            "Hill", "Scott", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell",
            "Perez", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans"]
ROOMS = [
    ("general", "General", "Company-wide chatter"), ("random", "Random", "Anything goes"),
    ("announcements", "Announcements", "Read-only news from the team leads"),
    ("dev", "Dev", "Engineering day-to-day"), ("frontend", "Frontend", "React, CSS and friends"),
    ("backend", "Backend", "APIs, databases and queues"), ("ops", "Ops", "Infrastructure and deploys"),
    ("security", "Security", "Vulnerability reports and hardening"), ("design", "Design", "UI/UX reviews"),
    ("hiring", "Hiring", "Interview loops and candidates"), ("book-club", "Book club", "This month: Designing Data-Intensive Applications"),
    ("running", "Running", "Weekend long runs"), ("cooking", "Cooking", "Recipes and kitchen disasters"),
    ("music", "Music", "What are you listening to?"), ("movies", "Movies", "Film night planning"),
    ("gaming", "Gaming", "Friday game night"), ("photography", "Photography", "Share your shots"),
    ("travel", "Travel", "Trip reports and tips"), ("rust", "Rust", "Rustaceans welcome"),
    ("python", "Python", "Snakes and wheels"), ("golang", "Go", "Gophers"),
    ("javascript", "JavaScript", "The land of node_modules"), ("kubernetes", "Kubernetes", "Pods, charts and pain"),
    ("linux", "Linux", "Distros, kernels, dotfiles"), ("homelab", "Homelab", "Racks in the closet"),
    ("selfhosted", "Self-hosted", "Run it yourself"), ("matrix-dev", "Matrix dev", "Bridges, bots, SDKs"),
    ("element-web", "Element Web", "Client feedback"), ("bridges", "Bridges", "IRC, Slack and Telegram bridges"),
    ("rss-feeds", "RSS feeds", "Headlines from the bridge"), ("release-planning", "Release planning", "Next milestone"),
    ("incidents", "Incidents", "Active incidents and postmortems"), ("oncall", "On-call", "Handover notes"),
    ("standup", "Standup", "Daily async standup"), ("support", "Support", "Customer tickets"),
    ("sales", "Sales", "Pipeline and demos"), ("marketing", "Marketing", "Campaigns and copy"),
    ("finance", "Finance", "Expenses and budgets"), ("legal", "Legal", "Contracts and licences"),
    ("offtopic", "Off-topic", "Really anything"), ("memes", "Memes", "Keep it friendly"),
    ("pets", "Pets", "Cats, dogs, one iguana"), ("gardening", "Gardening", "Tomatoes and compost"),
    ("coffee", "Coffee", "Beans, grinders, pour-over"), ("board-games", "Board games", "Catan league"),
    ("chess", "Chess", "Daily puzzles"), ("cycling", "Cycling", "Commutes and gravel rides"),
    ("climbing", "Climbing", "Bouldering Thursdays"), ("hiking", "Hiking", "Trails nearby"),
    ("data-eng", "Data engineering", "Pipelines and warehouses"), ("ml", "Machine learning", "Models and papers"),
    ("mobile", "Mobile", "Android and iOS"), ("qa", "QA", "Test plans and flaky tests"),
    ("docs", "Docs", "Writing the manual"), ("accessibility", "Accessibility", "a11y reviews"),
    ("office-berlin", "Office Berlin", "Berlin office logistics"), ("office-lisbon", "Office Lisbon", "Lisbon office logistics"),
    ("remote", "Remote", "Remote workers' lounge"), ("welcome", "Welcome", "Say hi!"),
    ("feedback", "Feedback", "Ideas for the company"), ("events", "Events", "Meetups and conferences"),
    ("learning", "Learning", "Courses and talks"), ("housing", "Housing", "Flats and roommates"),
    ("buy-sell", "Buy & sell", "Second-hand market"),
]
LINES = [
    "morning all", "has anyone seen the latest build logs?", "lunch at 12:30?", "+1",
    "I'll take a look after standup", "can someone review my PR?", "thanks, that fixed it",
    "the staging deploy is green again", "does anyone have the link to the doc?",
    "meeting moved to 3pm", "I'm out tomorrow, back on Monday", "that's a great idea",
    "let me check and get back to you", "sounds good to me", "who's joining on Friday?",
    "new version is out, changelog in the thread", "I pushed a fix for the flaky test",
    "the coffee machine is broken again", "nice photo!", "haha", "brb", "agreed",
    "we should write this down somewhere", "I can pair on it this afternoon",
    "any recommendations?", "just finished the book, loved it", "the CI queue is long today",
    "heads up: maintenance window tonight 22:00-23:00", "welcome aboard!",
    "shared the slides in the drive", "ping me if you need anything", "on it",
    "the ticket is in the backlog now", "weather is great for a ride", "what time zone is that in?",
    "ok, merged", "I'll update the runbook", "happy Friday!", "that link 404s for me",
    "can we move this to a thread?", "done, please double check", "who owns this service?",
]
REPLIES = ["thanks!", "+1", "good point", "will do", "I agree", "not sure about that",
           "let's discuss in the sync", "fixed now", "looking into it", "nice"]


def password_for(rng, name):
    words = ["maple", "river", "copper", "falcon", "ginger", "harbor", "lantern", "meadow",
             "nickel", "orchid", "pepper", "quartz", "saffron", "timber", "velvet", "willow"]
    return f"{rng.choice(words).capitalize()}-{rng.choice(words)}-{rng.randint(10, 99)}{name[:2]}"


# ---------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------
STATE = {"t0": None, "end": None, "lock": threading.Lock(), "log": []}


def alive():
    return time.time() < STATE["end"]


def remaining():
    return STATE["end"] - time.time()


def nap(a, b, rng=random):
    """Sleep a random time, never past the end of the run; False once the run is over."""
    d = rng.uniform(a, b)
    d = min(d, max(0.0, remaining()))
    time.sleep(d)
    return alive()


def record(ip, method, path, status):
    with STATE["lock"]:
        if STATE["t0"] is None:
            STATE["t0"] = time.time()
        STATE["log"].append((time.time(), ip, method, path, status))


def mark_t0():
    with STATE["lock"]:
        if STATE["t0"] is None:
            STATE["t0"] = time.time()


class Client:
    """One keep-alive HTTP/1.1 connection from one source address, like a browser tab."""

    def __init__(self, base, ip=None, ua=UA_WEB, token=None, host_header=HOST_HEADER):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.ip, self.ua, self.token, self.host_header = ip, ua, token, host_header
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def req(self, method, path, body=None, auth=True, timeout=15.0, headers=None):
        h = {"User-Agent": self.ua, "Accept": "application/json"}
        if self.host_header:
            h["Host"] = self.host_header
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in range(2):
            try:
                if self.conn is None:
                    src = (self.ip, 0) if self.ip else None
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                                           source_address=src)
                else:
                    self.conn.timeout = timeout
                    if self.conn.sock is not None:
                        self.conn.sock.settimeout(timeout)
                mark_t0()
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                record(self.ip, method, path, r.status)
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                try:
                    js = json.loads(data) if data else {}
                except ValueError:
                    js = {}
                return r.status, js
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 1:
                    record(self.ip, method, path, None)
        return None, {}


# ---------------------------------------------------------------------------------------
# seeding (over loopback, before the capture)
# ---------------------------------------------------------------------------------------
def seed(args):
    rng = random.Random(20240917)
    c = Client(args.base, host_header=None, ua="synapse-seed/1.0")
    STATE["end"] = time.time() + 3600

    def register(name, password, display, admin=False):
        st, js = c.req("GET", "/_synapse/admin/v1/register", auth=False)
        nonce = js["nonce"]
        mac = hmac.new(args.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        st, js = c.req("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce, "username": name, "displayname": display, "password": password,
            "admin": admin, "mac": mac.hexdigest()}, auth=False)
        if st != 200:
            raise SystemExit(f"register {name}: {st} {js}")
        return js["access_token"]

    users = {}
    names = FIRST + HANDLES + BOTS
    for name in names:
        if "." in name:
            first, last = name.split(".")
            display = f"{first.upper()}. {last.capitalize()}"
        elif name in BOTS:
            display = name.replace("-", " ").title()
        else:
            display = f"{name.capitalize()} {rng.choice(SURNAMES)}"
        pw = password_for(rng, name)
        users[name] = {"user_id": uid(name), "password": pw, "display": display,
                       "token": register(name, pw, display)}
    admin_pw = "Adm1n-" + "".join(rng.choice("abcdefghjkmnpqrstuvwxyz23456789") for _ in range(14))
    register("admin", admin_pw, "Server Admin", admin=True)
    print(f"seed: {len(users) + 1} users", flush=True)

    def as_user(name):
        c.token = users[name]["token"]

    txn = [0]

    def send(name, rid, text, reply_to=None):
        as_user(name)
        txn[0] += 1
        content = {"msgtype": "m.text", "body": text}
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        st, js = c.req("PUT", f"{CS}/rooms/{enc(rid)}/send/m.room.message/seed{txn[0]}", content)
        if st != 200:
            raise SystemExit(f"send: {st} {js}")
        return js["event_id"]

    humans = FIRST + HANDLES
    rooms = []
    for i, (alias, title, topic) in enumerate(ROOMS):
        creator = rng.choice(humans)
        world = i % 5 != 4          # 4 of 5 public rooms are world-readable (peekable)
        state = [{"type": "m.room.history_visibility", "state_key": "",
                  "content": {"history_visibility": "world_readable" if world else "shared"}}]
        as_user(creator)
        st, js = c.req("POST", f"{CS}/createRoom", {
            "preset": "public_chat", "visibility": "public", "room_alias_name": alias,
            "name": title, "topic": topic, "initial_state": state})
        if st != 200:
            raise SystemExit(f"createRoom {alias}: {st} {js}")
        rid = js["room_id"]
        members = [creator] + rng.sample([h for h in humans if h != creator], rng.randint(5, 14))
        rooms.append({"room_id": rid, "alias": f"#{alias}:{SERVER_NAME}", "name": title,
                      "creator": creator, "members": members, "world_readable": world,
                      "public": True, "events": []})
    # private rooms (small teams and DMs), not in the directory
    for i in range(14):
        a, b = rng.sample(humans, 2)
        extra = rng.sample([h for h in humans if h not in (a, b)], rng.randint(0, 3))
        as_user(a)
        st, js = c.req("POST", f"{CS}/createRoom", {
            "preset": "private_chat", "is_direct": not extra,
            "invite": [uid(x) for x in [b] + extra],
            **({"name": f"Team {rng.choice(SURNAMES)}"} if extra else {})})
        if st != 200:
            raise SystemExit(f"createRoom private: {st} {js}")
        rooms.append({"room_id": js["room_id"], "alias": None, "name": None, "creator": a,
                      "members": [a, b] + extra, "world_readable": False, "public": False,
                      "events": []})
    # bots join a set of public rooms
    bot_rooms = {"ci-bot": [r for r in rooms if r["public"]][3:19],
                 "rss-bridge": [rooms[29], rooms[0], rooms[26]],
                 "standup-bot": [rooms[33], rooms[3]]}
    for bot, rs in bot_rooms.items():
        for r in rs:
            if bot not in r["members"]:
                r["members"].append(bot)
    joins = 0
    for r in rooms:
        for m in r["members"][1:]:
            as_user(m)
            path = f"{CS}/join/{enc(r['alias'])}" if r["alias"] else f"{CS}/rooms/{enc(r['room_id'])}/join"
            st, js = c.req("POST", path, {})
            if st != 200:
                raise SystemExit(f"join {m} {r['alias']}: {st} {js}")
            joins += 1
    print(f"seed: {len(rooms)} rooms, {joins} joins", flush=True)
    msgs = 0
    for r in rooms:
        humans_in = [m for m in r["members"] if m not in BOTS]
        for _ in range(rng.randint(8, 18) if r["public"] else rng.randint(4, 9)):
            who = rng.choice(r["members"] if rng.random() < 0.9 else humans_in)
            reply = None
            if r["events"] and rng.random() < 0.2:
                reply = rng.choice(r["events"])[0]
                text = rng.choice(REPLIES)
            elif who == "rss-bridge":
                text = f"[feed] {rng.choice(['Release', 'Advisory', 'Blog'])}: item #{rng.randint(100, 999)}"
            elif who == "ci-bot":
                text = f"build #{rng.randint(1000, 9999)} {'passed' if rng.random() < 0.8 else 'failed'} on main"
            else:
                text = rng.choice(LINES)
            eid = send(who, r["room_id"], text, reply)
            r["events"].append([eid, who])
            msgs += 1
    print(f"seed: {msgs} messages", flush=True)
    json.dump({"users": users, "admin": {"user": "admin", "password": admin_pw}, "rooms": rooms},
              open(args.out, "w"), indent=1)


# ---------------------------------------------------------------------------------------
# benign personas
# ---------------------------------------------------------------------------------------
class World:
    def __init__(self, seed_data, base, scale):
        self.seed = seed_data
        self.base = base
        self.scale = scale
        self.users = seed_data["users"]
        self.rooms = seed_data["rooms"]
        self.by_id = {r["room_id"]: r for r in self.rooms}
        self.public = [r for r in self.rooms if r["public"]]
        # rooms nobody reads before 300 s: the late-comers open them first
        self.late_rooms = self.public[-8:]
        self.readable = self.public[:-8]
        self.lock = threading.Lock()
        self.created = 0

    def at(self, s):
        return s * self.scale


class Session:
    """An Element-like logged-in client: one connection for actions, one for /sync."""

    def __init__(self, world, ip, name, ua, rng, long_poll=True):
        self.w, self.ip, self.name, self.rng = world, ip, name, rng
        self.user_id = uid(name)
        self.c = Client(world.base, ip, ua)
        self.sc = Client(world.base, ip, ua)
        self.long_poll = long_poll
        self.filter_id = None
        self.since = None
        self.sync_thread = None
        self.logged_in = threading.Event()
        self.txn = 0
        late = {r["room_id"] for r in world.late_rooms}
        # rooms it can post in and read (the late rooms stay unread until the late-comers)
        self.joined = [r["room_id"] for r in world.rooms if name in r["members"] and r["room_id"] not in late]
        self.opened = set()
        self.seen_users = set()
        self.own_events = []     # (room_id, event_id)
        self.own_rooms = []      # dicts of rooms created during the capture

    def pw(self):
        return self.w.users[self.name]["password"]

    def login(self, password):
        st, js = self.c.req("POST", f"{CS}/login", {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.name},
            "password": password,
            "initial_device_display_name": "app.element.io: Chrome on Linux"}, auth=False)
        if st == 200:
            self.c.token = self.sc.token = js["access_token"]
        return st

    def start(self, mistype=False, reuse_token=False):
        """Client start-up: versions, login flows, (login), capabilities, filter, first sync."""
        self.c.req("GET", "/_matrix/client/versions", auth=False)
        if reuse_token:
            self.c.token = self.sc.token = self.w.users[self.name]["token"]
            self.c.req("GET", f"{CS}/account/whoami")
        else:
            self.c.req("GET", f"{CS}/login", auth=False)
            nap(3, 8, self.rng)
            if mistype:
                wrong = self.pw()[:-1] + ("x" if not self.pw().endswith("x") else "y")
                self.login(wrong)
                nap(4, 9, self.rng)
            if self.login(self.pw()) != 200:
                return False
        nap(0.2, 0.8, self.rng)
        self.c.req("GET", f"{CS}/capabilities")
        self.c.req("GET", f"{CS}/pushrules/")
        st, js = self.c.req("POST", f"{CS}/user/{enc(self.user_id)}/filter",
                            {"room": {"timeline": {"limit": 5}, "state": {"lazy_load_members": True}}})
        self.filter_id = js.get("filter_id", "0")
        st, js = self.c.req("GET", f"{CS}/sync?filter={self.filter_id}&timeout=0")
        self.since = js.get("next_batch")
        self.logged_in.set()
        if self.long_poll:
            self.sync_thread = threading.Thread(target=self.sync_loop, daemon=True)
            self.sync_thread.start()
        return True

    def sync_loop(self):
        while alive() and self.logged_in.is_set():
            t = int(max(0.0, min(30.0, remaining() - 1.0)) * 1000)
            path = f"{CS}/sync?filter={self.filter_id}&timeout={t}"
            if self.since:
                path += "&since=" + enc(self.since)
            st, js = self.sc.req("GET", path, timeout=t / 1000 + 20)
            if st == 200:
                self.since = js.get("next_batch", self.since)
            else:
                nap(2, 5, self.rng)
        self.sc.close()

    def logout(self):
        self.c.req("POST", f"{CS}/logout", {})
        self.logged_in.clear()
        self.c.token = None
        self.c.close()

    # --- reading ---
    def open_room(self, room, via_alias=False):
        rid = room["room_id"]
        if via_alias and room["alias"]:
            st, js = self.c.req("GET", f"{CS}/directory/room/{enc(room['alias'])}")
            if not nap(0.5, 2, self.rng):
                return
        member = rid in self.joined
        if not member and not room["world_readable"]:
            st, _ = self.c.req("POST", f"{CS}/join/{enc(room['alias'])}", {})
            if st == 200:
                self.joined.append(rid)
                member = True
            nap(0.5, 2, self.rng)
        if self.rng.random() < (0.35 if rid not in self.opened else 0.05):
            self.c.req("GET", f"{CS}/rooms/{enc(rid)}/state")
            nap(0.3, 1.5, self.rng)
        limit = 8
        self.c.req("GET", f"{CS}/rooms/{enc(rid)}/messages?dir=b&limit={limit}")
        self.opened.add(rid)
        if not nap(1, 4, self.rng):
            return
        if self.rng.random() < 0.15:
            self.c.req("GET", f"{CS}/rooms/{enc(rid)}/joined_members" if member
                       else f"{CS}/rooms/{enc(rid)}/members")
            nap(0.5, 2, self.rng)
        evs = room.get("events") or []
        if evs:
            for eid, sender in self.rng.sample(evs, min(len(evs), self.rng.randint(0, 2))):
                if sender not in self.seen_users or self.rng.random() < 0.2:
                    self.c.req("GET", f"{CS}/profile/{enc(uid(sender))}")
                    self.seen_users.add(sender)
                    nap(0.5, 2.5, self.rng)
            if self.rng.random() < 0.3:
                eid = self.rng.choice(evs)[0]
                if self.rng.random() < 0.9:
                    self.c.req("GET", f"{CS}/rooms/{enc(rid)}/event/{enc(eid)}")
                else:
                    self.c.req("GET", f"{CS}/rooms/{enc(rid)}/context/{enc(eid)}?limit=2")
                nap(0.5, 2, self.rng)
            if member and self.rng.random() < 0.4:
                eid = evs[-1][0]
                self.c.req("POST", f"{CS}/rooms/{enc(rid)}/read_markers",
                           {"m.fully_read": eid, "m.read": eid})

    def browse_misc(self):
        r = self.rng.random()
        if r < 0.3:
            self.c.req("GET", f"{CS}/publicRooms?limit=20")
        elif r < 0.45:
            self.c.req("POST", f"{CS}/publicRooms", {
                "limit": 20, "filter": {"generic_search_term": self.rng.choice(
                    ["dev", "office", "games", "rust", "music", "ops", "book", "support"])}})
        elif r < 0.6:
            self.c.req("GET", f"{CS}/joined_rooms")
        elif r < 0.75:
            self.c.req("POST", f"{CS}/user_directory/search", {
                "search_term": self.rng.choice(FIRST)[:self.rng.randint(2, 4)], "limit": 10})
        elif r < 0.9 and self.seen_users:
            self.c.req("GET", f"{CS}/profile/{enc(uid(self.rng.choice(sorted(self.seen_users))))}")
        else:
            self.c.req("GET", f"{CS}/account/whoami")

    # --- writing ---
    def next_txn(self):
        self.txn += 1
        return f"m{int(time.time() * 1000)}.{self.txn}"

    def send_text(self, rid, text, extra=None):
        if self.rng.random() < 0.25:
            self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/typing/{enc(self.user_id)}",
                       {"typing": True, "timeout": 30000})
            nap(1, 4, self.rng)
        content = {"msgtype": "m.text", "body": text}
        content.update(extra or {})
        st, js = self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/send/m.room.message/{self.next_txn()}", content)
        if st == 200:
            self.own_events.append((rid, js["event_id"], text))
            room = self.w.by_id.get(rid)
            if room is not None:
                with self.w.lock:
                    room["events"].append([js["event_id"], self.name])
        return st

    def post_message(self):
        rooms = self.joined
        if not rooms:
            return
        rid = self.rng.choice(rooms)
        # the timeline is already there from /sync: no /messages before posting
        self.send_text(rid, self.rng.choice(LINES))

    def edit_own(self):
        if not self.own_events:
            return self.post_message()
        rid, eid, text = self.rng.choice(self.own_events)
        new = text + (" (edited)" if self.rng.random() < 0.5 else "!")
        self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/send/m.room.message/{self.next_txn()}", {
            "msgtype": "m.text", "body": "* " + new,
            "m.new_content": {"msgtype": "m.text", "body": new},
            "m.relates_to": {"rel_type": "m.replace", "event_id": eid}})

    def redact_own(self):
        if not self.own_events:
            return self.post_message()
        rid, eid, _ = self.own_events.pop(self.rng.randrange(len(self.own_events)))
        self.c.req("GET", f"{CS}/rooms/{enc(rid)}/event/{enc(eid)}")
        nap(1, 3, self.rng)
        self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/redact/{enc(eid)}/{self.next_txn()}",
                   {"reason": self.rng.choice(["typo", "wrong room", "duplicate"])})

    def create_room(self):
        with self.w.lock:
            self.w.created += 1
            n = self.w.created
        topic = self.rng.choice(["sprint", "offsite", "migration", "launch", "retro", "hackweek",
                                 "vendor-eval", "budget", "reading-group", "tournament"])
        alias = f"{topic}-{self.name.replace('.', '-')}-{n}"
        st, js = self.c.req("POST", f"{CS}/createRoom", {
            "preset": "public_chat", "visibility": "public", "room_alias_name": alias,
            "name": f"{topic.replace('-', ' ').title()} {n}", "topic": f"{topic} planning",
            "initial_state": [{"type": "m.room.history_visibility", "state_key": "",
                               "content": {"history_visibility": "world_readable"}}]})
        if st != 200:
            return
        room = {"room_id": js["room_id"], "alias": f"#{alias}:{SERVER_NAME}", "name": alias,
                "creator": self.name, "members": [self.name], "world_readable": True,
                "public": True, "events": []}
        self.own_rooms.append(room)
        with self.w.lock:
            self.w.by_id[room["room_id"]] = room
        self.joined.append(room["room_id"])
        nap(1, 3, self.rng)
        self.c.req("GET", f"{CS}/rooms/{enc(room['room_id'])}/state")
        nap(2, 5, self.rng)
        self.send_text(room["room_id"], f"kicking off the {topic} room, agenda to follow")

    def edit_own_room(self):
        if not self.own_rooms:
            return self.create_room()
        room = self.rng.choice(self.own_rooms)
        rid = room["room_id"]
        if self.rng.random() < 0.6:
            self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/state/m.room.topic/",
                       {"topic": self.rng.choice(["agenda in the pinned doc", "done: see notes",
                                                  "next sync Thursday", "planning"])})
        else:
            self.c.req("PUT", f"{CS}/rooms/{enc(rid)}/state/m.room.name/",
                       {"name": room["name"].replace("-", " ").title() + " (2)"})
        nap(1, 3, self.rng)
        self.c.req("GET", f"{CS}/rooms/{enc(rid)}/state")

    def close_own_room(self):
        if not self.own_rooms:
            return self.create_room()
        room = self.own_rooms.pop(0)
        rid = room["room_id"]
        self.c.req("DELETE", f"{CS}/directory/room/{enc(room['alias'])}")
        nap(1, 3, self.rng)
        self.c.req("PUT", f"{CS}/directory/list/room/{enc(rid)}", {"visibility": "private"})
        nap(1, 3, self.rng)
        self.c.req("POST", f"{CS}/rooms/{enc(rid)}/leave", {})
        nap(0.5, 2, self.rng)
        self.c.req("POST", f"{CS}/rooms/{enc(rid)}/forget", {})
        self.joined = [x for x in self.joined if x != rid]
        self.own_events = [e for e in self.own_events if e[0] != rid]

    def set_profile(self):
        d = self.w.users[self.name]["display"]
        new = d if self.rng.random() < 0.5 else d + self.rng.choice([" (away)", " | OOO", " 🌴"])
        self.c.req("PUT", f"{CS}/profile/{enc(self.user_id)}/displayname", {"displayname": new})
        nap(0.5, 2, self.rng)
        self.c.req("GET", f"{CS}/profile/{enc(self.user_id)}")


def reader_loop(s, queue, until=None, p_new=0.3, p_post=0.05):
    """Open rooms from `queue` (new ones now and then), misc browsing, rare messages."""
    rng = s.rng
    qi = 0
    while alive() and (until is None or time.time() < until):
        r = rng.random()
        if r < p_new and qi < len(queue):
            s.open_room(queue[qi], via_alias=rng.random() < 0.4)
            qi += 1
        elif r < p_new + 0.2 and s.opened:
            s.open_room(s.w.by_id[rng.choice(sorted(s.opened))])
        elif r < p_new + 0.2 + p_post:
            s.post_message()
        else:
            s.browse_misc()
        if not nap(2, 7, rng):
            break


def author_loop(s, until=None):
    rng = s.rng
    acts = [(0.26, lambda: s.open_room(s.w.by_id[rng.choice(s.joined)]) if s.joined else s.browse_misc()),
            (0.26, s.post_message), (0.06, s.create_room), (0.09, s.edit_own), (0.08, s.redact_own),
            (0.06, s.edit_own_room), (0.03, s.close_own_room), (0.02, s.set_profile),
            (0.14, s.browse_misc)]
    while alive() and (until is None or time.time() < until):
        r = rng.random()
        for p, f in acts:
            if r < p:
                f()
                break
            r -= p
        else:
            s.browse_misc()
        if not nap(2, 7, rng):
            break


# ---------------------------------------------------------------------------------------
# attacks
# ---------------------------------------------------------------------------------------
COMMON_PASSWORDS = ["123456", "password", "12345678", "qwerty", "123456789", "12345", "1234",
                    "111111", "1234567", "dragon", "123123", "baseball", "abc123", "football",
                    "monkey", "letmein", "696969", "shadow", "master", "666666", "qwertyuiop",
                    "123321", "mustang", "1234567890", "michael", "654321", "superman",
                    "1qaz2wsx", "7777777", "121212", "000000", "qazwsx", "123qwe", "killer",
                    "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster",
                    "soccer", "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou",
                    "2000", "charlie", "robert", "thomas", "hockey", "ranger", "daniel",
                    "starwars", "klaster", "112233", "george", "computer", "michelle",
                    "jessica", "pepper", "1111", "zxcvbn", "555555", "11111111", "131313",
                    "freedom", "777777", "pass", "maggie", "159753", "aaaaaa", "ginger",
                    "princess", "joshua", "cheese", "amanda", "summer", "love", "ashley",
                    "Admin123!", "admin", "changeme", "Welcome1", "P@ssw0rd", "matrix", "synapse"]
STUFF_USERS = ["john", "jsmith", "admin", "test", "info", "support", "alice", "bob", "mike",
               "david", "chris", "sarah", "lisa", "anna", "kevin", "laura", "maria", "james",
               "robert", "michael", "jennifer", "linda", "elizabeth", "william", "richard",
               "joseph", "thomas", "charles", "daniel", "matthew", "mark", "paul", "steven",
               "andrew", "joshua", "ken", "brian", "george", "edward", "ronald", "timothy",
               "jason", "jeffrey", "ryan", "jacob", "gary", "nicholas", "eric", "stephen",
               "larry", "justin", "scott", "brandon", "frank", "benjamin", "gregory", "sam",
               "grace", "erin", "heidi", "ivan", "judy", "oscar", "rachel", "tina", "walter",
               "zoe", "emma", "olivia", "ava", "sophia", "mia", "amelia", "harper", "evelyn",
               "abigail", "emily", "ella", "madison", "scarlett"]
DIST_USERS = ["j.doe", "jane", "k.miller", "m.brown", "peter", "ops", "devops", "root", "guest",
              "sysadmin", "webmaster", "postmaster", "hr", "sales", "billing", "marketing",
              "dev", "developer", "qa", "tester", "backup", "monitor", "nagios", "jenkins",
              "git", "deploy", "carol", "dave", "frank", "judy", "umar", "vera", "xena",
              "yusuf", "aaron", "bianca", "chen", "diego", "elena", "farah", "hana", "igor",
              "jonas", "kira", "liam", "maya", "noah", "olga", "pablo", "rosa", "stefan",
              "tomas", "ursula", "viktor", "wendy", "yara", "zane", "amir", "beatriz", "colin",
              "dmitri", "felix", "gita", "hugo", "ines", "jakob", "m.rossi", "j.chen",
              "priya.n", "k.tanaka", "l.dubois", "a.novak", "s.kowalski", "r.silva",
              "t.nguyen", "h.mueller", "o.hansen", "e.garcia", "b.obrien", "f.moretti",
              "c.larsen", "d.petrov", "n.kaur", "y.sato", "g.rahman", "p.jansen", "nick",
              "oliver", "harry", "jack", "charlie", "thomas2", "oscar1", "william1", "james1",
              "george1", "noah1", "leo", "arthur", "muhammad", "henry", "theo", "freddie",
              "alfie", "archie", "isla", "ivy", "lily", "rosie", "florence", "freya", "poppy",
              "willow", "evie", "sienna", "luna", "daisy", "ruby", "elsie", "phoebe", "hazel",
              "maeve", "sophie", "chloe", "alex", "sasha", "robin", "jamie", "casey", "morgan"]
ENUM_NAMES = ["admin", "root", "alice", "bob", "carol", "dave", "erin", "frank", "grace",
              "heidi", "ivan", "judy", "mallory", "trent", "peggy", "victor", "walter", "sybil",
              "john", "jane", "mary", "patricia", "linda", "barbara", "susan", "jessica",
              "sarah", "karen", "nancy", "lisa", "betty", "sandra", "ashley", "kimberly",
              "donna", "emily", "michelle", "carol2", "amanda", "melissa", "deborah",
              "stephanie", "rebecca", "laura", "sharon", "cynthia", "kathleen", "amy",
              "shirley", "angela", "helen", "anna", "brenda", "pamela", "nicole", "samantha",
              "katherine", "emma", "ruth", "christine", "catherine", "debra", "rachel",
              "carolyn", "janet", "virginia", "maria", "heather", "diane", "julie", "joyce",
              "victoria", "kelly", "christina", "joan", "evelyn", "lauren", "judith", "olivia",
              "frances", "martha", "cheryl", "megan", "andrea", "hannah", "jacqueline",
              "ann", "jean", "alice2", "kathryn", "gloria", "teresa", "doris", "sara",
              "janice", "julia", "marie", "madison", "grace2", "judy2", "beverly", "denise",
              "marilyn", "amber", "danielle", "abigail", "brittany", "rose", "diana",
              "natalie", "sophia", "alexis", "lori", "kayla", "jane2", "kevin", "mike",
              "oscar", "quentin", "sam", "tina", "umar", "vera", "xena", "yusuf", "zoe",
              "aaron", "bianca", "chen", "diego", "elena", "farah", "george", "hana", "igor",
              "jonas", "kira", "liam", "maya", "noah", "olga", "pablo", "rosa", "stefan",
              "tomas", "ursula", "viktor", "wendy", "yara", "zane", "amir", "beatriz",
              "colin", "dmitri", "felix", "gita", "hugo", "ines", "jakob", "james", "robert",
              "michael", "william", "david", "richard", "joseph", "thomas", "charles",
              "christopher", "daniel", "matthew", "anthony", "mark", "donald", "steven",
              "paul", "andrew", "joshua", "kenneth", "brian", "edward", "ronald", "timothy",
              "jason", "jeffrey", "ryan", "jacob", "gary", "nicholas", "eric", "jonathan",
              "m.rossi", "j.chen", "priya.n", "k.tanaka", "l.dubois", "a.novak", "s.kowalski",
              "r.silva", "t.nguyen", "h.mueller", "o.hansen", "e.garcia", "b.obrien",
              "f.moretti", "c.larsen", "d.petrov", "n.kaur", "y.sato", "g.rahman", "p.jansen",
              "a.smith", "j.jones", "m.garcia", "k.lee", "s.miller", "ci-bot", "rss-bridge",
              "standup-bot", "bot", "support", "helpdesk", "ops", "test", "guest", "demo"]


def login_attempt(c, user, password):
    return c.req("POST", f"{CS}/login", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password}, auth=False)


def pool_login(base, ip, pairs, threads, ua):
    """A hydra-like attacker: `threads` keep-alive connections, each as fast as answered."""
    todo = list(pairs)
    lock = threading.Lock()
    results = []

    def worker():
        c = Client(base, ip, ua, host_header=None)
        while alive():
            with lock:
                if not todo:
                    break
                u, p = todo.pop(0)
            st, js = login_attempt(c, u, p)
            results.append((u, p, st, js.get("errcode")))
        c.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


# ---------------------------------------------------------------------------------------
# Synapse's route table (the servlets' PATTERNS regexes in synapse/rest/client/*.py and
# synapse/rest/admin/*.py of matrix-synapse 1.163.2, written with their named groups as
# {parameters}; v3 is the client prefix the clients use). Only those the capture
# exercises go into the labels.
# ---------------------------------------------------------------------------------------
ROUTE_TABLE = [
    "GET /_matrix/client/versions",
    "GET /_matrix/client/v3/login",
    "POST /_matrix/client/v3/login",
    "POST /_matrix/client/v3/logout",
    "GET /_matrix/client/v3/account/whoami",
    "GET /_matrix/client/v3/capabilities",
    "GET /_matrix/client/v3/pushrules/",
    "POST /_matrix/client/v3/user/{user_id}/filter",
    "GET /_matrix/client/v3/sync",
    "GET /_matrix/client/v3/joined_rooms",
    "GET /_matrix/client/v3/publicRooms",
    "POST /_matrix/client/v3/publicRooms",
    "POST /_matrix/client/v3/user_directory/search",
    "POST /_matrix/client/v3/createRoom",
    "GET /_matrix/client/v3/directory/room/{room_alias}",
    "DELETE /_matrix/client/v3/directory/room/{room_alias}",
    "PUT /_matrix/client/v3/directory/list/room/{room_id}",
    "POST /_matrix/client/v3/join/{room_identifier}",
    "POST /_matrix/client/v3/rooms/{room_id}/leave",
    "POST /_matrix/client/v3/rooms/{room_id}/forget",
    "GET /_matrix/client/v3/rooms/{room_id}/state",
    "PUT /_matrix/client/v3/rooms/{room_id}/state/{event_type}/{state_key}",
    "GET /_matrix/client/v3/rooms/{room_id}/messages",
    "GET /_matrix/client/v3/rooms/{room_id}/members",
    "GET /_matrix/client/v3/rooms/{room_id}/joined_members",
    "GET /_matrix/client/v3/rooms/{room_id}/event/{event_id}",
    "GET /_matrix/client/v3/rooms/{room_id}/context/{event_id}",
    "POST /_matrix/client/v3/rooms/{room_id}/read_markers",
    "PUT /_matrix/client/v3/rooms/{room_id}/typing/{user_id}",
    "PUT /_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}",
    "PUT /_matrix/client/v3/rooms/{room_id}/redact/{event_id}/{txn_id}",
    "GET /_matrix/client/v3/profile/{user_id}",
    "PUT /_matrix/client/v3/profile/{user_id}/{field_name}",
    "PUT /_matrix/client/v3/user/{user_id}/account_data/{account_data_type}",
    "GET /_matrix/client/v3/admin/whois/{user_id}",
    "GET /_synapse/admin/v1/server_version",
    "GET /_synapse/admin/v2/users",
    "GET /_synapse/admin/v2/users/{user_id}",
    "PUT /_synapse/admin/v2/users/{user_id}",
    "GET /_synapse/admin/v1/users/{user_id}/joined_rooms",
    "GET /_synapse/admin/v1/rooms",
    "GET /_synapse/admin/v1/rooms/{room_id}/messages",
    "DELETE /_synapse/admin/v2/rooms/{room_id}",
    "GET /_synapse/admin/v1/statistics/users/media",
    "POST /_synapse/admin/v1/deactivate/{target_user_id}",
    "POST /_synapse/admin/v1/reset_password/{target_user_id}",
]


def route_regex(route):
    method, template = route.split(" ", 1)
    rx = re.sub(r"\\\{[a-z_]+\\\}", "[^/]*", re.escape(template))
    return method, re.compile("^" + rx + "$")


def exercised_routes():
    compiled = [(r,) + route_regex(r) for r in ROUTE_TABLE]
    seen = set()
    for _, _, m, p, _ in STATE["log"]:
        path = p.split("?")[0]
        for r, meth, rx in compiled:
            if meth == m and rx.match(path):
                seen.add(r)
                break
    return [r for r in ROUTE_TABLE if r in seen]


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def run(args):
    seed_data = json.load(open(args.seed))
    w = World(seed_data, args.base, args.scale)
    start = time.time()
    STATE["end"] = start + args.duration
    rng0 = random.Random(7)
    personas = kit.Personas()
    labels_attacks = []
    base = args.base
    users = seed_data["users"]

    def at(sec):
        """Sleep until `sec` (scaled) seconds after the start; False if past the end."""
        d = start + w.at(sec) - time.time()
        if d > 0:
            time.sleep(min(d, max(0.0, remaining())))
        return alive()

    spawn = personas.spawn

    def rel(t):
        return round(t - STATE["t0"], 1)

    # ---- benign personas ----
    readers = {"10.82.0.10": "alice", "10.82.0.11": "bob", "10.82.0.12": "carol",
               "10.82.0.13": "dave", "10.82.0.14": "grace", "10.82.0.15": "heidi",
               "10.82.0.16": "ivan", "10.82.0.17": "judy", "10.82.0.27": "olga",
               "10.82.0.28": "pablo"}
    authors = {"10.82.0.18": "erin", "10.82.0.19": "frank", "10.82.0.20": "laura",
               "10.82.0.21": "mike", "10.82.0.22": "j.chen"}
    mistypers = {"10.82.0.24": "oscar", "10.82.0.25": "rachel", "10.82.0.26": "k.tanaka"}
    office_ip = "10.82.0.30"
    office_users = ["m.rossi", "priya.n", "l.dubois", "a.novak", "t.nguyen"]
    integration = ("10.82.0.23", "ci-bot")
    latecomers = [("10.82.0.50", "zane", 330), ("10.82.0.51", "yara", 385), ("10.82.0.52", "hugo", 445)]
    burst_ip, burst_user, burst_friend = "10.82.0.100", "kevin", "sam"
    enum_ip, enum_user = "10.82.0.104", "nadia"
    unusual_ip, unusual_user = "10.82.0.105", "tina"

    def reader(ip, name, i):
        rng = random.Random(zlib.crc32(f'{ip}/{name}'.encode()))
        at(rng.uniform(0, 25))
        s = Session(w, ip, name, rng.choice(UA_HUMAN), rng)
        if not s.start(reuse_token=(i % 3 == 0)):
            return
        queue = [r for r in w.readable]
        rng.shuffle(queue)
        reader_loop(s, queue, p_new=0.28)

    def author(ip, name):
        rng = random.Random(zlib.crc32(f'{ip}/{name}'.encode()))
        at(rng.uniform(0, 28))
        s = Session(w, ip, name, rng.choice(UA_HUMAN), rng)
        if s.start():
            author_loop(s)

    def mistyper(ip, name):
        rng = random.Random(zlib.crc32(f'{ip}/{name}'.encode()))
        at(rng.uniform(2, 30))
        s = Session(w, ip, name, rng.choice(UA_HUMAN), rng)
        if not s.start(mistype=True):
            return
        queue = list(w.readable)
        rng.shuffle(queue)
        if name == "k.tanaka":
            # logs out at ~200 s, comes back at ~350 s and mistypes again (benign)
            reader_loop(s, queue[:20], until=start + w.at(200))
            if not alive():
                return
            s.logout()
            at(350)
            s2 = Session(w, ip, name, s.c.ua, rng)
            if s2.start(mistype=True):
                reader_loop(s2, queue[20:], p_new=0.3, p_post=0.1)
        else:
            reader_loop(s, queue, p_new=0.28, p_post=0.08)

    def office_user(name, k):
        rng = random.Random(zlib.crc32(f'{office_ip}/{name}'.encode()))
        at(rng.uniform(0, 30) + (k % 3) * 40)
        first = True
        while alive():
            s = Session(w, office_ip, name, rng.choice([UA_WEB, UA_FF, UA_MAC]), rng)
            if not s.start(mistype=first and name in ("priya.n", "t.nguyen")):
                return
            first = False
            until = time.time() + rng.uniform(200, 420)
            if rng.random() < 0.5:
                author_loop(s, until=until)
            else:
                queue = list(w.readable)
                rng.shuffle(queue)
                reader_loop(s, queue, until=until, p_new=0.25, p_post=0.1)
            if not alive():
                return
            s.logout()
            if not nap(20, 60, rng):
                return

    def integration_bot(ip, name):
        rng = random.Random(99)
        at(1)
        s = Session(w, ip, name, "matrix-nio/0.24.0 (ci-bot)", rng, long_poll=False)
        if not s.start():
            return
        rooms = [r["room_id"] for r in w.rooms if name in r["members"]][:14]
        i = 0
        while alive():
            path = f"{CS}/sync?filter={s.filter_id}&timeout=0"
            if s.since:
                path += "&since=" + enc(s.since)
            st, js = s.c.req("GET", path)
            if st == 200:
                s.since = js.get("next_batch", s.since)
            rid = rooms[i % len(rooms)]
            s.c.req("GET", f"{CS}/rooms/{enc(rid)}/messages?dir=b&limit=5")
            if i % 5 == 0:
                s.c.req("GET", f"{CS}/joined_rooms")
            i += 1
            if not nap(2.5, 3.5, rng):
                break

    def latecomer(ip, name, t):
        rng = random.Random(zlib.crc32(f'{ip}/{name}'.encode()))
        at(t)
        s = Session(w, ip, name, rng.choice(UA_HUMAN), rng)
        if not s.start():
            return
        late = list(w.late_rooms)
        rng.shuffle(late)
        rest = list(w.readable)
        rng.shuffle(rest)
        reader_loop(s, late[:5] + rest, p_new=0.4, p_post=0.1)

    # ---- established clients that attack later ----
    def burst_client():
        rng = random.Random(100)
        at(3)
        s = Session(w, burst_ip, burst_user, UA_WEB, rng)
        if not s.start():
            return
        queue = list(w.readable)
        rng.shuffle(queue)
        friend = f"{CS}/profile/{enc(uid(burst_friend))}"

        def normal(until):
            qi = 0
            while alive() and time.time() < until:
                r = rng.random()
                if r < 0.3:
                    s.c.req("GET", friend)
                elif r < 0.45 and qi < len(queue):
                    s.open_room(queue[qi])
                    qi += 1
                else:
                    s.browse_misc()
                if not nap(2, 5, rng):
                    break
        normal(start + w.at(305))
        if not at(310):
            return
        n = 3000
        cfg = os.path.join(args.work, "burst.curl")
        with open(cfg, "w") as f:
            for i in range(n):
                f.write(f'url = "{base}{friend}"\noutput = "/dev/null"\n')
        cmd = ["curl", "-s", "--parallel", "--parallel-max", "4", "--interface", burst_ip,
               "-H", f"Authorization: Bearer {s.c.token}", "-H", f"Host: {HOST_HEADER}",
               "-H", f"User-Agent: {UA_WEB}", "-K", cfg]
        mark_t0()
        t = time.time()
        if kit.run_tool(cmd, timeout=60)[1] == "timeout":
            print("burst: curl stopped after 60 s", file=sys.stderr)
        dt = time.time() - t
        labels_attacks.append({"kind": "burst", "client": burst_ip, "start_s": rel(t),
                               "tool": f"curl --parallel --parallel-max 4 (keep-alive), {n} x GET "
                                       f"/_matrix/client/v3/profile/{{userId}} (its usual friend lookup), "
                                       f"took {dt:.1f} s"})
        normal(STATE["end"])

    def enum_client():
        rng = random.Random(104)
        at(6)
        s = Session(w, enum_ip, enum_user, UA_FF, rng)
        if not s.start():
            return
        queue = list(w.readable)
        rng.shuffle(queue)
        reader_loop(s, queue, until=start + w.at(425), p_new=0.3)
        if not at(430):
            return
        names = list(ENUM_NAMES)
        rng.shuffle(names)
        t = time.time()
        hits = misses = 0
        for name in names:
            if not alive():
                break
            st, _ = s.c.req("GET", f"{CS}/profile/{enc(uid(name))}")
            hits += st == 200
            misses += st == 404
            time.sleep(rng.uniform(0.12, 0.26))
        labels_attacks.append({"kind": "object_enumeration", "client": enum_ip, "start_s": rel(t),
                               "tool": f"python (stdlib) walk of GET /_matrix/client/v3/profile/{{userId}} "
                                       f"over {len(names)} likely user names (@name:{SERVER_NAME}), "
                                       f"{hits} x 200, {misses} x 404, ~5 req/s on its keep-alive session"})
        reader_loop(s, queue[20:], p_new=0.3)

    def unusual_client():
        rng = random.Random(105)
        at(8)
        s = Session(w, unusual_ip, unusual_user, UA_MAC, rng)
        if not s.start():
            return
        author_loop(s, until=start + w.at(475))
        if not at(480):
            return
        victim = "alice"
        vroom = next((r for r in w.rooms if r["public"] and r["creator"] != unusual_user
                      and unusual_user in r["members"] and r["events"]), w.public[0])
        vev = next((e for e in vroom["events"] if e[1] != unusual_user), vroom["events"][0])
        rid = enc(vroom["room_id"])
        seq = [
            ("GET", "/_synapse/admin/v1/server_version", None),
            ("GET", "/_synapse/admin/v2/users?from=0&limit=10000&guests=true&deactivated=true", None),
            ("GET", f"/_synapse/admin/v2/users/{enc(uid(victim))}", None),
            ("GET", "/_synapse/admin/v1/rooms?limit=10000&order_by=joined_members", None),
            ("GET", f"/_synapse/admin/v1/users/{enc(uid(victim))}/joined_rooms", None),
            ("GET", f"/_synapse/admin/v1/rooms/{rid}/messages?limit=10000", None),
            ("GET", "/_synapse/admin/v1/statistics/users/media", None),
            ("GET", f"{CS}/admin/whois/{enc(uid(victim))}", None),
            ("GET", f"{CS}/publicRooms?limit=100000", None),
            ("GET", f"{CS}/rooms/{rid}/messages?dir=b&limit=100000", None),
            ("POST", f"{CS}/user_directory/search", {"search_term": "a", "limit": 100000}),
            ("PUT", f"{CS}/profile/{enc(uid(victim))}/displayname", {"displayname": "Alice (hacked)"}),
            ("PUT", f"{CS}/user/{enc(uid(victim))}/account_data/m.direct", {}),
            ("PUT", f"{CS}/rooms/{rid}/state/m.room.topic/", {"topic": "pwned"}),
            ("PUT", f"{CS}/rooms/{rid}/redact/{enc(vev[0])}/{s.next_txn()}", {"reason": "spam"}),
            ("DELETE", f"{CS}/directory/room/{enc(vroom['alias'])}", None),
            ("PUT", f"/_synapse/admin/v2/users/{enc(uid(victim))}", {"admin": True}),
            ("POST", f"/_synapse/admin/v1/deactivate/{enc(uid(victim))}", {"erase": True}),
            ("DELETE", f"/_synapse/admin/v2/rooms/{rid}", {"block": True, "purge": True}),
            ("POST", f"/_synapse/admin/v1/reset_password/{enc(uid(victim))}",
             {"new_password": "hunter2hunter2", "logout_devices": True}),
        ]
        t = time.time()
        statuses = []
        for m, p, b in seq:
            if not alive():
                break
            st, _ = s.c.req(m, p, b)
            statuses.append(f"{m} {p.split('?')[0]} -> {st}")
            nap(0.8, 2.5, rng)
        labels_attacks.append({"kind": "unusual_endpoint", "client": unusual_ip, "start_s": rel(t),
                               "tool": "python (stdlib), its own logged-in session: admin API "
                                       "(/_synapse/admin/v1|v2 users, rooms, deactivate, reset_password, "
                                       "room delete), /admin/whois, listings with limit=10000/100000, "
                                       "PUT/DELETE on other users' profile, account data, room state, "
                                       "events and aliases"})
        with open(os.path.join(args.work, "unusual.txt"), "w") as f:
            f.write("\n".join(statuses) + "\n")
        author_loop(s)

    # ---- fresh attackers ----
    def stuffing():
        if not at(340):
            return
        pairs = [(u, "Summer2024!") for u in STUFF_USERS]
        mark_t0()
        t = time.time()
        res = pool_login(base, "10.82.0.101", pairs, 4, "Python-urllib/3.11")
        labels_attacks.append({"kind": "credential_stuffing", "client": "10.82.0.101", "start_s": rel(t),
                               "tool": f"python (stdlib) hydra-like login pool, 4 keep-alive threads as fast "
                                       f"as answered: {len(pairs)} usernames x 1 password 'Summer2024!' on "
                                       f"POST /_matrix/client/v3/login (m.login.password JSON); "
                                       f"{sum(1 for r in res if r[2] == 403)} x 403 M_FORBIDDEN"})

    def brute():
        if not at(370):
            return
        pairs = [("admin", p) for p in COMMON_PASSWORDS]
        mark_t0()
        t = time.time()
        res = pool_login(base, "10.82.0.102", pairs, 4, "Python-urllib/3.11")
        labels_attacks.append({"kind": "brute_force", "client": "10.82.0.102", "start_s": rel(t),
                               "tool": f"python (stdlib) hydra-like login pool, 4 keep-alive threads as fast "
                                       f"as answered: user 'admin' x {len(pairs)} common passwords on "
                                       f"POST /_matrix/client/v3/login; "
                                       f"{sum(1 for r in res if r[2] == 403)} x 403 M_FORBIDDEN"})

    def scan():
        if not at(400):
            return
        cmd = ["ffuf", "-s", "-w", "/usr/share/dirb/wordlists/common.txt",
               "-u", f"{base}/FUZZ", "-t", "2", "-p", "0.02", "-maxtime", "15", "-mc", "all",
               "-o", os.path.join(args.work, "ffuf.json"), "-of", "json"]
        mark_t0()
        t = time.time()
        if kit.run_tool(cmd, ns=args.scan_ns, timeout=60)[1] == "timeout":
            print("scan: ffuf stopped after 60 s", file=sys.stderr)
        labels_attacks.append({"kind": "endpoint_scan", "client": "10.82.0.103", "start_s": rel(t),
                               "tool": "ffuf -w /usr/share/dirb/wordlists/common.txt -u http://10.82.0.2/FUZZ "
                                       "-t 2 -p 0.02 -maxtime 15 -mc all"})

    dist_ips = [f"10.82.0.{i}" for i in range(120, 132)]
    dist_first = []
    dist_lock = threading.Lock()
    dist_names = list(DIST_USERS)
    random.Random(120).shuffle(dist_names)

    def dist_one(k, ip):
        rng = random.Random(1000 + k)
        if not at(320 + k * 1.8 + rng.uniform(0, 1.5)):
            return
        ua = rng.choice([UA_WEB, UA_FF, UA_MAC])
        while alive() and time.time() < start + w.at(560):
            with dist_lock:
                if not dist_names:
                    return
                user = dist_names.pop(0)
            c = Client(base, ip, ua, host_header=None)
            t = time.time()
            login_attempt(c, user, "Winter2025!")
            c.close()
            with dist_lock:
                dist_first.append((t, ip, user))
            time.sleep(min(max(0.0, remaining()), rng.uniform(20, 25) * max(w.scale, 0.05)))

    # start everyone
    spawn(integration_bot, *integration)
    for i, (ip, name) in enumerate(readers.items()):
        spawn(reader, ip, name, i)
    for ip, name in authors.items():
        spawn(author, ip, name)
    for ip, name in mistypers.items():
        spawn(mistyper, ip, name)
    for k, name in enumerate(office_users):
        spawn(office_user, name, k)
    for ip, name, t in latecomers:
        spawn(latecomer, ip, name, t)
    spawn(burst_client)
    spawn(enum_client)
    spawn(unusual_client)
    spawn(stuffing)
    spawn(brute)
    spawn(scan)
    for k, ip in enumerate(dist_ips):
        spawn(dist_one, k, ip)

    personas.join(STATE["end"] + 60)
    if dist_first:
        t = min(x[0] for x in dist_first)
        labels_attacks.append({"kind": "credential_stuffing", "scope": "global", "clients": dist_ips,
                               "start_s": rel(t),
                               "tool": f"python (stdlib) low-and-slow stuffing: 12 addresses, each a new "
                                       f"connection with a NEW username every 20-25 s, password 'Winter2025!', "
                                       f"POST /_matrix/client/v3/login; {len(dist_first)} attempts in all"})

    benign = sorted(set(readers) | set(authors) | set(mistypers) | {office_ip, integration[0]}
                    | {ip for ip, _, _ in latecomers}, key=lambda a: int(a.split(".")[-1]))
    labels = kit.write_labels(
        args.labels, "synapse",
        server=f"Synapse {args.server_version} (matrix-synapse from PyPI, SQLite) behind nginx 1.22 (nginx-light)",
        id_style="Matrix identifiers: user ids @localpart:chat.example (e.g. @alice:chat.example), "
                    "room ids !<43-char url-safe base64>  (room version 12, no server part), room aliases "
                    "#name:chat.example, event ids $<43-char url-safe base64>; percent-encoded in paths "
                    "like matrix-js-sdk (%40alice%3Achat.example, %23general%3Achat.example, %24...)",
        login="POST /_matrix/client/v3/login JSON {type:m.login.password, identifier:{type:m.id.user, "
                 "user}, password}: failure 403 {\"errcode\":\"M_FORBIDDEN\",\"error\":\"Invalid username "
                 "or password\"}, success 200 {user_id, access_token, device_id, home_server}",
        benign=benign,
        attacks=labels_attacks,
        routes=exercised_routes(),
    )
    summarize(args, labels)


def summarize(args, labels):
    t0 = STATE["t0"]
    per = {}
    for t, ip, m, p, st in STATE["log"]:
        phase = "learn" if t - t0 < 300 * args.scale else "after"
        d = per.setdefault(ip, {"learn": 0, "after": 0, "status": {}})
        d[phase] += 1
        d["status"][st] = d["status"].get(st, 0) + 1
    lines = [f"t0={t0:.3f} duration={time.time() - t0:.1f}s python-side requests={len(STATE['log'])}"]
    for ip in sorted(per, key=lambda a: int(a.split(".")[-1])):
        d = per[ip]
        lines.append(f"{ip:12s} learn={d['learn']:5d} after={d['after']:5d} status={d['status']}")
    text = "\n".join(lines)
    print(text, flush=True)
    with open(os.path.join(args.work, "summary.txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.work, "requests.tsv"), "w") as f:
        for t, ip, m, p, st in STATE["log"]:
            f.write(f"{t - t0:.3f}\t{ip}\t{m}\t{p}\t{st}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--base", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--base", required=True)
    r.add_argument("--seed", required=True)
    r.add_argument("--duration", type=float, default=600)
    r.add_argument("--scale", type=float, default=1.0, help="timeline scale, for quick trials only")
    r.add_argument("--scan-ns", default="sy-scan")
    r.add_argument("--labels", required=True)
    r.add_argument("--work", required=True)
    r.add_argument("--server-version", default="1.163.2")
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if args.mode == "seed":
        seed(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
