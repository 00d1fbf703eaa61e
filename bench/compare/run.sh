#!/usr/bin/env bash
# Side-by-side node dataplanes: client ns -> node ns -> backend ns, one
# topology per dataplane (all built up front, so rounds interleave them
# without reloading rules):
#   gen       generator alone: XDP_DROP on the node's veth (the sender's ceiling)
#   routing   plain kernel routing (GRO on the node's veth: veth NAPI receive)
#   xdppass   XDP_PASS on the node's veth + routing (same queue count)
#   svclb     svclbd: tc program on the node's veths, services via svcctl apply
#   kp-nft    the real kube-proxy, --proxy-mode nftables  } fed by one real
#   kp-ipt    the real kube-proxy, --proxy-mode iptables  } kube-apiserver
#   svclb-k8s svclbd --kubeconfig (Kubernetes mode)       } (tests/testlib/k8s.sh)
#   iptables  (--handwritten) kube-proxy's iptables layout by hand (iptables-legacy-restore)
#   nftables  (--handwritten) kube-proxy's nftables layout by hand (nft -f)
# The real-peer configs (kp-*, svclb-k8s; bench/k8s/build-tools.sh builds
# kube-proxy and svclb-k8sload) each run in their own node namespace, with a
# Node object of their own (--hostname-override / --node-name), wired to the
# apiserver's namespace by a veth (k8s_connect_ns). The N Services (ports
# 80/TCP -> 8080 and 53/UDP -> 5353, no selector) and their EndpointSlices
# (the backend namespace's 10 addresses) are created through the API by
# svclb-k8sload, so the three see the same objects; before the next N they
# are deleted again (svclb-k8sload --delete) and every dataplane drained.
# The tested Service (the last) has endpoints of its own (10.251.0.11..20,
# the backend namespace's addresses), as where each Service selects its own
# pods; the other Services share 10.251.0.111..120 (load only, no traffic).
# Without Go the real peer cannot run: the hand-written configs run instead.
#
# For each N (services x 10 endpoints): UDP 64 B established-flow and
# new-flow-per-packet forwarded pps (svclb-trafficgen in the client ns, 2
# threads; sink = tc drop on the backend veth, counted there), TCP conn/s
# (svclb-tcpbench, 2 clients x 64 in flight, accept-and-close server),
# first-packet latency (connect() at 1 in flight); for svclb and svclb-k8s
# the same TCP rows again with the client processes in svclbd's --cgroup,
# from the client namespace's second address 10.250.0.3 (another pod: the
# tc-path rows' CT entries name 10.250.0.2's ports)
# ("socket path": balanced at connect() once svclbd balances every process
# of its cgroup whatever its netns; which path was taken is read from the
# CT maps: socket-LB flows make no entry). Control path: load
# time (svcctl apply / by hand), for the real peer the time from the first
# create to every dataplane complete, and one endpoint change (kubectl patch
# of the tested Service's slice) to svclbd's maps (svclb-mappoll) and to the
# end of each kube-proxy's sync that carried it (its metrics).
#
#   bench/compare/run.sh [--quick] [--build DIR] [--out FILE.json] [--reps N]
#                        [--handwritten] [--no-real-peer] [--no-kp-ipt]
# (--no-kp-ipt: without kube-proxy's iptables mode, whose syncs at 10,000
# Services take many minutes here.)
# Everything lives in namespaces this script creates; all is removed on
# exit, even on failure. Every load is bounded in time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
QUICK=0
REPS=""
OUT=""
HANDWRITTEN=0
REAL_PEER=1
KP_CONFIGS=(kp-nft kp-ipt)
SIZES_ARG=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --build) BUILD=$2; shift ;;
        --out) OUT=$2; shift ;;
        --reps) REPS=$2; shift ;;
        --sizes) SIZES_ARG=$2; shift ;;
        --handwritten) HANDWRITTEN=1 ;;
        --no-real-peer) REAL_PEER=0 ;;
        --no-kp-ipt) KP_CONFIGS=(kp-nft) ;;
        *) echo "usage: $0 [--quick] [--build DIR] [--out FILE.json] [--reps N] [--sizes N,N...] [--handwritten] [--no-real-peer] [--no-kp-ipt]" >&2
           exit 2 ;;
    esac
    shift
done
BIN=$BUILD/bin
if ((QUICK)); then
    SIZES=(10 1000); REPS=${REPS:-3}; DUR=2; TCPDUR=2
else
    SIZES=(10 1000 10000); REPS=${REPS:-5}; DUR=3; TCPDUR=3
fi
[ -z "$SIZES_ARG" ] || IFS=, read -r -a SIZES <<<"$SIZES_ARG"
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 20000)) || { echo "compare: --sizes takes numbers 1..20000" >&2; exit 2; }
done
# Generator: live (default: svclb-trafficgen's XDP live frames, ~10 M
# frames/s here, so the node path is what limits the rate; the node's veth
# receives through NAPI, GRO on) or af-packet (the yardstick's method:
# sendmmsg on an AF_PACKET socket; the sender's own cost, ~1 us per frame,
# runs in the same softirq as the node path and compresses every ratio).
GEN_MODE=${GEN_MODE:-live}
ENDPOINTS=10

[ "$(id -u)" = 0 ] || { echo "compare: needs root" >&2; exit 77; }
for t in svclbd svcctl svclb-trafficgen svclb-tcpbench svclb-mappoll; do
    [ -x "$BIN/$t" ] || { echo "compare: $BIN/$t missing (build first)" >&2; exit 1; }
done
REFOBJ=$BUILD/bench/bench_ref.bpf.o
[ -f "$REFOBJ" ] || { echo "compare: $REFOBJ missing" >&2; exit 1; }
command -v ethtool >/dev/null || { echo "compare: needs ethtool (GRO on veth)" >&2; exit 1; }
PY=$(command -v /usr/bin/python3 || command -v python3)

# The real peer: the control plane's and kube-proxy's binaries (Go), or the
# hand-written rulesets instead, said loudly.
if ((REAL_PEER)); then
    source "$REPO/tests/testlib/k8s.sh"
    source "$REPO/bench/k8s/kubeproxy.sh"
    rc=0
    k8s_require_tools || rc=$?
    if ((rc == 0)); then
        BENCH_BIN=$(bash "$REPO/bench/k8s/build-tools.sh") || rc=$?
    fi
    if ((rc != 0)); then
        echo "compare: the real kube-proxy cannot run here (the Kubernetes tools did not build: rc $rc;" \
             "77 = no Go toolchain): the hand-written iptables/nftables rulesets stand in for it" >&2
        REAL_PEER=0 HANDWRITTEN=1
    fi
    for t in jq curl; do command -v $t >/dev/null || { echo "compare: the real peer needs $t" >&2; exit 1; }; done
fi
if ((HANDWRITTEN)); then
    command -v iptables-legacy-restore >/dev/null || { echo "compare: needs iptables-legacy-restore" >&2; exit 1; }
fi
CONFIGS=(gen routing xdppass svclb)
((REAL_PEER)) && CONFIGS+=("${KP_CONFIGS[@]}" svclb-k8s)
((HANDWRITTEN)) && CONFIGS+=(iptables nftables)
# The dataplanes whose TCP rows run again inside svclbd's cgroup.
SOCK_CONFIGS=(svclb)
((REAL_PEER)) && SOCK_CONFIGS+=(svclb-k8s)

P=svb$$                       # prefix of everything we create
TMP=$(mktemp -d "/tmp/svclb-compare.XXXXXX")
BPFDIR=/sys/fs/bpf/svclb-$P
CG2_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG2_ROOT" ] || { echo "compare: no cgroup2 mount" >&2; exit 1; }
# svclbd's --cgroup per svclb config (the socket-path rows run their
# clients in it); nothing else is in them.
declare -A CGDIR=([svclb]=$CG2_ROOT/svclb-$P-svclb [svclb-k8s]=$CG2_ROOT/svclb-$P-svclbk8s)
declare -A SOCKF=([svclb]=$TMP/svclb.sock [svclb-k8s]=$TMP/svclbk8s.sock)
declare -A PINS=([svclb]=$BPFDIR/svclbd [svclb-k8s]=$BPFDIR/svclbk8s)
PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    local c
    for c in svclb svclb-k8s; do
        if [ -x "$BIN/svclbd" ] && [ -e "/run/netns/$P-$c-n" ]; then
            timeout 30 nsenter --net="/run/netns/$P-$c-n" "$BIN/svclbd" --uninstall \
                --bpffs "${PINS[$c]}" --state-dir "$TMP/$c-state" --socket "${SOCKF[$c]}" \
                --cgroup "${CGDIR[$c]}" >/dev/null 2>&1
        fi
    done
    # (The control plane's namespace is k8s_cleanup's.)
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" | grep -v "^$P-cp\$"); do
        # Anything still running in our namespaces was started by us.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns"
    done
    for c in svclb svclb-k8s; do
        [ -d "${CGDIR[$c]}" ] || continue
        for pid in $(cat "${CGDIR[$c]}/cgroup.procs" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "${CGDIR[$c]}" 2>/dev/null && break; sleep 0.2; done
    done
    rm -rf "$BPFDIR"
    rm -rf "$TMP"
}
if ((REAL_PEER)); then
    # Ours first (kube-proxies, svclbd, node namespaces), then the control plane.
    k8s_init "$P"
    trap 'set +e; cleanup; k8s_cleanup' EXIT
else
    trap cleanup EXIT
fi
trap 'exit 130' INT TERM

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$P-$ns" "$@"; }
# bg_ns NS CMD...: CMD in the background, its PID in PIDS. nsenter execs CMD,
# so the PID is CMD's own (`in_ns ... &` would background a subshell, and
# cleanup's kill would miss the command).
bg_ns() { local ns=$1; shift; nsenter --net="/run/netns/$P-$ns" "$@" & PIDS+=($!); }

# topo CFG: CFG-c (client 10.250.0.2) <-> CFG-n (node) <-> CFG-b (backends
# 10.251.0.11..20). veths with 2 queues each (one per generator thread).
topo() {
    local c=$1 cn="$1-c" nn="$1-n" bn="$1-b"
    for ns in "$cn" "$nn" "$bn"; do ip netns add "$P-$ns"; in_ns "$ns" ip link set lo up; done
    in_ns "$nn" ip link add n0 numtxqueues 2 numrxqueues 2 type veth peer name c0 numtxqueues 2 numrxqueues 2 netns "$P-$cn"
    in_ns "$nn" ip link add nb numtxqueues 2 numrxqueues 2 type veth peer name b0 numtxqueues 2 numrxqueues 2 netns "$P-$bn"
    in_ns "$nn" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    in_ns "$nn" ip addr add 10.250.0.1/24 dev n0
    in_ns "$nn" ip addr add 10.251.0.1/24 dev nb
    in_ns "$nn" ip link set n0 up
    in_ns "$nn" ip link set nb up
    in_ns "$cn" ip addr add 10.250.0.2/24 dev c0
    # The socket path's clients (tcp_run with a cgroup): another pod of the
    # client node, so the tc-path rows' CT entries (10.250.0.2's ports) are
    # not theirs, as pods balanced at the socket make none.
    in_ns "$cn" ip addr add 10.250.0.3/24 dev c0
    in_ns "$cn" ip link set c0 up
    in_ns "$cn" ip route add default via 10.250.0.1
    local i
    for ((i = 0; i < ENDPOINTS; i++)); do in_ns "$bn" ip addr add "10.251.0.$((11 + i))/24" dev b0; done
    in_ns "$bn" ip link set b0 up
    in_ns "$bn" ip route add default via 10.251.0.1
    # Static neighbours: no ARP in the measured path.
    local n0mac c0mac nbmac b0mac
    n0mac=$(in_ns "$nn" ip -j link show n0 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    c0mac=$(in_ns "$cn" ip -j link show c0 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    nbmac=$(in_ns "$nn" ip -j link show nb | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    b0mac=$(in_ns "$bn" ip -j link show b0 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
    in_ns "$cn" ip neigh replace 10.250.0.1 lladdr "$n0mac" dev c0
    in_ns "$nn" ip neigh replace 10.250.0.2 lladdr "$c0mac" dev n0
    in_ns "$nn" ip neigh replace 10.250.0.3 lladdr "$c0mac" dev n0
    for ((i = 0; i < ENDPOINTS; i++)); do
        in_ns "$nn" ip neigh replace "10.251.0.$((11 + i))" lladdr "$b0mac" dev nb
    done
    in_ns "$bn" ip neigh replace 10.251.0.1 lladdr "$nbmac" dev b0
    echo "$n0mac" >"$TMP/$c.n0mac"
    # Receiving redirected XDP frames needs veth NAPI: GRO on (or an XDP prog).
    if [ "$GEN_MODE" = live ]; then in_ns "$nn" ethtool -K n0 gro on >/dev/null; fi
    # Sink: UDP is dropped at the backend veth's tc ingress (counted in rx;
    # no act_gact module here, so a tiny BPF program does it).
    in_ns "$bn" tc qdisc add dev b0 clsact
    in_ns "$bn" tc filter add dev b0 ingress prio 1 bpf direct-action object-pinned "$BPFDIR/sink/ref_tc_sink"
    # Backend server for TCP, bounded in time.
    bg_ns "$bn" timeout 3600 "$BIN/svclb-tcpbench" server --port 8080 --duration 3600 2>/dev/null
}

xdp_attach() {  # xdp_attach CFG PROGNAME
    mkdir -p "$BPFDIR/$1"
    bpftool prog loadall "$REFOBJ" "$BPFDIR/$1" >/dev/null
    in_ns "$1-n" bpftool net attach xdp pinned "$BPFDIR/$1/$2" dev n0
}

# Where a config's traffic goes: the tested Service's VIP (the real peer's
# is allocated by the apiserver), or for the floors (no service dataplane)
# the first endpoint directly.
dst_of() {
    case $1 in
        routing|xdppass|gen) echo "10.251.0.11 5353 8080" ;;
        kp-nft|kp-ipt|svclb-k8s) echo "$K8S_VIP 53 80" ;;
        *) echo "$LAST_VIP 53 80" ;;
    esac
}
rx_count() { in_ns "$1-b" ip -s -j link show b0 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# udp CFG newflow(0|1) -> JSON {sent_pps, fwd_pps}
udp_run() {
    local c=$1 nf=$2 mac before after gen
    mac=$(cat "$TMP/$c.n0mac")
    local vip uport tport
    read -r vip uport tport < <(dst_of "$c")
    before=$(rx_count "$c")
    local flag=(--flows 1)
    [ "$GEN_MODE" = live ] || flag+=(--af-packet)
    ((nf)) && flag=(--new-flow "${flag[@]:2}")
    gen=$(in_ns "$c-c" timeout $((DUR + 20)) "$BIN/svclb-trafficgen" --dev c0 --src 10.250.0.2 \
        --dst "$vip" --dport "$uport" --dst-mac "$mac" --threads 2 --duration "$DUR" --count 200000000 \
        --size 64 "${flag[@]}" --json)
    sleep 0.2
    after=$(rx_count "$c")
    "$PY" -c 'import json,sys; g=json.loads(sys.argv[1]); d=int(sys.argv[3])-int(sys.argv[2]);
print(json.dumps({"sent_pps": g["pps"], "fwd_pps": d / g["seconds"] if sys.argv[4] != "gen" else g["pps"]}))' \
        "$gen" "$before" "$after" "$c"
}

# tcp_run CFG INFLIGHT CLIENTS DURATION [CGROUP] -> JSON. With CGROUP the
# clients run in that cgroup (svclbd's --cgroup: the socket path), still in
# the client namespace, from its second address (another pod's).
tcp_run() {
    local c=$1 k=$2 nc=$3 d=$4 cg=${5:-} i pids=() outs=() vip uport tport
    read -r vip uport tport < <(dst_of "$c")
    for ((i = 0; i < nc; i++)); do
        if [ -n "$cg" ]; then
            timeout $((d + 20)) sh -c 'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec nsenter --net="/run/netns/$0" "$@"' \
                "$P-$c-c" "$cg" "$BIN/svclb-tcpbench" client --addr "$vip" --src 10.250.0.3 --port "$tport" \
                --inflight "$k" --duration "$d" >"$TMP/tcp.$i" 2>/dev/null &
        else
            in_ns "$c-c" timeout $((d + 20)) "$BIN/svclb-tcpbench" client --addr "$vip" --port "$tport" \
                --inflight "$k" --duration "$d" >"$TMP/tcp.$i" 2>/dev/null &
        fi
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    for ((i = 0; i < nc; i++)); do outs+=("$(cat "$TMP/tcp.$i")"); done
    "$PY" -c 'import json,sys; r=[json.loads(x) for x in sys.argv[1:] if x.strip()];
print(json.dumps({"cps": sum(x["cps"] for x in r), "connections": sum(x["connections"] for x in r), "connect_us_p50": max([x["connect_us_p50"] for x in r] or [0]),
"connect_us_p99": max([x["connect_us_p99"] for x in r] or [0]), "errors": sum(x["errors"] for x in r)}))' "${outs[@]}"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.4f", b - a }'; }
svcctl() { timeout 300 "$BIN/svcctl" --socket "$TMP/svclb.sock" "$@"; }
svcctl_k8s() { timeout 300 "$BIN/svcctl" --socket "$TMP/svclbk8s.sock" "$@"; }
now_ns() { date +%s%N; }

# svc_counters CFG -> "flows packets" of the tested Service's TCP port.
svc_counters() {
    local c=$1 vip uport tport
    read -r vip uport tport < <(dst_of "$c")
    # Flows of the tested port, and the entries in the two CT maps (the tc
    # path makes two per flow, the socket path none; since the socket
    # path's packets are counted too, by cgroup_skb, packets tell nothing).
    { timeout 300 "$BIN/svcctl" --socket "${SOCKF[$c]}" stats -o json
      echo; timeout 300 "$BIN/svcctl" --socket "${SOCKF[$c]}" status -o json; } |
        "$PY" -c 'import json,sys; t=sys.stdin.read(); dec=json.JSONDecoder(); d,i=dec.raw_decode(t); st,_=dec.raw_decode(t[i:].lstrip()); v=sys.argv[1]
s=[x for x in d.get("services", []) if x.get("vip") == v and str(x.get("servicePort")) == sys.argv[2] and str(x.get("protocol", "TCP")).upper() == "TCP"]
ct=sum(int(m.get("entries", 0)) for m in st.get("maps", []) if m.get("name") in ("ct_v2", "ct_est_v2"))
print(sum(int(x.get("flows", 0)) for x in s), ct)' "$vip" "$tport"
}

# svclbd's --cgroup dir for a config (created here; removed by cleanup).
# No cluster DNS: its default address 10.96.0.10 is one of the tested VIPs
# (the 10th Service's), and kube-proxy has none either.
start_svclbd() {  # start_svclbd CFG EXTRA-FLAGS...
    local c=$1; shift
    mkdir -p "$TMP/$c-state" "${CGDIR[$c]}"
    bg_ns "$c-n" "$BIN/svclbd" --bpffs "${PINS[$c]}" --iface n0 --iface nb \
        --state-dir "$TMP/$c-state" --socket "${SOCKF[$c]}" --metrics-addr 127.0.0.1:9810 \
        --service-cidr 10.96.0.0/12 --cgroup "${CGDIR[$c]}" --max-services 1048576 --max-backends 524288 \
        --max-conntrack "$SVCLB_CT" --cluster-dns none "$@" >"$TMP/$c.log" 2>&1
    local i
    for i in $(seq 100); do timeout 10 "$BIN/svcctl" --socket "${SOCKF[$c]}" status >/dev/null 2>&1 && return 0; sleep 0.2; done
    tail -20 "$TMP/$c.log" >&2
    return 1
}

# ---- the real peer: counts and waits ----------------------------------------
# svclb-k8s: svc_v1 entries and whether it synced.
k8s_counts() {
    svcctl_k8s status -o json 2>/dev/null |
        jq -r '[(.maps[] | select(.name == "svc_v1") | .entries), .kubernetes.synced, (.sync.lastEndUnixNs // 0)] | @tsv'
}
# svclb_k8s_wait WANT_SVC_V1 SECONDS: until svclbd (k8s) holds exactly that
# many svc_v1 entries and is synced; prints the unix ns its last map sync
# ended (svclbd's own timestamp, as kube-proxy's are read from its metrics:
# a status call walks the full conntrack maps, hundreds of ms after a
# traffic round, so the poll's own time would be late by that much).
svclb_k8s_wait() {
    local want=$1 end c
    end=$(($(now_ns) + $2 * 1000000000))
    while (($(now_ns) < end)); do
        c=$(k8s_counts)
        if [[ ${c%$'\t'*} == "$want"$'\t'true ]]; then
            if [[ ${c##*$'\t'} =~ ^[1-9][0-9]*$ ]]; then echo "${c##*$'\t'}"; else now_ns; fi
            return 0
        fi
        sleep 0.05
    done
    log "svclbd (k8s) not complete within $2 s: svc_v1/synced = ${c:-?} (want $want)"
    return 1
}
# kp_wait_rules CFG MODE TS0 NSVC NEP: until a sync of that kube-proxy ending
# after TS0 left nothing pending AND its rules hold NSVC service chains and
# NEP endpoints (a sync that ran while the last events were in flight does
# not count); prints that sync's end (unix seconds). Bounded: 20 syncs, 1200 s.
kp_wait_rules() {
    local c=$1 mode=$2 ts0=$3 nsvc=$4 nep=$5 ts got k
    for ((k = 0; k < 20; k++)); do
        ts=$(kp_wait_synced "$P-$c-n" "${KP_PID[$c]}" "$ts0" 1200) || { log "$c: no sync (see $TMP/$c.log)"; return 1; }
        got=$(kp_rule_counts "$P-$c-n" "$mode" "$TMP/$c.rules") || return 1
        if [[ $got == "$nsvc $nep" ]]; then echo "$ts"; return 0; fi
        log "$c: sync at $ts holds $got (want $nsvc $nep); waiting for the next"
        ts0=$ts
    done
    return 1
}
kp_mode() { case $1 in kp-nft) echo nftables ;; kp-ipt) echo iptables ;; esac; }

# ---- build every topology once -------------------------------------------
log "building topologies (prefix $P)"
mkdir -p "$BPFDIR/sink"
bpftool prog loadall "$REFOBJ" "$BPFDIR/sink" >/dev/null
for c in "${CONFIGS[@]}"; do topo "$c"; done
# A kernel that refuses XDP live frames (svclb-trafficgen exits 77; seen on
# 2026-12-07's machines, EPERM): the AF_PACKET generator instead, said here
# and recorded in the result's gen_mode.
if [ "$GEN_MODE" = live ]; then
    probe_rc=0
    in_ns gen-c timeout 20 "$BIN/svclb-trafficgen" --dev c0 --src 10.250.0.2 --dst 10.250.0.1 \
        --dport 9 --dst-mac "$(cat "$TMP/gen.n0mac")" --count 1 --duration 5 >/dev/null 2>"$TMP/probe.err" ||
        probe_rc=$?
    if [ "$probe_rc" = 77 ]; then
        log "XDP live frames refused by this kernel ($(tr -d '\n' <"$TMP/probe.err")): generator AF_PACKET"
        GEN_MODE=af-packet
        # As topo leaves n0 in af-packet mode: GRO off (veth's default).
        for c in "${CONFIGS[@]}"; do in_ns "$c-n" ethtool -K n0 gro off >/dev/null; done
    fi
fi
if [ "$GEN_MODE" = live ]; then
    in_ns gen-n ethtool -K n0 gro off >/dev/null
    xdp_attach gen ref_xdp_drop
else
    in_ns gen-n tc qdisc add dev n0 clsact
    in_ns gen-n tc filter add dev n0 ingress prio 1 bpf direct-action object-pinned "$BPFDIR/sink/ref_tc_sink"
fi
xdp_attach xdppass ref_xdp_pass
mkdir -p "$BPFDIR"
# Conntrack capacity: at least as many flows as netfilter's table in this
# run (nf_conntrack_max; svclb keeps 2 entries per source-NATed or
# node-facing flow, 1 per ClusterIP flow of a designated frontend).
NF_CT_MAX=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo 262144)
SVCLB_CT=$((NF_CT_MAX * 2))
start_svclbd svclb || { log "svclbd did not start"; exit 1; }

declare -A KP_PID=()
if ((REAL_PEER)); then
    log "real peer: control plane (etcd, kube-apiserver, kube-controller-manager)"
    k8s_up || { k8s_dump_logs; log "the control plane did not come up"; exit 1; }
    k8s_kubectl apply -f "$REPO/deploy/kubernetes/rbac.yaml" >/dev/null
    k8s_sa_kubeconfig kube-system svclb "$TMP/svclb.kubeconfig" 4h
    i=0
    for c in "${KP_CONFIGS[@]}" svclb-k8s; do
        i=$((i + 1))
        k8s_connect_ns "$P-$c-n" "$i"
        kp_node "$c" "10.255.$i.2"
    done
    # The client (10.250.0.0/16) is a pod of the cluster CIDR: no masquerade.
    for c in "${KP_CONFIGS[@]}"; do
        kp_start "$P-$c-n" "$c" "$(kp_mode "$c")" 10.250.0.0/16 "$TMP/$c.log"
        KP_PID[$c]=$KP_STARTED_PID
        PIDS+=("$KP_STARTED_PID")
    done
    start_svclbd svclb-k8s --kubeconfig "$TMP/svclb.kubeconfig" --node-name svclb-k8s ||
        { log "svclbd (k8s) did not start"; exit 1; }
    for c in "${KP_CONFIGS[@]}"; do
        kp_wait_synced "$P-$c-n" "${KP_PID[$c]}" 0 120 >/dev/null ||
            { tail -20 "$TMP/$c.log" >&2; log "$c did not sync on the empty cluster"; exit 1; }
    done
    for _ in $(seq 600); do [[ $(k8s_counts | cut -f2) == true ]] && break; sleep 0.1; done
    K8S_BASE=$(k8s_counts | cut -f1)
    [[ $(k8s_counts | cut -f2) == true && $K8S_BASE =~ ^[0-9]+$ ]] || { log "svclbd (k8s) did not sync"; exit 1; }
    log "real peer up: kube-proxy nftables + iptables, svclbd --kubeconfig (svc_v1 base $K8S_BASE)"
fi

RESULT=${OUT:+$OUT.jsonl}
RESULT=${RESULT:-$TMP/result.jsonl}
: >"$RESULT"
emit() { echo "$1" >>"$RESULT"; }

# ---- the real peer: N Services through the API ------------------------------
K8S_NSNAME=bench
PREV_N=0
kload() { timeout 1800 nsenter --net="/run/netns/$K8S_NS" "$BENCH_BIN/svclb-k8sload" \
    --kubeconfig "$K8S_ADMIN_KUBECONFIG" --namespace "$K8S_NSNAME" --endpoints "$ENDPOINTS" \
    --endpoint-base 10.251.0.111 --last-endpoint-base 10.251.0.11 --udp-port 53 --udp-target-port 5353 --timeout 29m "$@"; }
kubectl_cp() { timeout 60 nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" "$@"; }

# real_peer_load N: (the previous N's objects deleted and every dataplane
# drained) create N Services + slices; time from the first create to each
# dataplane complete; then REPS x (add, remove) of one endpoint of the
# tested Service (the last one), timed per dataplane.
real_peer_load() {
    local n=$1 c ts t0 t1 out ms ts0
    declare -A kts0=()
    if ((PREV_N > 0)); then
        for c in "${KP_CONFIGS[@]}"; do kts0[$c]=$(kp_sync_ts "$P-$c-n"); done
        out=$(kload --services "$PREV_N" --delete) || { log "deleting the previous objects failed: $out"; exit 1; }
        log "deleted $PREV_N Services: $out"
        svclb_k8s_wait "$K8S_BASE" 600 >/dev/null || exit 1
        for c in "${KP_CONFIGS[@]}"; do
            kp_wait_rules "$c" "$(kp_mode "$c")" "${kts0[$c]:-0}" 0 0 >/dev/null || { log "$c did not drain"; exit 1; }
        done
    fi
    for c in "${KP_CONFIGS[@]}"; do kts0[$c]=$(kp_sync_ts "$P-$c-n"); done
    log "N=$n: creating $n Services + EndpointSlices through the apiserver (svclb-k8sload, 16 workers)"
    t0=$(now_ns)
    out=$(kload --services "$n" --concurrency 16) || { log "svclb-k8sload failed: $out"; exit 1; }
    t1=$(now_ns)
    log "created: $out"
    # svclbd: per Service 2 ports, each a master and 10 slots in svc_v1.
    ts=$(svclb_k8s_wait $((K8S_BASE + n * 2 * (ENDPOINTS + 1))) 1200) || exit 1
    emit "{\"kind\":\"k8s_sync\",\"n\":$n,\"cfg\":\"svclb-k8s\",\"create\":$out,\"first_create_to_complete_ms\":$(((ts - t0) / 1000000)),\"last_create_to_complete_ms\":$(((ts - t1) / 1000000))}"
    log "N=$n svclb-k8s complete $(((ts - t0) / 1000000)) ms after the first create ($(((ts - t1) / 1000000)) ms after the last)"
    for c in "${KP_CONFIGS[@]}"; do
        ts=$(kp_wait_rules "$c" "$(kp_mode "$c")" "${kts0[$c]:-0}" $((2 * n)) $((2 * n * ENDPOINTS))) ||
            { tail -20 "$TMP/$c.log" >&2; log "$c did not program $n Services"; exit 1; }
        emit "{\"kind\":\"k8s_sync\",\"n\":$n,\"cfg\":\"$c\",\"create\":$out,\"first_create_to_complete_ms\":$(ms_from "$ts" "$t0"),\"last_create_to_complete_ms\":$(ms_from "$ts" "$t1")}"
        log "N=$n $c complete $(ms_from "$ts" "$t0") ms after the first create ($(ms_from "$ts" "$t1") ms after the last)"
    done
    K8S_VIP=$(kubectl_cp get svc -n "$K8S_NSNAME" "s$((n - 1))" -o jsonpath='{.spec.clusterIP}')
    [[ $K8S_VIP =~ ^10\. ]] || { log "no ClusterIP for s$((n - 1))"; exit 1; }
    log "N=$n: the tested Service s$((n - 1)) is $K8S_VIP"

    # One endpoint change, REPS x (add 10.251.0.99, remove it): kubectl ->
    # svclbd's maps (svclb-mappoll forks kubectl), and -> the end of each
    # kube-proxy's sync that carried it.
    local r step patch gone m
    for ((r = 0; r < REPS; r++)); do
        for step in add remove; do
            if [ $step = add ]; then
                patch='[{"op": "add", "path": "/endpoints/-", "value": {"addresses": ["10.251.0.99"], "conditions": {"ready": true}}}]'
                gone=()
            else
                patch="[{\"op\": \"test\", \"path\": \"/endpoints/$ENDPOINTS/addresses/0\", \"value\": \"10.251.0.99\"}, {\"op\": \"remove\", \"path\": \"/endpoints/$ENDPOINTS\"}]"
                gone=(--gone)
            fi
            for c in "${KP_CONFIGS[@]}"; do kts0[$c]=$(kp_sync_ts "$P-$c-n"); done
            t0=$(now_ns)
            m=$(timeout 60 "$BIN/svclb-mappoll" --bpffs "${PINS[svclb-k8s]}" --vip "$K8S_VIP" --vport 80 --proto tcp \
                --addr 10.251.0.99 --port 8080 "${gone[@]}" --timeout 30 -- \
                nsenter --net="/run/netns/$K8S_NS" "$KUBECTL" --kubeconfig "$K8S_ADMIN_KUBECONFIG" \
                patch endpointslice -n "$K8S_NSNAME" "s$((n - 1))-1" --type=json -p "$patch") ||
                { log "endpoint change ($step) did not reach svclbd's maps: $m"; exit 1; }
            emit "{\"kind\":\"k8s_change\",\"n\":$n,\"rep\":$r,\"step\":\"$step\",\"cfg\":\"svclb-k8s\",\"ms\":$(jq '.map_s * 1000' <<<"$m"),\"kubectl_ms\":$(jq '.command_s * 1000' <<<"$m")}"
            for c in "${KP_CONFIGS[@]}"; do
                ts=$(kp_wait_synced "$P-$c-n" "${KP_PID[$c]}" "${kts0[$c]:-0}" 60) || { log "$c: change not synced"; exit 1; }
                emit "{\"kind\":\"k8s_change\",\"n\":$n,\"rep\":$r,\"step\":\"$step\",\"cfg\":\"$c\",\"ms\":$(ms_from "$ts" "$t0")}"
            done
            sleep 1.2   # past kube-proxy's --min-sync-period (1 s): every change its own sync
        done
    done
    log "N=$n: $((2 * REPS)) endpoint changes timed"
}

for N in "${SIZES[@]}"; do
    log "N=$N services x $ENDPOINTS endpoints: generating"
    mkdir -p "$TMP/gen-$N"
    "$PY" "$HERE/gen.py" "$N" "$ENDPOINTS" "$TMP/gen-$N"
    LAST_VIP=$("$PY" -c "import ipaddress; print(ipaddress.ip_address('10.96.0.1') + $N - 1)")
    # Load times, REPS times each, always into an empty dataplane: svclb
    # first deletes what is loaded (svcctl delete -f, not timed), iptables
    # and nftables flush. The last rep's rules stay for the traffic rounds.
    for ((r = 0; r < REPS; r++)); do
        if [ -n "${LOADED:-}" ]; then
            svcctl delete -f "$LOADED" >/dev/null || { log "svcctl delete failed"; tail "$TMP/svclb.log" >&2; exit 1; }
        fi
        t0=$(date +%s.%N)
        svcctl apply -f "$TMP/gen-$N/svc.yaml" >/dev/null || { log "svcctl apply failed"; tail "$TMP/svclb.log" >&2; exit 1; }
        t_svclb=$(elapsed "$t0")
        LOADED=$TMP/gen-$N/svc.yaml
        if ((!HANDWRITTEN)); then
            log "N=$N load $((r + 1))/$REPS: svcctl apply ${t_svclb}s"
            emit "{\"kind\":\"load\",\"n\":$N,\"rep\":$r,\"svclb_s\":$t_svclb}"
            continue
        fi
        in_ns iptables-n iptables-legacy -t nat -F 2>/dev/null || true
        in_ns iptables-n iptables-legacy -t nat -X 2>/dev/null || true
        t0=$(date +%s.%N)
        in_ns iptables-n timeout 300 iptables-legacy-restore <"$TMP/gen-$N/ipt.rules"
        t_ipt=$(elapsed "$t0")
        in_ns nftables-n nft flush ruleset
        t0=$(date +%s.%N)
        nft_ok=1
        for f in $(ls "$TMP/gen-$N"/nft-*.nft | sort -V); do
            in_ns nftables-n timeout 300 nft -f "$f" || { nft_ok=0; break; }
        done
        t_nft=$(elapsed "$t0")
        log "N=$N load $((r + 1))/$REPS: svcctl apply ${t_svclb}s, iptables-restore ${t_ipt}s, nft -f ${t_nft}s"
        emit "{\"kind\":\"load\",\"n\":$N,\"rep\":$r,\"svclb_s\":$t_svclb,\"iptables_s\":$t_ipt,\"nftables_s\":$t_nft,\"nft_ok\":$nft_ok}"
    done

    # Endpoint change -> map latency (svclb): each rep adds an 11th endpoint
    # to the tested Service and removes it again (two samples), so the set
    # measured below is always the original 10 endpoints.
    for ((r = 0; r < REPS; r++)); do
        for step in add remove; do
            yaml=$TMP/ep-$r-$step.yaml
            if [ $step = add ]; then extra="  - ip: 10.251.0.99"; gone=""; else extra=""; gone=--gone; fi
            "$PY" - "$N" "$extra" >"$yaml" <<'PYEOF'
import sys
n = int(sys.argv[1]); extra = sys.argv[2]
i = n - 1
eps = "".join(f"  - ip: 10.251.0.{11 + k}\n" for k in range(10))
print(f"apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s{i}\n  namespace: bench\nsubsets:\n- addresses:\n{eps}{extra}\n"
      f"  ports:\n  - name: dns\n    port: 5353\n    protocol: UDP\n  - name: http\n    port: 8080\n    protocol: TCP")
PYEOF
            # svcctl apply of the one Endpoints object (the set stays as is).
            # map_s: from the fork of svcctl until the tested Service's
            # master counts a slot naming 10.251.0.99:5353 (or none does).
            m=$(timeout 60 "$BIN/svclb-mappoll" --bpffs "$BPFDIR/svclbd" --vip "$LAST_VIP" --vport 53 \
                --proto udp --addr 10.251.0.99 --port 5353 $gone --timeout 30 \
                -- "$BIN/svcctl" --socket "$TMP/svclb.sock" apply -f "$yaml") || true
            [ -n "$m" ] || m='{}'   # (it prints its JSON also when it times out)
            emit "{\"kind\":\"ep_change\",\"n\":$N,\"rep\":$r,\"step\":\"$step\",\"r\":$m}"
        done
    done

    ((REAL_PEER)) && real_peer_load "$N"

    for ((r = 0; r < REPS; r++)); do
        log "N=$N round $((r + 1))/$REPS"
        for c in "${CONFIGS[@]}"; do
            u1=$(udp_run "$c" 0); un=$(udp_run "$c" 1)
            emit "{\"kind\":\"udp\",\"n\":$N,\"rep\":$r,\"cfg\":\"$c\",\"established\":$u1,\"new_flow\":$un}"
            [ "$c" = gen ] && continue
            t=$(tcp_run "$c" 64 2 "$TCPDUR"); l=$(tcp_run "$c" 1 1 1)
            emit "{\"kind\":\"tcp\",\"n\":$N,\"rep\":$r,\"cfg\":\"$c\",\"rate\":$t,\"latency\":$l}"
        done
        # The socket path: the same clients inside svclbd's cgroup. Which
        # path they took: a flow balanced at connect() makes no CT entry,
        # one on the tc path makes two.
        for c in "${SOCK_CONFIGS[@]}"; do
            read -r f0 p0 < <(svc_counters "$c")
            t=$(tcp_run "$c" 64 2 "$TCPDUR" "${CGDIR[$c]}"); l=$(tcp_run "$c" 1 1 1 "${CGDIR[$c]}")
            read -r f1 p1 < <(svc_counters "$c")
            df=$((f1 - f0)) dct=$((p1 - p0))
            if ((df > 0 && dct * 2 < df)); then path=socket; else path=tc; fi
            log "N=$N $c in its cgroup: $(jq -r .cps <<<"$t") conn/s; counters +$df flows, CT entries +$dct: the $path path"
            emit "{\"kind\":\"tcp_sock\",\"n\":$N,\"rep\":$r,\"cfg\":\"$c\",\"rate\":$t,\"latency\":$l,\"flows\":$df,\"ct_entries\":$dct,\"path\":\"$path\"}"
        done
    done
    PREV_N=$N
done

"$PY" - "$RESULT" "$(uname -r)" "$REPS" "$QUICK" "$NF_CT_MAX" "$GEN_MODE" >"$TMP/compare.json" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(json.dumps({"kernel": sys.argv[2], "reps": int(sys.argv[3]), "quick": sys.argv[4] == "1",
                  "endpoints": 10, "ct_flows": int(sys.argv[5]), "gen_mode": sys.argv[6], "rows": rows},
                 indent=1))
PYEOF
if [ -n "$OUT" ]; then cp "$TMP/compare.json" "$OUT"; else cat "$TMP/compare.json"; fi
log "done"
