#!/usr/bin/env bash
# ClusterIP UDP from a pod: replies come from a backend with source
# 10.96.0.10:5353; exactly K datagrams of known size are counted in stats.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup udp

test_reply_source() {
    local out
    out=$(udp_query_pod client "$VIP" 5353 1 8)
    assert_match "$out" "^be[12] from $VIP:5353\$" "UDP reply via $VIP:5353 (backend name, source rewritten to the VIP)"
}

# Different source sockets spread over both backends.
test_both_backends() {
    local out="" i
    for i in $(seq 20); do out+=$(udp_query_pod client "$VIP" 5353 1 8)$'\n'; done
    assert_ge "$(grep -c "^be1 from $VIP:5353" <<<"$out")" 2 "UDP answers from be1 over 20 sockets"
    assert_ge "$(grep -c "^be2 from $VIP:5353" <<<"$out")" 2 "UDP answers from be2 over 20 sockets"
    assert_eq 0 "$(grep -vc "^be[12] from $VIP:5353" <<<"${out%$'\n'}")" "UDP queries without a proper answer"
}

# From source port 20001, outside the ephemeral range: an earlier test's socket
# may have had the same ephemeral port (its CT entry would make this a hit).
K=25 SIZE=100
test_counters() {
    local before after out who ip
    before=$(stats_json)
    out=$(UDP_SPORT=20001 udp_query_pod client "$VIP" 5353 $K $SIZE)
    assert_eq $K "$(grep -c "from $VIP:5353" <<<"$out")" "replies to $K datagrams from one socket" || return
    who=$(head -1 <<<"$out" | cut -d' ' -f1)
    assert_eq 1 "$(cut -d' ' -f1 <<<"$out" | sort -u | wc -l)" "one UDP socket stays on one backend"
    after=$(stats_json)
    assert_eq $K "$(svc_delta "$before" "$after" dns packets)" "stats packets for web/dns after $K datagrams"
    assert_eq $((K * (20 + 8 + SIZE))) "$(svc_delta "$before" "$after" dns bytes)" \
        "stats bytes for web/dns (K * (20+8+$SIZE))"
    assert_eq $K "$(svc_delta "$before" "$after" dns replyPackets)" "stats replyPackets for web/dns"
    assert_eq $((K * (20 + 8 + ${#who} + 1))) "$(svc_delta "$before" "$after" dns replyBytes)" \
        "stats replyBytes for web/dns (reply is '$who\\n')"
    assert_eq 1 "$(svc_delta "$before" "$after" dns flows)" "stats flows for one UDP socket"
    [[ $who == be[12] ]] || return
    ip=${POD_IP[$who]}
    assert_eq $K "$(be_delta "$before" "$after" dns "$ip" packets)" "stats packets of backend $who"
}

run_test "udp: reply from a backend with source $VIP:5353" test_reply_source
run_test "udp: both backends answer" test_both_backends
run_test "udp: stats count exactly $K datagrams of $SIZE bytes" test_counters
finish
