#!/usr/bin/env bash
# Wall time, CPU time and peak RSS of apiwatch (one worker, writing its exchange log)
# against Suricata (one packet thread, detection off, no log) on the same capture,
# in alternating runs. docs/performance.md has the figures and how Suricata was built.
#
# Usage: scripts/bench-vs-suricata.sh CAPTURE [ROUNDS]   (default 3 rounds)
#   SURICATA=path/to/suricata        (default: suricata on PATH)
#   SURICATA_CONFIG=path/to/nolog.yaml (required: suricata.yaml with stats, fast,
#                                     eve-log and the stats output set to enabled: no)
#   DEPTH0=1 also runs Suricata with stream.reassembly.depth=0: by default Suricata
#            stops reassembling a direction after 1 MiB, so on long keep-alive
#            connections it parses only the first responses; apiwatch reads them all.
#   APIWATCH=path (default target/release/apiwatch)
# Needs GNU time (/usr/bin/time, Debian package `time`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:?usage: $0 CAPTURE [ROUNDS]}
rounds=${2:-3}
suricata=${SURICATA:-suricata}
conf=${SURICATA_CONFIG:?set SURICATA_CONFIG to a suricata.yaml with every output disabled}
bin=${APIWATCH:-$root/target/release/apiwatch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # NAME COMMAND... -> one line
    local name=$1
    shift
    # Page cache: every run reads a warm file. (Small VMs were seen to drop part of a
    # multi-gigabyte capture from the cache between runs; reading it again here keeps
    # the disk out of both tools' times.)
    cat "$cap" >/dev/null
    /usr/bin/time -f "$name wall_s %e user_s %U sys_s %S max_rss_kb %M" -o "$work/time" "$@" \
        >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
    cat "$work/time"
}
for _ in $(seq "$rounds"); do
    # A fresh log file each run (truncating the last run's 100 MB at open would be
    # counted in apiwatch's time: about 0.03 s here).
    rm -f "$work/exchanges.json"
    measure apiwatch "$bin" -r "$cap" --workers 1 -q --alerts "$work/alerts.json" \
        --exchanges "$work/exchanges.json"
    rm -rf "$work/s" && mkdir "$work/s"
    measure suricata "$suricata" --runmode single -k none --disable-detection -c "$conf" \
        -r "$cap" -l "$work/s"
    if [ -n "${DEPTH0:-}" ]; then
        rm -rf "$work/s" && mkdir "$work/s"
        measure suricata-depth0 "$suricata" --runmode single -k none --disable-detection \
            -c "$conf" --set stream.reassembly.depth=0 -r "$cap" -l "$work/s"
    fi
done
echo "apiwatch exchanges: $(wc -l <"$work/exchanges.json")"
