#!/usr/bin/env bash
# ClusterIP from the node itself (socket-level balancing in the test cgroup):
# TCP reaches both backends, UDP gets a backend's answer from the VIP.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup node

N=30
test_node_tcp() {
    local before after out
    before=$(stats_json)
    out=$(http_get_many node $N "http://$VIP/")
    check_both_answer "$out" $N 4 "node (cgroup $CG) -> $VIP:80"
    after=$(stats_json)
    assert_eq $N "$(svc_delta "$before" "$after" http flows)" "stats flows for web/http after $N node curls"
}

test_node_udp() {
    local out="" i
    for i in $(seq 24); do out+=$(udp_query_node "$VIP" 5353 2 8)$'\n'; done
    out=${out%$'\n'}
    assert_eq 48 "$(grep -c "^be[12] from $VIP:5353\$" <<<"$out")" \
        "UDP replies (from $VIP:5353) to 24 node sockets x 2 datagrams:
$out"
    assert_ge "$(grep -c "^be1 " <<<"$out")" 1 "node UDP answers from be1"
    assert_ge "$(grep -c "^be2 " <<<"$out")" 1 "node UDP answers from be2"
}

# Connected UDP socket (connect() + send()): socat asks once and prints the answer.
test_node_udp_connected() {
    local out
    out=$(echo q | in_node_cg_t 10 socat -T2 - "UDP4:$VIP:5353")
    assert_match "$out" '^be[12]$' "socat (connected UDP socket) from the node to $VIP:5353"
}

run_test "node: TCP to $VIP:80 from the node reaches both backends" test_node_tcp
run_test "node: UDP to $VIP:5353 from the node (unconnected socket)" test_node_udp
run_test "node: UDP to $VIP:5353 from the node (connected socket)" test_node_udp_connected
finish
