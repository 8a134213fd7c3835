#!/usr/bin/env bash
# A real Prometheus scrapes apiwatch while it replays the labelled attack capture
# (paced, two workers), then the counters are checked through Prometheus' HTTP API
# against a one-worker replay's own output, and `promtool check metrics` runs on a
# scrape. Loopback only; every wait is bounded. Needs prometheus + promtool (apt: prometheus), curl, python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${APIWATCH:-$root/target/release/apiwatch}
cap=$root/captures/attacks.pcap.gz
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
aw_port=$(free_port)
prom_port=$(free_port)

# What the replay itself says, to compare with what Prometheus stored.
want_exchanges=$("$bin" -r "$cap" --workers 1 --learning-period 2m --exchanges - --alerts /dev/null -q | wc -l)
want_alerts=$("$bin" -r "$cap" --workers 1 --learning-period 2m --alerts - -q | wc -l)

cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $root/dashboards/apiwatch-rules.yml
scrape_configs:
  - job_name: apiwatch
    static_configs:
      - targets: ["127.0.0.1:$aw_port"]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
# 334 s of packet time at 30x: about 11 s, then 15 s of final values.
"$bin" -r "$cap" --workers 2 --learning-period 2m --replay-speed 30 --web.listen-address "127.0.0.1:$aw_port" \
    --web.linger 15s --alerts /dev/null -q &
aw=$!
pids+=($aw)
sleep 3
curl -sf "http://127.0.0.1:$aw_port/metrics" >"$work/scrape.txt"
promtool check metrics <"$work/scrape.txt"
echo "promtool check metrics: clean"
grep -q '^apiwatch_up 1' "$work/scrape.txt"

query() {
    curl -sf "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
# Wait (bounded) until Prometheus has the final values.
got_ex=none
for _ in $(seq 40); do
    got_ex=$(query 'sum(apiwatch_http_exchanges_total)')
    [ "$got_ex" = "$want_exchanges" ] && break
    sleep 1
done
got_alerts=$(query 'sum(apiwatch_alerts_total)')
got_latency=$(query 'apiwatch_http_response_latency_seconds_count')
got_stuffing=$(query 'sum(apiwatch_alerts_total{kind="credential_stuffing"})')
got_up=$(query 'up{job="apiwatch"}')
echo "exchanges: prometheus=$got_ex replay=$want_exchanges"
echo "alerts:    prometheus=$got_alerts replay=$want_alerts (credential_stuffing=$got_stuffing)"
echo "latency histogram count: $got_latency; up=$got_up"
[ "$got_ex" = "$want_exchanges" ]
[ "$got_alerts" = "$want_alerts" ]
[ "$got_stuffing" = "2" ]
[ "$got_latency" = "$want_exchanges" ]
[ "$got_up" = "1" ]

# Every PromQL expression in the dashboard and the rules parses and returns data.
promtool check rules "$root/dashboards/apiwatch-rules.yml"
(cd "$root/dashboards" && promtool test rules apiwatch-rules.test.yml)
python3 - "$prom_port" "$root/dashboards/apiwatch.json" "$root/dashboards/apiwatch-rules.yml" <<'PY'
import json, re, sys, urllib.parse, urllib.request
port, dash, rules = sys.argv[1:4]
exprs = []
for panel in json.load(open(dash))["panels"]:
    for t in panel.get("targets", []):
        exprs.append(("dashboard: " + panel["title"], t["expr"]))
text = open(rules).read()
for m in re.finditer(r"expr: (\|\n(?:\s{10,}.*\n)+|.*)", text):
    body = m.group(1)
    body = " ".join(l.strip() for l in body.splitlines()[1:]) if body.startswith("|") else body
    exprs.append(("rules", body))
bad = 0
for where, e in exprs:
    q = e.replace("$instance", ".*").replace("$__rate_interval", "1m").replace("$__range", "1h")
    # Rule expressions about drops and gaps compare against thresholds; check the left side returns data.
    q = re.sub(r"\s*(==|>)\s*[0-9.]+\s*$", "", q)
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        r = json.load(urllib.request.urlopen(url, timeout=10))
        ok = r["status"] == "success" and len(r["data"]["result"]) > 0
    except Exception as ex:
        ok, r = False, str(ex)
    bad += not ok
    print(("ok  " if ok else "BAD ") + where + ": " + q[:100])
print(f"{len(exprs) - bad}/{len(exprs)} expressions return data")
sys.exit(1 if bad else 0)
PY

# Backfill: the replay's metrics on packet time, imported as TSDB blocks.
"$bin" -r "$cap" --workers 2 --learning-period 2m --openmetrics-out "$work/replay.om" --alerts /dev/null -q
promtool tsdb create-blocks-from openmetrics "$work/replay.om" "$work/backfill" >/dev/null
promtool tsdb list "$work/backfill"
mkdir -p "$work/backfill/wal"
final=$(promtool tsdb dump --match='{__name__="apiwatch_http_exchanges_total"}' "$work/backfill" 2>/dev/null |
    python3 -c '
import sys, collections
last = {}
for line in sys.stdin:
    series, value, ts = line.rsplit(" ", 2)
    if series not in last or int(ts) >= last[series][1]:
        last[series] = (float(value), int(ts))
print(int(sum(v for v, _ in last.values())))')
echo "backfill: final exchanges $final (replay $want_exchanges)"
[ "$final" = "$want_exchanges" ]

# TLS + basic auth (exporter-toolkit web config) with a real client.
tls_port=$(free_port)
fx=$root/tests/fixtures
"$bin" -r "$root/captures/api-login.pcap" --web.listen-address "127.0.0.1:$tls_port" \
    --web.config.file "$fx/web-config.yml" --web.linger 15s --alerts /dev/null -q &
pids+=($!)
for _ in $(seq 50); do
    curl -s -o /dev/null --cacert "$fx/web-test.crt" "https://localhost:$tls_port/" && break
    sleep 0.2
done
code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$fx/web-test.crt" "$@" || true; }
right=$(code -u prometheus:scrape-me-please "https://localhost:$tls_port/metrics")
wrong=$(code -u prometheus:not-it "https://localhost:$tls_port/metrics")
none=$(code "https://localhost:$tls_port/metrics")
plain=$(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$tls_port/metrics" || true)
echo "TLS endpoint: right password $right, wrong $wrong, none $none, plain HTTP $plain"
[ "$right" = 200 ] && [ "$wrong" = 401 ] && [ "$none" = 401 ] && [ "$plain" = 000 ]
echo "prometheus check: ok"
