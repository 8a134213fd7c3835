# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# kinto: captures/kinto.pcap.gz + .labels.json (see captures/kinto.md): Kinto 26.5.0
# (PyPI) with the accounts (HTTP Basic on every request), admin and history plugins,
# memory backends, waitress on 127.0.0.1:8888 behind nginx on 10.81.0.2:8080;
# personas from kinto_traffic.py, hydra (stuffing, brute force), ffuf (scan), curl (burst).
# Install: python3 -m venv /work/venvs/kinto && /work/venvs/kinto/bin/pip install kinto==26.5.0
#   (another place: KINTO_VENV=DIR)
# Layout: ki-srv (bridge ki-br 10.81.0.2, nginx :8080, kinto :8888, tcpdump); ki-cli
# (benign .10-.26 .30 .31 .40 .50-.52, established attackers .100 .104 .105,
# distributed stuffing .120-.131); ki-stuff .101, ki-brute .102 (hydra); ki-scan .103 (ffuf).
# Seeding (63 accounts, 1405 records in 7 buckets / 43 collections) happens before tcpdump.
APP_DESC="Kinto (PyPI) behind nginx, labelled (600 s)"
APP_NEEDS="nginx curl hydra ffuf python3 gzip"
APP_FILES="/usr/share/dirb/wordlists/common.txt ${KINTO_VENV:-/work/venvs/kinto}/bin/kinto"
APP_TIMELINE=scaled

app_defaults() { OUT=${OUT:-$root/captures/kinto.pcap}; }

app_run() {
    local venv=${KINTO_VENV:-/work/venvs/kinto} ip=10.81.0.2 port=8080 w i
    kit_work kinto-capture
    w=$KIT_WORK
    kit_bridge_up ki-srv ki-br "$ip"
    local cli_addrs=()
    for i in $(seq 10 26) 30 31 40 50 51 52 100 104 105 $(seq 120 131); do cli_addrs+=("10.81.0.$i"); done
    kit_bridge_client ki-cli "${cli_addrs[@]}"
    kit_bridge_client ki-stuff 10.81.0.101
    kit_bridge_client ki-brute 10.81.0.102
    kit_bridge_client ki-scan 10.81.0.103

    sed -e "s/@HTTP_HOST@/$ip:$port/" "$kit/apps/kinto.ini" >"$w/kinto.ini"
    kit_bg ip netns exec ki-srv "$venv/bin/kinto" start --ini "$w/kinto.ini" >"$w/kinto.log" 2>&1
    kit_nginx ki-srv <<CONF
    log_format ki '\$msec \$remote_addr "\$request" \$status \$body_bytes_sent';
    access_log $w/access.log ki;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    upstream kinto { server 127.0.0.1:8888; keepalive 16; }
    server {
        listen $ip:$port;
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
CONF
    kit_wait_http ki-cli "http://$ip:$port/v1/__heartbeat__" 150 0.2 || { cat "$w/kinto.log" >&2; exit 1; }

    # seed (not captured); the access log then only covers the captured period
    kit_run ip netns exec ki-cli python3 "$kit/apps/kinto_traffic.py" seed --manifest "$w/manifest.json" --src 10.81.0.10
    : >"$w/access.log"

    KIT_SETTLE=2 kit_capture_start ki-srv ki-br "$OUT" "tcp port $port"
    local kver
    kver=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kinto"), m.version("waitress"))')
    kit_run ip netns exec ki-cli timeout "$(kit_driver_timeout)" python3 "$kit/apps/kinto_traffic.py" run \
        --manifest "$w/manifest.json" --workdir "$w" --labels "$LABELS" --scale "$SCALE" --duration "$DURATION" \
        --server-desc "Kinto ${kver% *} (PyPI, waitress ${kver#* }, accounts+admin+history plugins, memory backend) [behind nginx $(kit_nginx_version)]"
    KIT_SETTLE=2 kit_capture_stop
    kit_keep_logs "$w/requests.tsv" "$w/access.log" "$w/kinto.log" "$w/manifest.json"
    kit_gzip "$OUT"
    ls -l "$OUT.gz" "$LABELS"
}
