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
# Not "apiwatch": nothing in the dashboard or the rules may depend on the job's name
# (a Kubernetes ServiceMonitor names the job after the Service).
job=edge-sensors
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
  - job_name: $job
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
got_up=$(query "up{job=\"$job\"}")
echo "exchanges: prometheus=$got_ex replay=$want_exchanges"
echo "alerts:    prometheus=$got_alerts replay=$want_alerts (credential_stuffing=$got_stuffing)"
echo "latency histogram count: $got_latency; up=$got_up"
[ "$got_ex" = "$want_exchanges" ]
[ "$got_alerts" = "$want_alerts" ]
[ "$got_stuffing" = "2" ]
[ "$got_latency" = "$want_exchanges" ]
[ "$got_up" = "1" ]

# Every PromQL expression of the dashboard (panels, rows' panels, annotations) and of
# the rules parses and returns data, Prometheus evaluates every rule without error,
# and every recording rule has recorded a series.
promtool check rules "$root/dashboards/apiwatch-rules.yml"
(cd "$root/dashboards" && promtool test rules apiwatch-rules.test.yml)
python3 - "$prom_port" "$root/dashboards/apiwatch.json" "$root/dashboards/apiwatch-rules.yml" "$job" "$work/down.promql" <<'PY'
import json, re, sys, urllib.parse, urllib.request
port, dash, rules, job, down_out = sys.argv[1:6]
api = f"http://127.0.0.1:{port}/api/v1/"

def get(path, **params):
    url = api + path + "?" + urllib.parse.urlencode(params, doseq=True)
    return json.load(urllib.request.urlopen(url, timeout=10))

board = json.load(open(dash))
# Template variables, resolved as Grafana would: label_values(SELECTOR, LABEL) through
# the series API, the default value when it is among the values, else the first one.
values = {"__rate_interval": "1m", "__range": "1h", "__interval": "1m"}
def subst(e):
    for name in sorted(values, key=len, reverse=True):
        e = e.replace("$" + name, values[name]).replace("${" + name + "}", values[name])
    return e
bad = 0
for v in board["templating"]["list"]:
    if v["type"] != "query":
        continue
    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", subst(q))
    found = get(f"label/{m.group(2)}/values", **{"match[]": m.group(1)})["data"] if m else []
    default = (v.get("current") or {}).get("value")
    default = [d for d in (default if isinstance(default, list) else [default]) if d in found]
    chosen = default or found[:1]
    # Grafana's regex escaping, then the backslashes doubled for a PromQL string.
    esc = [re.sub(r"[\\^$*+?.()|{}\[\]]", lambda m: "\\" + m.group(0), c).replace("\\", "\\\\") for c in chosen]
    values[v["name"]] = esc[0] if len(esc) == 1 else "(" + "|".join(esc) + ")"
    ok = bool(chosen) and (v["name"] != "job" or job in found)
    bad += not ok
    print(("ok  " if ok else "BAD ") + f"variable {v['name']}: {q} -> {found} (using {chosen})")

exprs = []
def walk(panels):
    for panel in panels:
        for t in panel.get("targets", []):
            exprs.append(("dashboard: " + panel["title"], t["expr"]))
        walk(panel.get("panels", []))
walk(board["panels"])
for a in board.get("annotations", {}).get("list", []):
    e = a.get("expr") or (a.get("target") or {}).get("expr")
    if e:
        exprs.append(("annotation: " + a["name"], e))

var_bad = bad
# Rule expressions, one-line or block scalars (the lines indented deeper than `expr:`).
lines = open(rules).read().splitlines()
name, down = None, None
for i, line in enumerate(lines):
    m = re.match(r"\s*-?\s*(alert|record): (\S+)", line)
    if m:
        name = m.group(2)
    m = re.match(r"(\s*)expr: (.*)", line)
    if not m:
        continue
    body = m.group(2).strip()
    if body in ("|", "|-", ">", ">-"):
        block = []
        for l in lines[i + 1:]:
            if l.strip() and len(l) - len(l.lstrip()) <= len(m.group(1)):
                break
            block.append(l.strip())
        body = " ".join(b for b in block if b)
    exprs.append(("rules: " + name, body))
    if name == "ApiwatchDown":
        down = body
assert down, "no ApiwatchDown rule"
open(down_out, "w").write(down)

# A condition that is false now (no drops, the sensor up) would return nothing: a
# comparison with a number becomes a `bool` comparison, which keeps every series
# (0 or 1). The expression as written must evaluate too. Nothing is skipped.
for where, e in exprs:
    q = subst(e)
    if "$" in q:
        ok, note = False, "unknown variable"
    else:
        try:
            as_is = get("query", query=q)
            qb = re.sub(r"(==|!=|>=|<=|>|<)\s*(?=-?[0-9.])", r"\1 bool ", q)
            r = get("query", query=qb) if qb != q else as_is
            ok = as_is["status"] == r["status"] == "success" and len(r["data"]["result"]) > 0
            note = "" if qb == q else f"(as bool: {len(r['data']['result'])} series; as written: {len(as_is['data']['result'])})"
        except Exception as ex:
            ok, note = False, str(ex)
    bad += not ok
    print(("ok  " if ok else "BAD ") + where + ": " + q[:100] + (" " + note if note else ""))
expr_bad = bad - var_bad
print(f"{len(exprs) - expr_bad}/{len(exprs)} expressions return data")

# Prometheus' own evaluation of the loaded rules.
groups = get("rules")["data"]["groups"]
rules_seen = [r for g in groups for r in g["rules"]]
for r in rules_seen:
    ok = r.get("health") == "ok" and not r.get("lastError")
    if r["type"] == "recording":
        n = len(get("query", query=r["name"])["data"]["result"])
        ok = ok and n > 0
        detail = f"{n} series recorded"
    else:
        detail = r.get("state", "")
    bad += not ok
    print(("ok  " if ok else "BAD ") + f"rule evaluated: {r['name']}: health {r.get('health')} {detail} {r.get('lastError') or ''}".rstrip())
rule_bad = bad - var_bad - expr_bad
print(f"{len(rules_seen) - rule_bad}/{len(rules_seen)} rules evaluated by Prometheus without error")
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
[ "$right" = 200 ] && [ "$wrong" = 401 ] && [ "$none" = 401 ] && [ "$plain" = 400 ]

# The replay has ended (after its linger): Prometheus' own evaluation of ApiwatchDown
# must see the target as apiwatch and down although its series went stale and the
# job is not called apiwatch (pending: the rule's `for` is longer than this check).
wait "$aw" || true
down=none
for _ in $(seq 20); do
    down=$(query "ALERTS{alertname=\"ApiwatchDown\",job=\"$job\",alertstate=~\"pending|firing\"}")
    [ "$down" = 1 ] && break
    sleep 1
done
echo "ApiwatchDown after the sensor stopped: ALERTS=$down, expression: $(query "$(cat "$work/down.promql")")"
[ "$down" = 1 ]
echo "prometheus check: ok"
