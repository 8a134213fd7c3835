#!/usr/bin/env bash
# Makes the labelled detection capture of a real Matrix homeserver:
# captures/synapse.pcap.gz and captures/synapse.labels.json (see captures/synapse.md).
#
# Synapse (matrix-synapse from PyPI, SQLite) listens on 127.0.0.1:8008 inside the server
# namespace sy-srv, behind nginx (nginx-light 1.22, HTTP/1.1 keep-alive to clients) on
# 10.82.0.2:80, the address of bridge sy-br. Clients live in namespace sy-cli (one veth
# into the bridge, many addresses, each persona binds its own) and sy-scan (ffuf, which
# cannot bind a source address). Users, rooms and messages are seeded over loopback
# inside sy-srv BEFORE tcpdump starts; then scripts/synapse_traffic.py drives ~600 s of
# benign personas and attacks and writes the labels with measured times.
#
# Needs (nothing is installed by this script):
#   - root, iproute2, ethtool, tcpdump, nginx (Debian nginx-light 1.22), curl, ffuf,
#     dirb (for /usr/share/dirb/wordlists/common.txt), python3 (3.11, stdlib only for
#     the clients), gzip
#   - a virtualenv with Synapse: python3 -m venv /work/venvs/synapse &&
#     /work/venvs/synapse/bin/pip install matrix-synapse==1.163.2
#     (override the path with SYNAPSE_VENV=...)
# Usage: sudo scripts/make-synapse-capture.sh [DURATION_S (default 600)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${1:-600}
venv=${SYNAPSE_VENV:-/work/venvs/synapse}
# SY_OUT / SY_LABELS / SY_SCALE: other output paths and a compressed timeline, for trials only
out=${SY_OUT:-$root/captures/synapse.pcap}
labels=${SY_LABELS:-$root/captures/synapse.labels.json}
scale=${SY_SCALE:-1}

SRV_NS=sy-srv
BR=sy-br
SRV_IP=10.82.0.2
PORT=80
CLIENT_NS=""

for tool in ip ethtool tcpdump nginx curl ffuf gzip python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$venv/bin/python" ] || { echo "no Synapse virtualenv at $venv" >&2; exit 1; }
[ -r /usr/share/dirb/wordlists/common.txt ] || { echo "missing dirb's common.txt" >&2; exit 1; }

work=$(mktemp -d /tmp/sy-capture.XXXXXX)
chmod 755 "$work"
pids=()
tcpdump_pid=""

ns_down() {
    for ns in $CLIENT_NS; do ip netns del "$ns" 2>/dev/null || true; done
    ip netns del "$SRV_NS" 2>/dev/null || true
}

cleanup() {
    set +e
    [ -n "$tcpdump_pid" ] && kill -INT "$tcpdump_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/nginx/nginx.pid" ] && kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null
    [ -f "$work/synapse/homeserver.pid" ] && kill "$(cat "$work/synapse/homeserver.pid")" 2>/dev/null
    sleep 2
    CLIENT_NS="sy-cli sy-scan"
    ns_down
    if [ -n "${SY_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- namespaces: server namespace with the bridge, client namespaces on veth pairs ---
client_ns() { # client_ns NAME ADDR...
    local name=$1
    shift
    ip netns add "$name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$SRV_NS"
    ip -n "$SRV_NS" link set "$name-b" mtu 1500 master "$BR" up
    ip -n "$name" link set lo up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for addr in "$@"; do ip -n "$name" addr add "$addr/24" dev "$name-a"; done
    ip netns exec "$name" ethtool -K "$name-a" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    ip netns exec "$SRV_NS" ethtool -K "$name-b" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    CLIENT_NS="$CLIENT_NS $name"
}

CLIENT_NS="sy-cli sy-scan"
ns_down
CLIENT_NS=""
ip netns add "$SRV_NS"
ip -n "$SRV_NS" link set lo up
ip -n "$SRV_NS" link add "$BR" type bridge
ip -n "$SRV_NS" link set "$BR" mtu 1500
ip -n "$SRV_NS" addr add "$SRV_IP/24" dev "$BR"
ip -n "$SRV_NS" link set "$BR" up
ip netns exec "$SRV_NS" ethtool -K "$BR" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true

# Every client address but ffuf's: benign .10-.28 and .30 and late-comers .50-.52, the
# established attackers .100 (burst) .104 (enumeration) .105 (unusual), the fresh
# .101 (stuffing) .102 (brute force) and the distributed stuffers .120-.131.
cli_addrs=$(for i in $(seq 10 28) 30 50 51 52 100 101 102 104 105 $(seq 120 131); do echo "10.82.0.$i"; done)
# shellcheck disable=SC2086
client_ns sy-cli $cli_addrs
client_ns sy-scan 10.82.0.103

# --- Synapse: generated config plus local changes (see captures/synapse.md) ---
mkdir -p "$work/synapse"
(cd "$work/synapse" && "$venv/bin/python" -m synapse.app.homeserver --server-name chat.example \
    --config-path homeserver.yaml --generate-config --report-stats=no >/dev/null)
python3 - "$work/synapse/homeserver.yaml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
# only the client listener (no federation), IPv4 loopback only
text = text.replace("    - ::1\n", "").replace("      - federation\n", "")
text = re.sub(r'trusted_key_servers:\n  - server_name: "matrix.org"\n', "trusted_key_servers: []\n", text)
many = "{per_second: 1000, burst_count: 10000}"
text += f"""
# --- changes for the capture ---
public_baseurl: "http://chat.example/"
enable_registration: false
suppress_key_server_warning: true
federation_domain_whitelist: []
user_directory:
  search_all_users: true
# presence off, as on many large servers: fewer /sync wake-ups and a smaller capture
presence:
  enabled: false
# rate limits raised so that attacks and the burst are not simply cut off by 429
rc_message: {many}
rc_registration: {many}
rc_registration_token_validity: {many}
rc_login:
  address: {many}
  account: {many}
  failed_attempts: {many}
rc_admin_redaction: {many}
rc_joins:
  local: {many}
  remote: {many}
rc_joins_per_room: {many}
rc_3pid_validation: {many}
rc_invites:
  per_room: {many}
  per_user: {many}
  per_issuer: {many}
rc_room_creation: {many}
rc_presence:
  per_user: {many}
rc_user_directory: {many}
rc_delayed_event_mgmt: {many}
rc_reports: {many}
rc_media_create: {many}
rc_key_requests: {many}
rc_profile: {many}
"""
open(path, "w").write(text)
PY
ip netns exec "$SRV_NS" "$venv/bin/python" -m synapse.app.homeserver -c "$work/synapse/homeserver.yaml" \
    >"$work/synapse/stdout.log" 2>&1 &
pids+=($!)

# --- nginx in front, the usual reverse-proxy block from Synapse's docs + the admin API ---
mkdir -p "$work/nginx/tmp"
chmod 777 "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    keepalive_timeout 75s;
    upstream synapse { server 127.0.0.1:8008; keepalive 32; }
    server {
        listen $SRV_IP:$PORT;
        server_name chat.example;
        location ~ ^(/_matrix|/_synapse/client|/_synapse/admin) {
            proxy_pass http://synapse;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header Host \$host;
            client_max_body_size 50M;
            proxy_read_timeout 90s;
        }
        location = /.well-known/matrix/client {
            default_type application/json;
            return 200 '{"m.homeserver":{"base_url":"http://chat.example"}}';
        }
        location = /.well-known/matrix/server {
            default_type application/json;
            return 200 '{"m.server":"chat.example:443"}';
        }
        location / { return 404; }
    }
}
CONF
ip netns exec "$SRV_NS" nginx -c "$work/nginx/nginx.conf"

ok=""
for _ in $(seq 120); do
    if ip netns exec sy-cli curl -sf -o /dev/null "http://$SRV_IP:$PORT/_matrix/client/versions"; then ok=1; break; fi
    sleep 1
done
[ -n "$ok" ] || { echo "Synapse did not come up" >&2; tail -20 "$work/synapse/homeserver.log" >&2; exit 1; }

# --- seeding over loopback inside sy-srv, before the capture ---
secret=$(sed -n 's/^registration_shared_secret: "\(.*\)"$/\1/p' "$work/synapse/homeserver.yaml")
ip netns exec "$SRV_NS" python3 "$root/scripts/synapse_traffic.py" seed \
    --base http://127.0.0.1:8008 --secret "$secret" --out "$work/seed.json"

# --- capture ---
ip netns exec "$SRV_NS" tcpdump -i "$BR" --immediate-mode -s 0 -U -w "$out" tcp port "$PORT" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
sleep 2

ip netns exec sy-cli python3 "$root/scripts/synapse_traffic.py" run \
    --base "http://$SRV_IP:$PORT" --seed "$work/seed.json" --duration "$duration" \
    --scan-ns sy-scan --labels "$labels" --work "$work" --scale "$scale" \
    --server-version "$("$venv/bin/python" -c 'import synapse; print(synapse.__version__)')"

sleep 3
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
tcpdump_pid=""
cat "$work/tcpdump.log" >&2 || true
gzip -9 -f "$out"
ls -l "$out.gz" "$labels"
