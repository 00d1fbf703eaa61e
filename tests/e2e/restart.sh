#!/usr/bin/env bash
# Daemon restart: SIGTERM leaves the dataplane pinned and attached, so
# established and new connections keep working while svclbd is down; the
# restarted daemon restores its state and keeps balancing. The tc programs'
# attach modes (--tc-attach): a tcx restart swaps the programs in the same
# links, an upgrade from and a downgrade to legacy filters, auto's fallback.
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
    check_both_answer "$(http_get_many node 20 "http://$VIP/")" 20 2 "node connections while svclbd is down"
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
svclb_on() {  # svclb_on IF: an svclb tc filter, tcx link or XDP program is on IF (node netns)
    legacy_on "$1" || tcx_on "$1" 1 && return 0
    in_node ip -d link show dev "$1" 2>/dev/null | grep -q "prog/xdp"
}
legacy_on() {  # legacy_on IF: a legacy tc filter of svclb on IF
    { in_node tc filter show dev "$1" ingress; in_node tc filter show dev "$1" egress; } 2>/dev/null |
        grep -q svclb_
}
ifindex_of() { in_node ip -o link show dev "$1" 2>/dev/null | cut -d: -f1; }
tcx_pins() {  # tcx_pins IF: svclbd's pinned tcx links of IF (by its current ifindex)
    local idx; idx=$(ifindex_of "$1")
    [[ -n $idx ]] && ls "$BPFFS/links/tcx/" 2>/dev/null | grep -E "^$idx-$1-(ingress|egress)\$"
}
tcx_on() {  # tcx_on IF [N]: N (2) of IF's pins hold a live svclb program (bpftool: a prog id)
    local idx p n=0; idx=$(ifindex_of "$1")
    for p in ingress egress; do
        [[ -e $BPFFS/links/tcx/$idx-$1-$p ]] || continue
        bpftool link show pinned "$BPFFS/links/tcx/$idx-$1-$p" -j 2>/dev/null |
            jq -e '.type == 11 and .prog_id > 0' >/dev/null && n=$((n + 1))
    done
    ((n >= ${2:-2}))
}
test_deselected_interfaces() {
    in_node ip link add svx0 type veth peer name svx1 || { _fail "veth svx0/svx1"; return; }
    in_node ip link set svx0 up && in_node ip link set svx1 up
    in_node ip link add svx2 type veth peer name svx3 || { _fail "veth svx2/svx3"; return; }
    daemon_stop
    daemon_start --iface svx0 --iface svx2 --external-iface svx1 && daemon_wait_ready ||
        { _fail "svclbd with --iface svx0 --iface svx2 --external-iface svx1 did not start"; return; }
    assert_ok "svx0 has svclb's tc programs" svclb_on svx0
    assert_ok "svx1 has svclb's programs (external NIC)" svclb_on svx1
    assert_ok "svx2 has svclb's tc programs" svclb_on svx2
    daemon_stop
    # Deleted while no svclbd watches: a tcx link's pin stays until the next start.
    in_node ip link del svx2
    daemon_start && daemon_wait_ready || { _fail "svclbd did not come back"; return; }
    assert_eq "" "$(ls "$BPFFS/links/tcx/" 2>/dev/null | grep -- -svx)" "no pin of svx0, svx1 or the deleted svx2 left"
    kernel_has_tcx && assert_contains "$(cat "$DAEMON_LOG")" "svx2-ingress (its interface no longer exists)" \
        "the log names the deleted svx2's pin"
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

# A stored object today's validation refuses (the state file of an older
# build, or edited by hand): svclbd starts with it, names it in its log and
# in status until a change deletes (or fixes) it; the rest keeps working.
test_invalid_stored() {
    local f
    svcctl apply -f - >/dev/null <<'YAML' || { _fail "svcctl apply of service stale failed"; return; }
apiVersion: v1
kind: Service
metadata: {name: stale, namespace: default}
spec:
  ports: [{port: 81, targetPort: 8080}]
YAML
    daemon_stop
    for f in "$STATE_DIR/state.json" "$STATE_DIR/state.json.journal"; do
        [[ -f $f ]] || continue
        jq -c '((.services // .put // [])[] | select(.kind == "Service" and .metadata.name == "stale")
               | .spec.ports[0].port) |= 70000' "$f" >"$f.new" && mv "$f.new" "$f"
    done
    assert_contains "$(cat "$STATE_DIR"/state.json*)" '"port":70000' "the state file holds the invalid port"
    daemon_start && daemon_wait_ready || { _fail "svclbd did not start with an invalid stored object"; return; }
    assert_contains "$(cat "$DAEMON_LOG")" 'The Service "stale" is invalid: spec.ports[0].port' \
        "svclbd's log names the invalid stored object"
    assert_eq 1 "$(svcctl status -o json | jq '.invalidStored | length')" "status -o json: one invalid stored object"
    assert_contains "$(svcctl status)" 'default: The Service "stale" is invalid' "svcctl status names it"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "with an invalid stored object"
    svcctl delete svc stale >/dev/null
    assert_eq 0 "$(svcctl status -o json | jq '.invalidStored | length')" "deleted: no longer listed"
}

# ---- tc attach modes (--tc-attach) -------------------------------------------
# A UDP stream through the tc programs (the client's process outside the test
# cgroup, so the socket hooks leave it alone): one datagram every 20 ms on
# one flow, each answer checked (from the ClusterIP: reverse-translated), one
# line each, until STOPFILE exists.
STREAM_PY='
import os, socket, sys, time
dst, port, stopfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
start = time.time()
while not os.path.exists(stopfile) and time.time() - start < 120:
    s.sendto(b"x", (dst, port))
    try:
        data, src = s.recvfrom(2048)
        print("ok" if src == (dst, port) else "bad from %s:%d" % src, flush=True)
    except socket.timeout:
        print("bad timeout", flush=True)
    time.sleep(0.02)
'
stream_start() {
    STREAM_LOG=$TOPO_TMP/stream.$RANDOM; STREAM_STOP=$STREAM_LOG.stop
    timeout 150 nsenter --net="/run/netns/$(pod_ns client)" "$PY" -u -c "$STREAM_PY" "$VIP" "$UDP_PORT" \
        "$STREAM_STOP" >"$STREAM_LOG" 2>&1 &
    STREAM_PID=$!; TOPO_PIDS+=("$STREAM_PID")
    retry 50 0.1 grep -q '^ok$' "$STREAM_LOG"
}
stream_check() {  # stream_check WHAT: stops the stream; every datagram was answered
    local ok0; ok0=$(grep -c '^ok$' "$STREAM_LOG")
    retry 50 0.1 eval "(( \$(grep -c '^ok\$' '$STREAM_LOG') >= ok0 + 10 ))"
    touch "$STREAM_STOP"; wait "$STREAM_PID" 2>/dev/null
    assert_ge "$(grep -c '^ok$' "$STREAM_LOG")" 20 "$1: datagrams answered"
    assert_eq 0 "$(grep -c '^bad' "$STREAM_LOG")" "$1: datagrams lost or untranslated:
$(grep '^bad' "$STREAM_LOG" | sort | uniq -c | head -3)"
}
# IF's "<tcAttach> <linkId> <progId> <egressLinkId> <egressProgId>" from status.
tc_state() {
    svcctl status -o json | jq -r --arg i "$1" \
        '.interfaces[] | select(.name == $i) | "\(.tcAttach) \(.linkId) \(.progId) \(.egressLinkId) \(.egressProgId)"'
}
# tcx links exist from Linux 6.6 on: there --tc-attach auto must pick them.
kernel_has_tcx() { [[ $(SVCLB_TC_ATTACH='' tc_attach_expected) == tcx ]]; }
restart_with() { daemon_stop; daemon_start "$@" && daemon_wait_ready; }

# A tcx restart is hitless: the pinned links stay (same link ids), the new
# daemon's programs are swapped in (new program ids), the stream through
# them never misses.
test_tcx_restart() {
    local before after
    kernel_has_tcx || { log "kernel $(uname -r) before 6.6: no tcx, not checked"; return; }
    restart_with || { _fail "svclbd did not come back"; return; }
    assert_eq "tcx auto" "$(svcctl status -o json | jq -r '"\(.tcAttach.mode) \(.tcAttach.requested)"')" \
        "status tcAttach {mode, requested} by default on a kernel with tcx"
    before=$(tc_state lxcclient)
    assert_match "$before" '^tcx [1-9][0-9]* [1-9][0-9]* [1-9][0-9]* [1-9][0-9]*$' "lxcclient on tcx links"
    assert_ok "lxcclient's pins hold the links (bpftool)" tcx_on lxcclient
    assert_fails "lxcclient has no legacy filter" legacy_on lxcclient
    stream_start || { _fail "the UDP stream did not start"; return; }
    restart_with || { _fail "svclbd did not come back"; return; }
    after=$(tc_state lxcclient)
    read -r _ l1 p1 e1 ep1 <<<"$before"; read -r m l2 p2 e2 ep2 <<<"$after"
    assert_eq tcx "$m" "lxcclient still on tcx after the restart"
    assert_eq "$l1 $e1" "$l2 $e2" "the same tcx links (ingress, egress link ids) after the restart"
    assert_ne "$p1" "$p2" "the ingress link runs the new daemon's program"
    assert_ne "$ep1" "$ep2" "the egress link runs the new daemon's program"
    assert_eq "$p2" "$(svcctl status -o json | jq -r '.programs[] | select(.name == "svclb_tc_pod_in") | .id')" \
        "the ingress link's program is the daemon's svclb_tc_pod_in"
    stream_check "tcx restart"
}

# Upgrade: a legacy run, then auto: the links take over before the legacy
# filters go, the stream never misses. Downgrade: legacy again, the links go.
test_tcx_upgrade_downgrade() {
    kernel_has_tcx || { log "kernel $(uname -r) before 6.6: no tcx, not checked"; return; }
    restart_with --tc-attach legacy || { _fail "svclbd --tc-attach legacy did not start"; return; }
    assert_eq "legacy" "$(svcctl status -o json | jq -r .tcAttach.mode)" "status tcAttach.mode with --tc-attach legacy"
    assert_match "$(tc_state lxcclient)" '^legacy 0 [1-9][0-9]* 0 [1-9][0-9]*$' "lxcclient on legacy filters"
    assert_ok "lxcclient has svclb's legacy filters" legacy_on lxcclient
    assert_eq "" "$(tcx_pins lxcclient)" "no tcx pins of lxcclient left with --tc-attach legacy"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "on legacy filters"
    stream_start || { _fail "the UDP stream did not start"; return; }
    restart_with || { _fail "svclbd did not come back"; return; }
    assert_match "$(tc_state lxcclient)" '^tcx [1-9]' "upgrade: lxcclient on tcx links"
    assert_ok "upgrade: lxcclient's tcx links live (bpftool)" tcx_on lxcclient
    assert_ok "upgrade: lxcbe1's tcx links live (bpftool)" tcx_on lxcbe1
    assert_fails "upgrade: the legacy filters are gone from lxcclient" legacy_on lxcclient
    assert_fails "upgrade: the legacy filters are gone from lxcbe1" legacy_on lxcbe1
    stream_check "upgrade legacy -> tcx"
    stream_start || { _fail "the UDP stream did not start"; return; }
    restart_with --tc-attach legacy || { _fail "svclbd --tc-attach legacy did not start"; return; }
    assert_ok "downgrade: lxcclient has svclb's legacy filters" legacy_on lxcclient
    assert_eq "" "$(ls "$BPFFS/links/tcx/" 2>/dev/null)" "downgrade: no tcx pins left"
    stream_check "downgrade tcx -> legacy"
    restart_with || _fail "svclbd did not come back"
}

# auto on a kernel without tcx (the probe's answer faked by a test knob):
# legacy, and status says why; --tc-attach tcx refuses to start there.
test_tcx_fallback() {
    daemon_stop
    export SVCLB_TEST_NO_TCX=1
    daemon_start && daemon_wait_ready || { unset SVCLB_TEST_NO_TCX; _fail "svclbd did not start"; return; }
    local js; js=$(svcctl status -o json)
    assert_eq "legacy auto" "$(jq -r '"\(.tcAttach.mode) \(.tcAttach.requested)"' <<<"$js")" \
        "status tcAttach {mode, requested}: auto fell back"
    assert_contains "$(jq -r .tcAttach.reason <<<"$js")" "has no tcx links" "status tcAttach.reason says why"
    assert_contains "$(cat "$DAEMON_LOG")" "legacy clsact/cls_bpf filters (auto fell back" "the log says why"
    assert_ok "fallback: lxcclient has svclb's legacy filters" legacy_on lxcclient
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "after the fallback"
    daemon_stop
    : >"$TOPO_TMP/refused.log"
    nsenter --net="/run/netns/$NODE_NS" timeout 30 "$SVCLB_BIN/svclbd" $(daemon_flags) --tc-attach tcx \
        >"$TOPO_TMP/refused.log" 2>&1
    assert_ne 0 "$?" "--tc-attach tcx without tcx: svclbd exits non-zero"
    assert_contains "$(cat "$TOPO_TMP/refused.log")" "--tc-attach tcx: this kernel" "--tc-attach tcx: the error says why"
    unset SVCLB_TEST_NO_TCX
    restart_with || _fail "svclbd did not come back"
}

run_test "restart: traffic before" test_before
run_test "restart: svclbd stopped, dataplane keeps working" test_daemon_down
run_test "restart: svclbd restarted, state restored" test_restarted
run_test "restart: long-lived connections never broke" test_longconns_intact
run_test "restart: endpoint change after the restart takes effect" test_change_after_restart
run_test "restart: interfaces no longer selected lose svclb's programs" test_deselected_interfaces
run_test "restart: --flow-filter off shows in status and traffic goes on" test_flow_filter_off
run_test "restart: an invalid stored object is kept, logged and listed by status" test_invalid_stored
run_test "restart: tcx links stay, their programs are swapped, traffic never stops" test_tcx_restart
run_test "restart: legacy -> tcx upgrade and back, traffic never stops" test_tcx_upgrade_downgrade
run_test "restart: auto without tcx falls back to legacy; --tc-attach tcx refuses" test_tcx_fallback
finish
