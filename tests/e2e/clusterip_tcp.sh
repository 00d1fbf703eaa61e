#!/usr/bin/env bash
# ClusterIP TCP from a pod: 100 curls to 10.96.0.10:80 all answered, both
# backends used; svcctl stats and /metrics count exactly those 100 flows.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup tcp

N=100
test_curls() {
    OUT=$(http_get_many client $N "http://$VIP/")
    check_both_answer "$OUT" $N 10 "client pod -> $VIP:80"
}

test_stats() {
    local js flows f1 f2 c1 c2 pk
    js=$(stats_json)
    flows=$(svc_stat "$js" http flows)
    assert_eq $N "$flows" "stats flows for web/http" || return
    f1=$(be_stat "$js" http "${POD_IP[be1]}" flows)
    f2=$(be_stat "$js" http "${POD_IP[be2]}" flows)
    c1=$(count_lines "$OUT" be1); c2=$(count_lines "$OUT" be2)
    assert_eq "$c1" "$f1" "stats flows of backend be1 vs curls answered by be1"
    assert_eq "$c2" "$f2" "stats flows of backend be2 vs curls answered by be2"
    assert_eq $N "$((f1 + f2))" "per-backend flows sum"
    # Every curl is at least SYN, ACK, request, FIN, ACK both ways.
    pk=$(svc_stat "$js" http packets)
    assert_ge "$pk" $((N * 4)) "stats packets for web/http"
    assert_ge "$(svc_stat "$js" http replyPackets)" $((N * 3)) "stats replyPackets for web/http"
    assert_ge "$(svc_stat "$js" http bytes)" $((pk * 40)) "stats bytes >= 40 per packet"
    STATS=$js
}

test_metrics() {
    local m
    m=$(metrics)
    assert_ne "" "$m" "GET $METRICS_URL from the node netns" || return
    printf '%s\n' "$m" >"$TOPO_TMP/metrics.txt"
    local lint
    lint=$(promtool check metrics <"$TOPO_TMP/metrics.txt" 2>&1)
    assert_eq 0 $? "promtool check metrics: $lint"
    # Service counters (svclb_service_*_total{namespace,service,port,...}) and
    # per-backend ones (svclb_backend_*_total{...,backend="ip:port"}) equal
    # what svcctl stats reported (no traffic since).
    local name field ip got
    for name in flows:flows packets:packets bytes:bytes reply_packets:replyPackets reply_bytes:replyBytes; do
        field=${name#*:}; name=${name%%:*}
        got=$(metric_sample "$m" "svclb_service_${name}_total" namespace=default service=web port=http)
        assert_eq "$(svc_stat "$STATS" http "$field")" "$got" "svclb_service_${name}_total{service=\"web\",port=\"http\"} vs stats $field"
    done
    for ip in "${POD_IP[be1]}" "${POD_IP[be2]}"; do
        got=$(metric_sample "$m" svclb_backend_flows_total service=web port=http "backend=$ip:8080")
        assert_eq "$(be_stat "$STATS" http "$ip" flows)" "$got" "svclb_backend_flows_total{backend=\"$ip:8080\"} vs stats"
    done
}


# The tc programs are attached as asked (SVCLB_TC_ATTACH, ctest's
# e2e.tc_legacy.*; unset: auto, tcx from Linux 6.6 on).
test_tc_attach_mode() {
    local want; want=$(tc_attach_expected)
    assert_eq "$want $want $want" "$(svcctl status -o json |
        jq -r '[.interfaces[] | select(.name | startswith("lxc")) | .tcAttach] | join(" ")')" \
        "tc attach mode of lxcbe1, lxcbe2, lxcclient"
}

run_test "tcp: 100 curls through $VIP:80 hit both backends" test_curls
run_test "tcp: svcctl stats counts the flows" test_stats
run_test "tcp: /metrics matches stats and passes promtool" test_metrics
run_test "tc: programs attached as tcx links or legacy filters as asked" test_tc_attach_mode
finish
