#!/usr/bin/env bash
# Live capture at the highest rate this machine can put on a wire: tcpreplay sends
# the benchmark capture (`scripts/make-capture.sh bench`) at top speed into one end of
# a veth pair inside a network namespace made here; `apiwatch -i` captures on the
# other end, once per worker count. Reports what was sent, what apiwatch saw and
# reconstructed, kernel drops and the CPU apiwatch used. The sender shares this
# machine's cores. Needs root, iproute2, tcpreplay. Nothing leaves the namespace.
#
# Usage: scripts/bench-live-replay.sh [CAPTURE] [WORKERS...]   (default bench-data/api-bench.pcap, "1 2")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:-$root/bench-data/api-bench.pcap}
shift || true
counts=${*:-1 2}
[ -f "$cap" ] || "$root/scripts/make-capture.sh" bench "$cap"
cargo build --release --manifest-path "$root/Cargo.toml" >/dev/null 2>&1
bin=$root/target/release/apiwatch
ns=aw-replay
work=$(mktemp -d)
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
ip -n "$ns" link add aw-tx type veth peer name aw-rx
for dev in aw-tx aw-rx; do
    ip -n "$ns" link set "$dev" mtu 1500 up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off >/dev/null 2>&1 || true
done
want=$("$bin" -r "$cap" --exchanges - --alerts /dev/null -q | wc -l)
for n in $counts; do
    ip netns exec "$ns" /usr/bin/time -f "cpu %U %S" -o "$work/aw.cpu" \
        "$bin" -i aw-rx --workers "$n" --ring-size 256 --exchanges "$work/x.jsonl" \
        --alerts /dev/null 2>"$work/aw.err" &
    sleep 1
    ip netns exec "$ns" tcpreplay -i aw-tx --topspeed "$cap" >"$work/tr.out" 2>&1 || true
    sleep 2
    pkill -INT -f "$bin -i aw-rx" || true
    wait || true
    sent=$(awk '/Actual:/{print $2}' "$work/tr.out")
    rate=$(awk '/Rated:/{print $4, $5}' "$work/tr.out" | head -1)
    got=$(wc -l <"$work/x.jsonl")
    read -r _ cu cs <"$work/aw.cpu"
    awk -v n="$n" -v sent="$sent" -v rate="$rate" -v got="$got" -v want="$want" -v cpu="$(echo "$cu + $cs" | bc)" '
        /^  packets/ {p=$2; d=$(NF-4)}
        END {printf "workers %s: tcpreplay sent %d packets (%s); apiwatch saw %d, kernel drops %d; exchanges %d of %d (%.1f%%); apiwatch CPU %.2f s\n",
            n, sent, rate, p, d, got, want, 100*got/want, cpu}' "$work/aw.err"
done
