#!/usr/bin/env bash
# Issue 3, two nodes: NodePort with externalTrafficPolicy Cluster. Both
# backends run on node1. Through node2 (no local backend) the flow is
# source-NATed to node2 and forwarded to node1; through node1 the backend
# sees the client's own address. Replies must come back from node:nodePort
# (the client has no route to the pods, so an untranslated reply is lost).
# The lab is untuned (multinode.sh): svclbd picks the tc datapath for the
# veth NICs. e2e.multinode_nodeport_xdp runs this file on the tuned lab with
# --external-datapath xdp, so the XDP forwarding path keeps its own run.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"
MANIFESTS=$(cd "$(dirname "$0")/manifests" && pwd)

mn_setup() {
    mn_test_up "mn-np-$$"
    mn_apply "$MANIFESTS/multinode-nodeport.yaml" || fatal_setup "apply multinode-nodeport.yaml"
}
mn_setup
N1=${MN_IP[node1]} N2=${MN_IP[node2]} C=${MN_IP[client]}

test_tcp_via_node2() {
    local out
    out=$(mn_curl client "http://$N2:30080/")
    assert_match "$out" "^be[12] $N2\$" "client -> node2:30080: a backend answers and saw node2's address (SNAT)"
}

test_tcp_via_node1() {
    local out
    out=$(mn_curl client "http://$N1:30080/")
    assert_match "$out" "^be[12] $C\$" "client -> node1:30080: a local backend answers and saw the client's address"
}

test_udp() {
    local out n
    for n in node2 node1; do
        out=$(mn_udp client "${MN_IP[$n]}" 30053 3)
        local want_src=${MN_IP[$n]}
        [[ $n == node1 ]] && want_src=$C
        assert_eq 3 "$(grep -cE "^be[12] $want_src:[0-9]+ from ${MN_IP[$n]}:30053\$" <<<"$out")" \
            "UDP client -> $n:30053: answers from $n:30053 where the backend saw $want_src (got: $(tr '\n' '|' <<<"$out"))"
    done
}

test_many_via_node2() {
    local out ok c1 c2
    # After 5 failures in a row the rest count as FAIL without trying.
    out=$(in_mn_t 90 client sh -c 'bad=0; for i in $(seq 20); do
        if [ $bad -ge 5 ]; then echo FAIL; continue; fi
        curl -s --max-time 3 "$1" && bad=0 || { echo FAIL; bad=$((bad + 1)); }; done' sh "http://$N2:30080/")
    ok=$(grep -cE "^be[12] $N2\$" <<<"$out")
    c1=$(grep -c '^be1 ' <<<"$out"); c2=$(grep -c '^be2 ' <<<"$out")
    assert_eq 20 "$ok" "20 sequential curls via node2:30080 answered with SNAT source (be1=$c1 be2=$c2; output: $(tr '\n' '|' <<<"$out"))"
    assert_ge "$c1" 1 "answers from be1 via node2"
    assert_ge "$c2" 1 "answers from be2 via node2"
}

test_stats_node2() {
    local js flows m lint got
    js=$(mn_stats node2)
    printf '%s\n' "$js" >"$TOPO_TMP/stats-node2.json"
    flows=$(mn_fe_stat "$js" web http "$N2" flows)
    assert_ge "$flows" 21 "node2 stats: flows of web/http on $N2:30080 (1 + 20 curls through node2)"
    assert_ge "$(mn_fe_stat "$js" web dns "$N2" flows)" 1 "node2 stats: flows of web/dns on $N2:30053"
    assert_ge "$(mn_fe_stat "$js" web http "$N2" replyPackets)" 21 \
        "node2 stats: replyPackets of web/http on $N2:30080 (reverse-translated at node2)"
    m=$(mn_metrics node2)
    assert_ne "" "$m" "GET /metrics in node2's netns" || return
    printf '%s\n' "$m" >"$TOPO_TMP/metrics-node2.txt"
    lint=$(promtool check metrics <"$TOPO_TMP/metrics-node2.txt" 2>&1)
    assert_eq 0 $? "promtool check metrics on node2: $lint"
    got=$(metric_sample "$m" svclb_service_flows_total namespace=default service=web port=http "vip=$N2:30080")
    assert_eq "$flows" "$got" "node2 svclb_service_flows_total{service=\"web\",port=\"http\",vip=\"$N2:30080\"} vs stats"
}

# Bulk transfers through node2 (remote backends) and node1 (local ones, whose
# replies svclb forwards from the pod side): segments larger than the
# MTU (TSO/GRO skbs of the veths) both ways, with the checksum state the
# veth peers hand over (an untuned lab: TX checksum offload on).
test_bulk() {
    local out size=3000000 n src
    head -c $size /dev/zero >"$TOPO_TMP/upload.bin"
    for n in node2 node1; do
        src=$N2; [[ $n == node1 ]] && src=$C
        out=$(in_mn_t 30 client curl -s --max-time 20 -o /dev/null -w '%{http_code} %{size_download}' "http://${MN_IP[$n]}:30080/bytes/$size")
        assert_eq "200 $size" "$out" "client downloads $size bytes via $n:30080"
        out=$(in_mn_t 30 client curl -s --max-time 20 --data-binary @"$TOPO_TMP/upload.bin" -H 'Expect:' "http://${MN_IP[$n]}:30080/")
        assert_match "$out" "^be[12] $src $size\$" "client uploads $size bytes via $n:30080 (the backend read them all)"
    done
}

# svcctl status says which datapath forwards on each NIC, and why.
test_status_datapath() {
    local js want=tc
    [[ $MN_EXTERNAL_DATAPATH == xdp ]] && want=xdp
    js=$(svcctl_on node2 status -o json)
    assert_eq "$want" "$(jq -r '.externalInterfaces[] | select(.ifname=="eth0") | .datapath' <<<"$js")" \
        "node2 status: datapath of eth0 (a veth, --external-datapath $MN_EXTERNAL_DATAPATH)"
    if [[ $want == tc ]]; then
        assert_contains "$(jq -r '.externalInterfaces[0].datapathReason' <<<"$js")" veth "node2 status: why tc"
        assert_eq none "$(jq -r '.externalInterfaces[0].xdpMode' <<<"$js")" "node2 status: no XDP on eth0"
        assert_eq 0 "$(jq -r '.externalInterfaces[0].xdpProgId' <<<"$js")" "node2 status: no XDP program id"
    fi
    assert_contains "$(svcctl_on node2 status)" "DATAPATH" "svcctl status table has a DATAPATH column"
}

test_delete_on_node2() {
    local out
    assert_ok "svcctl delete svc web on node2" svcctl_on node2 delete svc web
    out=$(mn_curl client "http://$N2:30080/" 3)
    assert_match "$out" '^FAIL' "client -> node2:30080 after the Service was deleted on node2"
    out=$(mn_curl client "http://$N1:30080/")
    assert_match "$out" "^be[12] $C\$" "node1:30080 still serves (node1 still has the Service)"
}

# A pod on node2 to node2's own NodePort, its process outside node2's cgroup
# (the tc path): the backend on node1 sees the pod, and its answer, whose
# restored source is node2's own address, reaches the pod (tc forwards it:
# the stack would drop it as a martian on node2's eth0).
test_pod_on_node2_to_own_nodeport() {
    local out
    mn_add_pod node2 pc2 10.244.2.21
    retry 50 0.2 eval "[[ \$(svcctl_on node2 status -o json | jq -r '[.interfaces[]? | select(.name==\"lxcpc2\" and .progId > 0)] | length') == 1 ]]" \
        || { _fail "node2's svclbd did not attach to lxcpc2"; return; }
    out=$(CG=/nonexistent in_pod_t 10 pc2 curl -s --max-time 5 "http://${MN_IP[node2]}:30080/")
    assert_match "$out" '^be[12] 10\.244\.2\.21$' "pod pc2 on node2 (tc path) to node2:30080: answered by a backend on node1"
    out=$(CG=/nonexistent in_pod_t 30 pc2 "$PY" -c "$UDP_CLIENT_PY" "${MN_IP[node2]}" 30053 1 8)
    assert_match "$out" "^be[12] 10\.244\.2\.21:[0-9]+ from ${MN_IP[node2]}:30053\$" "UDP from pc2 (tc path) to node2:30053: answered from the address it used"
}

run_test "nodeport: TCP via node2 (remote backends) is source-NATed to node2" test_tcp_via_node2
run_test "nodeport: TCP via node1 (local backends) keeps the client address" test_tcp_via_node1
run_test "nodeport: UDP via both nodes answered from node:30053" test_udp
run_test "nodeport: 20 connections via node2 all answered, both backends" test_many_via_node2
run_test "nodeport: bulk download and upload via both nodes (segments beyond the MTU)" test_bulk
run_test "nodeport: node2's stats and /metrics count the flows" test_stats_node2
run_test "nodeport: a pod on node2 reaches node2's own NodePort (tc path)" test_pod_on_node2_to_own_nodeport
run_test "nodeport: status shows each NIC's datapath and why" test_status_datapath
run_test "nodeport: deleted on node2, node2:30080 stops answering" test_delete_on_node2
finish
