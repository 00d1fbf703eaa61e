#!/usr/bin/env bash
# Issue 16, two nodes over IPv6 (the MN_V6=1 lab of multinode.sh: the LAN
# fd00:77::/64, pods fd00:10:244:1::11/::12 on node1). A dual-stack NodePort
# through node2 is source-NATed to node2's IPv6 address and forwarded to
# node1; through node1 the backend sees the client's own address; replies
# come back from node:nodePort (the client has no route to the pods).
# externalTrafficPolicy: Local, an IPv6 LoadBalancer IP from a MetalLB pool
# reached by NDP alone (one node answers; unsolicited NAs on the LAN), and
# IPv6 loadBalancerSourceRanges; a node IPv6 address added at run time gets
# the NodePorts; healthCheckNodePort over IPv6. The lab is untuned: svclbd uses its tc path
# on the veth NICs; e2e.multinode_v6_xdp runs this file on the tuned lab with
# --external-datapath xdp.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
MN_V6=1
source "$(dirname "$0")/../testlib/multinode.sh"
MANIFESTS=$(cd "$(dirname "$0")/manifests" && pwd)

mn_setup() {
    mn_test_up "mn-v6-$$"
    NDP_LOG=$TOPO_TMP/ndp.txt
    if command -v tcpdump >/dev/null; then
        timeout 240 nsenter --net="/run/netns/$(mn_ns lan)" tcpdump -lnei br0 icmp6 >"$NDP_LOG" 2>&1 &
        TOPO_PIDS+=("$!")
        retry 50 0.1 grep -qs listening "$NDP_LOG" || log "tcpdump did not start: $(cat "$NDP_LOG")"
    fi
    mn_apply "$MANIFESTS/multinode-v6.yaml" || fatal_setup "apply multinode-v6.yaml"
}
mn_setup
N1=${MN_IP6[node1]} N2=${MN_IP6[node2]} C=${MN_IP6[client]} C2=${MN_IP6[client2]}
NODE_MACS="$(mn_mac node1) $(mn_mac node2)"

test_nodeport_via_node2() {
    local out
    out=$(mn_curl client "http://[$N2]:30080/")
    assert_match "$out" "^be[12] $N2\$" "client -> [$N2]:30080: a backend answers and saw node2's IPv6 address (SNAT)"
    out=$(mn_curl client "http://${MN_IP[node2]}:30080/")
    assert_match "$out" "^be[12] ${MN_IP[node2]}\$" "the dual-stack Service's IPv4 NodePort through node2 still works"
}

test_nodeport_via_node1() {
    local out
    out=$(mn_curl client "http://[$N1]:30080/")
    assert_match "$out" "^be[12] $C\$" "client -> [$N1]:30080: a local backend saw the client's own address"
}

test_udp6() {
    local out n want
    for n in node2 node1; do
        want=${MN_IP6[$n]}
        [[ $n == node1 ]] && want=$C
        out=$(mn_udp client "${MN_IP6[$n]}" 30053 3)
        assert_eq 3 "$(grep -cE "^be[12] $want:[0-9]+ from ${MN_IP6[$n]}:30053\$" <<<"$out")" \
            "UDP6 client -> [${MN_IP6[$n]}]:30053: 3 answers from the node address, backend saw $want (got: $out)"
    done
}

test_local_policy() {
    local out
    out=$(mn_curl client "http://[$N1]:30081/")
    assert_match "$out" "^be[12] $C\$" "eTP=Local via node1 (local backends): client address kept"
    out=$(mn_curl client "http://[$N2]:30081/" 3)
    assert_match "$out" '^FAIL' "eTP=Local via node2 (no local endpoint) must not be answered"
    # node2's own processes reach the endpoints elsewhere (kube-proxy's
    # short-circuit; its socket hooks and the IPv6 node view).
    out=$(timeout 10 sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec nsenter --net="/run/netns/$0" "$@"' \
        "$(mn_ns node2)" "$(mn_cg node2)" curl -s --max-time 5 "http://[$N2]:30081/")
    assert_match "$out" "^be[12] $N2\$" "eTP=Local: node2's own curl to [$N2]:30081 reaches an endpoint on node1"
}

test_lb_by_ndp() {
    local out mac
    LB_IP=$(mn_lb_ip node1 lb6)
    assert_match "$LB_IP" '^fd00:77::2(0[0-9a-f]|10)$' "node1: lb6 got an IPv6 address from pool lan6" || return
    assert_eq "$LB_IP" "$(mn_lb_ip node2 lb6)" "node2 assigned lb6 the same address"
    assert_contains "$(svcctl_on node1 get svc lb6)" "$LB_IP" "svcctl get svc lb6 shows the EXTERNAL-IP"
    assert_not_contains "$(in_mn client ip -6 route get "$LB_IP")" " via " "client reaches $LB_IP on-link (its /64), through no router"
    out=$(mn_curl client "http://[$LB_IP]/")
    assert_match "$out" '^be[12] ' "client -> [$LB_IP]:80 (only its /64 and NDP)"
    mac=$(mn_neigh_mac client "$LB_IP")
    assert_match "$NODE_MACS" "(^| )${mac:-none}( |\$)" \
        "client resolved $LB_IP to a node's eth0 MAC (node1/node2: $NODE_MACS; neigh: '$(in_mn client ip -6 neigh show "$LB_IP")')"
    out=$(mn_udp client "$LB_IP" 53 1)
    assert_match "$out" "^be[12] .* from $LB_IP:53\$" "UDP6 client -> [$LB_IP]:53 answered from $LB_IP:53"
}

test_ndp_on_lan() {
    command -v tcpdump >/dev/null || { log "no tcpdump: skipped"; return 0; }
    local na answerers
    # An unsolicited NA: to ff02::1, for the address (tcpdump: "neighbor advertisement, tgt is X").
    na=$(grep -E "> ff02::1: .*neighbor advertisement, tgt is $LB_IP" "$NDP_LOG")
    assert_ne "" "$na" "an unsolicited NA for $LB_IP on the LAN (capture: $NDP_LOG:
$(grep -F "$LB_IP" "$NDP_LOG" | head -5))"
    # Solicited answers for the address come from one node only.
    answerers=$(grep -E "neighbor advertisement, tgt is $LB_IP" "$NDP_LOG" | awk '{print $2}' | sort -u | wc -l)
    assert_eq 1 "$answerers" "distinct MACs advertising $LB_IP: $(grep -E "tgt is $LB_IP" "$NDP_LOG" | awk '{print $2}' | sort -u | tr '\n' ' ')"
}

test_source_ranges() {
    local sr out before after
    sr=$(mn_lb_ip node1 lb6-sr)
    [[ $sr != "<pending>" ]] || { _fail "no address for lb6-sr"; return; }
    out=$(mn_curl client "http://[$sr]/")
    assert_match "$out" '^be[12] ' "client ($C, inside fd00:77::100/128) -> lb6-sr [$sr]:80"
    before=$(mn_drops_sum source_range)
    out=$(mn_curl client2 "http://[$sr]/" 3)
    assert_match "$out" '^FAIL' "client2 ($C2, outside loadBalancerSourceRanges) -> lb6-sr must fail"
    after=$(mn_drops_sum source_range)
    assert_ge "$(_delta "$before" "$after")" 1 "drops{reason=source_range} increased (before '$before', after '$after')"
    out=$(mn_curl client2 "http://[$LB_IP]/")
    assert_match "$out" '^be[12] ' "client2 still reaches lb6 (no source ranges)"
}

# A node IPv6 address added while svclbd runs carries the NodePorts too
# (svclbd follows RTM_NEWADDR for IPv6 as for IPv4), and goes with it.
test_new_node_address() {
    local extra=fd00:77::52
    _answers_on_extra() { [[ $(mn_curl client "http://[$extra]:30080/" 2) =~ ^be[12]\ $extra$ ]]; }
    _extra_gone() { ! svcctl_on node2 stats -o json | grep -q "\"$extra\""; }
    in_mn node2 ip -6 addr add "$extra/64" dev eth0 nodad
    retry 50 0.2 _answers_on_extra
    assert_match "$(mn_curl client "http://[$extra]:30080/")" "^be[12] $extra\$" \
        "a NodePort on node2's new IPv6 address $extra (SNAT to it)"
    in_mn node2 ip -6 addr del "$extra/64" dev eth0
    retry 50 0.2 _extra_gone
    assert_not_contains "$(svcctl_on node2 stats -o json)" "\"$extra\"" "its frontends go with the address"
}

# An externalTrafficPolicy: Local LoadBalancer's healthCheckNodePort
# answers over IPv6 (a load balancer probes the address it balances to):
# node1 has the local endpoints (200), node2 none (503).
test_health_check_v6() {
    local f=$TOPO_TMP/hc6.yaml code n want
    cat >"$f" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: hc6
  namespace: default
spec:
  type: LoadBalancer
  ipFamilies: [IPv6]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32106
  selector:
    app: none
  ports:
  - name: http
    port: 8106
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: hc6-ipv6
  namespace: default
  labels:
    kubernetes.io/service-name: hc6
addressType: IPv6
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
- addresses: ["fd00:10:244:1::11"]
  nodeName: node1
YAML
    mn_apply "$f" || { _fail "apply hc6"; return; }
    for n in node1 node2; do
        code=$(in_mn_t 10 client curl -s -o /dev/null -w '%{http_code}' -m 3 "http://[${MN_IP6[$n]}]:32106/healthz")
        [[ $n == node1 ]] && want=200 || want=503
        assert_eq "$want" "$code" "healthCheckNodePort over IPv6 on $n ([${MN_IP6[$n]}]:32106)"
    done
}

test_stats() {
    local st
    st=$(mn_stats node2)
    assert_ge "$(mn_fe_stat "$st" web6 http "$N2" flows)" 1 "svcctl stats on node2 counts flows of [$N2]:30080 (web6/http)"
}

run_test "v6: dual-stack NodePort via node2 (SNAT to node2's IPv6 address)" test_nodeport_via_node2
run_test "v6: NodePort via node1 (local backends, client address kept)" test_nodeport_via_node1
run_test "v6: UDP NodePort via both nodes" test_udp6
run_test "v6: externalTrafficPolicy Local" test_local_policy
run_test "v6: LoadBalancer IP from the pool reached by NDP alone" test_lb_by_ndp
run_test "v6: unsolicited NA and one answering node on the LAN" test_ndp_on_lan
run_test "v6: loadBalancerSourceRanges admit client, drop client2" test_source_ranges
run_test "v6: per-frontend counters" test_stats
run_test "v6: a node IPv6 address added at run time gets the NodePorts" test_new_node_address
run_test "v6: healthCheckNodePort answers over IPv6" test_health_check_v6
finish
