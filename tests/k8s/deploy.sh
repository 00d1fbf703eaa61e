#!/usr/bin/env bash
# deploy/kubernetes/daemonset.yaml against the real kube-apiserver
# (tests/testlib/k8s.sh): no container image runs here (no kubelet, no
# container engine), so what is checked is what the apiserver decides:
#  - `kubectl apply --dry-run=server` accepts the DaemonSet (defaulting,
#    validation, admission) and creates nothing;
#  - the dry run really validates: broken copies (an unknown field, a wrong
#    downward API path, Bidirectional bpffs propagation without privileged)
#    are refused with the apiserver's own message;
#  - its pod template, as a Pod on a node, passes the Pod admission chain in
#    kube-system (priority class system-node-critical and ServiceAccount
#    svclb resolved);
#  - the shape: hostNetwork, ClusterFirstWithHostNet, every taint tolerated,
#    RollingUpdate maxUnavailable 1, capabilities instead of privileged,
#    NODE_NAME from spec.nodeName, the kubernetes source and API server args,
#    the bpffs and cgroup2 mounts;
#  - its ServiceAccount is the one rbac.yaml binds (kubectl auth can-i as it).
# Exits 77 (skipped) only when there is no Go toolchain to build the tools.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../testlib/assert.sh"
source "$HERE/../testlib/k8s.sh"

k8s_test_start nsenter curl openssl ip jq
((TESTS_FAILED == 0)) || finish

k8s_init "k8sdep-$$" || fatal_setup "k8s_init"
k8s_up || { k8s_dump_logs; fatal_setup "the control plane did not come up"; finish; }

DS=$K8S_REPO/deploy/kubernetes/daemonset.yaml
RBAC=$K8S_REPO/deploy/kubernetes/rbac.yaml

# The DaemonSet as JSON (kubectl's own YAML reader; nothing is sent).
ds_json() { k8s_kubectl create --dry-run=client -f "$DS" -o json 2>/dev/null; }

# dry_run FILE: the server-side dry run, its output (JSON) or error.
dry_run() {
    k8s_kubectl apply --dry-run=server --validate=strict -f "$1" -o json 2>&1
}

test_dry_run() {
    assert_ok "kubectl apply rbac.yaml" k8s_kubectl apply -f "$RBAC" || return
    local out
    out=$(dry_run "$DS")
    assert_eq "DaemonSet svclb" "$(jq -r '"\(.kind) \(.metadata.name)"' <<<"$out" 2>/dev/null)" \
        "the apiserver accepts daemonset.yaml in a server-side dry run" || { echo "$out" >&2; return; }
    # The apiserver answered with the object as it would store it: defaulted.
    assert_eq kube-system "$(jq -r .metadata.namespace <<<"$out")" "namespace kube-system"
    assert_eq 10 "$(jq -r .spec.revisionHistoryLimit <<<"$out")" "apiserver defaults applied"
    # A dry run creates nothing.
    out=$(k8s_kubectl -n kube-system get daemonset svclb 2>&1)
    assert_contains "$out" 'NotFound' "the dry run created no DaemonSet"
}

# break_copy JQ-FILTER: daemonset.yaml changed by a jq filter, as a file.
break_copy() {
    local f=$K8S_TMP/broken-$RANDOM.json
    ds_json | jq "$1" >"$f" && echo "$f"
}

test_dry_run_refuses_broken_copies() {
    local f out
    f=$(break_copy '.spec.template.spec.containers[0].imagePullPolicyy = "Always"') || return
    out=$(dry_run "$f")
    assert_contains "$out" 'unknown field "spec.template.spec.containers[0].imagePullPolicyy"' \
        "an unknown field is refused"
    f=$(break_copy '(.spec.template.spec.containers[0].env[] | select(.name == "NODE_NAME")
                     | .valueFrom.fieldRef.fieldPath) = "spec.node"') || return
    out=$(dry_run "$f")
    assert_contains "$out" 'spec.template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.node"' \
        "a wrong downward API path is refused"
    # Why the bpffs mount is HostToContainer: Bidirectional needs privileged.
    f=$(break_copy '(.spec.template.spec.containers[0].volumeMounts[] | select(.name == "bpffs")
                     | .mountPropagation) = "Bidirectional"') || return
    out=$(dry_run "$f")
    assert_contains "$out" 'Bidirectional mount propagation is available only to privileged containers' \
        "Bidirectional propagation without privileged is refused"
    f=$(break_copy '.spec.updateStrategy.rollingUpdate.maxUnavailable = 0') || return
    out=$(dry_run "$f")
    assert_contains "$out" 'spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0' \
        "maxUnavailable 0 (with maxSurge 0) is refused"
}

test_pod_admission() {
    # What the DaemonSet controller would create on node-a: its template as a Pod.
    local pod=$K8S_TMP/svclb-pod.json out
    ds_json | jq '{apiVersion: "v1", kind: "Pod",
                   metadata: (.spec.template.metadata + {name: "svclb-node-a", namespace: "kube-system"}),
                   spec: (.spec.template.spec + {nodeName: "node-a"})}' >"$pod" || return
    out=$(k8s_kubectl create --dry-run=server -f "$pod" -o json 2>&1)
    assert_eq 2000001000 "$(jq -r .spec.priority <<<"$out" 2>/dev/null)" \
        "the pod passes admission with priority system-node-critical" || { echo "$out" >&2; return; }
    # The admission chain really resolves what the template names: an
    # unknown priority class, or a ServiceAccount missing from the namespace,
    # is refused.
    jq '.spec.priorityClassName = "node-critical"' "$pod" >"$K8S_TMP/svclb-pod-prio.json" || return
    out=$(k8s_kubectl create --dry-run=server -f "$K8S_TMP/svclb-pod-prio.json" 2>&1)
    assert_contains "$out" 'no PriorityClass with name node-critical was found' \
        "an unknown priority class is refused"
    jq '.metadata.namespace = "default"' "$pod" >"$K8S_TMP/svclb-pod-default.json" || return
    out=$(k8s_kubectl create --dry-run=server -f "$K8S_TMP/svclb-pod-default.json" 2>&1)
    assert_contains "$out" 'serviceaccount "svclb" not found' \
        "the pod needs rbac.yaml's ServiceAccount (absent from namespace default)"
}

test_shape() {
    local j c
    j=$(ds_json) || { _fail "kubectl cannot read daemonset.yaml"; return; }
    c=$(jq '.spec.template.spec.containers[0]' <<<"$j")
    assert_eq "true ClusterFirstWithHostNet system-node-critical" \
        "$(jq -r '.spec.template.spec | "\(.hostNetwork) \(.dnsPolicy) \(.priorityClassName)"' <<<"$j")" \
        "hostNetwork, its DNS policy, node-critical priority"
    assert_eq '[{"operator":"Exists"}]' "$(jq -c .spec.template.spec.tolerations <<<"$j")" \
        "every taint tolerated (one toleration, operator Exists, no key or effect)"
    assert_eq "RollingUpdate 1" "$(jq -r '.spec.updateStrategy | "\(.type) \(.rollingUpdate.maxUnavailable)"' <<<"$j")" \
        "RollingUpdate, one node at a time"
    assert_eq "false ALL BPF,NET_ADMIN,NET_BIND_SERVICE,NET_RAW,PERFMON" \
        "$(jq -r '.securityContext | "\(.privileged) \(.capabilities.drop | join(",")) \(.capabilities.add | sort | join(","))"' <<<"$c")" \
        "not privileged: all capabilities dropped, only the needed ones added"
    assert_eq "spec.nodeName" \
        "$(jq -r '.env[] | select(.name == "NODE_NAME") | .valueFrom.fieldRef.fieldPath' <<<"$c")" \
        "NODE_NAME from the downward API"
    local args
    args=$(jq -r '.args | join(" ")' <<<"$c")
    assert_contains "$args" "--source=kubernetes" "follows the Kubernetes API"
    assert_contains "$args" '--node-name=$(NODE_NAME)' "node name from NODE_NAME"
    assert_contains "$args" '--k8s-api-server=$(SVCLB_K8S_API_SERVER)' "API server set by the operator"
    assert_ne "" "$(jq -r '.env[] | select(.name == "SVCLB_K8S_API_SERVER") | .value' <<<"$c")" \
        "SVCLB_K8S_API_SERVER has a value"
    assert_eq "/sys/fs/bpf:/sys/fs/bpf:HostToContainer /sys/fs/cgroup:/host/sys/fs/cgroup:None /var/lib/svclb:/var/lib/svclb:None /run/svclb:/run/svclb:None" \
        "$(jq -r --argjson v "$(jq .spec.template.spec.volumes <<<"$j")" \
            '[.volumeMounts[] | . as $m | ($v[] | select(.name == $m.name) | .hostPath.path)
              + ":" + $m.mountPath + ":" + ($m.mountPropagation // "None")] | join(" ")' <<<"$c")" \
        "host paths: bpffs, cgroup2, state, socket"
    assert_contains "$args" "--cgroup=/host/sys/fs/cgroup" "socket hooks on the node's cgroup2 root"
}

test_service_account_bound() {
    local sa
    sa=$(ds_json | jq -r .spec.template.spec.serviceAccountName)
    assert_eq svclb "$sa" "the DaemonSet runs as ServiceAccount svclb" || return
    assert_ok "the ServiceAccount exists (rbac.yaml)" k8s_kubectl -n kube-system get serviceaccount "$sa" || return
    local as=(auth can-i --as="system:serviceaccount:kube-system:$sa")
    assert_eq yes "$(k8s_kubectl "${as[@]}" watch services 2>/dev/null)" "it may watch services"
    assert_eq yes "$(k8s_kubectl "${as[@]}" list endpointslices.discovery.k8s.io 2>/dev/null)" \
        "it may list endpointslices"
    assert_eq yes "$(k8s_kubectl "${as[@]}" get nodes 2>/dev/null)" "it may get nodes"
    assert_eq no "$(k8s_kubectl "${as[@]}" list pods 2>/dev/null)" "it may not list pods"
    # Another account (e.g. a typo in serviceAccountName) gets nothing.
    assert_eq no "$(k8s_kubectl auth can-i --as=system:serviceaccount:kube-system:svclb-typo watch services 2>/dev/null)" \
        "another ServiceAccount is not bound"
}

run_test "daemonset.yaml passes the apiserver's dry run" test_dry_run
run_test "the dry run refuses broken copies" test_dry_run_refuses_broken_copies
run_test "its pod passes Pod admission in kube-system" test_pod_admission
run_test "hostNetwork, tolerations, capabilities, downward API, mounts" test_shape
run_test "its ServiceAccount is the one rbac.yaml binds" test_service_account_bound
((TESTS_FAILED == 0)) || k8s_dump_logs
finish
