# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# wagtail: captures/wagtail.pcap.gz + .labels.json (see captures/wagtail.md): a real
# Wagtail site (`wagtail start` plus the blog app and settings in wagtail-site/, SQLite,
# gunicorn gthread 4x2 on 127.0.0.1:8000 behind nginx on 10.83.0.2:80) with its read API
# v2 and the admin's HTML form login, driven by wagtail_traffic.py for 600 s (wrk for the
# burst, ffuf for the scan; python login attackers, since hydra's http-post-form cannot
# fetch Django's per-form CSRF token). Build, migrate and seed (60 users, 250 posts of
# which 11 are deleted again and 13 stay drafts, 24 images, 12 documents) happen before
# tcpdump starts. Takes ~13 minutes; the timeline cannot be scaled.
# Install: python3 -m venv /work/venvs/wagtail &&
#          /work/venvs/wagtail/bin/pip install wagtail==8.0.1 gunicorn==27.0.1   (or WAGTAIL_VENV=DIR)
# Layout: wa-srv (bridge wa-br 10.83.0.2, nginx :80, gunicorn :8000, tcpdump); wa-cli
# (every python client address, primary 10.83.0.100 = the burst client, wrk); wa-scan .103 (ffuf).
APP_DESC="Wagtail (Django CMS, PyPI) with gunicorn behind nginx, labelled (600 s, ~13 min)"
APP_NEEDS="nginx wrk ffuf python3 gzip"
APP_FILES="/usr/share/dirb/wordlists/common.txt ${WAGTAIL_VENV:-/work/venvs/wagtail}/bin/wagtail ${WAGTAIL_VENV:-/work/venvs/wagtail}/bin/gunicorn"

app_defaults() { OUT=${OUT:-$root/captures/wagtail.pcap}; }

app_run() {
    local venv=${WAGTAIL_VENV:-/work/venvs/wagtail} ip=10.83.0.2 w site
    kit_work wa-capture
    w=$KIT_WORK
    site=$w/site
    export PYTHONDONTWRITEBYTECODE=1

    # 1. the site: `wagtail start`, then the files of wagtail-site/ laid over it
    mkdir -p "$site"
    "$venv/bin/wagtail" start mysite "$site" >/dev/null
    cp -r "$kit/apps/wagtail-site/blog" "$kit/apps/wagtail-site/mysite" "$site/"
    mkdir -p "$site/blog/migrations"
    touch "$site/blog/__init__.py" "$site/blog/migrations/__init__.py" \
        "$site/blog/management/__init__.py" "$site/blog/management/commands/__init__.py"
    "$venv/bin/python" "$kit/apps/wagtail-site/patch_site.py" "$site"
    export DJANGO_SETTINGS_MODULE=mysite.settings.production
    manage() { (cd "$site" && "$venv/bin/python" manage.py "$@"); }
    manage makemigrations blog -v0
    manage migrate -v0
    manage collectstatic --noinput -v0
    echo "seeding (60 users, 250 posts, images, documents) ..."
    kit_run manage seed_blog "$w/inventory.json"
    chmod -R a+rX "$site"

    # 2. namespaces
    kit_bridge_up wa-srv wa-br "$ip"
    # shellcheck disable=SC2046
    kit_bridge_client wa-cli $(python3 "$kit/apps/wagtail_traffic.py" --addresses)
    kit_bridge_client wa-scan 10.83.0.103

    # 3. servers
    (cd "$site" && exec ip netns exec wa-srv "$venv/bin/gunicorn" mysite.wsgi:application \
        --bind 127.0.0.1:8000 --workers 4 --worker-class gthread --threads 2 \
        --no-control-socket --pid "$w/gunicorn.pid" --error-logfile "$w/gunicorn.log" \
        --access-logfile "$w/gunicorn-access.log") &
    KIT_PIDS+=($!)
    kit_on_exit "[ -f '$w/gunicorn.pid' ] && kill \$(cat '$w/gunicorn.pid') 2>/dev/null"
    kit_nginx wa-srv <<CONF
    include /etc/nginx/mime.types;
    access_log $w/nginx/access.log;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    client_max_body_size 10m;
    gzip on;
    gzip_proxied any;
    gzip_min_length 512;
    gzip_comp_level 6;
    gzip_types application/json text/css text/csv text/plain application/javascript;
    server {
        listen $ip:80;
        server_name $ip;
        location /static/ { alias $site/static/; }
        location /media/ { alias $site/media/; }
        location / {
            proxy_pass http://127.0.0.1:8000;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_read_timeout 120s;
        }
    }
CONF
    kit_wait_tcp wa-cli "$ip" 80 100
    # warm the gunicorn workers over the namespace's loopback (not on the bridge, not captured)
    local _
    for _ in $(seq 30); do
        ip netns exec wa-srv bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000 && printf "GET /blog/ HTTP/1.0\r\nHost: 10.83.0.2\r\n\r\n" >&3 && cat <&3 >/dev/null' 2>/dev/null || sleep 0.5
    done
    local py=$venv/bin/python server_version
    server_version="Wagtail $("$py" -c 'import wagtail; print(wagtail.__version__)') (PyPI; Django $("$py" -c 'import django; print(django.get_version())'), gunicorn $("$py" -c 'import gunicorn; print(gunicorn.__version__)') gthread 4x2, SQLite) behind nginx $(kit_nginx_version)"
    echo "$server_version"

    # 4. capture
    KIT_SETTLE=2 kit_capture_start wa-srv wa-br "$OUT" "tcp port 80"
    kit_run ip netns exec wa-cli timeout "$(kit_driver_timeout)" python3 "$kit/apps/wagtail_traffic.py" \
        "$w/inventory.json" "$LABELS" "$w/traffic.log" --server-version "$server_version"
    KIT_SETTLE=2 kit_capture_stop
    kit_keep_logs "$w/traffic.log" "$w/nginx/access.log" "$w/gunicorn.log"
    kit_gzip "$OUT"
    ls -l "$OUT.gz" "$LABELS"
}
