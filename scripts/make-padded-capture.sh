#!/usr/bin/env bash
# Makes captures/padded-logins.pcap.gz: 20 failed JSON logins with one 70 KB padding
# header each, then 20 with a 900 KB one, sent by curl to a Node.js server that
# accepts heads up to 2 MB (as Go's net/http accepts 1 MB), in two network
# namespaces on a veth pair (MTU 1500), captured with tcpdump. Needs root, iproute2,
# ethtool, tcpdump, curl, node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/captures/padded-logins.pcap}
. "$root/scripts/netns.sh"
work=$(mktemp -d)
cleanup() {
    [[ -n ${srv:-} ]] && kill "$srv" 2>/dev/null || true
    netns_down
    rm -rf "$work"
}
trap cleanup EXIT
netns_up
cat >"$work/server.js" <<'JS'
require('http').createServer({ maxHeaderSize: 2 * 1024 * 1024 }, (req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    res.writeHead(401, { 'Content-Type': 'application/json' });
    res.end('{"error":"invalid credentials"}');
  });
}).listen(8080, '10.77.0.2');
JS
ip netns exec "$AW_SRV" node "$work/server.js" &
srv=$!
wait_port 8080
capture_start "$out.tmp"
for size in 70000 900000; do
    head -c "$size" /dev/zero | tr '\0' 'a' | sed 's/^/X-Pad: /' >"$work/pad"
    for i in $(seq 20); do
        ip netns exec "$AW_CLI" curl -s -o /dev/null -H @"$work/pad" \
            -H 'Content-Type: application/json' \
            --data "{\"username\":\"admin\",\"password\":\"guess$size-$i\"}" \
            "http://$AW_SRV_IP:8080/api/login"
        sleep 0.2
    done
    sleep 130 # past the episode gap (120 s): each size is its own alert
done
capture_stop
mv "$out.tmp" "$out"
gzip -9f "$out"
echo "wrote $out.gz"
