#!/usr/bin/env bash
# Replay throughput of apiwatch on a large capture, per worker count (WORKERS, default
# "1 2"), with tshark on the same capture in the same run for the ratio. Makes the
# capture first if it is missing (`scripts/make-capture.sh bench`, root needed).
#
# Usage: [WORKERS="1 2 4"] scripts/bench-replay.sh [CAPTURE] [RUNS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:-$root/bench-data/api-bench.pcap}
runs=${2:-5}
[ -f "$cap" ] || "$root/scripts/make-capture.sh" bench "$cap"
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
bin=$root/target/release/apiwatch
bytes=$(stat -c %s "$cap")
cat "$cap" >/dev/null # warm the page cache so both tools read from memory

measure() { # prints "seconds max_rss_kb"
    /usr/bin/time -f "%e %M" -o /tmp/bench-time.$$ "$@" >/dev/null 2>&1
    cat /tmp/bench-time.$$
}

echo "capture: $cap ($bytes bytes, $(capinfos -c -M "$cap" 2>/dev/null | awk '/Number of packets/{print $NF}') packets)"
one=""
for w in ${WORKERS:-1 2}; do
    best=""
    for i in $(seq "$runs"); do
        read -r secs rss < <(measure "$bin" -r "$cap" -q --workers "$w" --exchanges /dev/null --alerts /dev/null)
        echo "apiwatch --workers $w run $i: ${secs}s, max RSS ${rss} KB"
        if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$secs; best_rss=$rss; fi
    done
    [ -n "$one" ] || one=$best
    awk -v b="$bytes" -v s="$best" -v r="$best_rss" -v w="$w" -v one="$one" 'BEGIN{
        printf "apiwatch --workers %s (best of runs): %.2f s  %.2f Gbit/s  peak RSS %.1f MB  speed-up over the first count %.2fx\n", w, s, b*8/s/1e9, r/1024, one/s }'
done
best=$one
best_rss=0
packets=$("$bin" -r "$cap" 2>&1 >/dev/null | awk '/msg="Summary: packets"/{for (i = 1; i <= NF; i++) if (sub(/^packets=/, "", $i)) print $i}')
exchanges=$("$bin" -r "$cap" --exchanges - --alerts /dev/null -q | wc -l)
read -r tsecs trss < <(measure tshark -r "$cap" --disable-protocol json -Y http -T fields -e frame.number)
awk -v b="$bytes" -v s="$best" -v p="$packets" -v ts="$tsecs" -v r="$best_rss" -v tr="$trss" -v x="$exchanges" 'BEGIN{
    printf "apiwatch (first worker count): %.2f s  %.2f Gbit/s  %.0f packets/s  %d exchanges\n", s, b*8/s/1e9, p/s, x;
    printf "tshark:                  %.2f s  %.3f Gbit/s  peak RSS %.1f MB\n", ts, b*8/ts/1e9, tr/1024;
    printf "ratio apiwatch/tshark:   %.1fx\n", ts/s }'
