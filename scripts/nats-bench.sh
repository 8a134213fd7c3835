#!/usr/bin/env bash
# What distributing apiwatch over NATS JetStream costs (issue #27), on this machine:
#
# 1. throughput (replay): the five labelled HTTP captures read as one input
#    (-r attacks -r kinto -r jsonserver -r synapse -r wagtail, about 48,000 exchanges)
#    (a) one process, both stages:  apiwatch -r ... --alerts /dev/null
#    (b) one sensor:                apiwatch -r ... --publish nats://...
#        (wall time until it exits, which is after JetStream acknowledged every record)
#    (d) two detectors at once:     apiwatch detect --shard 1/2 and --shard 2/2
#    (c) one detector:              apiwatch detect --shard 1/1
#        (c) and (d) read the stream (b) left, with --until-idle 1s; their figure is the
#        wall time minus that idle second. (d) runs before (c) so that the two
#        detectors' epoch subjects hold only their own contributions (a 1/1 detector
#        publishes on PREFIX.epochs.1 too, and never reads the others'); the exchanges
#        they read are the same either way.
#    Exchanges per second = the sensor's `Summary: http exchanges=` / the seconds.
#    Each run starts a fresh nats-server (JetStream, file storage in a temporary
#    directory) on a free loopback port. Wall times come from `date +%s%N` around each
#    command; CPU from /usr/bin/time (apiwatch) and /proc/PID/stat (nats-server).
#    "other" is the CPU the whole machine spent during the step (/proc/stat) minus what
#    apiwatch and nats-server spent: other work on the machine, a disturbed run
#    (/proc/stat is counted in ticks: read it to about +-0.2 s, small negatives
#    included). Work outside this virtual machine does not show there.
#
# 2. latency from wire to alert (live): two network namespaces made here, joined by a
#    veth pair (offloads off). The server side runs a small python HTTP server (200
#    on GET, 401 with "invalid credentials" on POST /login); the client side holds the
#    clients and the capture:
#    (a) one process:  apiwatch -i VETH --alerts FILE --learning-period 10s
#    (b) distributed:  apiwatch -i VETH --publish nats://127.0.0.1:4222 and
#                      apiwatch detect --from ... --shard 1/1 --alerts FILE --learning-period 10s
#        (nats-server on the client namespace's loopback, fresh storage each run)
#    Traffic (traffic.py below): one background client GETs 5 times a second for the
#    whole run; after 12 s (past the 10 s learning period) ten attacker addresses, one
#    after the other 1.5 s apart, POST wrong passwords for one user to /login on one
#    keep-alive connection as fast as the server answers: five 30 times (the 10th
#    attempt raises brute_force, more follow at once), five 10 times (the attempt that
#    raises it is the client's last). The first attempt also raises
#    cleartext_credentials (once a run). A poller reads the alerts file every
#    millisecond and stamps each new line with the wall clock; an alert's latency =
#    that stamp - the alert's `timestamp` (the packet time of the first packet of the
#    request that triggered it, stamped by the kernel, same clock). It holds the
#    server's answer time (printed: "answer", from the client's send to its read of
#    the answer), the capture ring's block timeout (--block-timeout, default 10 ms),
#    apiwatch's work, NATS in (b), and the poll (0-1 ms). "after answer" = the stamp -
#    the client's read of the answer. Alerts that appeared after the end of the
#    traffic + 1 s (when the processes are stopped, and end-of-input alerts are
#    written) are not counted. Modes alternate a, b, a, b... so that a change in the
#    machine's load falls on both. "other CPU" as above: the machine's CPU time over
#    the traffic minus that of every process of the test (apiwatch, nats-server, the
#    python server, clients and poller), in cores.
#
# Usage: scripts/nats-bench.sh [throughput|latency|all] [RUNS]   (default: all 3)
#   APIWATCH=path/to/apiwatch (default target/release/apiwatch; build it first)
#   AW_ARGS="--block-timeout 1ms" extra options for the capturing process (latency,
#     both modes): the ring's default 10 ms block timeout adds 0-10 ms to every alert
#   KEEP=1 keeps the work directory (logs, alerts, the poller's and clients' times)
# Needs nats-server (Debian's 2.9 works), python3, and for latency root and iproute2.
# Network traffic: loopback, and the namespaces made here (removed on exit).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
runs=${2:-3}
bin=${APIWATCH:-$root/target/release/apiwatch}
[ -x "$bin" ] || { echo "no $bin (cargo build --release first)" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "needs nats-server" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }
case $what in throughput | latency | all) ;; *) echo "usage: $0 [throughput|latency|all] [RUNS]" >&2; exit 2 ;; esac

work=$(mktemp -d /tmp/nats-bench.XXXXXX)
NS_SRV=nbs-$$ NS_CLI=nbc-$$
pids=() # processes started here and still running (killed on exit)
forget() { # PID...: waited for, no longer ours to kill
    local p q keep=()
    for p in "${pids[@]}"; do
        for q in "$@"; do [ "$p" = "$q" ] && continue 2; done
        keep+=("$p")
    done
    pids=("${keep[@]}")
}
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NS_SRV" 2>/dev/null || true
    ip netns del "$NS_CLI" 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every process of a comparison runs with the same configuration (one salt).
cfg=$work/apiwatch.toml
printf '[detect]\nsalt = "x"\n' >"$cfg"

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; } # jiffies, all cores
pcpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }      # jiffies of one process
hz=$(getconf CLK_TCK)

# Runs a command in the namespace NS when set, else here.
nsx() { if [ -n "${NS:-}" ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }

# A nats-server with JetStream ready on PORT (its INFO line says jetstream). $1 = port,
# $2 = storage directory; in the namespace NS when set.
nats_up() {
    local port=$1 dir=$2
    # Not through nsx: $! must be nats-server itself (ip netns exec execs it).
    if [ -n "${NS:-}" ]; then
        ip netns exec "$NS" nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir" >"$dir.log" 2>&1 &
    else
        nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir" >"$dir.log" 2>&1 &
    fi
    nats_pid=$!
    pids+=("$nats_pid")
    for _ in $(seq 100); do
        if nsx python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
line = s.makefile().readline()
sys.exit(0 if line.startswith("INFO ") and '"jetstream":true' in line else 1)
PY
        sleep 0.1
    done
    echo "nats-server did not start" >&2
    cat "$dir.log" >&2
    exit 1
}
nats_down() {
    kill "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
    forget "$nats_pid"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- throughput
throughput() {
    local caps=() c run port url dir t0 t1 b0 b1 n0 n1 ex
    for c in attacks kinto jsonserver synapse wagtail; do caps+=(-r "$root/captures/$c.pcap.gz"); done
    local res=$work/throughput.tsv
    : >"$res"
    # One line per step: run step wall_s rate apiwatch_cpu_s nats_cpu_s other_cpu_s
    record() { # RUN STEP WALL_S(for the rate) CPU_FILES NATS_JIFFIES BUSY_JIFFIES
        local cpu
        cpu=$(awk '{ s += $1 + $2 } END { printf "%.2f", s }' "$4")
        awk -v r="$1" -v s="$2" -v w="$3" -v x="$ex" -v c="$cpu" -v n="$5" -v b="$6" -v hz="$hz" 'BEGIN {
            printf "%s\t%s\t%.3f\t%.0f\t%.2f\t%.2f\t%.2f\n", r, s, w, x / w, c, n / hz, b / hz - c - n / hz
        }' >>"$res"
        tail -1 "$res" | awk -F'\t' '{ printf "run %s %-28s %7.3f s %7s exchanges/s  cpu: apiwatch %s s, nats-server %s s, other %s s\n", $1, $2, $3, $4, $5, $6, $7 }'
    }
    for run in $(seq "$runs"); do
        echo "== throughput run $run ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
        port=$(free_port)
        url=nats://127.0.0.1:$port
        dir=$work/nats-t$run
        mkdir -p "$dir"

        # (a) one process, both stages
        b0=$(busy); t0=$(now)
        /usr/bin/time -f "%U %S" -o "$work/a.cpu" "$bin" -c "$cfg" "${caps[@]}" --alerts /dev/null 2>"$work/a.log"
        t1=$(now); b1=$(busy)
        ex=$(sed -n 's/.*msg="Summary: http" exchanges=\([0-9]*\).*/\1/p' "$work/a.log")
        record "$run" "a one-process" "$(secs "$t0" "$t1")" "$work/a.cpu" 0 $((b1 - b0))

        nats_up "$port" "$dir"
        # (b) one sensor publishing, until every record is acknowledged
        n0=$(pcpu "$nats_pid"); b0=$(busy); t0=$(now)
        /usr/bin/time -f "%U %S" -o "$work/b.cpu" "$bin" -c "$cfg" "${caps[@]}" --publish "$url" 2>"$work/b.log"
        t1=$(now); b1=$(busy); n1=$(pcpu "$nats_pid")
        ex=$(sed -n 's/.*msg="Summary: http" exchanges=\([0-9]*\).*/\1/p' "$work/b.log")
        grep -q 'msg="Published to NATS"' "$work/b.log" || { cat "$work/b.log" >&2; exit 1; }
        record "$run" "b sensor --publish" "$(secs "$t0" "$t1")" "$work/b.cpu" $((n1 - n0)) $((b1 - b0))

        # (d) two detectors at once; each one's wall time minus the idle second
        n0=$(pcpu "$nats_pid"); b0=$(busy); t0=$(now)
        local k dpids=()
        for k in 1 2; do
            (
                /usr/bin/time -f "%U %S" -o "$work/d$k.cpu" "$bin" detect -c "$cfg" --from "$url" \
                    --shard "$k/2" --until-idle 1s --alerts "$work/d$k.alerts" 2>"$work/d$k.log"
                now >"$work/d$k.end"
            ) &
            dpids+=($!)
        done
        wait "${dpids[@]}"
        b1=$(busy); n1=$(pcpu "$nats_pid")
        local e1 e2 w1 w2
        e1=$(cat "$work/d1.end"); e2=$(cat "$work/d2.end")
        w1=$(awk -v a="$t0" -v b="$e1" 'BEGIN { printf "%.3f", (b - a) / 1e9 - 1 }')
        w2=$(awk -v a="$t0" -v b="$e2" 'BEGIN { printf "%.3f", (b - a) / 1e9 - 1 }')
        for k in 1 2; do grep -q "judged=" "$work/d$k.log" || { cat "$work/d$k.log" >&2; exit 1; }; done
        record "$run" "d detector 1/2 (of two)" "$w1" "$work/d1.cpu" 0 0 >/dev/null
        record "$run" "d detector 2/2 (of two)" "$w2" "$work/d2.cpu" 0 0 >/dev/null
        # The pair: the later of the two; CPU of both, nats-server's, the machine's.
        cat "$work/d1.cpu" "$work/d2.cpu" >"$work/d.cpu"
        record "$run" "d two detectors (later)" "$(awk -v a="$w1" -v b="$w2" 'BEGIN { print (a > b ? a : b) }')" \
            "$work/d.cpu" $((n1 - n0)) $((b1 - b0))
        echo "      (1/2 $w1 s, 2/2 $w2 s; alerts $(cat "$work/d1.alerts" "$work/d2.alerts" | wc -l))"

        # (c) one detector, all shards
        n0=$(pcpu "$nats_pid"); b0=$(busy); t0=$(now)
        /usr/bin/time -f "%U %S" -o "$work/c.cpu" "$bin" detect -c "$cfg" --from "$url" --shard 1/1 \
            --until-idle 1s --alerts "$work/c.alerts" 2>"$work/c.log"
        t1=$(now); b1=$(busy); n1=$(pcpu "$nats_pid")
        grep -q "judged=$ex " "$work/c.log" || { echo "detector 1/1 did not judge $ex:" >&2; cat "$work/c.log" >&2; exit 1; }
        record "$run" "c detector 1/1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 - 1 }')" \
            "$work/c.cpu" $((n1 - n0)) $((b1 - b0))
        echo "      (alerts: one process $("$bin" -c "$cfg" "${caps[@]}" --alerts - -q 2>/dev/null | wc -l), detector 1/1 $(wc -l <"$work/c.alerts"))"
        nats_down
        rm -rf "$dir"
    done
    echo "== throughput, $runs runs: min-max ($ex exchanges)"
    awk -F'\t' '{
        k = $2; if (!(k in lo)) { order[++n] = k; lo[k] = hi[k] = $3; rl[k] = rh[k] = $4; o[k] = $7 }
        if ($3 < lo[k]) lo[k] = $3; if ($3 > hi[k]) hi[k] = $3
        if ($4 < rl[k]) rl[k] = $4; if ($4 > rh[k]) rh[k] = $4
        if ($7 > o[k]) o[k] = $7
    } END {
        for (i = 1; i <= n; i++) { k = order[i]
            printf "%-28s %.3f-%.3f s  %d-%d exchanges/s", k, lo[k], hi[k], rl[k], rh[k]
            if (k !~ /of two/) printf "  (other CPU at most %.2f s)", o[k]
            printf "\n" }
    }' "$res"
}

# ---------------------------------------------------------------- latency
latency() {
    [ "$(id -u)" = 0 ] || { echo "latency needs root (network namespaces)" >&2; exit 2; }
    command -v ip >/dev/null || { echo "latency needs iproute2" >&2; exit 2; }
    local cli=nbc0 srv=nbs0
    ip netns add "$NS_SRV"
    ip netns add "$NS_CLI"
    ip -n "$NS_SRV" link set lo up
    ip -n "$NS_CLI" link set lo up
    ip -n "$NS_CLI" link add "$cli" type veth peer name "$srv" netns "$NS_SRV"
    ip -n "$NS_SRV" addr add 10.98.0.2/24 dev "$srv"
    ip -n "$NS_CLI" addr add 10.98.0.10/24 dev "$cli"
    local a
    for a in 21 22 23 24 25 31 32 33 34 35; do ip -n "$NS_CLI" addr add "10.98.0.$a/24" dev "$cli"; done
    ip -n "$NS_SRV" link set "$srv" mtu 1500 up
    ip -n "$NS_CLI" link set "$cli" mtu 1500 up
    if command -v ethtool >/dev/null; then
        ip netns exec "$NS_SRV" ethtool -K "$srv" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
        ip netns exec "$NS_CLI" ethtool -K "$cli" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    fi

    cat >"$work/server.py" <<'PY'
# 200 with a small JSON list on GET, 401 "invalid credentials" on POST /login.
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY the body waits for the
    # client's delayed ACK (40 ms), which would count as latency.
    disable_nagle_algorithm = True
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200, b'[{"id":1,"name":"a"},{"id":2,"name":"b"}]')
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/login":
            self.answer(401, b'{"error":"invalid credentials"}')
        else:
            self.answer(404, b'{"error":"not found"}')
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("10.98.0.2", 8080), H).serve_forever()
PY
    cat >"$work/traffic.py" <<'PY'
# Background GETs from .10 five times a second for the whole run; after LEARN s, ten
# attackers, one after the other 1.5 s apart, each POSTing wrong passwords for one
# user on one keep-alive connection as fast as the server answers: .21-.25 30 times
# (the 10th attempt, which raises brute_force, is followed by 20 more), .31-.35 10
# times (the attempt that raises it is their last). Bounded: 5 s timeout a request.
# Writes each attempt's send and answer times (LOG) to check what the latency holds.
import http.client, json, socket, sys, threading, time
learn, end_after, log = float(sys.argv[1]), float(sys.argv[2]), open(sys.argv[3], "w")
t0 = time.time()
stop = threading.Event()
def background():
    c = http.client.HTTPConnection("10.98.0.2", 8080, timeout=5, source_address=("10.98.0.10", 0))
    while not stop.is_set():
        c.request("GET", "/api/items")
        c.getresponse().read()
        time.sleep(0.2)
bg = threading.Thread(target=background, daemon=True)
bg.start()
time.sleep(learn)
for n in range(5):
    for ip, attempts in (("10.98.0.%d" % (21 + n), 30), ("10.98.0.%d" % (31 + n), 10)):
        c = http.client.HTTPConnection("10.98.0.2", 8080, timeout=5, source_address=(ip, 0))
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(attempts):
            body = json.dumps({"username": "admin", "password": "wrong-%s-%d" % (ip, i)})
            sent = time.time()
            c.request("POST", "/login", body, {"Content-Type": "application/json"})
            c.getresponse().read()
            log.write("%s\t%d\t%.6f\t%.6f\n" % (ip, i + 1, sent, time.time()))
        c.close()
        time.sleep(1.5)
time.sleep(max(0.0, t0 + end_after - time.time()))
stop.set()
bg.join(6)
PY
    cat >"$work/poll.py" <<'PY'
# Reads FILE every millisecond; each new complete line: wall time seen, timestamp, kind, client.
import datetime, json, os, sys, time
path, out, stopfile = sys.argv[1], sys.argv[2], sys.argv[3]
pos, buf = 0, b""
with open(out, "w") as o:
    while not os.path.exists(stopfile):
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        seen = time.time()
        if data:
            pos += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                a = json.loads(line)
                ts = datetime.datetime.strptime(a["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
                o.write("%.6f\t%.6f\t%s\t%s\n" % (seen, ts, a["alert"]["context"]["apiwatch"]["kind"], a.get("src_ip", "-")))
                o.flush()
        time.sleep(0.001)
PY
    NS=$NS_CLI
    ip netns exec "$NS_SRV" python3 "$work/server.py" &
    local server_pid=$!
    pids+=("$server_pid")
    sleep 1
    local res=$work/latency.tsv
    : >"$res"
    local aw_args=()
    read -r -a aw_args <<<"${AW_ARGS:-}" # a list of options
    local run mode alerts stopf poll_pid aw_pids t_end b0 b1 o0 o1 learn=12 total=29 p
    for run in $(seq "$runs"); do
        for mode in a b; do
            echo "== latency run $run mode $mode ($(cut -d' ' -f1-3 /proc/loadavg) load before)"
            alerts=$work/lat-$run$mode.alerts
            stopf=$work/lat-$run$mode.stop
            python3 "$work/poll.py" "$alerts" "$work/lat-$run$mode.seen" "$stopf" &
            poll_pid=$!
            pids+=("$poll_pid")
            aw_pids=()
            if [ "$mode" = a ]; then
                ip netns exec "$NS_CLI" "$bin" -c "$cfg" -i "$cli" "${aw_args[@]}" --alerts "$alerts" --learning-period 10s 2>"$work/lat-$run$mode.log" &
                aw_pids+=($!)
            else
                mkdir -p "$work/nats-l$run"
                nats_up 4222 "$work/nats-l$run"
                ip netns exec "$NS_CLI" "$bin" -c "$cfg" -i "$cli" "${aw_args[@]}" --publish nats://127.0.0.1:4222 2>"$work/lat-$run$mode.log" &
                aw_pids+=($!)
                sleep 0.5
                ip netns exec "$NS_CLI" "$bin" detect -c "$cfg" --from nats://127.0.0.1:4222 --shard 1/1 \
                    --alerts "$alerts" --learning-period 10s 2>"$work/lat-$run$mode.detect.log" &
                aw_pids+=($!)
            fi
            pids+=("${aw_pids[@]}")
            sleep 1.5
            ours() { local q s=0; for q in "${aw_pids[@]}" "$server_pid" "$poll_pid" ${nats_pid:+"$nats_pid"}; do s=$((s + $(pcpu "$q"))); done; echo "$s"; }
            [ "$mode" = a ] && nats_pid=""
            o0=$(ours); b0=$(busy)
            /usr/bin/time -f "%U %S" -o "$work/traffic.cpu" \
                ip netns exec "$NS_CLI" python3 "$work/traffic.py" "$learn" "$total" "$work/lat-$run$mode.requests"
            sleep 1
            t_end=$(date +%s.%N)
            b1=$(busy); o1=$(ours)
            for p in "${aw_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
            for p in "${aw_pids[@]}"; do wait "$p" || true; done
            forget "${aw_pids[@]}"
            [ "$mode" = b ] && nats_down
            sleep 0.1
            touch "$stopf"
            wait "$poll_pid" || true
            forget "$poll_pid"
            # run mode kind client latency_ms answer_ms after_answer_ms
            python3 - "$work/lat-$run$mode.seen" "$work/lat-$run$mode.requests" "$t_end" "$run" "$mode" >>"$res" <<'PY'
import sys
seen, reqs, end, run, mode = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
attempts = {}
for l in open(reqs):
    ip, n, sent, got = l.split("\t")
    attempts.setdefault(ip, []).append((int(n), float(sent), float(got)))
for l in open(seen):
    at, ts, kind, client = l.rstrip("\n").split("\t")
    at, ts = float(at), float(ts)
    if at > end:
        continue
    # The triggering attempt: the last one the client sent before the alert's packet
    # time (its first packet leaves after the client's clock read; 50 us of slack for
    # rounding, far below the answer time).
    near = [a for v in attempts.values() for a in v] if client == "-" else attempts.get(client, [])
    before = [a for a in near if a[1] <= ts + 0.00005]
    n, sent, got = max(before, key=lambda a: a[1]) if before else (0, ts, ts)
    label = kind
    if kind == "brute_force":
        label += " (%dth of %d)" % (n, len(attempts.get(client, [])))
    print("%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f" % (run, mode, label, client, (at - ts) * 1e3, (got - sent) * 1e3, (at - got) * 1e3))
PY
            awk -F'\t' -v r="$run" -v m="$mode" '$1 == r && $2 == m { printf "   %-32s %-11s %6.1f ms  (answer %.1f ms, after answer %.1f ms)\n", $3, $4, $5, $6, $7 }' "$res"
            awk -v b="$((b1 - b0))" -v o="$((o1 - o0))" -v c="$(awk '{ print $1 + $2 }' "$work/traffic.cpu")" -v hz="$hz" -v s="$total" 'BEGIN {
                printf "   (CPU over the traffic, in cores: the test %.2f, other %.2f)\n", (o / hz + c) / s, (b - o) / hz / s - c / s }'
            local late
            late=$(awk -F'\t' -v end="$t_end" '$1 > end' "$work/lat-$run$mode.seen" | wc -l)
            [ "$late" = 0 ] || echo "   ($late alert(s) written after the traffic ended, not counted)"
        done
    done
    echo "== latency, $runs runs: per kind, mode a (one process) and b (sensor + NATS + detector),"
    echo "   min / median / max over all runs (ms); added = median b - median a"
    python3 - "$res" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
for col, what in ((4, "wire to alert"), (6, "after answer")):
    print(what + ":")
    by = {}
    for r in rows:
        by.setdefault((r[2], r[1]), []).append(float(r[col]))
    for kind in sorted({k for k, _ in by}):
        line = "  %-28s" % kind
        med = {}
        for mode in "ab":
            v = sorted(by.get((kind, mode), []))
            if v:
                med[mode] = statistics.median(v)
                line += "  %s: n=%-2d %6.1f / %6.1f / %6.1f" % (mode, len(v), v[0], med[mode], v[-1])
            else:
                line += "  %s: none" % mode + " " * 26
        if len(med) == 2:
            line += "  added %+.1f" % (med["b"] - med["a"])
        print(line)
PY
}

case $what in
    throughput) throughput ;;
    latency) latency ;;
    all) throughput; latency ;;
esac
