#!/usr/bin/env bash
# Kubernetes-mode scale benchmark (issue 13, "Scale"): svclbd following the
# real kube-apiserver (tests/testlib/k8s.sh) with N Services x E endpoints,
# and kube-proxy (nftables mode, built from the same release) beside it.
#
#   bench/k8s/scale.sh [N_SERVICES=10000] [ENDPOINTS=10]
#
# Environment: CHANGES (endpoint changes timed, default 10), CONCURRENCY
# (creating workers, default 16), KUBE_PROXY=0 to skip kube-proxy,
# KP_MODE (nftables|iptables, default nftables), OUT (the JSON result,
# default ./k8s-scale-N-E.json), SVCLB_BIN (default build/bin).
#
# What it does, every step bounded in time:
#  1. control plane (etcd, kube-apiserver, the EndpointSlice controller) in
#     its namespace; a node namespace wired to it; deploy/kubernetes/rbac.yaml;
#     svclbd --kubeconfig (a token of the svclb ServiceAccount) in the node
#     namespace, synced on the empty cluster.
#  2. svclb-k8sload (bench/k8s/tools/k8sload, client-go, no client-side rate
#     limit) creates N Services without selector and one EndpointSlice each
#     with E ready endpoints. Timed: creation wall time; then, from the last
#     create returning, the time until svclbd reports N+1 Services' frontends
#     and N*E backends in its maps (svcctl status -o json .maps, polled every
#     50 ms: the syncer's count of entries written), checked afterwards
#     against the kernel (bpftool: svc_v1 entries; svclb-mappoll: the last
#     Service's last endpoint is reachable). svclbd's VmRSS/VmHWM then.
#  3. CHANGES endpoint changes, alternately adding and removing one endpoint
#     of one slice with `kubectl patch` (JSON patch), each timed by
#     svclb-mappoll from the fork of kubectl to the backend being reachable
#     (gone) in the maps.
#  4. Cold start: svclbd stopped, its pins and state removed (--uninstall),
#     started again with every object in the API: time to status answering,
#     to synced, to the maps complete; RSS. Then a warm restart (SIGTERM,
#     pins and state file kept): time to synced and the smallest map count
#     seen meanwhile (the maps must stay full).
#  5. kube-proxy (if built: bench/k8s/build-tools.sh) in a namespace of its
#     own, svclbd stopped: time from start to its first full sync of all
#     objects (its /metrics), rule counts (nft), RSS, and CHANGES endpoint
#     changes timed from kubectl's start to the end of the sync that carried
#     them (kubeproxy_sync_proxy_rules_last_timestamp_seconds).
# Everything lives in namespaces it creates; all removed on exit.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
N=${1:-10000}
E=${2:-10}
CHANGES=${CHANGES:-10}
CONCURRENCY=${CONCURRENCY:-16}
KUBE_PROXY=${KUBE_PROXY:-1}
KP_MODE=${KP_MODE:-nftables}
OUT=${OUT:-$PWD/k8s-scale-$N-$E.json}
[[ $N =~ ^[0-9]+$ && $E =~ ^[0-9]+$ ]] && ((N >= 1 && E >= 2 && N * E < 200000)) ||
    { echo "usage: scale.sh [N_SERVICES>=1] [ENDPOINTS>=2] (N*E < 200000: svclbd's default map sizes)" >&2; exit 2; }
[[ $KP_MODE == nftables || $KP_MODE == iptables ]] || { echo "KP_MODE is nftables or iptables" >&2; exit 2; }
((CHANGES >= 1 && CHANGES <= 200)) || { echo "CHANGES is 1..200" >&2; exit 2; }

source "$REPO/tests/testlib/topo.sh"
source "$REPO/tests/testlib/k8s.sh"
source "$HERE/kubeproxy.sh"
for t in nsenter curl openssl ip jq bpftool; do
    command -v "$t" >/dev/null || die "missing tool: $t"
done
for b in svclbd svcctl svclb-mappoll; do [[ -x $SVCLB_BIN/$b ]] || die "no $SVCLB_BIN/$b (build first)"; done
rc=0
k8s_require_tools || rc=$?
((rc == 0)) || die "the control plane tools (tests/k8s/build-tools.sh) are not available (rc $rc)"
BENCH_BIN=$(bash "$HERE/build-tools.sh") || die "bench/k8s/build-tools.sh failed"
LOAD=$BENCH_BIN/svclb-k8sload

P=k8ssc$$
NODE=node-a
KP_NODE=node-kp
topo_init "$P"
k8s_init "$P" || die "k8s_init"
KP_NS=$P-kp
KP_PID=""
# kube-proxy's namespace and process, even after a failure (before k8s_cleanup).
# shellcheck disable=SC2064
trap "kp_cleanup; $(trap -p EXIT | sed -n "s/^trap -- '\(.*\)' EXIT\$/\1/p")" EXIT
kp_cleanup() {
    [[ -n $KP_PID ]] && topo_kill_pids "$KP_PID"
    KP_PID=""
    if ip netns list | grep -q "^$KP_NS\b"; then
        local p; for p in $(ip netns pids "$KP_NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$KP_NS" 2>/dev/null
    fi
    return 0
}

RES=()   # "key": value JSON members of the result
res() { RES+=("\"$1\": $2"); log "RESULT $1 = $2"; }
now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
kubectl_cp() { timeout 60 nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" "$@"; }
st() { svcctl status -o json 2>/dev/null; }
# "<svc_v1 entries> <backends in use> <synced>" from svcctl status.
counts() {
    st | jq -r '[(.maps[] | select(.name == "svc_v1") | .entries), (.maps[] | select(.name == "backends_v1") | .entries), .kubernetes.synced] | @tsv'
}
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s %s ", $1, $2 }' "/proc/$1/status" 2>/dev/null; }
# CPU seconds (user + system) a process has used so far.
CLK_TCK=$(getconf CLK_TCK)
cpu_s() { awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null; }
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }
# The median and p90 of the numbers on stdin (nearest rank).
stats() { sort -g | awk '{a[NR] = $1} END { if (!NR) { print "null null"; exit }
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    p = int(0.9 * NR + 0.999999); if (p < 1) p = 1; print m, a[p] }'; }

# Wanted map contents at N services x E endpoints, plus the apiserver's own
# "kubernetes" Service (a frontend, no endpoints: --endpoint-reconciler-type
# none). svc_v1 holds one master per frontend and one slot per ready backend.
WANT_SVC=$((N + 1 + N * E))
WANT_BE=$((N * E))

# wait_counts SECONDS: until svclbd reports the wanted counts; prints the
# milliseconds since $T_REF. Polls every 50 ms.
wait_counts() {
    local secs=$1 end c
    end=$(($(now_ns) + secs * 1000000000))
    while (($(now_ns) < end)); do
        c=$(counts)
        if [[ $c == "$WANT_SVC"$'\t'"$WANT_BE"$'\t'true ]]; then ms_since "$T_REF"; return 0; fi
        sleep 0.05
    done
    log "maps not complete within ${secs}s: svc_v1/backends/synced = ${c:-?} (want $WANT_SVC $WANT_BE true)"
    return 1
}
wait_synced() {  # SECONDS: until status says synced; prints ms since $T_REF
    local secs=$1 end
    end=$(($(now_ns) + secs * 1000000000))
    while (($(now_ns) < end)); do
        [[ $(st | jq -r .kubernetes.synced) == true ]] && { ms_since "$T_REF"; return 0; }
        sleep 0.05
    done
    return 1
}
wait_status() {  # SECONDS: until svcctl status answers; prints ms since $T_REF
    local secs=$1 end
    end=$(($(now_ns) + secs * 1000000000))
    while (($(now_ns) < end)); do
        svcctl status >/dev/null 2>&1 && { ms_since "$T_REF"; return 0; }
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$DAEMON_LOG" >&2; return 1; }
        sleep 0.05
    done
    return 1
}

# ---- 1. control plane, node, svclbd -----------------------------------------------
log "scale: $N Services x $E endpoints; result in $OUT"
res machine "\"$(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)\""
res n_services "$N"
res endpoints "$E"
k8s_up || { k8s_dump_logs; die "the control plane did not come up"; }
topo_create_node
mkdir -p "$CG"
k8s_connect_ns "$NODE_NS" 1 || die "k8s_connect_ns"
k8s_kubectl apply -f "$REPO/deploy/kubernetes/rbac.yaml" >/dev/null || die "apply rbac.yaml"
k8s_node "$NODE" || die "Node $NODE"
k8s_sa_kubeconfig kube-system svclb "$TOPO_TMP/svclb.kubeconfig" 4h || die "svclb kubeconfig"
DAEMON_FLAGS_EXTRA=(--kubeconfig "$TOPO_TMP/svclb.kubeconfig" --node-name "$NODE")
daemon_start && daemon_wait_ready || die "svclbd did not start"
T_REF=$(now_ns)
wait_synced 60 >/dev/null || die "svclbd did not sync on the empty cluster"
log "svclbd synced on the empty cluster: $(counts | tr '\t' ' ') (RSS: $(rss "$DAEMON_PID"))"
res svclbd_rss_empty_kb "$(rss_kb "$DAEMON_PID" VmRSS)"

# ---- 2. create N x E through the apiserver --------------------------------------------
# A 1-second trace while it runs: seconds, svc_v1 entries, backends, RSS kB.
TRACE=$TOPO_TMP/trace.tsv
( t0=$(now_ns)
  for ((i = 0; i < 3600; i++)); do
      [[ -f $TOPO_TMP/trace.stop ]] && break
      printf '%s\t%s\t%s\n' "$((($(now_ns) - t0) / 1000000))" "$(counts | cut -f1,2)" "$(rss_kb "$DAEMON_PID" VmRSS)"
      sleep 1
  done >"$TRACE" ) &
TRACE_PID=$!
TOPO_PIDS+=("$TRACE_PID")
log "creating $N Services and $N EndpointSlices ($CONCURRENCY workers)"
cpu0_svclbd=$(cpu_s "$DAEMON_PID") cpu0_api=$(cpu_s "$K8S_PID_kube_apiserver") cpu0_etcd=$(cpu_s "$K8S_PID_etcd")
LOAD_OUT=$(timeout 1800 nsenter --net="/run/netns/$K8S_NS" "$LOAD" --kubeconfig "$K8S_ADMIN_KUBECONFIG" \
    --namespace scale --services "$N" --endpoints "$E" --concurrency "$CONCURRENCY" --timeout 29m) ||
    die "svclb-k8sload failed: $LOAD_OUT"
T_REF=$(now_ns)
log "created: $LOAD_OUT"
res create_wall_s "$(jq .wall_s <<<"$LOAD_OUT")"
res create_objects_per_s "$(jq .objects_per_s <<<"$LOAD_OUT")"
res create_concurrency "$CONCURRENCY"
# The first poll after the last create: often complete already (svclbd kept
# up with the API), then the figure is that poll's own time.
c_at_end=$(counts)
ms=$(ms_since "$T_REF")
res svclbd_at_last_create "\"$(tr '\t' ' ' <<<"$c_at_end")\""
if [[ $c_at_end == "$WANT_SVC"$'\t'"$WANT_BE"$'\t'true ]]; then
    res svclbd_complete_at_first_poll true
else
    res svclbd_complete_at_first_poll false
    ms=$(wait_counts 1200) || { tail -20 "$DAEMON_LOG" >&2; die "svclbd did not reach the full maps"; }
fi
res svclbd_last_create_to_maps_ms "$ms"
# What one poll costs at this size (svcctl status -o json + jq): the
# resolution of the number above.
t0=$(now_ns); counts >/dev/null; res poll_cost_ms "$(ms_since "$t0")"
cpu_since() { awk -v a="$(cpu_s "$1")" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
res cpu_s_while_creating "{\"svclbd\": $(cpu_since "$DAEMON_PID" "$cpu0_svclbd"), \"kube_apiserver\": $(cpu_since "$K8S_PID_kube_apiserver" "$cpu0_api"), \"etcd\": $(cpu_since "$K8S_PID_etcd" "$cpu0_etcd")}"
touch "$TOPO_TMP/trace.stop"
wait "$TRACE_PID" 2>/dev/null
res svclbd_rss_kb "$(rss_kb "$DAEMON_PID" VmRSS)"
res svclbd_hwm_kb "$(rss_kb "$DAEMON_PID" VmHWM)"
res apiserver_rss_kb "$(rss_kb "$K8S_PID_kube_apiserver" VmRSS)"
res etcd_rss_kb "$(rss_kb "$K8S_PID_etcd" VmRSS)"
res trace "$(jq -Rsc 'split("\n") | map(select(length > 0) | split("\t") | map(tonumber? // null))' "$TRACE")"
res svclbd_status_k8s "$(st | jq -c '{objects: .kubernetes.objects, lastPush: .kubernetes.lastPush}')"

# The kernel's view, once (not timed): entries in svc_v1, and the last
# Service's last endpoint reachable through its ClusterIP.
kernel_svc=$(in_node_t 300 bpftool -j map dump pinned "$BPFFS/svc_v1" | jq length)
res kernel_svc_v1_entries "${kernel_svc:-null}"
[[ $kernel_svc == "$WANT_SVC" ]] || die "svc_v1 holds ${kernel_svc:-?} entries in the kernel, want $WANT_SVC"
LAST=s$((N - 1))
VIP_LAST=$(kubectl_cp get svc -n scale "$LAST" -o jsonpath='{.spec.clusterIP}') || die "get svc $LAST"
last_ep=$(kubectl_cp get endpointslice -n scale "$LAST-1" -o jsonpath="{.endpoints[$((E - 1))].addresses[0]}")
# svclb-mappoll --gone with a no-op command: it refuses (no JSON) when the
# backend is not reachable before, and reports map_s -1 when it stays
# reachable until the timeout, which is what we want.
chk=$(in_node_t 30 "$SVCLB_BIN/svclb-mappoll" --bpffs "$BPFFS" --vip "$VIP_LAST" --vport 80 --proto tcp \
        --addr "$last_ep" --port 8080 --gone --timeout 1 -- true 2>&1)
[[ $(jq -r .map_s <<<"$chk" 2>/dev/null) == -1* ]] ||
    die "the last endpoint ${last_ep:-?} of $LAST is not reachable through ${VIP_LAST:-?}:80 in the maps: $chk"
log "kernel check: svc_v1 holds $kernel_svc entries; $LAST ($VIP_LAST) reaches $last_ep"

# ---- 3. one endpoint change, kubectl -> map ---------------------------------------------
MID=s$((N / 2))
VIP_MID=$(kubectl_cp get svc -n scale "$MID" -o jsonpath='{.spec.clusterIP}') || die "get svc $MID"
EXTRA=10.127.255.250
map_ms=() cmd_ms=()
for ((k = 0; k < CHANGES; k++)); do
    if ((k % 2 == 0)); then
        patch="[{\"op\": \"add\", \"path\": \"/endpoints/-\", \"value\": {\"addresses\": [\"$EXTRA\"], \"conditions\": {\"ready\": true}}}]"
        gone=()
    else
        patch="[{\"op\": \"test\", \"path\": \"/endpoints/$E/addresses/0\", \"value\": \"$EXTRA\"}, {\"op\": \"remove\", \"path\": \"/endpoints/$E\"}]"
        gone=(--gone)
    fi
    m=$(in_node_t 60 "$SVCLB_BIN/svclb-mappoll" --bpffs "$BPFFS" --vip "$VIP_MID" --vport 80 --proto tcp \
        --addr "$EXTRA" --port 8080 "${gone[@]}" --timeout 30 -- \
        nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" \
        patch endpointslice -n scale "$MID-1" --type=json -p "$patch") ||
        die "endpoint change $k did not reach the maps: $m"
    [[ $(jq -r .command_ok <<<"$m") == true ]] || die "kubectl patch failed (change $k)"
    map_ms+=("$(jq '.map_s * 1000' <<<"$m")")
    cmd_ms+=("$(jq '.command_s * 1000' <<<"$m")")
    log "change $k (${gone[*]:-add}): kubectl ${cmd_ms[-1]} ms, in the map after ${map_ms[-1]} ms"
    sleep 0.3
done
read -r med p90 < <(printf '%s\n' "${map_ms[@]}" | stats)
read -r cmed cp90 < <(printf '%s\n' "${cmd_ms[@]}" | stats)
res svclbd_change_to_map_ms "{\"median\": $med, \"p90\": $p90, \"n\": $CHANGES, \"all\": [$(IFS=,; echo "${map_ms[*]}")]}"
res kubectl_patch_wall_ms "{\"median\": $cmed, \"p90\": $cp90}"

# ---- 4. cold start and warm restart ------------------------------------------------------
daemon_stop
in_node_t 60 "$SVCLB_BIN/svclbd" --uninstall $(daemon_flags) >>"$TOPO_TMP/uninstall.log" 2>&1 ||
    die "svclbd --uninstall failed (see $TOPO_TMP/uninstall.log)"
rm -rf "$STATE_DIR"
[[ -e $BPFFS ]] && die "$BPFFS still exists after --uninstall"
T_REF=$(now_ns)
daemon_start
ms_status=$(wait_status 60) || die "svclbd (cold) did not answer"
ms_synced=$(wait_synced 600) || die "svclbd (cold) did not sync"
ms_maps=$(wait_counts 600) || die "svclbd (cold) did not fill the maps"
res svclbd_cold_start_ms "{\"status\": $ms_status, \"synced\": $ms_synced, \"maps_complete\": $ms_maps}"
res svclbd_cold_rss_kb "$(rss_kb "$DAEMON_PID" VmRSS)"
res svclbd_cold_cpu_s "$(cpu_s "$DAEMON_PID")"
res svclbd_cold_hwm_kb "$(rss_kb "$DAEMON_PID" VmHWM)"

daemon_stop
T_REF=$(now_ns)
daemon_start
ms_status=$(wait_status 60) || die "svclbd (warm) did not answer"
# The maps must stay full while it relists: the smallest count seen.
min_svc=$WANT_SVC
end=$(($(now_ns) + 600 * 1000000000))
ms_synced=""
while (($(now_ns) < end)); do
    c=$(counts) || continue
    s=$(cut -f1 <<<"$c")
    [[ $s =~ ^[0-9]+$ ]] && ((s < min_svc)) && min_svc=$s
    if [[ $(cut -f3 <<<"$c") == true ]]; then ms_synced=$(ms_since "$T_REF"); break; fi
    sleep 0.05
done
[[ -n $ms_synced ]] || die "svclbd (warm) did not sync"
ms_maps=$(wait_counts 600) || die "svclbd (warm) maps not complete"
res svclbd_warm_restart_ms "{\"status\": $ms_status, \"synced\": $ms_synced, \"maps_complete\": $ms_maps, \"min_svc_v1_entries_seen\": $min_svc}"
res svclbd_warm_rss_kb "$(rss_kb "$DAEMON_PID" VmRSS)"
daemon_stop

# ---- 5. kube-proxy beside it ----------------------------------------------------------------
KP=$BENCH_BIN/kube-proxy
if ((KUBE_PROXY)) && [[ -x $KP ]]; then
    ip netns add "$KP_NS" || die "netns $KP_NS"
    nsenter --net="/run/netns/$KP_NS" ip link set lo up
    k8s_connect_ns "$KP_NS" 2 || die "k8s_connect_ns $KP_NS"
    kp_node "$KP_NODE" 10.255.2.2 || die "Node $KP_NODE"
    KP_LOG=$TOPO_TMP/kube-proxy.log
    T_REF=$(now_ns)
    kp_start "$KP_NS" "$KP_NODE" "$KP_MODE" 10.128.0.0/10 "$KP_LOG"
    KP_PID=$KP_STARTED_PID
    kpm() { kpm_ns "$KP_NS"; }
    end=$(($(now_ns) + 1200 * 1000000000))
    kp_ms=""
    while (($(now_ns) < end)); do
        kill -0 "$KP_PID" 2>/dev/null || { tail -30 "$KP_LOG" >&2; die "kube-proxy exited"; }
        m=$(kpm)
        ts=$(kpm_val kubeproxy_sync_proxy_rules_last_timestamp_seconds "$m")
        if [[ -n $ts ]] && awk -v ts="$ts" 'BEGIN { exit !(ts > 0) }'; then
            # The first sync runs once both informers have listed: it holds every object.
            kp_ms=$(ms_from "$ts" "$T_REF")
            break
        fi
        sleep 0.1
    done
    [[ -n $kp_ms ]] || { tail -30 "$KP_LOG" >&2; die "kube-proxy did not sync within 1200 s"; }
    res kube_proxy_mode "\"$KP_MODE\""
    res kube_proxy_start_to_first_sync_ms "$kp_ms"
    # The duration histogram may trail the timestamp by a scrape.
    sleep 0.5; m=$(kpm)
    d=$(kpm_val kubeproxy_sync_full_proxy_rules_duration_seconds_sum "$m")
    res kube_proxy_first_sync_duration_s "${d:-null}"
    res kube_proxy_rss_kb "$(rss_kb "$KP_PID" VmRSS)"
    res kube_proxy_cpu_s_to_first_sync "$(cpu_s "$KP_PID")"
    res kube_proxy_hwm_kb "$(rss_kb "$KP_PID" VmHWM)"
    rc_out=$(kp_rule_counts "$KP_NS" "$KP_MODE" "$TOPO_TMP/kp-rules.txt") || die "kube-proxy's rules could not be listed"
    read -r nsvc nep <<<"$rc_out"
    res kube_proxy_service_chains "$nsvc"
    res kube_proxy_endpoints_programmed "$nep"
    # The kubernetes Service has no endpoints: no chain, a reject verdict.
    ((nsvc == N && nep == N * E)) || { cp "$TOPO_TMP/kp-rules.txt" "/tmp/k8s-scale-kp-rules.$$.txt"
        die "kube-proxy programmed $nsvc service chains / $nep endpoints, want $N / $((N * E)) (rules in /tmp/k8s-scale-kp-rules.$$.txt)"; }
    res kube_proxy_rss_after_check_kb "$(rss_kb "$KP_PID" VmRSS)"

    # Endpoint changes: kubectl start -> end of the sync that carries it.
    kp_change=()
    for ((k = 0; k < CHANGES; k++)); do
        if ((k % 2 == 0)); then
            patch="[{\"op\": \"add\", \"path\": \"/endpoints/-\", \"value\": {\"addresses\": [\"$EXTRA\"], \"conditions\": {\"ready\": true}}}]"
        else
            patch="[{\"op\": \"test\", \"path\": \"/endpoints/$E/addresses/0\", \"value\": \"$EXTRA\"}, {\"op\": \"remove\", \"path\": \"/endpoints/$E\"}]"
        fi
        m=$(kpm)
        ts0=$(kpm_val kubeproxy_sync_proxy_rules_last_timestamp_seconds "$m")
        t0=$(now_ns)
        kubectl_cp patch endpointslice -n scale "$MID-1" --type=json -p "$patch" >/dev/null ||
            die "kubectl patch (kube-proxy change $k)"
        end=$(($(now_ns) + 60 * 1000000000))
        got=""
        while (($(now_ns) < end)); do
            m=$(kpm)
            ts=$(kpm_val kubeproxy_sync_proxy_rules_last_timestamp_seconds "$m")
            pend=$(kpm_val kubeproxy_sync_proxy_rules_endpoint_changes_pending "$m")
            if [[ $ts != "$ts0" && ${pend:-0} == 0 ]]; then
                got=$(ms_from "$ts" "$t0")
                break
            fi
            sleep 0.05
        done
        [[ -n $got ]] || die "kube-proxy did not sync endpoint change $k within 60 s"
        kp_change+=("$got")
        log "kube-proxy change $k: synced $got ms after kubectl started"
        sleep 1.2   # past --min-sync-period (1 s), so every change is its own sync
    done
    read -r med p90 < <(printf '%s\n' "${kp_change[@]}" | stats)
    res kube_proxy_change_to_rules_ms "{\"median\": $med, \"p90\": $p90, \"n\": $CHANGES, \"all\": [$(IFS=,; echo "${kp_change[*]}")]}"
    m=$(kpm)
    d=$(kpm_val kubeproxy_sync_partial_proxy_rules_duration_seconds_sum "$m")
    dn=$(kpm_val kubeproxy_sync_partial_proxy_rules_duration_seconds_count "$m")
    res kube_proxy_partial_sync_duration "{\"sum_s\": ${d:-null}, \"count\": ${dn:-null}}"
    res kube_proxy_rss_end_kb "$(rss_kb "$KP_PID" VmRSS)"
    kp_cleanup
else
    log "kube-proxy: skipped (KUBE_PROXY=$KUBE_PROXY, $KP)"
fi

(IFS=,; printf '{%s}\n' "${RES[*]}") | jq . >"$OUT" || die "writing $OUT"
log "done: $OUT"
