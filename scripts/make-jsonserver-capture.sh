#!/usr/bin/env bash
# Makes captures/jsonserver.pcap.gz and captures/jsonserver.labels.json: a real
# json-server 0.17 REST API with json-server-auth 2.x (JWT login, guarded routes)
# behind nginx, benign personas and attackers in their own network namespaces,
# captured on the server-side bridge. See captures/jsonserver.md.
#
# Needs (nothing is installed by this script):
#   root, iproute2, ethtool, tcpdump, nginx (nginx-light 1.22), hydra 9.4, ffuf,
#   dirb (for /usr/share/dirb/wordlists/common.txt), python3 (stdlib only), node 20,
#   and json-server 0.17.4 + json-server-auth 2.1.0 installed with
#     mkdir -p /work/venvs/jsonserver && cd /work/venvs/jsonserver &&
#     npm init -y && npm install json-server@0.17 json-server-auth
#   (another place: JSONSERVER_DIR=/path/with/node_modules).
#
# Layout: namespace js-srv holds bridge js-br (10.84.0.2/24) with nginx on :80 and
# json-server-auth on 127.0.0.1:3000; js-cli holds every python persona address
# (10.84.0.10-42 benign, .100-.102 established attackers, .120-.131 distributed
# stuffing); js-stuff (.110, hydra), js-brute (.111, hydra), js-scan (.112, ffuf).
# MTU 1500, offloads off on every veth and the bridge.
#
# Usage: scripts/make-jsonserver-capture.sh [DURATION_S] [TIME_SCALE]
#   (defaults 600 and 1.0; a TIME_SCALE below 1 runs the same timeline faster, for
#   trying the script out; such a run writes to a temporary directory, not captures/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-600}
scale=${2:-1.0}
jsdir=${JSONSERVER_DIR:-/work/venvs/jsonserver}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for tool in ip ethtool tcpdump nginx hydra ffuf node python3 gzip; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -f /usr/share/dirb/wordlists/common.txt ] || { echo "missing dirb's common.txt" >&2; exit 1; }
[ -f "$jsdir/node_modules/json-server-auth/dist/bin.js" ] || { echo "json-server-auth not installed in $jsdir" >&2; exit 1; }

NET=10.84.0
SRV_IP=$NET.2
SRV_NS=js-srv
BR=js-br
if [ "$scale" = "1.0" ] || [ "$scale" = "1" ]; then
    outdir=$root/captures
else
    outdir=$(mktemp -d /tmp/js-trial.XXXXXX)
fi
pcap=$outdir/jsonserver.pcap
labels=$outdir/jsonserver.labels.json

work=$(mktemp -d /tmp/js-work.XXXXXX)
chmod 755 "$work"
client_ns=""
tcpdump_pid=""
node_pid=""
cleanup() {
    set +e
    [ -n "$tcpdump_pid" ] && kill -INT "$tcpdump_pid" 2>/dev/null && wait "$tcpdump_pid" 2>/dev/null
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
    sleep 0.5
    for ns in $client_ns; do ip netns del "$ns" 2>/dev/null; done
    ip netns del "$SRV_NS" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

offloads_off() { # offloads_off NS DEV
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}

# ---- namespaces -------------------------------------------------------------------
for ns in "$SRV_NS" js-cli js-stuff js-brute js-scan; do
    if ip netns list | grep -qw "$ns"; then
        echo "namespace $ns already exists (a previous run?); delete it first" >&2
        exit 1
    fi
done
ip netns add "$SRV_NS"
ip -n "$SRV_NS" link set lo up
ip -n "$SRV_NS" link add "$BR" type bridge
ip -n "$SRV_NS" link set "$BR" mtu 1500
ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$BR"
ip -n "$SRV_NS" link set "$BR" up
offloads_off "$SRV_NS" "$BR"

client() { # client NAME ADDR...
    local name=$1
    shift
    ip netns add "$name"
    client_ns="$client_ns $name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$SRV_NS"
    ip -n "$SRV_NS" link set "$name-b" mtu 1500 master "$BR" up
    ip -n "$name" link set lo up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for addr in "$@"; do ip -n "$name" addr add "$addr/24" dev "$name-a"; done
    offloads_off "$name" "$name-a"
    offloads_off "$SRV_NS" "$name-b"
}
cli_addrs=""
for n in $(seq 10 19) $(seq 20 26) 30 31 32 40 41 42 100 101 102 $(seq 120 131); do
    cli_addrs="$cli_addrs $NET.$n"
done
# shellcheck disable=SC2086
client js-cli $cli_addrs
client js-stuff "$NET.110"
client js-brute "$NET.111"
client js-scan "$NET.112"

# ---- seed (before the capture starts) ---------------------------------------------
python3 "$root/scripts/jsonserver_traffic.py" seed "$work"
# json-server-auth keeps bcrypt hashes in users[].password; hash the plain passwords
(cd "$jsdir" && node -e '
const fs = require("fs"), bcrypt = require("bcryptjs");
const f = process.argv[1], db = JSON.parse(fs.readFileSync(f, "utf8"));
for (const u of db.users) u.password = bcrypt.hashSync(u.password, 10);
fs.writeFileSync(f, JSON.stringify(db, null, 2));
' "$work/db.json")
mkdir -p "$work/app"
mv "$work/db.json" "$work/routes.json" "$work/app/"

# ---- server: json-server-auth on 127.0.0.1:3000, nginx on 10.84.0.2:80 -----------
(cd "$work/app" && exec ip netns exec "$SRV_NS" node "$jsdir/node_modules/json-server-auth/dist/bin.js" \
    db.json --routes routes.json --host 127.0.0.1 --port 3000 --quiet >"$work/json-server.log" 2>&1) &
node_pid=$!
cat >"$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 512; }
http {
    access_log $work/access.log;
    keepalive_timeout 120s;
    keepalive_requests 10000;
    upstream jsonserver { server 127.0.0.1:3000; keepalive 16; }
    server {
        listen $SRV_IP:80;
        location / {
            proxy_pass http://jsonserver;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
}
CONF
ip netns exec "$SRV_NS" nginx -c "$work/nginx.conf"
up=""
for _ in $(seq 150); do
    if ip netns exec js-cli python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$SRV_IP/__rules', timeout=1)" 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.2
done
[ -n "$up" ] || { echo "json-server did not come up" >&2; cat "$work/json-server.log" >&2; exit 1; }

# ---- capture ------------------------------------------------------------------------
rm -f "$pcap" "$pcap.gz"
ip netns exec "$SRV_NS" tcpdump -i "$BR" --immediate-mode -s 0 -U -w "$pcap" tcp port 80 2>"$work/tcpdump.log" &
tcpdump_pid=$!
sleep 2
server_desc="json-server $(node -p "require('$jsdir/node_modules/json-server/package.json').version") + json-server-auth $(node -p "require('$jsdir/node_modules/json-server-auth/package.json').version") (npm) [behind nginx $(nginx -v 2>&1 | sed 's|.*nginx/||')]"
ip netns exec js-cli python3 "$root/scripts/jsonserver_traffic.py" run --work "$work" --labels "$labels" \
    --server "$SRV_IP" --port 80 --net "$NET." --duration "$duration" --time-scale "$scale" \
    --server-desc "$server_desc"
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=""
cat "$work/tcpdump.log" >&2
# the tools' output and the driver's summary (per-address counts, statuses) for checking
keep=${KEEP_DIR:-/tmp/js-last-run}
mkdir -p "$keep"
cp "$work/tools.log" "$work/driver-summary.json" "$work/access.log" "$work/json-server.log" "$keep/" 2>/dev/null || true
gzip -9 -f "$pcap"
chown "$(id -u):$(id -g)" "$pcap.gz"   # tcpdump wrote it as its own user
ls -l "$pcap.gz" "$labels"
