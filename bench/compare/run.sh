#!/usr/bin/env bash
# Side-by-side node dataplanes: client ns -> node ns -> backend ns, one
# topology per dataplane (all built up front, so rounds interleave them
# without reloading rules):
#   gen      generator alone: XDP_DROP on the node's veth (the sender's ceiling)
#   routing  plain kernel routing (GRO on the node's veth: veth NAPI receive)
#   xdppass  XDP_PASS on the node's veth + routing (same queue count)
#   svclb    svclbd: tc program on the node's veths, services via svcctl apply
#   iptables kube-proxy's iptables layout (iptables-legacy-restore)
#   nftables kube-proxy's nftables layout (nft -f, 1000 services/transaction)
# For each N (services x 10 endpoints): UDP 64 B established-flow and
# new-flow-per-packet forwarded pps (svclb-trafficgen in the client ns, 2
# threads; sink = tc drop on the backend veth, counted there), TCP conn/s
# (svclb-tcpbench, 2 clients x 64 in flight, accept-and-close server),
# first-packet latency (connect() at 1 in flight), load time, and for svclb
# the apply -> map latency of one endpoint change.
#
#   bench/compare/run.sh [--quick] [--build DIR] [--out FILE.json] [--reps N]
# Everything lives in namespaces this script creates; all is removed on
# exit, even on failure. Every load is bounded in time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
QUICK=0
REPS=""
OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --build) BUILD=$2; shift ;;
        --out) OUT=$2; shift ;;
        --reps) REPS=$2; shift ;;
        *) echo "usage: $0 [--quick] [--build DIR] [--out FILE.json] [--reps N]" >&2; exit 2 ;;
    esac
    shift
done
BIN=$BUILD/bin
if ((QUICK)); then
    SIZES=(10 1000); REPS=${REPS:-3}; DUR=2; TCPDUR=2
else
    SIZES=(10 1000 10000); REPS=${REPS:-5}; DUR=3; TCPDUR=3
fi
CONFIGS=(gen routing xdppass svclb iptables nftables)
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
command -v iptables-legacy-restore >/dev/null || { echo "compare: needs iptables-legacy-restore" >&2; exit 1; }
PY=$(command -v /usr/bin/python3 || command -v python3)

P=svb$$                       # prefix of everything we create
TMP=$(mktemp -d "/tmp/svclb-compare.XXXXXX")
BPFDIR=/sys/fs/bpf/svclb-$P
PIDS=()
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    if [ -x "$BIN/svclbd" ] && [ -e "/run/netns/$P-svclb-n" ]; then
        timeout 30 nsenter --net="/run/netns/$P-svclb-n" "$BIN/svclbd" --uninstall \
            --bpffs "$BPFDIR/svclbd" --state-dir "$TMP/svclb-state" --socket "$TMP/svclb.sock" \
            --cgroup none >/dev/null 2>&1
    fi
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-"); do ip netns del "$ns"; done
    rm -rf "$BPFDIR"
    rm -rf "$TMP"
}
trap cleanup EXIT
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

# Where a config's traffic goes: the tested Service's VIP, or for the
# floors (no service dataplane) the first endpoint directly.
dst_of() { case $1 in routing|xdppass|gen) echo "10.251.0.11 5353 8080" ;; *) echo "$LAST_VIP 53 80" ;; esac; }
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

tcp_run() {  # tcp_run CFG INFLIGHT CLIENTS DURATION -> JSON
    local c=$1 k=$2 nc=$3 d=$4 i pids=() outs=() vip uport tport
    read -r vip uport tport < <(dst_of "$c")
    for ((i = 0; i < nc; i++)); do
        in_ns "$c-c" timeout $((d + 20)) "$BIN/svclb-tcpbench" client --addr "$vip" --port "$tport" \
            --inflight "$k" --duration "$d" >"$TMP/tcp.$i" 2>/dev/null &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    for ((i = 0; i < nc; i++)); do outs+=("$(cat "$TMP/tcp.$i")"); done
    "$PY" -c 'import json,sys; r=[json.loads(x) for x in sys.argv[1:] if x.strip()];
print(json.dumps({"cps": sum(x["cps"] for x in r), "connect_us_p50": max([x["connect_us_p50"] for x in r] or [0]),
"connect_us_p99": max([x["connect_us_p99"] for x in r] or [0]), "errors": sum(x["errors"] for x in r)}))' "${outs[@]}"
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.4f", b - a }'; }
svcctl() { timeout 300 "$BIN/svcctl" --socket "$TMP/svclb.sock" "$@"; }

# ---- build every topology once -------------------------------------------
log "building topologies (prefix $P)"
mkdir -p "$BPFDIR/sink"
bpftool prog loadall "$REFOBJ" "$BPFDIR/sink" >/dev/null
for c in "${CONFIGS[@]}"; do topo "$c"; done
if [ "$GEN_MODE" = live ]; then
    in_ns gen-n ethtool -K n0 gro off >/dev/null
    xdp_attach gen ref_xdp_drop
else
    in_ns gen-n tc qdisc add dev n0 clsact
    in_ns gen-n tc filter add dev n0 ingress prio 1 bpf direct-action object-pinned "$BPFDIR/sink/ref_tc_sink"
fi
xdp_attach xdppass ref_xdp_pass
mkdir -p "$TMP/svclb-state" "$BPFDIR"
# Conntrack capacity: the same number of flows as netfilter's table in this
# run (nf_conntrack_max; svclb keeps 2 entries per flow in each of its maps).
NF_CT_MAX=$(sysctl -n net.netfilter.nf_conntrack_max 2>/dev/null || echo 262144)
SVCLB_CT=$((NF_CT_MAX * 2))
bg_ns svclb-n "$BIN/svclbd" --bpffs "$BPFDIR/svclbd" --iface n0 --iface nb \
    --state-dir "$TMP/svclb-state" --socket "$TMP/svclb.sock" --metrics-addr 127.0.0.1:9810 \
    --service-cidr 10.96.0.0/12 --cgroup none --max-services 1048576 --max-backends 524288 \
    --max-conntrack "$SVCLB_CT" >"$TMP/svclbd.log" 2>&1
for i in $(seq 50); do svcctl status >/dev/null 2>&1 && break; sleep 0.2; done
svcctl status >/dev/null 2>&1 || { tail -20 "$TMP/svclbd.log" >&2; exit 1; }
in_ns iptables-n true

RESULT=${OUT:+$OUT.jsonl}
RESULT=${RESULT:-$TMP/result.jsonl}
: >"$RESULT"
emit() { echo "$1" >>"$RESULT"; }

prev_n=0
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
            svcctl delete -f "$LOADED" >/dev/null || { log "svcctl delete failed"; tail "$TMP/svclbd.log" >&2; exit 1; }
        fi
        t0=$(date +%s.%N)
        svcctl apply -f "$TMP/gen-$N/svc.yaml" >/dev/null || { log "svcctl apply failed"; tail "$TMP/svclbd.log" >&2; exit 1; }
        t_svclb=$(elapsed "$t0")
        LOADED=$TMP/gen-$N/svc.yaml
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
                -- "$BIN/svcctl" --socket "$TMP/svclb.sock" apply -f "$yaml" || echo '{}')
            emit "{\"kind\":\"ep_change\",\"n\":$N,\"rep\":$r,\"step\":\"$step\",\"r\":$m}"
        done
    done

    for ((r = 0; r < REPS; r++)); do
        log "N=$N round $((r + 1))/$REPS"
        for c in "${CONFIGS[@]}"; do
            u1=$(udp_run "$c" 0); un=$(udp_run "$c" 1)
            emit "{\"kind\":\"udp\",\"n\":$N,\"rep\":$r,\"cfg\":\"$c\",\"established\":$u1,\"new_flow\":$un}"
            [ "$c" = gen ] && continue
            t=$(tcp_run "$c" 64 2 "$TCPDUR"); l=$(tcp_run "$c" 1 1 1)
            emit "{\"kind\":\"tcp\",\"n\":$N,\"rep\":$r,\"cfg\":\"$c\",\"rate\":$t,\"latency\":$l}"
        done
    done
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
