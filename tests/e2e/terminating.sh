#!/usr/bin/env bash
# Terminating endpoints (EndpointSlice conditions, KEP-1669):
#  - be2 not ready: its open connection keeps working (as kube-proxy's
#    conntrack), every new connection goes to the ready be1;
#  - be2 terminating but serving: its open connection keeps working, every new
#    connection goes to the ready be1;
#  - be1 gone, be2 still terminating+serving: new connections fall back to be2;
#  - be2 no longer serving: new connections are refused at once (RST), while
#    its already open connection still continues (terminating backends keep
#    their conntrack flows).
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup term

# slice_yaml FILE-NAME ENTRY...: EndpointSlice web-term for web; an ENTRY is
# POD:READY:SERVING:TERMINATING (true/false).
slice_yaml() {
    local f=$TOPO_TMP/$1.yaml e pod r s t; shift
    {
        printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-term\n  namespace: default\n'
        printf '  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\n'
        printf 'ports:\n- name: http\n  port: 8080\n  protocol: TCP\n- name: dns\n  port: 5353\n  protocol: UDP\nendpoints:\n'
        for e in "$@"; do
            IFS=: read -r pod r s t <<<"$e"
            printf -- '- addresses:\n  - %s\n  conditions:\n    ready: %s\n    serving: %s\n    terminating: %s\n' \
                "${POD_IP[$pod]}" "$r" "$s" "$t"
        done
    } >"$f"
    echo "$f"
}

LC_LOG=$TOPO_TMP/longconn.log
: >"$LC_LOG"
be2_ok() { grep -c ' be2 ok be2$' "$LC_LOG"; }
be2_progress() { retry 30 0.2 eval "(( \$(be2_ok) >= $1 + 3 ))"; }

# refused WHERE WHAT: one curl to the VIP from WHERE (pod name or "node") must
# fail with "Connection refused" (exit 7), not time out (exit 28).
refused() {
    local where=$1 what=$2 out rc t0 ms
    local cmd=(curl -sS -v --connect-timeout 5 -m 8 "http://$VIP/")
    t0=$(date +%s%N)
    if [[ $where == node ]]; then out=$(in_node_cg_t 15 "${cmd[@]}" 2>&1); rc=$?
    else out=$(in_pod_t 15 "$where" "${cmd[@]}" 2>&1); rc=$?; fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    log "$what: exit $rc in ${ms} ms"
    assert_eq 7 "$rc" "$what: curl exit status (output: $(tail -2 <<<"$out" | tr "\n" " "))"
    assert_contains "$out" "Connection refused" "$what: curl's error"
}

test_open_on_be2() {
    assert_ok "apply slice be1 ready, be2 ready" svcctl apply -f \
        "$(slice_yaml both be1:true:true:false be2:true:true:false)"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "slice with be1 and be2 ready"
    # longconn_start retries (bounded: 200 tries / 20 s) until a connection lands on be2.
    longconn_start client "$LC_LOG" be2 120
    assert_contains "$(cat "$LC_LOG")" " be2 open" "long-lived connection landing on be2" || return
    be2_progress 0 || _fail "no request answered on the be2 connection"
}

test_be2_terminating() {
    local n0 out js
    n0=$(be2_ok)
    assert_ok "apply slice be1 ready, be2 terminating+serving" svcctl apply -f \
        "$(slice_yaml be2-term be1:true:true:false be2:false:true:true)"
    out=$(http_get_many client 30 "http://$VIP/")
    assert_eq 30 "$(count_lines "$out" be1)" "new connections answered by be1 while be2 terminates (got: $(sort <<<"$out" | uniq -c | xargs))"
    out=$(http_get_many node 10 "http://$VIP/")
    assert_eq 10 "$(count_lines "$out" be1)" "new node connections answered by be1 (got: $(sort <<<"$out" | uniq -c | xargs))"
    be2_progress "$n0" || _fail "the open be2 connection stopped after be2 became terminating:
$(tail -3 "$LC_LOG")"
    js=$(stats_json)
    assert_eq terminating "$(be_stat "$js" http "${POD_IP[be2]}" state)" "svcctl stats: be2's state"
}

test_fallback_terminating() {
    local n0 out
    n0=$(be2_ok)
    assert_ok "apply slice with only be2 terminating+serving" svcctl apply -f \
        "$(slice_yaml be2-only be2:false:true:true)"
    out=$(http_get_many client 20 "http://$VIP/")
    assert_eq 20 "$(count_lines "$out" be2)" "new connections fall back to the terminating, serving be2 (got: $(sort <<<"$out" | uniq -c | xargs))"
    out=$(http_get_many node 5 "http://$VIP/")
    assert_eq 5 "$(count_lines "$out" be2)" "new node connections fall back to be2 (got: $(sort <<<"$out" | uniq -c | xargs))"
    be2_progress "$n0" || _fail "the open be2 connection stopped after be1 was removed:
$(tail -3 "$LC_LOG")"
}

# A not-ready endpoint (ready: false, serving: false, not terminating: what
# a failing readiness probe makes) takes no new connection, but its open one
# goes on, as with kube-proxy, whose conntrack never flushes a TCP flow.
test_be2_not_ready() {
    local n0 out js
    n0=$(be2_ok)
    assert_ok "apply slice be1 ready, be2 not ready" svcctl apply -f \
        "$(slice_yaml be2-not-ready be1:true:true:false be2:false:false:false)"
    out=$(http_get_many client 20 "http://$VIP/")
    assert_eq 20 "$(count_lines "$out" be1)" "new connections while be2 is not ready go to be1 (got: $(sort <<<"$out" | uniq -c | xargs))"
    be2_progress "$n0" || _fail "the open be2 connection stopped when be2 turned not ready:
$(tail -3 "$LC_LOG")"
    js=$(stats_json)
    assert_eq not-ready "$(be_stat "$js" http "${POD_IP[be2]}" state)" "svcctl stats: be2's state"
}

test_not_serving() {
    local n0 i before after
    n0=$(be2_ok)
    before=$(stats_json)
    assert_ok "apply slice with be2 terminating, not serving" svcctl apply -f \
        "$(slice_yaml be2-gone be2:false:false:true)"
    for i in 1 2 3; do refused client "new connection $i from the client pod"; done
    refused node "new connection from the node"
    after=$(stats_json)
    assert_eq 4 "$(svc_delta "$before" "$after" http rejects)" "svcctl stats: rejects of web/http"
    be2_progress "$n0" || _fail "the open be2 connection stopped after be2 stopped serving (terminating backends keep their flows):
$(tail -3 "$LC_LOG")"
}

test_longconn_intact() {
    [[ -n ${LONGCONN_PID:-} ]] || { _fail "no long-lived connection was started"; return; }
    sleep 1
    longconn_stop
    assert_eq 0 "$(grep -c ' be2 err ' "$LC_LOG")" "errors on the be2 connection:
$(grep ' err ' "$LC_LOG" | head -3)"
    assert_eq 0 "$(grep ' be2 ok ' "$LC_LOG" | grep -vc ' be2 ok be2$')" "requests on the be2 connection answered elsewhere"
    assert_ge "$(be2_ok)" 15 "requests answered on the be2 connection"
}

run_test "terminating: long-lived connection on be2" test_open_on_be2
run_test "terminating: be2 not ready (readiness probe failing): open connection continues, new ones go to be1" test_be2_not_ready
run_test "terminating: be2 terminating+serving: open connection continues, new ones go to be1" test_be2_terminating
run_test "terminating: be1 removed: new connections fall back to terminating be2" test_fallback_terminating
run_test "terminating: be2 not serving: new connections refused at once" test_not_serving
run_test "terminating: the be2 connection never broke or moved" test_longconn_intact
finish
