#!/usr/bin/env bash
# JA4 (or JA3, or JA3S) per TLS connection: apiwatch against Suricata 8 on the same
# captures (issue #24). Both read each capture; their TLS records are joined by
# connection (client address and port, server address and port; a 4-tuple seen twice
# pairs in order). One row a connection: client port, SNI, version, ALPN offered,
# apiwatch's fingerprint, Suricata's, equal or not; then `N/M equal` over all
# captures. A connection one side has no record for counts as not equal; for JA3S, a
# connection without a ServerHello is equal when neither side has a JA3S. Exit 1 when
# any row is not equal. docs/exchange-log.md ("Agreement with Suricata") has the
# figures and how Suricata was built.
#
# Usage: scripts/ja4-vs-suricata.sh [--fingerprint ja4|ja3|ja3s] [--group] CAPTURE...
#                                       (.pcap, .pcapng, or either gzipped)
#   --fingerprint             which one is compared (default ja4): apiwatch's `ja4`,
#                             `ja3`, `ja3s` against Suricata's `tls.ja4`,
#                             `tls.ja3.hash`, `tls.ja3s.hash`
#   --group                   one row per distinct (SNI, version, ALPN, both
#                             fingerprints) with its count and client addresses,
#                             instead of per connection
#   SURICATA=path/to/suricata (default: suricata on PATH; 8.0 or later, built with JA4
#                             and JA3, both on by default at build time)
#   SURICATA_CONFIG=path      (optional: a suricata.yaml with an eve-log `tls` output
#                             logging sni, version, ja3, ja3s, ja4, client_alpns,
#                             client_handshake, and app-layer.protocols.tls
#                             ja3-fingerprints and ja4-fingerprints: yes; by default a
#                             minimal one is written to a temporary directory)
#   APIWATCH=path             (default target/debug/apiwatch)
# Needs jq.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
group=
fp=ja4
while [ $# -gt 0 ]; do
    case $1 in
    --group) group=1 ;;
    --fingerprint)
        fp=${2:-}
        shift
        ;;
    *) break ;;
    esac
    shift
done
case $fp in
ja4 | ja3 | ja3s) ;;
*) echo "--fingerprint: ja4, ja3 or ja3s" >&2; exit 2 ;;
esac
FP=${fp^^}
[ $# -ge 1 ] || { echo "usage: $0 [--fingerprint ja4|ja3|ja3s] [--group] CAPTURE..." >&2; exit 2; }
suricata=${SURICATA:-suricata}
bin=${APIWATCH:-$root/target/debug/apiwatch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

conf=${SURICATA_CONFIG:-$work/suricata.yaml}
if [ -z "${SURICATA_CONFIG:-}" ]; then
    cat >"$conf" <<'EOF'
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "any"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "80"
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - tls:
            session-resumption: yes
            custom: [sni, version, ja3, ja3s, ja4, client_alpns, server_alpns, client_handshake]
app-layer:
  protocols:
    tls:
      enabled: yes
      detection-ports:
        dp: 443
      ja3-fingerprints: yes
      ja4-fingerprints: yes
logging:
  default-log-level: warning
  outputs:
    - console:
        enabled: yes
EOF
fi

n=0
for cap in "$@"; do
    n=$((n + 1))
    dir=$work/$n
    mkdir -p "$dir/s"
    case $cap in
    *.gz)
        gunzip -c "$cap" >"$dir/capture.pcap"
        pcap=$dir/capture.pcap
        ;;
    *) pcap=$cap ;;
    esac
    "$bin" -r "$pcap" --exchanges "$dir/apiwatch.json" --alerts /dev/null -q
    "$suricata" --runmode single -k none --disable-detection -c "$conf" -r "$pcap" \
        -l "$dir/s" >"$dir/suricata.log" 2>&1 || { cat "$dir/suricata.log" >&2; exit 1; }
    # Rows as tab-separated fields: capture, client ip, client port, SNI, version,
    # ALPN offered, apiwatch's fingerprint, Suricata's, equal, which side has a record
    # (both, apiwatch, suricata).
    jq -rn --arg cap "$(basename "$cap")" --arg fp "$fp" \
        --slurpfile a "$dir/apiwatch.json" --slurpfile s "$dir/s/eve.json" '
      def keyed(k): group_by(k) | map(to_entries | map({key: "\(.value | k) #\(.key)", value: .value})) | add // [] | from_entries;
      def orq: if . == null or . == "" or . == [] then "-" else . end;
      # Suricata writes `TLS 1.2`, `TLSv1` (1.0), `SSLv3`; apiwatch `1.2`, `1.0`, `ssl3`.
      def sver: if . == "TLSv1" then "1.0" elif . == "SSLv3" then "ssl3" else sub("^TLS "; "") end;
      ($a | map(select(.type == "tls")) | sort_by(.timestamp)
          | keyed("\(.client_ip) \(.client_port) \(.server_ip) \(.server_port)")) as $A
      | ($s | map(select(.event_type == "tls")) | sort_by(.timestamp)
          | keyed("\(.src_ip) \(.src_port) \(.dest_ip) \(.dest_port)")) as $S
      | ([$A, $S] | map(keys) | add | unique | sort_by(split(" ") | .[1] | tonumber)) as $keys
      | $keys[] as $k | ($A[$k]) as $x | ($S[$k]) as $y
      | ($x.sni // $y.tls.sni | orq) as $sni
      | ([($x.version | orq), ($y.tls.version // null | orq | sver)] | unique | join(" / ")) as $ver
      | (($x.alpn_offered // $y.tls.client_alpns // []) | join(",") | orq) as $alpn
      | ($x[$fp] | orq) as $ja
      | ($y.tls[$fp] | if type == "object" then .hash else . end | orq) as $js
      | (if $x == null then "suricata" elif $y == null then "apiwatch" else "both" end) as $rec
      | [$cap, ($k | split(" ") | .[0]), ($k | split(" ") | .[1]), $sni, $ver, $alpn, $ja, $js,
         (if $rec == "both" and $ja == $js and ($ja != "-" or $fp == "ja3s") then "yes" else "NO" end),
         $rec] | @tsv' >>"$work/rows.tsv"
done

if [ -n "$group" ]; then
    echo "| capture | connections | clients | SNI | version (apiwatch / Suricata) | ALPN offered | apiwatch $FP | Suricata $FP | equal |"
    echo "|---|---|---|---|---|---|---|---|---|"
    jq -rR --slurp 'split("\n") | map(select(. != "") | split("\t"))
        | group_by([.[0], .[3], .[4], .[5], .[6], .[7], .[8]])
        | sort_by(-length)[]
        | "| \(.[0][0]) | \(length) | \(map(.[1]) | unique | join(", ")) | \(.[0][3]) | \(.[0][4]) | \(.[0][5]) | `\(.[0][6])` | `\(.[0][7])` | \(.[0][8]) |"' \
        "$work/rows.tsv"
else
    echo "| capture | client port | SNI | version (apiwatch / Suricata) | ALPN offered | apiwatch $FP | Suricata $FP | equal |"
    echo "|---|---|---|---|---|---|---|---|"
    while IFS=$'\t' read -r c _ port sni ver alpn ja js eq _; do
        echo "| $c | $port | $sni | $ver | $alpn | \`$ja\` | \`$js\` | $eq |"
    done <"$work/rows.tsv"
fi
total=$(wc -l <"$work/rows.tsv")
equal=$(awk -F'\t' '$9 == "yes"' "$work/rows.tsv" | wc -l)
only_a=$(awk -F'\t' '$10 == "apiwatch"' "$work/rows.tsv" | wc -l)
only_s=$(awk -F'\t' '$10 == "suricata"' "$work/rows.tsv" | wc -l)
echo
echo "$equal/$total equal ($only_a connections with no Suricata record, $only_s with no apiwatch record)"
[ "$equal" -eq "$total" ]
