#!/usr/bin/env bash
# Issue 3, two nodes: externalTrafficPolicy Local on a LoadBalancer Service
# whose backends all run on node1. node1 serves it and the backend sees the
# client's address; node2 has no local endpoint, drops (counted as
# no_local_endpoint) and its healthCheckNodePort says 503 so a cloud load
# balancer would take it out; node1's says 200 with localEndpoints 2.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"
MANIFESTS=$(cd "$(dirname "$0")/manifests" && pwd)

mn_setup() {
    mn_test_up "mn-local-$$"
    mn_apply "$MANIFESTS/multinode-pool.yaml" || fatal_setup "apply multinode-pool.yaml"
    mn_apply "$MANIFESTS/multinode-local.yaml" || fatal_setup "apply multinode-local.yaml"
}
mn_setup
N1=${MN_IP[node1]} N2=${MN_IP[node2]} C=${MN_IP[client]}

test_via_node1() {
    local out
    out=$(mn_curl client "http://$N1:30080/")
    assert_match "$out" "^be[12] $C\$" "client -> node1:30080 (local endpoints): backend saw the client's address"
    out=$(mn_udp client "$N1" 30053 1)
    assert_match "$out" "^be[12] $C:[0-9]+ from $N1:30053\$" "UDP client -> node1:30053: answer from node1:30053, client address kept"
}

test_via_node2_dropped() {
    local before after out m
    before=$(mn_drops "$(mn_stats node2)" no_local_endpoint)
    out=$(mn_curl client "http://$N2:30080/" 3)
    assert_match "$out" '^FAIL' "client -> node2:30080 (no local endpoint) must not get through"
    after=$(mn_drops "$(mn_stats node2)" no_local_endpoint)
    assert_ge "$(_delta "$before" "$after")" 1 "node2 stats: drops{reason=no_local_endpoint} increased (before '$before', after '$after')"
    m=$(mn_metrics node2)
    assert_ge "$(metric_sample "$m" svclb_drops_total reason=no_local_endpoint)" 1 \
        "node2 /metrics: svclb_drops_total{reason=\"no_local_endpoint\"}"
}

hc_port() { svcctl_on "$1" get svc web -o json | jq -r '.spec.healthCheckNodePort // empty'; }
# hc NODE PORT: "<http code> <localEndpoints>" from NODE:PORT, seen from the client.
hc() {
    local body
    body=$(in_mn_t 8 client curl -s --max-time 5 -o - -w '\n%{http_code}' "http://${MN_IP[$1]}:$2/")
    echo "$(tail -1 <<<"$body") $(sed '$d' <<<"$body" | jq -r '.localEndpoints' 2>/dev/null)"
}
test_health_check() {
    local p1 p2
    p1=$(hc_port node1); p2=$(hc_port node2)
    assert_match "$p1" '^[0-9]+$' "node1: spec.healthCheckNodePort of web" || return
    assert_match "$p2" '^[0-9]+$' "node2: spec.healthCheckNodePort of web" || return
    # One Service, one healthCheckNodePort: both nodes should agree (they got
    # the same manifests, as every kube-proxy sees the same API object).
    assert_eq "$p1" "$p2" "healthCheckNodePort allocated on node1 vs node2"
    assert_eq "200 2" "$(hc node1 "$p1")" "GET node1:$p1 (healthCheckNodePort): HTTP code and localEndpoints"
    assert_eq "503 0" "$(hc node2 "$p2")" "GET node2:$p2 (healthCheckNodePort): HTTP code and localEndpoints"
}

# MetalLB in L2 mode with externalTrafficPolicy Local announces the address
# only from nodes with a ready local endpoint: here node1.
test_lb_ip_local() {
    local ip1 ip2 out mac
    ip1=$(svcctl_on node1 get svc web -o json | jq -r '.status.loadBalancer.ingress[0].ip // "<pending>"')
    ip2=$(svcctl_on node2 get svc web -o json | jq -r '.status.loadBalancer.ingress[0].ip // "<pending>"')
    assert_match "$ip1" '^192\.168\.77\.2(0[0-9]|10)$' "node1: web got an address from the pool" || return
    assert_eq "$ip1" "$ip2" "node2 assigned web the same address as node1"
    out=$(mn_curl client "http://$ip1/")
    assert_match "$out" "^be[12] $C\$" "client -> $ip1:80 (ARP only): backend saw the client's address"
    mac=$(mn_neigh_mac client "$ip1")
    assert_eq "$(mn_mac node1)" "$mac" "client resolved $ip1 to node1's eth0 (the node with local endpoints)"
}

# kube-proxy sends this node's own traffic to an externalTrafficPolicy Local
# address (its pods', its processes') to any endpoint, not only local ones
# (kubernetes#77523): node2 has no endpoint of web, yet its processes and
# its pod pc2 reach be1/be2 on node1 through node2's NodePort and through
# the LoadBalancer IP, on the socket path (in node2's cgroup) and on the tc
# path (outside it), while the client through node2 stays dropped
# (test_via_node2_dropped). pc2's answers come back from the address it used.
in_node2_cg_t() {
    local t=$1; shift
    timeout "$t" sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
        "$(mn_ns node2)" "$(mn_cg node2)" "$@"
}
pc2_t() {  # SECONDS in|out CMD...: in pc2, inside node2's cgroup or outside it
    local t=$1 where=$2; shift 2
    CG=$([[ $where == in ]] && mn_cg node2 || echo /nonexistent) in_pod_t "$t" pc2 "$@"
}
test_from_node2_itself() {
    local lb out flows0 flows1 drops0 drops1 where
    lb=$(mn_lb_ip node2 web)
    assert_match "$lb" '^192\.168\.77\.' "node2: web's LoadBalancer IP" || return
    mn_add_pod node2 pc2 10.244.2.21
    retry 50 0.2 eval "[[ \$(svcctl_on node2 status -o json | jq -r '[.interfaces[]? | select(.name==\"lxcpc2\" and .progId > 0)] | length') == 1 ]]" \
        || { _fail "node2's svclbd did not attach to lxcpc2"; return; }
    drops0=$(mn_drops "$(mn_stats node2)" no_local_endpoint)
    flows0=$(mn_fe_stat "$(mn_stats node2)" web http "$N2" flows)
    out=$(in_node2_cg_t 10 curl -s --max-time 5 "http://$N2:30080/")
    assert_match "$out" "^be[12] $N2\$" "node2's own curl to $N2:30080 (no local endpoint): reaches an endpoint on node1"
    out=$(in_node2_cg_t 10 curl -s --max-time 5 "http://$lb/")
    assert_match "$out" "^be[12] $N2\$" "node2's own curl to the LoadBalancer IP $lb: reaches an endpoint on node1"
    for where in in out; do
        out=$(pc2_t 10 "$where" curl -s --max-time 5 "http://$N2:30080/")
        assert_match "$out" '^be[12] 10\.244\.2\.21$' "pod pc2 on node2 ($where node2's cgroup) to $N2:30080: an endpoint on node1"
        out=$(pc2_t 10 "$where" curl -s --max-time 5 "http://$lb/")
        assert_match "$out" '^be[12] 10\.244\.2\.21$' "pod pc2 on node2 ($where node2's cgroup) to $lb:80: an endpoint on node1"
        out=$(pc2_t 30 "$where" "$PY" -c "$UDP_CLIENT_PY" "$N2" 30053 1 8)
        assert_match "$out" "^be[12] 10\.244\.2\.21:[0-9]+ from $N2:30053\$" "UDP from pc2 ($where node2's cgroup) to $N2:30053: answered from the address it used"
    done
    drops1=$(mn_drops "$(mn_stats node2)" no_local_endpoint)
    assert_eq "${drops0:-0}" "${drops1:-0}" "node2: no no_local_endpoint drop for its own traffic"
    flows1=$(mn_fe_stat "$(mn_stats node2)" web http "$N2" flows)
    assert_ge "$(_delta "${flows0:-0}" "${flows1:-0}")" 3 "node2 stats: flows of web's $N2:30080 count the node's own connections"
    # svcctl trace tells the two apart: from outside the local-only frontend
    # (dropped), from the node its view (every endpoint).
    out=$(svcctl_on node2 trace "$C:40000" "$N2:30080" -o json)
    assert_eq "drop no_local_endpoint outside" "$(jq -r '"\(.verdict.action) \(.verdict.dropReason) \(.frontend.view)"' <<<"$out")" \
        "node2: svcctl trace from outside"
    out=$(svcctl_on node2 trace 10.244.2.21:40000 "$N2:30080" --from node -o json)
    assert_eq "dnat node 2" "$(jq -r '"\(.verdict.action) \(.frontend.view) \(.backends | length)"' <<<"$out")" \
        "node2: svcctl trace --from node (the node view's two endpoints)"
    out=$(svcctl_on node2 trace 10.244.2.21:40000 "$N2:30080" --from node)
    assert_contains "$out" "this node's view" "node2: svcctl trace --from node's table names the view"
    out=$(svcctl_on node2 trace 10.244.2.21:40000 "$N2:30080" --from pod 2>&1)
    assert_contains "$out" 'error: --from "pod": expected outside' "svcctl trace --from with a wrong value"
}

run_test "local: via node1 the backend sees the client" test_via_node1
run_test "local: via node2 dropped as no_local_endpoint" test_via_node2_dropped
run_test "local: node2's own processes and pods reach endpoints elsewhere" test_from_node2_itself
run_test "local: healthCheckNodePort 200/2 on node1, 503/0 on node2" test_health_check
run_test "local: LoadBalancer IP announced by node1 only" test_lb_ip_local
finish
