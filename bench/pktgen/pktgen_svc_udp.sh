#!/usr/bin/env bash
# UDP flood toward a Service (ClusterIP or NodePort) with kernel pktgen, in
# the style of the kernel's samples/pktgen/pktgen_sample03_burst_single_flow.sh
# and pktgen_sample05_flow_per_thread.sh: one kpktgend thread per CPU, each
# with its own flows (source ports / addresses).
#
#   pktgen_svc_udp.sh -i eth0 -d 10.96.0.10 -p 53 -m 02:00:00:00:00:01 \
#                     -s 64 -t 2 -D 10 -F 1024 -S 10.0.0.1-10.0.0.254
#
#   -F N     N distinct source ports per thread (flows); 1 = a single flow
#   -S A-B   source address range (more flows); default: the interface's
#   -n N     packets per thread (0 = until -D seconds); always bounded by -D
# Target a NodePort with -d NODE_IP -p NODE_PORT, a ClusterIP with its VIP.
# Needs the pktgen module: fails clearly where it is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/functions.sh"
usage() { sed -n '2,16p' "$0"; }
pg_parse "$@"
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
    pg_set "$dev" "pkt_size $((PKT_SIZE - 4))"   # without the FCS
    pg_set "$dev" "burst $BURST"
    pg_set "$dev" "delay 0"
    pg_set "$dev" "dst $DEST_IP"
    pg_set "$dev" "dst_mac $DST_MAC"
    pg_set "$dev" "udp_dst_min $DST_PORT"
    pg_set "$dev" "udp_dst_max $DST_PORT"
    # Per-thread source port block: threads never share a flow.
    base=$((10000 + i * FLOWS))
    pg_set "$dev" "udp_src_min $base"
    pg_set "$dev" "udp_src_max $((base + FLOWS - 1))"
    pg_set "$dev" "flag UDPSRC_RND"
    if [ -n "$SRC_RANGE" ]; then
        pg_set "$dev" "src_min ${SRC_RANGE%-*}"
        pg_set "$dev" "src_max ${SRC_RANGE#*-}"
        pg_set "$dev" "flag IPSRC_RND"
    fi
    devs+=("$dev")
done
pg_run_bounded "${devs[@]}"
