#!/usr/bin/env bash
# Node NICs that are veths: svclb's XDP datapath against its tc datapath,
# side by side in one run (docs/architecture.md, "veth NICs").
#
#   bench/compare/veth_datapath.sh [--build DIR] [--rounds N] [--seconds S]
#
# Topology: tests/testlib/multinode.sh, TUNED (TX checksum offload off on the
# LAN hosts, XDP_PASS + GRO on the lan-side peers of the node NICs), because
# the XDP datapath only works on such a lab; the tc datapath works on it too
# (and on an untuned lab, where XDP does not). A NodePort Service whose two
# backends (svclb-tcpbench servers: accept, RST) run on node1. Measured from
# the client, in rounds that alternate the datapath (svclbd restarted with
# --external-datapath xdp|tc, which also swaps the programs on the NICs):
#   - new TCP connections/s to node2:NodePort (remote backends: DNAT + SNAT
#     + forward on node2; replies reverse-translated on node2) and to
#     node1:NodePort (local backends: DNAT, stack), in short bursts,
#   - MB/s of one 40 MB HTTP download through each (established flows).
# Each figure is the median over the rounds; the ratio tc/xdp is per round.
# Everything lives in namespaces this script creates; every load is bounded
# in time (svclb-tcpbench client --duration).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=$REPO/build
ROUNDS=3
SECS=0.5
while [ $# -gt 0 ]; do
    case $1 in
        --build) BUILD=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --seconds) SECS=$2; shift ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "veth_datapath: needs root" >&2; exit 1; }
SVCLB_BIN=$BUILD/bin
for t in svclbd svcctl svclb-tcpbench; do
    [ -x "$SVCLB_BIN/$t" ] || { echo "veth_datapath: $SVCLB_BIN/$t missing (build first)" >&2; exit 1; }
done
export MN_TUNED=1
# shellcheck source=tests/testlib/multinode.sh
source "$REPO/tests/testlib/multinode.sh"
mn_init "vd-$$"
mn_up || exit 1
BPORT=9100
for p in be1 be2; do
    bg_ns "$(mn_ns "$p")" "$SVCLB_BIN/svclb-tcpbench" server --port $BPORT --duration 3600 \
        >"$TOPO_TMP/tcpbench-$p.log" 2>&1
done
cat >"$TOPO_TMP/svc.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: cps, namespace: default}
spec:
  type: NodePort
  ports: [{name: tcp, port: 91, protocol: TCP, targetPort: $BPORT, nodePort: 30091}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cps-node1
  namespace: default
  labels: {kubernetes.io/service-name: cps}
addressType: IPv4
ports: [{name: tcp, port: $BPORT, protocol: TCP}]
endpoints:
- {addresses: [${POD_IP[be1]}], conditions: {ready: true}, nodeName: node1}
- {addresses: [${POD_IP[be2]}], conditions: {ready: true}, nodeName: node1}
EOF

# cps NODE: connections/s from the client to NODE:30091 in a short burst.
# Each RST-closed flow keeps its SNAT port for the closing lifetime (10 s):
# bursts stay under the port range (4,536) and wait that lifetime out, so
# both datapaths start with free ports.
cps() {
    in_mn_t 30 client "$SVCLB_BIN/svclb-tcpbench" client --addr "${MN_IP[$1]}" \
        --port 30091 --inflight 16 --duration "$SECS" | jq -r '.cps'
}
# mbps NODE: MB/s of one 40 MB HTTP download from NODE:30080 (CT hits).
mbps() {
    in_mn_t 60 client curl -s --max-time 50 -o /dev/null -w '%{speed_download}' \
        "http://${MN_IP[$1]}:30080/bytes/40000000" | awk '{ printf "%.0f", $1 / 1e6 }'
}

declare -A RES=()
for ((r = 1; r <= ROUNDS; r++)); do
    for dp in xdp tc; do
        MN_EXTERNAL_DATAPATH=$dp
        mn_daemons_up || { echo "veth_datapath: svclbd did not start ($dp)" >&2; exit 1; }
        mn_apply "$TOPO_TMP/svc.yaml" "$REPO/tests/e2e/manifests/multinode-nodeport.yaml" >/dev/null || exit 1
        got=$(svcctl_on node2 status -o json | jq -r '.externalInterfaces[0].datapath')
        [ "$got" = "$dp" ] || { echo "veth_datapath: node2 runs datapath '$got', wanted $dp" >&2; exit 1; }
        for n in node2 node1; do
            RES[$dp,cps,$n,$r]=$(cps "$n")
            RES[$dp,mbps,$n,$r]=$(mbps "$n")
            printf 'round %d %-3s via %s: %s conn/s, %s MB/s\n' "$r" "$dp" "$n" "${RES[$dp,cps,$n,$r]}" "${RES[$dp,mbps,$n,$r]}" >&2
        done
        for n in "${MN_NODES[@]}"; do mn_daemon_stop "$n"; done
        sleep 11   # the closing lifetime: SNAT ports of the burst free again
    done
done

median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
echo "| metric, via | xdp (median) | tc (median) | tc/xdp per round |"
echo "|---|---|---|---|"
for m in cps mbps; do
    for n in node2 node1; do
        xs=() ts=() ratios=()
        for ((r = 1; r <= ROUNDS; r++)); do
            xs+=("${RES[xdp,$m,$n,$r]}"); ts+=("${RES[tc,$m,$n,$r]}")
            ratios+=("$(awk -v a="${RES[tc,$m,$n,$r]}" -v b="${RES[xdp,$m,$n,$r]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')")
        done
        what="new TCP connections/s"; [ $m = mbps ] && what="one TCP download, MB/s"
        where="$n (remote backends: DNAT+SNAT+forward)"
        [ $n = node1 ] && where="$n (local backends: DNAT, stack)"
        echo "| $what, $where | $(median "${xs[@]}") | $(median "${ts[@]}") | ${ratios[*]} |"
    done
done
