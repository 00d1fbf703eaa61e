#!/usr/bin/env bash
# Issue 3, two nodes: LoadBalancer addresses from a MetalLB IPAddressPool,
# announced on the LAN by ARP from the nodes' XDP program (the client knows
# nothing but its /24), loadBalancerSourceRanges, and externalIPs (routed to
# a node by the client, never answered by ARP). Backends run on node1.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"
MANIFESTS=$(cd "$(dirname "$0")/manifests" && pwd)
EXT_IP=192.168.77.50

mn_setup() {
    mn_test_up "mn-lb-$$"
    # Every ARP on the LAN from now on (gratuitous ones come with the
    # announcement, so start before the Services exist).
    ARP_LOG=$TOPO_TMP/arp.txt
    if command -v tcpdump >/dev/null; then
        timeout 240 nsenter --net="/run/netns/$(mn_ns lan)" tcpdump -lnei br0 arp >"$ARP_LOG" 2>&1 &
        TOPO_PIDS+=("$!")
        retry 50 0.1 grep -qs listening "$ARP_LOG" || log "tcpdump did not start: $(cat "$ARP_LOG")"
    fi
    mn_apply "$MANIFESTS/multinode-pool.yaml" || fatal_setup "apply multinode-pool.yaml"
    mn_apply "$MANIFESTS/multinode-lb.yaml" || fatal_setup "apply multinode-lb.yaml"
}
mn_setup
C=${MN_IP[client]} C2=${MN_IP[client2]}
NODE_MACS="$(mn_mac node1) $(mn_mac node2)"

test_external_ip_assigned() {
    local ip2 table
    LB_IP=$(mn_lb_ip node1 web)
    assert_match "$LB_IP" '^192\.168\.77\.2(0[0-9]|10)$' "node1: web got an address from pool lan" || return
    ip2=$(mn_lb_ip node2 web)
    assert_eq "$LB_IP" "$ip2" "node2 assigned web the same address as node1"
    table=$(svcctl_on node1 get svc web)
    assert_contains "$table" "$LB_IP" "svcctl get svc web shows the EXTERNAL-IP"
    SR_IP=$(mn_lb_ip node1 web-sr)
    assert_match "$SR_IP" '^192\.168\.77\.2(0[0-9]|10)$' "node1: web-sr got an address from pool lan"
    assert_eq "$SR_IP" "$(mn_lb_ip node2 web-sr)" "node2 assigned web-sr the same address as node1"
}

test_lb_by_arp() {
    [[ -n ${LB_IP:-} && $LB_IP != "<pending>" ]] || { _fail "no LoadBalancer address"; return; }
    assert_not_contains "$(in_mn client ip route get "$LB_IP")" " via " "client reaches $LB_IP on-link (its /24), through no router"
    local out mac
    out=$(mn_curl client "http://$LB_IP/")
    assert_match "$out" '^be[12] ' "client -> $LB_IP:80 (only its /24 and ARP)"
    mac=$(mn_neigh_mac client "$LB_IP")
    assert_match "$NODE_MACS" "(^| )${mac:-none}( |\$)" \
        "client resolved $LB_IP to a node's eth0 MAC (node1/node2: $NODE_MACS; neigh: '$(in_mn client ip neigh show "$LB_IP")')"
    out=$(mn_udp client "$LB_IP" 53 1)
    assert_match "$out" "^be[12] .* from $LB_IP:53\$" "UDP client -> $LB_IP:53 answered from $LB_IP:53"
}

test_arp_on_lan() {
    command -v tcpdump >/dev/null || { log "no tcpdump: skipped"; return 0; }
    local garp
    # Gratuitous: a request "who-has X tell X" or a broadcast reply for X.
    garp=$(grep -E "who-has $LB_IP (\([0-9a-f:]+\) )?tell $LB_IP,|ff:ff:ff:ff:ff:ff, .*Reply $LB_IP is-at" "$ARP_LOG")
    assert_ne "" "$garp" "a gratuitous ARP for $LB_IP on the LAN (capture: $ARP_LOG:
$(grep -F "$LB_IP" "$ARP_LOG" | head -5))"
}

# MetalLB L2 elects ONE node per address. If every node announces and
# answers, clients' neighbour entries flip between nodes with each
# (gratuitous) ARP, and a flow moved mid-connection to the other node is
# reset (its conntrack and SNAT state live on the first node).
test_one_announcer() {
    command -v tcpdump >/dev/null || { log "no tcpdump: skipped"; return 0; }
    local answerers
    answerers=$(grep -E "Reply $LB_IP is-at" "$ARP_LOG" | grep -oE 'is-at ([0-9a-f:]{17})' | sort -u | wc -l)
    assert_eq 1 "$answerers" "distinct MACs answering ARP for $LB_IP: $(grep -E "Reply $LB_IP is-at" "$ARP_LOG" | grep -oE 'is-at [0-9a-f:]{17}' | sort -u | tr '\n' ' ')"
}

test_source_ranges() {
    [[ -n ${SR_IP:-} && $SR_IP != "<pending>" ]] || { _fail "no address for web-sr"; return; }
    local out before after
    out=$(mn_curl client "http://$SR_IP/")
    assert_match "$out" '^be[12] ' "client ($C, inside 192.168.77.100/32) -> web-sr $SR_IP:80"
    before=$(mn_drops_sum source_range)
    out=$(mn_curl client2 "http://$SR_IP/" 3)
    assert_match "$out" '^FAIL' "client2 ($C2, outside loadBalancerSourceRanges) -> web-sr $SR_IP:80 must fail"
    after=$(mn_drops_sum source_range)
    assert_ge "$(_delta "$before" "$after")" 1 "drops{reason=source_range} on the nodes increased (before '$before', after '$after')"
    out=$(mn_curl client2 "http://$LB_IP/")
    assert_match "$out" '^be[12] ' "client2 still reaches web ($LB_IP, no source ranges)"
}

test_external_ips() {
    local out neigh
    out=$(mn_curl client "http://$EXT_IP/" 3)
    assert_match "$out" '^FAIL' "client -> $EXT_IP:80 without a route: nobody answers ARP for an externalIP"
    neigh=$(in_mn client ip neigh show "$EXT_IP")
    assert_not_contains "$neigh" "lladdr" "client's neighbour entry for $EXT_IP stays unresolved"
    in_mn client ip route add "$EXT_IP/32" via "${MN_IP[node1]}"
    out=$(mn_curl client "http://$EXT_IP/")
    assert_match "$out" "^be[12] $C\$" "client -> $EXT_IP:80 routed via node1 (local backends, client address kept)"
    in_mn client ip route replace "$EXT_IP/32" via "${MN_IP[node2]}"
    out=$(mn_curl client "http://$EXT_IP/")
    assert_match "$out" "^be[12] ${MN_IP[node2]}\$" "client -> $EXT_IP:80 routed via node2 (source-NATed to node2)"
    in_mn client ip route del "$EXT_IP/32"
}

run_test "lb: pool addresses assigned, the same on both nodes, shown by get svc" test_external_ip_assigned
run_test "lb: client reaches the LoadBalancer IP by ARP alone" test_lb_by_arp
run_test "lb: gratuitous ARP for the LoadBalancer IP seen on the LAN" test_arp_on_lan
run_test "lb: exactly one node answers ARP for the LoadBalancer IP" test_one_announcer
run_test "lb: loadBalancerSourceRanges admit client, drop client2" test_source_ranges
run_test "lb: externalIPs routed, never ARP-answered" test_external_ips
finish
