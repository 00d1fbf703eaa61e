#!/usr/bin/env bash
# The test control plane itself (tests/testlib/k8s.sh): the real
# kube-apiserver, etcd and the real EndpointSlice controller, built from
# upstream modules. No svclb code runs here; the later Kubernetes-mode tests
# stand on what this one checks:
#  - the apiserver answers as the release it was built from, with RBAC;
#  - a Service with a selector gets an EndpointSlice from the real controller
#    once a Pod (created through the API, its status patched as a kubelet
#    would) matches and is ready; `kubectl label pod` moves it out of the
#    Service (the slice empties) and back in;
#  - deploy/kubernetes/rbac.yaml grants svclb exactly read access to
#    Services, EndpointSlices and Nodes, checked by impersonation and with a
#    real token of its ServiceAccount used from another namespace.
# Exits 77 (skipped) only when there is no Go toolchain to build the tools.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../testlib/assert.sh"
source "$HERE/../testlib/k8s.sh"

k8s_test_start nsenter curl openssl ip jq

k8s_init "k8scp-$$" || fatal_setup "k8s_init"
k8s_up || { k8s_dump_logs; fatal_setup "the control plane did not come up"; }

POD_IP=10.244.1.11
NODE=node-a

# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds, bounded.
wait_for() {
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 5; i++)); do "$@" && return 0; sleep 0.2; done
    _fail "$what: not within ${secs}s"
}

# The endpoints of Service web's slices, one "address ready node" a line.
slice_endpoints() {
    k8s_kubectl get endpointslices -n default -l kubernetes.io/service-name=web -o json |
        jq -r '.items[].endpoints // [] | .[] | "\(.addresses[0]) \(.conditions.ready) \(.nodeName)"'
}
slice_has()   { [[ $(slice_endpoints) == "$1" ]]; }
slice_empty() { local e; e=$(slice_endpoints) && [[ -z $e ]]; }

test_version() {
    local v
    v=$(k8s_kubectl version -o json | jq -r .serverVersion.gitVersion)
    assert_match "$v" '^v1\.[0-9]+\.[0-9]+$' "the apiserver reports a release version"
    assert_eq "$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$HERE/tools/go.mod")" "$v" \
        "the apiserver is the k8s.io/kubernetes release of tests/k8s/tools/go.mod"
    # Not a mock: an invalid object is refused by the apiserver's own validation.
    local out
    out=$(k8s_kubectl create service clusterip bad --tcp=0:80 2>&1)
    assert_contains "$out" "Invalid value" "apiserver validation refuses port 0"
}

test_endpointslice_follows_labels() {
    # What a kubelet does: register its Node, then report the Pod it runs.
    k8s_kubectl apply -f - >/dev/null <<Y || return
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  labels: {kubernetes.io/hostname: $NODE}
Y
    # The ServiceAccount admission plugin wants the namespace's "default"
    # account, which the ServiceAccount controller creates.
    wait_for 30 "ServiceAccount default/default created by the controller" \
        eval 'k8s_kubectl get serviceaccount default -n default >/dev/null 2>&1' || return
    k8s_kubectl apply -f - >/dev/null <<'Y' || return
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 8080
Y
    local cip
    cip=$(k8s_kubectl get service web -n default -o jsonpath='{.spec.clusterIP}')
    assert_match "$cip" '^10\.(9[6-9]|10[0-9]|11[01])\.' "ClusterIP allocated from 10.96.0.0/12"
    k8s_kubectl apply -f - >/dev/null <<Y || return
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: default
  labels: {app: web}
spec:
  nodeName: $NODE
  automountServiceAccountToken: false
  containers:
  - name: web
    image: registry.invalid/web:1
    ports: [{name: http, containerPort: 8080}]
Y
    # Not running yet: no address, so no endpoint.
    sleep 1
    assert_eq "" "$(slice_endpoints)" "no endpoint before the pod has an IP" || return
    k8s_pod_ready default web-1 True "$POD_IP" || { _fail "patch pod status"; return; }
    wait_for 30 "slice with the ready pod" slice_has "$POD_IP true $NODE" || { slice_endpoints >&2; return; }
    local ports
    ports=$(k8s_kubectl get endpointslices -n default -l kubernetes.io/service-name=web -o json |
        jq -r '[.items[].ports[]? | "\(.name)/\(.protocol)/\(.port)"] | unique | join(",")')
    assert_eq "http/TCP/8080" "$ports" "slice port is the targetPort"

    # Not ready: stays in the slice, ready=false.
    k8s_kubectl patch pod web-1 -n default --subresource=status --type=merge -p \
        '{"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "ContainersReady", "status": "False"}]}}' \
        >/dev/null || { _fail "patch pod not ready"; return; }
    wait_for 30 "slice marks the pod not ready" slice_has "$POD_IP false $NODE" || slice_endpoints >&2
    k8s_kubectl patch pod web-1 -n default --subresource=status --type=merge -p \
        '{"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}}' \
        >/dev/null || { _fail "patch pod ready"; return; }
    wait_for 30 "slice marks the pod ready again" slice_has "$POD_IP true $NODE" || return

    # Out of the selector, and back in.
    k8s_kubectl label pod web-1 -n default app=other --overwrite >/dev/null || { _fail "label pod"; return; }
    wait_for 30 "slice empties when the pod leaves the selector" slice_empty || { slice_endpoints >&2; return; }
    assert_ge "$(k8s_kubectl get endpointslices -n default -l kubernetes.io/service-name=web -o name | wc -l)" 1 \
        "the controller keeps an (empty) slice for the Service"
    k8s_kubectl label pod web-1 -n default app=web --overwrite >/dev/null || { _fail "label pod back"; return; }
    wait_for 30 "slice has the pod again when it matches" slice_has "$POD_IP true $NODE" || slice_endpoints >&2
}

can_i() {  # VERB RESOURCE -> yes/no as svclb's ServiceAccount
    k8s_kubectl auth can-i "$1" "$2" --as=system:serviceaccount:kube-system:svclb 2>/dev/null
}

test_rbac() {
    local rbac=$K8S_REPO/deploy/kubernetes/rbac.yaml out
    assert_ok "kubectl apply rbac.yaml" k8s_kubectl apply -f "$rbac" || return
    assert_eq yes "$(can_i list services)" "svclb may list services"
    assert_eq yes "$(can_i watch services)" "svclb may watch services"
    assert_eq yes "$(can_i list endpointslices.discovery.k8s.io)" "svclb may list endpointslices"
    assert_eq yes "$(can_i watch endpointslices.discovery.k8s.io)" "svclb may watch endpointslices"
    assert_eq yes "$(can_i get nodes)" "svclb may get nodes"
    assert_eq yes "$(can_i watch nodes)" "svclb may watch nodes"
    assert_eq no "$(can_i create services)" "svclb may not create services"
    assert_eq no "$(can_i update endpointslices.discovery.k8s.io)" "svclb may not update endpointslices"
    assert_eq no "$(can_i list pods)" "svclb may not list pods"
    assert_eq no "$(can_i get secrets)" "svclb may not read secrets"
    assert_eq no "$(can_i list endpoints)" "svclb may not list the old Endpoints"

    # The same with a real token of the ServiceAccount, from another
    # namespace (a node) reaching the apiserver over a veth pair.
    local client=k8scp-$$-client kc=$K8S_TMP/svclb.kubeconfig
    ip netns add "$client" || { _fail "create namespace $client"; return; }
    # shellcheck disable=SC2064
    trap "ip netns del '$client' 2>/dev/null; $(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT\$/\1/p")" EXIT
    nsenter --net="/run/netns/$client" ip link set lo up
    k8s_connect_ns "$client" || { _fail "k8s_connect_ns"; return; }
    k8s_sa_kubeconfig kube-system svclb "$kc" 10m || { _fail "k8s_sa_kubeconfig (kubectl create token)"; return; }
    local as_svclb=(timeout 60 nsenter --net="/run/netns/$client" "$KUBECTL" --kubeconfig "$kc")
    out=$("${as_svclb[@]}" get services -A -o name 2>&1)
    assert_contains "$out" "service/web" "svclb's token lists services from the node namespace"
    out=$("${as_svclb[@]}" get endpointslices -A -o name 2>&1)
    assert_contains "$out" "endpointslice.discovery.k8s.io/web-" "svclb's token lists endpointslices"
    out=$("${as_svclb[@]}" get node "$NODE" -o name 2>&1)
    assert_eq "node/$NODE" "$out" "svclb's token gets its node"
    out=$("${as_svclb[@]}" create service clusterip intruder --tcp=80:80 2>&1)
    assert_contains "$out" 'services is forbidden: User "system:serviceaccount:kube-system:svclb" cannot create resource "services"' \
        "svclb's token may not create services"
    out=$("${as_svclb[@]}" get pods -A 2>&1)
    assert_contains "$out" "forbidden" "svclb's token may not list pods"
    out=$("${as_svclb[@]}" --token not-a-token get services 2>&1)
    assert_contains "$out" "Unauthorized" "a bad token is refused"
}

run_test "the apiserver is the real one" test_version
run_test "EndpointSlice controller follows pod readiness and labels" test_endpointslice_follows_labels
run_test "deploy/kubernetes/rbac.yaml: read-only Services, EndpointSlices, Nodes" test_rbac
((TESTS_FAILED == 0)) || k8s_dump_logs
finish
