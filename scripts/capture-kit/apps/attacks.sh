# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# attacks: the labelled detection capture captures/attacks.pcap.gz (labels: the hand-
# written captures/attacks.labels.json): scripts/capture-kit/api_server.py behind a
# bridge, benign clients and attackers in other namespaces, each attacker on its own
# address, captured on the bridge. Timeline (seconds from the start; replay with
# --learning-period 2m):
#   0-150  warm-up: 20 benign users, a NAT'ed office, a steady 12 req/s integration
#   150    burst: an established client fires 1500 requests with curl --parallel
#   170    credential stuffing: hydra, 60 usernames x 1 password
#   200    brute force: hydra, 1 username x 60 passwords
#   230    endpoint scan: ffuf with dirb's common.txt for 15 s (2 threads, 20 ms delay)
#   250    object enumeration: /api/users/1..300 at 20 req/s
#   270    unusual endpoint: an established client calls /admin/export
#   150-330 distributed stuffing: 12 addresses, one new username each every ~20 s
APP_DESC="api_server.py with hydra, ffuf, curl and scripted attackers (330 s, fixed timeline)"
APP_NEEDS="curl hydra ffuf python3 gzip"
APP_FILES="/usr/share/dirb/wordlists/common.txt"

app_defaults() { OUT=${OUT:-$root/captures/attacks.pcap}; }

app_run() {
    local duration=330 srv=http://10.77.0.2:8080 w
    kit_work aw-attacks
    w=$KIT_WORK
    kit_bridge_up aw-srv aw-br 10.77.0.2
    local benign dist
    benign=$(seq -f "10.77.0.%g" 10 29 | tr '\n' ' ')
    dist=$(seq -f "10.77.0.%g" 120 131 | tr '\n' ' ')
    # shellcheck disable=SC2086
    kit_bridge_client aw-cli $benign 10.77.0.30 10.77.0.31 10.77.0.104 10.77.0.105 $dist
    kit_bridge_client aw-burst 10.77.0.100
    kit_bridge_client aw-stuff 10.77.0.101
    kit_bridge_client aw-brute 10.77.0.102
    kit_bridge_client aw-scan 10.77.0.103

    # hydra takes a 401 for HTTP authentication, not a failed form login: answer 403.
    LOGIN_FAIL_STATUS=403 kit_bg ip netns exec aw-srv python3 "$kit/api_server.py" 10.77.0.2 8080 >/dev/null 2>&1
    kit_wait_tcp aw-cli 10.77.0.2 8080
    kit_capture_start aw-srv aw-br "$OUT" tcp

    python3 - "$w/plan.json" "$benign" "$dist" <<'PY'
import json, sys
json.dump({"benign": sys.argv[2].split(), "nat_office": "10.77.0.30", "steady": "10.77.0.31",
           "enumeration": ["10.77.0.104", 250], "unusual": ["10.77.0.105", 270],
           "distributed": [sys.argv[3].split(), 150, 330]}, open(sys.argv[1], "w"))
PY
    kit_bg ip netns exec aw-cli python3 "$kit/apps/attack_clients.py" 10.77.0.2 8080 "$duration" "$w/plan.json"
    local start
    start=$(date +%s)
    at() { # at SECONDS: sleep until that many seconds after the start
        local wait=$(($1 - ($(date +%s) - start)))
        [ "$wait" -gt 0 ] && sleep "$wait"
        return 0
    }
    # The burst client is an ordinary user first (so it has a baseline of its own).
    kit_bg ip netns exec aw-burst bash -c "end=\$((\$(date +%s) + 148)); while [ \$(date +%s) -lt \$end ]; do curl -s -o /dev/null $srv/api/items; sleep 4; done"

    local i
    for i in $(seq 60); do printf 'user%02d@example.com\n' "$i"; done >"$w/users.txt"
    for i in $(seq 60); do printf 'Password%02d!\n' "$i"; done >"$w/passwords.txt"
    for i in $(seq 1500); do printf 'url = "%s/api/items?n=%d"\noutput = "/dev/null"\n' "$srv" "$i"; done >"$w/burst.curl"

    at 150
    ip netns exec aw-burst timeout 60 curl -s --no-progress-meter --parallel --parallel-max 4 -K "$w/burst.curl" >/dev/null 2>&1 || true
    at 170
    ip netns exec aw-stuff timeout 120 hydra -L "$w/users.txt" -p 'Summer2024!' -t 4 -s 8080 10.77.0.2 \
        http-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >/dev/null 2>&1 || true
    at 200
    ip netns exec aw-brute timeout 120 hydra -l admin -P "$w/passwords.txt" -t 4 -s 8080 10.77.0.2 \
        http-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >/dev/null 2>&1 || true
    at 230
    ip netns exec aw-scan ffuf -s -w /usr/share/dirb/wordlists/common.txt -u "$srv/FUZZ" -t 2 -p 0.02 -maxtime 15 \
        -mc 200 >/dev/null 2>&1 || true
    at "$((duration + 5))"
    KIT_SETTLE=2 kit_capture_stop
    kit_gzip "$OUT"
    ls -l "$OUT.gz"
}
