#!/usr/bin/env bash
# Re-creates the real captures in captures/ (see captures/README.md). Needs root,
# iproute2, ethtool, tcpdump, curl, python3 and nginx-light. Traffic stays inside two
# network namespaces made here and removed on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures}
. "$root/scripts/netns.sh"

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -n "${api_pid:-}" ] && kill "$api_pid" 2>/dev/null
    [ -n "${static_pid:-}" ] && kill "$static_pid" 2>/dev/null
    netns_down
    rm -rf "$work"
}
trap cleanup EXIT
netns_up
cli() { ip netns exec "$AW_CLI" "$@"; }
srv="http://$AW_SRV_IP"

# 1. python http.server (HTTP/1.0, one connection per request) and curl.
mkdir -p "$work/www/docs"
printf 'hello from the static server\n' >"$work/www/index.html"
head -c 20000 /dev/zero | tr '\0' 'a' >"$work/www/docs/big.txt"
(cd "$work/www" && exec ip netns exec "$AW_SRV" python3 -m http.server 8000 --bind "$AW_SRV_IP") \
    >/dev/null 2>&1 &
static_pid=$!
wait_port 8000
capture_start "$out/python-http-server.pcap"
cli curl -s -o /dev/null -o /dev/null -o /dev/null "$srv:8000/" "$srv:8000/docs/big.txt" "$srv:8000/missing"
cli curl -s -o /dev/null -I "$srv:8000/docs/"
capture_stop

# 2. nginx: keep-alive, gzip (chunked responses), a pipelined batch, HEAD and 304.
cat >"$work/nginx.conf" <<EOF
daemon on;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
    access_log off;
    gzip on; gzip_min_length 1; gzip_types text/plain application/json;
    server {
        listen $AW_SRV_IP:8080;
        root $work/www;
        location /api/ { default_type application/json; return 200 '{"ok":true}'; }
    }
}
EOF
ip netns exec "$AW_SRV" nginx -c "$work/nginx.conf"
wait_port 8080
capture_start "$out/nginx-keepalive-pipelined.pcap"
cli curl -s -o /dev/null -o /dev/null -o /dev/null --compressed "$srv:8080/" "$srv:8080/docs/big.txt" "$srv:8080/nope"
cli curl -s -o /dev/null -I "$srv:8080/index.html"
lm=$(date -u -r "$work/www/index.html" '+%a, %d %b %Y %H:%M:%S GMT')
cli curl -s -o /dev/null -H "If-Modified-Since: $lm" "$srv:8080/index.html"
cli python3 - "$AW_SRV_IP" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 8080), timeout=5)
reqs = b"".join(
    b"GET %s HTTP/1.1\r\nHost: demo\r\nAccept-Encoding: gzip\r\n%s\r\n" % (p, c)
    for p, c in [(b"/index.html", b""), (b"/api/status", b""), (b"/docs/big.txt", b"Connection: close\r\n")])
s.sendall(reqs)
deadline = time.time() + 5
while time.time() < deadline and s.recv(65536):
    pass
s.close()
PY
capture_stop

# 3. A JSON API with a login endpoint, driven by curl over keep-alive.
ip netns exec "$AW_SRV" python3 "$root/scripts/api_server.py" "$AW_SRV_IP" 9000 >/dev/null 2>&1 &
api_pid=$!
wait_port 9000
capture_start "$out/api-login.pcap"
login() { printf '{"username":"%s","password":"%s"}' "$1" "$2"; }
json=(-s -o /dev/null -H 'Content-Type: application/json')
cli curl "${json[@]}" -d "$(login alice wrong1)" "$srv:9000/api/login" \
    --next "${json[@]}" -d "$(login alice wrong2)" "$srv:9000/api/login" \
    --next "${json[@]}" -d "$(login alice correct-horse-battery)" "$srv:9000/api/login" \
    --next -s -o /dev/null -H 'Authorization: Bearer demo-token-alice' "$srv:9000/api/users/42" \
    --next -s -o /dev/null "$srv:9000/api/users/4242" \
    --next -s -o /dev/null "$srv:9000/api/orders?page=2" \
    --next "${json[@]}" -H 'Expect: 100-continue' -d '{"item":"book","qty":1}' "$srv:9000/api/orders" \
    --next -s -o /dev/null -X DELETE "$srv:9000/api/users/7" \
    --next -s -o /dev/null "$srv:9000/health?api_key=not-a-real-key"
capture_stop

ls -l "$out"/*.pcap
