#!/usr/bin/env bash
# Makes captures/h2-tls.pcap and its key log captures/h2-tls.keys: HTTP/2 over TLS
# (ALPN h2) on loopback, with the clients' secrets (SSLKEYLOGFILE), for
# `--tls-keylog`. Server: nginx 1.22 (`listen ... ssl http2`, TLS 1.2 and 1.3, a
# throwaway self-signed certificate made for the run): JSON from `return`, a 404, and
# proxied to a python http.server (HTTP/1.0, not captured) a POST endpoint answering
# 201 and a login answering 401. Clients: curl --http2 over
# TLS 1.3 (AES-128-GCM, ChaCha20) and TLS 1.2 (ECDHE-RSA-AES128-GCM-SHA256,
# ECDHE-RSA-CHACHA20-POLY1305), several URLs in one invocation where curl reuses
# the connection; python httpx (http2=True, http1=False) making ten concurrent
# requests on one connection, two of them POSTs with JSON bodies. The certificate
# and secrets are throwaway test material. Needs root (tcpdump), nginx-light,
# openssl, curl with nghttp2, python3 with `pip install 'httpx[http2]'`.
# Usage: scripts/make-h2-tls-capture.sh [OUT.pcap [OUT.keys]]
set -euo pipefail
out=${1:-captures/h2-tls.pcap}
keys=${2:-captures/h2-tls.keys}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
PORT=18463
BACKEND_PORT=18464   # not captured: HTTP/1.0 between nginx and python
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=api.example.test/O=apiwatch test" \
  -addext "subjectAltName=DNS:api.example.test,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/logs"
# The POSTs are proxied, so that nginx reads their bodies: a `return` answers and
# resets the stream before the client has sent its DATA.
cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_session_tickets off;
    location /api/ { default_type application/json; return 200 '{"items":[{"id":1},{"id":2}]}'; }
    location = /api/orders { proxy_pass http://127.0.0.1:$BACKEND_PORT; }
    location = /login { proxy_pass http://127.0.0.1:$BACKEND_PORT; }
    location / { return 404; }
  }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
python3 - "$BACKEND_PORT" <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        code, obj = (201, {"created": json.loads(body or b"{}")}) if self.path == "/api/orders" \
            else (401, {"error": "invalid credentials"})
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
sleep 1
tcpdump -i lo -w "$out" -s 0 -U "tcp port $PORT" 2>/dev/null &
tcpdump_pid=$!
sleep 2
export SSLKEYLOGFILE="$work/keys"
base=https://api.example.test:$PORT
res=(--resolve "api.example.test:$PORT:127.0.0.1")
# One curl, one connection, three streams (two GETs and a 404).
curl -sk "${res[@]}" --http2 --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256 \
  "$base/api/users" "$base/api/users?page=2" "$base/missing" -w '%{stderr}HTTP/%{http_version}, %{num_connects} new connection(s)\n' >/dev/null
curl -sk "${res[@]}" --http2 --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256 \
  "$base/api/items/1" "$base/api/items/2" -w '%{stderr}HTTP/%{http_version}, %{num_connects} new connection(s)\n' >/dev/null
curl -sk "${res[@]}" --http2 --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256 \
  "$base/api/status" "$base/nope" -w '%{stderr}HTTP/%{http_version}, %{num_connects} new connection(s)\n' >/dev/null
curl -sk "${res[@]}" --http2 --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-CHACHA20-POLY1305 \
  -H 'content-type: application/json' -d '{"username":"alice","password":"hunter2"}' "$base/login" -w '%{stderr}HTTP/%{http_version}, %{num_connects} new connection(s)\n' >/dev/null
# httpx: ten concurrent requests multiplexed on one connection.
python3 - "https://127.0.0.1:$PORT" "$SSLKEYLOGFILE" <<'PY'
import ssl, sys, httpx
from concurrent.futures import ThreadPoolExecutor
base, keylog = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = keylog
reqs = [("GET", f"/api/users/{i}", None) for i in range(1, 7)] + [
    ("GET", "/unknown", None), ("GET", "/api/search?q=h2", None),
    ("POST", "/api/orders", {"item": 7, "qty": 2}),
    ("POST", "/login", {"username": "bob", "password": "pw"})]
with httpx.Client(http1=False, http2=True, verify=ctx) as c:
    c.get(base + "/api/ping")  # the connection first, then the streams on it
    with ThreadPoolExecutor(10) as pool:
        rs = list(pool.map(lambda r: c.request(r[0], base + r[1], json=r[2]), reqs))
    assert all(r.http_version == "HTTP/2" for r in rs)
PY
sleep 1
kill $tcpdump_pid; wait $tcpdump_pid 2>/dev/null || true
{
  echo "# Throwaway secrets of $(basename "$out") (scripts/make-h2-tls-capture.sh): test material only."
  cat "$work/keys"
} > "$keys"
chmod 600 "$keys"
echo "wrote $out and $keys"
