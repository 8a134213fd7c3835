# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# synapse: captures/synapse.pcap.gz + .labels.json (see captures/synapse.md): Synapse
# (matrix-synapse from PyPI, SQLite) on 127.0.0.1:8008 behind nginx on 10.82.0.2:80;
# users, rooms and messages seeded over loopback inside sy-srv before tcpdump starts,
# then synapse_traffic.py drives benign personas and attacks (ffuf from sy-scan).
# Install: python3 -m venv /work/venvs/synapse &&
#          /work/venvs/synapse/bin/pip install matrix-synapse==1.163.2   (or SYNAPSE_VENV=DIR)
# Layout: sy-srv (bridge sy-br 10.82.0.2, nginx :80, synapse :8008, tcpdump); sy-cli
# (benign .10-.28 .30 .50-.52, established attackers .100 .104 .105, fresh .101 .102,
# distributed stuffing .120-.131); sy-scan .103 (ffuf, which cannot bind an address).
APP_DESC="Synapse (Matrix homeserver, PyPI) behind nginx, labelled (600 s)"
APP_NEEDS="nginx curl ffuf python3 gzip"
APP_FILES="/usr/share/dirb/wordlists/common.txt ${SYNAPSE_VENV:-/work/venvs/synapse}/bin/python"
APP_TIMELINE=scaled

app_defaults() { OUT=${OUT:-$root/captures/synapse.pcap}; }

app_run() {
    local venv=${SYNAPSE_VENV:-/work/venvs/synapse} ip=10.82.0.2 w i
    kit_work sy-capture
    w=$KIT_WORK
    kit_bridge_up sy-srv sy-br "$ip"
    local cli_addrs=()
    for i in $(seq 10 28) 30 50 51 52 100 101 102 104 105 $(seq 120 131); do cli_addrs+=("10.82.0.$i"); done
    kit_bridge_client sy-cli "${cli_addrs[@]}"
    kit_bridge_client sy-scan 10.82.0.103

    mkdir -p "$w/synapse"
    (cd "$w/synapse" && "$venv/bin/python" -m synapse.app.homeserver --server-name chat.example \
        --config-path homeserver.yaml --generate-config --report-stats=no >/dev/null)
    python3 "$kit/apps/synapse_config.py" "$w/synapse/homeserver.yaml"
    kit_bg ip netns exec sy-srv "$venv/bin/python" -m synapse.app.homeserver -c "$w/synapse/homeserver.yaml" \
        >"$w/synapse/stdout.log" 2>&1
    kit_on_exit "[ -f '$w/synapse/homeserver.pid' ] && kill \$(cat '$w/synapse/homeserver.pid') 2>/dev/null; sleep 1"

    # the usual reverse-proxy block from Synapse's docs, plus the admin API
    kit_nginx sy-srv <<CONF
    access_log $w/nginx/access.log;
    keepalive_timeout 75s;
    upstream synapse { server 127.0.0.1:8008; keepalive 32; }
    server {
        listen $ip:80;
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
CONF
    kit_wait_http sy-cli "http://$ip/_matrix/client/versions" 120 1 \
        || { tail -20 "$w/synapse/homeserver.log" >&2; exit 1; }

    # seeding over loopback inside sy-srv, before the capture
    local secret
    secret=$(sed -n 's/^registration_shared_secret: "\(.*\)"$/\1/p' "$w/synapse/homeserver.yaml")
    kit_run ip netns exec sy-srv python3 "$kit/apps/synapse_traffic.py" seed \
        --base http://127.0.0.1:8008 --secret "$secret" --out "$w/seed.json"

    KIT_SETTLE=2 kit_capture_start sy-srv sy-br "$OUT" "tcp port 80"
    # the driver's --duration is wall-clock seconds, the kit's is timeline seconds
    kit_run ip netns exec sy-cli timeout "$(kit_driver_timeout)" python3 "$kit/apps/synapse_traffic.py" run \
        --base "http://$ip" --seed "$w/seed.json" --duration "$(kit_scaled "$DURATION")" \
        --scan-ns sy-scan --labels "$LABELS" --work "$w" --scale "$SCALE" \
        --server-version "$("$venv/bin/python" -c 'import synapse; print(synapse.__version__)')"
    KIT_SETTLE=3 kit_capture_stop
    kit_keep_logs "$w/requests.tsv" "$w/summary.txt" "$w/nginx/access.log" "$w/synapse/homeserver.log"
    kit_gzip "$OUT"
    ls -l "$OUT.gz" "$LABELS"
}
