# shellcheck shell=bash
# The capture kit's shared shell library, sourced by scripts/make-capture.sh (and by
# scripts/bench-live.sh for its namespaces and nginx). Everything a capture maker
# needs besides its own server and traffic mix:
#
#   checks      kit_need TOOL..., kit_need_file PATH HINT, kit_need_root
#   work dir    kit_work PREFIX            -> $KIT_WORK (removed on exit)
#   cleanup     kit_on_exit 'CMD'          (run in reverse order on EXIT, also on failure)
#               kit_bg CMD...              (a background process, killed on exit)
#               kit_run CMD...             (a long foreground step that a signal interrupts)
#   namespaces  kit_pair_up CLI_NS SRV_NS CLI_IP SRV_IP   (two namespaces, one veth pair)
#               kit_bridge_up SRV_NS BRIDGE SRV_IP        (server namespace with a bridge)
#               kit_bridge_client NAME ADDR...            (client namespace, veth into it)
#               every namespace made here is deleted on exit
#   servers     kit_nginx NS <<CONF        (nginx with the kit's frame, CONF is the http{} body)
#               kit_wait_tcp NS IP PORT [TRIES], kit_wait_http NS URL [TRIES] [INTERVAL]
#   capture     kit_capture_start NS DEV FILE FILTER [SNAPLEN], kit_capture_stop
#               kit_gzip FILE
#
# Network rule: every address lives in a namespace made here (veth pairs, one bridge);
# nothing is routed out of them. MTU 1500 and segmentation offloads off on every
# device, so a capture holds wire-sized segments with real checksums.

KIT_NS=()        # namespaces to delete on exit
KIT_PIDS=()      # background processes to kill on exit
KIT_EXIT=()      # commands to run on exit (reverse order)
KIT_TCPDUMP=""
KIT_WORK=""

kit_die() { echo "make-capture: $*" >&2; exit 1; }
kit_need_root() { [ "$(id -u)" = 0 ] || kit_die "needs root (network namespaces, tcpdump)"; }
kit_need() {
    local t
    for t in "$@"; do command -v "$t" >/dev/null || kit_die "missing $t"; done
}
kit_need_file() { [ -e "$1" ] || kit_die "missing $1${2:+ ($2)}"; }

kit_on_exit() { KIT_EXIT+=("$1"); }
kit_bg() {
    "$@" &
    KIT_PIDS+=($!)
}

# kit_run CMD...: runs CMD in the background and waits for it, so that SIGTERM or SIGINT
# sent to this script runs the cleanup at once (bash defers a trap until a foreground
# command ends); the cleanup ends CMD too.
KIT_FG=""
kit_run() {
    local rc=0
    "$@" &
    KIT_FG=$!
    wait "$KIT_FG" || rc=$?
    KIT_FG=""
    return "$rc"
}

kit_cleanup() {
    local rc=$? i p ns
    set +e
    trap - EXIT INT TERM
    [ -n "$KIT_FG" ] && kill "$KIT_FG" 2>/dev/null
    if [ -n "$KIT_TCPDUMP" ]; then kill -INT "$KIT_TCPDUMP" 2>/dev/null; wait "$KIT_TCPDUMP" 2>/dev/null; fi
    for ((i = ${#KIT_EXIT[@]} - 1; i >= 0; i--)); do eval "${KIT_EXIT[i]}"; done
    for p in "${KIT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "$KIT_WORK" ] && [ -f "$KIT_WORK/nginx/nginx.pid" ]; then
        kill "$(cat "$KIT_WORK/nginx/nginx.pid")" 2>/dev/null
    fi
    [ "${#KIT_PIDS[@]}" -gt 0 ] && sleep 1
    for ns in "${KIT_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [ -n "$KIT_WORK" ]; then
        if [ -n "${KIT_KEEP_WORK:-}" ]; then echo "kept $KIT_WORK" >&2; else rm -rf "$KIT_WORK"; fi
    fi
    exit "$rc"
}
trap kit_cleanup EXIT
trap 'exit 130' INT TERM

# kit_work PREFIX: a fresh work directory, readable by servers that drop privileges.
kit_work() {
    KIT_WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$KIT_WORK"
}

kit_offloads_off() { # NS DEV
    ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
}

kit_ns_add() { # NS: a new namespace with lo up, deleted on exit (a stale one is replaced)
    ip netns del "$1" 2>/dev/null || true
    ip netns add "$1"
    KIT_NS+=("$1")
    ip -n "$1" link set lo up
}

# kit_pair_up CLI_NS SRV_NS CLI_IP SRV_IP: two namespaces joined by one veth pair
# (devices CLI_NS-v in the client, SRV_NS-v in the server namespace), /24 addresses.
kit_pair_up() {
    local cns=$1 sns=$2
    kit_ns_add "$cns"
    kit_ns_add "$sns"
    ip link add "$cns-v" type veth peer name "$sns-v"
    ip link set "$cns-v" netns "$cns"
    ip link set "$sns-v" netns "$sns"
    ip -n "$cns" addr add "$3/24" dev "$cns-v"
    ip -n "$sns" addr add "$4/24" dev "$sns-v"
    ip -n "$cns" link set "$cns-v" mtu 1500 up
    ip -n "$sns" link set "$sns-v" mtu 1500 up
    kit_offloads_off "$cns" "$cns-v"
    kit_offloads_off "$sns" "$sns-v"
}

# kit_bridge_up SRV_NS BRIDGE SRV_IP: the server namespace holds a bridge with the
# server address; clients join it with kit_bridge_client. Sets KIT_SRV_NS, KIT_BRIDGE.
kit_bridge_up() {
    KIT_SRV_NS=$1
    KIT_BRIDGE=$2
    kit_ns_add "$1"
    ip -n "$1" link add "$2" type bridge
    ip -n "$1" link set "$2" mtu 1500
    ip -n "$1" addr add "$3/24" dev "$2"
    ip -n "$1" link set "$2" up
    kit_offloads_off "$1" "$2"
}

# kit_bridge_client NAME ADDR...: a client namespace whose veth NAME-a (addresses ADDR...,
# the first one primary) is bridged, as NAME-b, into the server namespace's bridge.
kit_bridge_client() {
    local name=$1 addr
    shift
    kit_ns_add "$name"
    ip link add "$name-a" type veth peer name "$name-b"
    ip link set "$name-a" netns "$name"
    ip link set "$name-b" netns "$KIT_SRV_NS"
    ip -n "$KIT_SRV_NS" link set "$name-b" mtu 1500 master "$KIT_BRIDGE" up
    ip -n "$name" link set "$name-a" mtu 1500 up
    for addr in "$@"; do ip -n "$name" addr add "$addr/24" dev "$name-a"; done
    kit_offloads_off "$name" "$name-a"
    kit_offloads_off "$KIT_SRV_NS" "$name-b"
}

# kit_nginx NS < BODY: nginx (one worker, as root, daemon) in namespace NS; BODY is the
# inside of its http{} block. Files under $KIT_WORK/nginx (access logs may go there
# too); stopped on exit.
kit_nginx() {
    local ns=$1 d=$KIT_WORK/nginx
    mkdir -p "$d/tmp"
    {
        cat <<CONF
user root;
daemon on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 1024; }
http {
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
CONF
        cat
        echo "}"
    } >"$d/nginx.conf"
    ip netns exec "$ns" nginx -c "$d/nginx.conf"
}
kit_nginx_version() { nginx -v 2>&1 | sed 's|.*nginx/||'; }

# kit_wait_tcp NS IP PORT [TRIES]: until IP:PORT accepts a connection from NS (0.1 s a try).
kit_wait_tcp() {
    local _
    for _ in $(seq "${4:-100}"); do
        ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "make-capture: nothing listens on $2:$3" >&2
    return 1
}

# kit_wait_http NS URL [TRIES] [INTERVAL]: until URL answers 2xx to curl from NS.
kit_wait_http() {
    local _
    for _ in $(seq "${3:-150}"); do
        ip netns exec "$1" curl -sf -o /dev/null -m 2 "$2" && return 0
        sleep "${4:-0.2}"
    done
    echo "make-capture: $2 did not answer" >&2
    return 1
}

# kit_capture_start NS DEV FILE FILTER [SNAPLEN]: tcpdump on DEV in NS, packet-buffered,
# with a 256 MiB kernel buffer so that a fast load loses nothing; returns once tcpdump
# says it is listening (at most 20 s) and KIT_SETTLE seconds (default 1) more have passed.
kit_capture_start() {
    local _
    rm -f "$3"
    ip netns exec "$1" tcpdump -i "$2" --immediate-mode -B 262144 -s "${5:-0}" -U -w "$3" "$4" \
        2>"$KIT_WORK/tcpdump.log" &
    KIT_TCPDUMP=$!
    for _ in $(seq 200); do
        grep -q 'listening on' "$KIT_WORK/tcpdump.log" 2>/dev/null && break
        kill -0 "$KIT_TCPDUMP" 2>/dev/null || { cat "$KIT_WORK/tcpdump.log" >&2; kit_die "tcpdump did not start"; }
        sleep 0.1
    done
    sleep "${KIT_SETTLE:-1}"
}

# kit_capture_stop: lets the last segments arrive (KIT_SETTLE), stops tcpdump with
# SIGINT (it flushes and closes the file) and prints its counts, drops included.
kit_capture_stop() {
    sleep "${KIT_SETTLE:-1}"
    kill -INT "$KIT_TCPDUMP"
    wait "$KIT_TCPDUMP" || true
    KIT_TCPDUMP=""
    grep -h -E 'captured|dropped' "$KIT_WORK/tcpdump.log" >&2 || true
}

# kit_gzip FILE: FILE.gz (gzip -9), owned like the directory it is in.
kit_gzip() {
    gzip -9 -f "$1"
    chown --reference="$(dirname "$1")" "$1.gz" 2>/dev/null || true
}

# kit_keep_logs FILE...: copies FILEs into $KIT_KEEP_LOGS (--keep-logs DIR), if set.
kit_keep_logs() {
    [ -n "${KIT_KEEP_LOGS:-}" ] || return 0
    mkdir -p "$KIT_KEEP_LOGS"
    cp -f "$@" "$KIT_KEEP_LOGS/" 2>/dev/null || true
    echo "logs kept in $KIT_KEEP_LOGS" >&2
}

# kit_scaled SECONDS: SECONDS x --scale, as an integer number of seconds (at least 1).
kit_scaled() { awk -v d="$1" -v s="${SCALE:-1}" 'BEGIN { v = int(d * s + 0.5); print (v < 1 ? 1 : v) }'; }
# kit_driver_timeout: the bound on a traffic driver: twice its scaled timeline + 300 s.
kit_driver_timeout() { echo $(($(kit_scaled "${DURATION:-600}") * 2 + 300)); }
