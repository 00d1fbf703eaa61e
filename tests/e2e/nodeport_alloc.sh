#!/usr/bin/env bash
# Issue 3's control plane through the real daemon and CLI (the XDP path for
# NodePort/LoadBalancer traffic is not built yet): NodePort validation and
# allocation in kubectl's words, MetalLB pools handing out LoadBalancer IPs,
# <pending> when a pool is exhausted and reuse when an address frees up.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

e2e_setup npalloc

manifest() {  # NAME TEXT -> file
    printf '%s\n' "$2" >"$TOPO_TMP/$1.yaml"
    echo "$TOPO_TMP/$1.yaml"
}

np_svc() {  # NAME NODEPORT
    manifest "$1" "apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  type: NodePort
  ports:
  - port: 80
    targetPort: 8080
    nodePort: $2"
}

lb_svc() {  # NAME
    manifest "$1" "apiVersion: v1
kind: Service
metadata:
  name: $1
spec:
  type: LoadBalancer
  ports:
  - port: 80
    targetPort: 8080"
}

ext_ip() { svcctl get svc "$1" -o json | jq -r '.status.loadBalancer.ingress[0].ip // "<pending>"'; }

test_nodeport_validation() {
    local out before
    before=$(svcctl get svc -o json)
    out=$(svcctl apply -f "$(np_svc huazi 33333)" 2>&1) && _fail "nodePort 33333 accepted"
    assert_eq 'The Service "huazi" is invalid: spec.ports[0].nodePort: Invalid value: 33333: provided port is not in the valid range. The range of valid ports is 30000-32767' \
        "$out" "out-of-range nodePort: kubectl's message"
    assert_eq "$before" "$(svcctl get svc -o json)" "nothing changed"
    assert_ok "nodePort 30310 accepted" svcctl apply -f "$(np_svc np1 30310)"
    assert_contains "$(svcctl get svc np1)" "80:30310/TCP" "get svc shows PORT(S) 80:30310/TCP"
    out=$(svcctl apply -f "$(np_svc np2 30310)" 2>&1) && _fail "a clashing nodePort was accepted"
    assert_eq 'The Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30310: provided port is already allocated' \
        "$out" "clash: kubectl's message"
}

test_pool_assignment() {
    local pool
    pool=$(manifest pool "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: small
  namespace: metallb-system
spec:
  addresses:
  - 192.0.2.10-192.0.2.10
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: l2
  namespace: metallb-system
spec:
  ipAddressPools:
  - small")
    assert_contains "$(svcctl apply -f "$pool" 2>&1)" "ipaddresspool.metallb.io/small created" "pool applied"
    assert_contains "$(svcctl get ipaddresspool -n metallb-system 2>&1)" "192.0.2.10-192.0.2.10" "get ipaddresspool"
    assert_ok "LoadBalancer lb1 applied" svcctl apply -f "$(lb_svc lb1)"
    assert_eq 192.0.2.10 "$(ext_ip lb1)" "lb1 got the pool's address"
    assert_ok "LoadBalancer lb2 applied" svcctl apply -f "$(lb_svc lb2)"
    assert_eq "<pending>" "$(ext_ip lb2)" "lb2 is pending: the pool is exhausted"
    assert_contains "$(svcctl get svc lb2)" "<pending>" "get svc shows <pending>"
    assert_ok "lb1 deleted" svcctl delete svc lb1
    assert_eq 192.0.2.10 "$(ext_ip lb2)" "lb2 got the freed address"
}

run_test "nodeport: range, allocation and clashes in kubectl's words" test_nodeport_validation
run_test "loadbalancer: pool assignment, pending, reuse" test_pool_assignment
finish
