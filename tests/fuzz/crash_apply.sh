#!/usr/bin/env bash
# SIGKILL during large applies and deletes. svclbd writes the maps first and
# persists the change meanwhile (large changes on a second thread: snapshot
# or journal), and answers last. A kill at any point must leave, after the
# restart: the whole change or none of it (never part of a Service set),
# the change for sure if svcctl was told it succeeded, and the maps exactly
# as the restored state says (one svc_v1 master per Service port, counted in
# the pinned map itself). Traffic through the example Service keeps working.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
command -v bpftool >/dev/null || { echo "missing bpftool" >&2; exit 1; }
e2e_setup crash

K=2000
BIG=$TOPO_TMP/big.yaml
"$PY" - "$K" >"$BIG" <<'PYEOF'
import sys
k = int(sys.argv[1])
for i in range(k):
    vip = f"10.100.{i // 250}.{i % 250 + 1}"
    print(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: c{i}\n  namespace: crash\nspec:\n"
          f"  clusterIP: {vip}\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: 5353\n---")
    print(f"apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: c{i}\n  namespace: crash\nsubsets:\n"
          f"- addresses:\n  - ip: 10.244.9.{i % 200 + 1}\n  - ip: 10.244.8.{i % 200 + 1}\n"
          f"  ports:\n  - name: dns\n    port: 5353\n    protocol: UDP\n---")
PYEOF

svc_count() { svcctl get svc -A -o json | jq '.items | length'; }
port_count() { svcctl get svc -A -o json | jq '[.items[] | select(.spec.clusterIP != "None") | .spec.ports | length] | add // 0'; }
masters() {
    bpftool -j map dump pinned "$BPFFS/svc_v1" | jq '[.[] | select(.formatted.key.slot == 0)] | length'
}

BASE=0
test_baseline() {
    BASE=$(svc_count)
    assert_ge "$BASE" 1 "the example Service is there"
    assert_eq "$(port_count)" "$(masters)" "svc_v1 masters = Service ports before any crash"
}

# crash_once OP DELAY_MS: runs `svcctl OP -f big.yaml`, SIGKILLs svclbd
# after DELAY_MS, restarts it, checks the outcome.
crash_once() {
    local op=$1 delay=$2 before after ok=0 out
    before=$(svc_count)
    (svcctl "$op" -f "$BIG" >"$TOPO_TMP/op.out" 2>&1; echo $? >"$TOPO_TMP/op.rc") &
    local cpid=$!
    sleep "$(printf '0.%03d' "$delay")"
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    wait "$cpid" 2>/dev/null
    DAEMON_PID=""
    [[ $(cat "$TOPO_TMP/op.rc") == 0 ]] && ok=1
    daemon_start && daemon_wait_ready || { _fail "$op +${delay}ms: svclbd did not come back"; return; }
    after=$(svc_count)
    local want_new=$BASE
    [[ $op == apply ]] && want_new=$((BASE + K))
    local old=$before
    if ((ok)); then
        assert_eq "$want_new" "$after" "$op +${delay}ms acknowledged: the change survived the crash"
    elif [[ $after != "$old" && $after != "$want_new" ]]; then
        _fail "$op +${delay}ms: $after Services after the restart, neither the old $old nor the new $want_new"
    fi
    out=$(masters)
    assert_eq "$(port_count)" "$out" "$op +${delay}ms: svc_v1 masters = Service ports of the restored state"
    log "$op +${delay}ms: acknowledged=$ok, Services $before -> $after, masters $out"
    # Next round starts from a known state: the set fully applied or deleted
    # (a delete of what is already gone fails with NotFound: fine).
    svcctl "$op" -f "$BIG" >/dev/null 2>&1 || true
}

test_crashes() {
    local i delay op
    for i in $(seq 0 11); do
        op=apply; ((i % 2)) && op=delete
        delay=$((i * 6 + 2))  # 2 .. 68 ms: a change of 2,000 Services takes ~40 ms here
        crash_once "$op" "$delay"
    done
}

test_traffic_after() {
    check_both_answer "$(http_get_many client 10 "http://$VIP/")" 10 1 "client pod -> $VIP:80 after the crashes"
}

run_test "crash: baseline" test_baseline
run_test "crash: SIGKILL during apply/delete of $K Services" test_crashes
run_test "crash: traffic after" test_traffic_after
finish
