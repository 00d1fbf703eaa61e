#!/usr/bin/env bash
# The tc programs write L4 checksums directly (helpers only for
# CHECKSUM_COMPLETE skbs): a pseudo-header sum for CHECKSUM_PARTIAL skbs,
# the full checksum otherwise. On veths nothing verifies a checksum unless
# told to, so each phase makes the receiving pods verify every segment
# (rx checksumming off on their eth0: no veth upgrade to UNNECESSARY):
#   partial  the pods' own skbs are CHECKSUM_PARTIAL (tx offload on) when
#            svclb translates them; the node-side veths have tx offload off,
#            so the kernel completes the checksum from svclb's pseudo-header
#            sum (skb_checksum_help) and the receiver verifies it.
#   full     the pods checksum in software (tx off) and the node veths pass
#            CHECKSUM_NONE skbs to svclb (rx off): svclb's full update.
# TCP (curl) and UDP, both directions; the pods' InCsumErrors must stay 0.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup csum

PODS=(client be1 be2)

set_offloads() {  # set_offloads POD_TX POD_RX NODE_TX NODE_RX (on|off)
    local p
    for p in "${PODS[@]}"; do
        in_pod "$p" ethtool -K eth0 tx "$1" rx "$2" >/dev/null 2>&1
        in_node ethtool -K "lxc$p" tx "$3" rx "$4" >/dev/null 2>&1
    done
}

csum_errors() {  # sum of Tcp and Udp InCsumErrors over the pods
    local p n=0 v
    for p in "${PODS[@]}"; do
        v=$(in_pod "$p" awk '($1 == "Tcp:" || $1 == "Udp:") && !h[$1]++ { for (i = 2; i <= NF; i++) c[$1, i] = $i; next }
            ($1 == "Tcp:" || $1 == "Udp:") { for (i = 2; i <= NF; i++) if (c[$1, i] == "InCsumErrors") s += $i }
            END { print s + 0 }' /proc/net/snmp)
        n=$((n + v))
    done
    echo "$n"
}

phase() {  # phase NAME POD_TX POD_RX NODE_TX NODE_RX
    local name=$1 before out i udp=""
    shift
    set_offloads "$@"
    before=$(csum_errors)
    out=$(http_get_many client 20 "http://$VIP/")
    check_both_answer "$out" 20 2 "$name: client pod -> $VIP:80"
    for i in $(seq 10); do udp+=$(udp_query_pod client "$VIP" 5353 1 64)$'\n'; done
    assert_eq 10 "$(grep -c "^be[12] from $VIP:5353\$" <<<"$udp")" "$name: UDP answers from $VIP:5353 over 10 sockets"
    assert_eq "$before" "$(csum_errors)" "$name: checksum errors counted by the pods"
    set_offloads on on on on
}

run_test "checksums: partial (pseudo-header) sums completed in software verify" \
    phase partial on off off on
run_test "checksums: full checksums of CHECKSUM_NONE skbs verify" \
    phase full off off off off
finish
