#!/usr/bin/env bash
# Endpoint changes: removing be2 sends all new connections to be1, re-adding
# it balances again; an established connection to be1 survives both changes
# (conntrack keeps flows on their backend), and so does the one to be2, the
# removed endpoint (kube-proxy's conntrack keeps a TCP flow whose endpoint
# left the Service; svclbd keeps its backend entry as "removed" until its
# connections end, then frees it). A deleted Service's connections go on
# the same way.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup epr

LC_LOG=$TOPO_TMP/longconn.log
be1_ok() { grep -c ' be1 ok be1$' "$LC_LOG"; }
# Wait (bounded) until the be1 connection made progress past COUNT.
be1_progress() { retry 20 0.2 eval "(( \$(be1_ok) > $1 ))"; }
be2_ok() { grep -c ' be2 ok be2$' "$LC_LOG"; }
be2_progress() { retry 20 0.2 eval "(( \$(be2_ok) > $1 ))"; }
# svcctl stats' state of be2's backend row of web:80 (empty: no row).
be2_state() {
    svcctl stats -o json | jq -r --arg ip "${POD_IP[be2]}" \
        '[.services[] | select(.servicePort == 80 and .protocol == "TCP") | .backends[]
          | select(.ip == $ip and .port == 8080) | .state] | first // empty'
}

test_longconn_open() {
    longconn_start client "$LC_LOG" be1,be2 120
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived connection landing on be1" || return
    assert_contains "$(cat "$LC_LOG")" " be2 open" "long-lived connection landing on be2"
    be1_progress 0 || _fail "no request on the be1 connection succeeded"
}

test_remove_be2() {
    local f n0 out
    f=$(endpoints_yaml web-only-be1 "${POD_IP[be1]}")
    n0=$(be1_ok)
    local n2; n2=$(be2_ok)
    local t0 t1 end
    t0=$(date +%s%N)
    assert_ok "apply Endpoints with only be1" svcctl apply -f "$f"
    t1=$(date +%s%N)
    # status reports when that apply's map sync ended (svclbd's wall clock).
    end=$(svcctl status -o json | jq -r '.sync.lastEndUnixNs')
    assert_eq yes "$( ((end >= t0 && end <= t1)) 2>/dev/null && echo yes || echo "no: $end not in [$t0, $t1]")" \
        "status sync.lastEndUnixNs within the apply"
    # flow_filter_v1 is in use (rebuilt at start): every answer in this
    # suite went through its slots.
    assert_eq "true 1" "$(svcctl status -o json | jq -r '"\(.flowFilter.valid) \(if .flowFilter.rebuilds >= 1 then 1 else 0 end)"')" \
        "status flowFilter valid and rebuilt"
    out=$(http_get_many client 30 "http://$VIP/")
    assert_eq 30 "$(count_lines "$out" be1)" "new curls answered by be1 after be2 was removed (got: $(sort <<<"$out" | uniq -c | xargs))"
    assert_not_contains "$(svcctl get ep 2>&1)" "${POD_IP[be2]}" "get ep after removing be2"
    be1_progress "$n0" || _fail "the long-lived connection to be1 stopped working after be2 was removed:
$(tail -5 "$LC_LOG")"
    be2_progress "$n2" || _fail "the long-lived connection to be2 stopped working after be2 was removed (kube-proxy keeps it):
$(tail -5 "$LC_LOG")"
    if [[ $SVCLB_SOCKET_LB != all ]]; then
        # The tc path: the flow's conntrack entry names be2's backend entry,
        # kept as "removed" while the connection lives.
        assert_eq removed "$(be2_state)" "svcctl stats: be2's state while its connection lives"
    fi
}

test_readd_be2() {
    local n0 out
    n0=$(be1_ok)
    assert_ok "re-apply Endpoints with be1 and be2" svcctl apply -f "$SVCLB_EXAMPLES/web-endpoints.yaml"
    out=$(http_get_many client 40 "http://$VIP/")
    check_both_answer "$out" 40 5 "after re-adding be2"
    be1_progress "$n0" || _fail "the long-lived connection to be1 stopped working after be2 was re-added:
$(tail -5 "$LC_LOG")"
}

test_longconn_be1_intact() {
    sleep 1
    longconn_stop
    assert_eq 0 "$(grep -c ' be1 err ' "$LC_LOG")" "errors on the long-lived be1 connection"
    assert_eq 0 "$(grep -c ' be1 ok be2$' "$LC_LOG")" "be1 connection answered by be2 (flow moved backend)"
    assert_ge "$(be1_ok)" 5 "requests served on the be1 connection"
    assert_eq 0 "$(grep -c ' be2 err ' "$LC_LOG")" "errors on the long-lived be2 connection (its endpoint was removed and re-added)"
    assert_eq 0 "$(grep -c ' be2 ok be1$' "$LC_LOG")" "be2 connection answered by be1 (flow moved backend)"
}

# A removed endpoint's entry goes once its connections ended: closed ones
# (FIN: the closing lifetime, 10 s) and none left.
test_removed_freed_after_close() {
    local f
    longconn_start client "$LC_LOG" be2 60
    assert_contains "$(cat "$LC_LOG")" " be2 open" "a connection landing on be2" || return
    f=$(endpoints_yaml web-only-be1 "${POD_IP[be1]}")
    assert_ok "apply Endpoints with only be1 again" svcctl apply -f "$f"
    local n2; n2=$(be2_ok)
    be2_progress "$n2" || _fail "the be2 connection stopped working after be2 was removed again"
    if [[ $SVCLB_SOCKET_LB != all ]]; then
        sleep 3  # several of the daemon's drain walks: the live flow keeps it
        assert_eq removed "$(be2_state)" "be2 kept while its connection lives"
        # A restarted daemon adopts the removed entry from the maps.
        daemon_stop; daemon_start && daemon_wait_ready || { _fail "svclbd did not restart"; return; }
        n2=$(be2_ok)
        be2_progress "$n2" || _fail "the be2 connection stopped working after a restart"
        sleep 3
        assert_eq removed "$(be2_state)" "be2 still kept after the restart"
    fi
    longconn_stop
    retry 160 0.25 eval '[[ -z "$(be2_state)" ]]' \
        || _fail "be2's backend entry still there 40 s after its connection closed: state $(be2_state)"
    out=$(http_get_many client 10 "http://$VIP/")
    assert_eq 10 "$(count_lines "$out" be1)" "new curls answered by be1 after be2 was freed"
    assert_ok "re-apply Endpoints with be1 and be2" svcctl apply -f "$SVCLB_EXAMPLES/web-endpoints.yaml"
}

# svcctl status' deleted Services whose endpoints are held: their names (a
# restarted daemon knows only their frontend address).
draining() {
    svcctl status -o json |
        jq -r '[.draining.deletedServices[] | if .name == "" then .frontend else .name end] | join(",")'
}

# A deleted Service's connections go on (kube-proxy's conntrack keeps
# translating them); new ones find no Service; once they closed, its
# frontend and backend entries go.
test_deleted_service() {
    LC_LOG=$TOPO_TMP/longconn-deleted.log
    longconn_start client "$LC_LOG" be1,be2 90
    assert_contains "$(cat "$LC_LOG")" " be1 open" "a connection landing on be1" || return
    assert_contains "$(cat "$LC_LOG")" " be2 open" "a connection landing on be2" || return
    local n1 n2
    n1=$(be1_ok); n2=$(be2_ok)
    assert_eq 'service "web" deleted' "$(svcctl delete svc web 2>&1)" "svcctl delete svc web" || return
    assert_not_contains "$(svcctl get svc 2>&1)" "web" "get svc after the delete"
    be1_progress "$n1" || _fail "the be1 connection stopped working after its Service was deleted (kube-proxy keeps it):
$(tail -5 "$LC_LOG")"
    be2_progress "$n2" || _fail "the be2 connection stopped working after its Service was deleted:
$(tail -5 "$LC_LOG")"
    local out
    out=$(in_pod_t 10 client curl -s -m 2 "http://$VIP/" 2>&1)
    assert_not_contains "$out" "be" "a new connection to the deleted Service's ClusterIP is not answered"
    if [[ $SVCLB_SOCKET_LB != all ]]; then
        # The tc path holds the backend entries the flows' CT entries name.
        sleep 3  # several drain walks: the live flows keep them
        assert_eq web "$(draining)" "svcctl status: the deleted Service draining"
        assert_eq 2 "$(svcctl status -o json | jq -r '.draining.heldEndpoints')" "held endpoints"
        assert_contains "$(svcctl status)" "Draining:" "svcctl status table"
        out=$(metrics)
        assert_contains "$out" $'\nsvclb_draining_endpoints 2\n' "/metrics: held endpoints"
        assert_contains "$out" $'\nsvclb_draining_deleted_frontends 1\n' "/metrics: the deleted frontend"
        n2=$(be2_ok)
        be2_progress "$n2" || _fail "the be2 connection stopped working while draining"
        # A restarted daemon finds the held entries of no Service in the
        # maps and keeps them under the address their flows were sent to.
        daemon_stop; daemon_start && daemon_wait_ready || { _fail "svclbd did not restart"; return; }
        n1=$(be1_ok); n2=$(be2_ok)
        be1_progress "$n1" || _fail "the be1 connection stopped working after a restart while draining"
        be2_progress "$n2" || _fail "the be2 connection stopped working after a restart while draining"
        sleep 3
        assert_eq "$VIP:80" "$(draining)" "svcctl status after the restart: the deleted Service's frontend draining"
        assert_match "$(svcctl status)" "Draining:.*deleted: $VIP:80/TCP" "svcctl status table after the restart"
    fi
    longconn_stop
    assert_eq 0 "$(grep -c ' err ' "$LC_LOG")" "errors on the deleted Service's connections"
    retry 160 0.25 eval '[[ -z "$(draining)" ]]' \
        || _fail "the deleted Service still draining 40 s after its connections closed: $(draining)"
    assert_eq 0 "$(svcctl status -o json | jq -r '.draining.heldEndpoints')" "held endpoints after the drain"
    assert_contains "$(metrics)" $'\nsvclb_draining_deleted_frontends 0\n' "/metrics after the drain"
    # Made again: served as before.
    assert_ok "re-apply web-service.yaml" svcctl apply -f "$SVCLB_EXAMPLES/web-service.yaml"
    out=$(http_get_many client 20 "http://$VIP/")
    check_both_answer "$out" 20 2 "the Service made again"
}

run_test "endpoints: long-lived connections to be1 and be2" test_longconn_open
run_test "endpoints: without be2 all 30 new curls go to be1" test_remove_be2
run_test "endpoints: be2 re-added, both answer again" test_readd_be2
run_test "endpoints: the be1 and be2 connections kept working on their backends" test_longconn_be1_intact
run_test "endpoints: a removed endpoint is freed once its connection closed" test_removed_freed_after_close
run_test "endpoints: a deleted Service's connections go on until they close" test_deleted_service
finish
