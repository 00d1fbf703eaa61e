# shellcheck shell=bash
# A real Kubernetes control plane for tests: etcd, kube-apiserver and
# kube-controller-manager (EndpointSlice and ServiceAccount controllers),
# built from upstream modules by tests/k8s/build-tools.sh and started the way
# controller-runtime's envtest starts them: a CA and serving/client
# certificates made with openssl, RBAC authorization, service-account signing
# keys, --endpoint-reconciler-type none. No kubelet, scheduler or kube-proxy:
# a test plays the kubelet (creates a Node, patches Pod status).
#
# Everything runs inside a network namespace this file creates ($K8S_NS);
# the apiserver listens on $K8S_API_IP (on that namespace's loopback) and
# 127.0.0.1 there, and is reached from another test namespace through a veth
# pair (k8s_connect_ns). Nothing is added to the root namespace.
#
# Usage:
#   source tests/testlib/k8s.sh
#   k8s_require_tools || exit 77        # builds or finds the cached binaries
#   k8s_init cp-$$                      # names, temp dir, EXIT trap
#   k8s_up                              # certs, etcd, apiserver, KCM; /readyz
#   k8s_kubectl apply -f x.yaml         # as admin (system:masters)
#   k8s_sa_kubeconfig kube-system svclb "$K8S_TMP/svclb.kubeconfig"
#   k8s_connect_ns "$NODE_NS"           # route to $K8S_API_IP from NODE_NS
# k8s_cleanup runs on exit (processes by PID, namespaces, temp dir), even
# after a failure; K8S_KEEP=1 keeps the temp dir (logs) for a look.

K8S_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_REPO=$(cd "$K8S_LIB_DIR/../.." && pwd)
K8S_API_IP=${K8S_API_IP:-10.255.255.1}   # inside $K8S_NS only
K8S_API_PORT=6443
K8S_SERVICE_CIDR=10.96.0.0/12
K8S_SA_ISSUER=https://kubernetes.default.svc.cluster.local
K8S_PIDS=()          # etcd, apiserver, KCM, in start order
K8S_LINKED_NS=()     # namespaces k8s_connect_ns wired to $K8S_NS
K8S_KEEP=${K8S_KEEP:-0}

k8s_log() { printf '[%s] k8s: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# k8s_require_tools: find the binaries (build them, or reuse the cache).
# Returns 77 when there is no Go toolchain (the caller skips), 1 when the
# build fails. Sets K8S_BIN and KUBECTL.
k8s_require_tools() {
    local rc=0 out
    out=$(bash "$K8S_REPO/tests/k8s/build-tools.sh") || rc=$?
    ((rc == 0)) || return "$rc"
    K8S_BIN=$out
    KUBECTL=$K8S_BIN/kubectl
    command -v openssl >/dev/null || { k8s_log "openssl is missing (scripts/deps.sh installs it)"; return 1; }
}

# k8s_init PREFIX: namespace name, temp dir, EXIT trap (chained in front of
# one already installed, e.g. topo.sh's).
k8s_init() {
    K8S_PREFIX=$1
    [[ $K8S_PREFIX =~ ^[a-z0-9][a-z0-9-]*$ ]] || { k8s_log "bad prefix '$K8S_PREFIX'"; return 1; }
    K8S_NS=$K8S_PREFIX-cp
    K8S_TMP=$(mktemp -d "/tmp/svclb-k8s-$K8S_PREFIX.XXXXXX")
    K8S_PKI=$K8S_TMP/pki
    K8S_ADMIN_KUBECONFIG=$K8S_TMP/admin.kubeconfig
    K8S_SERVER=https://$K8S_API_IP:$K8S_API_PORT
    local prev
    prev=$(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT\$/\1/p")
    # shellcheck disable=SC2064  # expand $prev now
    trap "k8s_cleanup; $prev" EXIT
    trap 'exit 130' INT TERM
}

# Commands inside the control-plane namespace (exec'd: $! is the command's PID).
k8s_in_ns() { nsenter --net="/run/netns/$K8S_NS" "$@"; }

# k8s_kubectl ARGS...: kubectl as admin, from the control-plane namespace,
# bounded to 60 s.
k8s_kubectl() {
    timeout 60 nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" "$@"
}
# k8s_kubectl_as KUBECONFIG ARGS...: the same with another kubeconfig.
k8s_kubectl_as() {
    local kc=$1; shift
    timeout 60 nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$kc" "$@"
}

# ---- certificates (openssl), as envtest makes them ---------------------------

# _k8s_cert NAME SUBJECT EXT: a key and a certificate signed by the test CA.
_k8s_cert() {
    local name=$1 subj=$2 ext=$3
    openssl req -new -newkey rsa:2048 -nodes -keyout "$K8S_PKI/$name.key" \
        -subj "$subj" -out "$K8S_PKI/$name.csr" 2>/dev/null || return 1
    printf '%s\n' "$ext" >"$K8S_PKI/$name.ext"
    openssl x509 -req -in "$K8S_PKI/$name.csr" -CA "$K8S_PKI/ca.crt" -CAkey "$K8S_PKI/ca.key" \
        -CAcreateserial -days 2 -sha256 -extfile "$K8S_PKI/$name.ext" \
        -out "$K8S_PKI/$name.crt" 2>/dev/null
}

k8s_make_pki() {
    mkdir -p "$K8S_PKI" && chmod 700 "$K8S_PKI"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$K8S_PKI/ca.key" \
        -subj "/CN=svclb-test-ca" -days 2 -sha256 -out "$K8S_PKI/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null || return 1
    _k8s_cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$K8S_API_IP,IP:10.96.0.1" || return 1
    local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    _k8s_cert admin "/O=system:masters/CN=svclb-test-admin" "$client" || return 1
    _k8s_cert kcm "/CN=system:kube-controller-manager" "$client" || return 1
    # The service-account token keys: the apiserver signs (TokenRequest,
    # `kubectl create token`) with the private key and verifies with the public one.
    openssl genrsa -out "$K8S_PKI/sa.key" 2048 2>/dev/null || return 1
    openssl rsa -in "$K8S_PKI/sa.key" -pubout -out "$K8S_PKI/sa.pub" 2>/dev/null
}

# _k8s_kubeconfig FILE USER CREDENTIAL-FLAGS...: a kubeconfig for $K8S_SERVER.
_k8s_kubeconfig() {
    local f=$1 user=$2; shift 2
    "$KUBECTL" --kubeconfig "$f" config set-cluster test --server "$K8S_SERVER" \
        --certificate-authority "$K8S_PKI/ca.crt" --embed-certs=true >/dev/null &&
    "$KUBECTL" --kubeconfig "$f" config set-credentials "$user" "$@" >/dev/null &&
    "$KUBECTL" --kubeconfig "$f" config set-context test --cluster test --user "$user" >/dev/null &&
    "$KUBECTL" --kubeconfig "$f" config use-context test >/dev/null
}

# k8s_sa_kubeconfig NAMESPACE SERVICEACCOUNT FILE [DURATION]: a kubeconfig
# holding a bound token of that ServiceAccount (TokenRequest through
# `kubectl create token`, as a kubelet gets one for a pod).
k8s_sa_kubeconfig() {
    local ns=$1 sa=$2 f=$3 dur=${4:-1h} token
    token=$(k8s_kubectl -n "$ns" create token "$sa" --duration "$dur") || return 1
    [[ -n $token ]] || return 1
    _k8s_kubeconfig "$f" "system:serviceaccount:$ns:$sa" --token "$token"
}

# ---- processes ----------------------------------------------------------------

_k8s_start() {  # NAME CMD...: start in $K8S_NS, log to $K8S_TMP/NAME.log
    local name=$1; shift
    nsenter --net="/run/netns/$K8S_NS" "$@" >"$K8S_TMP/$name.log" 2>&1 &
    K8S_PIDS+=("$!")
    eval "K8S_PID_${name//-/_}=$!"
}

# _k8s_wait_url NAME PID URL SECONDS WANT CURL-ARGS...: until URL's body is
# (a glob) WANT; the process must stay alive meanwhile.
_k8s_wait_url() {
    local name=$1 pid=$2 url=$3 secs=$4 want=$5 i out; shift 5
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || { k8s_log "$name exited early:"; tail -25 "$K8S_TMP/$name.log" >&2; return 1; }
        out=$(k8s_in_ns curl -s -m 2 "$@" "$url" 2>/dev/null) && [[ $out == $want ]] && return 0  # WANT is a glob
        sleep 0.2
    done
    k8s_log "$name: $url did not answer '$want' within ${secs}s (last: ${out:-nothing}); log:"
    tail -25 "$K8S_TMP/$name.log" >&2
    return 1
}

# k8s_start_apiserver: (re)start kube-apiserver on etcd's data; waits for
# /readyz. A restarted apiserver builds a new watch cache from etcd.
k8s_start_apiserver() {
    _k8s_start kube-apiserver "$K8S_BIN/kube-apiserver" \
        --etcd-servers http://127.0.0.1:2379 \
        --advertise-address "$K8S_API_IP" --bind-address 0.0.0.0 --secure-port "$K8S_API_PORT" \
        --cert-dir "$K8S_TMP/apiserver" \
        --tls-cert-file "$K8S_PKI/apiserver.crt" --tls-private-key-file "$K8S_PKI/apiserver.key" \
        --client-ca-file "$K8S_PKI/ca.crt" \
        --authorization-mode RBAC \
        --service-account-issuer "$K8S_SA_ISSUER" \
        --service-account-key-file "$K8S_PKI/sa.pub" \
        --service-account-signing-key-file "$K8S_PKI/sa.key" \
        --service-cluster-ip-range "$K8S_SERVICE_CIDR" \
        --endpoint-reconciler-type none \
        --allow-privileged=true \
        --v=1
    _k8s_wait_url kube-apiserver "$K8S_PID_kube_apiserver" "https://$K8S_API_IP:$K8S_API_PORT/readyz" 120 ok \
        --cacert "$K8S_PKI/ca.crt" --cert "$K8S_PKI/admin.crt" --key "$K8S_PKI/admin.key" || return 1
}

# k8s_kill_apiserver: SIGKILL the apiserver (an outage: connections drop,
# nothing is said to the clients) and wait for it to be gone.
k8s_kill_apiserver() {
    local pid=${K8S_PID_kube_apiserver:-} i keep=()
    [[ -n $pid ]] || return 1
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    for i in "${K8S_PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
    K8S_PIDS=("${keep[@]}")
    K8S_PID_kube_apiserver=""
}

# k8s_etcd_compact: compact etcd's history up to its current revision
# (etcd's JSON gateway), so a watch from an older resourceVersion that the
# apiserver's watch cache cannot serve either gets 410 Gone.
k8s_etcd_compact() {
    local rev
    rev=$(k8s_in_ns curl -sf -m 5 -X POST http://127.0.0.1:2379/v3/kv/range -d '{"key":"AA=="}' |
        jq -r .header.revision) || return 1
    [[ $rev =~ ^[0-9]+$ ]] || return 1
    k8s_in_ns curl -sf -m 10 -X POST http://127.0.0.1:2379/v3/kv/compaction \
        -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null || return 1
    echo "$rev"
}

k8s_up() {
    local t0=$SECONDS
    ip netns list | grep -q "^$K8S_NS\b" && { k8s_log "namespace $K8S_NS already exists"; return 1; }
    ip netns add "$K8S_NS" || return 1
    k8s_in_ns ip link set lo up || return 1
    k8s_in_ns ip addr add "$K8S_API_IP/32" dev lo || return 1
    k8s_make_pki || { k8s_log "openssl failed to make the certificates"; return 1; }
    _k8s_kubeconfig "$K8S_ADMIN_KUBECONFIG" admin \
        --client-certificate "$K8S_PKI/admin.crt" --client-key "$K8S_PKI/admin.key" --embed-certs=true || return 1
    _k8s_kubeconfig "$K8S_TMP/kcm.kubeconfig" kcm \
        --client-certificate "$K8S_PKI/kcm.crt" --client-key "$K8S_PKI/kcm.key" --embed-certs=true || return 1

    _k8s_start etcd "$K8S_BIN/etcd" --name test --data-dir "$K8S_TMP/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster test=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
    _k8s_wait_url etcd "$K8S_PID_etcd" http://127.0.0.1:2379/health 30 '*"health":"true"*' || return 1

    k8s_start_apiserver || return 1

    # The EndpointSlice controller (slices for Services with selectors) and
    # the ServiceAccount controller (each namespace's "default" account, which
    # the ServiceAccount admission plugin wants before a Pod is created). As
    # in a cluster, each controller acts as its own ServiceAccount
    # (kube-system:endpointslice-controller, ...) with the default RBAC
    # policy's role for it; system:kube-controller-manager itself may not
    # write EndpointSlices.
    _k8s_start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
        --kubeconfig "$K8S_TMP/kcm.kubeconfig" \
        --use-service-account-credentials \
        --controllers endpointslice,serviceaccount \
        --leader-elect=false \
        --bind-address 127.0.0.1 --secure-port 10257 --cert-dir "$K8S_TMP/kcm" \
        --v=1
    _k8s_wait_url kube-controller-manager "$K8S_PID_kube_controller_manager" https://127.0.0.1:10257/healthz 60 ok -k || return 1
    k8s_log "control plane up in $((SECONDS - t0)) s: $K8S_SERVER in namespace $K8S_NS (tmp $K8S_TMP)"
}

# k8s_connect_ns NS [INDEX]: a veth pair from NS to the control-plane
# namespace, and a route in NS to $K8S_API_IP through it (a node reaching
# its apiserver). INDEX (1..250, default the next free) picks 10.255.INDEX.0/30.
k8s_connect_ns() {
    local ns=$1 i=${2:-$((${#K8S_LINKED_NS[@]} + 1))}
    local cp_if=k8sn$i
    k8s_in_ns ip link add "$cp_if" type veth peer name k8sapi netns "$ns" || return 1
    K8S_LINKED_NS+=("$ns")
    k8s_in_ns ip addr add "10.255.$i.1/30" dev "$cp_if" &&
    k8s_in_ns ip link set "$cp_if" up &&
    nsenter --net="/run/netns/$ns" ip addr add "10.255.$i.2/30" dev k8sapi &&
    nsenter --net="/run/netns/$ns" ip link set k8sapi up &&
    nsenter --net="/run/netns/$ns" ip route add "$K8S_API_IP/32" via "10.255.$i.1"
}

# k8s_dump_logs: the last lines of each component's log (after a failure).
k8s_dump_logs() {
    local f
    for f in "$K8S_TMP"/etcd.log "$K8S_TMP"/kube-apiserver.log "$K8S_TMP"/kube-controller-manager.log; do
        [[ -f $f ]] || continue
        printf -- '----- %s (last 15 lines)\n' "$f" >&2
        tail -15 "$f" >&2
    done
}

# k8s_cleanup: stop the processes (by PID, newest first), remove the
# namespace (and with it the veth pairs) and the temp dir. Idempotent.
k8s_cleanup() {
    [[ -n ${K8S_NS:-} ]] || return 0
    local i p live=() still
    for ((i = ${#K8S_PIDS[@]} - 1; i >= 0; i--)); do
        p=${K8S_PIDS[i]}
        kill -TERM "$p" 2>/dev/null && live+=("$p")
    done
    for ((i = 0; i < 50 && ${#live[@]} > 0; i++)); do
        still=()
        for p in "${live[@]}"; do kill -0 "$p" 2>/dev/null && still+=("$p"); done
        live=("${still[@]}")
        ((${#live[@]} > 0)) && sleep 0.1
    done
    for p in "${live[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${K8S_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    K8S_PIDS=()
    if ip netns list | grep -q "^$K8S_NS\b"; then
        # Anything still in our namespace was started by this test.
        for p in $(ip netns pids "$K8S_NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$K8S_NS" 2>/dev/null || true
    fi
    if ((K8S_KEEP)); then
        k8s_log "kept $K8S_TMP"
    elif [[ -n ${K8S_TMP:-} && -d $K8S_TMP ]]; then
        rm -rf "$K8S_TMP"
    fi
    K8S_NS=""
}

# k8s_test_start TOOL...: what every k8s test does first: the control
# plane's binaries (exit 77 = skip, with the reason, when there is no Go
# toolchain; a failed build is a setup failure) and the tools it names.
# Needs assert.sh (fatal_setup).
k8s_test_start() {
    local rc=0 t
    k8s_require_tools || rc=$?
    if ((rc == 77)); then
        echo "SKIP: no Go toolchain, so no Kubernetes control plane can be built (install Go 1.26)"
        exit 77
    fi
    ((rc == 0)) || fatal_setup "building the control plane (tests/k8s/build-tools.sh) failed"
    for t in "$@"; do
        command -v "$t" >/dev/null || fatal_setup "missing tool: $t"
    done
}

# ---- playing the kubelet ----------------------------------------------------------

# k8s_node NAME [ZONE]: register a Node (as a kubelet would), Ready.
k8s_node() {
    local name=$1 zone=${2:-}
    k8s_kubectl apply -f - >/dev/null <<Y || return 1
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels:
    kubernetes.io/hostname: $name
${zone:+    topology.kubernetes.io/zone: $zone}
Y
}

# k8s_pod NAMESPACE NAME IP NODE LABELS [IP6]: create a Pod (LABELS a flow
# map, e.g. "{app: web}") bound to NODE, then report it Running and Ready with
# IP (and IP6 as its second podIP: a dual-stack pod), as its kubelet would.
# The namespace's "default" ServiceAccount must exist.
k8s_pod() {
    local ns=$1 name=$2 ip=$3 node=$4 labels=$5 ip6=${6:-} now
    k8s_kubectl apply -f - >/dev/null <<Y || return 1
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: $ns
  labels: $labels
spec:
  nodeName: $node
  automountServiceAccountToken: false
  containers:
  - name: main
    image: registry.invalid/test:1
    ports: [{name: http, containerPort: 8080}]
Y
    k8s_pod_ready "$ns" "$name" True "$ip" "$ip6"
}

# k8s_pod_ready NAMESPACE NAME True|False [IP [IP6]]: patch the Pod's status.
k8s_pod_ready() {
    local ns=$1 name=$2 ready=$3 ip=${4:-} ip6=${5:-} now ipjson=""
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    [[ -n $ip ]] && ipjson="\"podIP\": \"$ip\", \"podIPs\": [{\"ip\": \"$ip\"}${ip6:+, {\"ip\": \"$ip6\"\}}],"
    k8s_kubectl patch pod "$name" -n "$ns" --subresource=status --type=merge -p "{\"status\": {
        \"phase\": \"Running\", $ipjson
        \"conditions\": [{\"type\": \"Ready\", \"status\": \"$ready\", \"lastTransitionTime\": \"$now\"},
                         {\"type\": \"ContainersReady\", \"status\": \"$ready\", \"lastTransitionTime\": \"$now\"}]}}" \
        >/dev/null
}

# k8s_wait_sa NAMESPACE: until the ServiceAccount controller made the
# namespace's "default" account (Pods need it), bounded.
k8s_wait_sa() {
    local i
    for ((i = 0; i < 150; i++)); do
        k8s_kubectl get serviceaccount default -n "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
