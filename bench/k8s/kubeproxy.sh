# shellcheck shell=bash
# The real kube-proxy (bench/k8s/build-tools.sh) in a network namespace,
# fed by the apiserver of tests/testlib/k8s.sh: sourced by bench/k8s/scale.sh
# and bench/compare/run.sh (after k8s.sh, with k8s_up done and NS wired to
# the apiserver by k8s_connect_ns). Several kube-proxies may run at once,
# one per namespace: each listens for metrics on its own namespace's
# loopback (127.0.0.1:10249), so the namespace names the instance.
#
#   kp_node NAME IP                 a Node object NAME (InternalIP IP), as its kubelet would
#   kp_start NS NODE MODE CIDR LOG  start it (--hostname-override NODE, --proxy-mode MODE,
#                                   --cluster-cidr CIDR); its PID in KP_STARTED_PID
#   kpm_ns NS                        its /metrics
#   kpm_val METRIC TEXT             one metric's value (IPv4 for per-family ones)
#   kp_sync_ts NS                   the end of its last sync (unix seconds, "" before one)
#   kp_wait_synced NS PID TS0 SECS  until a sync ending after TS0 left nothing pending:
#                                   prints that sync's end (unix seconds)
#   kp_rule_counts NS MODE FILE     "<service chains> <endpoints programmed>" from nft/iptables-save
#                                   (the listing itself in FILE)
#   ms_from TS T0_NS                milliseconds from T0_NS (date +%s%N) to TS (unix seconds)
# The caller kills KP_STARTED_PID (by PID) and removes NS on exit.

kp_node() {
    local name=$1 ip=$2
    k8s_kubectl apply -f - >/dev/null <<Y || return 1
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: {kubernetes.io/hostname: $name}
Y
    k8s_kubectl patch node "$name" --subresource=status --type=merge \
        -p "{\"status\": {\"addresses\": [{\"type\": \"InternalIP\", \"address\": \"$ip\"}]}}" >/dev/null
}

# As the admin (kube-proxy's own node credentials are not the point here).
# No conntrack sysctls: they are not per network namespace.
kp_start() {
    local ns=$1 node=$2 mode=$3 cidr=$4 log=$5
    nsenter --net="/run/netns/$ns" "$BENCH_BIN/kube-proxy" --kubeconfig "$K8S_ADMIN_KUBECONFIG" \
        --proxy-mode "$mode" --hostname-override "$node" --cluster-cidr "$cidr" \
        --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 \
        --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 \
        --conntrack-tcp-timeout-close-wait 0 --v=2 >"$log" 2>&1 &
    KP_STARTED_PID=$!
}

kpm_ns() { timeout 5 nsenter --net="/run/netns/$1" curl -s -m 2 http://127.0.0.1:10249/metrics; }
kpm_val() { awk -v k="$1" '$1 == k || $1 == k "{ip_family=\"IPv4\"}" { print $2 }' <<<"$2"; }
# Prometheus prints timestamps as 1.76e+09: awk reads that, bc does not.
ms_from() { awk -v ts="$1" -v t0="$2" 'BEGIN { printf "%d", ts * 1000 - t0 / 1e6 }'; }
kp_sync_ts() {
    local ts
    ts=$(kpm_val kubeproxy_sync_proxy_rules_last_timestamp_seconds "$(kpm_ns "$1")")
    awk -v ts="${ts:-0}" 'BEGIN { exit !(ts > 0) }' && echo "$ts"
    return 0
}

kp_wait_synced() {
    local ns=$1 pid=$2 ts0=${3:-0} secs=$4 end m ts sp ep
    end=$(($(date +%s%N) + secs * 1000000000))
    while (($(date +%s%N) < end)); do
        kill -0 "$pid" 2>/dev/null || return 1
        m=$(kpm_ns "$ns")
        ts=$(kpm_val kubeproxy_sync_proxy_rules_last_timestamp_seconds "$m")
        sp=$(kpm_val kubeproxy_sync_proxy_rules_service_changes_pending "$m")
        ep=$(kpm_val kubeproxy_sync_proxy_rules_endpoint_changes_pending "$m")
        if [[ -n $ts ]] && awk -v a="$ts" -v b="${ts0:-0}" 'BEGIN { exit !(a > b) }' &&
            [[ ${sp:-0} == 0 && ${ep:-0} == 0 ]]; then
            echo "$ts"
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# 1.37's nftables proxier: one chain per service port, reached from the
# service-ips map, its endpoints a numgen map in it (endpoint chains only
# where needed: masquerade, affinity). Counted: the service-ips map's
# elements (a deleted Service's chain stays, flushed, until a later sync
# removes it: counting chains would count those), and DNAT targets in the
# chains plus endpoint chains. iptables: KUBE-SVC-* and KUBE-SEP-* chains.
kp_rule_counts() {
    local ns=$1 mode=$2 file=$3 rules nsvc nep
    if [[ $mode == nftables ]]; then
        rules=$(timeout 300 nsenter --net="/run/netns/$ns" nft list table ip kube-proxy) || return 1
        nsvc=$(grep -oE ': goto service-[A-Z0-9]{8}-' <<<"$rules" | wc -l)
        nep=$(($(grep 'dnat ip to numgen' <<<"$rules" | grep -oE ': [0-9.]+ \. [0-9]+' | wc -l) +
            $(grep -cE 'chain endpoint-[A-Z0-9]{8}-' <<<"$rules" || true)))
    else
        rules=$(timeout 300 nsenter --net="/run/netns/$ns" iptables-save -t nat) || return 1
        nsvc=$(grep -c '^:KUBE-SVC-' <<<"$rules" || true)
        nep=$(grep -c '^:KUBE-SEP-' <<<"$rules" || true)
    fi
    printf '%s\n' "$rules" >"$file"
    echo "$nsvc $nep"
}
