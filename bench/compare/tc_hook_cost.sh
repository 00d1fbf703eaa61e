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
cleanup() {
    set +e
    local ns pid
    for ns in c n b; do
        for pid in $(ip netns pids "$P-$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$P-$ns" 2>/dev/null
    done
    rm -rf "$BPFDIR" "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$P-$ns" "$@"; }
# sysfs of a namespace (ip netns exec mounts its own /sys; bpffs stays ours).
sys_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
mac() { sys_ns "$1" cat "/sys/class/net/$2/address"; }
rx() { sys_ns b cat /sys/class/net/b0/statistics/rx_packets; }

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

MODES=(none legacy tcx)
echo "[tc_hook_cost] $ROUNDS rounds x ${SECS}s per mode (${MODES[*]}), rotating the order" >&2
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < ${#MODES[@]}; k++)); do
        m=${MODES[$(((r + k) % ${#MODES[@]}))]}
        setmode "$m" || { echo "tc_hook_cost: attaching ($m) failed" >&2; exit 1; }
        a=$(rx)
        g=$(in_ns c timeout $((SECS + 20)) "$GEN" --dev c0 --src 10.250.0.2 --dst 10.251.0.11 --dport 5353 \
            --dst-mac "$N0MAC" --threads 2 --duration "$SECS" --count 200000000 --size 64 --flows 1 --json) ||
            { echo "tc_hook_cost: generator failed ($m)" >&2; exit 1; }
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
print("| mode | forwarded pps (median) | per round vs none (median, min-max) |")
print("|---|---|---|")
for m in ("none", "legacy", "tcx"):
    v = [x[m] for x in rows.values()]
    rel = [x[m] / x["none"] for x in rows.values()]
    print("| %s | %.0f | %.3f (%.2f-%.2f) |" % (m, med(v), med(rel), min(rel), max(rel)))
tl = [x["tcx"] / x["legacy"] for x in rows.values()]
print("\ntcx/legacy per round: median %.3f, min-max %.2f-%.2f (%s)" %
      (med(tl), min(tl), max(tl), " ".join("%.2f" % x for x in tl)))
EOF
