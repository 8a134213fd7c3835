#!/usr/bin/env bash
# Makes the labelled detection capture (captures/attacks.pcap.gz): a real JSON API
# (scripts/api_server.py) in one network namespace behind a bridge, benign clients
# and attackers in others, each attacker on its own address, captured on the bridge
# with tcpdump. Labels: captures/attacks.labels.json. Needs root, iproute2, ethtool,
# tcpdump, curl, hydra, ffuf, dirb (for its wordlist), python3.
#
# Timeline (seconds from the start; replay with --learning-period 2m):
#   0-150  warm-up: 20 benign users, a NAT'ed office, a steady 12 req/s integration
#   150    burst: an established client fires 1500 requests with curl --parallel
#   170    credential stuffing: hydra, 60 usernames x 1 password
#   200    brute force: hydra, 1 username x 60 passwords
#   230    endpoint scan: ffuf with dirb's common.txt for 15 s (2 threads, 20 ms delay)
#   250    object enumeration: /api/users/1..300 at 20 req/s
#   270    unusual endpoint: an established client calls /admin/export
#   150-330 distributed stuffing: 12 addresses, one new username each every ~20 s
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures/attacks.pcap}
duration=330
. "$root/scripts/netns.sh"

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    netns_bridge_down
    rm -rf "$work"
}
trap cleanup EXIT
netns_bridge_up
benign=$(seq -f "10.77.0.%g" 10 29 | tr '\n' ' ')
dist=$(seq -f "10.77.0.%g" 120 131 | tr '\n' ' ')
# shellcheck disable=SC2086
netns_client aw-cli $benign 10.77.0.30 10.77.0.31 10.77.0.104 10.77.0.105 $dist
netns_client aw-burst 10.77.0.100
netns_client aw-stuff 10.77.0.101
netns_client aw-brute 10.77.0.102
netns_client aw-scan 10.77.0.103

# hydra takes a 401 for HTTP authentication, not a failed form login: answer 403.
LOGIN_FAIL_STATUS=403 ip netns exec "$AW_SRV" python3 "$root/scripts/api_server.py" "$AW_SRV_IP" 8080 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    ip netns exec aw-cli bash -c "exec 3<>/dev/tcp/$AW_SRV_IP/8080" 2>/dev/null && break
    sleep 0.1
done
ip netns exec "$AW_SRV" tcpdump -i aw-br --immediate-mode -s 0 -U -w "$out" tcp 2>/dev/null &
tcpdump_pid=$!
sleep 1

python3 - "$work/plan.json" "$benign" "$dist" <<'PY'
import json, sys
json.dump({"benign": sys.argv[2].split(), "nat_office": "10.77.0.30", "steady": "10.77.0.31",
           "enumeration": ["10.77.0.104", 250], "unusual": ["10.77.0.105", 270],
           "distributed": [sys.argv[3].split(), 150, 330]}, open(sys.argv[1], "w"))
PY
ip netns exec aw-cli python3 "$root/scripts/attack_clients.py" "$AW_SRV_IP" 8080 "$duration" "$work/plan.json" &
pids+=($!)
start=$(date +%s)
at() { # at SECONDS: sleep until that many seconds after the start
    local wait=$(($1 - ($(date +%s) - start)))
    [ "$wait" -gt 0 ] && sleep "$wait"
    return 0
}
srv="http://$AW_SRV_IP:8080"

# The burst client is an ordinary user first (so it has a baseline of its own).
ip netns exec aw-burst bash -c "end=\$((\$(date +%s) + 148)); while [ \$(date +%s) -lt \$end ]; do curl -s -o /dev/null $srv/api/items; sleep 4; done" &
pids+=($!)

for i in $(seq 60); do printf 'user%02d@example.com\n' "$i"; done >"$work/users.txt"
for i in $(seq 60); do printf 'Password%02d!\n' "$i"; done >"$work/passwords.txt"
for i in $(seq 1500); do printf 'url = "%s/api/items?n=%d"\noutput = "/dev/null"\n' "$srv" "$i"; done >"$work/burst.curl"

at 150
ip netns exec aw-burst curl -s --no-progress-meter --parallel --parallel-max 4 -K "$work/burst.curl" >/dev/null 2>&1 || true
at 170
ip netns exec aw-stuff hydra -L "$work/users.txt" -p 'Summer2024!' -t 4 -s 8080 "$AW_SRV_IP" \
    http-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >/dev/null 2>&1 || true
at 200
ip netns exec aw-brute hydra -l admin -P "$work/passwords.txt" -t 4 -s 8080 "$AW_SRV_IP" \
    http-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >/dev/null 2>&1 || true
at 230
ip netns exec aw-scan ffuf -s -w /usr/share/dirb/wordlists/common.txt -u "$srv/FUZZ" -t 2 -p 0.02 -maxtime 15 \
    -mc 200 >/dev/null 2>&1 || true
at "$((duration + 5))"
sleep 2
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" || true
gzip -9 -f "$out"
ls -l "$out.gz"
