#!/usr/bin/env bash
# Generates the large capture the replay benchmark reads: wrk (client) against nginx
# (server) in two network namespaces over a veth pair at MTU 1500, captured with
# tcpdump. Traffic mix: scripts/bench-traffic.lua. Needs root, iproute2, ethtool,
# tcpdump, nginx-light, wrk.
#
# Usage: scripts/make-bench-capture.sh [OUT.pcap] [SECONDS]   (default bench-data/api-bench.pcap, 20)
#   KEEPALIVE_REQUESTS=N: nginx closes a connection after N requests (default 1000).
#   With 64, no direction of a connection passes 1 MiB, Suricata's default stream
#   depth, so Suricata parses every exchange as apiwatch does.
#   WRK_DELAY_MS=N: paces each connection (see bench-traffic.lua); tcpdump reports
#   its drops at the end, and a fair comparison wants none.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bench-data/api-bench.pcap}
secs=${2:-20}
mkdir -p "$(dirname "$out")"
. "$root/scripts/netns.sh"

bench_env_up
capture_start "$out"
ip netns exec "$AW_CLI" wrk -t 1 -c 16 -d "${secs}s" -s "$root/scripts/bench-traffic.lua" \
    "http://$AW_SRV_IP:8080" || true
capture_stop
ls -l "$out"
