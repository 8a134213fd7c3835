#!/usr/bin/env bash
# Generates the large capture the replay benchmark reads: wrk (client) against nginx
# (server) in two network namespaces over a veth pair at MTU 1500, captured with
# tcpdump. Traffic mix: scripts/bench-traffic.lua. Needs root, iproute2, ethtool,
# tcpdump, nginx-light, wrk.
#
# Usage: scripts/make-bench-capture.sh [OUT.pcap] [SECONDS]   (default bench-data/api-bench.pcap, 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bench-data/api-bench.pcap}
secs=${2:-20}
mkdir -p "$(dirname "$out")"
. "$root/scripts/netns.sh"

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    netns_down
    rm -rf "$work"
}
trap cleanup EXIT
netns_up

mkdir -p "$work/www/static"
for size in 8 32 128; do
    head -c "$((size * 1024))" /dev/urandom >"$work/www/static/${size}k.bin"
done
cat >"$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests 1000;
    server {
        listen $AW_SRV_IP:8080;
        root $work/www;
        location /api/users/ { default_type application/json; return 200 '{"id":1,"name":"user","roles":["reader"],"created":"2026-01-01T00:00:00Z"}'; }
        location = /api/login { default_type application/json; return 401 '{"error":"invalid credentials"}'; }
        location /api/orders { default_type application/json; return 200 '[{"order":1,"total":7},{"order":2,"total":14},{"order":3,"total":21},{"order":4,"total":28}]'; }
    }
}
CONF
ip netns exec "$AW_SRV" nginx -c "$work/nginx.conf"
wait_port 8080
capture_start "$out"
ip netns exec "$AW_CLI" wrk -t 1 -c 16 -d "${secs}s" -s "$root/scripts/bench-traffic.lua" \
    "http://$AW_SRV_IP:8080" || true
capture_stop
ls -l "$out"
