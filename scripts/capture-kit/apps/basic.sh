# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# basic: the three small real captures of captures/ (see captures/README.md):
# python-http-server.pcap (python http.server, HTTP/1.0, curl), nginx-keepalive-
# pipelined.pcap (keep-alive, gzip/chunked, a pipelined batch, HEAD and 304) and
# api-login.pcap (scripts/capture-kit/api_server.py driven by one curl --next
# keep-alive connection). OUT is a directory (default captures/).
APP_DESC="python http.server, nginx and the JSON API with curl: 3 small pcaps into a directory"
APP_NEEDS="curl python3 nginx"

app_defaults() { OUT=${OUT:-$root/captures}; }

app_run() {
    kit_work aw-basic
    kit_pair_up aw-cli aw-srv 10.77.0.1 10.77.0.2
    local srv=http://10.77.0.2 w=$KIT_WORK
    mkdir -p "$OUT"
    cli() { ip netns exec aw-cli "$@"; }

    # 1. python http.server (HTTP/1.0, one connection per request) and curl.
    mkdir -p "$w/www/docs"
    printf 'hello from the static server\n' >"$w/www/index.html"
    head -c 20000 /dev/zero | tr '\0' 'a' >"$w/www/docs/big.txt"
    (cd "$w/www" && exec ip netns exec aw-srv python3 -m http.server 8000 --bind 10.77.0.2) >/dev/null 2>&1 &
    KIT_PIDS+=($!)
    kit_wait_tcp aw-cli 10.77.0.2 8000
    kit_capture_start aw-cli aw-cli-v "$OUT/python-http-server.pcap" tcp
    cli curl -s -o /dev/null -o /dev/null -o /dev/null "$srv:8000/" "$srv:8000/docs/big.txt" "$srv:8000/missing"
    cli curl -s -o /dev/null -I "$srv:8000/docs/"
    kit_capture_stop

    # 2. nginx: keep-alive, gzip (chunked responses), a pipelined batch, HEAD and 304.
    kit_nginx aw-srv <<CONF
    access_log off;
    gzip on; gzip_min_length 1; gzip_types text/plain application/json;
    server {
        listen 10.77.0.2:8080;
        root $w/www;
        location /api/ { default_type application/json; return 200 '{"ok":true}'; }
    }
CONF
    kit_wait_tcp aw-cli 10.77.0.2 8080
    kit_capture_start aw-cli aw-cli-v "$OUT/nginx-keepalive-pipelined.pcap" tcp
    cli curl -s -o /dev/null -o /dev/null -o /dev/null --compressed "$srv:8080/" "$srv:8080/docs/big.txt" "$srv:8080/nope"
    cli curl -s -o /dev/null -I "$srv:8080/index.html"
    local lm
    lm=$(date -u -r "$w/www/index.html" '+%a, %d %b %Y %H:%M:%S GMT')
    cli curl -s -o /dev/null -H "If-Modified-Since: $lm" "$srv:8080/index.html"
    cli python3 - 10.77.0.2 <<'PY'
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
    kit_capture_stop

    # 3. A JSON API with a login endpoint, driven by curl over keep-alive.
    kit_bg ip netns exec aw-srv python3 "$kit/api_server.py" 10.77.0.2 9000 >/dev/null 2>&1
    kit_wait_tcp aw-cli 10.77.0.2 9000
    kit_capture_start aw-cli aw-cli-v "$OUT/api-login.pcap" tcp
    login() { printf '{"username":"%s","password":"%s"}' "$1" "$2"; }
    local json=(-s -o /dev/null -H 'Content-Type: application/json')
    cli curl "${json[@]}" -d "$(login alice wrong1)" "$srv:9000/api/login" \
        --next "${json[@]}" -d "$(login alice wrong2)" "$srv:9000/api/login" \
        --next "${json[@]}" -d "$(login alice correct-horse-battery)" "$srv:9000/api/login" \
        --next -s -o /dev/null -H 'Authorization: Bearer demo-token-alice' "$srv:9000/api/users/42" \
        --next -s -o /dev/null "$srv:9000/api/users/4242" \
        --next -s -o /dev/null "$srv:9000/api/orders?page=2" \
        --next "${json[@]}" -H 'Expect: 100-continue' -d '{"item":"book","qty":1}' "$srv:9000/api/orders" \
        --next -s -o /dev/null -X DELETE "$srv:9000/api/users/7" \
        --next -s -o /dev/null "$srv:9000/health?api_key=not-a-real-key"
    kit_capture_stop
    ls -l "$OUT"/python-http-server.pcap "$OUT"/nginx-keepalive-pipelined.pcap "$OUT"/api-login.pcap
}
