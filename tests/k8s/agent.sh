#!/usr/bin/env bash
# svclbd --source=kubernetes against the real control plane (tests/testlib/
# k8s.sh: kube-apiserver, etcd, the EndpointSlice controller), with real
# traffic through the node namespace of tests/testlib/topo.sh. The test plays
# the kubelet (Node and Pod status) and the user (kubectl); svclbd runs with
# the token of its own ServiceAccount bound by deploy/kubernetes/rbac.yaml.
#  - the first full list reaches the maps, the API's objects show in
#    svcctl get, svcctl apply/delete are refused, status shows the connection;
#  - kubectl apply -> traffic through the new ClusterIP; a pod leaving the
#    selector, a Service deleted, a NodePort allocated by the apiserver;
#  - a node cut off from the apiserver keeps forwarding with its last state
#    and catches up when the path returns;
#  - the apiserver killed, its history compacted (a watch from the old
#    resourceVersion gets 410 Gone) and restarted: svclbd relists and
#    converges, an established connection is never lost;
#  - svclbd restarted while the API changes;
#  - a ServiceAccount without the ClusterRole: the missing permission is
#    reported and the maps keep their state;
#  - a client certificate and --k8s-api-server overriding the kubeconfig's
#    server; a server certificate from another CA is refused;
#  - a second node's svclbd converges to the same Services and endpoints;
#  - the cluster DNS answers the API's Services, headless ones included.
# Exits 77 (skipped) only when there is no Go toolchain to build the tools.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../testlib/svc.sh"
source "$HERE/../testlib/k8s.sh"

k8s_test_start nsenter curl openssl ip jq socat dig "$PY"

NODE=node-a
topo_init "k8sag-$$"
k8s_init "k8sag-$$" || fatal_setup "k8s_init"
# The second node's pins (test_second_node_same_state), even after a failure.
# shellcheck disable=SC2064
trap "rm -rf '$BPFFS-2' 2>/dev/null; $(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT\$/\1/p")" EXIT
k8s_up || { k8s_dump_logs; fatal_setup "the control plane did not come up"; }
topo_up || fatal_setup "topology"
k8s_connect_ns "$NODE_NS" || fatal_setup "k8s_connect_ns"

# wait_for SECONDS DESCRIPTION CMD...: until CMD succeeds, bounded.
wait_for() {
    local secs=$1 what=$2 i; shift 2
    for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
    _fail "$what: not within ${secs}s"
}

st() { svcctl status -o json 2>/dev/null; }
synced() { [[ $(st | jq -r '.kubernetes.synced') == true ]]; }
relists() { st | jq '[.kubernetes.watches[] | .relists] | add'; }
reconnects() { st | jq '[.kubernetes.watches[] | .reconnects] | add'; }
# The body of one curl from the client pod ("FAIL" if none).
get_one() { in_pod_t 5 client curl -s --connect-timeout 1 -m 2 "$1" || echo FAIL; }
answers() { [[ $(get_one "$1") == "$2" ]]; }
fails() { [[ $(get_one "$1") == FAIL ]]; }
# All of N curls answered by exactly the backends in the sorted list $3 ("be1 be2").
# SERVED: the last served_by's answers, counted (for messages).
served_by() {
    local out
    out=$(http_get_many client "$2" "$1")
    SERVED=$(sort <<<"$out" | uniq -c | xargs)
    [[ $(sort -u <<<"$out" | xargs) == "$3" ]]
}

# svc NAME CLUSTERIP [TYPE]: a Service selecting app=web, port 80 -> 8080.
svc() {
    k8s_kubectl apply -f - >/dev/null <<Y
apiVersion: v1
kind: Service
metadata: {name: $1, namespace: default}
spec:
  type: ${3:-ClusterIP}
  ${2:+clusterIP: $2}
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
Y
}

setup_cluster() {
    k8s_kubectl apply -f "$K8S_REPO/deploy/kubernetes/rbac.yaml" >/dev/null || return 1
    k8s_node "$NODE" zone-a || return 1
    k8s_wait_sa default || return 1
    k8s_pod default be1 "${POD_IP[be1]}" "$NODE" "{app: web}" || return 1
    k8s_pod default be2 "${POD_IP[be2]}" "$NODE" "{app: web}" || return 1
    k8s_kubectl apply -f - >/dev/null <<Y || return 1
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: $VIP
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 5353, targetPort: 5353, protocol: UDP}
Y
    # A headless Service: no frontend (and its slices are not even listed:
    # kube-proxy's selector), never an error that blocks the rest.
    svc headless None || return 1
    k8s_sa_kubeconfig kube-system svclb "$TOPO_TMP/svclb.kubeconfig" 2h || return 1
    DAEMON_FLAGS_EXTRA=(--kubeconfig "$TOPO_TMP/svclb.kubeconfig" --node-name "$NODE")
}

test_first_list() {
    daemon_start && daemon_wait_ready || { _fail "svclbd did not start"; return; }
    wait_for 30 "svclbd listed the API" synced || { tail -20 "$DAEMON_LOG" >&2; return; }
    wait_for 10 "web answers through its ClusterIP" served_by "http://$VIP/" 20 "be1 be2" || return
    local out
    out=$(udp_query_pod client "$VIP" 5353 4 2>&1)
    assert_contains "$out" "from $VIP:5353" "UDP through the ClusterIP, replies from it"
    out=$(svcctl get svc -A 2>&1)
    assert_contains "$out" "kubernetes" "the apiserver's own Service is listed"
    assert_match "$out" "web +ClusterIP +$VIP" "web with the ClusterIP the API gave it"
    # (headless Services' slices are listed too, for the cluster DNS: not only web's)
    out=$(svcctl get endpointslices -o json | jq -r '.items[].metadata.name' | grep -m1 '^web-')
    assert_match "$out" "^web-" "the controller's EndpointSlice is in the store"
    out=$(st | jq -r '.kubernetes.node.zone')
    assert_eq zone-a "$out" "the node's zone from its Node object"
}

test_svcctl_refused() {
    local out before
    before=$(svcctl get svc -A -o json | jq -c '[.items[].metadata.name]')
    out=$(svcctl apply -f "$SVCLB_EXAMPLES/web-service.yaml" 2>&1) && _fail "svcctl apply succeeded in Kubernetes mode"
    assert_contains "$out" "follows the Kubernetes API server https://$K8S_API_IP:$K8S_API_PORT" "apply refused, naming the server"
    out=$(svcctl delete svc web 2>&1) && _fail "svcctl delete succeeded in Kubernetes mode"
    assert_contains "$out" "change Services and EndpointSlices with kubectl" "delete refused"
    assert_eq "$before" "$(svcctl get svc -A -o json | jq -c '[.items[].metadata.name]')" "nothing changed"
}

test_status() {
    local out
    out=$(svcctl status 2>&1)
    assert_match "$out" "Source: +kubernetes https://$K8S_API_IP:$K8S_API_PORT" "status names the server"
    assert_match "$out" "API Synced: +yes" "status says synced"
    assert_match "$out" "services +watching +[0-9]+" "the services watch with its resourceVersion"
    assert_match "$out" "endpointslices +watching +[0-9]+" "the endpointslices watch"
    assert_match "$out" "nodes +watching" "the node watch"
}

test_apply_follows() {
    local t0 t1
    t0=$(date +%s%N)
    svc web2 10.96.0.20 || { _fail "kubectl apply web2"; return; }
    wait_for 10 "web2 answers" eval 'answers http://10.96.0.20/ be1 || answers http://10.96.0.20/ be2' || return
    t1=$(date +%s%N)
    log "kubectl apply -> first answer through the new ClusterIP: $(((t1 - t0) / 1000000)) ms"
    served_by "http://10.96.0.20/" 20 "be1 be2" || _fail "web2 not balanced over be1 and be2"
}

# svclbd's cluster DNS (default --cluster-dns 10.96.0.10, the address web
# holds here as kube-dns would: its port 80 is balanced, port 53 is svclbd's)
# answers the API's Services, and the slices of headless Services are listed
# for it (kube-proxy's selector leaves them out).
test_cluster_dns() {
    local q=(in_pod_t 10 client dig +short +time=2 +tries=1 @10.96.0.10)
    assert_eq "$VIP" "$("${q[@]}" web.default.svc.cluster.local)" "A of a Service from the API"
    assert_eq "10.96.0.20" "$("${q[@]}" web2.default.svc.cluster.local)" "A of the Service kubectl just made"
    assert_eq "10.96.0.1" "$("${q[@]}" kubernetes.default.svc.cluster.local)" "the apiserver's own Service"
    wait_for 10 "headless Service answers its pods" \
        eval '[[ $("${q[@]}" headless.default.svc.cluster.local | sort | xargs) == "${POD_IP[be1]} ${POD_IP[be2]}" ]]'
    assert_eq "web.default.svc.cluster.local." "$("${q[@]}" -x "$VIP")" "PTR of a ClusterIP"
}

test_label_moves_pod_out() {
    LC_LOG=$TOPO_TMP/longconn.log
    longconn_start client "$LC_LOG" be1 300
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived connection to be1" || return
    k8s_kubectl label pod be2 -n default app=other --overwrite >/dev/null || { _fail "label"; return; }
    wait_for 15 "only be1 answers once be2 left the selector" served_by "http://$VIP/" 20 "be1" || return
    k8s_kubectl label pod be2 -n default app=web --overwrite >/dev/null || { _fail "label back"; return; }
    wait_for 15 "be2 back in" served_by "http://$VIP/" 20 "be1 be2"
}

test_nodeport_and_delete() {
    svc np "" NodePort || { _fail "kubectl apply np"; return; }
    local np out
    np=$(k8s_kubectl get svc np -o jsonpath='{.spec.ports[0].nodePort}')
    assert_match "$np" '^3[0-9]{4}$' "the apiserver allocated a nodePort" || return
    wait_for 10 "svcctl shows the apiserver's nodePort" eval \
        "svcctl get svc np 2>/dev/null | grep -q '80:$np/TCP'" || return
    wait_for 10 "NodePort $NODE_IP:$np answers" eval \
        "answers http://$NODE_IP:$np/ be1 || answers http://$NODE_IP:$np/ be2"
    k8s_kubectl delete svc web2 np >/dev/null || { _fail "kubectl delete"; return; }
    wait_for 10 "the deleted Service's ClusterIP no longer answers" fails http://10.96.0.20/ || return
    out=$(svcctl get svc web2 2>&1)
    assert_contains "$out" 'services "web2" not found' "svcctl get after kubectl delete"
}

# KEP-1860: status.loadBalancer.ingress as a load-balancer controller writes
# it (here kubectl, on the status subresource): the VIP-mode address is
# programmed, the Proxy-mode one is not (kube-proxy skips it), both are shown.
test_lb_ip_mode() {
    svc lbm "" LoadBalancer || { _fail "kubectl apply lbm"; return; }
    k8s_kubectl patch svc lbm --subresource=status --type=merge -p \
        '{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7","ipMode":"VIP"},{"ip":"203.0.113.8","ipMode":"Proxy"}]}}}' \
        >/dev/null || { _fail "kubectl patch the status"; return; }
    wait_for 10 "the VIP-mode address is programmed" eval \
        "[[ \$(svcctl trace -o json 10.0.0.9:4000 203.0.113.7:80 2>/dev/null | jq -r .verdict.action) == dnat ]]" || return
    assert_eq pass "$(svcctl trace -o json 10.0.0.9:4000 203.0.113.8:80 | jq -r .verdict.action)" \
        "the Proxy-mode address is not programmed"
    assert_eq "203.0.113.7 203.0.113.8" "$(svcctl get svc lbm -o jsonpath='{.status.loadBalancer.ingress[*].ip}')" \
        "svcctl shows both addresses"
    k8s_kubectl delete svc lbm >/dev/null || _fail "kubectl delete lbm"
}

# Both directions: with the route alone gone, the apiserver's events would
# still arrive (only svclbd's ACKs would be lost).
cut_off()  { in_node ip link set k8sapi down; }
restore()  { in_node ip link set k8sapi up && in_node ip route replace "$K8S_API_IP/32" via 10.255.1.1; }

test_cut_off_keeps_last_state() {
    local r0
    r0=$(reconnects)
    cut_off || { _fail "cut the route"; return; }
    k8s_kubectl label pod be2 -n default app=other --overwrite >/dev/null || { _fail "label"; restore; return; }
    sleep 2
    # svclb has not heard: the last state (be1 and be2) still forwards.
    served_by "http://$VIP/" 20 "be1 be2" || _fail "the cut-off node stopped forwarding its last state (got: $SERVED)"
    # A silently dead connection is noticed (keepalive/TCP_USER_TIMEOUT,
    # k8s/client.h), not waited on for the watch's full timeout.
    local t0=$SECONDS
    wait_for 60 "svclbd noticed the dead connection (a reconnect)" eval '(( $(reconnects) > r0 ))'
    log "the dead connection was noticed after $((SECONDS - t0 + 2)) s"
    restore || { _fail "restore the route"; return; }
    wait_for 60 "the node catches up once the path returns (only be1)" served_by "http://$VIP/" 10 "be1"
}

test_apiserver_restart_410() {
    local r0 rev
    r0=$(relists)
    cut_off
    # Changes svclb misses, then history gone: its resourceVersion is too old.
    k8s_kubectl label pod be2 -n default app=web --overwrite >/dev/null || { _fail "label"; restore; return; }
    svc web3 10.96.0.30 || { _fail "kubectl apply web3"; restore; return; }
    sleep 1
    rev=$(k8s_etcd_compact) || { _fail "etcd compaction"; restore; return; }
    log "etcd compacted to revision $rev; restarting the apiserver"
    k8s_kill_apiserver || { _fail "kill the apiserver"; restore; return; }
    # Down: the last state still forwards.
    served_by "http://$VIP/" 10 "be1" || _fail "forwarding stopped while the apiserver was down (got: $SERVED)"
    k8s_start_apiserver || { k8s_dump_logs; _fail "apiserver restart"; restore; return; }
    restore
    wait_for 90 "svclbd converges after the restart (web3 answers)" eval \
        'answers http://10.96.0.30/ be1 || answers http://10.96.0.30/ be2' || { tail -20 "$DAEMON_LOG" >&2; return; }
    wait_for 30 "be2 back in web" served_by "http://$VIP/" 20 "be1 be2" || return
    assert_ge "$(relists)" $((r0 + 1)) "a watch from the compacted resourceVersion led to a relist (410)"
    grep -q "listing .* again" "$DAEMON_LOG" || _fail "no relist in the log"
}

test_daemon_restart_while_api_changes() {
    daemon_stop
    # While svclbd is down: web3 deleted, be2 out, web4 created.
    k8s_kubectl delete svc web3 >/dev/null || _fail "delete web3"
    k8s_kubectl label pod be2 -n default app=other --overwrite >/dev/null || _fail "label"
    svc web4 10.96.0.40 || _fail "kubectl apply web4"
    # The dataplane stays: the last state forwards meanwhile.
    served_by http://10.96.0.30/ 20 "be1 be2" ||
        _fail "the pinned dataplane stopped forwarding its last state while svclbd was down (got: $SERVED)"
    daemon_start && daemon_wait_ready || { _fail "svclbd did not restart"; return; }
    wait_for 30 "listed after the restart" synced || return
    wait_for 10 "web4 answers" answers http://10.96.0.40/ be1 || return
    wait_for 10 "web3 gone" fails http://10.96.0.30/ || return
    # The EndpointSlice controller drops be2 asynchronously after the label.
    wait_for 15 "be2 no longer served after it left the selector" served_by "http://$VIP/" 20 "be1" ||
        log "last answers: $SERVED"
    local out
    out=$(svcctl get svc web3 2>&1)
    assert_contains "$out" 'not found' "no orphan Service after the relist"
}

test_longconn_survived() {
    sleep 0.5
    longconn_stop
    assert_eq 0 "$(grep -c ' be1 err ' "$LC_LOG")" "errors on the long-lived be1 connection"
    assert_ge "$(grep -c ' be1 ok be1$' "$LC_LOG")" 20 "requests served on the be1 connection throughout"
}

test_missing_permission() {
    k8s_kubectl create serviceaccount nobody -n kube-system >/dev/null || { _fail "create sa"; return; }
    k8s_sa_kubeconfig kube-system nobody "$TOPO_TMP/nobody.kubeconfig" 1h || { _fail "token"; return; }
    daemon_stop
    DAEMON_FLAGS_EXTRA=(--kubeconfig "$TOPO_TMP/nobody.kubeconfig" --node-name "$NODE")
    daemon_start && daemon_wait_ready || { _fail "svclbd did not start"; return; }
    wait_for 20 "the missing permission in status" eval \
        "st | jq -r '.kubernetes.watches[].lastError // empty' | grep -q 'cannot list resource \"services\"'" || {
        st | jq .kubernetes >&2; return; }
    grep -q 'forbidden.*cannot list resource' "$DAEMON_LOG" || _fail "the log does not say what is forbidden"
    [[ $(st | jq -r .kubernetes.synced) == false ]] || _fail "synced without permission"
    # Nothing was pushed: the last state still forwards.
    served_by "http://10.96.0.40/" 10 "be1" || _fail "maps changed without a list (got: $SERVED)"
    daemon_stop
    DAEMON_FLAGS_EXTRA=(--kubeconfig "$TOPO_TMP/svclb.kubeconfig" --node-name "$NODE")
    daemon_start && daemon_wait_ready && wait_for 30 "listed again" synced
}

# restart_with FLAGS...: svclbd again with these Kubernetes flags.
restart_with() {
    daemon_stop
    DAEMON_FLAGS_EXTRA=("$@" --node-name "$NODE")
    daemon_start && daemon_wait_ready
}

test_credentials() {
    local kc=$TOPO_TMP/admin-elsewhere.kubeconfig other=$TOPO_TMP/other-ca out
    # A client certificate (the admin's), with the kubeconfig's server wrong
    # and --k8s-api-server giving the right one (Cilium's k8sServiceHost).
    cp "$K8S_ADMIN_KUBECONFIG" "$kc"
    "$KUBECTL" --kubeconfig "$kc" config set-cluster test --server "https://$K8S_API_IP:1" >/dev/null
    restart_with --kubeconfig "$kc" --k8s-api-server "https://$K8S_API_IP:$K8S_API_PORT" ||
        { _fail "svclbd with a client certificate"; return; }
    wait_for 30 "listed with a client certificate and --k8s-api-server" synced || return
    assert_contains "$(st | jq -r .kubernetes.server)" ":$K8S_API_PORT" "the override is the server used"
    # TLS is verified: a CA that did not sign the apiserver's certificate.
    mkdir -p "$other"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$other/ca.key" -out "$other/ca.crt" \
        -days 1 -subj /CN=not-the-cluster-ca >/dev/null 2>&1 || { _fail "openssl"; return; }
    "$KUBECTL" --kubeconfig "$kc" config set-cluster test --server "https://$K8S_API_IP:$K8S_API_PORT" \
        --certificate-authority "$other/ca.crt" --embed-certs=true >/dev/null
    restart_with --kubeconfig "$kc" || { _fail "svclbd with the wrong CA"; return; }
    wait_for 20 "a certificate error in status" eval \
        "st | jq -r '.kubernetes.watches[].lastError // empty' | grep -qi 'certificate'" || {
        st | jq .kubernetes.watches >&2; return; }
    [[ $(st | jq -r .kubernetes.synced) == false ]] || _fail "synced with an unverified server"
    restart_with --kubeconfig "$TOPO_TMP/svclb.kubeconfig" && wait_for 30 "listed again" synced
}

test_second_node_same_state() {
    local n2=$TOPO_PREFIX-node2 dir=$TOPO_TMP/node2 pid a b
    ip netns add "$n2" || { _fail "netns"; return; }
    TOPO_PODS+=("$n2")  # removed by topo_cleanup
    in_ns "$n2" ip link set lo up
    in_ns "$n2" ip addr add 10.244.0.2/32 dev lo
    k8s_connect_ns "$n2" 2 || { _fail "connect node2"; return; }
    mkdir -p "$dir/state"
    nsenter --net="/run/netns/$n2" "$SVCLB_BIN/svclbd" --bpffs "$BPFFS-2" --state-dir "$dir/state" \
        --socket "$dir/sock" --metrics-addr none --cgroup none \
        --kubeconfig "$TOPO_TMP/svclb.kubeconfig" --node-name node-b >"$dir/svclbd.log" 2>&1 &
    pid=$!; TOPO_PIDS+=("$pid")
    view() {  # the Services, the slices and the map sizes a node's svclbd holds
        local c=(timeout 10 "$SVCLB_BIN/svcctl" --socket "$1")
        {
            "${c[@]}" get svc -A -o json | jq -c '[.items[] | {ns: .metadata.namespace,
                name: .metadata.name, ip: .spec.clusterIP, ports: .spec.ports}] | sort_by(.ns, .name)'
            "${c[@]}" get endpointslices -A -o json | jq -c '[.items[] | {name: .metadata.name,
                eps: [.endpoints[]? | {a: .addresses, r: .conditions.ready}]}] | sort_by(.name)'
            "${c[@]}" status -o json | jq -c '[.maps[] | select(.name == "svc_v1" or .name == "backends_v1") |
                {name, entries}]'
        } 2>/dev/null
    }
    wait_for 30 "node-b listed" eval \
        "timeout 5 '$SVCLB_BIN/svcctl' --socket '$dir/sock' status -o json 2>/dev/null | jq -e .kubernetes.synced >/dev/null" || {
        tail -20 "$dir/svclbd.log" >&2; return; }
    log "node-b listed"
    if ! wait_for 10 "both nodes hold the same Services and endpoints" eval '[[ $(view "$SOCK") == "$(view "$dir/sock")" ]]'; then
        local t0=$SECONDS
        a=$(view "$SOCK"); log "node-a view took $((SECONDS - t0))s"; t0=$SECONDS
        b=$(view "$dir/sock"); log "node-b view took $((SECONDS - t0))s"
        printf 'node-a: %s\nnode-b: %s\n' "$a" "$b" >&2
        tail -5 "$dir/svclbd.log" >&2
    fi
    a=$(view "$SOCK"); b=$(view "$dir/sock")
    assert_eq "$a" "$b" "node-a and node-b converge to the same state"
    assert_contains "$a" '"web4"' "the state compared holds the Services"
    assert_contains "$a" '"backends_v1","entries":' "the state compared holds the map sizes"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null
    nsenter --net="/run/netns/$n2" "$SVCLB_BIN/svclbd" --bpffs "$BPFFS-2" --uninstall >/dev/null 2>&1
}

setup_cluster || { k8s_dump_logs; fatal_setup "cluster objects"; }
run_test "first list: traffic, objects in svcctl get, node zone" test_first_list
run_test "svcctl apply/delete refused in Kubernetes mode" test_svcctl_refused
run_test "status shows the API connection" test_status
run_test "kubectl apply: traffic through the new ClusterIP" test_apply_follows
run_test "cluster DNS answers the API's Services (headless too)" test_cluster_dns
run_test "kubectl label: a pod leaves the Service and comes back" test_label_moves_pod_out
run_test "NodePort from the apiserver; Service deletion followed" test_nodeport_and_delete
run_test "LoadBalancer status: a Proxy-mode ingress IP is not programmed (KEP-1860)" test_lb_ip_mode
run_test "cut off from the apiserver: last state kept, catches up" test_cut_off_keeps_last_state
run_test "apiserver killed, history compacted (410), restarted" test_apiserver_restart_410
run_test "svclbd restarted while the API changes" test_daemon_restart_while_api_changes
run_test "the established connection survived all of it" test_longconn_survived
run_test "RBAC: a missing permission is reported, maps kept" test_missing_permission
run_test "credentials: client certificate, --k8s-api-server, TLS verified" test_credentials
run_test "a second node converges to the same state" test_second_node_same_state
((TESTS_FAILED == 0)) || k8s_dump_logs
finish
