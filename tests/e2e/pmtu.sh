#!/usr/bin/env bash
# ICMP errors for translated flows (issue 17): PMTU discovery through a
# NodePort. The client uploads 2 MB through node2:30090 (externalTrafficPolicy
# Cluster: node2 source-NATs the flow to the backend be1 on node1). node1's
# side of be1's veth has MTU 1400 while every host keeps 1500, so node1 drops
# the full-size segments and sends "fragmentation needed" to node2 (the
# flow's source after SNAT), quoting node2:snatPort -> be1. node2's svclb
# translates it back (client -> node2:30090 quoted, to the client) and the
# client's TCP lowers its segment size: the upload completes, byte for byte.
# Without the translation node2 drops the error (no socket has that tuple),
# the client never learns the path MTU and the upload stalls (bounded here).
set -u
source "$(dirname "$0")/../testlib/svc.sh"
source "$(dirname "$0")/../testlib/multinode.sh"

mn_test_up "mn-pmtu-$$"
N2=${MN_IP[node2]}
BE1=${POD_IP[be1]}

cat >"$TOPO_TMP/upload.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: upload, namespace: default}
spec:
  type: NodePort
  externalTrafficPolicy: Cluster
  ports:
  - {name: up, port: 9000, targetPort: 9000, nodePort: 30090}
---
apiVersion: v1
kind: Endpoints
metadata: {name: upload, namespace: default}
subsets:
- addresses: [{ip: $BE1, nodeName: node1}]
  ports: [{name: up, port: 9000}]
Y
mn_apply "$TOPO_TMP/upload.yaml" || fatal_setup "apply upload.yaml"
in_mn node1 ip link set lxcbe1 mtu 1400 || fatal_setup "MTU 1400 on node1's lxcbe1"

head -c 2000000 /dev/urandom >"$TOPO_TMP/payload"
WANT=$(sha256sum <"$TOPO_TMP/payload" | cut -d' ' -f1)

# RECEIVED: be1 writes what one connection sends to a file.
test_upload() {
    local got errs
    rm -f "$TOPO_TMP/received"
    bg_ns "$(mn_ns be1)" timeout 40 socat -u "TCP4-LISTEN:9000,bind=$BE1,reuseaddr" \
        "OPEN:$TOPO_TMP/received,creat,trunc" 2>"$TOPO_TMP/socat-be1.log"
    local rx=$BG_PID
    retry 50 0.1 eval "in_mn be1 ss -Hltn 'sport = :9000' | grep -q LISTEN" || { _fail "be1 is not listening"; return; }
    errs=$(svcctl_on node2 stats -o json | jq '.conntrackEvents.icmp_error // 0')
    in_mn_t 30 client socat -u "OPEN:$TOPO_TMP/payload" "TCP4:$N2:30090" 2>"$TOPO_TMP/socat-client.log"
    # socat returns once its data is in the socket; the receiver ends at FIN.
    local i
    for i in $(seq 150); do kill -0 "$rx" 2>/dev/null || break; sleep 0.1; done
    got=$(sha256sum <"$TOPO_TMP/received" 2>/dev/null | cut -d' ' -f1)
    assert_eq "$WANT" "$got" "2 MB uploaded through $N2:30090 arrived whole ($(stat -c %s "$TOPO_TMP/received" 2>/dev/null) bytes)" || return
    assert_ge "$(svcctl_on node2 stats -o json | jq '.conntrackEvents.icmp_error // 0')" $((errs + 1)) \
        "node2 translated the fragmentation-needed errors (svcctl stats conntrackEvents.icmp_error)"
    assert_ge "$(mn_metrics node2 | awk '$1 == "svclb_conntrack_events_total{event=\"icmp_error\"}" { print $2 }')" 1 \
        "svclb_conntrack_events_total{event=\"icmp_error\"} on node2"
}

run_test "pmtu: a 2 MB upload through a NodePort (SNAT) over an MTU-1400 hop completes" test_upload
finish
