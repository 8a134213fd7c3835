# shellcheck shell=bash disable=SC2034,SC2154  # sourced by make-capture.sh: it reads APP_*, sets root, kit, OUT, LABELS, DURATION, SCALE
# graphql: the labelled capture captures/graphql.pcap.gz (labels: the hand-written
# captures/graphql.labels.json; see captures/graphql.md): a GraphQL API
# (scripts/capture-kit/graphql_server.py: ariadne from PyPI, served by uvicorn on
# 10.77.0.2:8080, POST /graphql, HTTP/1.1 cleartext, batching added by the server)
# behind a bridge; benign users and GraphQL-shaped attackers from
# apps/graphql_traffic.py (python requests, each client bound to its own address),
# captured on the bridge. Fixed timeline (seconds from the driver's start; replay
# with --learning-period 2m):
#   0-330  15 users (.10-.24) log in once (3 mistype first) and run named/unnamed
#          operations and small batches every 5-20 s; .25 an Apollo-style frontend
#          with persisted queries; .104 and .105 users like them until their attack
#   150    .101 alias brute force: 4 POSTs x 50 aliased login(admin, ...)
#   180    .102 batch brute force: 4 JSON arrays x 40 login operations
#   210    .103 alias credential stuffing: 3 POSTs x 50 usernames, one password
#   240    .105 introspection (full IntrospectionQuery, then __type(name:"User"))
#   260    .104 object enumeration: query User($id) for ids 1..150 at ~10/s
# Install: python3 -m venv /work/venvs/graphql &&
#   /work/venvs/graphql/bin/pip install ariadne uvicorn requests   (another place: GRAPHQL_VENV=DIR)
# Layout: gq-srv (bridge gq-br 10.77.0.2, uvicorn, tcpdump); gq-cli (every client).
APP_DESC="ariadne GraphQL server (PyPI) with GraphQL-shaped attackers, labelled (330 s, fixed timeline)"
APP_NEEDS="python3 gzip"
APP_FILES="${GRAPHQL_VENV:-/work/venvs/graphql}/bin/python"

app_defaults() { OUT=${OUT:-$root/captures/graphql.pcap}; }

app_run() {
    local venv=${GRAPHQL_VENV:-/work/venvs/graphql} ip=10.77.0.2 port=8080 duration=330 w i
    kit_work gq-capture
    w=$KIT_WORK
    kit_bridge_up gq-srv gq-br "$ip"
    local cli_addrs=()
    for i in $(seq 10 25) 101 102 103 104 105; do cli_addrs+=("10.77.0.$i"); done
    kit_bridge_client gq-cli "${cli_addrs[@]}"

    kit_bg ip netns exec gq-srv "$venv/bin/python" "$kit/graphql_server.py" "$ip" "$port" "$w/access.log" \
        >"$w/server.log" 2>&1
    kit_wait_tcp gq-cli "$ip" "$port" 150 || { cat "$w/server.log" >&2; exit 1; }
    : >"$w/access.log"

    KIT_SETTLE=2 kit_capture_start gq-srv gq-br "$OUT" "tcp port $port"
    "$venv/bin/python" -c 'import importlib.metadata as m; print(" ".join("%s %s" % (p, m.version(p)) for p in ("ariadne", "graphql-core", "uvicorn", "starlette", "requests")))' \
        >"$w/versions.txt"
    kit_run ip netns exec gq-cli timeout $((duration * 2 + 120)) "$venv/bin/python" \
        "$kit/apps/graphql_traffic.py" "http://$ip:$port/graphql" "$w" --duration "$duration"
    KIT_SETTLE=2 kit_capture_stop
    cat "$w/versions.txt" "$w/events.json" >&2
    kit_keep_logs "$w/requests.tsv" "$w/events.json" "$w/access.log" "$w/server.log" "$w/versions.txt"
    kit_gzip "$OUT"
    ls -l "$OUT.gz"
}
