#!/usr/bin/env bash
# Hitless restart of the node-facing path under load: NodePort traffic from
# an external client through node2 (backends on node1: source-NATed to node2,
# XDP_TX) and through node1 (local backends: DNAT only, client address kept)
# while node2's svclbd and node1's svclbd are each SIGKILLed and restarted
# twice. TCP (a new connection per request) and UDP (a new socket, so a new
# flow and a new SNAT port, per request) to both nodes: zero failed requests,
# every answer from the right backend address (SNAT via node2, the client's
# address via node1); the load provably spans all four kills; long-lived
# keep-alive connections through node2 (a source-NATed flow) and node1 are
# never broken nor moved to another backend (conntrack and the SNAT ports
# are adopted, not flushed); the stale socket of a killed daemon does not
# prevent its restart. Topology: tests/testlib/multinode.sh.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"
MANIFESTS=$(cd "$(dirname "$0")/../e2e/manifests" && pwd)

MIN_REQ=${MIN_REQ:-150}   # per load loop
LOAD_LIMIT=120            # seconds: hard bound of each load loop

np_setup() {
    mn_test_up "fz-hnp-$$"
    mn_apply "$MANIFESTS/multinode-nodeport.yaml" || fatal_setup "apply multinode-nodeport.yaml"
}
np_setup
N1=${MN_IP[node1]} N2=${MN_IP[node2]} C=${MN_IP[client]}
STOP=$TOPO_TMP/load-stop

source "$(dirname "$0")/restart_load.sh"  # TCP_LOOP, UDP_LOOP_PY (prints the answer, the address the backend saw, and where it came from)
# One HTTP/1.1 keep-alive connection: a request every 0.2 s until STOP or
# LIMIT; "<t> open <answer>", then "<t> ok" (same answer: same backend, same
# source address seen) | "<t> moved <answer>" | "<t> err <exception>".
LONGCONN_NP_PY='
import http.client, os, sys, time
dst, port, stop, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
start = time.time()
c = http.client.HTTPConnection(dst, port, timeout=3)
try:
    c.request("GET", "/"); first = c.getresponse().read().decode().strip()
except Exception as e:
    print("%.3f err %s" % (time.time(), type(e).__name__), flush=True); sys.exit(1)
print("%.3f open %s" % (time.time(), first), flush=True)
while not os.path.exists(stop) and time.time() - start < limit:
    try:
        c.request("GET", "/"); who = c.getresponse().read().decode().strip()
        print("%.3f %s" % (time.time(), "ok" if who == first else "moved " + who), flush=True)
    except Exception as e:
        print("%.3f err %s" % (time.time(), type(e).__name__), flush=True); break
    time.sleep(0.2)
print("%.3f done" % time.time(), flush=True)
'

declare -A LOAD_PID=()
load_log() { echo "$TOPO_TMP/load-$1.log"; }   # tcp-node1 udp-node2 lc-node2 ...
bg_client() {  # NAME CMD...: runs CMD in the client's netns, output to load_log NAME
    local name=$1; shift
    timeout $((LOAD_LIMIT + 20)) nsenter --net="/run/netns/$(mn_ns client)" "$@" >"$(load_log "$name")" 2>&1 &
    LOAD_PID[$name]=$!; TOPO_PIDS+=("$!")
}
load_start() {
    local n
    rm -f "$STOP"
    for n in node1 node2; do
        bg_client "lc-$n" "$PY" -u -c "$LONGCONN_NP_PY" "${MN_IP[$n]}" 30080 "$STOP" "$LOAD_LIMIT"
        bg_client "tcp-$n" sh -c "$TCP_LOOP" sh "$MIN_REQ" "http://${MN_IP[$n]}:30080/" "$STOP" "$LOAD_LIMIT"
        bg_client "udp-$n" "$PY" -u -c "$UDP_LOOP_PY" "${MN_IP[$n]}" 30053 "$MIN_REQ" "$STOP" "$LOAD_LIMIT"
    done
    for n in node1 node2; do
        retry 50 0.1 grep -qE ' (open|err) ' "$(load_log "lc-$n")" || _fail "keep-alive connection via $n did not open"
    done
}
load_wait() {
    local name
    touch "$STOP"
    for name in "${!LOAD_PID[@]}"; do wait "${LOAD_PID[$name]}" 2>/dev/null; done
}
lines() { wc -l <"$(load_log "$1")"; }
# progress NAME COUNT WHAT: wait (bounded) until NAME's log grew by COUNT lines.
progress() {
    local t0; t0=$(lines "$1")
    retry 100 0.1 eval "(( \$(lines '$1') >= t0 + $2 ))" || _fail "no progress of $1 $3"
}

# kill_and_restart NODE N: SIGKILL NODE's svclbd under load, check the stale
# socket, let requests flow while no daemon runs there, restart, wait ready.
kill_and_restart() {
    local node=$1 n=$2 pid=${MN_DAEMON_PID[$1]:-}
    [[ -n $pid ]] || { _fail "svclbd on $node is not running"; return 1; }
    progress "tcp-$node" 10 "before kill $n of $node"
    kill -KILL "$pid"; wait "$pid" 2>/dev/null; MN_DAEMON_PID[$node]=""
    KILL_TIMES+=("$(date +%s.%N)")
    log "svclbd on $node SIGKILLed ($n)"
    [[ -S $(mn_sock "$node") ]] || _fail "kill $n of $node: expected a stale socket file at $(mn_sock "$node")"
    assert_fails "svcctl against $node's stale socket (kill $n)" svcctl_on "$node" status
    progress "tcp-$node" 10 "while svclbd on $node is down ($n)"
    progress "udp-$node" 5 "while svclbd on $node is down ($n)"
    mn_daemon_start "$node" && mn_daemon_wait_ready "$node" \
        || { _fail "svclbd on $node did not restart over the stale socket ($n)"; return 1; }
    READY_TIMES+=("$(date +%s.%N)")
    assert_match "$(svcctl_on "$node" get svc 2>&1)" $'(^|\n)web +NodePort ' "$node: state restored after kill $n"
}

# check_loop NAME REGEX WHAT: zero failures, enough requests, spanning all kills.
check_loop() {
    local name=$1 re=$2 what=$3 f total bad first last
    f=$(load_log "$name")
    total=$(wc -l <"$f"); bad=$(grep -cvE "$re" "$f")
    log "$what: $total requests, $bad failed"
    assert_ge "$total" "$MIN_REQ" "$what: requests made"
    assert_eq 0 "$bad" "$what: failed requests across the SIGKILL restarts:
$(grep -vE "$re" "$f" | head -5)"
    first=$(head -1 "$f" | cut -d' ' -f1); last=$(tail -1 "$f" | cut -d' ' -f1)
    assert_eq 1 "$(awk -v f="$first" -v k="${KILL_TIMES[0]:-0}" 'BEGIN{print (f < k)}')" "$what: load started before the first kill"
    assert_eq 1 "$(awk -v l="$last" -v r="${READY_TIMES[-1]:-9e18}" 'BEGIN{print (l > r)}')" "$what: load ran past the last restart"
}

# check_longconn NODE SEEN: never an error, never another backend or source,
# requests before the first kill and after the last restart.
check_longconn() {
    local node=$1 seen=$2 f first_ok last_ok
    f=$(load_log "lc-$node")
    assert_match "$(head -1 "$f")" "^[0-9.]+ open be[12] $seen\$" "keep-alive via $node: opened, the backend saw $seen"
    assert_eq 0 "$(grep -cE ' (err|moved) ' "$f")" "keep-alive via $node broken or moved:
$(grep -E ' (err|moved) ' "$f" | head -3)"
    assert_ge "$(grep -c ' ok$' "$f")" 20 "requests on the keep-alive connection via $node"
    first_ok=$(grep -m1 ' ok$' "$f" | cut -d' ' -f1); last_ok=$(grep ' ok$' "$f" | tail -1 | cut -d' ' -f1)
    assert_eq 1 "$(awk -v f="${first_ok:-9e18}" -v k="${KILL_TIMES[0]:-0}" 'BEGIN{print (f < k)}')" "keep-alive via $node: used before the first kill"
    assert_eq 1 "$(awk -v l="${last_ok:-0}" -v r="${READY_TIMES[-1]:-9e18}" 'BEGIN{print (l > r)}')" "keep-alive via $node: used after the last restart"
}

test_under_load() {
    KILL_TIMES=(); READY_TIMES=()
    load_start
    kill_and_restart node2 1
    kill_and_restart node1 1
    kill_and_restart node2 2
    kill_and_restart node1 2
    # Load keeps running a little after the last restart.
    progress tcp-node2 15 "after the last restart"
    progress tcp-node1 15 "after the last restart"
    load_wait

    check_loop tcp-node2 "^[0-9.]+ be[12] $N2\$" "TCP via node2 (SNAT)"
    check_loop tcp-node1 "^[0-9.]+ be[12] $C\$" "TCP via node1 (local)"
    check_loop udp-node2 "^[0-9.]+ be[12] $N2:[0-9]+ $N2:30053\$" "UDP via node2 (SNAT)"
    check_loop udp-node1 "^[0-9.]+ be[12] $C:[0-9]+ $N1:30053\$" "UDP via node1 (local)"
    assert_ge "$(grep -c ' be1 ' "$(load_log tcp-node2)")" 10 "TCP answers from be1 via node2"
    assert_ge "$(grep -c ' be2 ' "$(load_log tcp-node2)")" 10 "TCP answers from be2 via node2"
    check_longconn node2 "$N2"
    check_longconn node1 "$C"
    # node2 kept counting the SNAT flows across its restarts (counters are
    # pinned per-CPU maps): at least the requests made through it.
    local js flows
    js=$(mn_stats node2)
    flows=$(mn_fe_stat "$js" web http "$N2" flows)
    assert_ge "${flows:-0}" "$(lines tcp-node2)" "node2 stats: flows of web/http on $N2:30080 across the restarts"
}

run_test "hitless nodeport: TCP+UDP via node2 (SNAT) and node1 (local), keep-alive connections, two SIGKILL restarts of each node's svclbd" test_under_load
finish
