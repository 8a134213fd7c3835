#!/usr/bin/env bash
# Makes the labelled Kinto detection capture: captures/kinto.pcap.gz and
# captures/kinto.labels.json (see captures/kinto.md).
#
# Server: Kinto 26.5.0 (Mozilla's JSON storage/sync API, from PyPI) with the accounts
# plugin (HTTP Basic on every request, 'account' multiauth policy), admin and history
# plugins, memory storage/permission/cache backends, served by waitress on
# 127.0.0.1:8888 inside the server namespace, behind nginx (nginx-light 1.22, HTTP/1.1
# keep-alive to the clients) on 10.81.0.2:8080. The capture is tcpdump on the bridge
# ki-br, so it holds client <-> nginx traffic only.
#
# Needs (installs nothing): root, iproute2, ethtool, tcpdump, nginx (nginx-light),
# curl, hydra (9.4), ffuf (1.1.0), dirb (for /usr/share/dirb/wordlists/common.txt),
# gzip, python3 (3.11, stdlib only on the client side), and a virtualenv with Kinto:
#     python3 -m venv /work/venvs/kinto && /work/venvs/kinto/bin/pip install kinto==26.5.0
# (pulls waitress 3.0.2, pyramid 2.1, bcrypt 5.0.0). Override with KINTO_VENV=DIR.
#
# Layout (all names start with "ki", subnet 10.81.0.0/24, nothing leaves it):
#   ki-srv   : bridge ki-br 10.81.0.2/24, nginx :8080, kinto 127.0.0.1:8888, tcpdump
#   ki-cli   : benign clients .10-.26 .30 .31 .40 .50-.52, established attackers .100
#              (burst) .104 (enumeration) .105 (unusual), distributed stuffing .120-.131
#   ki-stuff : .101 hydra credential stuffing      ki-brute : .102 hydra brute force
#   ki-scan  : .103 ffuf endpoint scan
# Seeding (63 accounts, 1405 records in 7 buckets / 43 collections) happens BEFORE tcpdump starts.
#
# Usage: sudo scripts/make-kinto-capture.sh
#   env SCALE=0.2 compresses the timeline (dry runs); OUT=/path/x.pcap and
#   LABELS=/path/x.json redirect the outputs; KEEP_LOGS=DIR keeps the driver's
#   request log and nginx's access log there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
VENV=${KINTO_VENV:-/work/venvs/kinto}
SCALE=${SCALE:-1}
OUT=${OUT:-$root/captures/kinto.pcap}
LABELS=${LABELS:-$root/captures/kinto.labels.json}
DURATION=600
SRV_IP=10.81.0.2
PORT=8080
SRV_NS=ki-srv
BR=ki-br

[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for c in ip ethtool tcpdump nginx curl hydra ffuf gzip python3; do
    command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 1; }
done
[ -x "$VENV/bin/kinto" ] || { echo "missing $VENV/bin/kinto (pip install kinto==26.5.0)" >&2; exit 1; }
[ -f /usr/share/dirb/wordlists/common.txt ] || { echo "missing dirb wordlist" >&2; exit 1; }

work=$(mktemp -d /tmp/kinto-capture.XXXXXX)
chmod 755 "$work"
CLIENT_NS=(ki-cli ki-stuff ki-brute ki-scan)
pids=()
tcpdump_pid=""
cleanup() {
    set +e
    [ -n "$tcpdump_pid" ] && kill -INT "$tcpdump_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    sleep 1
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS"
        cp -f "$work"/requests.tsv "$work"/access.log "$work"/kinto.log "$work"/manifest.json "$KEEP_LOGS"/ 2>/dev/null
    fi
    for ns in "${CLIENT_NS[@]}" "$SRV_NS"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

offload_off() { # NS DEV
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}

# ---- namespaces: server + bridge, then one veth pair per client namespace
for ns in "${CLIENT_NS[@]}" "$SRV_NS"; do ip netns del "$ns" 2>/dev/null || true; done
ip netns add "$SRV_NS"
ip -n "$SRV_NS" link set lo up
ip -n "$SRV_NS" link add "$BR" type bridge
ip -n "$SRV_NS" link set "$BR" mtu 1500
ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$BR"
ip -n "$SRV_NS" link set "$BR" up
offload_off "$SRV_NS" "$BR"

client_ns() { # NAME ADDR...
    local name=$1
    shift
    ip netns add "$name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$SRV_NS"
    ip -n "$SRV_NS" link set "$name-b" mtu 1500 master "$BR" up
    ip -n "$name" link set lo up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for a in "$@"; do ip -n "$name" addr add "$a/24" dev "$name-a"; done
    offload_off "$name" "$name-a"
    offload_off "$SRV_NS" "$name-b"
}
cli_addrs=()
for i in $(seq 10 26) 30 31 40 50 51 52 100 104 105 $(seq 120 131); do cli_addrs+=("10.81.0.$i"); done
client_ns ki-cli "${cli_addrs[@]}"
client_ns ki-stuff 10.81.0.101
client_ns ki-brute 10.81.0.102
client_ns ki-scan 10.81.0.103

# ---- Kinto (waitress) on 127.0.0.1:8888 in the server namespace
cat >"$work/kinto.ini" <<EOF
[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.permission_backend = kinto.core.permission.memory
kinto.includes = kinto.plugins.accounts
                 kinto.plugins.admin
                 kinto.plugins.history
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.userid_hmac_secret = 3b7e1f0c9d2a4c6e8f1a2b3c4d5e6f708192a3b4c5d6e7f8
kinto.account_create_principals = system.Everyone
kinto.account_write_principals = account:admin
kinto.account_read_principals = account:admin
kinto.bucket_create_principals = account:admin
kinto.experimental_permissions_endpoint = true
kinto.account_cache_ttl_seconds = 300
kinto.http_host = $SRV_IP:$PORT
kinto.http_scheme = http

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = 8888
threads = 4

[loggers]
keys = root
[handlers]
keys = console
[formatters]
keys = generic
[logger_root]
level = WARNING
handlers = console
[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic
[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s] %(message)s
EOF
ip netns exec "$SRV_NS" "$VENV/bin/kinto" start --ini "$work/kinto.ini" >"$work/kinto.log" 2>&1 &
pids+=($!)

# ---- nginx reverse proxy on 10.81.0.2:8080 (keep-alive to clients and to kinto)
mkdir -p "$work/nginx-tmp"
cat >"$work/nginx.conf" <<EOF
user root;
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    log_format ki '\$msec \$remote_addr "\$request" \$status \$body_bytes_sent';
    access_log $work/access.log ki;
    client_body_temp_path $work/nginx-tmp/body;
    proxy_temp_path $work/nginx-tmp/proxy;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    upstream kinto { server 127.0.0.1:8888; keepalive 16; }
    server {
        listen $SRV_IP:$PORT;
        server_tokens off;
        client_max_body_size 1m;
        location / {
            proxy_pass http://kinto;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_read_timeout 30s;
        }
    }
}
EOF
ip netns exec "$SRV_NS" nginx -c "$work/nginx.conf"

for _ in $(seq 150); do
    if ip netns exec ki-cli curl -sf -o /dev/null -m 2 "http://$SRV_IP:$PORT/v1/__heartbeat__"; then break; fi
    sleep 0.2
done
ip netns exec ki-cli curl -sf -o /dev/null -m 2 "http://$SRV_IP:$PORT/v1/__heartbeat__" \
    || { echo "kinto did not come up" >&2; cat "$work/kinto.log" >&2; exit 1; }

# ---- seed (not captured)
ip netns exec ki-cli python3 "$root/scripts/kinto_traffic.py" seed --manifest "$work/manifest.json" --src 10.81.0.10
: >"$work/access.log"   # the access log then only covers the captured period

# ---- capture + traffic
rm -f "$OUT" "$OUT.gz"
ip netns exec "$SRV_NS" tcpdump -i "$BR" --immediate-mode -s 0 -U -w "$OUT" "tcp port $PORT" 2>"$work/tcpdump.err" &
tcpdump_pid=$!
sleep 2
kver=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kinto"), m.version("waitress"))')
ngv=$(nginx -v 2>&1 | sed 's|.*nginx/||')
ip netns exec ki-cli timeout $(( ${DURATION%.*} * 2 + 300 )) python3 "$root/scripts/kinto_traffic.py" run \
    --manifest "$work/manifest.json" --workdir "$work" --labels "$LABELS" --scale "$SCALE" \
    --server-desc "Kinto ${kver% *} (PyPI, waitress ${kver#* }, accounts+admin+history plugins, memory backend) [behind nginx $ngv]"
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=""
cat "$work/tcpdump.err" >&2 || true
gzip -9 -f "$OUT"
ls -l "$OUT.gz" "$LABELS"
