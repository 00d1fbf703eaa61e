#!/usr/bin/env bash
# Two ClusterIP Services selecting the same pods (issue 15, single-entry
# flows). Each backend address:port has ONE designated frontend (the first
# Service here: designations are sticky), whose new flows take one CT
# entry; the second Service's flows keep two. Whatever the layout, both
# Services' TCP and UDP answers must come back from their own ClusterIP:
# a wrong designation or a reply found through the other Service's entry
# would make curl fail or the UDP answer come from the wrong address. With
# --socket-lb=all the pods' flows are balanced at the socket (no CT entry);
# e2e.tc.shared_backends runs the same through the tc path, where the CT
# layout is checked too.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup shared
VIP2=10.96.0.20
N=40

ct_dump() { bpftool map dump pinned "$BPFFS/$1" -j 2>/dev/null || echo '[]'; }
# How many entries of both CT maps satisfy a jq filter on their value (all: none given).
ct_count() {  # [JQ_FILTER on .formatted.value]
    { ct_dump ct_v2; ct_dump ct_est_v2; } | jq -s "[.[][] | select(.formatted.value | ${1:-true})] | length"
}

test_second_service() {
    sed -e 's/^  name: web$/  name: web2/' -e "s/clusterIP: $VIP\$/clusterIP: $VIP2/" \
        "$SVCLB_EXAMPLES/web-service.yaml" >"$TOPO_TMP/web2-service.yaml"
    sed -e 's/^  name: web$/  name: web2/' "$SVCLB_EXAMPLES/web-endpoints.yaml" >"$TOPO_TMP/web2-endpoints.yaml"
    e2e_apply "$TOPO_TMP/web2-service.yaml" || return
    e2e_apply "$TOPO_TMP/web2-endpoints.yaml" || return
    local out
    out=$(svcctl get services 2>&1)
    assert_match "$out" "web2 .*$VIP2" "svcctl get services lists web2 on $VIP2"
}

test_tcp_both() {
    local ct0 out1 out2 ct1
    ct0=$(ct_count)
    out1=$(http_get_many client $N "http://$VIP/")
    out2=$(http_get_many client $N "http://$VIP2/")
    check_both_answer "$out1" $N 3 "client pod -> $VIP:80 (the designated Service)"
    check_both_answer "$out2" $N 3 "client pod -> $VIP2:80 (the same pods' other Service)"
    ct1=$(ct_count)
    if [[ $SVCLB_SOCKET_LB == all ]]; then
        assert_eq "$ct0" "$ct1" "CT entries made by pod connections balanced at the socket"
        return
    fi
    # tc path: web's flows one entry each (CT_F_SINGLE 0x10), web2's two.
    # A web2 connection that happens to reuse a web connection's client
    # port to the same backend takes that tuple over (deletes its single
    # entry): rare (two runs of ~40 ports in the ephemeral range), allowed
    # twice.
    local single
    single=$(ct_count '(.flags / 16 | floor) % 2 == 1')
    assert_ge "$single" $((N - 2)) "single-entry CT entries after $N connections to $VIP (designated)"
    assert_ge $N "$single" "single-entry CT entries: at most one per connection to $VIP"
    assert_eq $N "$(ct_count '.dir == 2')" "REPLY entries (one per connection to $VIP2)"
}

test_udp_both() {
    local out="" i
    for i in $(seq 10); do
        out+=$(udp_query_pod client "$VIP" 5353 1 8)$'\n'
        out+=$(udp_query_pod client "$VIP2" 5353 1 8)$'\n'
    done
    assert_eq 10 "$(grep -c "^be[12] from $VIP:5353\$" <<<"$out")" "UDP answers via $VIP:5353 come from $VIP"
    assert_eq 10 "$(grep -c "^be[12] from $VIP2:5353\$" <<<"$out")" "UDP answers via $VIP2:5353 come from $VIP2"
}

# The designated Service loses its endpoints: the other one is designated
# and keeps answering from its own address.
test_designation_moves() {
    printf 'apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\n  namespace: default\nsubsets: []\n' \
        >"$TOPO_TMP/web-none.yaml"
    e2e_apply "$TOPO_TMP/web-none.yaml" || return
    local out
    out=$(http_get_many client 20 "http://$VIP2/")
    check_both_answer "$out" 20 2 "client pod -> $VIP2:80 after web lost its endpoints"
    out=$(udp_query_pod client "$VIP2" 5353 1 8)
    assert_match "$out" "^be[12] from $VIP2:5353\$" "UDP via $VIP2 after web lost its endpoints"
}

run_test "shared: a second Service over the same pods" test_second_service
run_test "shared: TCP to both Services answered from their own VIP" test_tcp_both
run_test "shared: UDP to both Services answered from their own VIP" test_udp_both
run_test "shared: the other Service takes the designation" test_designation_moves
finish
