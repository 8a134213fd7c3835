#!/usr/bin/env python3
"""Writes captures/posture.labels.json for the posture capture (apps/posture.sh) from
what the run logged and what the capture holds:

  - the capture (tshark 4.0, which decrypts it with the pcapng's Decryption Secrets
    Block): every HTTP request (time, address, host, method, URI), t0 = the first
    one; every ClientHello to api.example.test checked against the key log
    (key-check.txt in the work directory)
  - the drivers' request logs (clients-*.jsonl): who did what, each attack's first
    request (start_s = its first request in the capture - t0)
  - the servers' response logs (server-*.jsonl): the sensitive values each route sent
    (ground truth, counted over whole bodies, only responses sent while tcpdump ran)

Usage: posture_labels.py --work DIR --capture FILE.pcapng --labels OUT.json --name NAME
"""
import argparse
import collections
import json
import re
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--capture", required=True)
ap.add_argument("--labels", required=True)
ap.add_argument("--name", required=True)
args = ap.parse_args()
W = args.work


def jsonl(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def tshark(filt, fields):
    cmd = ["tshark", "-r", args.capture, "-Y", filt, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=900).stdout
    return [line.split("\t") for line in out.splitlines() if line]


data = json.load(open(W + "/data.json"))
plan_b = json.load(open(W + "/plan-benign.json"))
plan_a = json.load(open(W + "/plan-attacks.json"))
B, A = plan_b["benign"], plan_a["attacks"]
cap_start = float(open(W + "/capture-start").read())
clients = jsonl(W + "/clients-benign.jsonl") + jsonl(W + "/clients-attacks.jsonl")
clients.sort(key=lambda r: r["t"])

# ---- the capture -------------------------------------------------------------------
reqs = [(float(t), src, dst, port, host, m, uri)
        for t, src, dst, port, host, m, uri in
        tshark("http.request", ["frame.time_epoch", "ip.src", "ip.dst", "tcp.dstport", "http.host",
                                "http.request.method", "http.request.uri"])]
reqs.sort()
t0 = reqs[0][0]

hellos = tshark("tls.handshake.type == 1 && ip.dst == 10.77.0.2 && tcp.dstport == 443",
                ["tls.handshake.random", "ip.src", "tcp.srcport"])
syns_api = len(tshark("tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.dst == 10.77.0.2 && tcp.dstport == 443",
                      ["frame.number"]))
logged = set()
for line in open(W + "/keys.log"):
    parts = line.split()
    if len(parts) == 3:
        logged.add(parts[1].lower())
missing = [h for h in hellos if h[0].lower() not in logged]
with open(W + "/key-check.txt", "w") as fh:
    fh.write("TCP connections to api.example.test (SYNs): %d\nClientHellos: %d\nwith secrets in the key log: %d\n"
             "missing: %d\n" % (syns_api, len(hellos), len(hellos) - len(missing), len(missing)))
    for h in missing:
        fh.write("  %s:%s %s\n" % (h[1], h[2], h[0]))
print(open(W + "/key-check.txt").read(), file=sys.stderr, end="")

# ---- route templates -----------------------------------------------------------------
TEMPLATES = [
    ("GET", r"^/health$", "GET /health"),
    ("POST", r"^/api/login$", "POST /api/login"),
    ("GET", r"^/api/me$", "GET /api/me"),
    ("GET", r"^/api/customers$", "GET /api/customers"),
    ("GET", r"^/api/customers/[^/]+$", "GET /api/customers/{id}"),
    ("GET", r"^/api/orders$", "GET /api/orders"),
    ("GET", r"^/v1/status$", "GET /v1/status"),
    ("GET", r"^/v1/invoices$", "GET /v1/invoices"),
    ("POST", r"^/v1/invoices$", "POST /v1/invoices"),
]


def template(method, uri):
    path = uri.split("?")[0]
    for m, rx, t in TEMPLATES:
        if m == method and re.match(rx, path):
            return t
    return "%s %s" % (method, path)


conns = collections.Counter(src for src, in tshark("tcp.flags.syn == 1 && tcp.flags.ack == 0", ["ip.src"]))
per_route = collections.defaultdict(collections.Counter)
per_ip = collections.Counter()
for t, src, dst, port, host, m, uri in reqs:
    per_route[host.split(":")[0]][template(m, uri)] += 1
    per_ip[src] += 1

# ---- sensitive values (server ground truth) --------------------------------------------
KINDS = ["email", "card", "iban", "national_id"]
sensitive = collections.defaultdict(lambda: dict.fromkeys(KINDS, 0))
built_total = collections.defaultdict(lambda: dict.fromkeys(KINDS, 0))
responses = collections.defaultdict(collections.Counter)
no_keys = collections.defaultdict(lambda: dict.fromkeys(KINDS, 0))
for name in ["server-api.jsonl", "server-legacy.jsonl", "server-legacy-tls.jsonl"]:
    for r in jsonl(W + "/" + name):
        if r["t"] < cap_start:
            continue  # the readiness checks before tcpdump started
        if name == "server-legacy-tls.jsonl":
            for k in KINDS:
                no_keys["%s %s" % (r["host"], r["route"])][k] += r["found"][k]
            continue
        responses[r["route"]][r["status"]] += 1
        for k in KINDS:
            sensitive[r["route"]][k] += r["found"][k]
            built_total[r["route"]][k] += r["built"][k]
mismatch = {k: {"found": sensitive[k], "built": built_total[k]} for k in sensitive if sensitive[k] != built_total[k]}
served = {"api.example.test": ["GET /health", "POST /api/login", "GET /api/me", "GET /api/customers",
                               "GET /api/customers/{id}", "GET /api/orders"],
          "legacy.example.test": ["GET /v1/status", "GET /v1/invoices", "POST /v1/invoices"]}

# ---- attacks ---------------------------------------------------------------------------


def first_in_capture(ips, after, uri_has=""):
    for t, src, dst, port, host, m, uri in reqs:
        if src in ips and t >= after - 0.5 and uri_has in uri:
            return t
    return None


def first_logged(phase, ips=None):
    for r in clients:
        if r["phase"] == phase and (ips is None or r["ip"] in ips) and r["req"] != "-":
            return r
    return None


def phase_reqs(phase):
    return [r for r in clients if r["phase"] == phase and r["req"] != "-"]


attacks = []
evidence = []
scr_ip, scr_user, _ = A["scraper"]
ex = first_logged("exfil", [scr_ip])
exfil = phase_reqs("exfil")
before = [r for r in clients if r["ip"] == scr_ip and r["phase"] == "normal"]
ex_bytes = sum(r2["bytes"] for r2 in jsonl(W + "/server-api.jsonl")
               if r2.get("client") == scr_ip and ex and r2["t"] >= ex["t"] - 0.5)
pre_bytes = sum(r2["bytes"] for r2 in jsonl(W + "/server-api.jsonl")
                if r2.get("client") == scr_ip and r2["t"] >= cap_start and ex and r2["t"] < ex["t"] - 0.5)
if ex:
    t = first_in_capture({scr_ip}, ex["t"], "per_page=50")
    attacks.append({
        "kind": "data_exfiltration",
        "client": scr_ip,
        "start_s": round(t - t0, 2),
        "tool": "python requests (its own session and token, user %s; the script's default User-Agent): GET "
                "/api/customers?page=1..%d&per_page=50 one after another 0.3-0.9 s apart until the empty page, "
                "%d requests in %.1f s, %d response body bytes (%d customers with e-mail, card, IBAN, national id)"
                % (scr_user, len(exfil) - 1, len(exfil), exfil[-1]["t"] - exfil[0]["t"], ex_bytes, 600),
        "baseline": "before: %d requests in %.0f s (a page of 20 or one record every 15-35 s), %d response body bytes"
                    % (len(before), ex["t"] - (before[0]["t"] if before else ex["t"]), pre_bytes),
    })
thieves_ips, steal_at, _ = A["thieves"]
st = phase_reqs("stolen_token")
if st:
    first = min(st, key=lambda r: r["t"])
    t = first_in_capture(set(thieves_ips), first["t"])
    order = []
    for r in st:
        if r["ip"] not in order:
            order.append(r["ip"])
    span = max(r["t"] for r in st) - first["t"]
    attacks.append({
        "kind": "token_misuse",
        "client": order[0],
        "clients": order,
        "reason": "shared_principal",
        "start_s": round(t - t0, 2),
        "tool": "the victim's bearer JWT (%s at %s, who goes on using it) replayed from 10 other addresses: python "
                "requests (even-numbered thieves, one keep-alive connection) and curl (odd, a connection a request), "
                "%d requests in %.1f s, 3-6 per address" % (B["victim"][1], B["victim"][0], len(st), span),
        "victim": B["victim"][0],
    })
cy_ip = A["cycler"][0]
cy = phase_reqs("key_cycling")
if cy:
    t = first_in_capture({cy_ip}, cy[0]["t"])
    attacks.append({
        "kind": "token_misuse",
        "client": cy_ip,
        "reason": "principal_cycling",
        "start_s": round(t - t0, 2),
        "tool": "python requests, one keep-alive connection: 30 valid X-API-Key values one after another, 2-4 "
                "requests each (/api/me, customers, orders), %d requests in %.1f s"
                % (len(cy), cy[-1]["t"] - cy[0]["t"]),
    })

# ---- findings --------------------------------------------------------------------------
findings = []
seen = set()


def finding(**f):
    key = (f["kind"], f["server"], f.get("endpoint"), f.get("credential"), f.get("reason"))
    if key not in seen:
        seen.add(key)
        findings.append(f)


for r in clients:
    if r["host"] == "legacy.example.test" and isinstance(r["status"], int):
        m, _, uri = r["req"].partition(" ")
        ep = template(m, uri)
        if r["cred"] == "basic":
            finding(kind="cleartext_credentials", server="legacy.example.test", dest_ip="10.77.0.3", dest_port=80,
                    endpoint=ep, credential="basic")
        if r["cred"] == "api_key_query":
            finding(kind="cleartext_credentials", server="legacy.example.test", dest_ip="10.77.0.3", dest_port=80,
                    endpoint=ep, credential="api_key",
                    note="the key is in the query string (?api_key=), not in a header: a sensor that looks only at "
                         "headers sees credentials_in_url alone")
            finding(kind="credentials_in_url", server="legacy.example.test", dest_ip="10.77.0.3", dest_port=80,
                    endpoint=ep, credential="api_key", parameter="api_key")
finding(kind="weak_tls", server="old.example.test", dest_ip="10.77.0.4", dest_port=443, reason="version",
        detail="ssl_protocols TLSv1 TLSv1.1, ssl_ciphers DEFAULT:@SECLEVEL=0: TLS 1.0 and TLS 1.1 with "
               "ECDHE-RSA-AES256-SHA (CBC with SHA-1)")
certs = data["certs"]
finding(kind="certificate_expiry", server="expired.example.test", dest_ip="10.77.0.5", dest_port=443,
        reason="expired", not_after=certs["expired.example.test"]["not_after"], self_signed=True)
finding(kind="certificate_expiry", server="expiring.example.test", dest_ip="10.77.0.6", dest_port=443,
        reason="expiring", not_after=certs["expiring.example.test"]["not_after"], self_signed=True)
for phase, reason in [("jwt_alg_none", "alg_none_accepted"), ("jwt_expired", "expired_accepted")]:
    rs = [r for r in phase_reqs(phase) if r["req"].startswith("GET /api/me") and r["status"] == 200]
    if rs:
        finding(kind="jwt_weakness", server="api.example.test", dest_ip="10.77.0.2", dest_port=443,
                endpoint="GET /api/me", reason=reason, credential="bearer", clients=sorted({r["ip"] for r in rs}),
                note="decrypted (keys in the pcapng); the same tokens on another route were answered 401")

# ---- clients ---------------------------------------------------------------------------
desc = {}
tool_py = "python requests (urllib3, one keep-alive TLS connection a session)"
for ip, name in B["users"]:
    desc[ip] = ("benign", "user %s: sessions of a JSON login, GET /api/me, 2-6 actions 3-15 s apart (1-3 pages of "
                "10-25 customers, a record of its own dozen, orders by cursor), 15-60 s between sessions" % name, tool_py)
for ip, name, late in B["late_users"]:
    desc[ip] = ("benign", "user %s, a late-comer: first request after %d s, then like the others" % (name, late), tool_py)
ip, name = B["victim"]
desc[ip] = ("benign", "user %s, the token-theft victim: one login kept all along (its token leaks after the login), "
            "sessions like the others; its token is replayed from 10.77.0.110-119 from about 230 s" % name, tool_py)
for a, b, name, sw in B["roamers"]:
    desc[a] = ("benign", "roamer %s on wifi: one login, a call every 4-14 s; at %d s it moves to %s (same token) and "
               "this address goes quiet" % (name, sw, b), tool_py)
    desc[b] = ("benign", "roamer %s on cellular from %d s: the token of %s, no new login" % (name, sw, a), tool_py)
ip, names = B["office"]
desc[ip] = ("benign", "NAT'ed office: %d users (%s-%s), one session and token each, interleaved, a call every 8-35 s, "
            "a re-login now and then" % (len(names), names[0], names[-1]), tool_py + ", TLS 1.2 at most")
ip, name = B["heavy"]
desc[ip] = ("benign", "heavy steady reader %s: one request every 2-3 s from start to end (records of a 60-id working "
            "set, pages 1-5 of 20, orders)" % name, tool_py)
desc[B["health"]] = ("benign", "health checker: GET /health every 5 s, no credentials", "curl 7.88, a fresh TLS connection each")
desc[B["integration_httpx"][0]] = ("benign", "API-key integration (X-API-Key): every 30 s the next 50 orders by cursor, "
                                   "every 60 s the first 10 customers", "httpx 0.29, one keep-alive connection")
desc[B["integration_curl"][0]] = ("benign", "API-key integration (X-API-Key): every 20 s the newest 5 customers",
                                  "curl 7.88 --tls-max 1.2, a fresh TLS connection each")
for ip, name, posts in B["legacy_basic"]:
    desc[ip] = ("benign (posture: cleartext Basic)", "legacy client %s: GET /v1/invoices?page=N with HTTP Basic over "
                "cleartext every 20-45 s%s" % (name, ", sometimes POST /v1/invoices" if posts else ""),
                "python requests")
ip, name = B["legacy_basic_curl"]
desc[ip] = ("benign (posture: cleartext Basic)", "legacy script %s: curl -u over cleartext every 30-50 s" % name, "curl 7.88")
desc[B["legacy_query_key"][0]] = ("benign (posture: key in the URL)", "legacy feed: GET /v1/invoices?api_key=...&page=N "
                                  "over cleartext every 25-40 s", "python requests")
for ip, who, host, extra, lo, hi in B["tls_posture"]:
    desc[ip] = ("benign (posture: %s)" % host, "%s: GET /v1/status (sometimes /v1/invoices with Basic) every %d-%d s, "
                "no key log (stays encrypted)" % (host, lo, hi), "curl 7.88 -k %s" % " ".join(extra))
desc[scr_ip] = ("data_exfiltration", "user %s: an ordinary client first (a page of 20 or a record every 15-35 s), at "
                "about 170 s pages the whole customer collection end to end" % scr_user, "python requests")
for ip in thieves_ips:
    desc[ip] = ("token_misuse (shared_principal)", "replays the victim's stolen token: 3-6 requests",
                "python requests" if thieves_ips.index(ip) % 2 == 0 else "curl 7.88")
desc[cy_ip] = ("token_misuse (principal_cycling)", "30 API keys one after another, 2-4 requests each", "python requests")
desc[A["jwt_none"][0]] = ("posture evidence (jwt_weakness alg_none_accepted)",
                          "at %s s: GET /api/me with an unsigned alg:none JWT (sub admin) answered 200, then GET "
                          "/api/customers with it answered 401" % A["jwt_none"][1], "python requests")
desc[A["jwt_expired"][0]] = ("posture evidence (jwt_weakness expired_accepted)",
                             "at %s s: GET /api/me with a properly signed JWT that expired 8 days earlier answered "
                             "200, then GET /api/orders with it answered 401" % A["jwt_expired"][1], "curl 7.88 --tls-max 1.2")

client_list = []
for ip in sorted(desc, key=lambda s: tuple(int(x) for x in s.split("."))):
    label, does, tool = desc[ip]
    client_list.append({"address": ip, "label": label, "does": does, "tool": tool, "tcp_connections": conns.get(ip, 0),
                        "http_requests": per_ip.get(ip, 0)})

benign = [c["address"] for c in client_list if c["label"].startswith("benign")]
roams = []
for a, b, name, sw in B["roamers"]:
    rb = [r for r in clients if r["ip"] == b]
    ra = [r for r in clients if r["ip"] == a]
    if rb:
        roams.append({"kind": "roaming", "label": "benign", "from": a, "to": b, "principal": name,
                      "start_s": round(first_in_capture({b}, rb[0]["t"]) - t0, 2),
                      "last_from_old_s": round(max(r["t"] for r in ra) - t0, 2) if ra else None})
evidence += roams
for ip, name, late in B["late_users"]:
    rs = [r for r in clients if r["ip"] == ip]
    if rs:
        evidence.append({"kind": "late_comer", "label": "benign", "client": ip, "principal": name,
                         "start_s": round(first_in_capture({ip}, rs[0]["t"]) - t0, 2)})
for phase, ip in [("jwt_alg_none", A["jwt_none"][0]), ("jwt_expired", A["jwt_expired"][0])]:
    rs = phase_reqs(phase)
    evidence.append({"kind": "jwt_weakness", "label": "posture evidence, not a client alert", "client": ip,
                     "requests": [{"s": round(r["t"] - t0, 1), "req": r["req"], "status": r["status"]} for r in rs]})

total_logged = collections.Counter(r["host"] for r in clients if isinstance(r["status"], int))
labels = {
    "capture": args.name,
    "made_by": "scripts/make-capture.sh posture",
    "encrypted": "partly: api.example.test is TLS with every connection's secrets in the pcapng (a Decryption "
                 "Secrets Block, editcap --inject-secrets); old/expired/expiring.example.test are TLS without keys; "
                 "legacy.example.test is cleartext HTTP",
    "keys": "embedded (DSB); throwaway secrets of this run only",
    "learning_period": "2m",
    "t0": "start_s and every s below are seconds after the capture's first HTTP request (tshark with the embedded keys), "
          "at epoch %.6f" % t0,
    "servers": {
        "api.example.test": {"ip": "10.77.0.2", "port": 443, "tls": "TLS 1.2/1.3 (nginx 1.22), self-signed P-256, a year valid",
                             "app": "scripts/capture-kit/posture_server.py api (JWT HS256 or X-API-Key)"},
        "legacy.example.test": {"ip": "10.77.0.3", "port": 80, "tls": None,
                                "app": "scripts/capture-kit/posture_server.py legacy (Basic or ?api_key=)"},
        "old.example.test": {"ip": "10.77.0.4", "port": 443, "tls": "TLS 1.0/1.1 only, DEFAULT:@SECLEVEL=0"},
        "expired.example.test": {"ip": "10.77.0.5", "port": 443, "tls": "TLS 1.2", "cert": certs["expired.example.test"]},
        "expiring.example.test": {"ip": "10.77.0.6", "port": 443, "tls": "TLS 1.2", "cert": certs["expiring.example.test"]},
    },
    "benign_clients": benign,
    "attacks": attacks,
    "findings_expectation": "one finding per (server, route, kind, credential kind or reason); TLS findings have no route",
    "findings": findings,
    "sensitive": {k: sensitive[k] for k in sorted(sensitive)},
    "sensitive_note": "ground truth from the server: per route template, the values in the response bodies it sent "
                      "while tcpdump ran (found by scanning each whole body: e-mail addresses, 13-19 digit numbers "
                      "passing Luhn not inside a longer alphanumeric token, IBANs passing mod 97, SSN-shaped "
                      "ddd-dd-dddd); it equals what the server put in by construction%s. Customer cards are plain "
                      "digit strings (visa/mastercard/amex), IBANs compact (DE, GB, NL); 18 of the 600 customers have "
                      "a GB IBAN whose 14-digit account part also passes Luhn (a naive card scan inside IBANs would "
                      "count it). Orders carry masked cards only. GET /v1/invoices is the cleartext legacy service "
                      "(billing e-mails)." % ("" if not mismatch else " EXCEPT " + json.dumps(mismatch)),
    "sensitive_encrypted_no_keys": {k: v for k, v in no_keys.items() if any(v.values())},
    "responses": {k: dict(sorted((str(s), n) for s, n in v.items())) for k, v in sorted(responses.items())},
    "requests_in_capture": {h: dict(sorted(c.items())) for h, c in sorted(per_route.items())},
    "api_routes": served,
    "evidence": evidence,
    "clients": client_list,
    "key_check": open(W + "/key-check.txt").read().strip().splitlines(),
}
with open(args.labels, "w") as fh:
    json.dump(labels, fh, indent=2)
    fh.write("\n")
print("labels: %s (%d requests in the capture, %d attacks, %d findings)" % (args.labels, len(reqs), len(attacks),
                                                                          len(findings)), file=sys.stderr)
