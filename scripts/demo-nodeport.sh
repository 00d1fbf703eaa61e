#!/usr/bin/env bash
# svclb NodePort / LoadBalancer demo: two nodes and two clients on one LAN
# (network namespaces joined by a bridge), each node running its own svclbd
# with XDP on its eth0; the backends run on node1 only.
#   - client -> node2:30080 reaches a backend on node1 (SNAT to node2 in XDP,
#     the reply translated back);
#   - client -> node1:30080 reaches a local backend with its own address;
#   - client -> the LoadBalancer IP from a MetalLB pool, found by ARP alone.
#
#   scripts/demo-nodeport.sh     (also: scripts/demo.sh nodeport)
#
# Needs root. Nothing is added to the root namespace's interfaces.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "demo-nodeport.sh: needs root" >&2; exit 1; }
export SVCLB_BIN=${SVCLB_BIN:-$REPO/build/bin}
if [[ ! -x $SVCLB_BIN/svclbd || ! -x $SVCLB_BIN/svcctl ]]; then
    (cd "$REPO" && scripts/build.sh) || { echo "build failed" >&2; exit 1; }
fi
# shellcheck source=../tests/testlib/multinode.sh
source "$REPO/tests/testlib/multinode.sh"

hdr() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; }

mn_init "svclb-np-demo"
hdr "topology"
mn_up || exit 1
echo "  node1 ${MN_IP[node1]} (pods be1 ${POD_IP[be1]}, be2 ${POD_IP[be2]})   node2 ${MN_IP[node2]}   client ${MN_IP[client]}"
hdr "svclbd on both nodes (--external-iface eth0)"
mn_daemons_up || exit 1
show "svcctl status   (node2)"; svcctl_on node2 status | sed -n '/External/,$p'

hdr "apply examples/nodeport-lb.yaml to both nodes"
mn_apply "$REPO/examples/nodeport-lb.yaml" || exit 1
show "svcctl get svc   (node2)"; svcctl_on node2 get svc

rc=0
check() {  # WHAT URL REGEX
    local out
    out=$(mn_curl client "$2")
    printf '  %-44s %s -> %s\n' "$1" "$2" "$out"
    [[ $out =~ $3 ]] || { echo "  FAILED" >&2; rc=1; }
}
hdr "traffic from the client (backends answer '<pod> <address they saw>')"
check "via node2 (remote backends: SNAT)" "http://${MN_IP[node2]}:30080/" "^be[12] ${MN_IP[node2]}"
check "via node1 (local backends: client kept)" "http://${MN_IP[node1]}:30080/" "^be[12] ${MN_IP[client]}"
lbip=$(svcctl_on node1 get svc web-lb -o json | jq -r '.status.loadBalancer.ingress[0].ip')
check "LoadBalancer IP (ARP answered in XDP)" "http://$lbip/" "^be[12] "
show "ip neigh   (client)"; in_mn client ip neigh show "$lbip"
hdr "counters (node2)"
show "svcctl stats"; svcctl_on node2 stats
((rc == 0)) || { echo "demo traffic FAILED (logs: $TOPO_TMP)" >&2; exit 1; }
hdr "tearing down"
exit 0
