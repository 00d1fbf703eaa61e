#!/usr/bin/env bash
# svclb demo: a node and three pods in network namespaces, svclbd balancing
# Service "web" (10.96.0.10: 80/TCP -> 8080, 5353/UDP) over pods be1 and be2.
#
#   scripts/demo.sh          build if needed, run the demo, tear it down
#   scripts/demo.sh --keep   leave it running (prints how to use and remove it)
#   scripts/demo.sh down     remove a kept demo
#   scripts/demo.sh nodeport NodePort/LoadBalancer across two nodes (scripts/demo-nodeport.sh)
#   scripts/demo.sh dns      cluster DNS: names, ExternalName, headless (scripts/demo-dns.sh)
#
# Needs root. Nothing is added to the root namespace's interfaces; all
# addresses exist only inside the demo's namespaces (svclb-demo-*).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=svclb-demo
DEMO_TMP=/tmp/svclb-demo
STATE_FILE=$DEMO_TMP/demo.env

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

MODE=up KEEP=0
for a in "$@"; do
    case $a in
        down) MODE=down ;;
        nodeport) exec "$REPO/scripts/demo-nodeport.sh" ;;
        dns) exec "$REPO/scripts/demo-dns.sh" ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "demo.sh: unknown argument '$a'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "demo.sh: needs root (network namespaces, bpffs, cgroups)" >&2; exit 1; }

export SVCLB_BIN=${SVCLB_BIN:-$REPO/build/bin}
# shellcheck source=../tests/testlib/topo.sh
source "$REPO/tests/testlib/topo.sh"

hdr() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; }

demo_down() {
    if [[ ! -d $DEMO_TMP ]] && ! ip netns list | grep -q "^$PREFIX-"; then
        echo "no demo running"; return 0
    fi
    topo_init "$PREFIX" "$DEMO_TMP"
    # The daemon of a kept demo is not our child: take its PID from the state
    # file, but only if it still is svclbd.
    local pid=""
    [[ -f $STATE_FILE ]] && pid=$(sed -n 's/^DAEMON_PID=//p' "$STATE_FILE")
    if [[ -n $pid && $(readlink "/proc/$pid/exe" 2>/dev/null) == */svclbd ]]; then
        DAEMON_PID=$pid
    fi
    topo_cleanup
    trap - EXIT
    echo "demo removed"
}

build_if_needed() {
    [[ -x $SVCLB_BIN/svclbd && -x $SVCLB_BIN/svcctl ]] && return 0
    hdr "building svclb"
    if [[ -x $REPO/scripts/build.sh ]]; then
        (cd "$REPO" && scripts/build.sh)
    else
        (cd "$REPO" && cmake -S . -B build && cmake --build build -j2)
    fi || { echo "build failed" >&2; exit 1; }
    [[ -x $SVCLB_BIN/svclbd && -x $SVCLB_BIN/svcctl ]] || { echo "build produced no svclbd/svcctl in $SVCLB_BIN" >&2; exit 1; }
}

# curls WHERE N MIN_N: at least N requests; up to MIN_N more until both
# backends have answered. Fails on any failed request.
curls() {
    local where=$1 n=$2 extra=$3 i out seen="" fails=0 label
    [[ $where == node ]] && label="node ($PREFIX-node, cgroup)" || label="pod $where"
    for ((i = 1; i <= n + extra; i++)); do
        out=$(http_get_many "$where" 1 "http://$VIP/")
        printf '  %-36s -> http://%s/  answered by: %s\n' "$label" "$VIP" "$out"
        case $out in be1|be2) [[ $seen == *$out* ]] || seen+=" $out" ;; *) fails=$((fails + 1)) ;; esac
        ((i >= n)) && [[ $seen == *be1* && $seen == *be2* ]] && break
    done
    ((fails == 0)) || { echo "  $fails request(s) from $label FAILED" >&2; return 1; }
    [[ $seen == *be1* && $seen == *be2* ]] || echo "  note: only$seen answered from $label"
    return 0
}

demo_up() {
    if [[ -d $DEMO_TMP ]] || ip netns list | grep -q "^$PREFIX-"; then
        echo "removing a previous demo (scripts/demo.sh down)"
        (demo_down) || exit 1
    fi
    build_if_needed
    topo_init "$PREFIX" "$DEMO_TMP"
    TOPO_KEEP=$KEEP

    hdr "topology"
    topo_up || exit 1
    printf '  node   %-18s %s (lo), lxcbe1 lxcbe2 lxcclient\n' "$NODE_NS" "$NODE_IP"
    local p; for p in be1 be2 client; do printf '  pod    %-18s %s\n' "$(pod_ns "$p")" "${POD_IP[$p]}"; done
    echo "  be1/be2 serve HTTP on :8080 and UDP on :5353, answering with their name"

    hdr "svclbd"
    daemon_start || exit 1
    daemon_wait_ready || { echo "svclbd did not become ready" >&2; exit 1; }
    printf 'DAEMON_PID=%s\n' "$DAEMON_PID" >"$STATE_FILE"
    show svcctl status; svcctl status

    hdr "apply the Service and its Endpoints"
    local f
    for f in web-service.yaml web-endpoints.yaml; do
        show "svcctl apply -f examples/$f"
        svcctl apply -f "$SVCLB_EXAMPLES/$f" || exit 1
    done

    hdr "TCP from the client pod (tc dataplane)"
    local rc=0
    curls client 6 14 || rc=1
    hdr "TCP from the node (socket-level balancing, cgroup $CG)"
    curls node 4 16 || rc=1
    hdr "UDP from the client pod"
    local u
    u=$(udp_query_pod client "$VIP" 5353 1 8) || rc=1
    printf '  pod client -> udp %s:5353  answer: %s\n' "$VIP" "$u"
    [[ $u =~ ^be[12]\ from\ $VIP:5353$ ]] || { echo "  UDP through the service FAILED" >&2; rc=1; }

    hdr "what svcctl sees"
    local c
    for c in "get svc" "get ep" "describe svc web" "stats"; do
        show "svcctl $c"
        # shellcheck disable=SC2086
        svcctl $c
        echo
    done
    show "curl http://127.0.0.1:$METRICS_PORT/metrics (inside $NODE_NS) | grep web"
    metrics | grep 'service="web"' | head -8

    if ((rc != 0)); then
        hdr "traffic through the service FAILED (svclbd log: $DAEMON_LOG)"
        tail -20 "$DAEMON_LOG"
        TOPO_KEEP=0
        exit 1
    fi
    if ((KEEP)); then
        hdr "demo left running"
        cat <<EOF
  svcctl:       $SVCLB_BIN/svcctl --socket $SOCK get svc
  from a pod:   nsenter --net=/run/netns/$(pod_ns client) curl http://$VIP/
  UDP:          echo hi | nsenter --net=/run/netns/$(pod_ns client) socat -T2 - UDP4:$VIP:5353
  from node:    sh -c 'echo \$\$ > $CG/cgroup.procs; exec nsenter --net=/run/netns/$NODE_NS curl http://$VIP/'
  metrics:      nsenter --net=/run/netns/$NODE_NS curl http://127.0.0.1:$METRICS_PORT/metrics
  daemon log:   $DAEMON_LOG
  remove it:    $REPO/scripts/demo.sh down
EOF
    else
        hdr "tearing down"
    fi
    exit 0
}

case $MODE in
    down) demo_down ;;
    up) demo_up ;;
esac
