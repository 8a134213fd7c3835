#!/usr/bin/env python3
"""The servers of the posture capture (scripts/capture-kit/apps/posture.sh): python 3
stdlib only (http.server, ThreadingHTTPServer, HTTP/1.1 keep-alive).

MODE api: the customer API behind nginx (TLS), JSON:
  GET  /health                         200 {"status":"ok"}, no authentication
  POST /api/login                      JSON {username, password}: 200 {token: a JWT
                                       HS256, expires_in} or 401
  GET  /api/me                         the caller's profile (user: with its e-mail)
  GET  /api/customers?page=N&per_page=M  a page of the 600 customers (per_page at most
                                       MAX_PER_PAGE, so a body stays under 16 KiB); a
                                       page past the end is an empty list
  GET  /api/customers/{id}             one customer, 404 past 600
  GET  /api/orders?cursor=C&limit=L    cursor paging over 900 orders (no sensitive
                                       values: masked card, customer id)
  Every /api/ route but the login wants `Authorization: Bearer <JWT>` or
  `X-API-Key: <key>` (401 otherwise). Customers hold sensitive values: an e-mail
  address, a card number passing Luhn, an IBAN with valid check digits and a US
  SSN-like national id.
  THE DELIBERATE FLAW: GET /api/me decodes the JWT without checking it: it answers
  200 to a token with `alg: none` (no signature) and to one whose `exp` is past.
  Every other route checks the HS256 signature and exp (401).

MODE legacy: the legacy cleartext invoice service (and the backend of the TLS
  posture hosts old/expired/expiring behind nginx):
  GET  /v1/status                      200 {"status":"ok"}, no authentication
  GET  /v1/invoices?page=N             invoices (a billing e-mail each); wants HTTP
                                       Basic or an `api_key` query parameter (401)
  POST /v1/invoices                    201; Basic only

Ground truth: every response sent is logged as one JSON line in LOG: time, Host,
route template, status, body bytes, the credential kind the request used, and the
count of each sensitive kind in the whole body (found by scanning the body with
validating patterns: e-mail, Luhn, IBAN mod 97, SSN shape) beside the count the
server put in by construction.

Usage: posture_server.py api|legacy ADDRESS PORT DATA.json LOG
DATA.json: {"jwt_secret", "users": {name: password}, "api_keys": {key: name},
            "basic": {name: password}, "legacy_api_keys": [key]} (written by posture.sh)
"""
import base64
import hashlib
import hmac
import json
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MODE, ADDR, PORT, DATA, LOG = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
CFG = json.load(open(DATA))
SECRET = CFG["jwt_secret"].encode()
MAX_PER_PAGE = 50
N_CUSTOMERS = 600
N_ORDERS = 900
LOG_LOCK = threading.Lock()
LOG_FH = open(LOG, "a", buffering=1)

# ---- sensitive values -------------------------------------------------------------

FIRST = ["Anna", "Ben", "Carla", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas",
         "Klara", "Leon", "Mia", "Noah", "Olga", "Paul", "Rosa", "Simon", "Tina", "Uwe",
         "Vera", "Walter", "Xenia", "Yusuf", "Zoe"]
LAST = ["Adler", "Becker", "Cramer", "Dietrich", "Engel", "Fischer", "Graf", "Hoffmann",
        "Jansen", "Keller", "Lang", "Meyer", "Neumann", "Otto", "Peters", "Roth",
        "Schulz", "Turner", "Vogel", "Weber", "Young", "Ziegler"]
CITIES = [("Berlin", "DE"), ("Hamburg", "DE"), ("London", "GB"), ("Leeds", "GB"),
          ("Amsterdam", "NL"), ("Utrecht", "NL"), ("Boston", "US"), ("Denver", "US")]


def luhn_ok(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(prefix):
    for check in "0123456789":
        if luhn_ok(prefix + check):
            return prefix + check
    raise AssertionError


def iban_ok(iban):
    s = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


def iban_make(country, bban):
    s = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in s)) % 97
    iban = "%s%02d%s" % (country, check, bban)
    assert iban_ok(iban)
    return iban


def make_customers():
    rng = random.Random(2026)
    out = []
    for n in range(1, N_CUSTOMERS + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country = rng.choice(CITIES)
        brand = rng.choice(["visa", "mastercard", "amex"])
        if brand == "visa":
            pan = luhn_complete("4" + "".join(rng.choice("0123456789") for _ in range(14)))
        elif brand == "mastercard":
            pan = luhn_complete(rng.choice(["51", "52", "53", "54", "55"]) +
                                "".join(rng.choice("0123456789") for _ in range(13)))
        else:
            pan = luhn_complete(rng.choice(["34", "37"]) + "".join(rng.choice("0123456789") for _ in range(12)))
        bank = rng.choice(["DE", "GB", "NL"])
        if bank == "DE":
            iban = iban_make("DE", "".join(rng.choice("0123456789") for _ in range(18)))
        elif bank == "GB":
            iban = iban_make("GB", rng.choice(["NWBK", "BARC", "LOYD"]) +
                             "".join(rng.choice("0123456789") for _ in range(14)))
        else:
            iban = iban_make("NL", rng.choice(["ABNA", "RABO", "INGB"]) +
                             "".join(rng.choice("0123456789") for _ in range(10)))
        area = rng.choice([a for a in range(1, 900) if a != 666])
        ssn = "%03d-%02d-%04d" % (area, rng.randint(1, 99), rng.randint(1, 9999))
        out.append({
            "id": n,
            "name": "%s %s" % (first, last),
            "email": "%s.%s%d@mail.example.net" % (first.lower(), last.lower(), n),
            "tier": rng.choice(["basic", "basic", "plus", "gold"]),
            "city": city,
            "country": country,
            "card": {"brand": brand, "number": pan, "expiry": "%02d/%02d" % (rng.randint(1, 12), rng.randint(27, 31))},
            "iban": iban,
            "national_id": ssn,
            "created": "20%02d-%02d-%02d" % (rng.randint(19, 25), rng.randint(1, 12), rng.randint(1, 28)),
        })
    return out


def make_orders():
    rng = random.Random(2027)
    return [{"id": 10000 + n, "customer_id": rng.randint(1, N_CUSTOMERS),
             "total": round(rng.uniform(5, 900), 2), "currency": "EUR",
             "status": rng.choice(["paid", "paid", "shipped", "refunded"]),
             "card": "**** %04d" % rng.randint(0, 9999), "items": rng.randint(1, 6)}
            for n in range(N_ORDERS)]


CUSTOMERS = make_customers()
ORDERS = make_orders()

EMAIL_RX = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
CARD_RX = re.compile(rb"(?<![A-Za-z0-9])[0-9]{13,19}(?![A-Za-z0-9])")
IBAN_RX = re.compile(rb"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}(?![A-Za-z0-9])")
SSN_RX = re.compile(rb"(?<![0-9-])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])")


def scan(body):
    """The sensitive values in a whole body, by kind (what a DLP-style scan finds)."""
    return {
        "email": len(EMAIL_RX.findall(body)),
        "card": sum(1 for m in CARD_RX.findall(body) if luhn_ok(m.decode())),
        "iban": sum(1 for m in IBAN_RX.findall(body) if iban_ok(m.decode())),
        "national_id": len(SSN_RX.findall(body)),
    }


# ---- tokens -----------------------------------------------------------------------

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_sign(payload, secret=SECRET):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64url(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(secret, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, b64url(sig))


def jwt_decode(token):
    """(header, payload, signature ok, expired) or None for a malformed token."""
    try:
        h, p, s = token.split(".")
        header = json.loads(b64url_dec(h))
        payload = json.loads(b64url_dec(p))
    except (ValueError, TypeError):
        return None
    ok = False
    if header.get("alg") == "HS256" and s:
        want = hmac.new(SECRET, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
        try:
            ok = hmac.compare_digest(want, b64url_dec(s))
        except ValueError:
            ok = False
    expired = not isinstance(payload.get("exp"), (int, float)) or payload["exp"] < time.time()
    return header, payload, ok, expired


USERS = CFG["users"]
PROFILES = {name: {"id": i + 1, "username": name, "name": "%s %s" % (FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]),
                   "email": "%s@corp.example.com" % name, "role": "admin" if name == "admin" else "agent"}
            for i, name in enumerate(sorted(USERS))}
API_KEYS = CFG["api_keys"]
BASIC = CFG.get("basic", {})
LEGACY_KEYS = set(CFG.get("legacy_api_keys", []))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "customers-api/3.4" if MODE == "api" else "invoice-legacy/1.9"

    def log_message(self, *args):
        pass

    # ---- responses ----
    def send_json(self, status, obj, route, cred, built=None, extra=None):
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        rec = {"t": round(time.time(), 3), "mode": MODE, "host": (self.headers.get("Host") or "").split(":")[0],
               "client": self.headers.get("X-Real-IP") or self.client_address[0],
               "route": route, "status": status, "bytes": len(body), "cred": cred, "found": scan(body),
               "built": built or {"email": 0, "card": 0, "iban": 0, "national_id": 0}}
        with LOG_LOCK:
            LOG_FH.write(json.dumps(rec) + "\n")

    def unauthorized(self, route, cred, why):
        self.send_json(401, {"error": "unauthorized", "detail": why}, route, cred,
                       extra={"WWW-Authenticate": 'Bearer realm="api"' if MODE == "api" else 'Basic realm="legacy"'})

    # ---- authentication ----
    def principal(self, lenient):
        """(principal, credential kind, failure) for the API: X-API-Key or a bearer
        JWT. `lenient` (GET /api/me only): the flaw, the token is only decoded."""
        key = self.headers.get("X-API-Key")
        if key is not None:
            return (("key", API_KEYS[key]), "api_key", None) if key in API_KEYS else (None, "api_key", "unknown key")
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None, "none", "no credentials"
        d = jwt_decode(auth[7:].strip())
        if d is None:
            return None, "bearer", "malformed token"
        header, payload, sig_ok, expired = d
        sub = payload.get("sub")
        if sub not in PROFILES:
            return None, "bearer", "unknown subject"
        if lenient:
            cred = "bearer_alg_none" if header.get("alg") == "none" else ("bearer_expired" if expired else "bearer")
            return ("user", sub), cred, None
        if not sig_ok:
            return None, "bearer_alg_none" if header.get("alg") == "none" else "bearer", "bad signature"
        if expired:
            return None, "bearer_expired", "token expired"
        return ("user", sub), "bearer", None

    def basic_user(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Basic "):
            return None
        try:
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        return name if BASIC.get(name) == pw else None

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- api ----
    def api_get(self, path, q):
        if path == "/health":
            return self.send_json(200, {"status": "ok", "version": "3.4.1"}, "GET /health", "none")
        route = None
        if path == "/api/me":
            route = "GET /api/me"
        elif path == "/api/customers":
            route = "GET /api/customers"
        elif path.startswith("/api/customers/"):
            route = "GET /api/customers/{id}"
        elif path == "/api/orders":
            route = "GET /api/orders"
        if route is None:
            return self.send_json(404, {"error": "not found"}, "GET (unknown)", "none")
        who, cred, why = self.principal(lenient=(route == "GET /api/me"))
        if who is None:
            return self.unauthorized(route, cred, why)
        if route == "GET /api/me":
            if who[0] == "key":
                return self.send_json(200, {"kind": "integration", "name": who[1], "scopes": ["customers:read", "orders:read"]},
                                      route, cred)
            return self.send_json(200, dict(PROFILES[who[1]], kind="user"), route, cred,
                                  built={"email": 1, "card": 0, "iban": 0, "national_id": 0})
        if route == "GET /api/customers":
            try:
                page = max(1, int(q.get("page", ["1"])[0]))
                per = min(MAX_PER_PAGE, max(1, int(q.get("per_page", ["20"])[0])))
            except ValueError:
                return self.send_json(400, {"error": "bad paging"}, route, cred)
            rows = CUSTOMERS[(page - 1) * per: page * per]
            n = len(rows)
            return self.send_json(200, {"page": page, "per_page": per, "total": N_CUSTOMERS, "customers": rows},
                                  route, cred, built={"email": n, "card": n, "iban": n, "national_id": n})
        if route == "GET /api/customers/{id}":
            cid = path.rsplit("/", 1)[-1]
            if not cid.isdigit() or not 1 <= int(cid) <= N_CUSTOMERS:
                return self.send_json(404, {"error": "no such customer"}, route, cred)
            return self.send_json(200, CUSTOMERS[int(cid) - 1], route, cred,
                                  built={"email": 1, "card": 1, "iban": 1, "national_id": 1})
        # GET /api/orders: an opaque cursor (the last id seen)
        try:
            limit = min(50, max(1, int(q.get("limit", ["25"])[0])))
            cur = q.get("cursor", [""])[0]
            after = json.loads(b64url_dec(cur))["after"] if cur else 0
        except (ValueError, KeyError, TypeError):
            return self.send_json(400, {"error": "bad cursor"}, route, cred)
        rows = [o for o in ORDERS if o["id"] > after][:limit]
        nxt = b64url(json.dumps({"after": rows[-1]["id"]}).encode()) if len(rows) == limit else None
        return self.send_json(200, {"orders": rows, "next_cursor": nxt}, route, cred)

    def api_post(self, path):
        body = self.read_body()
        if path != "/api/login":
            return self.send_json(404, {"error": "not found"}, "POST (unknown)", "none")
        try:
            creds = json.loads(body or b"{}")
        except ValueError:
            return self.send_json(400, {"error": "bad json"}, "POST /api/login", "password")
        name = creds.get("username")
        if name in USERS and USERS[name] == creds.get("password"):
            now = int(time.time())
            token = jwt_sign({"sub": name, "role": PROFILES[name]["role"], "iat": now, "exp": now + 3600,
                              "jti": b64url(random.randbytes(9))})
            return self.send_json(200, {"token": token, "token_type": "Bearer", "expires_in": 3600},
                                  "POST /api/login", "password")
        return self.send_json(401, {"error": "invalid credentials"}, "POST /api/login", "password")

    # ---- legacy ----
    def legacy_get(self, path, q):
        if path == "/v1/status":
            return self.send_json(200, {"status": "ok", "service": "invoices", "build": "1.9.4-2017"}, "GET /v1/status", "none")
        if path != "/v1/invoices":
            return self.send_json(404, {"error": "not found"}, "GET (unknown)", "none")
        route = "GET /v1/invoices"
        if "api_key" in q:
            cred = "api_key_query"
            ok = q["api_key"][0] in LEGACY_KEYS
        elif (self.headers.get("Authorization") or "").startswith("Basic "):
            cred = "basic"
            ok = self.basic_user() is not None
        else:
            cred, ok = "none", False
        if not ok:
            return self.unauthorized(route, cred, "bad credentials")
        try:
            page = max(1, int(q.get("page", ["1"])[0]))
        except ValueError:
            page = 1
        rows = []
        for i in range(5):
            c = CUSTOMERS[((page - 1) * 5 + i) % N_CUSTOMERS]
            rows.append({"invoice": "INV-%06d" % (page * 100 + i), "customer_id": c["id"], "billing_email": c["email"],
                         "amount": round(10 + (page * 37 + i * 11) % 400 + 0.99, 2), "currency": "EUR"})
        return self.send_json(200, {"page": page, "invoices": rows}, route, cred,
                              built={"email": 5, "card": 0, "iban": 0, "national_id": 0})

    def legacy_post(self, path):
        self.read_body()
        if path != "/v1/invoices":
            return self.send_json(404, {"error": "not found"}, "POST (unknown)", "none")
        if self.basic_user() is None:
            return self.unauthorized("POST /v1/invoices", "basic", "bad credentials")
        return self.send_json(201, {"created": True, "invoice": "INV-%06d" % random.randint(900000, 999999)},
                              "POST /v1/invoices", "basic")

    def do_GET(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        return self.api_get(u.path, q) if MODE == "api" else self.legacy_get(u.path, q)

    def do_POST(self):
        path = urlsplit(self.path).path
        return self.api_post(path) if MODE == "api" else self.legacy_post(path)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((ADDR, PORT), Handler).serve_forever()
