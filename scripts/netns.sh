# Sourced by the capture scripts: a client and a server network namespace joined by
# a veth pair (10.77.0.1 <-> 10.77.0.2, MTU 1500, segmentation offloads off so the
# capture holds wire-sized segments with real checksums). Needs root, iproute2 and
# ethtool. Nothing leaves the two namespaces.

AW_CLI=${AW_CLI:-aw-cli}
AW_SRV=${AW_SRV:-aw-srv}
AW_CLI_IP=10.77.0.1
AW_SRV_IP=10.77.0.2

netns_up() {
    netns_down
    ip netns add "$AW_CLI"
    ip netns add "$AW_SRV"
    ip link add aw-c type veth peer name aw-s
    ip link set aw-c netns "$AW_CLI"
    ip link set aw-s netns "$AW_SRV"
    ip -n "$AW_CLI" addr add "$AW_CLI_IP/24" dev aw-c
    ip -n "$AW_SRV" addr add "$AW_SRV_IP/24" dev aw-s
    for ns_dev in "$AW_CLI aw-c" "$AW_SRV aw-s"; do
        set -- $ns_dev
        ip -n "$1" link set "$2" mtu 1500 up
        ip -n "$1" link set lo up
        ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    done
}

netns_down() {
    ip netns del "$AW_CLI" 2>/dev/null || true
    ip netns del "$AW_SRV" 2>/dev/null || true
}

# capture_start FILE [SNAPLEN]: tcpdump on the client side of the veth, with a
# 256 MiB kernel buffer so that a fast load loses no packets to the capture.
capture_start() {
    AW_TCPDUMP_LOG=$(mktemp)
    ip netns exec "$AW_CLI" tcpdump -i aw-c --immediate-mode -B 262144 -s "${2:-0}" -U \
        -w "$1" 'tcp' 2>"$AW_TCPDUMP_LOG" &
    AW_TCPDUMP=$!
    sleep 1
}

# capture_stop: ends tcpdump and says how many packets the kernel dropped (a capture
# with drops has gaps that a peer such as Suricata parses differently).
capture_stop() {
    sleep 0.5
    kill -INT "$AW_TCPDUMP"
    wait "$AW_TCPDUMP" || true
    grep -h 'dropped by kernel' "$AW_TCPDUMP_LOG" >&2 || true
    rm -f "$AW_TCPDUMP_LOG"
}

# wait_port PORT: until the server namespace accepts connections (bounded: 10 s).
wait_port() {
    for _ in $(seq 100); do
        ip netns exec "$AW_CLI" bash -c "exec 3<>/dev/tcp/$AW_SRV_IP/$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# Bridged layout for many clients: the server namespace holds bridge aw-br
# (10.77.0.2/24, the server address); netns_client NAME IP... adds a client
# namespace with its own veth into the bridge and the given addresses.
netns_bridge_up() {
    netns_bridge_down
    ip netns add "$AW_SRV"
    ip -n "$AW_SRV" link set lo up
    ip -n "$AW_SRV" link add aw-br type bridge
    ip -n "$AW_SRV" addr add "$AW_SRV_IP/24" dev aw-br
    ip -n "$AW_SRV" link set aw-br up
    AW_CLIENT_NS=""
}

netns_client() {
    local name=$1
    shift
    ip netns add "$name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$AW_SRV"
    ip -n "$AW_SRV" link set "$name-b" master aw-br up
    ip -n "$name" link set lo up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for addr in "$@"; do
        ip -n "$name" addr add "$addr/24" dev "$name-a"
    done
    ip netns exec "$name" ethtool -K "$name-a" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    ip netns exec "$AW_SRV" ethtool -K "$name-b" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    AW_CLIENT_NS="$AW_CLIENT_NS $name"
}

netns_bridge_down() {
    for ns in ${AW_CLIENT_NS:-}; do ip netns del "$ns" 2>/dev/null || true; done
    ip netns del "$AW_SRV" 2>/dev/null || true
}

# bench_nginx_up DIR: nginx in the server namespace on port 8080 with the benchmark's
# JSON endpoints and 8/32/128 KiB static files (scripts/bench-traffic.lua uses them);
# its files and pid live in DIR. KEEPALIVE_REQUESTS (default 1000): requests per
# connection before nginx closes it.
bench_nginx_up() {
    local work=$1
    mkdir -p "$work/www/static"
    for size in 8 32 128; do
        head -c "$((size * 1024))" /dev/urandom >"$work/www/static/${size}k.bin"
    done
    cat >"$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_requests ${KEEPALIVE_REQUESTS:-1000};
    server {
        listen $AW_SRV_IP:8080;
        root $work/www;
        location /api/users/ { default_type application/json; return 200 '{"id":1,"name":"user","roles":["reader"],"created":"2026-01-01T00:00:00Z"}'; }
        location = /api/login { default_type application/json; return 401 '{"error":"invalid credentials"}'; }
        location /api/orders { default_type application/json; return 200 '[{"order":1,"total":7},{"order":2,"total":14},{"order":3,"total":21},{"order":4,"total":28}]'; }
    }
}
CONF
    ip netns exec "$AW_SRV" nginx -c "$work/nginx.conf"
}

# bench_env_up: the namespaces and the benchmark's nginx, in a fresh directory $work,
# torn down (nginx, namespaces, directory) when the script exits.
bench_env_up() {
    work=$(mktemp -d)
    chmod 755 "$work"
    trap bench_env_down EXIT
    netns_up
    bench_nginx_up "$work"
    wait_port 8080
}

bench_env_down() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    netns_down
    rm -rf "$work"
}
