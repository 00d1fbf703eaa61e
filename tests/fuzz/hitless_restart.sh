#!/usr/bin/env bash
# Hitless restart under load (issue 6): steady TCP (a new connection per
# request) and UDP (a new socket, so a new flow, per request) through the
# ClusterIP from a client pod, plus long-lived connections, while svclbd is
# SIGKILLed and restarted twice. Zero failed requests, no broken long-lived
# connection (CT is not flushed), the stale socket file left by SIGKILL does
# not prevent the restart, and a second svclbd on the same --bpffs is
# refused with a clear message without disturbing the first.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup fz-hit

MIN_REQ=${MIN_REQ:-200}
LOAD_LIMIT=90      # seconds: hard bound of each load loop
STOP=$TOPO_TMP/load-stop
TCP_LOG=$TOPO_TMP/tcp-load.log
UDP_LOG=$TOPO_TMP/udp-load.log
LC_LOG=$TOPO_TMP/longconn.log

source "$(dirname "$0")/restart_load.sh"  # TCP_LOOP, UDP_LOOP_PY

load_start() {
    rm -f "$STOP"
    timeout $((LOAD_LIMIT + 20)) nsenter --net="/run/netns/$(pod_ns client)" sh -c "$TCP_LOOP" sh \
        "$MIN_REQ" "http://$VIP/" "$STOP" "$LOAD_LIMIT" >"$TCP_LOG" 2>&1 &
    TCP_PID=$!; TOPO_PIDS+=("$TCP_PID")
    timeout $((LOAD_LIMIT + 20)) nsenter --net="/run/netns/$(pod_ns client)" "$PY" -u -c "$UDP_LOOP_PY" \
        "$VIP" 5353 "$MIN_REQ" "$STOP" "$LOAD_LIMIT" >"$UDP_LOG" 2>&1 &
    UDP_PID=$!; TOPO_PIDS+=("$UDP_PID")
}
load_wait() {
    touch "$STOP"
    wait "$TCP_PID" 2>/dev/null; wait "$UDP_PID" 2>/dev/null
}
lines() { wc -l <"$1"; }

# kill_and_restart N: SIGKILL svclbd while the load runs, check the stale
# socket, restart on it and wait until ready.
kill_and_restart() {
    local n=$1 pid=$DAEMON_PID
    [[ -n $pid ]] || { _fail "svclbd is not running"; return 1; }
    # Let some load flow through the current daemon's lifetime first.
    local t0; t0=$(lines "$TCP_LOG")
    retry 100 0.1 eval "(( \$(lines '$TCP_LOG') >= t0 + 15 ))" || _fail "no TCP progress before kill $n"
    kill -KILL "$pid"; wait "$pid" 2>/dev/null; DAEMON_PID=""
    KILL_TIMES+=("$(date +%s.%N)")
    log "svclbd SIGKILLed ($n)"
    [[ -S $SOCK ]] || _fail "kill $n: expected a stale socket file at $SOCK after SIGKILL"
    assert_fails "svcctl against the stale socket (kill $n)" svcctl status
    # Some requests while no daemon runs at all.
    t0=$(lines "$TCP_LOG")
    retry 100 0.1 eval "(( \$(lines '$TCP_LOG') >= t0 + 10 ))" || _fail "no TCP progress while svclbd is down ($n)"
    daemon_start && daemon_wait_ready || { _fail "svclbd did not restart over the stale socket ($n)"; return 1; }
    READY_TIMES+=("$(date +%s.%N)")
    assert_match "$(svcctl get svc 2>&1)" $'(^|\n)web +ClusterIP +10\\.96\\.0\\.10' "state restored after kill $n"
}

test_under_load() {
    KILL_TIMES=(); READY_TIMES=()
    longconn_start client "$LC_LOG" be1,be2 150
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived connection on be1"
    assert_contains "$(cat "$LC_LOG")" " be2 open" "long-lived connection on be2"
    load_start
    kill_and_restart 1
    kill_and_restart 2
    # Load keeps running a little after the last restart.
    local t0; t0=$(lines "$TCP_LOG")
    retry 100 0.1 eval "(( \$(lines '$TCP_LOG') >= t0 + 15 ))" || _fail "no TCP progress after the last restart"
    load_wait
    longconn_stop

    local tcp_n udp_n tcp_bad udp_bad
    tcp_n=$(lines "$TCP_LOG"); udp_n=$(lines "$UDP_LOG")
    tcp_bad=$(grep -cvE '^[0-9.]+ be[12]$' "$TCP_LOG")
    udp_bad=$(grep -cvE "^[0-9.]+ be[12] $VIP:5353\$" "$UDP_LOG")
    log "TCP: $tcp_n requests, $tcp_bad failed; UDP: $udp_n requests, $udp_bad failed"
    assert_ge "$tcp_n" "$MIN_REQ" "TCP requests made"
    assert_ge "$udp_n" "$MIN_REQ" "UDP requests made"
    assert_eq 0 "$tcp_bad" "failed TCP requests across two SIGKILL restarts:
$(grep -vE '^[0-9.]+ be[12]$' "$TCP_LOG" | head -5)"
    assert_eq 0 "$udp_bad" "failed UDP requests across two SIGKILL restarts:
$(grep -vE "^[0-9.]+ be[12] $VIP:5353\$" "$UDP_LOG" | head -5)"
    assert_ge "$(grep -c ' be1$' "$TCP_LOG")" 10 "TCP answers from be1"
    assert_ge "$(grep -c ' be2$' "$TCP_LOG")" 10 "TCP answers from be2"
    # The load really spanned both kills: requests before the first kill and
    # after the last restart.
    local first last
    first=$(head -1 "$TCP_LOG" | cut -d' ' -f1); last=$(tail -1 "$TCP_LOG" | cut -d' ' -f1)
    assert_eq 1 "$(awk -v f="$first" -v k="${KILL_TIMES[0]:-0}" 'BEGIN{print (f < k)}')" "TCP load started before the first kill"
    assert_eq 1 "$(awk -v l="$last" -v r="${READY_TIMES[1]:-9e18}" 'BEGIN{print (l > r)}')" "TCP load ran past the last restart"
    # Long-lived connections: never an error, never moved to another backend.
    assert_eq 0 "$(grep -c ' err ' "$LC_LOG")" "errors on the long-lived connections:
$(grep ' err ' "$LC_LOG" | head -3)"
    assert_eq 0 "$(grep -cE ' (be1 ok be2|be2 ok be1)$' "$LC_LOG")" "long-lived connection answered by the other backend"
    assert_ge "$(grep -c ' be1 ok be1$' "$LC_LOG")" 10 "requests on the long-lived be1 connection"
}

test_second_daemon_refused() {
    [[ -n $DAEMON_PID ]] || { _fail "svclbd is not running"; return; }
    local out rc
    out=$(in_node_t 20 "$SVCLB_BIN/svclbd" --bpffs "$BPFFS" --pod-iface-prefix lxc \
        --state-dir "$TOPO_TMP/state2" --socket "$TOPO_TMP/second.sock" \
        --metrics-addr 127.0.0.1:$((METRICS_PORT + 1)) --cgroup "$CG" 2>&1); rc=$?
    assert_ne 0 "$rc" "second svclbd on the same --bpffs: exit status"
    assert_contains "$out" "another svclbd is already running with --bpffs $BPFFS" "second svclbd message"
    [[ -e $TOPO_TMP/second.sock ]] && _fail "the refused daemon created its socket"
    # Same socket too: still refused, and the first daemon keeps its socket.
    out=$(in_node_t 20 "$SVCLB_BIN/svclbd" $(daemon_flags) 2>&1); rc=$?
    assert_ne 0 "$rc" "second svclbd with the same flags: exit status"
    assert_contains "$out" "another svclbd is already running" "second svclbd (same flags) message"
    assert_ok "the first svclbd still answers" svcctl status
    kill -0 "$DAEMON_PID" 2>/dev/null || _fail "the first svclbd died"
    # 20 requests: both backends answer unless 1 in 2^19 (10 flaked once in CI).
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 1 "traffic after the refused second daemon"
}

run_test "hitless: TCP+UDP load and long-lived connections across two SIGKILL restarts" test_under_load
run_test "hitless: a second svclbd on the same bpffs is refused" test_second_daemon_refused
finish
