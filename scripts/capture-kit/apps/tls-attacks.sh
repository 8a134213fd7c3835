# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# tls-attacks: the labelled detection capture of HTTPS traffic without keys,
# captures/tls-attacks.pcap.gz (labels: the hand-written captures/tls-attacks.labels.json,
# see captures/tls-attacks.md). scripts/capture-kit/api_server.py (failed logins 403, as
# in attacks.sh, for hydra) on 127.0.0.1:8080 in the server namespace behind nginx
# terminating TLS on 10.77.0.2:443 (TLS 1.2 and 1.3, ALPN h2 and http/1.1, a throwaway
# self-signed P-256 certificate for api.example.test made here with openssl and removed
# with the work directory; keepalive_timeout 75 s, nginx's default). No key log is
# written anywhere: the capture holds only what a passive sensor sees. Clients reach
# https://api.example.test through their namespace's own /etc/hosts (a bind mount in a
# private mount namespace, `unshare -m`), so they send that SNI and verify the cert.
#
# Layout: tw-srv (bridge tw-br 10.77.0.2, nginx :443, api_server.py 127.0.0.1:8080,
# tcpdump `tcp port 443` on tw-br); tw-cli (benign 10.77.0.10-30, .31-.35 unused,
# apps/tls_clients.py);
# tw-burst 10.77.0.100 (curl), tw-brute 10.77.0.101 and tw-stuff 10.77.0.102 (hydra).
#
# Timeline (seconds from the start; replay with --learning-period 2m):
#   0-330  benign, each on its own address:
#          10.77.0.10-24  15 users: python requests.Session (one keep-alive TLS connection),
#                         a login, then 1-3 calls every 5-20 s; a new session (connection,
#                         login) every 60-150 s; .12 and .17 mistype twice, .21 once
#          10.77.0.25-27  3 browser-like clients: curl --http1.1 --parallel (4-6 connections)
#                         for a page of 10-30 URLs, then 20-60 s idle
#          10.77.0.28-29  2 pollers: curl, a fresh TLS connection per request every 2-5 s
#          10.77.0.30     NAT'ed office: 10 users, one requests.Session each, 4 of them
#                         mistype 1-3 times before the right password
#   0-148  10.77.0.100 (the burst client) is an ordinary client first: curl every 4 s
#   150    burst: 10.77.0.100, for 15 s batches of 100 requests (at most one a second),
#          curl --parallel --parallel-max 10 --http1.1 -H 'Connection: close' (a new TLS
#          connection each)
#   180    brute force: 10.77.0.101, hydra -l admin -P 100 passwords -t 4 -S https-post-form
#   230    credential stuffing: 10.77.0.102, hydra -L 60 users -p 1 password (same form)
#   270    tool switch (benign, evidence only): user 10.77.0.14 also runs 20 curl requests,
#          a fresh connection a second, besides its python session
#   330    end (tcpdump stops 2 s later)
# Needs nginx (nginx-light 1.22: ssl, http_v2), openssl, curl, hydra, python3 with requests.
# --scale F (F < 1) runs the same timeline faster for a trial (output under /tmp).
APP_DESC="HTTPS (nginx TLS, no keys) api_server.py with hydra, curl and python clients (330 s, fixed timeline)"
APP_NEEDS="nginx openssl curl hydra python3 unshare gzip"
APP_FILES=""
APP_TIMELINE=scaled

app_defaults() {
    OUT=${OUT:-$root/captures/tls-attacks.pcap}
    DURATION=${DURATION:-330}
}

# tw_exec NS CMD...: CMD in namespace NS, seeing $KIT_WORK/hosts as /etc/hosts (ip,
# unshare and sh all exec: with kit_bg, the process id kept is CMD's own).
tw_exec() {
    local ns=$1
    shift
    # shellcheck disable=SC2016  # $0 and $@ are the inner sh's
    exec ip netns exec "$ns" unshare -m --propagation private \
        sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$KIT_WORK/hosts" "$@"
}
tw_run() { (tw_exec "$@"); }

app_run() {
    [ "$DURATION" = 330 ] || kit_die "tls-attacks has a fixed 330 s timeline (--scale for a trial)"
    local duration url=https://api.example.test w i
    duration=$(kit_scaled 330)
    kit_work tw-capture
    w=$KIT_WORK
    echo "10.77.0.2 api.example.test" >"$w/hosts"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=api.example.test/O=apiwatch throwaway" -addext "subjectAltName=DNS:api.example.test" \
        -keyout "$w/key.pem" -out "$w/cert.pem" 2>/dev/null

    kit_bridge_up tw-srv tw-br 10.77.0.2
    # shellcheck disable=SC2046
    kit_bridge_client tw-cli $(seq -f "10.77.0.%g" 10 35)
    kit_bridge_client tw-burst 10.77.0.100
    kit_bridge_client tw-brute 10.77.0.101
    kit_bridge_client tw-stuff 10.77.0.102

    # hydra takes a 401 for HTTP authentication, not a failed form login: answer 403.
    LOGIN_FAIL_STATUS=403 kit_bg ip netns exec tw-srv python3 "$kit/api_server.py" 127.0.0.1 8080 >/dev/null 2>&1
    kit_nginx tw-srv <<CONF
    log_format tw '\$msec \$remote_addr \$ssl_protocol \$server_protocol "\$request" \$status \$body_bytes_sent \$connection \$connection_requests';
    access_log $w/access.log tw;
    upstream api { server 127.0.0.1:8080; keepalive 16; }
    server {
        listen 10.77.0.2:443 ssl http2;
        server_name api.example.test;
        server_tokens off;
        ssl_certificate $w/cert.pem;
        ssl_certificate_key $w/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_read_timeout 30s;
        }
    }
CONF
    kit_wait_tcp tw-srv 127.0.0.1 8080
    tw_run tw-cli curl -sf -o /dev/null --cacert "$w/cert.pem" -m 5 --retry 20 --retry-connrefused \
        --retry-delay 1 "$url/health" || kit_die "nginx does not answer on $url"
    KIT_SETTLE=2 kit_capture_start tw-srv tw-br "$OUT" "tcp port 443"

    python3 - "$w/plan.json" "$w/clients.log" <<'PY'
import json, sys
ips = ["10.77.0.%d" % n for n in range(10, 36)]
json.dump({"users": ips[0:15], "browsers": ips[15:18], "pollers": ips[18:20], "office": ips[20],
           "switch": ["10.77.0.14", 270], "log": sys.argv[2]}, open(sys.argv[1], "w"))
PY
    kit_bg tw_exec tw-cli python3 "$kit/apps/tls_clients.py" "$w/cert.pem" "$duration" "$SCALE" "$w/plan.json"
    local start
    start=$(date +%s)
    at() { # at SECONDS: sleep until that many (scaled) seconds after the start
        local wait=$(($(kit_scaled "$1") - ($(date +%s) - start)))
        [ "$wait" -gt 0 ] && sleep "$wait"
        return 0
    }
    # The burst client is an ordinary client first (so it has a baseline of its own).
    kit_bg tw_exec tw-burst bash -c "end=\$((\$(date +%s) + $(kit_scaled 148))); while [ \$(date +%s) -lt \$end ]; do curl -s -o /dev/null -m 10 --cacert $w/cert.pem $url/api/items; sleep 4; done"

    for i in $(seq 60); do printf 'user%02d@example.com\n' "$i"; done >"$w/users.txt"
    for i in $(seq 100); do printf 'Password%02d!\n' "$i"; done >"$w/passwords.txt"
    local b
    for b in $(seq 15); do
        for i in $(seq 100); do printf 'url = "%s/api/items?n=%d"\noutput = "/dev/null"\n' "$url" $((b * 100 + i)); done >"$w/burst$b.curl"
    done

    at 150
    # One batch of 100 requests a second at most, for 15 s: as many new connections a
    # second as this machine allows up to 100 (the count is in tls-attacks.md).
    local t0 b0 el
    t0=$(date +%s.%N)
    for b in $(seq 15); do
        el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print (b - a >= 15 ? 1 : 0) }')
        [ "$el" = 1 ] && break
        b0=$(date +%s.%N)
        tw_run tw-burst timeout 20 curl -s --no-progress-meter --http1.1 --cacert "$w/cert.pem" -m 10 \
            -H 'Connection: close' --parallel --parallel-max 10 -K "$w/burst$b.curl" >/dev/null 2>&1 || true
        sleep "$(awk -v a="$b0" -v b="$(date +%s.%N)" 'BEGIN { d = 1 - (b - a); print (d > 0 ? d : 0) }')"
    done
    echo "burst: $b batches of 100 requests in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s" >&2
    at 180
    tw_run tw-brute timeout 45 hydra -l admin -P "$w/passwords.txt" -t 4 -S -s 443 api.example.test \
        https-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >"$w/hydra-brute.log" 2>&1 || true
    echo "brute force: $(grep -E 'completed|valid password' "$w/hydra-brute.log" | tr '\n' ' ')" >&2
    at 230
    tw_run tw-stuff timeout 35 hydra -L "$w/users.txt" -p 'Summer2024!' -t 4 -S -s 443 api.example.test \
        https-post-form '/api/login:username=^USER^&password=^PASS^:F=invalid' >"$w/hydra-stuff.log" 2>&1 || true
    echo "stuffing: $(grep -E 'completed|valid password' "$w/hydra-stuff.log" | tr '\n' ' ')" >&2
    at "$((330 + 2))"
    KIT_SETTLE=2 kit_capture_stop
    awk '{ n[$2]++ } END { for (a in n) print a, n[a] }' "$w/access.log" | sort -V >"$w/requests-per-address.txt"
    kit_keep_logs "$w/access.log" "$w/clients.log" "$w/hydra-brute.log" "$w/hydra-stuff.log" \
        "$w/requests-per-address.txt" "$KIT_WORK/nginx/error.log"
    kit_gzip "$OUT"
    ls -l "$OUT.gz"
}
