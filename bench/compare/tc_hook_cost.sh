#!/usr/bin/env bash
# What a tc hook itself costs forwarded packets: the legacy classifier (clsact
# qdisc + cls_bpf direct-action filter, how svclbd attaches today) against a
# tcx link (kernel >= 6.6) and against no program, side by side in one run.
# The program is bench_ref's ref_tc_ok (returns TC_ACT_OK at once), attached
# to both hooks of both node veths, as svclbd attaches svclb_tc_pod_in /
# svclb_tc_pod_out to each --iface: a forwarded packet runs two of them.
#
#   bench/compare/tc_hook_cost.sh [--build DIR] [--rounds N] [--seconds S]
#
# Topology (bench/compare/run.sh's routing config): client ns -> node ns
# (routing) -> backend ns, UDP 64 B from svclb-trafficgen (XDP live frames, 2
# threads, one flow), counted by a tc drop on the backend veth. Rounds rotate
# the three modes; per mode the median forwarded pps and per round the ratio
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
        *) sed -n '2,19p' "$0" >&2; exit 2 ;;
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

# tcx IFNAME ingress|egress: a tcx link of ref_tc_ok, pinned (the pin holds it).
tcx() {
    in_ns n "$PY" - "$1" "$2" "$BPFDIR/ref/ref_tc_ok" "$BPFDIR/link-$1-$2" <<'EOF'
import ctypes, os, socket, sys
lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
ifindex = socket.if_nametoindex(sys.argv[1])
prog = lib.bpf_obj_get(sys.argv[3].encode())
if prog < 0:
    sys.exit("tc_hook_cost: bpf_obj_get %s: %s" % (sys.argv[3], os.strerror(-prog)))
link = lib.bpf_link_create(prog, ifindex, 46 if sys.argv[2] == "ingress" else 47, None)
if link < 0:
    sys.exit("tc_hook_cost: tcx link on %s %s: %s (kernel before 6.6?)" % (sys.argv[1], sys.argv[2], os.strerror(-link)))
err = lib.bpf_obj_pin(link, sys.argv[4].encode())
if err:
    sys.exit("tc_hook_cost: pin %s: %s" % (sys.argv[4], os.strerror(-err)))
EOF
}
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
            for d in n0 nb; do for h in ingress egress; do tcx "$d" "$h" || return 1; done; done ;;
    esac
}

target() { echo 10.251.0.11 5353; }
three_ns_rounds none none legacy tcx
