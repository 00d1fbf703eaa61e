# shellcheck shell=bash
# Two-node topology for svclb's node-facing path (NodePort, LoadBalancer,
# externalIPs): every "host" is a network namespace this file creates.
#
#            lan (bridge br0, no address)
#     ┌─────────┬────┴──────┬────────────┐
#   node1      node2      client       client2
#   eth0 .1    eth0 .2    eth0 .100    eth0 .101       (192.168.77.0/24)
#    │ lxcbe1 ── be1 10.244.1.11/32
#    │ lxcbe2 ── be2 10.244.1.12/32
#
# node1's pods are wired like topo.sh wires pods (pod /32, gateway
# 169.254.1.1, host side lxc<pod> with proxy_arp and a /32 route): it calls
# topo_add_pod with NODE_NS pointing at node1. node2 has no pods. Both nodes
# forward; node2 routes 10.244.1.0/24 via node1 and node1 10.244.2.0/24 via
# node2. The clients know only their /24: a reply that leaves a pod without
# reverse NAT (source 10.244.1.x) is dropped by the client's stack, and
# traffic to a pod address never leaves a client. Each node runs its own
# svclbd (own bpffs dir, socket, state dir, cgroup, metrics in its netns).
#
# By default the lab is UNTUNED, as users build it: a plain bridge of veths
# with default offloads (TX checksum offload on, no program on the lan side).
# svclbd then forwards node-facing flows on its tc path (see
# docs/architecture.md, "veth NICs"). MN_TUNED=1 (benchmarks of the XDP path
# itself, and e2e.multinode_nodeport_xdp with --external-datapath xdp) adds
# what makes the veth links behave like a wire for XDP:
# - XDP_TX / redirect out of a veth needs NAPI on the PEER. `ethtool -K gro
#   on` on the peer is NOT enough (measured on 6.18: the sender counts
#   xdp_tx with no xdp_tx_errors, yet nothing arrives, apparently because
#   the peer's NAPI is only kicked when the peer runs an XDP program). So the
#   lan-side ends of the node NICs get GRO on AND a trivial XDP_PASS program
#   (tests/e2e/bpf/xdp_pass.bpf.c, built by CMake).
# - TX checksum offload is off on every LAN host's eth0 (see mn_add_host):
#   otherwise XDP rewrites and forwards half-computed checksums.
#
# Usage (a test, or scripts/demo.sh):
#   source tests/testlib/multinode.sh
#   mn_init mn-np-$$          # names, tmp dir, EXIT trap (mn_down)
#   mn_up                     # namespaces, bridge, pods, servers; checked
#   mn_daemons_up             # svclbd on node1 and node2, ready
#   svcctl_on node1 apply -f ...; in_mn client curl ...
#   mn_down                   # also run by the EXIT trap
#
# Backends answer with "<pod> <peer address>" (HTTP GET on 8080) and
# "<pod> <peer ip>:<peer port>" (UDP on 5353), so a test sees which source
# address the backend got (SNAT or client IP preserved).

MN_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# topo.sh: log/die/retry/in_ns/bg_ns/topo_add_pod/topo_kill_pids/UDP client.
# shellcheck source=topo.sh
declare -F topo_add_pod >/dev/null || source "$MN_LIB_DIR/topo.sh"

MN_NET=192.168.77
declare -A MN_IP=([node1]=$MN_NET.1 [node2]=$MN_NET.2 [client]=$MN_NET.100 [client2]=$MN_NET.101)
MN_HOSTS=(node1 node2 client client2)
MN_NODES=(node1 node2)
MN_BACKENDS=(be1 be2)
MN_METRICS_PORT=${MN_METRICS_PORT:-9962}   # per node netns
MN_DAEMON_FLAGS_EXTRA=()                   # more svclbd flags for both nodes
MN_TUNED=${MN_TUNED:-0}                    # 1: veth links tuned for XDP (top of file)
MN_EXTERNAL_DATAPATH=${MN_EXTERNAL_DATAPATH:-auto}  # svclbd --external-datapath
# MN_V6=1: the LAN, the pods and the servers are dual-stack as well:
# fd00:77::/64 on the LAN (the hosts' last byte as in IPv4: ::1, ::2, ::100,
# ::101), be1/be2 fd00:10:244:1::11/::12 (topo_add_pod6), node2 routes
# fd00:10:244:1::/64 via node1 and node1 fd00:10:244:2::/64 via node2, and
# svclbd's --service-cidr gets the IPv6 range too (MN_SERVICE_CIDR6).
MN_V6=${MN_V6:-0}
MN_NET6=fd00:77:
declare -A MN_IP6=([node1]=$MN_NET6:1 [node2]=$MN_NET6:2 [client]=$MN_NET6:100 [client2]=$MN_NET6:101)
declare -A MN_POD_IP6=()
MN_SERVICE_CIDR6=fd00:10:96::/112
declare -A MN_DAEMON_PID=()
MN_PREFIX=""

# mn_init PREFIX [TMPDIR]
mn_init() {
    MN_PREFIX=$1
    [[ $MN_PREFIX =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad prefix '$MN_PREFIX'"
    ((${#MN_PREFIX} <= 40)) || die "prefix '$MN_PREFIX' too long"
    # topo.sh's pod helpers (topo_add_pod, in_pod, pod_ns) use these: pods
    # and clients are "$MN_PREFIX-<name>", and "the node" is node1.
    # shellcheck disable=SC2034
    TOPO_PREFIX=$MN_PREFIX NODE_NS=$MN_PREFIX-node1
    TOPO_TMP=${2:-$(mktemp -d "/tmp/svclb-$MN_PREFIX.XXXXXX")}
    mkdir -p "$TOPO_TMP"
    MN_CG2_ROOT=$(cgroup2_root) || die "no cgroup2 mount in /proc/mounts"
    POD_IP+=([be1]=10.244.1.11 [be2]=10.244.1.12)
    MN_POD_IP6=([be1]=fd00:10:244:1::11 [be2]=fd00:10:244:1::12)
    trap mn_on_exit EXIT
    trap 'exit 130' INT TERM
}

mn_ns()    { echo "$MN_PREFIX-$1"; }            # node1|node2|client|client2|lan|be1|be2
in_mn()    { local h=$1; shift; nsenter --net="/run/netns/$MN_PREFIX-$h" "$@"; }
in_mn_t()  { local t=$1 h=$2; shift 2; timeout "$t" nsenter --net="/run/netns/$MN_PREFIX-$h" "$@"; }
mn_bpffs() { echo "/sys/fs/bpf/svclb-$MN_PREFIX-$1"; }
mn_sock()  { echo "$TOPO_TMP/$1.sock"; }
mn_cg()    { echo "$MN_CG2_ROOT/svclb-$MN_PREFIX-$1"; }
mn_log()   { echo "$TOPO_TMP/svclbd-$1.log"; }
# (not /sys/class/net: nsenter --net keeps the root namespace's /sys)
mn_mac()   { in_mn "$1" ip -o link show eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }'; }

# mn_neigh_mac HOST IP: the MAC HOST's neighbour table has for IP ("" if none).
mn_neigh_mac() {
    in_mn "$1" ip neigh show "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1) }'
}

# ---- servers ------------------------------------------------------------------

MN_HTTP_PY='
import http.server, sys
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("%s %s\n" % (name, self.client_address[0])).encode()
        if self.path.startswith("/bytes/"):  # bulk download: N bytes
            body = b"x" * int(self.path[7:])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):  # bulk upload: answers with the byte count read
        n = int(self.headers.get("Content-Length", "0")); got = 0
        while got < n:
            chunk = self.rfile.read(min(65536, n - got))
            if not chunk: break
            got += len(chunk)
        body = ("%s %s %d\n" % (name, self.client_address[0], got)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))
import socket
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer.address_family = socket.AF_INET6 if ":" in ip else socket.AF_INET
http.server.ThreadingHTTPServer((ip, port), H).serve_forever()
'
MN_UDP_PY='
import socket, sys
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, port))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(("%s %s:%d\n" % (name, addr[0], addr[1])).encode(), addr)
'

mn_start_backend() {  # POD [IP [TAG]]
    local pod=$1 ip=${2:-${POD_IP[$1]}} tag=${3:-}
    bg_ns "$(mn_ns "$pod")" "$PY" -u -c "$MN_HTTP_PY" "$pod" "$ip" "$HTTP_PORT" >"$TOPO_TMP/http$tag-$pod.log" 2>&1
    bg_ns "$(mn_ns "$pod")" "$PY" -u -c "$MN_UDP_PY" "$pod" "$ip" "$UDP_PORT" >"$TOPO_TMP/udp$tag-$pod.log" 2>&1
}

# mn_ping HOST DST: one ICMP echo (iputils ping is not a dependency).
MN_PING_PY='
import os, socket, struct, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
ident = os.getpid() & 0xffff
hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"svclb"
p = hdr + b"\0" * (len(hdr) % 2); c = sum(struct.unpack("!%dH" % (len(p) // 2), p))
c = (c >> 16) + (c & 0xffff); c = ~(c + (c >> 16)) & 0xffff
s.sendto(hdr[:2] + struct.pack("!H", c) + hdr[4:], (dst, 0))
end = time.time() + 2
while time.time() < end:
    try: data, src = s.recvfrom(1500)
    except socket.timeout: break
    ihl = (data[0] & 15) * 4
    if src[0] == dst and data[ihl] == 0 and struct.unpack("!H", data[ihl + 4:ihl + 6])[0] == ident:
        sys.exit(0)
sys.exit(1)
'
mn_ping() { in_mn_t 5 "$1" "$PY" -c "$MN_PING_PY" "$2"; }

# ---- topology -----------------------------------------------------------------

# A program that passes everything: on a veth it turns on the NAPI that
# receives frames the peer sends with XDP_TX / XDP_REDIRECT. Built by CMake
# (tests/e2e/bpf/xdp_pass.bpf.c); copied to $TOPO_TMP/xdp_pass.o.
mn_build_xdp_pass() {
    [[ -f $SVCLB_TEST_XDP_PASS ]] || die "no $SVCLB_TEST_XDP_PASS (build first: scripts/build.sh)"
    cp "$SVCLB_TEST_XDP_PASS" "$TOPO_TMP/xdp_pass.o"
}

# mn_add_host NAME IP: namespace with eth0 (IP/24) on the lan bridge; the lan
# side of the veth is called NAME in the lan namespace.
mn_add_host() {
    local h=$1 ip=$2 ns; ns=$(mn_ns "$h")
    ip netns add "$ns"
    in_mn "$h" ip link set lo up
    in_mn lan ip link add "$h" type veth peer name eth0 netns "$ns"
    in_mn lan ip link set "$h" master br0
    in_mn lan ip link set "$h" up
    # A wire carries full checksums; a veth with TX checksum offload hands the
    # peer CHECKSUM_PARTIAL packets whose TCP/UDP checksum field holds only
    # the pseudo-header sum. XDP cannot see that state: a frame it rewrites
    # and sends back out (XDP_TX) leaves with that half checksum, and the
    # receiver drops it. So every LAN host computes checksums itself.
    if ((MN_TUNED)); then in_mn "$h" ethtool -K eth0 tx off >/dev/null; fi
    in_mn "$h" ip addr add "$ip/24" dev eth0
    in_mn "$h" ip link set eth0 up
    in_mn "$h" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        net.ipv4.conf.eth0.rp_filter=0
    if ((MN_V6)); then in_mn "$h" ip -6 addr add "${MN_IP6[$h]}/64" dev eth0 nodad; fi
}

mn_create() {
    local h
    for h in lan "${MN_HOSTS[@]}" "${MN_BACKENDS[@]}"; do
        ip netns list | grep -q "^$(mn_ns "$h")\b" && die "namespace $(mn_ns "$h") already exists"
    done
    ip netns add "$(mn_ns lan)"
    in_mn lan ip link set lo up
    in_mn lan ip link add br0 type bridge
    in_mn lan ip link set br0 up
    for h in "${MN_HOSTS[@]}"; do mn_add_host "$h" "${MN_IP[$h]}"; done
    # NAPI on the peers of the node NICs, for XDP_TX / redirect out of them
    # (see the top of this file: GRO alone does not deliver the frames).
    if ((MN_TUNED)); then
        mn_build_xdp_pass
        for h in "${MN_NODES[@]}"; do
            # GRO there merges segments into CHECKSUM_PARTIAL skbs, which the
            # bridge segments again for the other node's NIC: with TX checksum
            # offload on, those segments reach its XDP half-summed.
            in_mn lan ethtool -K "$h" gro on tx off >/dev/null
            in_mn lan ip link set dev "$h" xdpdrv obj "$TOPO_TMP/xdp_pass.o" sec xdp \
                || die "could not attach XDP_PASS to lan-side veth $h (XDP_TX out of $h's eth0 needs it)"
        done
    fi
    for h in "${MN_NODES[@]}"; do
        in_mn "$h" sysctl -qw net.ipv4.ip_forward=1
    done
    # node1: pods like topo.sh (needs the 169.254.1.1 route for proxy_arp).
    in_mn node1 ip route add 169.254.1.1/32 dev lo
    local p
    for p in "${MN_BACKENDS[@]}"; do topo_add_pod "$p" "${POD_IP[$p]}"; done
    in_mn node2 ip route add 10.244.1.0/24 via "${MN_IP[node1]}"
    in_mn node1 ip route add 10.244.2.0/24 via "${MN_IP[node2]}"
    if ((MN_V6)); then
        for p in "${MN_BACKENDS[@]}"; do topo_add_pod6 "$p" "${MN_POD_IP6[$p]}"; done
        for h in "${MN_NODES[@]}"; do in_mn "$h" sysctl -qw net.ipv6.conf.all.forwarding=1; done
        in_mn node2 ip -6 route add fd00:10:244:1::/64 via "${MN_IP6[node1]}"
        in_mn node1 ip -6 route add fd00:10:244:2::/64 via "${MN_IP6[node2]}"
    fi
    local n
    for n in "${MN_NODES[@]}"; do mkdir -p "$(mn_cg "$n")"; done
}

# mn_check: the topology works without svclb (used by mn_up; dies on error).
mn_check() {
    local h p out
    for h in node1 node2 client2; do
        mn_ping client "${MN_IP[$h]}" || die "client cannot ping $h (${MN_IP[$h]})"
    done
    for p in "${MN_BACKENDS[@]}"; do
        retry 50 0.2 eval "[[ \$(in_mn_t 3 node1 curl -s -m 1 http://${POD_IP[$p]}:$HTTP_PORT/) == '$p ${MN_IP[node1]}' ]]" \
            || die "HTTP server in $p did not come up (see $TOPO_TMP/http-$p.log)"
        out=$(in_mn_t 5 node2 curl -s -m 2 "http://${POD_IP[$p]}:$HTTP_PORT/")
        [[ $out == "$p ${MN_IP[node2]}" ]] || die "node2 -> $p through node1: got '$out'"
        out=$(in_mn_t 10 node2 "$PY" -c "$UDP_CLIENT_PY" "${POD_IP[$p]}" "$UDP_PORT" 1 8)
        [[ $out == "$p ${MN_IP[node2]}:"*" from ${POD_IP[$p]}:$UDP_PORT" ]] || die "UDP node2 -> $p: got '$out'"
    done
    if ((MN_V6)); then
        for p in "${MN_BACKENDS[@]}"; do
            retry 50 0.2 eval "[[ \$(in_mn_t 3 node2 curl -s -m 1 http://[${MN_POD_IP6[$p]}]:$HTTP_PORT/) == '$p ${MN_IP6[node2]}' ]]" \
                || die "node2 -> $p over IPv6 through node1 failed (see $TOPO_TMP/http6-$p.log)"
        done
        in_mn client ip -6 route get "${MN_POD_IP6[be1]}" >/dev/null 2>&1 && die "client has a route to ${MN_POD_IP6[be1]}"
    fi
    # The clients must not reach pods: only SNAT / reverse NAT can make
    # NodePort replies acceptable to them.
    in_mn client ip route get "${POD_IP[be1]}" >/dev/null 2>&1 && die "client has a route to ${POD_IP[be1]}"
    in_mn_t 5 client curl -s -m 2 "http://${POD_IP[be1]}:$HTTP_PORT/" >/dev/null && die "client reaches ${POD_IP[be1]} directly"
    return 0
}

# mn_up: create and check the whole topology, servers running.
mn_up() {
    log "creating two-node topology $MN_PREFIX (tmp $TOPO_TMP)"
    mn_create
    local p
    for p in "${MN_BACKENDS[@]}"; do
        mn_start_backend "$p"
        if ((MN_V6)); then mn_start_backend "$p" "${MN_POD_IP6[$p]}" 6; fi
    done
    mn_check
    log "topology ready: node1=${MN_IP[node1]} (be1=${POD_IP[be1]} be2=${POD_IP[be2]}) node2=${MN_IP[node2]} client=${MN_IP[client]} client2=${MN_IP[client2]}"
}

# mn_test_up PREFIX: for tests — the tools checked, the topology up, svclbd
# ready on both nodes; any failure ends the test (fatal_setup, assert.sh).
mn_test_up() {
    local t
    local tools=(jq curl nsenter "$PY")
    ((MN_TUNED)) && tools+=(ethtool)
    for t in "${tools[@]}"; do command -v "$t" >/dev/null || fatal_setup "missing $t"; done
    mn_init "$1"
    mn_up || fatal_setup "topology"
    mn_daemons_up || fatal_setup "svclbd did not become ready on both nodes"
}

# ---- daemons ------------------------------------------------------------------

mn_daemon_flags() {  # NODE
    echo --bpffs "$(mn_bpffs "$1")" --socket "$(mn_sock "$1")" --state-dir "$TOPO_TMP/$1-state" \
        --pod-iface-prefix lxc --external-iface eth0 --node-name "$1" --l2-members "$(IFS=,; echo "${MN_NODES[*]}")" \
        --metrics-addr "127.0.0.1:$MN_METRICS_PORT" --service-cidr "$SERVICE_CIDR$( ((MN_V6)) && echo ",$MN_SERVICE_CIDR6")" \
        --cgroup "$(mn_cg "$1")" --socket-lb "${SVCLB_SOCKET_LB:-all}" --external-datapath "$MN_EXTERNAL_DATAPATH" "${MN_DAEMON_FLAGS_EXTRA[@]}"
}

mn_daemon_start() {  # NODE
    local n=$1
    [[ -x $SVCLB_BIN/svclbd ]] || die "no $SVCLB_BIN/svclbd (build first)"
    mkdir -p "$TOPO_TMP/$n-state"
    # shellcheck disable=SC2046
    nsenter --net="/run/netns/$(mn_ns "$n")" "$SVCLB_BIN/svclbd" $(mn_daemon_flags "$n") >>"$(mn_log "$n")" 2>&1 &
    MN_DAEMON_PID[$n]=$!
    TOPO_PIDS+=("$!")
    log "svclbd on $n started (pid $!, log $(mn_log "$n"))"
}

mn_daemon_wait_ready() {  # NODE
    local n=$1 i
    for ((i = 0; i < 100; i++)); do
        svcctl_on "$n" status >/dev/null 2>&1 && return 0
        kill -0 "${MN_DAEMON_PID[$n]}" 2>/dev/null || { log "svclbd on $n exited early:"; tail -20 "$(mn_log "$n")" >&2; return 1; }
        sleep 0.1
    done
    log "svclbd on $n not ready after 10s:"; tail -20 "$(mn_log "$n")" >&2
    return 1
}

mn_daemons_up() {
    local n
    if ((${SVCLB_E2E_NO_DAEMON:-0})); then
        log "SVCLB_E2E_NO_DAEMON=1: not starting svclbd"; return 0
    fi
    for n in "${MN_NODES[@]}"; do mn_daemon_start "$n"; done
    for n in "${MN_NODES[@]}"; do mn_daemon_wait_ready "$n" || return 1; done
}

mn_daemon_stop() {  # NODE: SIGTERM, bounded wait, SIGKILL
    local n=$1 pid=${MN_DAEMON_PID[$1]:-} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "svclbd on $n ignored SIGTERM for 10s; SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
    wait "$pid" 2>/dev/null
    MN_DAEMON_PID[$n]=""
    return 0
}

svcctl_on() { local n=$1; shift; timeout 20 "$SVCLB_BIN/svcctl" --socket "$(mn_sock "$n")" "$@"; }
# mn_apply FILE...: the same manifests to every node (each knows the cluster).
mn_apply() {
    local n f out rc=0 args=()
    for f in "$@"; do args+=(-f "$f"); done
    for n in "${MN_NODES[@]}"; do
        out=$(svcctl_on "$n" apply "${args[@]}" 2>&1) || {
            log "$n: svcctl apply $* failed: $out"; ((${SVCLB_E2E_NO_DAEMON:-0})) || rc=1; continue; }
        log "$n: $out"
    done
    return $rc
}
mn_metrics() { in_mn_t 5 "$1" curl -sf "http://127.0.0.1:$MN_METRICS_PORT/metrics"; }
mn_stats()   { svcctl_on "$1" stats -o json 2>/dev/null || echo '{}'; }
# mn_fe_stat JSON SVC PORTNAME VIP FIELD: a counter of one frontend of a
# Service port (stats has one entry per frontend: ClusterIP, node:nodePort,
# LoadBalancer IP, ...); "" if absent.
mn_fe_stat() {
    jq -r --arg s "$2" --arg p "$3" --arg v "$4" --arg f "$5" \
        '[.services[]? | select(.namespace=="default" and .name==$s and .port==$p and .vip==$v)][0][$f] // empty' <<<"$1"
}
# mn_drops JSON REASON: packets dropped for REASON ("" if absent).
mn_drops()   { jq -r --arg r "$2" '[.drops[]? | select(.reason==$r)][0].packets // empty' <<<"$1"; }
# mn_drops_sum REASON: packets dropped for REASON over both nodes ("missing"
# when a node's stats lack it).
mn_drops_sum() {
    local n s total=0 v
    for n in "${MN_NODES[@]}"; do
        v=$(mn_drops "$(mn_stats "$n")" "$1"); [[ $v =~ ^[0-9]+$ ]] && total=$((total + v)) || s=missing
    done
    echo "${s:-$total}"
}
# mn_lb_ip NODE SVC: the Service's first LoadBalancer ingress IP on NODE.
mn_lb_ip() {
    svcctl_on "$1" get svc "$2" -o json | jq -r '.status.loadBalancer.ingress[0].ip // "<pending>"'
}

# ---- clients ------------------------------------------------------------------

# mn_curl HOST URL [MAXTIME]: body or FAIL(<curl exit>) on one line.
mn_curl() {
    local out rc
    out=$(in_mn_t $((${3:-5} + 2)) "$1" curl -s --max-time "${3:-5}" "$2"); rc=$?
    ((rc == 0)) && echo "${out:-EMPTY}" || echo "FAIL($rc)"
}
# mn_udp HOST DST PORT [COUNT]: topo.sh's UDP client ("<reply> from ip:port").
mn_udp() { in_mn_t 30 "$1" "$PY" -c "$UDP_CLIENT_PY" "$2" "$3" "${4:-1}" 8; }

# mn_add_pod NODE POD IP: one more pod (namespace "$MN_PREFIX-POD", /32
# address IP, wired as node1's pods are) on NODE, e.g. a client pod on
# node2; its address is routed to NODE by the other node (10.244.1.0/24 on
# node1, 10.244.2.0/24 on node2). svclbd's pod-interface watch attaches to
# its lxc<POD>. mn_down removes it.
MN_EXTRA_PODS=()
mn_add_pod() {
    local node=$1 pod=$2 ip=$3
    [[ -n $(in_mn "$node" ip route show 169.254.1.1/32) ]] || in_mn "$node" ip route add 169.254.1.1/32 dev lo
    MN_EXTRA_PODS+=("$pod")
    NODE_NS=$(mn_ns "$node") topo_add_pod "$pod" "$ip"
    POD_IP[$pod]=$ip
}

# ---- teardown -----------------------------------------------------------------

# mn_down: remove everything this prefix created; safe twice and half-built.
mn_down() {
    [[ -n $MN_PREFIX ]] || return 0
    set +e
    local n ns pids cg
    for n in "${MN_NODES[@]}"; do mn_daemon_stop "$n"; done
    topo_kill_pids "${TOPO_PIDS[@]}"
    TOPO_PIDS=()
    # Anything still running inside our own namespaces was started by us
    # (also from another shell: `mn_init PREFIX TMPDIR; mn_down`).
    for n in "${MN_BACKENDS[@]}" "${MN_EXTRA_PODS[@]}" "${MN_HOSTS[@]}" lan; do
        ns=$(mn_ns "$n")
        ip netns list | grep -q "^$ns\b" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        [[ -n $pids ]] && topo_kill_pids $pids
    done
    for n in "${MN_NODES[@]}"; do
        if [[ -x $SVCLB_BIN/svclbd && -e $(mn_bpffs "$n") ]] && ip netns list | grep -q "^$(mn_ns "$n")\b"; then
            # shellcheck disable=SC2046
            in_mn_t 30 "$n" "$SVCLB_BIN/svclbd" --uninstall $(mn_daemon_flags "$n") >>"$TOPO_TMP/uninstall-$n.log" 2>&1 \
                || log "svclbd --uninstall on $n failed (see $TOPO_TMP/uninstall-$n.log)"
        fi
    done
    for n in "${MN_BACKENDS[@]}" "${MN_EXTRA_PODS[@]}" "${MN_HOSTS[@]}" lan; do
        ns=$(mn_ns "$n")
        ip netns list | grep -q "^$ns\b" && ip netns del "$ns"
    done
    MN_EXTRA_PODS=()
    for n in "${MN_NODES[@]}"; do
        cg=$(mn_cg "$n")
        if [[ -d $cg ]]; then
            pids=$(cat "$cg/cgroup.procs" 2>/dev/null)
            [[ -n $pids ]] && topo_kill_pids $pids
            retry 20 0.1 rmdir "$cg" 2>/dev/null || log "could not remove cgroup $cg"
        fi
        [[ -e $(mn_bpffs "$n") ]] && rm -rf "$(mn_bpffs "$n")"
    done
    topo_rm_xdp_globals
    [[ -n ${TOPO_TMP:-} && -d $TOPO_TMP && ${SVCLB_KEEP_TMP:-0} != 1 ]] && rm -rf "$TOPO_TMP"
    # shellcheck disable=SC2034
    MN_PREFIX="" TOPO_PREFIX=""
}

MN_KEEP=0   # 1: leave everything up on exit (demo --keep)
mn_on_exit() {
    local rc=$? n
    ((MN_KEEP)) && return $rc
    if ((rc != 0)); then
        for n in "${MN_NODES[@]}"; do
            [[ -f ${TOPO_TMP:-/nonexistent}/svclbd-$n.log ]] || continue
            log "last lines of svclbd log on $n:"; tail -15 "$TOPO_TMP/svclbd-$n.log" >&2
        done
    fi
    mn_down
    return $rc
}
