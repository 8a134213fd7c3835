# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# posture: the labelled capture for posture findings, data exposure and token misuse
# (issue #26), captures/posture.pcapng.gz + captures/posture.labels.json (written by
# apps/posture_labels.py from the drivers' and servers' logs; see captures/posture.md).
#
# Servers (namespace pw-srv, bridge pw-br; tcpdump `tcp port 443 or tcp port 80` on it):
#   10.77.0.2:443  api.example.test: nginx TLS 1.2/1.3 (a self-signed P-256 certificate
#                  valid for a year, HTTP/1.1 only) proxying to
#                  scripts/capture-kit/posture_server.py api on 127.0.0.1:8080: login
#                  (JWT HS256), customers (paged, sensitive values), orders (cursor),
#                  /api/me (accepts alg:none and expired JWTs: the deliberate flaw).
#                  Every client of it writes SSLKEYLOGFILE; the secrets are embedded in
#                  the pcapng (editcap --inject-secrets), so a sensor decrypts it.
#   10.77.0.3:80   legacy.example.test: posture_server.py legacy, cleartext HTTP, Basic
#                  or ?api_key= (invoices with billing e-mails).
#   10.77.0.4:443  old.example.test: nginx TLS 1.0/1.1 only, ciphers DEFAULT:@SECLEVEL=0
#                  (ECDHE-RSA-AES256-SHA: CBC with SHA-1), RSA-2048 certificate valid a year
#   10.77.0.5:443  expired.example.test: nginx TLS 1.2 only, certificate expired 20 days ago
#   10.77.0.6:443  expiring.example.test: nginx TLS 1.2 only, certificate expiring in 6 days
#                  (.4-.6 proxy to a second posture_server.py legacy on 127.0.0.1:8081;
#                  their clients write no key log: their traffic stays encrypted)
# Clients: pw-cli (benign, 10.77.0.10-67) and pw-atk (attacks, 10.77.0.100-131), one
# apps/posture_clients.py process each (python requests, httpx, curl), names through a
# private /etc/hosts (unshare -m). Certificates are made here with python cryptography
# (backdated validity), in the work directory, removed with it.
#
# Timeline (seconds from the start, x --scale; replay with --learning-period 2m):
#   0-420  benign: 25 users (sessions: login, /api/me, 1-3 pages, records, orders), 2
#          late-comers (from 200 s), the token-theft victim (one login kept all along),
#          2 roamers (one move each: 180 s, 270 s), a NAT'ed office of 9 users, a heavy
#          steady reader, a health checker (5 s), 2 API-key integrations, 3 legacy Basic
#          clients, 1 legacy ?api_key= client, TLS 1.0/1.1, expired and expiring probes
#   95, 215, 335  alg:none JWT to /api/me (200) and /api/customers (401), 10.77.0.130
#   125, 255, 365 expired JWT to /api/me (200) and /api/orders (401), 10.77.0.131
#   170    data_exfiltration: 10.77.0.100 (an ordinary user before) pages the whole
#          customer collection, 50 a page, until the empty page
#   230    token_misuse (shared_principal): the victim's token from 10.77.0.110-119,
#          3-6 requests each, starts spread over 50 s
#   290    token_misuse (principal_cycling): 10.77.0.120 tries 30 API keys, 2-4 requests each
#   420    end
# Output: OUT (default captures/posture.pcap) is written by tcpdump, turned into
# OUT-without-.pcap.pcapng with the key log embedded, gzipped (posture.pcapng.gz); the
# pcap is removed. --keep-logs DIR keeps the key log, the drivers' and servers' logs.
# Needs nginx (1.22 with ssl), curl, openssl, tshark, editcap, python3 with requests,
# httpx and cryptography. --scale F (F < 1) runs the same timeline faster (under /tmp).
APP_DESC="posture findings, sensitive data, token misuse: TLS (keys embedded), legacy HTTP, weak TLS, bad certificates (420 s)"
APP_NEEDS="nginx curl python3 unshare gzip tshark editcap"
APP_FILES=""
APP_TIMELINE=scaled

app_defaults() {
    OUT=${OUT:-$root/captures/posture.pcap}
    DURATION=${DURATION:-420}
}

# pw_exec NS CMD...: CMD in namespace NS, seeing $KIT_WORK/hosts as /etc/hosts.
pw_exec() {
    local ns=$1
    shift
    # shellcheck disable=SC2016  # $0 and $@ are the inner sh's
    exec ip netns exec "$ns" unshare -m --propagation private \
        sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$KIT_WORK/hosts" "$@"
}
pw_run() { (pw_exec "$@"); }

app_run() {
    [ "$DURATION" = 420 ] || kit_die "posture has a fixed 420 s timeline (--scale for a trial)"
    local w
    kit_work pw-capture
    w=$KIT_WORK
    python3 - "$w" <<'PY' || kit_die "python3 with cryptography is needed"
import datetime, json, secrets, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
w = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
day = datetime.timedelta(days=1)
certs = {}
for name, host, kind, start, end in [
    ("api", "api.example.test", "ec", now - day, now + 365 * day),
    ("old", "old.example.test", "rsa", now - 30 * day, now + 335 * day),
    ("expired", "expired.example.test", "rsa", now - 385 * day, now - 20 * day),
    ("expiring", "expiring.example.test", "ec", now - 84 * day, now + 6 * day),
]:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apiwatch throwaway")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    open(f"{w}/{name}.key", "wb").write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{w}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    certs[host] = {"not_before": start.isoformat(timespec="seconds"), "not_after": end.isoformat(timespec="seconds"),
                   "key": kind}
users = {"user%02d" % n: "pw-%s" % secrets.token_hex(6) for n in range(1, 61)}
users["admin"] = "pw-%s" % secrets.token_hex(8)
keys = {"ak_live_%s" % secrets.token_hex(16): "integration-%02d" % n for n in range(1, 41)}
basic = {n: "%s-%s" % (n, secrets.token_hex(4)) for n in ["billing", "accounting", "archiver", "reports"]}
json.dump({"jwt_secret": secrets.token_hex(32), "users": users, "api_keys": keys, "basic": basic,
           "legacy_api_keys": ["lk_%s" % secrets.token_hex(12)], "certs": certs},
          open(f"{w}/data.json", "w"), indent=1)
PY
    printf '%s\n' "10.77.0.2 api.example.test" "10.77.0.3 legacy.example.test" "10.77.0.4 old.example.test" \
        "10.77.0.5 expired.example.test" "10.77.0.6 expiring.example.test" >"$w/hosts"

    kit_bridge_up pw-srv pw-br 10.77.0.2
    local a
    for a in 3 4 5 6; do ip -n pw-srv addr add "10.77.0.$a/24" dev pw-br; done
    # shellcheck disable=SC2046
    kit_bridge_client pw-cli $(seq -f "10.77.0.%g" 10 37) 10.77.0.40 10.77.0.41 10.77.0.42 10.77.0.43 \
        10.77.0.45 10.77.0.50 10.77.0.51 10.77.0.52 10.77.0.53 $(seq -f "10.77.0.%g" 60 67)
    # shellcheck disable=SC2046
    kit_bridge_client pw-atk 10.77.0.100 $(seq -f "10.77.0.%g" 110 120) 10.77.0.130 10.77.0.131

    kit_bg ip netns exec pw-srv python3 "$kit/posture_server.py" api 127.0.0.1 8080 "$w/data.json" "$w/server-api.jsonl"
    kit_bg ip netns exec pw-srv python3 "$kit/posture_server.py" legacy 10.77.0.3 80 "$w/data.json" "$w/server-legacy.jsonl"
    kit_bg ip netns exec pw-srv python3 "$kit/posture_server.py" legacy 127.0.0.1 8081 "$w/data.json" "$w/server-legacy-tls.jsonl"
    kit_nginx pw-srv <<CONF
    log_format pw '\$msec \$remote_addr \$server_name \$ssl_protocol \$ssl_cipher "\$request" \$status \$body_bytes_sent \$connection \$connection_requests';
    access_log $w/access.log pw;
    server_tokens off;
    upstream api { server 127.0.0.1:8080; keepalive 16; }
    upstream legacy { server 127.0.0.1:8081; keepalive 4; }
    server {
        listen 10.77.0.2:443 ssl;
        server_name api.example.test;
        ssl_certificate $w/api.pem;
        ssl_certificate_key $w/api.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_read_timeout 30s;
        }
    }
    server {
        listen 10.77.0.4:443 ssl;
        server_name old.example.test;
        ssl_certificate $w/old.pem;
        ssl_certificate_key $w/old.key;
        ssl_protocols TLSv1 TLSv1.1;
        ssl_ciphers DEFAULT:@SECLEVEL=0;
        location / { proxy_pass http://legacy; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_set_header X-Real-IP \$remote_addr; }
    }
    server {
        listen 10.77.0.5:443 ssl;
        server_name expired.example.test;
        ssl_certificate $w/expired.pem;
        ssl_certificate_key $w/expired.key;
        ssl_protocols TLSv1.2;
        location / { proxy_pass http://legacy; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_set_header X-Real-IP \$remote_addr; }
    }
    server {
        listen 10.77.0.6:443 ssl;
        server_name expiring.example.test;
        ssl_certificate $w/expiring.pem;
        ssl_certificate_key $w/expiring.key;
        ssl_protocols TLSv1.2;
        location / { proxy_pass http://legacy; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; proxy_set_header X-Real-IP \$remote_addr; }
    }
CONF
    kit_wait_tcp pw-srv 127.0.0.1 8080
    kit_wait_tcp pw-srv 127.0.0.1 8081
    kit_wait_tcp pw-srv 10.77.0.3 80
    pw_run pw-cli curl -sf -o /dev/null --cacert "$w/api.pem" -m 5 --retry 20 --retry-connrefused \
        --retry-delay 1 https://api.example.test/health || kit_die "nginx does not answer on api.example.test"
    local h
    for h in old expired expiring; do
        pw_run pw-cli curl -sfk -o /dev/null -m 5 --tlsv1 --ciphers 'DEFAULT@SECLEVEL=0' "https://$h.example.test/v1/status" ||
            kit_die "nginx does not answer on $h.example.test"
    done
    pw_run pw-cli curl -sf -o /dev/null -m 5 http://legacy.example.test/v1/status || kit_die "legacy does not answer"

    KIT_SETTLE=2 kit_capture_start pw-srv pw-br "$OUT" "tcp port 443 or tcp port 80"
    local start
    start=$(date +%s.%N)
    echo "$start" >"$w/capture-start"
    python3 - "$w" "$start" "$DURATION" "$SCALE" <<'PY'
import json, sys
w, start, duration, scale = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
d = json.load(open(w + "/data.json"))
keys = sorted(d["api_keys"])
ip = lambda n: "10.77.0.%d" % n
u = lambda n: "user%02d" % n
base = {"start": start + 1.0, "duration": duration, "scale": scale, "ca": w + "/api.pem", "data": w + "/data.json",
        "leak": w + "/leaked-token", "keys_curl": w + "/keys-curl.log"}
benign = dict(base, log=w + "/clients-benign.jsonl", benign={
    "users": [[ip(10 + k), u(1 + k)] for k in range(25)],
    "victim": [ip(35), u(26)],
    "late_users": [[ip(36), u(27), 200], [ip(37), u(28), 215]],
    "roamers": [[ip(40), ip(41), u(29), 180], [ip(42), ip(43), u(30), 270]],
    "office": [ip(45), [u(n) for n in range(31, 40)]],
    "heavy": [ip(53), u(40)],
    "health": ip(50),
    "integration_httpx": [ip(51), keys[0]],
    "integration_curl": [ip(52), keys[1]],
    "legacy_basic": [[ip(60), "billing", True], [ip(61), "accounting", False]],
    "legacy_basic_curl": [ip(62), "archiver"],
    "legacy_query_key": [ip(63), d["legacy_api_keys"][0]],
    "tls_posture": [
        [ip(64), "probe-old-tls11", "old.example.test", ["--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0"], 30, 50],
        [ip(65), "probe-old-tls10", "old.example.test", ["--tlsv1.0", "--tls-max", "1.0", "--ciphers", "DEFAULT@SECLEVEL=0"], 40, 60],
        [ip(66), "probe-expired", "expired.example.test", ["--tlsv1.2", "--tls-max", "1.2"], 35, 55],
        [ip(67), "probe-expiring", "expiring.example.test", ["--tlsv1.2", "--tls-max", "1.2"], 35, 55]],
})
attacks = dict(base, log=w + "/clients-attacks.jsonl", attacks={
    "scraper": [ip(100), u(41), 170],
    "thieves": [[ip(n) for n in range(110, 120)], 230, 50],
    "cycler": [ip(120), 290],
    "cycler_keys": keys[5:35],
    "jwt_none": [ip(130), [95, 215, 335]],
    "jwt_expired": [ip(131), [125, 255, 365]],
})
json.dump(benign, open(w + "/plan-benign.json", "w"), indent=1)
json.dump(attacks, open(w + "/plan-attacks.json", "w"), indent=1)
PY
    local pb pa rc=0 limit
    limit=$(kit_driver_timeout)
    # python (urllib3, and httpx through ssl.create_default_context) and curl write
    # SSLKEYLOGFILE; each process its own file.
    kit_bg pw_exec pw-cli env SSLKEYLOGFILE="$w/keys-py-benign.log" timeout "$limit" \
        python3 "$kit/apps/posture_clients.py" benign "$w/plan-benign.json"
    pb=$!
    kit_bg pw_exec pw-atk env SSLKEYLOGFILE="$w/keys-py-attacks.log" timeout "$limit" \
        python3 "$kit/apps/posture_clients.py" attacks "$w/plan-attacks.json"
    pa=$!
    # (a trapped SIGINT/SIGTERM interrupts wait, so the cleanup runs at once)
    wait "$pb" || rc=$?
    [ "$rc" = 0 ] || echo "make-capture: the benign driver exited with $rc" >&2
    rc=0
    wait "$pa" || rc=$?
    [ "$rc" = 0 ] || echo "make-capture: the attack driver exited with $rc" >&2
    KIT_SETTLE=2 kit_capture_stop

    # The key log: every main-API connection's secrets (python and curl), checked
    # against the ClientHellos to api.example.test, then embedded in a pcapng.
    cat "$w"/keys-py-benign.log "$w"/keys-py-attacks.log "$w"/keys-curl.log 2>/dev/null | grep -v '^#' | sort -u >"$w/keys.log"
    local pcapng=${OUT%.pcap}.pcapng
    editcap --inject-secrets "tls,$w/keys.log" "$OUT" "$pcapng"
    python3 "$kit/apps/posture_labels.py" --work "$w" --capture "$pcapng" --labels "$LABELS" \
        --name "$(basename "$pcapng").gz"
    rm -f "$OUT"
    kit_keep_logs "$w"/access.log "$w"/clients-*.jsonl "$w"/server-*.jsonl "$w"/keys.log "$w"/data.json \
        "$w"/plan-*.json "$w"/key-check.txt "$KIT_WORK/nginx/error.log"
    kit_gzip "$pcapng"
    ls -l "$pcapng.gz" "$LABELS"
}
