#!/usr/bin/env python3
"""Benign HTTPS clients for the labelled TLS capture (scripts/capture-kit/apps/tls-attacks.sh).

Every client binds its own source address (all on the client namespace's veth) and
talks to https://api.example.test/ (the namespace's /etc/hosts points it at the
server), verifying the throwaway certificate CA_FILE. Fixed random seeds; times are
seconds from the start of this script (x SCALE, the kit's --scale).

Personas:
  users    python requests.Session (urllib3 keep-alive: one TLS connection reused),
           a login at the start of each session (some mistype twice first), then
           1-3 API calls every 5-20 s; each session lasts 60-150 s, then a new one
           (a new connection) opens.
  browsers curl --http1.1 --parallel --parallel-max 6: a "page" of 10-30 distinct
           URLs over 4-6 parallel connections, then 20-60 s idle.
  pollers  curl, a fresh TLS connection per request every 2-5 s (health check, cron
           integration).
  office   one NAT'ed address, 10 users each with its own requests.Session; four of
           them mistype 1-3 times before the right password.
  switch   one of the users: at SWITCH_S it also runs 20 curl requests (a different
           TLS client), one fresh connection a second, then goes on as before.

Every loop stops at DURATION; every request has a timeout.

Usage: tls_clients.py CA_FILE DURATION SCALE PLAN.json
PLAN.json: {"users": [ip...], "browsers": [ip...], "pollers": [ip...],
            "office": ip, "switch": [ip, start_s], "log": path}
"""
import json
import random
import subprocess
import sys
import threading
import time

import requests
from requests.adapters import HTTPAdapter

CA, DURATION, SCALE = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
PLAN = json.load(open(sys.argv[4]))
BASE = "https://api.example.test"
T0 = time.monotonic()
LOG_LOCK = threading.Lock()
LOG = open(PLAN["log"], "w")


def now():
    return time.monotonic() - T0


def nap(seconds):
    """Sleeps SECONDS (scaled), never past the end."""
    time.sleep(max(0.0, min(seconds * SCALE, DURATION - now())))


def log(ip, what, status):
    with LOG_LOCK:
        LOG.write("%.3f %s %s %s\n" % (now(), ip, what, status))
        LOG.flush()


class SourceAdapter(HTTPAdapter):
    """requests has no source address option; urllib3's pool manager has."""

    def __init__(self, ip, **kw):
        self.ip = ip
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.ip, 0)
        super().init_poolmanager(*args, **kw)


class User:
    def __init__(self, ip, name, password):
        self.ip, self.name, self.password = ip, name, password
        self.s = None

    def open(self):
        self.close()
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify; no proxies
        self.s.verify = CA
        self.s.headers["User-Agent"] = "demo-app/2.1 (python-requests)"
        self.s.mount("https://", SourceAdapter(self.ip, pool_connections=1, pool_maxsize=1))

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None

    def call(self, method, path, **kw):
        try:
            r = self.s.request(method, BASE + path, timeout=5, **kw)
            log(self.ip, "%s %s" % (method, path), r.status_code)
            return r.status_code
        except requests.RequestException as e:
            log(self.ip, "%s %s" % (method, path), type(e).__name__)
            return None

    def login(self, password):
        return self.call("POST", "/api/login", json={"username": self.name, "password": password})

    def browse(self, rng, own_id):
        pages = ["/api/items", "/api/cart", "/api/profile", "/api/users/%d" % own_id,
                 "/api/items?page=%d" % rng.randint(1, 3), "/api/orders?page=%d" % rng.randint(1, 4)]
        if rng.random() < 0.05:
            self.call("POST", "/api/orders", json={"item": rng.randint(1, 50), "qty": rng.randint(1, 3)})
        else:
            self.call("GET", rng.choice(pages))


def curl(ip, args, timeout=30):
    cmd = ["curl", "-s", "-o", "/dev/null", "--cacert", CA, "--interface", ip, "-m", "10",
           "-w", "%{http_code} ", *args]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired:
        out = "timeout"
    return out.strip()


def user(ip, n, mistypes):
    rng = random.Random(100 + n)
    u = User(ip, "employee%d" % n, "pass-%d" % n)
    nap(rng.uniform(0, 5))
    first = True
    while now() < DURATION:
        u.open()
        if first and mistypes:
            for _ in range(mistypes):
                u.login("pass-%d" % (n + 1))  # a typo: a wrong password, 403
                nap(rng.uniform(2, 5))
        first = False
        u.login(u.password)
        until = now() + rng.uniform(60, 150) * SCALE
        while now() < min(until, DURATION):
            for _ in range(rng.randint(1, 3)):
                u.browse(rng, 10 + n)
                nap(rng.uniform(0.2, 1.0))
            nap(rng.uniform(5, 20))
        u.close()
        nap(rng.uniform(1, 5))


def switcher(ip, n, start):
    """A user whose machine starts a scripted loop with curl at START (evidence only)."""
    t = threading.Thread(target=user, args=(ip, n, 0), daemon=True)
    t.start()
    nap(max(0.0, start * SCALE - now()) / SCALE)
    log(ip, "tool switch: 20 curl requests start", "-")
    for i in range(20):
        if now() >= DURATION:
            break
        log(ip, "curl GET /api/items?sync=%d" % i, curl(ip, ["%s/api/items?sync=%d" % (BASE, i)]))
        nap(1)
    t.join(timeout=max(0.1, DURATION - now() + 10))


def browser(ip, k):
    rng = random.Random(200 + k)
    nap(rng.uniform(0, 20))
    while now() < DURATION:
        n = rng.randint(10, 30)
        urls = ["/api/profile", "/api/cart", "/static/1.bin?v=%d" % k, "/static/2.bin?v=%d" % k]
        urls += ["/api/items?page=%d" % i for i in range(1, (n - len(urls)) // 2 + 1)]
        urls += ["/api/users/%d" % rng.randint(1, 900) for _ in range(n - len(urls))]
        args = ["--http1.1", "--parallel", "--parallel-max", str(rng.randint(4, 6)),
                "-H", "User-Agent: Mozilla/5.0 (X11; Linux x86_64) demo-browser"]
        for url in urls:
            args += [BASE + url, "-o", "/dev/null"]
        log(ip, "page of %d requests" % len(urls), curl(ip, args, timeout=60))
        nap(rng.uniform(20, 60))


def poller(ip, k):
    rng = random.Random(300 + k)
    path = ["/health", "/api/orders?page=1"][k % 2]
    nap(rng.uniform(0, 2))
    while now() < DURATION:
        log(ip, "poll " + path, curl(ip, ["-H", "User-Agent: uptime-probe/1.0", BASE + path]))
        nap(rng.uniform(2, 5))


def office(ip):
    # One public address, 10 employees, each with its own session (connection).
    typos = {0: 2, 3: 1, 6: 3, 8: 1}

    def employee(k):
        rng = random.Random(400 + k)
        n = 40 + k
        u = User(ip, "employee%d" % n, "pass-%d" % n)
        nap(rng.uniform(0, 40))
        u.open()
        for _ in range(typos.get(k, 0)):
            u.login("Pass-%d" % n)  # caps lock: a wrong password
            nap(rng.uniform(2, 6))
        u.login(u.password)
        while now() < DURATION:
            u.browse(rng, n)
            nap(rng.uniform(8, 30))
            if rng.random() < 0.1:  # the laptop sleeps: a new session later
                u.close()
                nap(rng.uniform(5, 15))
                u.open()
                u.login(u.password)
        u.close()

    return [threading.Thread(target=employee, args=(k,), daemon=True) for k in range(10)]


threads = []
mistyping = {2: 2, 7: 2, 11: 1}  # users who mistype (twice, or once) before their first login
switch_ip, switch_s = PLAN["switch"]
for n, ip in enumerate(PLAN["users"]):
    if ip == switch_ip:
        threads.append(threading.Thread(target=switcher, args=(ip, n, switch_s), daemon=True))
    else:
        threads.append(threading.Thread(target=user, args=(ip, n, mistyping.get(n, 0)), daemon=True))
for k, ip in enumerate(PLAN["browsers"]):
    threads.append(threading.Thread(target=browser, args=(ip, k), daemon=True))
for k, ip in enumerate(PLAN["pollers"]):
    threads.append(threading.Thread(target=poller, args=(ip, k), daemon=True))
threads += office(PLAN["office"])
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=max(0.1, DURATION - now() + 15))
