#!/usr/bin/env bash
# Issue 17, two nodes: IP fragments through a NodePort whose backends are on
# the other node. The client (outside every node) sends 4,000-byte UDP
# datagrams to node2:30070 over MTU 1500 links: 3 fragments each, only the
# first with the UDP header. node2 has no local backend: it source-NATs every
# fragment alike (source node2, destination a pod on node1) and forwards it;
# the backend's 4,000-byte answer comes back to node2 in 3 fragments, each
# sent on to the client as node2:30070. The content is checked byte for
# byte. Untuned lab: svclbd's tc datapath on the node NICs (as
# multinode_nodeport.sh; e2e.multinode_fragments_xdp runs it on XDP).
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"
source "$(dirname "$0")/../testlib/frag.sh"

NODEPORT=30070 SIZE=4000 K=5

frag_manifest() {
    local f=$TOPO_TMP/frag.yaml
    cat >"$f" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: frag
  namespace: default
spec:
  type: NodePort
  externalTrafficPolicy: Cluster
  ports:
  - name: echo
    port: 7000
    protocol: UDP
    targetPort: $FRAG_PORT
    nodePort: $NODEPORT
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: frag-node1
  namespace: default
  labels:
    kubernetes.io/service-name: frag
    endpointslice.kubernetes.io/managed-by: svclb.example.com
addressType: IPv4
ports:
- name: echo
  port: $FRAG_PORT
  protocol: UDP
endpoints:
- addresses:
  - ${POD_IP[be1]}
  conditions:
    ready: true
  nodeName: node1
- addresses:
  - ${POD_IP[be2]}
  conditions:
    ready: true
  nodeName: node1
YAML
    echo "$f"
}

mn_test_up "mn-frag-$$"
for p in be1 be2; do
    bg_ns "$(mn_ns "$p")" "$PY" -c "$FRAG_ECHO_PY" "$p" "${POD_IP[$p]}" "$FRAG_PORT" >"$TOPO_TMP/echo-$p.log" 2>&1
done
for h in client node1 node2 be1 be2; do in_mn "$h" ip link set eth0 mtu 1500; done
for p in be1 be2; do
    retry 20 0.2 eval "in_mn_t 5 node1 \"\$PY\" -c \"\$FRAG_CLIENT_PY\" ${POD_IP[$p]} $FRAG_PORT 1 100 >/dev/null" \
        || fatal_setup "UDP echo server in $p did not come up"
done
mn_apply "$(frag_manifest)" || fatal_setup "apply the frag NodePort"
N2=${MN_IP[node2]}

frag_stat() {
    jq -r --arg f "$2" '[.frontends[]?, .services[]? | select(.name=="frag")][0][$f] // empty' <<<"$1"
}

test_big_datagrams_via_node2() {
    local out
    out=$(in_mn_t 60 client "$PY" -c "$FRAG_CLIENT_PY" "$N2" "$NODEPORT" "$K" "$SIZE")
    assert_eq $K "$(grep -cE "^be[12] from $N2:$NODEPORT ok $SIZE\$" <<<"$out")" \
        "$K datagrams of $SIZE bytes via node2 (SNAT) echoed whole from $N2:$NODEPORT (got: $(tr '\n' '|' <<<"$out"))"
}

test_no_missing_first() {
    local m
    m=$(mn_metrics node2)
    assert_eq 0 "$(metric_sample "$m" svclb_conntrack_events_total event=fragment_without_first)" \
        "node2: no later fragment went without its first"
}

run_test "fragments: $K UDP datagrams of $SIZE bytes via node2:$NODEPORT, backend on node1 (SNAT)" \
    test_big_datagrams_via_node2
run_test "fragments: no fragment without its first on node2" test_no_missing_first
finish
