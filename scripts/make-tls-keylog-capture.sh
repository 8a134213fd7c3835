#!/usr/bin/env bash
# Makes captures/tls-keylog.pcap and its key log captures/tls-keylog.keys: real
# HTTP/1.1 over TLS on loopback, with the clients' secrets (SSLKEYLOGFILE), for
# `--tls-keylog`. Servers: nginx (TLS 1.2 and 1.3: a JSON API and a login that
# refuses) and Python's http.server over ssl (keep-alive, JSON). Clients: curl
# (TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-CHACHA20-POLY1305 and the CBC
# suites ECDHE-RSA-AES128-SHA256 and ECDHE-RSA-AES256-SHA, TLS 1.3
# TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256; several requests a
# connection, a POST with a body), Python's http.client (its ssl module honours
# SSLKEYLOGFILE), `openssl s_client -keylogfile`, and one curl connection whose
# secrets are left out of the key log on purpose (no_key). The certificates and
# secrets are throwaway test material. Needs root (tcpdump), nginx-light, openssl,
# curl, python3, editcap (the pcapng with the secrets inside, OUT-dsb.pcapng).
# Usage: scripts/make-tls-keylog-capture.sh [OUT.pcap [OUT.keys]]
set -euo pipefail
out=${1:-captures/tls-keylog.pcap}
keys=${2:-captures/tls-keylog.keys}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
NGINX_PORT=18453
PY_PORT=18454
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=api.example.test/O=apiwatch test" \
  -addext "subjectAltName=DNS:api.example.test,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA;
    ssl_session_tickets off;
    location /api/ { default_type application/json; return 200 '{"items":[{"id":1},{"id":2}]}'; }
    location = /login { default_type application/json; return 401 '{"error":"invalid credentials"}'; }
    location / { return 404; }
  }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
cat > "$work/server.py" <<'PY'
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, {"path": self.path, "ok": True})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.reply(201 if self.path.startswith("/api/") else 401, {"created": self.path})
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
python3 "$work/server.py" $PY_PORT "$work/cert.pem" "$work/key.pem" &
sleep 1
tcpdump -i lo -w "$out" -s 0 -U "tcp port $NGINX_PORT or tcp port $PY_PORT" 2>/dev/null &
tcpdump_pid=$!
sleep 1
export SSLKEYLOGFILE="$work/keys"
base=https://api.example.test:$NGINX_PORT
res=(--resolve "api.example.test:$NGINX_PORT:127.0.0.1" --resolve "api.example.test:$PY_PORT:127.0.0.1")
# One connection, three requests (two GETs, a login POST with a JSON body).
session() {
  local tls=("$@")
  curl -sk "${res[@]}" --http1.1 "${tls[@]}" "$base/api/users" "$base/api/orders?page=2" \
    --next -sk "${res[@]}" --http1.1 "${tls[@]}" -H 'Content-Type: application/json' \
    -d '{"username":"alice","password":"hunter2"}' "$base/login" >/dev/null
}
session --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256
session --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-CHACHA20-POLY1305
# CBC with HMAC-SHA256 and with HMAC-SHA1 (OpenSSL negotiates encrypt-then-MAC).
session --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES128-SHA256
session --tlsv1.2 --tls-max 1.2 --ciphers ECDHE-RSA-AES256-SHA
session --tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384
session --tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256
# Python's own client (keylog_filename from SSLKEYLOGFILE) to Python's server.
python3 - "$PY_PORT" <<'PY'
import http.client, json, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx)
for method, path, body in [("GET", "/api/items/1", None), ("POST", "/api/items", {"name": "x"}),
                           ("GET", "/api/items/2", None), ("POST", "/login", {"username": "bob", "password": "pw"})]:
    data = json.dumps(body).encode() if body else None
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    c.getresponse().read()
c.close()
PY
# openssl s_client writes its own key log.
printf 'GET /api/status HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n' |
  openssl s_client -quiet -ign_eof -connect 127.0.0.1:$NGINX_PORT -servername api.example.test \
    -tls1_3 -keylogfile "$work/keys" >/dev/null 2>&1 || true
# The connection whose secrets are not given: its key log goes elsewhere.
SSLKEYLOGFILE="$work/keys-withheld" curl -sk "${res[@]}" --http1.1 --tlsv1.3 "$base/api/secret" >/dev/null
sleep 1
kill $tcpdump_pid; wait $tcpdump_pid 2>/dev/null || true
{
  echo "# Throwaway secrets of $(basename "$out") (scripts/make-tls-keylog-capture.sh): test material only."
  cat "$work/keys"
} > "$keys"
chmod 600 "$keys"
editcap --inject-secrets tls,"$keys" "$out" "${out%.pcap}-dsb.pcapng"
echo "wrote $out, $keys and ${out%.pcap}-dsb.pcapng"
