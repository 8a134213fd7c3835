# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# jsonserver: captures/jsonserver.pcap.gz + .labels.json (see captures/jsonserver.md):
# json-server 0.17.4 + json-server-auth 2.1.0 (JWT login, guarded routes) on
# 127.0.0.1:3000 behind nginx on 10.84.0.2:80; personas from jsonserver_traffic.py,
# hydra (stuffing, brute force) and ffuf (scan) in namespaces of their own.
# Install: mkdir -p /work/venvs/jsonserver && cd /work/venvs/jsonserver &&
#          npm init -y && npm install json-server@0.17 json-server-auth
#   (another place: JSONSERVER_DIR=/path/with/node_modules)
# Layout: js-srv (bridge js-br 10.84.0.2, nginx :80, node :3000, tcpdump); js-cli (every
# python persona: .10-.42 benign, .100-.102 established attackers, .120-.131
# distributed stuffing); js-stuff .110 (hydra), js-brute .111 (hydra), js-scan .112 (ffuf).
APP_DESC="json-server + json-server-auth (npm) behind nginx, labelled (600 s)"
APP_NEEDS="nginx hydra ffuf node python3 gzip"
APP_FILES="/usr/share/dirb/wordlists/common.txt ${JSONSERVER_DIR:-/work/venvs/jsonserver}/node_modules/json-server-auth/dist/bin.js"
APP_TIMELINE=scaled

app_defaults() { OUT=${OUT:-$root/captures/jsonserver.pcap}; }

app_run() {
    local jsdir=${JSONSERVER_DIR:-/work/venvs/jsonserver} net=10.84.0 w n
    kit_work js-work
    w=$KIT_WORK
    kit_bridge_up js-srv js-br "$net.2"
    local cli_addrs=()
    for n in $(seq 10 26) 30 31 32 40 41 42 100 101 102 $(seq 120 131); do cli_addrs+=("$net.$n"); done
    kit_bridge_client js-cli "${cli_addrs[@]}"
    kit_bridge_client js-stuff "$net.110"
    kit_bridge_client js-brute "$net.111"
    kit_bridge_client js-scan "$net.112"

    # seed (before the capture); json-server-auth keeps bcrypt hashes in users[].password
    kit_run python3 "$kit/apps/jsonserver_traffic.py" seed "$w"
    (cd "$jsdir" && node -e '
const fs = require("fs"), bcrypt = require("bcryptjs");
const f = process.argv[1], db = JSON.parse(fs.readFileSync(f, "utf8"));
for (const u of db.users) u.password = bcrypt.hashSync(u.password, 10);
fs.writeFileSync(f, JSON.stringify(db, null, 2));
' "$w/db.json")
    mkdir -p "$w/app"
    mv "$w/db.json" "$w/routes.json" "$w/app/"

    (cd "$w/app" && exec ip netns exec js-srv node "$jsdir/node_modules/json-server-auth/dist/bin.js" \
        db.json --routes routes.json --host 127.0.0.1 --port 3000 --quiet >"$w/json-server.log" 2>&1) &
    KIT_PIDS+=($!)
    kit_nginx js-srv <<CONF
    access_log $w/access.log;
    keepalive_timeout 120s;
    keepalive_requests 10000;
    upstream jsonserver { server 127.0.0.1:3000; keepalive 16; }
    server {
        listen $net.2:80;
        location / {
            proxy_pass http://jsonserver;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
        }
    }
CONF
    kit_wait_http js-cli "http://$net.2/__rules" 150 0.2 || { cat "$w/json-server.log" >&2; exit 1; }

    KIT_SETTLE=2 kit_capture_start js-srv js-br "$OUT" "tcp port 80"
    local desc
    desc="json-server $(node -p "require('$jsdir/node_modules/json-server/package.json').version") + json-server-auth $(node -p "require('$jsdir/node_modules/json-server-auth/package.json').version") (npm) [behind nginx $(kit_nginx_version)]"
    kit_run ip netns exec js-cli timeout "$(kit_driver_timeout)" python3 "$kit/apps/jsonserver_traffic.py" run \
        --work "$w" --labels "$LABELS" --server "$net.2" --port 80 --net "$net." \
        --duration "$DURATION" --time-scale "$SCALE" --server-desc "$desc"
    KIT_SETTLE=2 kit_capture_stop
    kit_keep_logs "$w/tools.log" "$w/driver-summary.json" "$w/access.log" "$w/json-server.log"
    kit_gzip "$OUT"
    ls -l "$OUT.gz" "$LABELS"
}
