#!/usr/bin/env bash
# internalTrafficPolicy: Local and topology hints, from a pod and from the
# node, with svclbd --node-name node-a --zone zone-a (kube-proxy's rules,
# pkg/proxy/topology.go): be1 is on this node / hinted for zone-a, be2 on
# node-b / zone-b.
#  - iTP Local: only be1 answers; with no endpoint on this node (both on
#    node-b) new flows are dropped (not rejected), counted no_local_endpoint.
#  - topology hints: every endpoint hinted and one for zone-a: only be1;
#    a hint missing, or none for zone-a: both (kube-proxy's fallback);
#    node hints (forNodes) naming node-a: only be1.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
DAEMON_FLAGS_EXTRA=(--node-name node-a --zone zone-a)
e2e_setup policy

# slice ITP BE1-NODE BE2-NODE BE1-ZONES BE2-ZONES [BE1-NODEHINTS BE2-NODEHINTS]
# (zones/hints: comma lists, "-" for none): applies web's Service with that
# internalTrafficPolicy and one EndpointSlice for be1 and be2.
apply_policy() {
    local itp=$1 n1=$2 n2=$3 z1=$4 z2=$5 h1=${6:--} h2=${7:--} f=$TOPO_TMP/policy.yaml
    hints() {  # ZONES NODEHINTS
        [[ $1 == - && $2 == - ]] && return
        printf '  hints:\n'
        local x
        if [[ $1 != - ]]; then printf '    forZones:\n'; for x in ${1//,/ }; do printf '    - name: %s\n' "$x"; done; fi
        if [[ $2 != - ]]; then printf '    forNodes:\n'; for x in ${2//,/ }; do printf '    - name: %s\n' "$x"; done; fi
    }
    {
        cat <<Y
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  internalTrafficPolicy: $itp
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 5353, protocol: UDP, targetPort: 5353}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-policy
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, port: 8080, protocol: TCP}
- {name: dns, port: 5353, protocol: UDP}
endpoints:
- addresses: [${POD_IP[be1]}]
  conditions: {ready: true}
  nodeName: $n1
Y
        hints "$z1" "$h1"
        cat <<Y
- addresses: [${POD_IP[be2]}]
  conditions: {ready: true}
  nodeName: $n2
Y
        hints "$z2" "$h2"
    } >"$f"
    e2e_apply "$f"
}

drops() { jq -r --arg r "$1" '[.drops[]? | select(.reason==$r)][0].packets // 0' <<<"$(stats_json)"; }

only_be1() {  # WHAT
    local out
    out=$(http_get_many client 20 "http://$VIP/")
    assert_eq 20 "$(count_lines "$out" be1)" "$1: pod -> $VIP answers from be1 ($(sort <<<"$out" | uniq -c | xargs))"
    out=$(http_get_many node 10 "http://$VIP/")
    assert_eq 10 "$(count_lines "$out" be1)" "$1: node -> $VIP answers from be1 ($(sort <<<"$out" | uniq -c | xargs))"
}
both() {  # WHAT
    local out
    out=$(http_get_many client 30 "http://$VIP/")
    check_both_answer "$out" 30 3 "$1: pod -> $VIP"
}

test_itp_local() {
    apply_policy Local node-a node-b - -
    only_be1 "internalTrafficPolicy Local (be1 on node-a)"
}

test_itp_local_none_here() {
    local d0 d1 out
    apply_policy Local node-b node-b - -
    d0=$(drops no_local_endpoint)
    out=$(in_pod_t 10 client curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 -m 2 "http://$VIP/"); rc=$?
    assert_eq 28 "$rc" "pod curl to an iTP Local Service with no endpoint on this node: dropped (curl 28 = timeout, not 7 = refused; got $rc $out)"
    in_node_cg_t 10 curl -s --connect-timeout 1 -m 2 "http://$VIP/" >/dev/null; rc=$?
    assert_ne 0 "$rc" "node curl to an iTP Local Service with no endpoint on this node fails"
    d1=$(drops no_local_endpoint)
    assert_ge "$((d1 - d0))" 2 "no_local_endpoint drops counted (pod SYN + node connect)"
}

test_itp_cluster_unaffected() {
    apply_policy Cluster node-b node-b - -
    both "internalTrafficPolicy Cluster, endpoints elsewhere"
}

test_zone_hints() {
    apply_policy Cluster node-a node-b zone-a zone-b
    only_be1 "zone hints (be1 for zone-a, be2 for zone-b)"
}

test_zone_hint_missing() {
    apply_policy Cluster node-a node-b zone-a -
    both "zone hints, be2 without a hint (fallback: all)"
}

test_zone_hints_not_for_us() {
    apply_policy Cluster node-a node-b zone-c zone-b
    both "zone hints, none for zone-a (fallback: all)"
}

test_node_hints() {
    apply_policy Cluster node-a node-b zone-b zone-a node-a node-b
    only_be1 "node hints (be1 for node-a) win over zone hints (be2 for zone-a)"
}

run_test "policy: internalTrafficPolicy Local keeps this node's endpoints" test_itp_local
run_test "policy: internalTrafficPolicy Local, none on this node: dropped" test_itp_local_none_here
run_test "policy: internalTrafficPolicy Cluster uses remote endpoints" test_itp_cluster_unaffected
run_test "policy: zone hints pick zone-a's endpoint" test_zone_hints
run_test "policy: a missing zone hint falls back to all" test_zone_hint_missing
run_test "policy: no hint for this zone falls back to all" test_zone_hints_not_for_us
run_test "policy: node hints" test_node_hints
finish
