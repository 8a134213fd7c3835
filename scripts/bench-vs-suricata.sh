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
#   KEEP_CACHE=1 reads the capture as the page cache holds it instead of dropping it
#            from the cache and reading it back from disk before every run
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
    # Page cache: every run reads a warm file, in the same state. The capture is
    # dropped from the cache and read back from disk first: how the kernel holds a
    # cached file depends on how it got there (Linux 6.16 and later keep a file read
    # from disk in 2 MiB folios, which a mapping then maps with one fault each; a
    # file still cached from the tcpdump that wrote it is held in 4 KiB pages), and
    # that changes a mapped reader's time by a third (docs/performance.md). Small VMs
    # were also seen to drop part of a multi-gigabyte capture between runs.
    # KEEP_CACHE=1 skips the drop and only reads the file (the cache as it is).
    if [ -z "${KEEP_CACHE:-}" ]; then
        dd if="$cap" iflag=nocache count=0 status=none
    fi
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
