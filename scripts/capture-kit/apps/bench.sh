# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# bench: the large capture the replay benchmarks read (docs/performance.md): wrk
# (client) against nginx (server) over one veth pair, traffic mix scripts/bench-
# traffic.lua. Env: KEEPALIVE_REQUESTS=N (nginx closes a connection after N requests,
# default 1000; with 64 no direction of a connection passes 1 MiB, Suricata's default
# stream depth), WRK_DELAY_MS=N (paces each connection, see bench-traffic.lua).
# scripts/bench-live.sh sources this file for bench_env_up.
APP_DESC="wrk against nginx, the replay benchmark's capture (uncompressed; --duration default 20)"
APP_NEEDS="nginx wrk"
APP_TIMELINE=duration

app_defaults() {
    OUT=${OUT:-$root/bench-data/api-bench.pcap}
    DURATION=${DURATION:-20}
}

# bench_env_up: namespaces aw-cli/aw-srv (client device aw-cli-v, 10.77.0.1 ->
# 10.77.0.2) and nginx on 10.77.0.2:8080 with the benchmark's JSON endpoints and
# 8/32/128 KiB static files, in $KIT_WORK; all torn down on exit.
bench_env_up() {
    kit_work aw-bench
    kit_pair_up aw-cli aw-srv 10.77.0.1 10.77.0.2
    local size
    mkdir -p "$KIT_WORK/www/static"
    for size in 8 32 128; do
        head -c "$((size * 1024))" /dev/urandom >"$KIT_WORK/www/static/${size}k.bin"
    done
    kit_nginx aw-srv <<CONF
    access_log off;
    keepalive_requests ${KEEPALIVE_REQUESTS:-1000};
    server {
        listen 10.77.0.2:8080;
        root $KIT_WORK/www;
        location /api/users/ { default_type application/json; return 200 '{"id":1,"name":"user","roles":["reader"],"created":"2026-01-01T00:00:00Z"}'; }
        location = /api/login { default_type application/json; return 401 '{"error":"invalid credentials"}'; }
        location /api/orders { default_type application/json; return 200 '[{"order":1,"total":7},{"order":2,"total":14},{"order":3,"total":21},{"order":4,"total":28}]'; }
    }
CONF
    kit_wait_tcp aw-cli 10.77.0.2 8080
}

app_run() {
    mkdir -p "$(dirname "$OUT")"
    bench_env_up
    kit_capture_start aw-cli aw-cli-v "$OUT" tcp
    ip netns exec aw-cli wrk -t 1 -c 16 -d "${DURATION}s" -s "$root/scripts/bench-traffic.lua" \
        http://10.77.0.2:8080 || true
    kit_capture_stop
    ls -l "$OUT"
}
