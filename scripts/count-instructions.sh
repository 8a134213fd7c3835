#!/usr/bin/env bash
# Instructions per packet, load-independent: valgrind's callgrind counts every
# instruction of every thread of `apiwatch -r CAPTURE` (one worker, the exchange log
# written to /dev/null unless EXCHANGES says otherwise), minus a run over the
# capture's first packet only (start-up, configuration, summary), divided by the
# packets after the first. The same binary and inputs give the same count on a
# busy or an idle machine, so a change can be judged without wall clocks.
#
# Usage: scripts/count-instructions.sh CAPTURE [EXTRA APIWATCH ARGS...]
#   APIWATCH=path/to/apiwatch (default target/release/apiwatch)
#   EXCHANGES=/dev/null (the exchange log; "off" to run without one)
#   KEEP=dir to keep the callgrind outputs (callgrind_annotate them for profiles)
# Needs valgrind and editcap (wireshark-common, with tshark).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:?usage: $0 CAPTURE [ARGS...]}
shift
bin=${APIWATCH:-$root/target/release/apiwatch}
exchanges=${EXCHANGES:-/dev/null}
work=$(mktemp -d)
keep=${KEEP:-}
trap 'rm -rf "$work"' EXIT

one=$work/one.pcap
# The one-packet file in the capture's own format (pcap readers and pcapng readers
# cost differently per packet).
format=pcapng
[ "$(head -c 4 "$cap" | od -An -tx1 | tr -d ' \n')" = 0a0d0d0a ] || format=pcap
case "$cap" in *.gz) format=pcap ;; esac
editcap -F "$format" -r "$cap" "$one" 1 >/dev/null 2>&1 || { echo "editcap could not cut $cap" >&2; exit 1; }
packets=$(capinfos -M -c "$cap" | awk -F': *' '/Number of packets/ {print $2}')

args=(--workers 1 --alerts /dev/null -q --learning-period 1m)
[ "$exchanges" != off ] && args+=(--exchanges "$exchanges")
count() { # FILE OUT [ARGS...] -> instructions of all threads
    local file=$1 out=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" -r "$file" "${args[@]}" "$@" \
        >/dev/null 2>"$out.log" || { cat "$out.log" >&2; exit 1; }
    awk '/^(summary|totals):/ {print $2; exit}' "$out"
}
full=$(count "$cap" "$work/full.out" "$@")
base=$(count "$one" "$work/one.out" "$@")
if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$work"/*.out "$keep"/; fi
awk -v f="$full" -v b="$base" -v n="$packets" 'BEGIN {
    printf "packets %d\ninstructions %.0f (one-packet run %.0f)\ninstructions per packet %.0f\n", n, f, b, (f - b) / (n - 1)
}'
