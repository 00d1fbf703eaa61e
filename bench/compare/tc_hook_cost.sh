#!/usr/bin/env bash
# What a tc hook itself costs forwarded packets: the legacy classifier (clsact
# qdisc + cls_bpf direct-action filter) against a tcx link (kernel >= 6.6)
# and against no program, side by side in one run. The program is
# bench_ref's ref_tc_ok (returns TC_ACT_OK at once), attached to both hooks
# of both node veths, as svclbd attaches svclb_tc_pod_in / svclb_tc_pod_out
# to each --iface: a forwarded packet runs two of them.
# Mode `dnat` (tcx) is the floor of an established flow to a Service: on
# n0's ingress bench_ref's ref_tc_ct_dnat (one CT hash lookup, the
# destination rewritten with both checksums; no counters, no backend
# check), ref_tc_ok on the other three hooks, the traffic sent to a VIP
# (10.96.0.10:5353) whose one CT entry names the backend; a packet reaches
# the backend's counter only if it was translated.
#
#   bench/compare/tc_hook_cost.sh [--build DIR] [--rounds N] [--seconds S]
#
# Topology (bench/compare/run.sh's routing config): client ns -> node ns
# (routing) -> backend ns, UDP 64 B from svclb-trafficgen (XDP live frames, or
# AF_PACKET where the kernel refuses them; 2
# threads, one flow), counted by a tc drop on the backend veth. Rounds rotate
# the four modes; per mode the median forwarded pps and per round the ratio
# to the round's `none` and tcx/legacy. Debian 12's bpftool and libbpf 1.1
# have no tcx API: the link is made with libbpf's generic bpf_link_create
# (attach types BPF_TCX_INGRESS 46 / BPF_TCX_EGRESS 47) through python ctypes.
# Everything lives in namespaces and a bpffs directory this script creates,
# removed on exit; every load is bounded in time.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$REPO/build
ROUNDS=9
SECS=2
while [ $# -gt 0 ]; do
    case $1 in
        --build) BUILD=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --seconds) SECS=$2; shift ;;
        *) sed -n '2,/^set -u/{/^set -u/!p}' "$0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "tc_hook_cost: needs root" >&2; exit 77; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "tc_hook_cost: --rounds takes a positive number" >&2; exit 2; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "tc_hook_cost: --seconds takes whole seconds" >&2; exit 2; }
GEN=$BUILD/bin/svclb-trafficgen
REFOBJ=$BUILD/bench/bench_ref.bpf.o
for f in "$GEN" "$REFOBJ"; do [ -e "$f" ] || { echo "tc_hook_cost: $f missing (build first)" >&2; exit 1; }; done
for t in bpftool ethtool tc; do command -v $t >/dev/null || { echo "tc_hook_cost: needs $t" >&2; exit 1; }; done
PY=/usr/bin/python3

P=thc$$
BPFDIR=/sys/fs/bpf/$P
TMP=$(mktemp -d)
NAME=tc_hook_cost
# shellcheck source=three_ns.sh
source "$HERE/three_ns.sh"
cleanup() {
    set +e
    three_ns_cleanup
    rm -rf "$BPFDIR" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
three_ns_up

setmode() {
    local d h
    for d in n0 nb; do in_ns n tc qdisc del dev "$d" clsact 2>/dev/null; done
    rm -f "$BPFDIR"/link-*   # unpinning the last reference detaches a tcx link
    case $1 in
        none) ;;
        legacy)
            for d in n0 nb; do
                in_ns n tc qdisc add dev "$d" clsact || return 1
                for h in ingress egress; do
                    in_ns n tc filter add dev "$d" "$h" prio 1 handle 1 bpf direct-action \
                        object-pinned "$BPFDIR/ref/ref_tc_ok" || return 1
                done
            done ;;
        tcx)
            for d in n0 nb; do for h in ingress egress; do three_ns_tcx "$d" "$h" || return 1; done; done ;;
        dnat) three_ns_dnat 10.96.0.10 5353 || return 1 ;;
    esac
}

target() { if [ "$1" = dnat ]; then echo 10.96.0.10 5353; else echo 10.251.0.11 5353; fi; }
three_ns_rounds none none legacy tcx dnat
