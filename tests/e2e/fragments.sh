#!/usr/bin/env bash
# Issue 17: IP fragments through a ClusterIP on the pods' tc path. A real
# client pod sends 4,000-byte UDP datagrams to a ClusterIP over veths with MTU
# 1500: its stack sends each in 3 fragments, of which only the first carries
# the UDP header. Every fragment must reach the same backend (DNAT at the
# client's tc ingress), and the backend's 4,000-byte answer, also in 3
# fragments, must come back with the VIP as source in every one (reverse
# NAT at the backend's tc ingress), or the client's reassembly never
# completes. The content is checked byte for byte. SVCLB_SOCKET_LB=node: with
# the socket hooks balancing the pods' sockets at connect()/sendmsg() the
# datagrams would be sent to the backend directly and never meet tc.
# The same over IPv6 (issue 16): the pods get IPv6 addresses, a v6 Service
# frag6 (ipFamilies [IPv6]) has their v6 endpoints; an IPv6 source cuts the
# datagram behind a fragment header, later fragments find their first's
# ports in frag6_v1.
set -u
SVCLB_SOCKET_LB=node
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/frag.sh"
SERVICE_CIDR=10.96.0.0/12,fd00:10:96::/112
e2e_setup frag

FVIP=10.96.0.20 FSVC_PORT=7000 SIZE=4000 K=5
FVIP6=fd00:10:96::14
topo_add_pod6 be1 fd00:10:244:1::11
topo_add_pod6 be2 fd00:10:244:1::12
topo_add_pod6 client fd00:10:244:1::20

frag_manifest() {
    local f=$TOPO_TMP/frag.yaml
    cat >"$f" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: frag
  namespace: default
spec:
  type: ClusterIP
  clusterIP: $FVIP
  ports:
  - name: echo
    port: $FSVC_PORT
    protocol: UDP
    targetPort: $FRAG_PORT
---
apiVersion: v1
kind: Endpoints
metadata:
  name: frag
  namespace: default
subsets:
- addresses:
  - ip: ${POD_IP[be1]}
  - ip: ${POD_IP[be2]}
  ports:
  - name: echo
    port: $FRAG_PORT
    protocol: UDP
YAML
    echo "$f"
}

frag6_manifest() {
    local f=$TOPO_TMP/frag6.yaml
    cat >"$f" <<YAML
apiVersion: v1
kind: Service
metadata:
  name: frag6
  namespace: default
spec:
  type: ClusterIP
  ipFamilies: [IPv6]
  clusterIP: "$FVIP6"
  ports:
  - name: echo
    port: $FSVC_PORT
    protocol: UDP
    targetPort: $FRAG_PORT
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: frag6-1
  namespace: default
  labels:
    kubernetes.io/service-name: frag6
addressType: IPv6
endpoints:
- addresses: ["${POD_IP6[be1]}"]
- addresses: ["${POD_IP6[be2]}"]
ports:
- name: echo
  port: $FRAG_PORT
  protocol: UDP
YAML
    echo "$f"
}

for p in be1 be2; do
    bg_ns "$(pod_ns "$p")" "$PY" -c "$FRAG_ECHO_PY" "$p" "${POD_IP[$p]}" "$FRAG_PORT" >"$TOPO_TMP/echo-$p.log" 2>&1
    bg_ns "$(pod_ns "$p")" "$PY" -c "$FRAG_ECHO_PY" "$p" "${POD_IP6[$p]}" "$FRAG_PORT" >"$TOPO_TMP/echo6-$p.log" 2>&1
done
for p in client be1 be2; do in_ns "$(pod_ns "$p")" ip link set eth0 mtu 1500; done
for p in be1 be2; do
    retry 20 0.2 eval "in_pod_t 5 client \"\$PY\" -c \"\$FRAG_CLIENT_PY\" ${POD_IP[$p]} $FRAG_PORT 1 100 >/dev/null" \
        || fatal_setup "UDP echo server in $p did not come up"
    retry 20 0.2 eval "in_pod_t 5 client \"\$PY\" -c \"\$FRAG_CLIENT_PY\" ${POD_IP6[$p]} $FRAG_PORT 1 100 >/dev/null" \
        || fatal_setup "IPv6 UDP echo server in $p did not come up"
done
e2e_apply "$(frag_manifest)" || fatal_setup "apply the frag Service"
e2e_apply "$(frag6_manifest)" || fatal_setup "apply the frag6 Service"

# frag_stat JSON FIELD SERVICE: a counter of SERVICE (frag), port echo.
frag_stat() {
    jq -r --arg f "$2" --arg s "${3:-frag}" \
        '[.services[]? | select(.name==$s and .port=="echo")][0][$f] // empty' <<<"$1"
}

# test_big_datagrams [VIP SERVICE]
test_big_datagrams() {
    local vip=${1:-$FVIP} svc=${2:-frag} before after out
    before=$(stats_json)
    out=$(in_pod_t 60 client "$PY" -c "$FRAG_CLIENT_PY" "$vip" "$FSVC_PORT" "$K" "$SIZE")
    assert_eq $K "$(grep -cE "^be[12] from $vip:$FSVC_PORT ok $SIZE\$" <<<"$out")" \
        "$K datagrams of $SIZE bytes echoed whole from $vip:$FSVC_PORT (got: $(tr '\n' '|' <<<"$out"))"
    after=$(stats_json)
    # 4,000 bytes + UDP header in 1,480 (IPv6: 1,448)-byte pieces: 3
    # fragments each way.
    assert_eq $((3 * K)) "$(_delta "$(frag_stat "$before" packets "$svc")" "$(frag_stat "$after" packets "$svc")")" \
        "every fragment of the requests translated (3 per datagram)"
    assert_eq $((3 * K)) "$(_delta "$(frag_stat "$before" replyPackets "$svc")" "$(frag_stat "$after" replyPackets "$svc")")" \
        "every fragment of the answers reverse-translated (3 per datagram)"
}

# Datagrams from many sockets spread over both backends: each one's
# fragments stay together on its backend. [VIP]
test_both_backends() {
    local vip=${1:-$FVIP} out="" i
    for i in $(seq 20); do
        out+=$(in_pod_t 10 client "$PY" -c "$FRAG_CLIENT_PY" "$vip" "$FSVC_PORT" 1 "$SIZE")$'\n'
    done
    assert_eq 20 "$(grep -cE "^be[12] from $vip:$FSVC_PORT ok $SIZE\$" <<<"$out")" \
        "20 sockets, each answered whole (got: $(tr '\n' '|' <<<"$out"))"
    assert_ge "$(grep -c '^be1 ' <<<"$out")" 1 "answers from be1"
    assert_ge "$(grep -c '^be2 ' <<<"$out")" 1 "answers from be2"
}

test_counter_exported() {
    local m
    m=$(metrics)
    assert_eq 0 "$(metric_sample "$m" svclb_conntrack_events_total event=fragment_without_first)" \
        "no later fragment went without its first (svclb_conntrack_events_total{event=\"fragment_without_first\"})"
}

run_test "fragments: $K UDP datagrams of $SIZE bytes through $FVIP (MTU 1500, tc path)" test_big_datagrams
run_test "fragments: many sockets, both backends, each datagram whole" test_both_backends
run_test "fragments: $K UDP datagrams of $SIZE bytes through [$FVIP6] (IPv6 fragment headers, tc path)" \
    test_big_datagrams "$FVIP6" frag6
run_test "fragments: IPv6, many sockets, both backends, each datagram whole" test_both_backends "$FVIP6"
run_test "fragments: the fragment counter is exported" test_counter_exported
finish
