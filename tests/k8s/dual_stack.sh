#!/usr/bin/env bash
# Dual-stack Services from the real control plane (issue 16): kube-apiserver
# with one service CIDR per family allocates the ClusterIPs, the EndpointSlice
# controller writes an IPv4 and an IPv6 slice from the pods' podIPs, and
# svclbd --source=kubernetes serves both: curl -6 and curl -4 from a pod,
# a kubectl-made IPv6-only Service, the cluster DNS's AAAA, and a downgrade
# to SingleStack (kubectl patch) that takes the IPv6 frontend away.
# Exits 77 (skipped) only when there is no Go toolchain to build the tools.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../testlib/svc.sh"
source "$HERE/../testlib/k8s.sh"

k8s_test_start nsenter curl openssl ip jq dig "$PY"

NODE=node-a
K8S_SERVICE_CIDR=10.96.0.0/12,fd00:10:96::/112
SERVICE_CIDR=$K8S_SERVICE_CIDR
topo_init "k8sds-$$"
k8s_init "k8sds-$$" || fatal_setup "k8s_init"
k8s_up || { k8s_dump_logs; fatal_setup "the control plane did not come up"; }
topo_up || fatal_setup "topology"
k8s_connect_ns "$NODE_NS" || fatal_setup "k8s_connect_ns"
declare -A IP6=([be1]=fd00:10:244:1::11 [be2]=fd00:10:244:1::12 [client]=fd00:10:244:1::20)
for p in be1 be2 client; do topo_add_pod6 "$p" "${IP6[$p]}"; done
start_backend6 be1
start_backend6 be2

wait_for() {
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
    _fail "$what: not within ${secs}s"
}
synced() { [[ $(svcctl status -o json 2>/dev/null | jq -r '.kubernetes.synced') == true ]]; }
# served_by URL N "be1 be2": N curls from the client pod answered by exactly those.
served_by() {
    local out
    out=$(http_get_many client "$2" "$1")
    [[ $(sort -u <<<"$out" | xargs) == "$3" ]]
}
fails() { ! in_pod_t 5 client curl -s --connect-timeout 1 -m 2 "$1" >/dev/null; }

setup_cluster() {
    k8s_kubectl apply -f "$K8S_REPO/deploy/kubernetes/rbac.yaml" >/dev/null || return 1
    k8s_node "$NODE" || return 1
    k8s_wait_sa default || return 1
    k8s_pod default be1 "${POD_IP[be1]}" "$NODE" "{app: web}" "${IP6[be1]}" || return 1
    k8s_pod default be2 "${POD_IP[be2]}" "$NODE" "{app: web}" "${IP6[be2]}" || return 1
    k8s_kubectl apply -f - >/dev/null <<Y || return 1
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ipFamilyPolicy: RequireDualStack
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: default}
spec:
  ipFamilies: [IPv6]
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
Y
    k8s_sa_kubeconfig kube-system svclb "$TOPO_TMP/svclb.kubeconfig" 2h || return 1
    DAEMON_FLAGS_EXTRA=(--kubeconfig "$TOPO_TMP/svclb.kubeconfig" --node-name "$NODE")
}

test_dual_stack_from_the_api() {
    local ips v4 v6 six
    ips=$(k8s_kubectl get svc web -o jsonpath='{.spec.clusterIPs[*]}')
    read -r v4 v6 <<<"$ips"
    assert_match "$v6" '^fd00:10:96::' "the apiserver gave web an IPv6 ClusterIP ($ips)" || return
    six=$(k8s_kubectl get svc web6 -o jsonpath='{.spec.clusterIP}')
    wait_for 30 "the IPv6 EndpointSlice of web" eval \
        "[[ -n \$(k8s_kubectl get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[?(@.addressType==\"IPv6\")].metadata.name}') ]]" ||
        return
    daemon_start && daemon_wait_ready || { _fail "svclbd did not start"; return; }
    wait_for 30 "svclbd listed the API" synced || { tail -20 "$DAEMON_LOG" >&2; return; }
    wait_for 10 "curl -6 http://[$v6]/ reaches be1 and be2" served_by "http://[$v6]/" 20 "be1 be2"
    wait_for 10 "curl -4 http://$v4/ reaches be1 and be2" served_by "http://$v4/" 20 "be1 be2"
    wait_for 10 "the IPv6-only Service web6 ($six) reaches be1 and be2" served_by "http://[$six]/" 20 "be1 be2"
    assert_eq "$v6" "$(in_pod_t 10 client dig +short +time=2 +tries=1 @10.96.0.10 web.default.svc.cluster.local AAAA)" \
        "the cluster DNS's AAAA of web"
    assert_eq "$ips" "$(svcctl get svc web -o json | jq -r '.spec.clusterIPs | join(" ")')" \
        "svcctl get shows the apiserver's clusterIPs"
    V6=$v6 V4=$v4
}

test_downgrade_with_kubectl() {
    [[ -n ${V6:-} ]] || { _fail "no dual-stack Service to downgrade"; return; }
    k8s_kubectl patch svc web --type=merge -p '{"spec": {"ipFamilyPolicy": "SingleStack"}}' >/dev/null ||
        { _fail "kubectl patch ipFamilyPolicy SingleStack"; return; }
    assert_eq "$V4" "$(k8s_kubectl get svc web -o jsonpath='{.spec.clusterIPs[*]}')" "the apiserver released the IPv6 ClusterIP"
    wait_for 10 "the released IPv6 ClusterIP no longer answers" fails "http://[$V6]/"
    served_by "http://$V4/" 20 "be1 be2" || _fail "the IPv4 ClusterIP stopped answering"
}

setup_cluster || { k8s_dump_logs; fatal_setup "cluster objects"; }
run_test "k8s dual-stack: the apiserver's IPv4 and IPv6 ClusterIPs served" test_dual_stack_from_the_api
run_test "k8s dual-stack: kubectl downgrade to SingleStack removes the IPv6 frontend" test_downgrade_with_kubectl
finish
