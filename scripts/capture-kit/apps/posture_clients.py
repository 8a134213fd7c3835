#!/usr/bin/env python3
"""The clients of the posture capture (scripts/capture-kit/apps/posture.sh): one
process per client namespace, ROLE `benign` (pw-cli) or `attacks` (pw-atk). Every
client binds its own source address (all on its namespace's veth); names resolve
through the namespace's private /etc/hosts (api/legacy/old/expired/expiring
.example.test). Fixed random seeds; timeline seconds from START (a wall-clock epoch
shared by both processes) x SCALE; every loop is bounded in count and time; every
request has a timeout.

Main API https://api.example.test (nginx TLS 1.2/1.3, the certificate verified):
python requests (urllib3) and httpx with an ssl context from
ssl.create_default_context, and curl: all three write SSLKEYLOGFILE. The TLS posture
hosts (old/expired/expiring) are reached with curl -k and no SSLKEYLOGFILE (their
traffic stays encrypted in the capture); the legacy host is cleartext HTTP.

Each request is logged as a JSON line to LOG: t (wall clock, before sending), ip,
who, phase, req ("GET /path?query"), host, cred (the credential kind sent), status,
tool.

Usage: posture_clients.py ROLE PLAN.json
PLAN.json (written by posture.sh): start, duration, scale, ca, data (posture data
JSON: users, api_keys, basic, legacy_api_keys, jwt_secret), log, leak (the victim's
token file), keys_curl (curl's SSLKEYLOGFILE), addresses per persona.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import ssl
import subprocess
import sys
import threading
import time

import httpx
import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from kit import Clock, Personas, bounded  # noqa: E402

ROLE = sys.argv[1]
PLAN = json.load(open(sys.argv[2]))
DATA = json.load(open(PLAN["data"]))
CA = PLAN["ca"]
API = "https://api.example.test"
LEGACY = "http://legacy.example.test"
END = float(PLAN["duration"])
clock = Clock(scale=float(PLAN["scale"]), duration=END)
clock.start()
clock.start_time = float(PLAN["start"])  # both processes share one timeline
clock.end = clock.start_time + END * clock.scale
LOG_LOCK = threading.Lock()
LOG = open(PLAN["log"], "a", buffering=1)
APP_UA = "crm-web/4.2 (python-requests)"


def log(ip, who, phase, req, host, cred, status, tool):
    rec = {"t": round(time.time(), 3), "s": round(clock.now(), 2), "ip": ip, "who": who, "phase": phase,
           "req": req, "host": host, "cred": cred, "status": status, "tool": tool}
    with LOG_LOCK:
        LOG.write(json.dumps(rec) + "\n")


class SourceAdapter(HTTPAdapter):
    """requests has no source address option; urllib3's pool manager has."""

    def __init__(self, ip, tls12=False, **kw):
        self.ip = ip
        self.tls12 = tls12
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.ip, 0)
        if self.tls12:
            # at most TLS 1.2; ssl.create_default_context honours SSLKEYLOGFILE
            ctx = ssl.create_default_context(cafile=CA)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            kw["ssl_context"] = ctx
        super().init_poolmanager(*args, **kw)


class Client:
    """One python requests.Session on one source address (one keep-alive
    connection), with a bearer token or an API key."""

    def __init__(self, ip, who, ua=APP_UA, base=API, tls12=False):
        self.ip, self.who, self.base = ip, who, base
        self.tls12 = tls12
        self.ua = ua
        self.s = None
        self.token = None
        self.key = None
        self.phase = "normal"

    def open(self, ip=None):
        self.close()
        if ip:
            self.ip = ip
        self.s = requests.Session()
        self.s.trust_env = False  # no proxies; REQUESTS_CA_BUNDLE ignored
        self.s.verify = CA
        self.s.headers["User-Agent"] = self.ua
        adapter = SourceAdapter(self.ip, tls12=self.tls12, pool_connections=1, pool_maxsize=1, max_retries=0)
        self.s.mount("https://", adapter)
        self.s.mount("http://", adapter)
        return self

    def close(self):
        if self.s is not None:
            self.s.close()
            self.s = None

    def call(self, method, path, cred=None, **kw):
        headers = kw.pop("headers", {})
        if cred is None:
            cred = "none"
            if self.key:
                headers["X-API-Key"] = self.key
                cred = "api_key"
            elif self.token:
                headers["Authorization"] = "Bearer " + self.token
                cred = "bearer"
        clock.mark_sent()
        t = time.time()
        try:
            r = self.s.request(method, self.base + path, headers=headers, timeout=8, **kw)
            status = r.status_code
            body = r.content
        except requests.RequestException as e:
            status, body = type(e).__name__, b""
        log(self.ip, self.who, self.phase, "%s %s" % (method, path), self.base.split("//")[1], cred, status,
            "python-requests")
        self.last = body
        return status, body, t

    def json(self):
        try:
            return json.loads(self.last)
        except ValueError:
            return {}

    def login(self, name):
        st, _, _ = self.call("POST", "/api/login", cred="password",
                             json={"username": name, "password": DATA["users"][name]})
        if st == 200:
            self.token = self.json().get("token")
        return st


def curl(ip, who, phase, args, req, host, cred, keylog=True, timeout=20):
    """One curl process (one connection); the status code or an error word."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    if keylog:
        env["SSLKEYLOGFILE"] = PLAN["keys_curl"]
    cmd = ["curl", "-s", "-o", "/dev/null", "--interface", ip, "-m", "10", "-w", "%{http_code}", *args]
    clock.mark_sent()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env).stdout.strip()
    except subprocess.TimeoutExpired:
        out = "timeout"
    log(ip, who, phase, req, host, cred, int(out) if out.isdigit() else out, "curl")
    return out


def nap(rng, lo, hi):
    return clock.nap(lo, hi, rng)


# ---- benign personas ------------------------------------------------------------------

def browse(c, rng, own_ids):
    """One ordinary action: a page or two of customers, a record, orders."""
    x = rng.random()
    if x < 0.35:
        per = rng.choice([10, 20, 25])
        for page in range(1, rng.randint(1, 3) + 1):
            c.call("GET", "/api/customers?page=%d&per_page=%d" % (page, per))
            if not nap(rng, 1, 4):
                return
    elif x < 0.7:
        c.call("GET", "/api/customers/%d" % rng.choice(own_ids))
    elif x < 0.9:
        c.call("GET", "/api/orders?limit=%d" % rng.choice([10, 25]))
        cur = c.json().get("next_cursor")
        if cur and rng.random() < 0.4 and nap(rng, 1, 3):
            c.call("GET", "/api/orders?limit=25&cursor=%s" % cur)
    else:
        c.call("GET", "/api/me")


def user(ip, name, seed, late=0.0, leak=None):
    """An ordinary user: sessions of a login (or, for the token-theft victim, one login
    kept all along), /api/me and 2-6 actions 3-15 s apart; 15-60 s between sessions."""
    rng = random.Random(seed)
    own_ids = [rng.randint(1, 600) for _ in range(12)]
    c = Client(ip, name)
    if not clock.at(late + rng.uniform(0, 25)):
        return
    for _ in bounded(40, clock):
        c.open()
        if leak is None or c.token is None:
            c.login(name)
            if leak is not None and c.token:
                with open(leak, "w") as fh:  # the token leaks (a log, a pasted curl line)
                    fh.write(c.token)
        c.call("GET", "/api/me")
        for _ in bounded(rng.randint(2, 6), clock):
            if not nap(rng, 3, 15):
                break
            browse(c, rng, own_ids)
        c.close()
        if not nap(rng, 15, 60):
            break


def roamer(ip_a, ip_b, name, seed, switch_s):
    """A phone: one login, the token kept; at switch_s it moves from ip_a (wifi) to
    ip_b (cellular) once, and ip_a goes quiet."""
    rng = random.Random(seed)
    own_ids = [rng.randint(1, 600) for _ in range(10)]
    c = Client(ip_a, name, ua="crm-mobile/7.3 (Android 14; okhttp-compatible)")
    if not clock.at(rng.uniform(0, 20)):
        return
    c.open()
    c.login(name)
    c.call("GET", "/api/me")
    moved = False
    for _ in bounded(200, clock):
        if not moved and clock.now() >= switch_s:
            c.open(ip_b)  # a new connection from the new address, the same token
            c.phase = "roamed"
            moved = True
            c.call("GET", "/api/me")
        if not nap(rng, 4, 14):
            break
        browse(c, rng, own_ids)
    c.close()


def office(ip, names, seed):
    """A NAT'ed office: several users, one session and token each, one address; its
    older client stack speaks TLS 1.2 at most."""
    def employee(k, name):
        rng = random.Random(seed + k)
        own_ids = [rng.randint(1, 600) for _ in range(10)]
        c = Client(ip, name, ua="crm-web/4.2 (Windows; office)", tls12=True)
        if not clock.at(rng.uniform(0, 60)):
            return
        c.open()
        c.login(name)
        c.call("GET", "/api/me")
        for _ in bounded(80, clock):
            if not nap(rng, 8, 35):
                break
            browse(c, rng, own_ids)
            if rng.random() < 0.08:  # lunch, a laptop lid: a new session later
                c.close()
                if not nap(rng, 10, 30):
                    break
                c.open()
                c.login(name)
        c.close()
    p = Personas()
    for k, name in enumerate(names):
        p.add(employee, k, name)
    p.start()
    p.join(clock.end + 20)


def heavy(ip, name, seed):
    """A back-office worker: one read every 2-3 s all along (its working set of
    records, the first pages, orders): heavy, but steady from start to end."""
    rng = random.Random(seed)
    ids = [rng.randint(1, 600) for _ in range(60)]
    c = Client(ip, name, ua="crm-backoffice/1.8 (python-requests)")
    if not clock.at(rng.uniform(1, 5)):
        return
    c.open()
    c.login(name)
    c.call("GET", "/api/me")
    for i in bounded(400, clock):
        x = rng.random()
        if x < 0.6:
            c.call("GET", "/api/customers/%d" % rng.choice(ids))
        elif x < 0.85:
            c.call("GET", "/api/customers?page=%d&per_page=20" % rng.randint(1, 5))
        else:
            c.call("GET", "/api/orders?limit=25")
        if not nap(rng, 2, 3):
            break
    c.close()


def health(ip):
    """A health checker: GET /health every 5 s, a fresh TLS connection each (curl)."""
    rng = random.Random(7)
    if not clock.at(rng.uniform(0, 2)):
        return
    for i in bounded(int(END / 5) + 2, clock):
        curl(ip, "health-checker", "normal", ["--cacert", CA, "-A", "uptime-monitor/2.0", API + "/health"],
             "GET /health", "api.example.test", "none")
        if not clock.at(2 + 5 * (i + 1)):
            break


def integration_httpx(ip, key, seed):
    """An API-key integration (httpx, one keep-alive client): every 30 s the next
    orders since its cursor, every 60 s the first 10 customers."""
    rng = random.Random(seed)
    ctx = ssl.create_default_context(cafile=CA)  # honours SSLKEYLOGFILE
    transport = httpx.HTTPTransport(local_address=ip, verify=ctx, retries=0)
    hc = httpx.Client(transport=transport, base_url=API, timeout=8,
                      headers={"X-API-Key": key, "User-Agent": "erp-sync/5.0 httpx"})
    if not clock.at(rng.uniform(3, 10)):
        return
    cursor = None

    def get(path):
        clock.mark_sent()
        try:
            r = hc.get(path)
            st, body = r.status_code, r.content
        except httpx.HTTPError as e:
            st, body = type(e).__name__, b""
        log(ip, "integration-erp", "normal", "GET " + path, "api.example.test", "api_key", st, "httpx")
        try:
            return json.loads(body)
        except ValueError:
            return {}

    get("/api/me")
    for i in bounded(int(END / 30) + 2, clock):
        j = get("/api/orders?limit=50" + ("&cursor=" + cursor if cursor else ""))
        cursor = j.get("next_cursor") or cursor
        if i % 2 == 0 and clock.nap(0.5, 2, rng):
            get("/api/customers?page=1&per_page=10")
        if not clock.at(10 + 30 * (i + 1) + rng.uniform(-1, 1)):
            break
    hc.close()


def integration_curl(ip, key, seed):
    """An API-key integration (curl from cron, a fresh connection each): every 20 s
    the newest five customers."""
    rng = random.Random(seed)
    if not clock.at(rng.uniform(5, 12)):
        return
    args = ["--cacert", CA, "--tls-max", "1.2", "-A", "mailer-sync/0.9", "-H", "X-API-Key: " + key]
    curl(ip, "integration-mailer", "normal", args + [API + "/api/me"], "GET /api/me", "api.example.test", "api_key")
    for i in bounded(int(END / 20) + 2, clock):
        curl(ip, "integration-mailer", "normal", args + [API + "/api/customers?page=1&per_page=5"],
             "GET /api/customers?page=1&per_page=5", "api.example.test", "api_key")
        if not clock.at(12 + 20 * (i + 1) + rng.uniform(-1, 1)):
            break


def legacy_basic(ip, name, seed, posts):
    """A legacy client: HTTP Basic over cleartext to the invoice service, every
    20-45 s (python requests; `posts` also uploads an invoice now and then)."""
    rng = random.Random(seed)
    c = Client(ip, "legacy-" + name, ua="invoice-cron/1.2 (python-requests)", base=LEGACY)
    c.open()
    if not clock.at(rng.uniform(2, 20)):
        return
    auth = (name, DATA["basic"][name])
    c.call("GET", "/v1/status")
    for i in bounded(40, clock):
        c.call("GET", "/v1/invoices?page=%d" % rng.randint(1, 20), cred="basic", auth=auth)
        if posts and rng.random() < 0.4 and clock.nap(1, 3, rng):
            c.call("POST", "/v1/invoices", cred="basic", auth=auth,
                   json={"customer_id": rng.randint(1, 600), "amount": round(rng.uniform(10, 500), 2)})
        if not nap(rng, 20, 45):
            break
    c.close()


def legacy_basic_curl(ip, name, seed):
    """A legacy shell script: curl -u (Basic) over cleartext, every 30-50 s."""
    rng = random.Random(seed)
    if not clock.at(rng.uniform(5, 25)):
        return
    for i in bounded(30, clock):
        curl(ip, "legacy-" + name, "normal", ["-u", "%s:%s" % (name, DATA["basic"][name]), "-A", "legacy-report.sh",
                                              LEGACY + "/v1/invoices?page=%d" % (i + 1)],
             "GET /v1/invoices?page=%d" % (i + 1), "legacy.example.test", "basic", keylog=False)
        if not nap(rng, 30, 50):
            break


def legacy_query_key(ip, key, seed):
    """A legacy integration that puts its key in the URL: ?api_key=... (cleartext)."""
    rng = random.Random(seed)
    c = Client(ip, "legacy-querykey", ua="partner-feed/3.1 (python-requests)", base=LEGACY)
    c.open()
    if not clock.at(rng.uniform(3, 15)):
        return
    for i in bounded(30, clock):
        c.call("GET", "/v1/invoices?api_key=%s&page=%d" % (key, rng.randint(1, 30)), cred="api_key_query")
        if not nap(rng, 25, 40):
            break
    c.close()


def tls_poster(ip, who, host, extra, seed, lo, hi):
    """curl -k to a TLS posture host (no key log), every lo-hi s."""
    rng = random.Random(seed)
    if not clock.at(rng.uniform(2, 20)):
        return
    for i in bounded(40, clock):
        path = "/v1/status" if rng.random() < 0.7 else "/v1/invoices?page=%d" % rng.randint(1, 9)
        args = ["-k", "-A", "ops-probe/1.0", *extra]
        cred = "none"
        if path.startswith("/v1/invoices"):
            args += ["-u", "reports:%s" % DATA["basic"]["reports"]]
            cred = "basic"
        curl(ip, who, "normal", args + ["https://%s%s" % (host, path)], "GET " + path, host, cred, keylog=False)
        if not nap(rng, lo, hi):
            break


def run_benign():
    P = PLAN["benign"]
    p = Personas()
    for k, (ip, name) in enumerate(P["users"]):
        p.add(user, ip, name, 1000 + k)
    for k, (ip, name, start) in enumerate(P["late_users"]):
        p.add(user, ip, name, 1100 + k, late=start)
    ip, name = P["victim"]
    p.add(user, ip, name, 1200, leak=PLAN["leak"])
    for k, (a, b, name, switch_s) in enumerate(P["roamers"]):
        p.add(roamer, a, b, name, 1300 + k, switch_s)
    ip, names = P["office"]
    p.add(office, ip, names, 1400)
    ip, name = P["heavy"]
    p.add(heavy, ip, name, 1500)
    p.add(health, P["health"])
    ip, key = P["integration_httpx"]
    p.add(integration_httpx, ip, key, 1600)
    ip, key = P["integration_curl"]
    p.add(integration_curl, ip, key, 1700)
    for k, (ip, name, posts) in enumerate(P["legacy_basic"]):
        p.add(legacy_basic, ip, name, 1800 + k, posts)
    ip, name = P["legacy_basic_curl"]
    p.add(legacy_basic_curl, ip, name, 1850)
    ip, key = P["legacy_query_key"]
    p.add(legacy_query_key, ip, key, 1900)
    for k, (ip, who, host, extra, lo, hi) in enumerate(P["tls_posture"]):
        p.add(tls_poster, ip, who, host, extra, 2000 + k, lo, hi)
    p.start()
    p.join(clock.end + 30)
    return p.errors


# ---- attacks --------------------------------------------------------------------------

def scraper(ip, name, exfil_s):
    """An ordinary user first (a page, a record now and then); at exfil_s its script
    pages through the whole customer collection, 50 a page, until an empty page."""
    rng = random.Random(3000)
    own_ids = [rng.randint(1, 600) for _ in range(8)]
    c = Client(ip, name)
    if not clock.at(rng.uniform(2, 10)):
        return
    c.open()
    c.login(name)
    c.call("GET", "/api/me")
    for _ in bounded(40, clock, until=exfil_s - 5):
        pause = min(rng.uniform(15, 35), exfil_s - 3 - clock.now())  # never past exfil_s
        if pause <= 0 or not clock.wait(pause * clock.scale):
            break
        if rng.random() < 0.5:
            c.call("GET", "/api/customers?page=%d&per_page=20" % rng.randint(1, 2))
        else:
            c.call("GET", "/api/customers/%d" % rng.choice(own_ids))
    if not clock.at(exfil_s):
        return
    c.phase = "exfil"
    c.ua = c.s.headers["User-Agent"] = requests.utils.default_user_agent()  # the script
    for page in bounded(40, clock):
        st, _, _ = c.call("GET", "/api/customers?page=%d&per_page=50" % (page + 1))
        if st != 200 or not c.json().get("customers"):
            break
        if not nap(rng, 0.3, 0.9):
            break
    c.phase = "after"
    c.close()


def thief(k, ip, start_s):
    """The stolen token from another address: a handful of requests."""
    rng = random.Random(3100 + k)
    if not clock.at(start_s):
        return
    try:
        token = open(PLAN["leak"]).read().strip()
    except OSError:
        token = ""
    if not token:
        log(ip, "thief%d" % k, "stolen_token", "-", "-", "-", "no leaked token", "-")
        return
    paths = ["/api/me", "/api/customers?page=1&per_page=50", "/api/customers/%d" % rng.randint(1, 600),
             "/api/orders?limit=50", "/api/customers?page=2&per_page=50", "/api/customers/%d" % rng.randint(1, 600)]
    n = rng.randint(3, 6)
    if k % 2 == 0:
        c = Client(ip, "thief%d" % k, ua=requests.utils.default_user_agent())
        c.token = token
        c.phase = "stolen_token"
        c.open()
        for path in paths[:n]:
            c.call("GET", path)
            if not nap(rng, 1, 4):
                break
        c.close()
    else:
        for path in paths[:n]:
            curl(ip, "thief%d" % k, "stolen_token",
                 ["--cacert", CA, "-H", "Authorization: Bearer " + token, API + path],
                 "GET " + path, "api.example.test", "bearer")
            if not nap(rng, 1, 4):
                break


def cycler(ip, keys, start_s):
    """One address trying 30 API keys one after another (2-4 requests each, one
    keep-alive connection)."""
    rng = random.Random(3200)
    if not clock.at(start_s):
        return
    c = Client(ip, "key-cycler", ua="python-requests/2.34.2")
    c.phase = "key_cycling"
    c.open()
    for k in bounded(len(keys), clock):
        c.key = keys[k]
        paths = ["/api/me", "/api/customers?page=1&per_page=10", "/api/orders?limit=10", "/api/customers/%d" % rng.randint(1, 600)]
        for path in paths[:rng.randint(2, 4)]:
            c.call("GET", path)
            if not nap(rng, 0.3, 1.0):
                break
        if not nap(rng, 0.8, 1.8):
            break
    c.close()


def unsigned_token(sub, role):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return "%s.%s." % (b64({"alg": "none", "typ": "JWT"}), b64({"sub": sub, "role": role, "iat": now, "exp": now + 3600}))


def expired_token(sub):
    """A properly signed token of last week (found in an old log): exp long past."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    iat = int(time.time()) - 8 * 86400
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64(json.dumps({"sub": sub, "role": "agent", "iat": iat, "exp": iat + 3600, "jti": "old-log-7f3a"},
                       separators=(",", ":")).encode())
    sig = hmac.new(DATA["jwt_secret"].encode(), ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64(sig))


def jwt_none(ip, times):
    """alg:none tokens: GET /api/me answers 200 (the flaw), another route 401."""
    c = Client(ip, "jwt-alg-none", ua="python-requests/2.34.2")
    c.phase = "jwt_alg_none"
    for at in times:
        if not clock.at(at):
            return
        c.open()
        c.token = unsigned_token("admin", "admin")
        c.call("GET", "/api/me", cred="bearer_alg_none", headers={"Authorization": "Bearer " + c.token})
        clock.wait(1.0 * clock.scale)
        c.call("GET", "/api/customers?page=1&per_page=10", cred="bearer_alg_none",
               headers={"Authorization": "Bearer " + c.token})
        c.close()


def jwt_expired(ip, times):
    """A signed but expired token: GET /api/me answers 200 (the flaw), another 401."""
    token = expired_token("user07")
    for at in times:
        if not clock.at(at):
            return
        for path in ["/api/me", "/api/orders?limit=10"]:
            curl(ip, "jwt-expired", "jwt_expired", ["--cacert", CA, "--tls-max", "1.2", "-H", "Authorization: Bearer " + token, API + path],
                 "GET " + path, "api.example.test", "bearer_expired")
            clock.wait(1.0 * clock.scale)


def run_attacks():
    A = PLAN["attacks"]
    p = Personas()
    ip, name, at = A["scraper"]
    p.add(scraper, ip, name, at)
    ips, at, spread = A["thieves"]
    rng = random.Random(3300)
    starts = sorted(at + rng.uniform(0, spread) for _ in ips)
    starts[0] = at
    for k, ip in enumerate(ips):
        p.add(thief, k, ip, starts[k])
    ip, at = A["cycler"]
    p.add(cycler, ip, A["cycler_keys"], at)
    ip, times = A["jwt_none"]
    p.add(jwt_none, ip, times)
    ip, times = A["jwt_expired"]
    p.add(jwt_expired, ip, times)
    p.start()
    p.join(clock.end + 30)
    return p.errors


if __name__ == "__main__":
    errors = run_benign() if ROLE == "benign" else run_attacks()
    for e in errors:
        print("persona failed:", e, file=sys.stderr)
    LOG.close()
    sys.exit(1 if errors else 0)
