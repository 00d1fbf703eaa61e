#!/usr/bin/env bash
# Daemon restart: SIGTERM leaves the dataplane pinned and attached, so
# established and new connections keep working while svclbd is down; the
# restarted daemon restores its state and keeps balancing.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup rst

LC_LOG=$TOPO_TMP/longconn.log
ok_count() { grep -c " $1 ok $1\$" "$LC_LOG"; }
progress() { retry 20 0.2 eval "(( \$(ok_count be1) > $1 && \$(ok_count be2) > $2 ))"; }

test_before() {
    longconn_start client "$LC_LOG" be1,be2 150
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived connection on be1"
    assert_contains "$(cat "$LC_LOG")" " be2 open" "long-lived connection on be2"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "before the restart"
    FLOWS_BEFORE=$(svc_stat "$(stats_json)" http flows)
    assert_ge "$FLOWS_BEFORE" 20 "flows before the restart"
}

test_daemon_down() {
    local a b
    a=$(ok_count be1); b=$(ok_count be2)
    [[ -n $DAEMON_PID ]] || { _fail "svclbd is not running"; return; }
    daemon_stop
    assert_eq 0 "$DAEMON_RC" "svclbd exit status on SIGTERM"
    assert_fails "svcctl status while svclbd is stopped" svcctl status
    check_both_answer "$(http_get_many client 30 "http://$VIP/")" 30 3 "new pod connections while svclbd is down"
    check_both_answer "$(http_get_many node 10 "http://$VIP/")" 10 1 "node connections while svclbd is down"
    assert_match "$(udp_query_pod client "$VIP" 5353 1 8)" "^be[12] from $VIP:5353\$" "UDP while svclbd is down"
    progress "$a" "$b" || _fail "long-lived connections stalled while svclbd is down:
$(tail -4 "$LC_LOG")"
}

test_restarted() {
    local a b out flows
    a=$(ok_count be1); b=$(ok_count be2)
    daemon_start && daemon_wait_ready || { _fail "svclbd did not come back"; return; }
    out=$(svcctl get svc 2>&1)
    assert_match "$out" $'(^|\n)web +ClusterIP +10\\.96\\.0\\.10' "get svc after restart"
    assert_contains "$(svcctl get ep 2>&1)" "10.244.1.1" "get ep after restart"
    check_both_answer "$(http_get_many client 40 "http://$VIP/")" 40 5 "after the restart"
    flows=$(svc_stat "$(stats_json)" http flows)
    assert_ge "$flows" $((FLOWS_BEFORE + 30 + 10 + 40)) "flows counted across the restart (pinned counters)"
    progress "$a" "$b" || _fail "long-lived connections stalled after the restart:
$(tail -4 "$LC_LOG")"
}

# After the long-lived connections are done: removing be2 would be allowed to
# break the be2 connection.
test_change_after_restart() {
    local out
    assert_ok "apply only-be1 endpoints after restart" svcctl apply -f "$(endpoints_yaml only-be1 "${POD_IP[be1]}")"
    out=$(http_get_many client 10 "http://$VIP/")
    assert_eq 10 "$(count_lines "$out" be1)" "after the restart, an endpoint change takes effect"
    svcctl apply -f "$SVCLB_EXAMPLES/web-endpoints.yaml" >/dev/null 2>&1
}

test_longconns_intact() {
    sleep 1
    longconn_stop
    assert_ge "$(ok_count be1)" 5 "requests served on the be1 connection"
    assert_ge "$(ok_count be2)" 5 "requests served on the be2 connection"
    assert_eq 0 "$(grep -c ' err ' "$LC_LOG")" "errors on the long-lived connections:
$(grep ' err ' "$LC_LOG" | head -3)"
    assert_eq 0 "$(grep -cE ' (be1 ok be2|be2 ok be1)$' "$LC_LOG")" "long-lived connection answered by the other backend"
}

run_test "restart: traffic before" test_before
run_test "restart: svclbd stopped, dataplane keeps working" test_daemon_down
run_test "restart: svclbd restarted, state restored" test_restarted
run_test "restart: long-lived connections never broke" test_longconns_intact
run_test "restart: endpoint change after the restart takes effect" test_change_after_restart
finish
