#!/usr/bin/env bash
# Socket-level balancing for pods (svclbd --socket-lb=all, the default): the
# pods' processes sit in svclbd's cgroup (the test cgroup, as a cluster's pods
# sit under the node's cgroup root), so their connect()/sendmsg() to a
# ClusterIP go straight to a backend: no per-packet DNAT, no CT entry. What
# the hooks decline (a pod's connected UDP socket) takes the tc path. Checked
# from pods with real clients: the socket path really taken (CT maps stay
# empty), getpeername/recvmsg showing the ClusterIP, counters (flows, packets,
# bytes) as on the packet path, rejects (ECONNREFUSED for TCP and an
# unconnected UDP sender), sessionAffinity per pod, Maglev, a connected UDP
# socket surviving its backend's removal (a pod's: tc path; the node's:
# closed), a pod reaching its own Service,
# and --socket-lb=node / none (restarts of the same daemon).
set -u
SVCLB_SOCKET_LB=all   # this test is about the socket path, whatever the suite runs
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup socklb

# Entries in a CT map (bpftool prints one JSON object per entry).
ct_entries() { bpftool map dump pinned "$BPFFS/$1" -j 2>/dev/null | jq length; }
ct_total() { echo $(($(ct_entries ct_v2) + $(ct_entries ct_est_v2))); }

# Python clients run in the pod (in the test cgroup: in_pod_t).
PEER_PY='
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
p = s.getpeername()
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
body = b""
while True:
    d = s.recv(4096)
    if not d: break
    body += d
print("%s:%d %s" % (p[0], p[1], body.decode().split("\r\n\r\n", 1)[-1].strip()))
'
# Connected UDP socket: asks, then (after the caller removes its backend,
# signalled by a file) asks again on the same socket.
UDP_CONN_PY='
import os, socket, sys, time
dst, port, flag, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((dst, port))
def ask():
    s.send(b"q")
    try:
        return s.recv(100).decode().strip()
    except Exception as e:
        return type(e).__name__
print("first", ask(), "%s:%d" % s.getpeername(), flush=True)
open(flag, "w").close()
t = time.time()
while not os.path.exists(done) and time.time() - t < 20:
    time.sleep(0.05)
for i in range(3):
    print("after", ask(), flush=True)
'
REFUSE_PY='
import errno, socket, sys
dst = sys.argv[1]
try:
    socket.create_connection((dst, 80), timeout=3); print("tcp connected")
except OSError as e:
    print("tcp", errno.errorcode.get(e.errno, e.errno))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"q", (dst, 5353)); print("udp sent")
except OSError as e:
    print("udp", errno.errorcode.get(e.errno, e.errno))
'

test_tcp_socket_path() {
    local before after out ct0 ct1
    ct0=$(ct_total)
    before=$(stats_json)
    out=$(http_get_many client 20 "http://$VIP/")
    check_both_answer "$out" 20 2 "client pod (cgroup $CG) -> $VIP:80"
    after=$(stats_json)
    ct1=$(ct_total)
    assert_eq "$ct0" "$ct1" "CT entries before/after 20 pod connections (socket path: none made)"
    assert_eq 20 "$(svc_delta "$before" "$after" http flows)" "stats flows for 20 pod connections"
    # Counted by the cgroup_skb hooks: SYN, request, ACKs, FIN out; SYN-ACK, answer, FIN in.
    assert_ge "$(svc_delta "$before" "$after" http packets)" 80 "stats packets (socket path, cgroup_skb egress)"
    assert_ge "$(svc_delta "$before" "$after" http replyPackets)" 60 "stats replyPackets (cgroup_skb ingress)"
    assert_ge "$(svc_delta "$before" "$after" http replyBytes)" 2000 "stats replyBytes"
}

test_getpeername() {
    local out
    out=$(in_pod_t 10 client "$PY" -c "$PEER_PY" "$VIP" 80)
    assert_match "$out" "^$VIP:80 be[12]\$" "getpeername() of a pod's socket to $VIP:80, and the answer"
}

# A dual-stack (AF_INET6) socket naming the IPv4 ClusterIP as ::ffff:VIP:
# only the IPv6 hooks run for it (connect6/getpeername6), which balance it
# as IPv4. From a pod: the socket path (no CT entry), the peer shown as
# ::ffff:VIP. From the node (no tc path behind it): answered at all.
PEER6_PY='
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
p = s.getpeername()
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
body = b""
while True:
    d = s.recv(4096)
    if not d: break
    body += d
print("%s:%d %s" % (p[0], p[1], body.decode().split("\r\n\r\n", 1)[-1].strip()))
'
test_v4_mapped() {
    local out ct0
    ct0=$(ct_total)
    out=$(in_pod_t 10 client "$PY" -c "$PEER6_PY" "::ffff:$VIP" 80)
    assert_match "$out" "^::ffff:$VIP:80 be[12]\$" "a pod's AF_INET6 socket to ::ffff:$VIP:80: getpeername and answer"
    assert_eq "$ct0" "$(ct_total)" "CT entries after the pod's v4-mapped connection (socket path)"
    out=$(in_node_cg_t 10 "$PY" -c "$PEER6_PY" "::ffff:$VIP" 80 2>&1)
    assert_match "$out" "^::ffff:$VIP:80 be[12]\$" "the node's AF_INET6 socket to ::ffff:$VIP:80"
}

test_udp_unconnected() {
    local out ct0
    ct0=$(ct_total)
    out=$(udp_query_pod client "$VIP" 5353 5 8)
    assert_eq 5 "$(grep -c "^be[12] from $VIP:5353\$" <<<"$out")" "recvfrom() shows $VIP:5353 as the source: $out"
    assert_eq 1 "$(cut -d' ' -f1 <<<"$out" | sort -u | wc -l)" "one unconnected socket stays on one backend (random slots)"
    assert_eq "$ct0" "$(ct_total)" "CT entries after unconnected UDP from a pod (socket path)"
}

# A pod's connected UDP socket is left to the tc path (docs/architecture.md
# "Socket-level balancing"): when its backend goes away, its next datagrams
# are balanced anew instead of going to the removed pod.
test_udp_connected_backend_removed() {
    local flag=$TOPO_TMP/udpc.flag done=$TOPO_TMP/udpc.done log=$TOPO_TMP/udpc.log first other pid i
    in_pod_t 40 client "$PY" -u -c "$UDP_CONN_PY" "$VIP" 5353 "$flag" "$done" >"$log" 2>&1 &
    pid=$!; TOPO_PIDS+=("$pid")
    retry 100 0.1 test -e "$flag" || { _fail "connected UDP client did not start: $(cat "$log")"; return; }
    first=$(awk '$1 == "first" { print $2 }' "$log")
    assert_match "$(grep '^first' "$log")" "^first be[12] $VIP:5353\$" "connected UDP socket: first answer, peer $VIP:5353" || return
    # One entry: the ClusterIP is its backends' designated frontend (single-entry flow).
    assert_ge "$(ct_entries ct_v2)" 1 "CT entries for the pod's connected UDP socket (tc path)"
    [[ $first == be1 ]] && other=be2 || other=be1
    e2e_apply "$(endpoints_yaml only-$other "${POD_IP[$other]}")"
    touch "$done"
    wait "$pid" 2>/dev/null
    assert_eq 3 "$(grep -c "^after $other\$" "$log")" \
        "the same connected socket after $first was removed: answers from $other ($(xargs <"$log"))"
    e2e_apply "$(endpoints_yaml both "${POD_IP[be1]}" "${POD_IP[be2]}")"
}

# The node's own connected UDP socket has no tc path behind it: when its
# backend is removed, svclbd closes it (bpf_sock_destroy from a UDP socket
# iterator, docs/architecture.md "Socket-level balancing"), so the
# application sees an error instead of talking on to the removed pod (whose
# server still answers here), and a new socket reaches the other backend.
test_node_udp_connected_backend_removed() {
    local flag=$TOPO_TMP/nudpc.flag done=$TOPO_TMP/nudpc.done log=$TOPO_TMP/nudpc.log first other pid
    in_node_cg_t 40 "$PY" -u -c "$NODE_UDP_CONN_PY" "$VIP" 5353 "$flag" "$done" >"$log" 2>&1 &
    pid=$!; TOPO_PIDS+=("$pid")
    retry 100 0.1 test -e "$flag" || { _fail "node's connected UDP client did not start: $(cat "$log")"; return; }
    first=$(awk '$1 == "first" { print $2 }' "$log")
    assert_match "$(grep '^first' "$log")" "^first be[12] $VIP:5353\$" "node's connected UDP socket: first answer, peer $VIP:5353" || return
    [[ $first == be1 ]] && other=be2 || other=be1
    e2e_apply "$(endpoints_yaml only-$other "${POD_IP[$other]}")"
    touch "$done"
    wait "$pid" 2>/dev/null
    assert_match "$(grep '^after' "$log")" "^after (ConnectionAbortedError|OSError)\$" \
        "the node's socket connected to $first is closed once $first is removed ($(xargs <"$log"))"
    assert_eq "reconnected $other" "$(grep '^reconnected' "$log")" "a new socket reaches $other"
    assert_contains "$(cat "$DAEMON_LOG")" "closed 1 connected UDP socket(s) of removed backends" "svclbd's log"
    e2e_apply "$(endpoints_yaml both "${POD_IP[be1]}" "${POD_IP[be2]}")"
}

test_reject() {
    local f=$TOPO_TMP/ep-none.yaml out
    printf 'apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\n  namespace: default\nsubsets: []\n' >"$f"
    e2e_apply "$f"
    out=$(in_pod_t 10 client "$PY" -c "$REFUSE_PY" "$VIP")
    assert_contains "$out" "tcp ECONNREFUSED" "a pod's connect() to a Service without endpoints"
    assert_contains "$out" "udp ECONNREFUSED" "a pod's sendto() to a Service without endpoints"
    e2e_apply "$(endpoints_yaml both "${POD_IP[be1]}" "${POD_IP[be2]}")"
}

svc_yaml() {  # FILE ANNOTATION-ALGO [affinity]
    {
        printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n'
        printf '  annotations:\n    svclb.io/lb-algorithm: %s\nspec:\n  clusterIP: %s\n' "$2" "$VIP"
        [[ ${3:-} == affinity ]] && printf '  sessionAffinity: ClientIP\n'
        printf '  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n'
        printf '  - name: dns\n    port: 5353\n    protocol: UDP\n    targetPort: 5353\n'
    } >"$1"
    echo "$1"
}

# sessionAffinity: ClientIP at the socket: a pod is one client (its network
# namespace), so all its connections reach one backend; the node is another.
test_affinity() {
    local out n
    e2e_apply "$(svc_yaml "$TOPO_TMP/aff.yaml" random affinity)"
    out=$(http_get_many client 20 "http://$VIP/")
    n=$(sort -u <<<"$out" | wc -l)
    assert_eq 1 "$n" "20 connections of one pod with ClientIP affinity reach one backend ($(sort <<<"$out" | uniq -c | xargs))"
    assert_match "$(head -1 <<<"$out")" '^be[12]$' "affinity answers"
    out=$(http_get_many be1 10 "http://$VIP/")
    assert_eq 1 "$(sort -u <<<"$out" | wc -l)" "10 connections of pod be1 (another client) reach one backend"
    e2e_apply "$SVCLB_EXAMPLES/web-service.yaml"
}

test_maglev() {
    local out
    e2e_apply "$(svc_yaml "$TOPO_TMP/maglev.yaml" maglev)"
    out=$(http_get_many client 30 "http://$VIP/")
    check_both_answer "$out" 30 2 "pod -> Maglev Service at the socket"
    e2e_apply "$SVCLB_EXAMPLES/web-service.yaml"
}

# A pod reaching its own Service and landing on itself: the socket already
# names the pod's own address, so the flow never leaves the pod (no hairpin
# through the node, nothing to source-NAT).
test_own_service() {
    local out
    out=$(http_get_many be1 20 "http://$VIP/")
    check_both_answer "$out" 20 2 "pod be1 -> its own Service (be1 answers itself, be2 too)"
}

# --socket-lb=node: pods' flows take the tc path (CT entries), the node's own
# stay at the socket. --socket-lb=none: no hooks (pinned links removed).
restart_with() {
    daemon_stop
    SVCLB_SOCKET_LB=$1
    daemon_start && daemon_wait_ready
}
test_mode_node() {
    local ct0 out
    restart_with node || { _fail "svclbd --socket-lb node did not start"; return; }
    assert_eq node "$(svcctl status -o json | jq -r .socketLb)" "svcctl status socketLb"
    ct0=$(ct_total)
    out=$(http_get_many client 5 "http://$VIP/")
    check_both_answer "$out" 5 0 "pod -> $VIP with --socket-lb node (tc path)"
    assert_ge "$(ct_total)" $((ct0 + 2)) "CT entries after pod connections with --socket-lb node"
    ct0=$(ct_total)
    out=$(http_get_many node 5 "http://$VIP/")
    check_both_answer "$out" 5 0 "node -> $VIP with --socket-lb node (socket path)"
    assert_eq "$ct0" "$(ct_total)" "CT entries after node connections with --socket-lb node"
}
test_mode_none() {
    local ct0 out
    restart_with none || { _fail "svclbd --socket-lb none did not start"; return; }
    assert_eq 0 "$(svcctl status -o json | jq '.cgroupLinks | length')" "cgroup links with --socket-lb none"
    assert_eq 0 "$(ls "$BPFFS/links" 2>/dev/null | grep -vx tcx | wc -l)" "pinned cgroup links left with --socket-lb none"
    assert_eq "" "$(bpftool cgroup show "$CG" 2>/dev/null | grep -i svclb)" "svclb programs on $CG with --socket-lb none"
    ct0=$(ct_total)
    out=$(http_get_many client 5 "http://$VIP/")
    check_both_answer "$out" 5 0 "pod -> $VIP with --socket-lb none (tc path)"
    assert_ge "$(ct_total)" $((ct0 + 2)) "CT entries after pod connections with --socket-lb none"
}

run_test "socket-lb: pod TCP at the socket (no CT), counters" test_tcp_socket_path
run_test "socket-lb: getpeername shows the ClusterIP" test_getpeername
run_test "socket-lb: pod UDP (unconnected): source $VIP, one backend per socket" test_udp_unconnected
run_test "socket-lb: an AF_INET6 socket to ::ffff:ClusterIP (pod, node)" test_v4_mapped
run_test "socket-lb: pod connected UDP survives its backend's removal (tc path)" test_udp_connected_backend_removed
run_test "socket-lb: the node's connected UDP socket is closed when its backend goes" test_node_udp_connected_backend_removed
run_test "socket-lb: no endpoints: ECONNREFUSED for TCP connect and UDP sendto" test_reject
run_test "socket-lb: sessionAffinity per pod" test_affinity
run_test "socket-lb: Maglev" test_maglev
run_test "socket-lb: a pod reaches its own Service" test_own_service
run_test "socket-lb: --socket-lb node" test_mode_node
run_test "socket-lb: --socket-lb none" test_mode_none
finish
