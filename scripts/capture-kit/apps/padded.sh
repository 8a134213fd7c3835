# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# padded: captures/padded-logins.pcap.gz: 20 failed JSON logins with one 70 KB padding
# header each, then 20 with a 900 KB one, sent by curl to a Node.js server that accepts
# heads up to 2 MB (as Go's net/http accepts 1 MB), over one veth pair (~5 minutes:
# each size is followed by 130 s, past the 120 s episode gap).
APP_DESC="20 + 20 failed logins with 70 KB / 900 KB padding headers against node (~5 min)"
APP_NEEDS="curl node gzip"

app_defaults() { OUT=${OUT:-$root/captures/padded-logins.pcap}; }

app_run() {
    kit_work aw-padded
    kit_pair_up aw-cli aw-srv 10.77.0.1 10.77.0.2
    cat >"$KIT_WORK/server.js" <<'JS'
require('http').createServer({ maxHeaderSize: 2 * 1024 * 1024 }, (req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    res.writeHead(401, { 'Content-Type': 'application/json' });
    res.end('{"error":"invalid credentials"}');
  });
}).listen(8080, '10.77.0.2');
JS
    kit_bg ip netns exec aw-srv node "$KIT_WORK/server.js"
    kit_wait_tcp aw-cli 10.77.0.2 8080
    kit_capture_start aw-cli aw-cli-v "$OUT.tmp" tcp
    local size i
    for size in 70000 900000; do
        head -c "$size" /dev/zero | tr '\0' 'a' | sed 's/^/X-Pad: /' >"$KIT_WORK/pad"
        for i in $(seq 20); do
            ip netns exec aw-cli curl -s -o /dev/null -H @"$KIT_WORK/pad" \
                -H 'Content-Type: application/json' \
                --data "{\"username\":\"admin\",\"password\":\"guess$size-$i\"}" \
                http://10.77.0.2:8080/api/login
            sleep 0.2
        done
        sleep "${PADDED_GAP_S:-130}" # past the episode gap (120 s): each size is its own alert
    done
    kit_capture_stop
    mv "$OUT.tmp" "$OUT"
    kit_gzip "$OUT"
    echo "wrote $OUT.gz"
}
