#!/usr/bin/env bash
# Makes captures/h2c.pcap: cleartext HTTP/2 and gRPC on loopback.
# - nginx 1.22 (`listen ... http2` without ssl: h2c with prior knowledge; nginx does
#   not take `Upgrade: h2c`): curl --http2-prior-knowledge fetching a page and a
#   404, a POST with a JSON body, and python httpx (http2=True,
#   http1=False) making four concurrent requests on one connection;
# - scripts/capture-kit/h2c_upgrade_server.py (python h2): curl --http2 taking the
#   Upgrade: h2c path, then a second request on the upgraded connection;
# - scripts/capture-kit/grpc_demo.py (grpcio): an OK call, 12 logins answered
#   UNAUTHENTICATED, a NOT_FOUND, a server-streaming call.
# Needs root (tcpdump), nginx-light, curl with nghttp2, python3 with
# `pip install 'httpx[http2]' h2 grpcio`. Usage: scripts/make-h2c-capture.sh [OUT.pcap]
set -euo pipefail
out=${1:-captures/h2c.pcap}
kit=$(cd "$(dirname "$0")/capture-kit" && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
NGINX_PORT=18080
UPGRADE_PORT=18081
GRPC_PORT=18082
mkdir -p "$work/logs" "$work/www"
chmod 755 "$work"   # nginx workers (nobody) read the files
echo '{"items":[1,2,3]}' > "$work/www/items.json"
echo 'hello' > "$work/www/index.html"
cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    root $work/www;
    location /api/ { default_type application/json; return 200 '{"ok":true}\n'; }
  }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
python3 "$kit/h2c_upgrade_server.py" $UPGRADE_PORT &
python3 "$kit/grpc_demo.py" serve $GRPC_PORT &
sleep 2
tcpdump -i lo -w "$out" -s 0 -U "tcp port $NGINX_PORT or tcp port $UPGRADE_PORT or tcp port $GRPC_PORT" 2>/dev/null &
tcpdump_pid=$!
sleep 1
base=http://127.0.0.1:$NGINX_PORT
# One URL per curl: curl 7.88 reusing a prior-knowledge connection to nginx 1.22
# fails (exit 16) after the first answer; httpx and gRPC below share connections.
curl -s --http2-prior-knowledge "$base/index.html" >/dev/null
curl -s --http2-prior-knowledge "$base/missing" >/dev/null
curl -s --http2-prior-knowledge -H 'content-type: application/json' \
  -d '{"username":"bob","password":"hunter2"}' "$base/api/login" >/dev/null
python3 - "$base" <<'PY'
import sys, httpx
from concurrent.futures import ThreadPoolExecutor
base = sys.argv[1]
with httpx.Client(http1=False, http2=True) as c:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: c.get(base + p), ["/index.html", "/items.json", "/api/ping", "/nope"]))
PY
curl -s --http2 "http://127.0.0.1:$UPGRADE_PORT/upgraded" "http://127.0.0.1:$UPGRADE_PORT/missing" >/dev/null
python3 "$kit/grpc_demo.py" call $GRPC_PORT >/dev/null
sleep 1
kill $tcpdump_pid; wait $tcpdump_pid 2>/dev/null || true
echo "wrote $out"
