#!/usr/bin/env bash
# Issue 3, two nodes: NodePort with externalTrafficPolicy Cluster. Both
# backends run on node1. Through node2 (no local backend) the flow is
# source-NATed to node2 and forwarded to node1; through node1 the backend
# sees the client's own address. Replies must come back from node:nodePort
# (the client has no route to the pods, so an untranslated reply is lost).
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

test_delete_on_node2() {
    local out
    assert_ok "svcctl delete svc web on node2" svcctl_on node2 delete svc web
    out=$(mn_curl client "http://$N2:30080/" 3)
    assert_match "$out" '^FAIL' "client -> node2:30080 after the Service was deleted on node2"
    out=$(mn_curl client "http://$N1:30080/")
    assert_match "$out" "^be[12] $C\$" "node1:30080 still serves (node1 still has the Service)"
}

run_test "nodeport: TCP via node2 (remote backends) is source-NATed to node2" test_tcp_via_node2
run_test "nodeport: TCP via node1 (local backends) keeps the client address" test_tcp_via_node1
run_test "nodeport: UDP via both nodes answered from node:30053" test_udp
run_test "nodeport: 20 connections via node2 all answered, both backends" test_many_via_node2
run_test "nodeport: node2's stats and /metrics count the flows" test_stats_node2
run_test "nodeport: deleted on node2, node2:30080 stops answering" test_delete_on_node2
finish
