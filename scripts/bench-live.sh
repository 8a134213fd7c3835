#!/usr/bin/env bash
# Live capture throughput: wrk (client) against nginx (server) in two network
# namespaces over a veth at MTU 1500 (the setup of `make-capture.sh bench`), with
# `apiwatch -i` on the client's veth, once per worker count. Reports what wrk sent,
# what apiwatch reconstructed, and the kernel's drop counter. Everything (load
# generator, server, sensor) shares this machine's cores, so the figure is a floor.
# Needs root, iproute2, ethtool, nginx-light, wrk.
#
# Usage: [AW_ARGS="--ring-size 1"] scripts/bench-live.sh [SECONDS] [WORKERS...]   (default 10, "1 2")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
shift || true
counts=${*:-1 2}
# shellcheck source=capture-kit/kit.sh
. "$root/scripts/capture-kit/kit.sh"
# shellcheck source=capture-kit/apps/bench.sh
. "$root/scripts/capture-kit/apps/bench.sh"
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
bin=$root/target/release/apiwatch

bench_env_up
work=$KIT_WORK

for n in $counts; do
    # shellcheck disable=SC2086 # AW_ARGS is a list of options
    ip netns exec aw-cli /usr/bin/time -f "cpu %U %S" -o "$work/aw.cpu" \
        "$bin" -i aw-cli-v --workers "$n" ${AW_ARGS:-} --exchanges /dev/null \
        --alerts /dev/null tcp port 8080 2>"$work/aw.err" &
    aw=$!
    sleep 1
    ip netns exec aw-cli wrk -t 1 -c 16 -d "${secs}s" -s "$root/scripts/bench-traffic.lua" \
        http://10.77.0.2:8080 >"$work/wrk.out" 2>&1 || true
    sleep 1
    t0=$(date +%s.%N)
    pkill -INT -f "$bin -i aw-cli-v" || true
    wait "$aw" || true
    t1=$(date +%s.%N)
    requests=$(awk '/requests in/{print $1}' "$work/wrk.out")
    read -r bytes <<<"$(awk '/msg="Summary: packets"/{for (i = 1; i <= NF; i++) if (sub(/^wire_bytes=/, "", $i)) print $i}' "$work/aw.err")"
    read -r _ cu cs <"$work/aw.cpu"
    awk -v n="$n" -v r="$requests" -v s="$secs" -v b="$bytes" -v stop="$(echo "$t1 - $t0" | bc)" -v cpu="$(echo "$cu + $cs" | bc)" '
        /^  packets/ {p=$2; d=$(NF-4)}
        /^  http/ {x=$2}
        END {printf "workers %s: wrk %d requests (%.0f/s); apiwatch %d exchanges (%.2f%%), %d packets, %.2f Gbit/s, kernel drops %d; apiwatch CPU %.2f s (%.2f cores over the load); exit %.2f s after SIGINT\n",
            n, r, r/s, x, 100*x/r, p, b*8/s/1e9, d, cpu, cpu/s, stop}' "$work/aw.err"
done
