#!/usr/bin/env bash
# New flow on (almost) every packet toward a Service: the conntrack-miss
# path. pktgen walks source ports and addresses sequentially (not random) so
# consecutive packets are distinct 5-tuples:
#
#   pktgen_svc_newflow.sh -i eth0 -d 10.96.0.10 -p 53 -m 02:00:00:00:00:01 \
#                         -t 2 -D 10 -S 10.1.0.1-10.1.255.254
#
# Same flags as pktgen_svc_udp.sh (-F is the source port span, default 60000).
# Threads never repeat each other's tuples: with -S each thread walks its own
# slice of the address range, without it its own slice of the port span.
# Needs the pktgen module: fails clearly where it is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
usage() { sed -n '2,11p' "$0"; }
pg_parse "$@"
[ "$FLOWS" = 1 ] && FLOWS=60000
if [ -n "$SRC_RANGE" ]; then
    SRC_LO=$(ip2int "${SRC_RANGE%-*}") SRC_HI=$(ip2int "${SRC_RANGE#*-}")
    SPAN=$(((SRC_HI - SRC_LO + 1) / THREADS))
    ((SPAN >= 1)) || err "-S range has fewer addresses than threads"
else
    SPAN=$((FLOWS / THREADS))
    ((SPAN >= 1)) || err "-F FLOWS must be at least the number of threads"
fi
pg_require
trap pg_cleanup EXIT INT TERM
pg_ctrl "reset"

devs=()
for ((i = 0; i < THREADS; i++)); do
    thread=$((F_THREAD + i))
    dev="${DEV}@${thread}"
    pg_thread "$thread" "rem_device_all"
    pg_thread "$thread" "add_device $dev"
    pg_set "$dev" "flag QUEUE_MAP_CPU"
    pg_set "$dev" "count $COUNT"
    pg_set "$dev" "clone_skb 0"
    pg_set "$dev" "pkt_size $((PKT_SIZE - 4))"
    pg_set "$dev" "burst $BURST"
    pg_set "$dev" "delay 0"
    pg_set "$dev" "dst $DEST_IP"
    pg_set "$dev" "dst_mac $DST_MAC"
    pg_set "$dev" "udp_dst_min $DST_PORT"
    pg_set "$dev" "udp_dst_max $DST_PORT"
    if [ -n "$SRC_RANGE" ]; then
        pg_set "$dev" "udp_src_min 1024"
        pg_set "$dev" "udp_src_max $((1024 + FLOWS - 1))"
        pg_set "$dev" "src_min $(int2ip $((SRC_LO + i * SPAN)))"
        pg_set "$dev" "src_max $(int2ip $((SRC_LO + (i + 1) * SPAN - 1)))"
    else
        pg_set "$dev" "udp_src_min $((1024 + i * SPAN))"
        pg_set "$dev" "udp_src_max $((1024 + (i + 1) * SPAN - 1))"
    fi
    devs+=("$dev")
done
pg_run_bounded "${devs[@]}"
