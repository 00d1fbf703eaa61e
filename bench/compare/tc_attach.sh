#!/usr/bin/env bash
# svclbd's tc programs attached through tcx links against the legacy clsact
# + cls_bpf attach (svclbd --tc-attach tcx|legacy), side by side in one run,
# and plain routing (no svclb program) as the yardstick: forwarded pps of an
# established UDP flow to a ClusterIP (one backend), the figure of issue 15's
# "established pps >= 0.95x routing". Mode `dnat` is that target's floor: no
# svclbd, the bare stateful DNAT of bench_ref on tcx links
# (three_ns.sh's three_ns_dnat: one CT lookup and the rewrite) for the same
# ClusterIP. SVCLBD_B=BINARY (another build's svclbd: its BPF programs are
# built in) adds mode `tcxb`, that build on tcx links, rotated with the
# others: two builds' established path side by side in one run.
#
#   bench/compare/tc_attach.sh [--build DIR] [--rounds N] [--seconds S]
#
# Topology (tc_hook_cost.sh's, bench/compare/run.sh's routing config): client
# ns -> node ns -> backend ns, svclbd on the node with --iface n0 --iface nb
# (ingress and egress programs on both, as on pod interfaces), UDP 64 B from
# svclb-trafficgen (XDP live frames, or AF_PACKET where the kernel refuses
# them; 2 threads, one flow) to the ClusterIP,
# counted by a tc drop on the backend veth. Rounds rotate the modes; svclbd
# is restarted with the round's --tc-attach (a restart swaps the programs,
# and the attach, in place); `route` runs svclbd --uninstall and sends to the
# backend's own address. Per mode the median pps, per round the ratios.
# Everything lives in namespaces, a bpffs directory and a temp dir this
# script creates, removed on exit; every load is bounded in time.
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
[ "$(id -u)" = 0 ] || { echo "tc_attach: needs root" >&2; exit 77; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "tc_attach: --rounds takes a positive number" >&2; exit 2; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "tc_attach: --seconds takes whole seconds" >&2; exit 2; }
GEN=$BUILD/bin/svclb-trafficgen
REFOBJ=$BUILD/bench/bench_ref.bpf.o
SVCLBD=$BUILD/bin/svclbd
SVCLBD_B=${SVCLBD_B:-}
[ -z "$SVCLBD_B" ] || [ -x "$SVCLBD_B" ] || { echo "tc_attach: SVCLBD_B=$SVCLBD_B is not an executable" >&2; exit 2; }
SVCCTL=$BUILD/bin/svcctl
for f in "$GEN" "$REFOBJ" "$SVCLBD" "$SVCCTL"; do [ -e "$f" ] || { echo "tc_attach: $f missing (build first)" >&2; exit 1; }; done
for t in bpftool ethtool tc; do command -v $t >/dev/null || { echo "tc_attach: needs $t" >&2; exit 1; }; done
PY=/usr/bin/python3

P=tca$$
BPFDIR=/sys/fs/bpf/$P
TMP=$(mktemp -d)
NAME=tc_attach
DPID=""
# shellcheck source=three_ns.sh
source "$HERE/three_ns.sh"
FLAGS=(--bpffs "$BPFDIR/svclb" --iface n0 --iface nb --state-dir "$TMP/state" --socket "$TMP/svclb.sock"
    --metrics-addr 127.0.0.1:9811 --service-cidr 10.96.0.0/12 --cluster-dns none --socket-lb none)
svcctl() { timeout 20 "$SVCCTL" --socket "$TMP/svclb.sock" "$@"; }
stop_svclbd() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
start_svclbd() {  # start_svclbd legacy|tcx [BINARY]
    local i
    # nsenter itself, not in_ns (a function: `&` would fork a subshell whose
    # PID is not svclbd's).
    nsenter --net="/run/netns/$P-n" "${2:-$SVCLBD}" "${FLAGS[@]}" --tc-attach "$1" >>"$TMP/svclbd.log" 2>&1 &
    DPID=$!
    for i in $(seq 100); do svcctl status >/dev/null 2>&1 && return 0; sleep 0.1; done
    tail -20 "$TMP/svclbd.log" >&2
    return 1
}
cleanup() {
    set +e
    stop_svclbd
    ip netns list | grep -q "^$P-n\b" && in_ns n timeout 30 "$SVCLBD" --uninstall "${FLAGS[@]}" >>"$TMP/uninstall.log" 2>&1
    three_ns_cleanup
    rm -rf "$BPFDIR" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

three_ns_up
mkdir -p "$TMP/state"
start_svclbd legacy || { echo "tc_attach: svclbd did not start" >&2; exit 1; }
svcctl apply -f - >/dev/null <<'YAML' || { echo "tc_attach: apply failed" >&2; exit 1; }
apiVersion: v1
kind: Service
metadata: {name: bench, namespace: default}
spec:
  clusterIP: 10.96.0.100
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: bench, namespace: default}
subsets:
- addresses: [{ip: 10.251.0.11}]
  ports: [{name: dns, port: 5353, protocol: UDP}]
YAML

setmode() {
    stop_svclbd
    rm -f "$BPFDIR"/link-*
    case $1 in
        route) in_ns n timeout 30 "$SVCLBD" --uninstall "${FLAGS[@]}" >>"$TMP/uninstall.log" 2>&1 ;;
        dnat)
            in_ns n timeout 30 "$SVCLBD" --uninstall "${FLAGS[@]}" >>"$TMP/uninstall.log" 2>&1
            three_ns_dnat 10.96.0.100 53 ;;
        tcxb) start_svclbd tcx "$SVCLBD_B" ;;
        *) start_svclbd "$1" ;;
    esac
}

target() { if [ "$1" = route ]; then echo 10.251.0.11 5353; else echo 10.96.0.100 53; fi; }
if [ -n "$SVCLBD_B" ]; then
    three_ns_rounds route route legacy tcx tcxb dnat
else
    three_ns_rounds route route legacy tcx dnat
fi
