# shellcheck shell=bash
# Test topology for svclb: one "node" network namespace plus one namespace per
# pod, wired like a CNI would (Calico/Cilium style): the pod's eth0 is a /32
# with a link-scoped gateway 169.254.1.1; the node side `lxc<pod>` answers ARP
# for it through proxy_arp and routes the pod's /32 back to it.
#
# Everything lives inside namespaces this file creates: nothing is added to
# the root namespace's interfaces. Every run picks its own prefix so tests can
# run concurrently with each other and with the demo.
#
# Usage (from a test or the demo):
#   source tests/testlib/topo.sh
#   topo_init e2e-tcp-$$         # names, tmp dir; installs the EXIT trap
#   topo_up                      # node + be1 + be2 + client, servers running
#   daemon_start && daemon_wait_ready
#   svcctl apply -f examples/web-service.yaml
#   in_pod client curl ...; in_node_cg curl ...
#
# We enter namespaces with `nsenter --net=` and never with `ip netns exec`:
# the latter remounts /sys in a private mount namespace, which hides
# /sys/fs/bpf (so pins would land in a throw-away bpffs) and the cgroup2 mount.

TOPO_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SVCLB_REPO=${SVCLB_REPO:-$(cd "$TOPO_LIB_DIR/../.." && pwd)}
SVCLB_BIN=${SVCLB_BIN:-$SVCLB_REPO/build/bin}
SVCLB_EXAMPLES=${SVCLB_EXAMPLES:-$SVCLB_REPO/examples}
# The labs' XDP_PASS program (tests/e2e/bpf/xdp_pass.bpf.c), built by CMake.
SVCLB_TEST_XDP_PASS=${SVCLB_TEST_XDP_PASS:-$SVCLB_BIN/../tests/e2e/test_xdp_pass.bpf.o}
PY=${PY:-$(command -v /usr/bin/python3 || command -v python3)}

VIP=10.96.0.10
SERVICE_CIDR=10.96.0.0/12
NODE_IP=10.244.0.1
declare -A POD_IP=([be1]=10.244.1.11 [be2]=10.244.1.12 [client]=10.244.1.20)
HTTP_PORT=8080
UDP_PORT=5353
METRICS_PORT=${METRICS_PORT:-9962}   # per node netns, so no clash between runs
# svclbd --socket-lb for the tests: all (default: pods' sockets balanced at
# connect/sendmsg) or node (every pod flow takes the tc path); ctest runs the
# e2e suite both ways (tests/e2e/CMakeLists.txt).
SVCLB_SOCKET_LB=${SVCLB_SOCKET_LB:-all}
# svclbd --tc-attach for the tests (unset: svclbd's default, auto); ctest
# runs some tests again with legacy (tests/e2e/CMakeLists.txt).
SVCLB_TC_ATTACH=${SVCLB_TC_ATTACH:-}
# The mode svclbd attaches its tc programs in, as status shows it: legacy if
# asked, else tcx where the kernel has it (Linux 6.6 and later).
tc_attach_expected() {
    [[ $SVCLB_TC_ATTACH == legacy ]] && { echo legacy; return; }
    local v; v=$(uname -r); v=${v%%-*}
    if (( ${v%%.*} > 6 || (${v%%.*} == 6 && $(cut -d. -f2 <<<"$v") >= 6) )); then echo tcx; else echo legacy; fi
}

TOPO_PIDS=()      # every background process we started (killed on cleanup)
DAEMON_PID=""
DAEMON_RC=""
TOPO_KEEP=0       # set to 1 to skip cleanup on exit (demo --keep)

log()  { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { log "FATAL: $*"; exit 1; }

# topo_init PREFIX [TMPDIR]: compute names, create the tmp dir, install the trap.
topo_init() {
    TOPO_PREFIX=$1
    [[ $TOPO_PREFIX =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad prefix '$TOPO_PREFIX'"
    NODE_NS=$TOPO_PREFIX-node
    TOPO_TMP=${2:-$(mktemp -d "/tmp/svclb-$TOPO_PREFIX.XXXXXX")}
    mkdir -p "$TOPO_TMP"
    BPFFS=/sys/fs/bpf/svclb-$TOPO_PREFIX
    STATE_DIR=$TOPO_TMP/state
    SOCK=$TOPO_TMP/svclbd.sock
    DAEMON_LOG=$TOPO_TMP/svclbd.log
    CG2_ROOT=$(cgroup2_root) || die "no cgroup2 mount in /proc/mounts"
    CG=$CG2_ROOT/svclb-$TOPO_PREFIX
    METRICS_URL=http://127.0.0.1:$METRICS_PORT/metrics
    trap topo_on_exit EXIT
    trap 'exit 130' INT TERM
}

cgroup2_root() {
    awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts | grep .
}

# All of these exec the command (no shell left in between), so a PID taken
# with $! is the command's own and `timeout` can wrap them.
pod_ns()  { echo "$TOPO_PREFIX-$1"; }
in_ns()   { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
in_node() { in_ns "$NODE_NS" "$@"; }
# A pod's processes run in the test cgroup, as a cluster's pods sit under
# the node's cgroup root, where svclbd's socket hooks are attached: with
# --socket-lb=all (SVCLB_SOCKET_LB, the default) their connect()/sendmsg()
# are balanced at the socket, with node or none by the tc program on their veth.
IN_CG_SH='[ -d "$1" ] && { echo $$ > "$1/cgroup.procs" || exit 125; }; shift; exec nsenter --net="/run/netns/$0" "$@"'
in_pod()  { local p=$1; shift; sh -c "$IN_CG_SH" "$(pod_ns "$p")" "${CG:-/nonexistent}" "$@"; }
# ..._t SECONDS ...: the same, bounded in time.
in_node_t() { local t=$1; shift; timeout "$t" nsenter --net="/run/netns/$NODE_NS" "$@"; }
in_pod_t()  { local t=$1 p=$2; shift 2; timeout "$t" sh -c "$IN_CG_SH" "$(pod_ns "$p")" "${CG:-/nonexistent}" "$@"; }
# in_node_cg CMD...: run CMD in the node netns inside the test cgroup, where
# svclbd's socket-level (connect/sendmsg) programs are attached.
in_node_cg() { in_node_cg_t 60 "$@"; }
in_node_cg_t() {
    local t=$1; shift
    timeout "$t" sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
        "$NODE_NS" "$CG" "$@"
}

# bg_ns NS CMD...: start CMD in namespace NS in the background (stdout/stderr
# as redirected by the caller), remember its PID in BG_PID and TOPO_PIDS.
bg_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@" & BG_PID=$!; TOPO_PIDS+=("$BG_PID"); }

# retry N SLEEP CMD...: run CMD up to N times until it succeeds.
retry() {
    local n=$1 s=$2 i; shift 2
    for ((i = 0; i < n; i++)); do "$@" && return 0; sleep "$s"; done
    return 1
}

topo_create_node() {
    ip netns add "$NODE_NS"
    in_node ip link set lo up
    in_node ip addr add "$NODE_IP/32" dev lo
    in_node sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0
    # The pods' gateway is 169.254.1.1; proxy_arp only answers for targets
    # the node can route out of another device, so give it a route via lo
    # (like Calico's default route, without one leaving the node namespace).
    in_node ip route add 169.254.1.1/32 dev lo
}

# topo_add_pod NAME IP [IFPREFIX] (any number of pods; topo_cleanup removes
# them all). The node's end of the pod's veth is IFPREFIX (default lxc, the
# daemon's --pod-iface-prefix) + NAME: another prefix makes a pod svclbd
# leaves alone (no tc program), as a host outside its reach.
TOPO_PODS=()
topo_add_pod() {
    local pod=$1 ip=$2 ns lxc
    ns=$(pod_ns "$pod"); lxc=${3:-lxc}$pod
    ((${#lxc} <= 15)) || die "interface name $lxc too long"
    TOPO_PODS+=("$ns")
    ip netns add "$ns"
    in_node ip link add "$lxc" type veth peer name eth0 netns "$ns"
    in_node sysctl -qw "net.ipv4.conf.$lxc.proxy_arp=1" "net.ipv4.conf.$lxc.rp_filter=0"
    in_node ip link set "$lxc" up
    in_node ip route add "$ip/32" dev "$lxc"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip addr add "$ip/32" dev eth0
    in_ns "$ns" ip link set eth0 up
    in_ns "$ns" ip route add 169.254.1.1 dev eth0 scope link
    in_ns "$ns" ip route add default via 169.254.1.1 dev eth0
}

# ---- IPv6 (dual-stack labs) -------------------------------------------------
# topo_add_pod6 POD IP6: gives an existing pod an IPv6 /128 as well, wired
# the same way: the pod's default route goes to the link-local gateway
# fe80::1, which the node's lxc<pod> holds; the node routes the /128 back.
# No duplicate address detection (nodad): the addresses are usable at once.
declare -A POD_IP6=()
topo_add_pod6() {
    local pod=$1 ip6=$2 ns lxc
    ns=$(pod_ns "$pod"); lxc=lxc$pod
    POD_IP6[$pod]=$ip6
    in_node sysctl -qw net.ipv6.conf.all.forwarding=1
    in_node ip -6 addr add fe80::1/64 dev "$lxc" nodad 2>/dev/null || true
    in_node ip -6 route add "$ip6/128" dev "$lxc"
    in_ns "$ns" ip -6 addr add "$ip6/128" dev eth0 nodad
    in_ns "$ns" ip -6 route add default via fe80::1 dev eth0
}

# start_backend6 POD: the HTTP and UDP identity servers on the pod's IPv6
# address too (same ports, same answers as start_backend).
start_backend6() { _start_servers "$1" "${POD_IP6[$1]}" 6; }

# UDP identity server: answers every datagram with "<pod name>\n".
UDP_SERVER_PY='
import socket, sys
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(name.encode() + b"\n", addr)
'

# start_backend POD: HTTP (HTTP/1.1 keep-alive so long-lived connections are
# possible) on 8080 serving the pod name, UDP identity server on 5353.
start_backend() { _start_servers "$1" "${POD_IP[$1]}" ""; }
# _start_servers POD IP TAG: both servers bound to IP (logs http$TAG-POD.log).
_start_servers() {
    local pod=$1 ip=$2 tag=$3 dir=$TOPO_TMP/www-$1
    mkdir -p "$dir"; echo "$pod" > "$dir/index.html"
    bg_ns "$(pod_ns "$pod")" "$PY" -m http.server "$HTTP_PORT" --bind "$ip" \
        --directory "$dir" --protocol HTTP/1.1 >"$TOPO_TMP/http$tag-$pod.log" 2>&1
    bg_ns "$(pod_ns "$pod")" "$PY" -c "$UDP_SERVER_PY" "$pod" "$ip" "$UDP_PORT" \
        >"$TOPO_TMP/udp$tag-$pod.log" 2>&1
}

# UDP client: COUNT datagrams of SIZE payload bytes from one unconnected
# socket; prints each reply as "<reply text> from <ip>:<port>" (so the reply's
# source is visible) or TIMEOUT; exits 1 if any reply is missing.
UDP_CLIENT_PY='
import os, socket, sys
dst, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
if os.environ.get("UDP_SPORT"):
    s.bind(("::" if ":" in dst else "0.0.0.0", int(os.environ["UDP_SPORT"])))
s.settimeout(2)
bad = 0
for i in range(count):
    s.sendto(b"x" * size, (dst, port))
    try:
        data, src = s.recvfrom(65535)
        print("%s from %s:%d" % (data.decode().strip(), src[0], src[1]))
    except socket.timeout:
        print("TIMEOUT"); bad += 1
sys.exit(1 if bad else 0)
'
# UDP_SPORT=N (environment): send from that source port, not an ephemeral
# one: a test counting exactly one new flow needs a tuple no earlier socket
# of the test used (an ephemeral port can come round again: a CT hit).
udp_query_pod() {  # POD DST PORT [COUNT] [SIZE]
    in_pod_t 30 "$1" env ${UDP_SPORT:+UDP_SPORT=$UDP_SPORT} "$PY" -c "$UDP_CLIENT_PY" "$2" "$3" "${4:-1}" "${5:-8}"
}
udp_query_node() {  # DST PORT [COUNT] [SIZE] (in the test cgroup)
    in_node_cg_t 30 "$PY" -c "$UDP_CLIENT_PY" "$1" "$2" "${3:-1}" "${4:-8}"
}

# http_get_many WHERE N URL: WHERE is a pod name or "node" (node netns, test
# cgroup). Prints one line per request: the body or FAIL. After 5 failures in
# a row the rest are reported as FAIL without trying (keeps a broken run short).
http_get_many() {
    local where=$1 n=$2 url=$3
    local loop='bad=0; for i in $(seq "$1"); do
        if [ $bad -ge 5 ]; then echo FAIL; continue; fi
        out=$(curl -s --connect-timeout 2 -m 3 "$2") || out=FAIL
        [ "$out" = FAIL ] && bad=$((bad + 1)) || bad=0
        echo "${out:-EMPTY}"; done'
    if [[ $where == node ]]; then
        in_node_cg_t $((n * 3 + 10)) sh -c "$loop" sh "$n" "$url"
    else
        in_pod_t $((n * 3 + 10)) "$where" sh -c "$loop" sh "$n" "$url"
    fi
}

# Long-lived HTTP/1.1 connections through the service: opens connections to
# DST until it holds one per wanted backend, then sends a request on each
# every 0.2 s until STOPFILE exists or the time limit; one line per event:
#   <t> <backend-wanted> ok <answer> | <t> <backend-wanted> err <reason>
LONGCONN_PY='
import http.client, os, sys, time
dst, port, stopfile, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
wanted = sys.argv[5].split(",")
conns = {}
start = time.time()
for i in range(200):
    if len(conns) == len(wanted) or time.time() - start > 20: break
    c = http.client.HTTPConnection(dst, port, timeout=3)
    try:
        c.request("GET", "/"); who = c.getresponse().read().decode().strip()
    except Exception as e:
        print("%.2f - connect-err %s" % (time.time() - start, e), flush=True); time.sleep(0.1); continue
    if who in wanted and who not in conns: conns[who] = c
    else: c.close()
for w in wanted:
    print("%.2f %s %s" % (time.time() - start, w, "open" if w in conns else "noconn"), flush=True)
dead = set()
while not os.path.exists(stopfile) and time.time() - start < limit:
    for w, c in conns.items():
        if w in dead: continue
        try:
            c.request("GET", "/"); who = c.getresponse().read().decode().strip()
            print("%.2f %s ok %s" % (time.time() - start, w, who), flush=True)
        except Exception as e:
            print("%.2f %s err %s" % (time.time() - start, w, type(e).__name__), flush=True); dead.add(w)
    time.sleep(0.2)
print("%.2f - done" % (time.time() - start), flush=True)
'
# longconn_start POD LOGFILE BACKENDS(comma list) [LIMIT_S]: sets LONGCONN_PID
# and LONGCONN_STOP; waits until the connections are open (or failed).
longconn_start() {
    local pod=$1 logf=$2 want=$3 limit=${4:-120}
    LONGCONN_STOP=$TOPO_TMP/longconn-stop.$RANDOM
    LONGCONN_PID=""
    in_pod_t $((limit + 30)) "$pod" "$PY" -u -c "$LONGCONN_PY" "$VIP" 80 \
        "$LONGCONN_STOP" "$limit" "$want" >"$logf" 2>&1 &
    LONGCONN_PID=$!; TOPO_PIDS+=("$LONGCONN_PID")
    local n; n=$(tr ',' '\n' <<<"$want" | wc -l)
    retry 100 0.25 eval "[[ \$(grep -cE ' (open|noconn)\$' '$logf') -ge $n ]]"
}
longconn_stop() {
    touch "$LONGCONN_STOP"
    local i; for ((i = 0; i < 50; i++)); do kill -0 "$LONGCONN_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$LONGCONN_PID" 2>/dev/null || true
}

topo_wait_servers() {
    local pod
    for pod in be1 be2; do
        retry 50 0.2 eval "[[ \$(in_pod_t 3 client curl -s -m 1 http://${POD_IP[$pod]}:$HTTP_PORT/) == $pod ]]" \
            || die "HTTP server in $pod did not come up (see $TOPO_TMP/http-$pod.log)"
        retry 20 0.2 eval "udp_query_pod client ${POD_IP[$pod]} $UDP_PORT >/dev/null" \
            || die "UDP server in $pod did not come up"
    done
}

# topo_up: node, pods be1 be2 client, servers, cgroup.
topo_up() {
    log "creating topology $TOPO_PREFIX (tmp $TOPO_TMP)"
    ip netns list | grep -q "^$NODE_NS\b" && die "namespace $NODE_NS already exists"
    topo_create_node
    local p; for p in be1 be2 client; do topo_add_pod "$p" "${POD_IP[$p]}"; done
    mkdir -p "$CG"
    start_backend be1; start_backend be2
    topo_wait_servers
    log "topology ready: node $NODE_NS, pods be1=${POD_IP[be1]} be2=${POD_IP[be2]} client=${POD_IP[client]}"
}

# ---- daemon -----------------------------------------------------------------

daemon_flags() {
    echo --bpffs "$BPFFS" --pod-iface-prefix lxc --state-dir "$STATE_DIR" \
        --socket "$SOCK" --metrics-addr "127.0.0.1:$METRICS_PORT" \
        --service-cidr "$SERVICE_CIDR" --cgroup "$CG" --socket-lb "$SVCLB_SOCKET_LB" \
        ${SVCLB_TC_ATTACH:+--tc-attach "$SVCLB_TC_ATTACH"} "${DAEMON_FLAGS_EXTRA[@]}"
}
DAEMON_FLAGS_EXTRA=()   # more svclbd flags for a test

daemon_start() {
    [[ -x $SVCLB_BIN/svclbd ]] || die "no $SVCLB_BIN/svclbd (build first)"
    mkdir -p "$STATE_DIR"
    # shellcheck disable=SC2046
    nsenter --net="/run/netns/$NODE_NS" "$SVCLB_BIN/svclbd" $(daemon_flags) "$@" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    TOPO_PIDS+=("$DAEMON_PID")
    log "svclbd started (pid $DAEMON_PID, log $DAEMON_LOG)"
}

daemon_wait_ready() {
    local i
    for ((i = 0; i < 100; i++)); do
        svcctl status >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || { log "svclbd exited early:"; tail -20 "$DAEMON_LOG" >&2; return 1; }
        sleep 0.1
    done
    log "svclbd not ready after 10s:"; tail -20 "$DAEMON_LOG" >&2
    return 1
}

# daemon_stop: SIGTERM, wait (bounded), SIGKILL if needed. Dataplane stays.
daemon_stop() {
    [[ -n $DAEMON_PID ]] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        log "svclbd did not stop on SIGTERM in 10s; SIGKILL"
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    wait "$DAEMON_PID" 2>/dev/null; DAEMON_RC=$?
    DAEMON_PID=""
    return 0
}

svcctl() { timeout 20 "$SVCLB_BIN/svcctl" --socket "$SOCK" "$@"; }

metrics() { in_node_t 5 curl -sf "$METRICS_URL"; }

# ---- cleanup ------------------------------------------------------------------

topo_kill_pids() {
    local p live=()
    for p in "$@"; do kill -TERM "$p" 2>/dev/null && live+=("$p"); done
    local i
    for ((i = 0; i < 30 && ${#live[@]}; i++)); do
        sleep 0.1
        local still=()
        for p in "${live[@]}"; do kill -0 "$p" 2>/dev/null && still+=("$p"); done
        live=("${still[@]}")
    done
    for p in "${live[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# topo_cleanup: remove everything this prefix created; safe to call twice and
# on a half-built topology.
# libxdp (svclbd --external-iface) creates its runtime dir
# /sys/fs/bpf/xdp/globals on first use and leaves it: removed again (when
# empty) by the test that made it appear.
TOPO_XDP_GLOBALS_PREEXISTED=0
[[ -e /sys/fs/bpf/xdp/globals ]] && TOPO_XDP_GLOBALS_PREEXISTED=1
topo_rm_xdp_globals() {
    ((TOPO_XDP_GLOBALS_PREEXISTED)) || rmdir /sys/fs/bpf/xdp/globals 2>/dev/null
    return 0
}

topo_cleanup() {
    [[ -n ${TOPO_PREFIX:-} ]] || return 0
    set +e
    daemon_stop
    topo_kill_pids "${TOPO_PIDS[@]}"
    TOPO_PIDS=()
    if [[ -x $SVCLB_BIN/svclbd ]] && ip netns list | grep -q "^$NODE_NS\b"; then
        # shellcheck disable=SC2046
        in_node_t 30 "$SVCLB_BIN/svclbd" --uninstall $(daemon_flags) >>"$TOPO_TMP/uninstall.log" 2>&1 \
            || log "svclbd --uninstall failed (see $TOPO_TMP/uninstall.log)"
    fi
    local ns
    # The standard pods by name too: `demo.sh down` cleans up from another shell.
    for ns in "${TOPO_PODS[@]}" "$(pod_ns client)" "$(pod_ns be1)" "$(pod_ns be2)" "$NODE_NS"; do
        ip netns list | grep -q "^$ns\b" || continue
        # Anything still running inside our own namespaces was started by us.
        local pids; pids=$(ip netns pids "$ns" 2>/dev/null)
        [[ -n $pids ]] && topo_kill_pids $pids
        ip netns del "$ns"
    done
    if [[ -d $CG ]]; then
        local pids; pids=$(cat "$CG/cgroup.procs" 2>/dev/null)
        [[ -n $pids ]] && topo_kill_pids $pids
        retry 20 0.1 rmdir "$CG" 2>/dev/null || log "could not remove cgroup $CG"
    fi
    [[ -e $BPFFS ]] && rm -rf "$BPFFS"
    topo_rm_xdp_globals
    [[ -n ${TOPO_TMP:-} && -d $TOPO_TMP && ${SVCLB_KEEP_TMP:-0} != 1 ]] && rm -rf "$TOPO_TMP"
    TOPO_PREFIX=""
}

topo_on_exit() {
    local rc=$?
    if ((TOPO_KEEP)); then return $rc; fi
    if ((rc != 0)) && [[ -f ${DAEMON_LOG:-/nonexistent} ]]; then
        log "last lines of svclbd log:"; tail -15 "$DAEMON_LOG" >&2
    fi
    topo_cleanup
    return $rc
}
