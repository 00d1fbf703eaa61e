#!/usr/bin/env bash
# svclbd's tc programs attached through tcx links against the legacy clsact
# + cls_bpf attach (svclbd --tc-attach tcx|legacy), side by side in one run,
# and plain routing (no svclb program) as the yardstick: forwarded pps of an
# established UDP flow to a ClusterIP (one backend), the figure of issue 15's
# "established pps >= 0.95x routing".
#
#   bench/compare/tc_attach.sh [--build DIR] [--rounds N] [--seconds S]
#
# Topology (tc_hook_cost.sh's, bench/compare/run.sh's routing config): client
# ns -> node ns -> backend ns, svclbd on the node with --iface n0 --iface nb
# (ingress and egress programs on both, as on pod interfaces), UDP 64 B from
# svclb-trafficgen (XDP live frames, 2 threads, one flow) to the ClusterIP,
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
        *) sed -n '2,19p' "$0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "tc_attach: needs root" >&2; exit 77; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "tc_attach: --rounds takes a positive number" >&2; exit 2; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "tc_attach: --seconds takes whole seconds" >&2; exit 2; }
GEN=$BUILD/bin/svclb-trafficgen
REFOBJ=$BUILD/bench/bench_ref.bpf.o
SVCLBD=$BUILD/bin/svclbd
SVCCTL=$BUILD/bin/svcctl
for f in "$GEN" "$REFOBJ" "$SVCLBD" "$SVCCTL"; do [ -e "$f" ] || { echo "tc_attach: $f missing (build first)" >&2; exit 1; }; done
for t in bpftool ethtool tc; do command -v $t >/dev/null || { echo "tc_attach: needs $t" >&2; exit 1; }; done
PY=/usr/bin/python3

P=tca$$
BPFDIR=/sys/fs/bpf/$P
TMP=$(mktemp -d)
DPID=""
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$P-$ns" "$@"; }
# sysfs of a namespace (ip netns exec mounts its own /sys; bpffs stays ours).
sys_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
mac() { sys_ns "$1" cat "/sys/class/net/$2/address"; }
rx() { sys_ns b cat /sys/class/net/b0/statistics/rx_packets; }
FLAGS=(--bpffs "$BPFDIR/svclb" --iface n0 --iface nb --state-dir "$TMP/state" --socket "$TMP/svclb.sock"
    --metrics-addr 127.0.0.1:9811 --service-cidr 10.96.0.0/12 --cluster-dns none --socket-lb none)
svcctl() { timeout 20 "$SVCCTL" --socket "$TMP/svclb.sock" "$@"; }
stop_svclbd() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
start_svclbd() {  # start_svclbd legacy|tcx
    local i
    # nsenter itself, not in_ns (a function: `&` would fork a subshell whose
    # PID is not svclbd's).
    nsenter --net="/run/netns/$P-n" "$SVCLBD" "${FLAGS[@]}" --tc-attach "$1" >>"$TMP/svclbd.log" 2>&1 &
    DPID=$!
    for i in $(seq 100); do svcctl status >/dev/null 2>&1 && return 0; sleep 0.1; done
    tail -20 "$TMP/svclbd.log" >&2
    return 1
}
cleanup() {
    set +e
    local ns pid
    stop_svclbd
    ip netns list | grep -q "^$P-n\b" && in_ns n timeout 30 "$SVCLBD" --uninstall "${FLAGS[@]}" >>"$TMP/uninstall.log" 2>&1
    for ns in c n b; do
        for pid in $(ip netns pids "$P-$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$P-$ns" 2>/dev/null
    done
    rm -rf "$BPFDIR" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$BPFDIR/ref"
bpftool prog loadall "$REFOBJ" "$BPFDIR/ref" >/dev/null || { echo "tc_hook_cost: loading $REFOBJ failed" >&2; exit 1; }
for ns in c n b; do ip netns add "$P-$ns"; in_ns "$ns" ip link set lo up; done
in_ns n ip link add n0 numtxqueues 2 numrxqueues 2 type veth peer name c0 numtxqueues 2 numrxqueues 2 netns "$P-c"
in_ns n ip link add nb numtxqueues 2 numrxqueues 2 type veth peer name b0 numtxqueues 2 numrxqueues 2 netns "$P-b"
in_ns n sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
in_ns n ip addr add 10.250.0.1/24 dev n0
in_ns n ip addr add 10.251.0.1/24 dev nb
in_ns n ip link set n0 up
in_ns n ip link set nb up
in_ns c ip addr add 10.250.0.2/24 dev c0
in_ns c ip link set c0 up
in_ns c ip route add default via 10.250.0.1
in_ns b ip addr add 10.251.0.11/24 dev b0
in_ns b ip link set b0 up
in_ns b ip route add default via 10.251.0.1
in_ns c ip neigh replace 10.250.0.1 lladdr "$(mac n n0)" dev c0
in_ns n ip neigh replace 10.250.0.2 lladdr "$(mac c c0)" dev n0
in_ns n ip neigh replace 10.251.0.11 lladdr "$(mac b b0)" dev nb
in_ns b ip neigh replace 10.251.0.1 lladdr "$(mac n nb)" dev b0
# Redirected XDP frames need veth NAPI on the receiver: GRO on.
in_ns n ethtool -K n0 gro on >/dev/null
in_ns b tc qdisc add dev b0 clsact
in_ns b tc filter add dev b0 ingress prio 1 bpf direct-action object-pinned "$BPFDIR/ref/ref_tc_sink"
N0MAC=$(mac n n0)
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
    case $1 in
        route) in_ns n timeout 30 "$SVCLBD" --uninstall "${FLAGS[@]}" >>"$TMP/uninstall.log" 2>&1 ;;
        *) start_svclbd "$1" ;;
    esac
}

MODES=(route legacy tcx)
echo "[tc_attach] $ROUNDS rounds x ${SECS}s per mode (${MODES[*]}), rotating the order" >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#MODES[@]}; k++)); do
        m=${MODES[$(((r + k) % ${#MODES[@]}))]}
        setmode "$m" || { echo "tc_attach: svclbd ($m) failed" >&2; exit 1; }
        dst=10.96.0.100 dport=53
        [ "$m" = route ] && dst=10.251.0.11 dport=5353
        a=$(rx)
        g=$(in_ns c timeout $((SECS + 20)) "$GEN" --dev c0 --src 10.250.0.2 --dst "$dst" --dport "$dport" \
            --dst-mac "$N0MAC" --threads 2 --duration "$SECS" --count 200000000 --size 64 --flows 1 --json) ||
            { echo "tc_attach: generator failed ($m)" >&2; exit 1; }
        sleep 0.2
        z=$(rx)
        echo "$r $m $("$PY" -c 'import json,sys; print("%.0f" % ((int(sys.argv[3]) - int(sys.argv[2])) / json.loads(sys.argv[1])["seconds"]))' "$g" "$a" "$z")" >>"$TMP/runs"
    done
done
"$PY" - "$TMP/runs" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, m, pps = line.split()
    rows.setdefault(r, {})[m] = float(pps)
def med(xs): return statistics.median(xs)
print("| mode | forwarded pps (median) | per round vs route (median, min-max) |")
print("|---|---|---|")
for m in ("route", "legacy", "tcx"):
    v = [x[m] for x in rows.values()]
    rel = [x[m] / x["route"] for x in rows.values()]
    print("| %s | %.0f | %.3f (%.2f-%.2f) |" % (m, med(v), med(rel), min(rel), max(rel)))
tl = [x["tcx"] / x["legacy"] for x in rows.values()]
print("\ntcx/legacy per round: median %.3f, min-max %.2f-%.2f (%s)" %
      (med(tl), min(tl), max(tl), " ".join("%.2f" % x for x in tl)))
EOF
