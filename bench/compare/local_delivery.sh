#!/usr/bin/env bash
# Local delivery of a NodePort flow (issue 3): when the backend is on THIS
# node, is XDP_PASS after the DNAT (svclb today: the stack routes the frame
# into the pod's veth) or an XDP redirect straight into the pod's host-side
# veth (FIB lookup in XDP; the cfg_local_redirect knob) faster?
#
# Topology: tests/testlib/multinode.sh (client -- bridge -- node1 with pods
# be1/be2), manifest tests/e2e/manifests/multinode-nodeport.yaml (NodePort
# 30053/UDP -> 5353 on node1's pods). The client sends 64-byte UDP frames to
# node1:30053 with svclb-trafficgen, bounded in count AND time; what the pods'
# eth0 receive (rx packets, read with `ip -j -s link` inside each pod
# namespace) per second of sending is the result. Sink: a BPF tc drop of UDP
# at each pod's eth0 ingress (the same in every mode; counted in rx first).
#
# Modes, interleaved (the order rotates every round):
#   pass         knob 0, no XDP program on the pods' eth0 (svclb today)
#   pass_podxdp  knob 0, XDP_PASS program on the pods' eth0 (isolates its cost)
#   redirect     knob 1, XDP_PASS program on the pods' eth0 (needed: a veth
#                only receives redirected frames when its side runs XDP)
# Traffic: "ct" (one fixed tuple: CT hit) and "new" (a new flow per packet;
# every run uses its own source /24 so no tuple repeats across runs).
#
#   bench/compare/local_delivery.sh [--build DIR] [--rounds N] [--count N]
#                                   [--duration S] [--threads N] [--out FILE.json]
# GEN_MODE=af-packet (default) | live (XDP live frames; see bench/README).
# Everything lives in namespaces this script creates (multinode.sh's prefix
# ld-<pid>) and is removed on exit, even on failure.
# Like the e2e tests: `set -u` only (multinode.sh uses `cmd && die` idioms
# and `ip ... | grep -q`); every step that matters checks itself.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$REPO/build}
ROUNDS=5
COUNT=3000000
DUR=3
THREADS=1
OUT=""
GEN_MODE=${GEN_MODE:-af-packet}
while [ $# -gt 0 ]; do
    case $1 in
        --build) BUILD=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --count) COUNT=$2; shift ;;
        --duration) DUR=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--build DIR] [--rounds N] [--count N] [--duration S] [--threads N] [--out FILE.json]" >&2
           exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "local_delivery: needs root" >&2; exit 77; }
SVCLB_BIN=$BUILD/bin
REFOBJ=$BUILD/bench/bench_ref.bpf.o
for t in svclbd svcctl svclb-trafficgen; do
    [ -x "$SVCLB_BIN/$t" ] || { echo "local_delivery: $SVCLB_BIN/$t missing (build first)" >&2; exit 1; }
done
[ -f "$REFOBJ" ] || { echo "local_delivery: $REFOBJ missing" >&2; exit 1; }
for t in bpftool jq ethtool; do
    command -v "$t" >/dev/null || { echo "local_delivery: needs $t" >&2; exit 1; }
done

# This measures svclb's XDP path itself: the lab tuned for XDP on veth, and
# svclbd told to use XDP on the veth NICs (auto would pick tc there).
export MN_TUNED=1 MN_EXTERNAL_DATAPATH=xdp
# shellcheck source=tests/testlib/multinode.sh
source "$REPO/tests/testlib/multinode.sh"
MANIFEST=$REPO/tests/e2e/manifests/multinode-nodeport.yaml
NODEPORT=30053

mn_init "ld-$$"
REFPIN=/sys/fs/bpf/svclb-$MN_PREFIX-ref   # our tc sink program (pinned)
ld_on_exit() {
    local rc=$?
    rm -rf "$REFPIN"
    (exit $rc)
    mn_on_exit
}
trap ld_on_exit EXIT

mn_up
mn_daemons_up || die "svclbd did not become ready on both nodes"
mn_apply "$MANIFEST" || die "apply $MANIFEST"

# ---- the knob: cfg_local_redirect, a load-time constant of node1's programs --
# svclbd does not expose it as a flag (benchmark only): it reads
# SVCLB_BENCH_LOCAL_REDIRECT=1 from its environment at start. Changing it
# restarts node1's svclbd (hitless: pinned maps and CT survive, the programs
# are replaced) and checks its log says so.
LD_KNOB=0
ld_knob() {  # 0|1
    [ "$1" = "$LD_KNOB" ] && return 0
    mn_daemon_stop node1
    : >"$(mn_log node1)"
    if [ "$1" = 1 ]; then SVCLB_BENCH_LOCAL_REDIRECT=1 mn_daemon_start node1; else mn_daemon_start node1; fi
    mn_daemon_wait_ready node1 || die "svclbd on node1 did not come back (knob $1)"
    if [ "$1" = 1 ]; then
        grep -q "SVCLB_BENCH_LOCAL_REDIRECT=1" "$(mn_log node1)" || die "node1's svclbd did not take the knob"
    elif grep -q "SVCLB_BENCH_LOCAL_REDIRECT=1" "$(mn_log node1)"; then
        die "node1's svclbd still has the knob"
    fi
    LD_KNOB=$1
    log "node1: cfg_local_redirect=$1 (svclbd restarted)"
}

# ---- pod side ----------------------------------------------------------------
ld_pod_xdp() {  # on|off: the trivial XDP_PASS program on every pod's eth0
    local p
    for p in "${MN_BACKENDS[@]}"; do
        if [ "$1" = on ]; then
            in_mn "$p" ip -force link set dev eth0 xdpdrv obj "$TOPO_TMP/xdp_pass.o" sec xdp \
                || die "could not attach XDP_PASS to $p's eth0"
        else
            in_mn "$p" ip link set dev eth0 xdpdrv off
        fi
    done
}
ld_mode() {  # pass | pass_podxdp | redirect | redirect_nopodxdp
    case $1 in
        pass) ld_knob 0; ld_pod_xdp off ;;
        pass_podxdp) ld_knob 0; ld_pod_xdp on ;;
        redirect) ld_knob 1; ld_pod_xdp on ;;
        redirect_nopodxdp) ld_knob 1; ld_pod_xdp off ;;
    esac
}
ld_rx() {  # rx packets summed over the pods' eth0
    local p s=0 n
    for p in "${MN_BACKENDS[@]}"; do
        n=$(in_mn "$p" ip -j -s link show eth0 | jq '.[0].stats64.rx.packets')
        s=$((s + n))
    done
    echo "$s"
}
ld_xdp_xmit() {  # frames redirected into the pods' host-side veths (ndo_xdp_xmit)
    local p s=0 n
    for p in "${MN_BACKENDS[@]}"; do
        n=$(in_mn node1 ethtool -S "lxc$p" | awk '/tx_queue_[0-9]+_xdp_xmit:/ { s += $2 } END { print s + 0 }')
        s=$((s + n))
    done
    echo "$s"
}
# The reply of a pod through the NodePort, from the client (checks DNAT,
# delivery and reverse NAT): "be1 192.168.77.100:P from 192.168.77.1:30053".
ld_check_udp() {
    local out
    out=$(mn_udp client "${MN_IP[node1]}" "$NODEPORT" 3 2>/dev/null) || { echo "FAIL: ${out//$'\n'/ | }"; return 1; }
    echo "${out//$'\n'/ | }"
    [[ $out == *"${MN_IP[client]}:"*" from ${MN_IP[node1]}:$NODEPORT"* ]]
}

# ---- functional checks (before the sink is in place) ------------------------
ld_mode pass
out=$(ld_check_udp) || die "NodePort UDP without redirect: $out"
log "pass: $out"
x0=$(ld_xdp_xmit)
ld_mode redirect
out=$(ld_check_udp) || die "NodePort UDP with redirect (pods with XDP_PASS): $out"
x1=$(ld_xdp_xmit)
((x1 - x0 >= 3)) || die "redirect mode: only $((x1 - x0)) frames redirected into the pods' veths"
log "redirect: $out ($((x1 - x0)) frames by ndo_xdp_xmit)"
ld_mode redirect_nopodxdp
if out=$(ld_check_udp); then NOPODXDP="delivered"; else NOPODXDP="not delivered"; fi
log "redirect without XDP on the pod side: $NOPODXDP ($out)"
ld_mode pass

# Static neighbours for the pods on node1 (no ARP in the measured path; the
# XDP FIB lookup needs one anyway), then the sink.
for p in "${MN_BACKENDS[@]}"; do
    mac=$(in_mn "$p" ip -j link show eth0 | jq -r '.[0].address')
    in_mn node1 ip neigh replace "${POD_IP[$p]}" lladdr "$mac" dev "lxc$p" nud permanent || die "neighbour $p"
done
mkdir -p "$REFPIN"
bpftool prog loadall "$REFOBJ" "$REFPIN" >/dev/null || die "bpftool prog loadall $REFOBJ"
for p in "${MN_BACKENDS[@]}"; do
    in_mn "$p" tc qdisc add dev eth0 clsact || die "clsact on $p"
    in_mn "$p" tc filter add dev eth0 ingress prio 1 bpf direct-action object-pinned "$REFPIN/ref_tc_sink" \
        || die "sink on $p"
done
NODE1_MAC=$(mn_mac node1)
if [ "$GEN_MODE" = live ]; then
    # live frames leave the client's eth0 by ndo_xdp_xmit: NAPI on its peer.
    in_mn lan ip link set dev client xdpdrv obj "$TOPO_TMP/xdp_pass.o" sec xdp || die "XDP_PASS on lan-side client"
fi

# ld_run MODE TRAFFIC ROUND -> one JSON line
ld_run() {
    local mode=$1 tr=$2 r=$3 src flags before after x0 x1 gen
    src=${MN_IP[client]}
    flags=(--flows 1)
    if [ "$tr" = new ]; then
        # low byte rewritten by the generator (2^16 ports per address)
        src=10.$((100 + r)).$(case $mode in pass) echo 1 ;; pass_podxdp) echo 2 ;; *) echo 3 ;; esac).1
        flags=(--new-flow)
    fi
    [ "$GEN_MODE" = live ] || flags+=(--af-packet)
    before=$(ld_rx); x0=$(ld_xdp_xmit)
    gen=$(in_mn_t $((DUR + 20)) client "$SVCLB_BIN/svclb-trafficgen" --dev eth0 --src "$src" \
        --dst "${MN_IP[node1]}" --dport "$NODEPORT" --dst-mac "$NODE1_MAC" --threads "$THREADS" \
        --duration "$DUR" --count "$COUNT" --size 64 "${flags[@]}" --json) || die "trafficgen failed"
    sleep 0.3
    after=$(ld_rx); x1=$(ld_xdp_xmit)
    jq -c -n --arg mode "$mode" --arg tr "$tr" --argjson r "$r" --argjson g "$gen" \
        --argjson rx $((after - before)) --argjson xm $((x1 - x0)) \
        '{mode: $mode, traffic: $tr, round: $r, sent: $g.sent, seconds: $g.seconds, sent_pps: $g.pps,
          rx: $rx, rx_pps: ($rx / $g.seconds), xdp_xmit: $xm}'
}

MODES=(pass pass_podxdp redirect)
RESULT=$TOPO_TMP/local_delivery.jsonl
: >"$RESULT"
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((i = 0; i < ${#MODES[@]}; i++)); do order+=("${MODES[$(((i + r) % ${#MODES[@]}))]}"); done
    log "round $((r + 1))/$ROUNDS: ${order[*]}"
    for m in "${order[@]}"; do
        ld_mode "$m"
        sleep 0.2
        for tr in ct new; do
            line=$(ld_run "$m" "$tr" "$r") || die "run $m $tr failed"
            echo "$line" >>"$RESULT"
            log "  $(jq -r '"\(.mode) \(.traffic): \(.rx_pps | floor) pps received (sent \(.sent_pps | floor), redirected \(.xdp_xmit))"' <<<"$line")"
        done
    done
done
ld_mode pass

"$PY" - "$RESULT" "$(uname -r)" "$ROUNDS" "$COUNT" "$DUR" "$THREADS" "$GEN_MODE" "$NOPODXDP" <<'PYEOF' >"$TOPO_TMP/local_delivery.json"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
summary = {}
for tr in ("ct", "new"):
    s = {}
    for m in ("pass", "pass_podxdp", "redirect"):
        v = sorted(x["rx_pps"] for x in rows if x["mode"] == m and x["traffic"] == tr)
        s[m] = {"min": v[0], "median": statistics.median(v), "max": v[-1], "n": len(v)}
    def ratio(a, b):
        per = []
        for r in sorted({x["round"] for x in rows}):
            pa = [x["rx_pps"] for x in rows if x["mode"] == a and x["traffic"] == tr and x["round"] == r]
            pb = [x["rx_pps"] for x in rows if x["mode"] == b and x["traffic"] == tr and x["round"] == r]
            if pa and pb and pb[0] > 0: per.append(pa[0] / pb[0])
        return {"of_medians": s[a]["median"] / s[b]["median"], "median_per_round": statistics.median(per),
                "per_round": per}
    s["redirect_vs_pass"] = ratio("redirect", "pass")
    s["redirect_vs_pass_podxdp"] = ratio("redirect", "pass_podxdp")
    s["pass_podxdp_vs_pass"] = ratio("pass_podxdp", "pass")
    summary[tr] = s
print(json.dumps({"kernel": sys.argv[2], "rounds": int(sys.argv[3]), "count": int(sys.argv[4]),
                  "duration_s": float(sys.argv[5]), "threads": int(sys.argv[6]), "generator": sys.argv[7],
                  "redirect_without_pod_xdp": sys.argv[8], "summary": summary, "rows": rows}, indent=1))
PYEOF
jq -r '.summary | to_entries[] | .key as $t | .value |
    "\($t): pass \(.pass.median | floor) [\(.pass.min | floor)-\(.pass.max | floor)]  pass_podxdp \(.pass_podxdp.median | floor) [\(.pass_podxdp.min | floor)-\(.pass_podxdp.max | floor)]  redirect \(.redirect.median | floor) [\(.redirect.min | floor)-\(.redirect.max | floor)] pps;  redirect/pass \(.redirect_vs_pass.median_per_round * 1000 | round / 1000)  redirect/pass_podxdp \(.redirect_vs_pass_podxdp.median_per_round * 1000 | round / 1000)  pass_podxdp/pass \(.pass_podxdp_vs_pass.median_per_round * 1000 | round / 1000)"' \
    "$TOPO_TMP/local_delivery.json" >&2
if [ -n "$OUT" ]; then cp "$TOPO_TMP/local_delivery.json" "$OUT"; else cat "$TOPO_TMP/local_delivery.json"; fi
log "done"
