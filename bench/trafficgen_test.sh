#!/usr/bin/env bash
# ctest bench.trafficgen: svclb-trafficgen's frames arrive as IPv4 at the
# receiving namespace, in both modes (XDP live frames and AF_PACKET), for
# UDP (one flow, N flows, a new flow per frame) and TCP SYN. Counts come
# from the receiver's own /proc/net/snmp (IpInReceives; UdpNoPorts for UDP
# to a closed port; TCP SYNs to a closed port are answered by RSTs). Two
# private namespaces joined by a veth; removed on exit, even on failure.
set -euo pipefail
tool=$1
[ "$(id -u)" = 0 ] || { echo "bench.trafficgen: needs root; skipped"; exit 77; }
A=svclb-tg-a-$$ B=svclb-tg-b-$$
cleanup() { ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip link add tga0 netns "$A" type veth peer name tgb0 netns "$B"
inA() { nsenter --net="/run/netns/$A" "$@"; }
inB() { nsenter --net="/run/netns/$B" "$@"; }
inA ip addr add 10.97.0.1/24 dev tga0
inB ip addr add 10.97.0.2/24 dev tgb0
inA ip link set tga0 up
inB ip link set tgb0 up
# veth delivers redirected XDP frames only when the receiver runs NAPI:
# GRO on (or an XDP program) on the receiving peer.
inB ethtool -K tgb0 gro on >/dev/null
MAC=$(inB ip -o link show tgb0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)

snmp() {  # snmp PROTO FIELD: the counter in B's namespace
    inB awk -v p="$1:" -v f="$2" '$1 == p && !h { for (i = 2; i <= NF; i++) n[i] = $i; h = 1; next }
        $1 == p && h { for (i = 2; i <= NF; i++) if (n[i] == f) print $i }' /proc/net/snmp
}

fails=0
refused=0
check() {  # check NAME COUNT PROTO-COUNTER-FIELD ARGS...
    local name=$1 count=$2 field=$3
    shift 3
    local ip0 l40 ip1 l41 out
    ip0=$(snmp Ip InReceives)
    l40=$(snmp ${field%%.*} ${field#*.})
    local rc=0
    out=$(inA timeout 60 "$tool" --dev tga0 --dst 10.97.0.2 --dst-mac "$MAC" --src 10.97.0.1 \
        --count "$count" --duration 20 "$@" 2>&1) || rc=$?
    if [ "$rc" = 77 ]; then
        # This kernel refuses XDP live frames (the generator said so):
        # nothing of this case can run here.
        echo "SKIP $name: $out"
        refused=$((refused + 1))
        return
    fi
    [ "$rc" = 0 ] || { echo "FAIL $name: generator: $out"; fails=$((fails + 1)); return; }
    sleep 0.3
    ip1=$(snmp Ip InReceives)
    l41=$(snmp ${field%%.*} ${field#*.})
    if [ $((ip1 - ip0)) -ne "$count" ] || [ $((l41 - l40)) -ne "$count" ]; then
        echo "FAIL $name: sent $count, receiver counted IpInReceives +$((ip1 - ip0)), $field +$((l41 - l40)) ($out)"
        fails=$((fails + 1))
    else
        echo "ok   $name: $count frames received as IPv4 ($field +$count)"
    fi
}

check "live frames, UDP, 1 flow" 2000 Udp.NoPorts --dport 9
check "live frames, UDP, 64 flows" 2000 Udp.NoPorts --dport 9 --flows 64
check "live frames, UDP, a new flow per frame" 2000 Udp.NoPorts --dport 9 --new-flow
check "live frames, TCP SYN" 500 Tcp.OutRsts --proto tcp --dport 9
check "AF_PACKET, UDP, 64 flows" 2000 Udp.NoPorts --dport 9 --flows 64 --af-packet
[ "$fails" = 0 ] || exit 1
if [ "$refused" != 0 ]; then
    echo "bench.trafficgen: skipped: this kernel refuses XDP live frames ($refused live cases" \
        "not run); the AF_PACKET case passed"
    exit 77
fi
echo "bench.trafficgen: every frame arrived"
