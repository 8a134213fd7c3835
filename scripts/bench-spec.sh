#!/bin/sh
# What a large `--openapi` spec adds to a replay (issue #22): a synthetic capture of
# N exchanges (examples/hostile.rs `paths`: 50 clients, each request a new
# `/files/fHEXq/raw`, answered 200) replayed without a spec, with a one-path spec
# and with a spec of P paths whose requests all fit `/files/f{id}q/raw` past nine
# other templated siblings. Prints the best of R wall-clock times for each.
#
# Usage: scripts/bench-spec.sh [N] [P] [R]   (defaults 100000 20000 5)
set -eu
N=${1:-100000}
P=${2:-20000}
R=${3:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cargo build --release --quiet --bin apiwatch --example hostile
bin=target/release/apiwatch
target/release/examples/hostile paths "$N" "$dir/paths.pcap"
python3 - "$P" "$dir/big.json" "$dir/one.json" <<'PY'
import json, sys
n, big, one = int(sys.argv[1]), sys.argv[2], sys.argv[3]
op = {"get": {"responses": {"200": {"description": "ok"}}}}
paths = {}
# The capture's route, behind templated siblings with literal parts.
for t in ["f{id}q", "{id}.json", "v{id}", "{a}-{b}", "g{id}q", "f{id}x", "{id}.xml", "x{id}", "y{id}"]:
    paths["/files/%s/raw" % t] = op
paths["/files/{name}/meta"] = op
i = 0
while len(paths) < n:
    r = i // 10
    paths[["/api/v1/res%d" % r, "/api/v1/res%d/{id}" % r, "/api/v1/res%d/{id}/items" % r,
           "/api/v1/res%d/{id}/items/{item}" % r, "/api/v1/res%d/search" % r,
           "/api/v2/res%d" % r, "/api/v2/res%d/{id}.json" % r, "/api/v2/res%d/v{n}" % r,
           "/internal/res%d/{a}-{b}" % r, "/res%d/{id}" % r][i % 10]] = op
    i += 1
json.dump({"openapi": "3.0.3", "info": {"title": "bench", "version": "1"}, "paths": paths}, open(big, "w"))
json.dump({"openapi": "3.0.3", "info": {"title": "bench", "version": "1"},
           "paths": {"/files/f{id}q/raw": op}}, open(one, "w"))
PY
best() {
    b=""
    for _ in $(seq "$R"); do
        s=$(date +%s%N)
        "$bin" -r "$dir/paths.pcap" --alerts /dev/null -q "$@"
        t=$(( ($(date +%s%N) - s) / 1000000 ))
        if [ -z "$b" ] || [ "$t" -lt "$b" ]; then b=$t; fi
    done
    echo "$b"
}
none=$(best)
one=$(best --openapi "$dir/one.json")
big=$(best --openapi "$dir/big.json")
echo "exchanges $N, spec paths $P ($(wc -c < "$dir/big.json") bytes), best of $R:"
echo "  no spec       ${none} ms"
echo "  1-path spec   ${one} ms"
echo "  ${P}-path spec ${big} ms ($(( (big - none) * 100 / none ))% over no spec, $(( (big - one) * 100 / one ))% over one path)"
