#!/usr/bin/env python3
"""Seed data and traffic driver for the json-server capture (captures/jsonserver.pcap.gz).

Two sub-commands, both stdlib only (hydra and ffuf are invoked as subprocesses):

  seed WORKDIR
      Writes WORKDIR/db.json (users with PLAIN passwords in "password": the capture
      script hashes them with bcryptjs before json-server-auth starts),
      WORKDIR/routes.json (json-server-auth guards) and WORKDIR/creds.json (the
      plan: which persona logs in as whom, wordlists for the attackers).

  run --work WORKDIR --labels FILE [--duration 600] [--time-scale 1.0] ...
      Runs inside the client namespace; every persona binds its own source address.
      Benign personas, the established attackers (burst, enumeration, unusual) and the
      distributed stuffing are python threads; hydra and ffuf run in their own
      namespaces through `ip netns exec`. Writes the labels file with measured times
      (seconds from the moment the first request of the capture was sent).

Everything is bounded in count and time; the only destination is the server address.
"""
import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kit  # noqa: E402  (scripts/capture-kit/kit.py)

# ----------------------------------------------------------------------------------
# seed data
# ----------------------------------------------------------------------------------
FIRST = """Olivia Liam Emma Noah Amelia Oliver Sophia Elijah Charlotte James Ava William
Isabella Benjamin Mia Lucas Evelyn Henry Harper Theodore Luna Jack Camila Levi Gianna
Alexander Elizabeth Jackson Eleanor Mateo Ella Daniel Abigail Michael Sofia Mason Avery
Sebastian Scarlett Ethan Emily Logan Aria Owen Penelope Samuel Chloe Jacob Layla Asher
Mila Aiden Nora John Hazel Joseph Madison Wyatt Ellie David Lily Leo Nova Luke Isla
Julian Grace Hudson Violet Grayson Aurora Matthew Riley Ezra Zoey Gabriel Willow
Priya Arjun Mei Hiroshi Fatima Omar Ingrid Lars Chiara Marco Zanele Kwame Ana Diego""".split()
LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres
Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts
Kowalski Novak Okafor Haddad Lindqvist Rossi Moreau Tanaka Patel Schneider Oconnor Fischer
Nakamura Mensah Costa Bianchi Dubois Jansen Kaur Silva Petrov Yilmaz Andersen Murphy""".split()
DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.com", "fastmail.com", "icloud.com",
           "hey.com", "gmx.net", "acme-logistics.com", "brightpath.io", "northwind.co"]
CITIES = ["Lisbon", "Austin", "Leeds", "Toronto", "Kraków", "Osaka", "Nairobi", "Denver",
          "Utrecht", "Porto", "Melbourne", "Bergen", "Lyon", "Tucson", "Accra", "Seattle",
          "Valencia", "Dublin", "Tallinn", "Montreal"]
COMPANIES = ["Acme Logistics", "Brightpath", "Northwind Traders", "Bluefin Analytics",
             "Cedar & Pine", "Quantum Bakery", "Orbit Health", "Lumen Studio", "Tidewater Bank",
             "Hollow Oak Games", "Greenleaf Energy", "self-employed"]
PW_WORDS = ["sunflower", "Bluebird", "harbor", "Maple", "tango", "Copper", "violet",
            "Falcon", "meadow", "Orchid", "pepper", "Granite", "willow", "Comet", "river"]

TOPICS = ["Postgres", "Kubernetes", "sourdough", "remote work", "TypeScript", "Rust",
          "home espresso", "trail running", "React hooks", "bike commuting", "Terraform",
          "code review", "houseplants", "budget travel", "Docker", "unit testing",
          "GraphQL", "on-call rotations", "vegetable gardening", "mechanical keyboards",
          "sleep", "Python packaging", "film photography", "CSS grid", "Redis", "Go",
          "the JVM", "marathon training", "meal prep", "accessibility", "SQLite",
          "bird watching", "WebSockets", "feature flags", "public speaking", "Vim"]
TITLE_TEMPLATES = [
    "{n} lessons from a year of {t}", "Why I finally gave up on {t}", "A beginner's guide to {t}",
    "What nobody tells you about {t}", "{t}: the good, the bad and the ugly",
    "How we cut our costs with {t}", "My {t} setup in 2024", "Ten mistakes I made with {t}",
    "Is {t} worth it?", "Notes on {t} after {n} months", "Getting started with {t} on a budget",
    "The case against {t}", "{t} tips I wish I knew earlier", "A weekend experiment with {t}",
    "Debugging {t} at 3 a.m.", "From zero to {t} in {n} weeks", "{t} and {u}: a comparison",
    "Rethinking {t}", "Our team's playbook for {t}", "{t} myths, debunked"]
SENTENCES = ["It started as a small side project.", "The first week was rough.",
             "Here is what actually worked for us.", "Numbers below are from our own logs.",
             "Your mileage may vary, of course.", "I kept notes the whole time.",
             "The documentation was better than I expected.", "Some of this surprised me.",
             "We rolled it out gradually.", "Feedback from readers shaped the second half.",
             "There is a short checklist at the end.", "Questions are welcome in the comments."]
COMMENTS = ["Great write-up, thanks for sharing!", "We hit exactly the same problem last year.",
            "Could you share the config you used?", "I disagree with point three, but nice post.",
            "Bookmarked for later.", "This saved me an afternoon.", "Any follow-up planned?",
            "How did this work out long term?", "Clear and to the point.",
            "The comparison table would help here.", "Tried it, works on my machine too.",
            "Thanks, sending this to my team.", "Interesting take, never thought of it that way."]
TODOS = ["Renew passport", "Book dentist appointment", "Pay electricity bill", "Call plumber about the sink",
         "Buy birthday present for {f}", "Submit expense report", "Back up laptop", "Water the plants",
         "Cancel unused streaming subscription", "Schedule car service", "Reply to {f}'s email",
         "Prepare slides for Monday standup", "Update CV", "Order printer ink", "Pick up dry cleaning",
         "Review pull request #{n}", "File tax return", "Plan weekend trip to {c}",
         "Return library books", "Fix bike tyre", "Clean out the garage", "Buy groceries for the week",
         "Book flights to {c}", "Read chapter {n} of the book club novel", "Change smoke alarm batteries",
         "Send invoice #{n}", "Renew gym membership", "Defrost the freezer", "Write thank-you note to {f}",
         "Set up 1:1 with {f}", "Update project roadmap", "Check insurance renewal",
         "Donate old clothes", "Call grandma", "Sort out photo backups", "Replace kitchen light bulb",
         "Buy train tickets to {c}", "Finish online course module {n}", "Organize team lunch",
         "Migrate notes to the new app"]

N_USERS = 72
N_POSTS = 320
INTEGRATION_UID = 7
AUTHOR_UIDS = [3, 12, 21, 33]
MISTYPER_UIDS = [15, 28, 41]
OFFICE_UIDS = list(range(44, 54))
ENUM_UID = 60
UNUSUAL_UID = 62
BRUTE_UID = 1
WEAK_UID = 38          # has the password the stuffing bots try ("Summer2024!")
STUFF_PASSWORD = "Summer2024!"
DIST_PASSWORD = "Summer2024!"


def seed(workdir):
    rng = random.Random(20240584)
    users, used, emails = [], set(), set()
    for uid in range(1, N_USERS + 1):
        while True:
            f, l = rng.choice(FIRST), rng.choice(LAST)
            local = [f"{f}.{l}", f"{f[0]}{l}", f"{f}{rng.randrange(10, 99)}"][rng.randrange(3)].lower()
            domain = rng.choice(DOMAINS)
            if (f, l) not in used and f"{local}@{domain}" not in emails:
                used.add((f, l))
                emails.add(f"{local}@{domain}")
                break
        pw = STUFF_PASSWORD if uid == WEAK_UID else f"{rng.choice(PW_WORDS)}{rng.randrange(10, 99)}{rng.choice('!#$%&*')}"
        users.append({"id": uid, "email": f"{local}@{domain}", "password": pw,
                      "name": f"{f} {l}", "username": f"{f.lower()}{l[:3].lower()}",
                      "city": rng.choice(CITIES), "company": rng.choice(COMPANIES)})
    posts, titles = [], set()
    for pid in range(1, N_POSTS + 1):
        while True:
            t = rng.choice(TITLE_TEMPLATES).format(n=rng.choice([3, 5, 6, 7, 10, 12, 18]),
                                                   t=rng.choice(TOPICS), u=rng.choice(TOPICS))
            t = t[0].upper() + t[1:]
            if t not in titles:
                titles.add(t)
                break
        posts.append({"id": pid, "userId": rng.randint(1, N_USERS), "title": t,
                      "body": " ".join(rng.sample(SENTENCES, 2))})
    comments, cid = [], 0
    for p in posts:
        for _ in range(rng.choice([0, 1, 2, 2, 3, 3, 4, 5])):
            cid += 1
            u = rng.choice(users)
            comments.append({"id": cid, "postId": p["id"], "userId": u["id"], "name": u["name"],
                             "body": rng.choice(COMMENTS)})
    todos, tid = [], 0
    for u in users:
        n = 24 if u["id"] == INTEGRATION_UID else rng.randint(3, 7)
        for _ in range(n):
            tid += 1
            t = rng.choice(TODOS).format(f=rng.choice(FIRST), c=rng.choice(CITIES), n=rng.randrange(2, 400))
            todos.append({"id": tid, "userId": u["id"], "title": t, "completed": rng.random() < 0.4})
    db = {"users": users, "posts": posts, "comments": comments, "todos": todos}
    with open(os.path.join(workdir, "db.json"), "w") as fh:
        json.dump(db, fh, indent=1, ensure_ascii=False)
    # json-server-auth guards: users/posts/comments readable by anyone, written by the
    # owner only; todos private (read and write by the owner only).
    with open(os.path.join(workdir, "routes.json"), "w") as fh:
        json.dump({"users": 644, "posts": 644, "comments": 644, "todos": 600}, fh, indent=1)
    creds = {u["id"]: {"email": u["email"], "password": u["password"], "name": u["name"]} for u in users}
    real = [u["email"] for u in users]
    fake = []
    frng = random.Random(77)
    while len(fake) < 400:
        f, l = frng.choice(FIRST), frng.choice(LAST)
        e = frng.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}{l}{frng.randrange(1, 99)}", f"{l}.{f}"]).lower() \
            + "@" + frng.choice(DOMAINS + ["hotmail.com", "aol.com", "mail.ru", "web.de"])
        if e not in real and e not in fake:
            fake.append(e)
    # credential stuffing list: a "leaked" list, 22 real addresses among 48 unknown ones
    stuff = frng.sample(real, 22) + fake[:48]
    frng.shuffle(stuff)
    # distributed stuffing: 144 further addresses (one new per attempt), ~30% real
    dist = frng.sample(real, 40) + fake[48:152]
    frng.shuffle(dist)
    common_pw = ["123456", "password", "12345678", "qwerty", "123456789", "12345", "1234567",
                 "111111", "1234567890", "123123", "abc123", "password1", "iloveyou", "000000",
                 "qwerty123", "letmein", "dragon", "monkey", "football", "baseball", "welcome",
                 "sunshine", "princess", "shadow", "superman", "michael", "trustno1", "master",
                 "Welcome1", "Password1", "Passw0rd", "Summer2023", "Summer2024", "Winter2023!",
                 "Spring2024", "Autumn2023", "P@ssw0rd", "P@ssword1", "Qwerty123!", "Admin123",
                 "changeme", "secret", "hello123", "freedom", "whatever", "starwars", "batman",
                 "charlie", "jordan23", "hunter2", "killer", "soccer", "hockey", "ginger",
                 "pepper", "cheese", "summer", "flower", "lovely", "Bluebird1", "Leanne2024",
                 "leanne123", "Graham2024", "Company123", "Welcome2024!", "Letmein!",
                 "Password123!", "Qwertyuiop", "1q2w3e4r", "zaq12wsx", "asdfgh", "pass1234"]
    plan = {"creds": creds, "stuff_users": stuff, "stuff_password": STUFF_PASSWORD,
            "brute_user": creds[BRUTE_UID]["email"], "brute_passwords": common_pw,
            "dist_users": dist, "dist_password": DIST_PASSWORD,
            "n_posts": N_POSTS, "n_users": N_USERS, "n_todos": tid,
            "todos_by_user": {}}
    for t in todos:
        plan["todos_by_user"].setdefault(str(t["userId"]), []).append(t["id"])
    plan["posts_by_user"] = {}
    for p in posts:
        plan["posts_by_user"].setdefault(str(p["userId"]), []).append(p["id"])
    with open(os.path.join(workdir, "creds.json"), "w") as fh:
        json.dump(plan, fh, indent=1)
    print(f"seeded {len(users)} users, {len(posts)} posts, {len(comments)} comments, {len(todos)} todos")


# ----------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------
SERVER = "10.84.0.2"
PORT = 80
CLOCK = kit.Clock()    # the timeline (kit.Clock): scale, start, t0 = first request sent
STOP = CLOCK.stopped
COUNTS = {}
_count_lock = threading.Lock()


BROWSER_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
]


def rel():
    """Seconds on the scheduling clock (unscaled timeline seconds)."""
    return CLOCK.now()


def sleep_until(t):
    CLOCK.at(t)


def pause(a, b, rng):
    CLOCK.nap(a, b, rng)


def mark_first_send():
    CLOCK.mark_sent()


def since_t0(t):
    return CLOCK.since_t0(t)


class Client:
    """One HTTP/1.1 keep-alive client bound to a source address."""

    def __init__(self, ip, ua, keepalive=True):
        self.ip, self.ua, self.keepalive = ip, ua, keepalive
        self.conn = None
        self.token = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None

    def req(self, method, path, body=None, auth=True, extra=None):
        if STOP.is_set():
            return 0, None
        hdrs = {"User-Agent": self.ua, "Accept": "application/json, text/plain, */*"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if auth and self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if not self.keepalive:
            hdrs["Connection"] = "close"
        if extra:
            hdrs.update(extra)
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(SERVER, PORT, timeout=15,
                                                           source_address=(self.ip, 0))
                    self.conn.connect()
                mark_first_send()
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                with _count_lock:
                    COUNTS[self.ip] = COUNTS.get(self.ip, 0) + 1
                if r.will_close or not self.keepalive:
                    self.close()
                try:
                    return r.status, json.loads(raw) if raw else None
                except ValueError:
                    return r.status, None
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    return 0, None
        return 0, None

    def login(self, email, password):
        st, body = self.req("POST", "/login", {"email": email, "password": password}, auth=False)
        if st == 200 and isinstance(body, dict):
            self.token = body.get("accessToken")
            return body["user"]["id"]
        return None


class Reader:
    """Browsing behaviour shared by every human persona: list pages, open posts,
    their comments, the author's profile and the author's other posts."""

    def __init__(self, client, rng, pages_before=(1, 26), pages_after=(1, 32), gap=(1.5, 6)):
        self.c, self.rng = client, rng
        self.pages_before, self.pages_after, self.gap = pages_before, pages_after, gap
        self.seen = set()
        self.deadline = None   # an attacker persona stops browsing at its attack time

    def done(self):
        return STOP.is_set() or (self.deadline is not None and rel() >= self.deadline)

    def wait(self):
        """Think time; True when the persona should stop browsing now."""
        pause(self.gap[0], self.gap[1], self.rng)
        return self.done()

    def visit(self, pages=None):
        rng = self.rng
        lo, hi = pages or (self.pages_before if rel() < 300 else self.pages_after)
        r = rng.random()
        if r < 0.75:
            st, lst = self.c.req("GET", f"/posts?_page={rng.randint(lo, hi)}")
        elif r < 0.85:
            st, lst = self.c.req("GET", f"/posts?_page={rng.randint(max(1, lo // 2), hi // 2)}&_limit=20")
        elif r < 0.93:
            st, lst = self.c.req("GET", "/posts?_sort=id&_order=desc&_page=1")
        else:
            st, lst = self.c.req("GET", f"/posts?q={rng.choice(['postgres', 'rust', 'travel', 'docker', 'garden', 'coffee', 'testing', 'react', 'running'])}&_page=1")
        if self.wait():
            return
        if st != 200 or not isinstance(lst, list) or not lst:
            return
        fresh = [p for p in lst if p.get("id") not in self.seen] or lst
        for p in rng.sample(fresh, min(len(fresh), rng.randint(1, 3))):
            if self.done():
                return
            pid, uid = p["id"], p.get("userId")
            self.seen.add(pid)
            self.c.req("GET", f"/posts/{pid}")
            if self.wait():
                return
            if rng.random() < 0.65:
                self.c.req("GET", f"/posts/{pid}/comments")
                if self.wait():
                    return
            if uid and rng.random() < 0.4:
                self.c.req("GET", f"/users/{uid}")
                if self.wait():
                    return
                if rng.random() < 0.35:
                    self.c.req("GET", f"/posts?userId={uid}")
                    self.wait()


def run_until(end, fn):
    while not STOP.is_set() and rel() < end:
        fn()


# ---- benign personas ---------------------------------------------------------------
def p_reader(ip, seed_, start, end, pages=None):
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, rng.choice(BROWSER_UAS))
    rd = Reader(c, rng)
    run_until(end, lambda: rd.visit(pages))
    c.close()


class Author:
    """A logged-in user who reads, keeps an eye on their own todos and writes posts,
    comments and todos of their own (create, read, edit, delete)."""

    def __init__(self, c, rng, uid, plan):
        self.c, self.rng, self.uid, self.plan = c, rng, uid, plan
        self.rd = Reader(c, rng)
        self.my_posts = list(plan["posts_by_user"].get(str(uid), []))
        self.my_todos = list(plan["todos_by_user"].get(str(uid), []))
        self.name = plan.get("creds", {}).get(str(uid), {}).get("name", "")

    def own_stuff(self):
        c, rng = self.c, self.rng
        c.req("GET", f"/todos?userId={self.uid}")
        if self.rd.wait():
            return
        if self.my_todos and rng.random() < 0.5:
            tid = rng.choice(self.my_todos)
            c.req("GET", f"/todos/{tid}")
            if self.rd.wait():
                return
            if rng.random() < 0.4:
                c.req("PATCH", f"/todos/{tid}", {"completed": rng.random() < 0.7})
                self.rd.wait()
        if rng.random() < 0.4:
            c.req("GET", f"/posts?userId={self.uid}")
            self.rd.wait()

    def write_cycle(self):
        c, rng = self.c, self.rng
        kind = rng.random()
        if kind < 0.45:
            title = rng.choice(TITLE_TEMPLATES).format(n=rng.choice([3, 5, 7, 10]), t=rng.choice(TOPICS), u=rng.choice(TOPICS))
            title = title[0].upper() + title[1:]
            st, p = c.req("POST", "/posts", {"userId": self.uid, "title": title,
                                             "body": " ".join(rng.sample(SENTENCES, 2))})
            self.rd.wait()
            if st != 201 or not isinstance(p, dict):
                return
            pid = p["id"]
            c.req("GET", f"/posts/{pid}")
            self.rd.wait()
            c.req("PATCH", f"/posts/{pid}", {"body": p["body"] + " Edit: fixed a typo."})
            self.rd.wait()
            if rng.random() < 0.5:
                c.req("PUT", f"/posts/{pid}", {"userId": self.uid, "title": title + " (updated)",
                                               "body": " ".join(rng.sample(SENTENCES, 3))})
                self.rd.wait()
            c.req("GET", f"/posts/{pid}/comments")
            self.rd.wait()
            if rng.random() < 0.6:
                c.req("DELETE", f"/posts/{pid}")
                self.rd.wait()
            else:
                self.my_posts.append(pid)
        elif kind < 0.8:
            title = rng.choice(TODOS).format(f=rng.choice(FIRST), c=rng.choice(CITIES), n=rng.randrange(2, 400))
            st, t = c.req("POST", "/todos", {"userId": self.uid, "title": title, "completed": False})
            self.rd.wait()
            if st != 201 or not isinstance(t, dict):
                return
            tid = t["id"]
            c.req("GET", f"/todos/{tid}")
            self.rd.wait()
            c.req("PATCH", f"/todos/{tid}", {"completed": True})
            self.rd.wait()
            c.req("GET", f"/todos?userId={self.uid}")
            self.rd.wait()
            if rng.random() < 0.7:
                c.req("DELETE", f"/todos/{tid}")
                self.rd.wait()
            else:
                self.my_todos.append(tid)
        else:
            pid = rng.randint(1, 260 if rel() < 300 else self.plan["n_posts"])
            c.req("GET", f"/posts/{pid}")
            self.rd.wait()
            st, cm = c.req("POST", f"/posts/{pid}/comments",
                           {"userId": self.uid, "name": self.name, "body": rng.choice(COMMENTS)})
            self.rd.wait()
            c.req("GET", f"/posts/{pid}/comments")
            self.rd.wait()
            if st == 201 and isinstance(cm, dict) and rng.random() < 0.3:
                c.req("PATCH", f"/comments/{cm['id']}", {"body": cm["body"] + " (edited)"})
                self.rd.wait()


def p_author(ip, seed_, start, end, uid, plan):
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, rng.choice(BROWSER_UAS))
    cr = plan["creds"][str(uid)]
    if c.login(cr["email"], cr["password"]) is None:
        return
    a = Author(c, rng, uid, plan)
    next_write = rel() + rng.uniform(40, 90)
    while not STOP.is_set() and rel() < end:
        r = rng.random()
        if rel() >= next_write:
            a.write_cycle()
            next_write = rel() + rng.uniform(45, 100)
        elif r < 0.35:
            a.own_stuff()
        else:
            a.rd.visit()
    c.close()


def p_mistyper(ip, seed_, start, end, uid, plan, login_at=None):
    """Mistypes the password once (400 "Incorrect password"), then logs in.
    With login_at, browses anonymously until then."""
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, rng.choice(BROWSER_UAS))
    rd = Reader(c, rng)
    if login_at:
        run_until(login_at, rd.visit)
    cr = plan["creds"][str(uid)]
    c.req("POST", "/login", {"email": cr["email"], "password": cr["password"][:-1] + "1"}, auth=False)
    pause(3, 7, rng)
    if c.login(cr["email"], cr["password"]) is None:
        return
    a = Author(c, rng, uid, plan)
    while not STOP.is_set() and rel() < end:
        if rng.random() < 0.3:
            a.own_stuff()
        else:
            rd.visit()
    c.close()


def p_integration(ip, seed_, start, end, uid, plan):
    """A sync job: the same listing and the same todo ids every few seconds."""
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, "todo-sync/1.4.2 (+python-requests/2.31.0)")
    cr = plan["creds"][str(uid)]
    if c.login(cr["email"], cr["password"]) is None:
        return
    ids = sorted(plan["todos_by_user"][str(uid)])
    k = 0
    while not STOP.is_set() and rel() < end:
        c.req("GET", f"/todos?userId={uid}")
        for _ in range(4):
            c.req("GET", f"/todos/{ids[k % len(ids)]}")
            k += 1
        pause(4, 6, rng)
    c.close()


def p_dashboard(ip, seed_, start, end):
    """A status board: newest posts and comments every ~10 s."""
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0 Safari/537.36")
    while not STOP.is_set() and rel() < end:
        c.req("GET", "/posts?_sort=id&_order=desc&_limit=5")
        c.req("GET", "/comments?_sort=id&_order=desc&_limit=5")
        pause(9, 12, rng)
    c.close()


def p_office_desk(ip, seed_, start, end, uids, plan, mistype):
    """One desk of a NAT'ed office: users take turns logging in and browsing."""
    rng = random.Random(seed_)
    sleep_until(start)
    i = 0
    while not STOP.is_set() and rel() < end:
        uid = uids[i % len(uids)]
        i += 1
        c = Client(ip, rng.choice(BROWSER_UAS))
        cr = plan["creds"][str(uid)]
        if uid in mistype:
            c.req("POST", "/login", {"email": cr["email"], "password": cr["password"].lower() + "x"}, auth=False)
            pause(3, 8, rng)
        if c.login(cr["email"], cr["password"]) is not None:
            a = Author(c, rng, uid, plan)
            session_end = rel() + rng.uniform(70, 160)
            while not STOP.is_set() and rel() < min(end, session_end):
                if rng.random() < 0.3:
                    a.own_stuff()
                else:
                    a.rd.visit()
        c.close()
        pause(5, 20, rng)


def p_registrant(ip, seed_, start, end, plan):
    """A new user who signs up after the learning period, then uses the app."""
    rng = random.Random(seed_)
    sleep_until(start)
    c = Client(ip, rng.choice(BROWSER_UAS))
    rd = Reader(c, rng)
    rd.visit((27, 32))
    st, body = c.req("POST", "/register", {"email": "nadia.ferreira@proton.me", "password": "Tangerine#58",
                                           "name": "Nadia Ferreira", "username": "nadiafer", "city": "Porto"},
                     auth=False)
    if st != 201 or not isinstance(body, dict):
        run_until(end, rd.visit)
        return
    uid = body["user"]["id"]
    rd.wait()
    if c.login("nadia.ferreira@proton.me", "Tangerine#58") is None:
        return
    rd.wait()
    c.req("GET", f"/users/{uid}")
    rd.wait()
    for title in ["Unpack moving boxes", "Register at the town hall", "Find a good bakery nearby"]:
        st, t = c.req("POST", "/todos", {"userId": uid, "title": title, "completed": False})
        rd.wait()
    c.req("GET", f"/todos?userId={uid}")
    rd.wait()
    a = Author(c, rng, uid, {"posts_by_user": {}, "todos_by_user": {}, "n_posts": plan["n_posts"]})
    while not STOP.is_set() and rel() < end:
        if rng.random() < 0.25:
            a.own_stuff()
        else:
            rd.visit((20, 32))
    c.close()


# ---- attackers ---------------------------------------------------------------------
LABELS = {}


def p_burst(ip, seed_, attack_at, plan):
    """Reads like everyone else (a request every few seconds), then hammers one
    post with 4 keep-alive connections: 150 req/s for 15 s."""
    rng = random.Random(seed_)
    sleep_until(rng.uniform(2, 20))
    c = Client(ip, BROWSER_UAS[0])
    rd = Reader(c, rng, gap=(2, 5))
    rd.deadline = attack_at - 3
    target = None
    while not STOP.is_set() and rel() < attack_at - 4:
        rd.visit()
        if rd.seen and target is None:
            target = sorted(rd.seen)[0]
    c.close()
    target = target or 17
    sleep_until(attack_at)
    if STOP.is_set():
        return
    t_start = time.time()
    LABELS["burst"] = {"t": t_start, "tool": f"python http.client, 4 keep-alive connections, ~150 req/s for 15 s: GET /posts/{target}"}
    dur, per_conn_rate = 15.0, 37.5

    def worker(k):
        wc = Client(ip, BROWSER_UAS[0])
        n = 0
        t_end = t_start + dur
        while not STOP.is_set() and time.time() < t_end and n < 800:
            wc.req("GET", f"/posts/{target}")
            n += 1
            nxt = t_start + n / per_conn_rate + k * 0.006
            d = nxt - time.time()
            if d > 0:
                time.sleep(d)
        wc.close()
    ths = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()


def p_enumerator(ip, seed_, attack_at, uid, plan):
    """A logged-in user during learning; then walks /users/{id} and /todos/{id} over
    many ids that are not its own (~5 req/s for ~50 s)."""
    rng = random.Random(seed_)
    sleep_until(rng.uniform(3, 25))
    c = Client(ip, BROWSER_UAS[2])
    cr = plan["creds"][str(uid)]
    c.login(cr["email"], cr["password"])
    a = Author(c, rng, uid, plan)
    a.rd.deadline = 300
    while not STOP.is_set() and rel() < 300:
        if rng.random() < 0.3:
            a.own_stuff()
        else:
            a.rd.visit()
    # after the learning period it keeps reading a little until the walk
    a.rd.deadline = attack_at - 3
    while not STOP.is_set() and rel() < attack_at - 5:
        a.rd.visit()
    sleep_until(attack_at)
    if STOP.is_set():
        return
    mine = set(plan["todos_by_user"].get(str(uid), []))
    user_ids = [u for u in range(1, 181) if u != uid]
    rng.shuffle(user_ids)
    todo_ids = [t for t in range(1, plan["n_todos"] + 90) if t not in mine]
    rng.shuffle(todo_ids)
    seq = []
    for i in range(260):
        if i % 3 == 2:
            seq.append(f"/todos/{todo_ids[i // 3]}")
        else:
            seq.append(f"/users/{user_ids[(i - i // 3) % len(user_ids)]}")
    LABELS["enum"] = {"t": time.time(), "tool": "python http.client keep-alive, ~5 req/s: GET /users/{id} over 180 shuffled ids (1-72 exist) and GET /todos/{id} (Bearer token) over others' and missing todo ids"}
    stats = {}
    for path in seq:
        if STOP.is_set():
            break
        st, _ = c.req("GET", path)
        stats[st] = stats.get(st, 0) + 1
        time.sleep(rng.uniform(0.12, 0.28) * CLOCK.scale)
    LABELS["enum"]["statuses"] = stats
    c.close()


def p_unusual(ip, seed_, attack_at, uid, plan):
    """An established logged-in user (dozens of requests in learning); after 480 s
    it calls json-server's admin-like routes, oversized listings and writes on other
    users' objects."""
    rng = random.Random(seed_)
    sleep_until(rng.uniform(1, 15))
    c = Client(ip, BROWSER_UAS[1])
    cr = plan["creds"][str(uid)]
    c.login(cr["email"], cr["password"])
    a = Author(c, rng, uid, plan)
    a.rd.deadline = attack_at - 3
    while not STOP.is_set() and rel() < attack_at - 5:
        if rng.random() < 0.3:
            a.own_stuff()
        else:
            a.rd.visit()
    sleep_until(attack_at)
    if STOP.is_set():
        return
    victim = 21 if uid != 21 else 22
    vposts = [p for p in plan["posts_by_user"].get(str(victim), [])] or [5]
    other_posts = [p for u, ps in plan["posts_by_user"].items() if int(u) not in (uid, victim) and int(u) not in AUTHOR_UIDS for p in ps]
    vtodos = plan["todos_by_user"].get(str(victim), [])
    steps = [
        ("GET", "/db", None),
        ("GET", "/__rules", None),
        ("GET", "/posts?_limit=10000", None),
        ("GET", "/users?_limit=10000", None),
        ("GET", f"/users/{victim}/todos", None),
        ("PATCH", f"/posts/{vposts[0]}", {"title": "This post has been removed"}),
        ("PUT", f"/posts/{vposts[0]}", {"userId": victim, "title": "This post has been removed", "body": ""}),
        ("DELETE", f"/posts/{vposts[0]}", None),
        ("DELETE", f"/posts/{other_posts[3]}", None),
        ("PUT", f"/posts/{other_posts[7]}", {"userId": uid, "title": "Sponsored: cheap watches", "body": "Visit my profile"}),
        ("PATCH", f"/todos/{vtodos[0]}", {"completed": True}),
        ("DELETE", f"/todos/{vtodos[-1]}", None),
        ("PATCH", f"/users/{victim}", {"email": "attacker@mail.ru"}),
        ("DELETE", f"/users/{victim}", None),
        ("GET", "/comments?_limit=10000&_sort=id", None),
    ]
    LABELS["unusual"] = {"t": time.time(), "tool": "python http.client (Bearer token): " + ", ".join(f"{m} {p.split('?')[0] if '_limit' not in p else p}" for m, p, _ in steps)}
    res = []
    for m, p, b in steps:
        if STOP.is_set():
            break
        st, _ = c.req(m, p, b)
        res.append(f"{m} {p} -> {st}")
        pause(0.8, 2.5, rng)
    LABELS["unusual"]["results"] = res
    c.close()


def p_dist_stuffer(ip, seed_, start, end, users, password):
    """One bot of a distributed stuffing: a new username every ~20-25 s, a new
    connection each time, always the same password."""
    rng = random.Random(seed_)
    sleep_until(start)
    for email in users:
        if STOP.is_set() or rel() >= end:
            break
        c = Client(ip, "python-requests/2.31.0", keepalive=False)
        with _count_lock:
            LABELS.setdefault("dist_first", time.time())
        st, _ = c.req("POST", "/login", {"email": email, "password": password}, auth=False)
        with _count_lock:
            LABELS.setdefault("dist_attempts", []).append((ip, email, st))
        pause(20, 25, rng)


def run_tool(name, ns, argv, log):
    return kit.run_tool(argv, ns=ns, timeout=120, log=log, cwd=os.path.dirname(log))[0]


def run(args):
    global SERVER, PORT
    SERVER, PORT = args.server, args.port
    CLOCK.scale = args.time_scale
    with open(os.path.join(args.work, "creds.json")) as fh:
        plan = json.load(fh)
    D = args.duration
    net = args.net  # e.g. "10.84.0."
    A = lambda n: f"{net}{n}"
    work = args.work
    # wordlists for hydra
    with open(os.path.join(work, "stuff_users.txt"), "w") as fh:
        fh.write("\n".join(plan["stuff_users"]) + "\n")
    with open(os.path.join(work, "brute_passwords.txt"), "w") as fh:
        fh.write("\n".join(plan["brute_passwords"]) + "\n")

    personas = kit.Personas()
    spawn = personas.add

    benign = []
    # readers (anonymous)
    for k, n in enumerate(range(10, 20)):
        benign.append(A(n))
        spawn(p_reader, A(n), 100 + k, random.Random(k).uniform(0, 25), D)
    # authors
    for k, (n, uid) in enumerate(zip(range(20, 24), AUTHOR_UIDS)):
        benign.append(A(n))
        spawn(p_author, A(n), 200 + k, random.Random(50 + k).uniform(0, 25), D, uid, plan)
    # mistypers: two at the start, one browses anonymously and logs in (mistyping) at ~360 s
    benign += [A(24), A(25), A(26)]
    spawn(p_mistyper, A(24), 301, 4, D, MISTYPER_UIDS[0], plan)
    spawn(p_mistyper, A(25), 302, 18, D, MISTYPER_UIDS[1], plan)
    spawn(p_mistyper, A(26), 303, 9, D, MISTYPER_UIDS[2], plan, 360)
    # integration, NAT'ed office (3 desks, 10 users, two of them mistype), dashboard
    benign += [A(30), A(31), A(32)]
    spawn(p_integration, A(30), 400, 1, D, INTEGRATION_UID, plan)
    for d in range(3):
        spawn(p_office_desk, A(31), 500 + d, 2 + d * 9, D, OFFICE_UIDS[d::3], plan, {OFFICE_UIDS[4], OFFICE_UIDS[8]})
    spawn(p_dashboard, A(32), 600, 6, D)
    # late-comers: a reader of the newest pages, a new sign-up, a reader of old pages
    benign += [A(40), A(41), A(42)]
    spawn(p_reader, A(40), 700, 318, D, (27, 32))
    spawn(p_registrant, A(41), 701, 347, D, plan)
    spawn(p_reader, A(42), 702, 392, D, (1, 32))
    # established attackers
    spawn(p_burst, A(100), 800, 310, plan)
    spawn(p_enumerator, A(101), 801, 430, ENUM_UID, plan)
    spawn(p_unusual, A(102), 802, 480, UNUSUAL_UID, plan)
    # distributed credential stuffing: 12 addresses, 320-560 s
    dist_ips = [A(n) for n in range(120, 132)]
    du = plan["dist_users"]
    for k, ip in enumerate(dist_ips):
        spawn(p_dist_stuffer, ip, 900 + k, 320 + k * 1.8, 560, du[k::12], plan["dist_password"])

    CLOCK.start()
    personas.start()

    tool_log = os.path.join(work, "tools.log")
    srv = f"http://{SERVER}" if PORT == 80 else f"http://{SERVER}:{PORT}"
    # hydra 9.4 needs the optional header BEFORE the condition string here (with it
    # after, it fails with "no valid optional parameter type given: S")
    hydra_form = ('/login:{"email"\\:"^USER^","password"\\:"^PASS^"}'
                  ':H=Content-Type\\: application/json:S=accessToken')
    sleep_until(340)
    t_stuff = run_tool("hydra stuffing", args.ns_stuff, [
        "hydra", "-L", os.path.join(work, "stuff_users.txt"), "-p", plan["stuff_password"], "-t", "4",
        "-s", str(PORT), SERVER, "http-post-form", hydra_form], tool_log)
    sleep_until(370)
    t_brute = run_tool("hydra brute force", args.ns_brute, [
        "hydra", "-l", plan["brute_user"], "-P", os.path.join(work, "brute_passwords.txt"), "-t", "4",
        "-s", str(PORT), SERVER, "http-post-form", hydra_form], tool_log)
    sleep_until(400)
    t_scan = run_tool("ffuf", args.ns_scan, [
        "ffuf", "-s", "-w", "/usr/share/dirb/wordlists/common.txt", "-u", f"{srv}/FUZZ",
        "-t", "2", "-p", "0.02", "-maxtime", "15", "-mc", "all", "-fc", "404"], tool_log)
    sleep_until(D)
    STOP.set()
    personas.join(time.time() + 20)

    s = lambda key: since_t0(LABELS[key]["t"]) if key in LABELS else None
    dist_start = since_t0(LABELS["dist_first"]) if "dist_first" in LABELS else None
    attempts = LABELS.get("dist_attempts", [])
    labels = dict(
        server=args.server_desc,
        id_style="integer ids (json-server/lowdb auto-increment): /users/{id} 1-72, /posts/{id} 1-320+, /todos/{id} 1-~380+, /comments/{id}",
        login="POST /login JSON {email,password} (json-server-auth): failure 400 with a JSON string body \"Incorrect password\" (known e-mail) or \"Cannot find user\" (unknown e-mail); success 200 {accessToken (JWT, 1h), user}",
        benign=benign,
        attacks=[
            {"kind": "burst", "client": A(100), "start_s": s("burst"), "tool": LABELS.get("burst", {}).get("tool")},
            {"kind": "credential_stuffing", "client": A(110), "start_s": since_t0(t_stuff),
             "tool": f"hydra 9.4 http-post-form JSON body ({{\"email\":\"^USER^\",\"password\":\"^PASS^\"}}, H=Content-Type: application/json, S=accessToken; hydra's default GET /login before each POST) -t 4: {len(plan['stuff_users'])} e-mails x 1 password ({plan['stuff_password']}) on POST /login"},
            {"kind": "brute_force", "client": A(111), "start_s": since_t0(t_brute),
             "tool": f"hydra 9.4 http-post-form JSON body -t 4: 1 e-mail ({plan['brute_user']}) x {len(plan['brute_passwords'])} passwords on POST /login"},
            {"kind": "endpoint_scan", "client": A(112), "start_s": since_t0(t_scan),
             "tool": f"ffuf 1.1.0 -w /usr/share/dirb/wordlists/common.txt -u {srv}/FUZZ -t 2 -p 0.02 -maxtime 15"},
            {"kind": "object_enumeration", "client": A(101), "start_s": s("enum"), "tool": LABELS.get("enum", {}).get("tool")},
            {"kind": "unusual_endpoint", "client": A(102), "start_s": s("unusual"), "tool": LABELS.get("unusual", {}).get("tool")},
            {"kind": "credential_stuffing", "scope": "global", "clients": dist_ips, "start_s": dist_start,
             "tool": f"python http.client, one new connection per attempt: each address tries a new e-mail every 20-25 s with the same password ({plan['dist_password']}) on POST /login, 320-560 s ({len(attempts)} attempts in all)"},
        ],
        routes=[
            "POST /login", "POST /register",
            "GET /posts", "GET /posts/{id}", "POST /posts", "PUT /posts/{id}", "PATCH /posts/{id}", "DELETE /posts/{id}",
            "GET /posts/{id}/comments", "POST /posts/{id}/comments",
            "GET /comments", "PATCH /comments/{id}",
            "GET /users", "GET /users/{id}", "GET /users/{id}/todos",
            "GET /todos", "GET /todos/{id}", "POST /todos", "PATCH /todos/{id}", "DELETE /todos/{id}",
            "GET /db", "GET /__rules",
        ],
    )
    # the attack-only routes that no benign client used are listed too: they are real
    # json-server routes (router: /db, nested /:resource/:id/:nested; rewriter: /__rules)
    labels["routes"] += ["PATCH /users/{id}", "DELETE /users/{id}"]
    kit.write_labels(args.labels, "jsonserver", **labels)
    dbg = {"first_send": CLOCK.t0, "t_sched": CLOCK.start_time, "counts": COUNTS,
           "enum_statuses": LABELS.get("enum", {}).get("statuses"),
           "unusual_results": LABELS.get("unusual", {}).get("results"),
           "dist_attempts": attempts}
    with open(os.path.join(work, "driver-summary.json"), "w") as fh:
        json.dump(dbg, fh, indent=1)
    print(json.dumps({k: dbg[k] for k in ("enum_statuses", "unusual_results")}, indent=1))
    print(f"requests sent by the python personas: {sum(COUNTS.values())}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("workdir")
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--labels", required=True)
    r.add_argument("--server", default="10.84.0.2")
    r.add_argument("--port", type=int, default=80)
    r.add_argument("--net", default="10.84.0.")
    r.add_argument("--duration", type=float, default=600)
    r.add_argument("--time-scale", type=float, default=1.0)
    r.add_argument("--ns-stuff", default="js-stuff")
    r.add_argument("--ns-brute", default="js-brute")
    r.add_argument("--ns-scan", default="js-scan")
    r.add_argument("--server-desc", default="json-server")
    a = ap.parse_args()
    if a.cmd == "seed":
        seed(a.workdir)
    else:
        run(a)


if __name__ == "__main__":
    sys.exit(main())
