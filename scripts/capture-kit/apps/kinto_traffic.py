#!/usr/bin/env python3
"""Traffic driver for the Kinto detection capture (scripts/make-capture.sh kinto).

Client side uses the Python standard library only; hydra, ffuf and curl are run as
subprocesses (hydra and ffuf inside their own network namespaces, each on a fresh
address; curl --interface for the burst).

  kinto_traffic.py seed --base URL --src IP --manifest FILE
      Creates the accounts, buckets, collections and records (run BEFORE tcpdump).
  kinto_traffic.py run --base URL --manifest FILE --workdir DIR --labels FILE
      Drives the benign personas and the attacks for --duration seconds (default 600)
      and writes the labels file with measured start times (seconds from t0, the
      moment the first request of the capture was sent).

Everything is bounded: each persona loop stops at its end time, each subprocess has
a timeout. Kinto authenticates every request with HTTP Basic (accounts plugin); a
wrong password is answered 401 {"code":401,"errno":104,...}.
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit, urlencode, quote

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kit  # noqa: E402  (scripts/capture-kit/kit.py)

SERVER = "10.81.0.2"
PORT = 8080

# ----------------------------------------------------------------------------
# Addresses (all in 10.81.0.0/24; the client namespaces are made by the shell script)
READERS = [f"10.81.0.{i}" for i in range(10, 20)]      # 10 readers
AUTHORS = [f"10.81.0.{i}" for i in range(20, 26)]      # 6 authors
SIGNUP_EARLY = "10.81.0.26"                            # signs up at ~60 s, then reads
INTEGRATIONS = ["10.81.0.30", "10.81.0.31"]            # sync jobs
OFFICE = "10.81.0.40"                                  # NAT'ed office, many users
LATE = ["10.81.0.50", "10.81.0.51", "10.81.0.52"]      # first seen after 300 s
BURST = "10.81.0.100"
STUFF = "10.81.0.101"
BRUTE = "10.81.0.102"
SCAN = "10.81.0.103"
ENUM = "10.81.0.104"
UNUSUAL = "10.81.0.105"
DIST = [f"10.81.0.{i}" for i in range(120, 132)]
MISTYPERS = {READERS[2], READERS[7], AUTHORS[2]}

# ----------------------------------------------------------------------------
# Seed data (deterministic)
FIRST = ["maria", "james", "aisha", "chen", "lucas", "sofia", "omar", "emma", "raj",
         "yuki", "noah", "fatima", "liam", "olga", "mateo", "hana", "ethan", "priya",
         "jonas", "amara", "felix", "leila", "diego", "ingrid", "kofi", "nadia", "paulo",
         "sara", "tomas", "zoe", "anton", "bea", "carlos", "dana", "elif", "farid"]
LAST = ["lopez", "smith", "khan", "wang", "martin", "rossi", "haddad", "becker", "patel",
        "tanaka", "dubois", "ali", "murphy", "ivanova", "garcia", "kim", "brown", "nair",
        "berg", "okafor", "weber", "nasser", "silva", "larsen", "mensah", "novak", "costa"]
DOMAIN = "northwind.example"

DISHES = {
    "mains": ["chicken tikka masala", "beef bourguignon", "mushroom risotto", "pad thai",
              "lasagna bolognese", "fish tacos", "chana masala", "ratatouille", "paella",
              "moussaka", "bibimbap", "shakshuka", "chili con carne", "coq au vin",
              "pulled pork", "veggie burger", "katsu curry", "jambalaya", "pierogi",
              "stuffed peppers", "lamb tagine", "green curry", "spaghetti carbonara",
              "beef stroganoff", "falafel wrap", "teriyaki salmon", "gnocchi sorrentina",
              "butter chicken", "enchiladas verdes", "pho bo"],
    "desserts": ["tiramisu", "apple crumble", "creme brulee", "chocolate mousse",
                 "panna cotta", "lemon tart", "carrot cake", "baklava", "pavlova",
                 "cheesecake", "banana bread", "brownies", "churros", "rice pudding",
                 "eton mess", "key lime pie", "sticky toffee pudding", "mochi",
                 "profiteroles", "pecan pie", "tres leches", "gulab jamun", "clafoutis",
                 "semifreddo", "black forest cake", "macarons", "flan", "strudel",
                 "madeleines", "affogato"],
    "breakfast": ["buttermilk pancakes", "french toast", "eggs benedict", "granola",
                  "overnight oats", "huevos rancheros", "avocado toast", "congee",
                  "full english", "menemen", "dutch baby", "breakfast burrito",
                  "bircher muesli", "crepes", "masala omelette", "chilaquiles",
                  "blueberry muffins", "porridge", "shakshuka verde", "waffles",
                  "banana smoothie bowl", "kedgeree", "cinnamon rolls", "frittata",
                  "bagels lox", "poha", "tamagoyaki", "scones", "hash browns", "idli"],
    "soups": ["french onion soup", "minestrone", "tom yum", "gazpacho", "ramen",
              "lentil soup", "borscht", "clam chowder", "miso soup", "pho ga",
              "harira", "mulligatawny", "avgolemono", "pumpkin soup", "tortilla soup",
              "split pea soup", "caldo verde", "laksa", "chicken noodle soup", "bisque",
              "ribollita", "goulash soup", "leek potato soup", "hot and sour soup",
              "vichyssoise", "solyanka", "callaloo", "sopa de ajo", "dal shorba",
              "wonton soup"],
    "salads": ["caesar salad", "greek salad", "nicoise", "tabbouleh", "caprese",
               "waldorf salad", "cobb salad", "panzanella", "fattoush", "som tam",
               "quinoa salad", "kale salad", "potato salad", "coleslaw", "larb",
               "chopped salad", "beet salad", "couscous salad", "soba salad",
               "watermelon feta", "lentil salad", "shirazi salad", "pasta salad",
               "gado gado", "burrata salad", "chicken salad", "tuna salad",
               "spinach salad", "asian slaw", "farro salad"],
}
CUISINES = ["italian", "french", "indian", "thai", "mexican", "japanese", "korean",
            "greek", "turkish", "spanish", "vietnamese", "moroccan", "british"]
BIRDS = ["barn owl", "tawny owl", "common kestrel", "peregrine falcon", "red kite",
         "grey heron", "little egret", "mute swan", "mallard", "tufted duck",
         "great crested grebe", "common kingfisher", "great spotted woodpecker",
         "green woodpecker", "eurasian jay", "common raven", "carrion crow", "magpie",
         "blue tit", "great tit", "long tailed tit", "european robin", "song thrush",
         "blackbird", "common starling", "house sparrow", "chaffinch", "goldfinch",
         "bullfinch", "wren", "dunnock", "pied wagtail", "barn swallow", "common swift",
         "skylark"]
TREES = ["english oak", "silver birch", "common beech", "scots pine", "norway spruce",
         "european larch", "field maple", "sycamore", "horse chestnut", "sweet chestnut",
         "common ash", "rowan", "hawthorn", "blackthorn", "wild cherry", "crab apple",
         "common lime", "hornbeam", "hazel", "alder", "white willow", "aspen",
         "black poplar", "yew", "holly", "juniper", "elder", "walnut", "london plane",
         "cedar of lebanon"]
MUSHROOMS = ["fly agaric", "chanterelle", "porcini", "field mushroom", "shaggy ink cap",
             "chicken of the woods", "giant puffball", "oyster mushroom", "morel",
             "death cap", "destroying angel", "honey fungus", "jelly ear", "turkey tail",
             "hen of the woods", "blewit", "parasol mushroom", "penny bun",
             "saffron milkcap", "amethyst deceiver", "king alfreds cakes",
             "stinkhorn", "candlesnuff fungus", "birch polypore", "scarlet elfcup"]
BOOK_WORDS = ["silent", "river", "glass", "winter", "garden", "empire", "shadow", "salt",
              "northern", "light", "machine", "ocean", "paper", "city", "stone", "fire",
              "distant", "hidden", "last", "quiet", "iron", "golden", "broken", "night"]
BOOK_NOUNS = ["atlas", "orchard", "lighthouse", "archive", "harbor", "cartographer",
              "kingdom", "frontier", "library", "signal", "station", "island", "engine",
              "weaver", "witness", "republic", "horizon", "museum", "compass", "garden"]
ARTICLE_TOPICS = ["sync protocols", "offline first apps", "json schema", "rate limiting",
                  "etags and caching", "conflict resolution", "postgres indexing",
                  "api pagination", "event sourcing", "crdts", "feature flags",
                  "observability", "zero downtime deploys", "retries and backoff",
                  "content negotiation", "idempotency keys", "webhooks", "access control"]
NOTE_TOPICS = ["sprint planning", "release checklist", "incident review", "onboarding",
               "roadmap q3", "design review", "retro", "budget", "hiring plan",
               "customer feedback", "api deprecation", "on-call handover", "offsite agenda",
               "security audit", "migration plan", "performance notes", "ux research",
               "vendor evaluation", "support backlog", "docs overhaul"]
PLACES = ["harbour", "market square", "old town", "cathedral", "tram depot", "river quay",
          "railway station", "town hall", "botanical garden", "fish market", "lighthouse",
          "north bridge", "mill race", "canal basin", "city walls", "opera house", "docks",
          "high street", "castle hill", "university library"]
SCENES = ["at dusk", "in winter", "after the flood", "on market day", "from the air",
          "during the festival", "in the rain", "at night", "under construction", "in spring"]
JOURNAL_WORDS = ["morning pages", "reading notes", "ideas", "todo", "gratitude",
                 "running log", "recipe tweaks", "garden log", "trip plan", "draft"]


def slugify(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def make_users():
    rng = random.Random(81)
    names, seen = [], set()
    while len(names) < 60:
        f, l = rng.choice(FIRST), rng.choice(LAST)
        if (f, l) in seen:
            continue
        seen.add((f, l))
        names.append((f, l))
    users = []
    for f, l in names:
        uid = f"{f}.{l}@{DOMAIN}"
        pw = f"{f.capitalize()}-{rng.randint(1000, 9999)}-{rng.choice(['kite', 'fern', 'moss', 'reef', 'dune', 'loch'])}"
        users.append({"id": uid, "password": pw, "journal": f"{f}-{l}"})
    return users


USERS = make_users()
SERVICE = [{"id": "svc-sync", "password": "sync-7Hq2-token-kinto"},
           {"id": "svc-mirror", "password": "mirror-4Kd9-token-kinto"}]
ADMIN = {"id": "admin", "password": "Adm1n-northwind-2026!"}
NEW_USERS = [{"id": f"ines.moreau@{DOMAIN}", "password": "Ines-5521-pine", "journal": "ines-moreau"},
             {"id": f"viktor.holm@{DOMAIN}", "password": "Viktor-8012-reed", "journal": "viktor-holm"}]

# persona -> user index
U_READERS = list(range(0, 10))
U_AUTHORS = list(range(10, 16))
U_OFFICE = list(range(16, 26))
U_LATE = [26, 27]            # third late-comer signs up (NEW_USERS[1])
U_BURST, U_ENUM, U_UNUSUAL = 29, 30, 31
U_NOTE_SEEDERS = list(range(10, 16)) + list(range(32, 46))
U_JOURNALS = list(range(10, 26)) + list(range(32, 40)) + [30, 31]

READABLE_BUCKETS = {
    "recipes": ["mains", "desserts", "breakfast", "soups", "salads"],
    "field-guide": ["birds", "trees", "mushrooms"],
    "reading-list": ["books", "articles"],
    "team-notes": ["notes", "meetings"],
    "city-archive": ["photos", "maps"],
}


# ----------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP/1.1 connection from a fixed source address, Basic auth."""

    log_lock = threading.Lock()
    log = []

    def __init__(self, src, user=None, password=None, ua="kinto-http.py/11.1.0"):
        self.src, self.ua = src, ua
        self.conn = None
        self.set_auth(user, password)

    def set_auth(self, user, password):
        self.user = user
        self.auth = None
        if user is not None:
            tok = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.auth = "Basic " + tok

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    def req(self, method, path, body=None, headers=None, role=""):
        h = {"Host": f"{SERVER}:{PORT}", "User-Agent": self.ua, "Accept": "application/json",
             "Accept-Encoding": "identity"}
        if self.auth:
            h["Authorization"] = self.auth
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(SERVER, PORT, timeout=15,
                                                       source_address=(self.src, 0))
            t = time.time()
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                status = r.status
                rh = {k.lower(): v for k, v in r.getheaders()}
                if rh.get("connection", "").lower() == "close":
                    self.close()
                with Client.log_lock:
                    Client.log.append((t, self.src, method, path, status, role))
                try:
                    js = json.loads(raw) if raw else None
                except ValueError:
                    js = None
                return status, js, rh
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 1:
                    with Client.log_lock:
                        Client.log.append((t, self.src, method, path, -1, role))
                    return -1, None, {}
        return -1, None, {}


def rec_path(b, c, rid=None):
    p = f"/v1/buckets/{b}/collections/{c}/records"
    return p if rid is None else f"{p}/{rid}"


# ----------------------------------------------------------------------------
# Seeding
def seed(args):
    rng = random.Random(2026)
    src = args.src
    anon = Client(src, ua="kinto-seed/1.0")
    man = {"users": USERS, "service": SERVICE, "admin": ADMIN, "records": {}, "journals": {},
           "notes_by": {}}

    def must(st, what):
        if st not in (200, 201):
            sys.exit(f"seed failed: {what} -> {st}")

    for acc in [ADMIN] + SERVICE + USERS:
        st, _, _ = anon.req("PUT", f"/v1/accounts/{quote(acc['id'])}",
                            {"data": {"password": acc["password"]}})
        must(st, "account " + acc["id"])
    adm = Client(src, ADMIN["id"], ADMIN["password"], ua="kinto-seed/1.0")
    auth_read = {"read": ["system.Authenticated"]}
    for b in ["recipes", "field-guide", "reading-list", "team-notes", "city-archive"]:
        must(adm.req("PUT", f"/v1/buckets/{b}", {"data": {"title": b.replace('-', ' ')},
                                                  "permissions": auth_read})[0], b)
    must(adm.req("PUT", "/v1/buckets/journals", {"data": {"title": "private journals"}})[0], "journals")
    must(adm.req("PUT", "/v1/buckets/ops-config", {"data": {"title": "operations"}})[0], "ops")
    for b, cols in READABLE_BUCKETS.items():
        for c in cols:
            perms = {"record:create": ["system.Authenticated"]} if b == "team-notes" else {}
            body = {"data": {"title": c}}
            if perms:
                body["permissions"] = perms
            must(adm.req("PUT", f"/v1/buckets/{b}/collections/{c}", body)[0], c)
    for c in ["settings", "feature-flags", "secrets-rotation"]:
        must(adm.req("PUT", f"/v1/buckets/ops-config/collections/{c}", {"data": {"title": c}})[0], c)

    def add(b, c, data, slug=None, who=None):
        cl = who or adm
        if slug:
            st, js, _ = cl.req("PUT", rec_path(b, c, slug), {"data": data})
        else:
            st, js, _ = cl.req("POST", rec_path(b, c), {"data": data})
        must(st, f"record {b}/{c}")
        rid = js["data"]["id"]
        man["records"].setdefault(f"{b}/{c}", []).append(rid)
        return rid

    # recipes: half server-generated UUIDs (POST), half slug ids (PUT)
    for c, dishes in DISHES.items():
        for i, d in enumerate(dishes):
            data = {"title": d.title(), "cuisine": rng.choice(CUISINES),
                    "minutes": rng.choice([10, 15, 20, 30, 45, 60, 90]),
                    "servings": rng.choice([1, 2, 4, 6]),
                    "tags": rng.sample(["vegetarian", "quick", "spicy", "family", "gluten-free",
                                        "batch", "weekend", "comfort"], 2)}
            add("recipes", c, data, slug=slugify(d) if i % 2 == 0 else None)
    # field guide: slug ids
    for c, items in [("birds", BIRDS), ("trees", TREES), ("mushrooms", MUSHROOMS)]:
        for it in items:
            add("field-guide", c, {"name": it.title(), "habitat": rng.choice(
                ["woodland", "wetland", "farmland", "urban", "coast", "heath"]),
                "season": rng.choice(["spring", "summer", "autumn", "winter", "all year"]),
                "notes": f"Common in {rng.choice(['the north', 'the south', 'parks', 'old forests'])}."},
                slug=slugify(it))
    # reading list: UUIDs
    for i in range(50):
        t = f"The {rng.choice(BOOK_WORDS).title()} {rng.choice(BOOK_NOUNS).title()}"
        add("reading-list", "books", {"title": t, "author": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
                                      "year": rng.randint(1950, 2025), "status": rng.choice(["to-read", "reading", "done"])})
    for i in range(30):
        t = f"Notes on {rng.choice(ARTICLE_TOPICS)}"
        add("reading-list", "articles", {"title": t, "url": f"https://blog.example/{slugify(t)}-{i}",
                                         "minutes": rng.randint(3, 25)})
    # city archive: a big photo collection (server UUIDs) and maps (slugs), via /v1/batch
    photos = [{"body": {"data": {"title": f"{rng.choice(PLACES).title()} {rng.choice(SCENES)}",
                                 "year": rng.randint(1885, 1995),
                                 "photographer": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
                                 "box": f"B-{rng.randint(1, 80):03d}"}}} for _ in range(900)]
    maps = []
    for pl in PLACES:
        for yr in rng.sample(range(1850, 1990, 10), 3):
            maps.append({"path": rec_path("city-archive", "maps", f"{slugify(pl)}-{yr}").replace("/v1", "", 1),
                         "body": {"data": {"title": f"{pl.title()} survey {yr}", "scale": "1:2500"}}})
    for coll, reqs, method in [("photos", photos, "POST"), ("maps", maps, "PUT")]:
        for i in range(0, len(reqs), 25):
            body = {"defaults": {"method": method,
                                 "path": rec_path("city-archive", coll).replace("/v1", "", 1)},
                    "requests": reqs[i:i + 25]}
            st, js, _ = adm.req("POST", "/v1/batch", body)
            must(st, "batch")
            for r in js["responses"]:
                must(r["status"], "batch item")
                man["records"].setdefault(f"city-archive/{coll}", []).append(r["body"]["data"]["id"])
    # team notes: authored by users (each owns its records)
    clients = {}
    for i in range(50):
        ui = U_NOTE_SEEDERS[i % len(U_NOTE_SEEDERS)]
        u = USERS[ui]
        cl = clients.setdefault(ui, Client(src, u["id"], u["password"], ua="kinto-seed/1.0"))
        c = "notes" if i < 34 else "meetings"
        rid = add("team-notes", c, {"title": f"{rng.choice(NOTE_TOPICS).title()} #{i + 1}",
                                    "body": "Agreed next steps and owners.", "author": u["id"]}, who=cl)
        man["notes_by"].setdefault(u["id"], []).append(f"{c}/{rid}")
    # journals: one private collection per user, readable/writable only by that user
    for ui in U_JOURNALS:
        u = USERS[ui]
        perms = {"read": [f"account:{u['id']}"], "write": [f"account:{u['id']}"]}
        must(adm.req("PUT", f"/v1/buckets/journals/collections/{u['journal']}",
                     {"data": {"title": "journal"}, "permissions": perms})[0], "journal")
        cl = clients.setdefault(ui, Client(src, u["id"], u["password"], ua="kinto-seed/1.0"))
        for k in range(rng.choice([2, 2, 3])):
            st, js, _ = cl.req("POST", rec_path("journals", u["journal"]),
                               {"data": {"title": rng.choice(JOURNAL_WORDS), "text": "..."}})
            must(st, "journal record")
            man["journals"].setdefault(u["journal"], []).append(js["data"]["id"])
    for c in ["settings", "feature-flags", "secrets-rotation"]:
        for k in range(4):
            add("ops-config", c, {"key": f"{c}-{k}", "value": rng.randint(1, 999)}, slug=f"{c}-{k}")
    total = sum(len(v) for v in man["records"].values()) + sum(len(v) for v in man["journals"].values())
    man["total_records"] = total
    man["total_accounts"] = 1 + len(SERVICE) + len(USERS)
    json.dump(man, open(args.manifest, "w"), indent=1)
    print(f"seeded {man['total_accounts']} accounts, {total} records")


# ----------------------------------------------------------------------------
# Shared state for the run
class Run(kit.Clock):
    """The run's clock (kit.Clock at scale 1: callers scale their own times; t0 is the
    start) and its shared state."""

    def __init__(self, args, man):
        super().__init__(scale=1.0, duration=args.duration * args.scale)
        self.args = args
        self.man = man
        self.lock = threading.Lock()
        self.opened_global = set()
        self.labels = []
        self.stop = self.stopped

    def start(self):
        super().start()
        self.t0 = self.start_time
        return self


def login(cl, run, rng, user, pw, mistype=False, role=""):
    """A Kinto client 'logs in': server info, then the bucket list (401 on a bad password)."""
    if mistype:
        cl.set_auth(user, pw[:-1] + ("x" if pw[-1] != "x" else "y"))
        cl.req("GET", "/v1/", role=role)
        run.nap(0.4, 1.0, rng)
        cl.req("GET", "/v1/buckets", role=role)          # 401
        run.nap(3, 7, rng)
    cl.set_auth(user, pw)
    cl.req("GET", "/v1/", role=role)
    run.nap(0.5, 1.5, rng)
    cl.req("GET", "/v1/buckets", role=role)


def next_page_path(rh):
    np_ = rh.get("next-page")
    if not np_:
        return None
    u = urlsplit(np_)
    return u.path + ("?" + u.query if u.query else "")


def reader_step(cl, run, rng, st, role, favourite=None, prefer_new_global=False, buckets=None):
    """One browsing step: a listing (sometimes the next page), then a few records."""
    buckets = buckets or list(READABLE_BUCKETS)
    b = rng.choice(buckets)
    if rng.random() < 0.35:
        cl.req("GET", f"/v1/buckets/{b}/collections", role=role)
        run.nap(1, 4, rng)
    c = rng.choice(READABLE_BUCKETS[b])
    key = (b, c)
    if rng.random() < 0.15:
        cl.req("GET", f"/v1/buckets/{b}/collections/{c}", role=role)
        run.nap(1, 3, rng)
    path = st["next"].get(key)
    if not path or rng.random() < 0.3:
        q = {"_limit": rng.choice([10, 12, 12, 15]),
             "_sort": rng.choice(["-last_modified", "-last_modified", "title", "name"])}
        if b == "field-guide" and q["_sort"] == "title":
            q["_sort"] = "name"
        if b != "field-guide" and q["_sort"] == "name":
            q["_sort"] = "title"
        path = rec_path(b, c) + "?" + urlencode(q)
    s, js, rh = cl.req("GET", path, role=role)
    st["next"][key] = next_page_path(rh) if s == 200 else None
    ids = [r["id"] for r in (js or {}).get("data", []) if isinstance(r, dict) and "id" in r
           and not r.get("deleted")] if s == 200 else []
    fresh = [i for i in ids if (b, c, i) not in st["opened"]]
    if prefer_new_global:
        with run.lock:
            nobody = [i for i in fresh if (b, c, i) not in run.opened_global]
        if nobody:
            fresh = nobody
    pick = rng.sample(fresh, min(len(fresh), rng.randint(2, 5))) if fresh else \
        rng.sample(ids, min(len(ids), 1))
    for rid in pick:
        if time.time() >= run.end or run.stop.is_set():
            return
        run.nap(1, 5, rng)
        cl.req("GET", rec_path(b, c, rid), role=role)
        st["opened"].add((b, c, rid))
        with run.lock:
            run.opened_global.add((b, c, rid))
    if favourite and rng.random() < 0.5:
        run.nap(1, 4, rng)
        cl.req("GET", favourite, role=role)
    run.nap(1, 6, rng)


def persona_reader(run, src, user, start, stop_at, role="reader", mistype=False,
                   favourite=None, prefer_new_global=False, buckets=None, seed=0,
                   signup=False):
    rng = random.Random(seed)
    run.at(start)
    cl = Client(src, ua=rng.choice(["kinto-http.js/14.0 (Firefox)", "kinto-http.py/11.1.0",
                                    "Mozilla/5.0 kinto-admin/3.1"]))
    if signup:
        cl.req("PUT", f"/v1/accounts/{quote(user['id'])}",
               {"data": {"password": user["password"]}}, role=role)
        run.nap(2, 4, rng)
    login(cl, run, rng, user["id"], user["password"], mistype=mistype, role=role)
    run.nap(1, 4, rng)
    st = {"opened": set(), "next": {}}
    deadline = run.t0 + stop_at
    while time.time() < min(deadline, run.end) and not run.stop.is_set():
        reader_step(cl, run, rng, st, role, favourite, prefer_new_global, buckets)
    return cl, st


def persona_author(run, src, user, start, seed, mistype=False):
    rng = random.Random(seed)
    run.at(start)
    cl = Client(src, ua="kinto-http.js/14.0 (Firefox)")
    login(cl, run, rng, user["id"], user["password"], mistype=mistype, role="author")
    run.nap(1, 3, rng)
    st = {"opened": set(), "next": {}}
    mine = []            # (collection, id) created in this run
    journal = user["journal"]
    while time.time() < run.end and not run.stop.is_set():
        x = rng.random()
        if x < 0.35:
            reader_step(cl, run, rng, st, "author", buckets=["team-notes", "team-notes", "reading-list", "recipes"])
            continue
        if x < 0.55 or not mine:
            c = rng.choice(["notes", "notes", "meetings"])
            s, js, _ = cl.req("POST", rec_path("team-notes", c), {"data": {
                "title": f"{rng.choice(NOTE_TOPICS).title()} ({time.strftime('%b %d')})",
                "body": "Draft: " + " ".join(rng.sample(BOOK_WORDS, 6)),
                "author": user["id"]}}, role="author")
            if s == 201 and js:
                mine.append((c, js["data"]["id"]))
                run.nap(1, 3, rng)
                cl.req("GET", rec_path("team-notes", c, js["data"]["id"]), role="author")
        elif x < 0.72:
            c, rid = rng.choice(mine)
            cl.req("PATCH", rec_path("team-notes", c, rid),
                   {"data": {"body": "Updated: " + " ".join(rng.sample(BOOK_WORDS, 8))}}, role="author")
            run.nap(1, 3, rng)
            cl.req("GET", rec_path("team-notes", c, rid), role="author")
        elif x < 0.80:
            c, rid = rng.choice(mine)
            cl.req("PUT", rec_path("team-notes", c, rid), {"data": {
                "title": f"{rng.choice(NOTE_TOPICS).title()} (final)", "body": "Final version.",
                "author": user["id"]}}, role="author")
        elif x < 0.88 and len(mine) >= 2:
            c, rid = mine.pop(0)
            cl.req("DELETE", rec_path("team-notes", c, rid), role="author")
        else:
            if rng.random() < 0.5:
                cl.req("GET", rec_path("journals", journal) + "?_sort=-last_modified", role="author")
            else:
                s, js, _ = cl.req("POST", rec_path("journals", journal),
                                  {"data": {"title": rng.choice(JOURNAL_WORDS), "text": "..."}}, role="author")
        run.nap(2, 6, rng)


def persona_integration(run, src, svc, bucket, coll, fixed, start, seed, period=(3, 5)):
    rng = random.Random(seed)
    run.at(start)
    cl = Client(src, svc["id"], svc["password"], ua="kinto-sync-job/2.3 python-requests/2.32")
    cl.req("GET", "/v1/", role="integration")
    since = None
    k = 0
    while time.time() < run.end and not run.stop.is_set():
        path = rec_path(bucket, coll) + ("?_since=%s&_sort=-last_modified" % since if since else "?_sort=-last_modified")
        s, js, rh = cl.req("GET", path, role="integration")
        et = rh.get("etag", "").strip('"')
        if s == 200 and et.isdigit():
            since = et
        for _ in range(4):
            rid = fixed[k % len(fixed)]
            k += 1
            cl.req("GET", rec_path(bucket, coll, rid), role="integration")
        run.nap(*period, rng)


def persona_office(run, users, start, seed):
    """One browser tab after another on the NAT'ed office address, different users."""
    rng = random.Random(seed)
    run.at(start)
    while time.time() < run.end and not run.stop.is_set():
        u = rng.choice(users)
        cl = Client(OFFICE, ua=rng.choice(["Mozilla/5.0 kinto-admin/3.1", "kinto-http.js/14.0 (Chrome)"]))
        login(cl, run, rng, u["id"], u["password"], mistype=rng.random() < 0.12, role="office")
        st = {"opened": set(), "next": {}}
        for _ in range(rng.randint(3, 7)):
            if time.time() >= run.end or run.stop.is_set():
                break
            reader_step(cl, run, rng, st, "office")
        cl.close()
        run.nap(3, 10, rng)


def persona_distributed(run, src, names, password, first_at, end_at, seed):
    rng = random.Random(seed)
    run.at(first_at)
    for n in names:
        if run.now() > end_at or time.time() >= run.end:
            break
        cl = Client(src, n, password, ua="python-requests/2.31.0")
        cl.req("GET", "/v1/buckets", role="dist")
        cl.close()
        run.nap(20, 25, rng)


# ----------------------------------------------------------------------------
def run_cmd(cmd, timeout, cwd):
    return kit.run_tool(cmd, timeout=timeout, cwd=cwd)[1]


def attacks(run, users_by_role):
    a = run.args
    wd = a.workdir
    base = f"http://{SERVER}:{PORT}"
    lab = run.labels
    sc = a.scale

    # -- burst (~310 s): the bird-watcher reader hammers the record it keeps opening
    run.at(310 * sc)
    bu = USERS[U_BURST]
    target = rec_path("field-guide", "birds", "barn-owl")
    # four keep-alive connections (like wrk -c4), each paced with curl --rate so the
    # burst lasts ~15 s (curl ignores --rate under --parallel; unpaced, Kinto answers
    # ~375 req/s here and 3000 requests would be over in 8 s)
    per = a.burst_n // 4
    with open(os.path.join(wd, "burst.curl"), "w") as f:
        for i in range(per):
            f.write(f'url = "{base}{target}"\noutput = "/dev/null"\n')
    cmd = ["curl", "-s", "--interface", BURST, "--rate", f"{a.burst_rate}/s",
           "-u", f"{bu['id']}:{bu['password']}", "-H", "Accept: application/json",
           "-K", os.path.join(wd, "burst.curl")]
    t = run.now()
    procs = [subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(4)]
    rcs = []
    for p in procs:
        try:
            rcs.append(p.wait(timeout=max(1.0, t + a.burst_max_s - run.now())))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rcs.append("killed")
    lab.append({"kind": "burst", "client": BURST, "start_s": round(t, 2),
                "tool": f"4 x curl --rate {a.burst_rate}/s -u <bird-watcher's credentials> -K "
                        f"({per} x GET {target}) in parallel, 4 keep-alive connections "
                        f"(like wrk -c4 -d15s); rc {rcs}"})

    # -- credential stuffing (~340 s): hydra, 70 user names x 1 password, fresh address
    run.at(340 * sc)
    real = [u["id"] for u in USERS[32:47]]
    fake = []
    r = random.Random(7)
    while len(fake) < 55:
        f, l = r.choice(FIRST + ["john", "anna", "mike", "kate"]), r.choice(LAST + ["jones", "miller"])
        n = r.choice([f"{f}.{l}@{DOMAIN}", f"{f[0]}{l}@{DOMAIN}", f"{f}.{l}@gmail.com", f"{f}{r.randint(1, 99)}@yahoo.com"])
        if n not in fake and n not in real:
            fake.append(n)
    stuff_users = real + fake
    r.shuffle(stuff_users)
    open(os.path.join(wd, "stuff_users.txt"), "w").write("\n".join(stuff_users) + "\n")
    cmd = ["ip", "netns", "exec", "ki-stuff", "hydra", "-I", "-L", os.path.join(wd, "stuff_users.txt"),
           "-p", "Summer2025!", "-t", "4", "-s", str(PORT), SERVER, "http-get", "/v1/buckets"]
    t = run.now()
    rc = run_cmd(cmd, 120, wd)
    lab.append({"kind": "credential_stuffing", "client": STUFF, "start_s": round(t, 2),
                "tool": f"hydra -L stuff_users.txt ({len(stuff_users)} e-mails) -p Summer2025! -t 4 "
                        f"http-get /v1/buckets (HTTP Basic) (rc {rc})"})

    # -- brute force (~370 s): hydra, one real user x 70 passwords, fresh address
    run.at(370 * sc)
    victim = USERS[U_READERS[4]]
    common = ["123456", "password", "123456789", "12345678", "qwerty", "abc123", "111111",
              "letmein", "welcome", "monkey", "dragon", "iloveyou", "sunshine", "princess",
              "football", "baseball", "master", "shadow", "superman", "trustno1", "hello123",
              "Password1", "Password1!", "Welcome1", "Welcome2025", "Summer2025!", "Winter2025!",
              "Spring2025!", "Autumn2025!", "Qwerty123", "Passw0rd", "P@ssw0rd", "admin123",
              "changeme", "secret", "freedom", "whatever", "starwars", "batman", "pokemon",
              "azerty", "zaq12wsx", "1q2w3e4r", "qazwsx", "asdfgh", "123qwe", "passw0rd!",
              "Northwind1", "Northwind2025", "northwind", "kinto", "Kinto2025!", "mozilla",
              "firefox", "Maria2025", "maria123", "Maria!2025", "lopez123", "Lopez2025!",
              "iloveyou1", "letmein1", "Welcome!", "Pa55word", "Spring2026!", "Winter2026!",
              "Summer2026!", "Autumn2026!", "Company1", "Company2025", "Temp1234"]
    assert victim["password"] not in common
    open(os.path.join(wd, "brute_pw.txt"), "w").write("\n".join(common) + "\n")
    cmd = ["ip", "netns", "exec", "ki-brute", "hydra", "-I", "-l", victim["id"], "-P",
           os.path.join(wd, "brute_pw.txt"), "-t", "4", "-s", str(PORT), SERVER, "http-get", "/v1/buckets"]
    t = run.now()
    rc = run_cmd(cmd, 150, wd)
    lab.append({"kind": "brute_force", "client": BRUTE, "start_s": round(t, 2),
                "tool": f"hydra -l {victim['id']} -P brute_pw.txt ({len(common)} passwords) -t 4 "
                        f"http-get /v1/buckets (HTTP Basic) (rc {rc})"})

    # -- endpoint scan (~400 s): ffuf with dirb's common.txt
    run.at(400 * sc)
    cmd = ["ip", "netns", "exec", "ki-scan", "ffuf", "-s", "-w", "/usr/share/dirb/wordlists/common.txt",
           "-u", f"{base}/v1/FUZZ", "-t", "2", "-p", "0.02", "-maxtime", "15", "-mc", "all"]
    t = run.now()
    rc = run_cmd(cmd, 40, wd)
    lab.append({"kind": "endpoint_scan", "client": SCAN, "start_s": round(t, 2),
                "tool": f"ffuf -w /usr/share/dirb/wordlists/common.txt -u {base}/v1/FUZZ -t 2 -p 0.02 -maxtime 15 -mc all (rc {rc})"})


def enumeration(run, cl, rng):
    """BOLA walk over other users' objects in Kinto's id styles (names, slugs, UUIDs)."""
    man = run.man
    targets = []
    names = [USERS[i]["journal"] for i in U_JOURNALS if i != U_ENUM]
    guesses = ["admin", "root", "test", "ops", "finance", "hr", "ceo", "backup", "secrets",
               "john-smith", "jane-doe", "support", "sales", "legal", "dev", "staging"]
    for n in names + guesses:
        targets.append(rec_path("journals", n))                              # 403
    for n, ids in man["journals"].items():
        if n != USERS[U_ENUM]["journal"]:
            targets.extend(rec_path("journals", n, rid) for rid in ids[:1])   # 403
    for key in ["team-notes/notes", "team-notes/meetings"]:
        b, c = key.split("/")
        targets.extend(rec_path(b, c, rid) for rid in man["records"][key])   # 200 (others' notes)
    for _ in range(35):
        targets.append(rec_path("team-notes", "notes", str(uuid.UUID(int=rng.getrandbits(128), version=4))))  # 404
    slugs = ["pancakes", "lasagna-bolognese", "pad-thai", "tiramisu", "brownies", "paella",
             "ramen", "gazpacho", "caesar-salad", "greek-salad", "pizza", "sushi", "burrito",
             "moussaka", "cheesecake", "lemon-tart", "apple-pie", "fish-and-chips", "curry",
             "tom-yum", "minestrone", "crepes", "waffles", "porridge", "omelette"]
    for s in slugs:
        c = rng.choice(list(DISHES))
        targets.append(rec_path("recipes", c, s))                             # 200 or 404
    for i in range(25):
        u = USERS[(i * 7) % len(USERS)]
        targets.append(f"/v1/accounts/{quote(u['id'])}")                     # 403
    for n in ["settings", "feature-flags", "secrets-rotation", "billing", "tokens"]:
        targets.append(rec_path("ops-config", n))                             # 403
    rng.shuffle(targets)
    deadline = run.t0 + run.args.scale * 430 + 55
    n = 0
    for p in targets:
        if time.time() >= min(deadline, run.end):
            break
        cl.req("GET", p, role="enum")
        n += 1
        run.nap(0.12, 0.26, rng)
    return n


def unusual(run, cl, rng):
    man = run.man
    me = USERS[U_UNUSUAL]
    other_notes = [f"{c}" for u, l in man["notes_by"].items() if u != me["id"] for c in l]
    victim = USERS[U_READERS[1]]
    other_journal = USERS[U_AUTHORS[0]]["journal"]
    seq = [
        ("GET", "/v1/__api__", None),
        ("GET", "/v1/accounts", None),
        ("GET", "/v1/permissions", None),
        ("GET", rec_path("city-archive", "photos") + "?_limit=10000", None),
        ("GET", "/v1/buckets/team-notes/history?_limit=10000", None),
        ("GET", "/v1/buckets/ops-config", None),
        ("GET", "/v1/buckets/ops-config/collections", None),
        ("GET", "/v1/admin/", None),
        ("PUT", rec_path("team-notes", *other_notes[0].split("/")), {"data": {"title": "pwned", "body": "x"}}),
        ("PATCH", rec_path("team-notes", *other_notes[1].split("/")), {"data": {"title": "edited by someone else"}}),
        ("DELETE", rec_path("team-notes", *other_notes[2].split("/")), None),
        ("PATCH", f"/v1/accounts/{quote(victim['id'])}", {"data": {"password": "takeover-123"}}),
        ("DELETE", f"/v1/accounts/{quote(victim['id'])}", None),
        ("PUT", rec_path("journals", other_journal, man["journals"][other_journal][0]), {"data": {"title": "x"}}),
        ("DELETE", "/v1/buckets/recipes", None),
        ("PATCH", "/v1/buckets/team-notes", {"permissions": {"write": ["system.Authenticated"]}}),
        ("POST", "/v1/batch", {"defaults": {"method": "DELETE"},
                               "requests": [{"path": "/buckets/team-notes/collections/" + p.replace("/", "/records/", 1)}
                                            for p in other_notes[3:28]]}),
        ("GET", "/v1/buckets/recipes/snapshot/collections/mains@%d", None),
        ("DELETE", "/v1/__user_data__/" + quote("account:" + victim["id"]), None),
    ]
    calls = []
    for m, p, body in seq:
        if time.time() >= run.end:
            break
        if "%d" in p:
            p = p % int((time.time() - 60) * 1000)     # the collection as it was a minute ago
        s, js, rh = cl.req(m, p, body, role="unusual")
        calls.append(f"{m} {p.split('?')[0]}{'?' + p.split('?')[1] if '?' in p else ''} -> {s}")
        run.nap(1.0, 2.5, rng)
    return calls


def persona_established(run, src, user, start, attack_at, kind, seed):
    """A reader during learning who later turns into the enumeration / unusual client."""
    rng = random.Random(seed)
    cl, st = persona_reader(run, src, user, start, attack_at, role=kind + "-benign", seed=seed)
    run.at(attack_at)
    t = run.now()
    if kind == "enum":
        n = enumeration(run, cl, rng)
        run.labels.append({"kind": "object_enumeration", "client": src, "start_s": round(t, 2),
                           "tool": f"python http.client GET walk over {n} other users' objects: "
                                   "journals/{name}/records (403), records by harvested UUIDs (200), "
                                   "guessed UUIDs and recipe slugs (404/200), accounts/{email} (403), ~5 req/s"})
    else:
        calls = unusual(run, cl, rng)
        run.labels.append({"kind": "unusual_endpoint", "client": src, "start_s": round(t, 2),
                           "tool": "python http.client: " + "; ".join(calls)})
    # back to normal browsing until the end
    while time.time() < run.end and not run.stop.is_set():
        reader_step(cl, run, rng, st, kind + "-after")


def do_run(args):
    man = json.load(open(args.manifest))
    run = Run(args, man)
    sc = args.scale
    personas = kit.Personas()
    th = personas.add

    # readers
    for i, src in enumerate(READERS):
        u = USERS[U_READERS[i]]
        th(persona_reader, run, src, u, i * 2.7 * sc, 10 ** 9, mistype=src in MISTYPERS, seed=100 + i)
    for i, src in enumerate(AUTHORS):
        th(persona_author, run, src, USERS[U_AUTHORS[i]], (1.5 + i * 3.1) * sc, 200 + i,
           mistype=src in MISTYPERS)
    th(persona_reader, run, SIGNUP_EARLY, NEW_USERS[0], 60 * sc, 10 ** 9, signup=True, seed=260)
    notes = man["records"]["team-notes/notes"][:24]
    mains = man["records"]["recipes/mains"][:16]
    th(persona_integration, run, INTEGRATIONS[0], SERVICE[0], "team-notes", "notes", notes, 0.8 * sc, 300)
    th(persona_integration, run, INTEGRATIONS[1], SERVICE[1], "recipes", "mains", mains, 4.0 * sc, 301, period=(4, 6))
    office_users = [USERS[i] for i in U_OFFICE]
    for k in range(3):
        th(persona_office, run, office_users, (2 + k * 7) * sc, 400 + k)
    # late-comers (first request after 300 s)
    th(persona_reader, run, LATE[0], USERS[U_LATE[0]], 306 * sc, 10 ** 9, prefer_new_global=True, seed=500)
    th(persona_reader, run, LATE[1], USERS[U_LATE[1]], 318 * sc, 10 ** 9, prefer_new_global=True, seed=501,
       buckets=["city-archive", "reading-list"])
    th(persona_reader, run, LATE[2], NEW_USERS[1], 333 * sc, 10 ** 9, signup=True, seed=502,
       prefer_new_global=True)
    # established clients that later attack
    fav = rec_path("field-guide", "birds", "barn-owl")
    th(persona_reader, run, BURST, USERS[U_BURST], 5 * sc, 10 ** 9, favourite=fav, seed=600,
       buckets=["field-guide", "field-guide", "recipes"])
    th(persona_established, run, ENUM, USERS[U_ENUM], 9 * sc, 430 * sc, "enum", 601)
    th(persona_established, run, UNUSUAL, USERS[U_UNUSUAL], 12 * sc, 480 * sc, "unusual", 602)
    # distributed credential stuffing: 12 fresh addresses, one new user name each ~20-25 s
    r = random.Random(99)
    names = []
    while len(names) < 12 * 14:
        f, l = r.choice(FIRST + ["peter", "linda", "mark", "julia"]), r.choice(LAST + ["taylor", "clark"])
        n = r.choice([f"{f}.{l}@{DOMAIN}", f"{f}.{l}@outlook.com", f"{f}_{l}{r.randint(1, 9)}@gmail.com"])
        if n not in names:
            names.append(n)
    dist_start = 320 * sc
    for k, src in enumerate(DIST):
        th(persona_distributed, run, src, names[k::12], "Spring2025!",
           dist_start + k * 22.0 / 12, 560 * sc, 700 + k)

    run.start()
    personas.start()
    att = threading.Thread(target=attacks, args=(run, None), daemon=True)
    att.start()
    # the distributed campaign's start: its first thread's first request
    att.join(timeout=args.duration * sc + 60)
    personas.join(run.end + 20)
    run.stop.set()

    log = sorted(Client.log)
    dist_times = [r[0] for r in log if r[1] in DIST]
    run.labels.append({"kind": "credential_stuffing", "scope": "global", "clients": DIST,
                       "start_s": round(min(dist_times) - run.t0, 2) if dist_times else None,
                       "tool": f"python http.client: {len(dist_times)} x GET /v1/buckets with Basic "
                               "<new e-mail each time>:Spring2025!, one new connection per attempt, "
                               "each address every 20-25 s"})
    with open(os.path.join(args.workdir, "requests.tsv"), "w") as f:
        for t, src, m, p, s, role in log:
            f.write(f"{t - run.t0:.3f}\t{src}\t{m}\t{p}\t{s}\t{role}\n")
    benign = READERS + AUTHORS + [SIGNUP_EARLY] + INTEGRATIONS + [OFFICE] + LATE
    routes = sorted({route_of(m, p) for _, src, m, p, s, role in log if route_of(m, p)}
                    | {"GET /v1/buckets"})
    kit.write_labels(
        args.labels, "kinto",
        server=args.server_desc,
        id_style="bucket and collection ids are names (recipes, team-notes, field-guide, per-user "
                    "journal collections like maria-lopez); record ids are server-generated UUIDs (POST) "
                    "or slug names chosen with PUT (barn-owl, lasagna-bolognese); account ids are e-mails "
                    "(maria.lopez@northwind.example) or service names (svc-sync)",
        login="HTTP Basic on every request (kinto.plugins.accounts, 'account' policy); clients 'log in' "
                 "with GET /v1/ then GET /v1/buckets: failure 401 {\"code\":401,\"errno\":104,\"error\":"
                 "\"Unauthorized\",\"message\":\"Please authenticate yourself to use this endpoint.\"} with "
                 "WWW-Authenticate: Basic realm=\"Realm\"; success 200 {\"data\":[{\"id\":\"recipes\",...}]}",
        benign=benign,
        attacks=run.labels,
        routes=routes,
    )
    print(f"t0={run.t0:.3f} requests={len(log)} (python clients); labels -> {args.labels}")


ROUTE_RES = [
    (r"^/v1/$", "/v1/"),
    (r"^/v1/__api__$", "/v1/__api__"),
    (r"^/v1/permissions$", "/v1/permissions"),
    (r"^/v1/batch$", "/v1/batch"),
    (r"^/v1/admin/$", "/v1/admin/"),
    (r"^/v1/accounts$", "/v1/accounts"),
    (r"^/v1/accounts/[^/]+$", "/v1/accounts/{id}"),
    (r"^/v1/__user_data__/[^/]+$", "/v1/__user_data__/{principal}"),
    (r"^/v1/buckets$", "/v1/buckets"),
    (r"^/v1/buckets/[^/]+$", "/v1/buckets/{id}"),
    (r"^/v1/buckets/[^/]+/history$", "/v1/buckets/{bucket_id}/history"),
    (r"^/v1/buckets/[^/]+/snapshot/collections/[^/]+@\d+$",
     "/v1/buckets/{bucket_id}/snapshot/collections/{collection_id}@{timestamp}"),
    (r"^/v1/buckets/[^/]+/collections$", "/v1/buckets/{bucket_id}/collections"),
    (r"^/v1/buckets/[^/]+/collections/[^/]+$", "/v1/buckets/{bucket_id}/collections/{id}"),
    (r"^/v1/buckets/[^/]+/collections/[^/]+/records$",
     "/v1/buckets/{bucket_id}/collections/{collection_id}/records"),
    (r"^/v1/buckets/[^/]+/collections/[^/]+/records/[^/]+$",
     "/v1/buckets/{bucket_id}/collections/{collection_id}/records/{id}"),
]


def route_of(method, path):
    p = path.split("?")[0]
    for rx, tpl in ROUTE_RES:
        if re.match(rx, p):
            return f"{method} {tpl}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["seed", "run"])
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--src", default=READERS[0])
    ap.add_argument("--workdir", default="/tmp")
    ap.add_argument("--labels", default="kinto.labels.json")
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--scale", type=float, default=1.0, help="timeline scale (1.0 = real)")
    ap.add_argument("--burst-n", type=int, default=2400)
    ap.add_argument("--burst-rate", type=int, default=40, help="per connection, requests/s")
    ap.add_argument("--burst-max-s", type=float, default=25)
    ap.add_argument("--server-desc", default="Kinto")
    args = ap.parse_args()
    if args.mode == "seed":
        seed(args)
    else:
        do_run(args)


if __name__ == "__main__":
    main()
