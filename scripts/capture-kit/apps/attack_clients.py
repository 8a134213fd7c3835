#!/usr/bin/env python3
"""Benign client personas and script-driven attacks for the labelled detection capture.

Every client binds its own source address (all on the client namespace's veth), keeps
HTTP/1.1 connections alive like browsers and SDKs do, and follows a fixed random seed so
runs are alike. Times are seconds from the start of this script.

Usage: attack_clients.py SERVER_IP PORT DURATION PLAN.json
PLAN.json: {"benign": [ip...], "nat_office": ip, "steady": ip, "enumeration": [ip, start],
            "unusual": [ip, start], "distributed": [[ip...], start, stop]}
"""
import http.client
import json
import random
import sys
import threading
import time

SERVER, PORT, DURATION = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
PLAN = json.load(open(sys.argv[4]))
T0 = time.monotonic()


def now():
    return time.monotonic() - T0


class Client:
    def __init__(self, ip):
        self.ip = ip
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(SERVER, PORT, timeout=5, source_address=(self.ip, 0))
                h = {"User-Agent": "demo-app/2.1"}
                h.update(headers or {})
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                self.conn = None
        return None

    def login(self, user, password):
        body = json.dumps({"username": user, "password": password})
        return self.request("POST", "/api/login", body, {"Content-Type": "application/json"})


def browse(c, rng, own_id):
    pages = ["/api/items", "/api/cart", "/api/profile", f"/api/users/{own_id}", f"/api/items?page={rng.randint(1, 3)}"]
    if rng.random() < 0.01:
        c.request("GET", "/api/itemz")  # a typo in a bookmarked URL: 404
    else:
        c.request("GET", rng.choice(pages))


def benign(ip, n, until):
    rng = random.Random(n)
    c = Client(ip)
    time.sleep(rng.uniform(0, 3))
    user = f"employee{n}"
    if rng.random() < 0.3:
        c.login(user, "mistyped")  # one mistyped password, then the right one
    c.login(user, f"pass-{n}")
    while now() < until:
        browse(c, rng, 10 + n)
        time.sleep(rng.uniform(2, 6))


def nat_office(ip, until):
    # One public address, many employees logging in and working.
    rng = random.Random(99)
    c = Client(ip)
    n = 40
    while now() < until:
        if rng.random() < 0.05:
            c.login(f"employee{n}", "typo")
        c.login(f"employee{n}", f"pass-{n}")
        for _ in range(rng.randint(1, 3)):
            browse(c, rng, n)
        n = 40 + (n - 39) % 50
        time.sleep(rng.uniform(1, 4))


def steady(ip, until):
    # An always-busy integration: ~12 requests a second, every second.
    rng = random.Random(7)
    c = Client(ip)
    while now() < until:
        c.request("GET", rng.choice(["/api/items", f"/api/users/{rng.randint(1, 5)}", "/health"]))
        time.sleep(1 / 12)


def enumeration(ip, start, until):
    rng = random.Random(3)
    c = Client(ip)
    while now() < start:
        browse(c, rng, 500)
        time.sleep(rng.uniform(2, 6))
    for uid in range(1, 301):
        c.request("GET", f"/api/users/{uid}")
        time.sleep(0.05)
    while now() < until:
        browse(c, rng, 500)
        time.sleep(rng.uniform(2, 6))


def unusual(ip, start, until):
    rng = random.Random(4)
    c = Client(ip)
    c.login("employee95", "pass-95")
    while now() < start:
        browse(c, rng, 95)
        time.sleep(rng.uniform(1, 3))
    for _ in range(3):
        c.request("GET", "/admin/export")
        time.sleep(1)
    while now() < until:
        browse(c, rng, 95)
        time.sleep(rng.uniform(1, 3))


def distributed(ips, start, stop):
    # Low and slow: each address tries a new username every ~20 s, well under any
    # per-client threshold; together they are a stuffing campaign.
    def one(k, ip):
        rng = random.Random(1000 + k)
        c = Client(ip)
        time.sleep(max(0, start - now()) + rng.uniform(0, 20))
        i = 0
        while now() < stop:
            c.login(f"victim{k}-{i}@example.com", "Winter2025!")
            i += 1
            time.sleep(rng.uniform(15, 25))
    return [threading.Thread(target=one, args=(k, ip), daemon=True) for k, ip in enumerate(ips)]


threads = []
for n, ip in enumerate(PLAN["benign"]):
    threads.append(threading.Thread(target=benign, args=(ip, n, DURATION), daemon=True))
threads.append(threading.Thread(target=nat_office, args=(PLAN["nat_office"], DURATION), daemon=True))
threads.append(threading.Thread(target=steady, args=(PLAN["steady"], DURATION), daemon=True))
ip, start = PLAN["enumeration"]
threads.append(threading.Thread(target=enumeration, args=(ip, start, DURATION), daemon=True))
ip, start = PLAN["unusual"]
threads.append(threading.Thread(target=unusual, args=(ip, start, DURATION), daemon=True))
ips, start, stop = PLAN["distributed"]
threads += distributed(ips, start, stop)
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=max(0.1, DURATION - now() + 10))
