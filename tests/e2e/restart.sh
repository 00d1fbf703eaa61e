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

# A restart that selects fewer interfaces: svclb's programs leave the ones
# no longer selected (an --iface and an --external-iface of the run before),
# the selected pod interfaces keep theirs and traffic goes on.
svclb_on() {  # svclb_on IF: an svclb tc filter or XDP program is on IF (node netns)
    { in_node tc filter show dev "$1" ingress; in_node tc filter show dev "$1" egress; } 2>/dev/null |
        grep -q svclb_ && return 0
    in_node ip -d link show dev "$1" 2>/dev/null | grep -q "prog/xdp"
}
test_deselected_interfaces() {
    in_node ip link add svx0 type veth peer name svx1 || { _fail "veth svx0/svx1"; return; }
    in_node ip link set svx0 up && in_node ip link set svx1 up
    daemon_stop
    daemon_start --iface svx0 --external-iface svx1 && daemon_wait_ready ||
        { _fail "svclbd with --iface svx0 --external-iface svx1 did not start"; return; }
    assert_ok "svx0 has svclb's tc programs" svclb_on svx0
    assert_ok "svx1 has svclb's programs (external NIC)" svclb_on svx1
    daemon_stop
    daemon_start && daemon_wait_ready || { _fail "svclbd did not come back"; return; }
    assert_fails "svx0 (no longer --iface) keeps no svclb program" svclb_on svx0
    assert_fails "svx1 (no longer --external-iface) keeps no svclb program" svclb_on svx1
    assert_contains "$(cat "$DAEMON_LOG")" "svx0: not selected" "the log names svx0"
    assert_contains "$(cat "$DAEMON_LOG")" "svx1: not selected" "the log names svx1"
    assert_ok "lxcclient keeps its program" svclb_on lxcclient
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "after the deselecting restart"
    in_node ip link del svx0 2>/dev/null || true
}

# --flow-filter off: status says the filter is off and why, and answers go
# through the full conntrack path; the next restart with the default turns
# it on again.
ff_status() { svcctl status -o json | jq -r '"\(.flowFilter.valid) \(.flowFilter.off)"'; }
test_flow_filter_off() {
    daemon_stop
    daemon_start --flow-filter off && daemon_wait_ready ||
        { _fail "svclbd --flow-filter off did not start"; return; }
    assert_eq "false --flow-filter off" "$(ff_status)" "status flowFilter {valid, off} with --flow-filter off"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "with the flow filter off"
    assert_match "$(udp_query_pod client "$VIP" 5353 1 8)" "^be[12] from $VIP:5353\$" "UDP with the flow filter off"
    daemon_stop
    daemon_start && daemon_wait_ready || { _fail "svclbd did not come back"; return; }
    assert_eq "true " "$(ff_status)" "status flowFilter {valid, off} after a default restart"
}

run_test "restart: traffic before" test_before
run_test "restart: svclbd stopped, dataplane keeps working" test_daemon_down
run_test "restart: svclbd restarted, state restored" test_restarted
run_test "restart: long-lived connections never broke" test_longconns_intact
run_test "restart: endpoint change after the restart takes effect" test_change_after_restart
run_test "restart: interfaces no longer selected lose svclb's programs" test_deselected_interfaces
run_test "restart: --flow-filter off shows in status and traffic goes on" test_flow_filter_off
finish
