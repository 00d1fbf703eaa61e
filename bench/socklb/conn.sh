#!/usr/bin/env bash
# TCP connections per second from a pod through a ClusterIP: the socket path
# (svclbd --socket-lb=all, the client pod's process in svclbd's cgroup) beside
# the tc path (another pod, tcclient, its process outside that cgroup: the
# hooks never see it; a pod of its own, so that its CT entries do not name
# the client pod's tuples, as in a cluster where the socket-balanced pods
# make none) and the client pod connecting straight to the backends' addresses,
# in and out of the cgroup (the hooks' cost on traffic that is not for a
# Service: connect4's Service lookup miss and the cgroup_skb counters'
# socket-storage lookup per packet). One topology (tests/testlib/topo.sh:
# node + pods be1 be2 client tcclient), one daemon, N Services (the tested one plus
# N-1 others), configurations alternated round by round, medians.
#
#   [SVCLBD_FLAGS="--flow-filter off"] bench/socklb/conn.sh [N_SERVICES=10000] [ROUNDS=5] [SECONDS=3]
# "direct" sends one client to each backend, as the Service spreads them.
#
# Prints a Markdown table and writes JSON (every round) to $OUT
# (default ./socklb-conn-N.json). svclb-tcpbench: 2 clients x 64 connects in
# flight, each connection closed with RST once connected (no TIME_WAIT).
# Everything lives in namespaces and a cgroup this script creates; all is
# removed on exit (topo.sh's trap). Bounded: every client run has a timeout.
set -euo pipefail
N=${1:-10000}
ROUNDS=${2:-5}
DUR=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
export SVCLB_REPO=${SVCLB_REPO:-$(cd "$HERE/../.." && pwd)}
export SVCLB_BIN=${SVCLB_BIN:-$SVCLB_REPO/build/bin}
OUT=${OUT:-$PWD/socklb-conn-$N.json}
[[ $(id -u) == 0 ]] || { echo "socklb bench: needs root" >&2; exit 77; }
for t in svclbd svcctl svclb-tcpbench; do
    [[ -x $SVCLB_BIN/$t ]] || { echo "socklb bench: $SVCLB_BIN/$t missing (build first)" >&2; exit 1; }
done
# shellcheck source=../../tests/testlib/topo.sh
source "$SVCLB_REPO/tests/testlib/topo.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
SVCLB_SOCKET_LB=all
topo_init "socklb-$$"
# SVCLBD_FLAGS: more svclbd flags (e.g. --flow-filter off).
# FLOW_FILTER_AB=1: flow_filter_v1 off and on in one daemon, round by round
# (svclbd --flow-filter off, then its control word set valid for the "+ff"
# configurations and cleared after: no rebuilds, so its maps hold every slot
# ever set, the tcclient pod's tc-path flows' among them, none of the client pod's).
# BPF_STATS=1: kernel.bpf_stats_enabled for the run (restored after), and
# per configuration each svclb program's runs and ns per run (its own cost,
# plus the ~20-40 ns the accounting adds to every run).
read -r -a DAEMON_FLAGS_EXTRA <<<"${SVCLBD_FLAGS:-}"
FLOW_FILTER_AB=${FLOW_FILTER_AB:-0}
((FLOW_FILTER_AB)) && DAEMON_FLAGS_EXTRA+=(--flow-filter off)
topo_up
# The tc path's client is a pod of its own (a pod outside the cgroup):
# its flows' CT entries name its address, not the client pod's.
topo_add_pod tcclient 10.244.1.22
daemon_start
daemon_wait_ready || die "svclbd not ready"

PORT=9000
BVIP=10.96.100.1
for p in be1 be2; do
    bg_ns "$(pod_ns "$p")" timeout 3600 "$SVCLB_BIN/svclb-tcpbench" server --port $PORT --duration 3600 \
        >"$TOPO_TMP/srv-$p.log" 2>&1
done

# N-1 filler Services and the tested one, in one manifest.
"$PY" "$HERE/services.py" "$N" "$BVIP" "${POD_IP[be1]}" "${POD_IP[be2]}" $PORT >"$TOPO_TMP/svc.yaml"
t0=$(date +%s.%N)
svcctl apply -f "$TOPO_TMP/svc.yaml" >/dev/null || die "apply of $N Services failed"
log "applied $N Services in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"

# client CG ADDR0 ADDR1: 2 tcpbench clients from the client pod (client i to
# ADDRi), in (cg) or out (nocg) of svclbd's cgroup, or (tc) from the
# tcclient pod outside it. Prints one JSON object.
client() {
    local where=$1 addrs=("$2" "$3") addr i pids=() pod=client
    [[ $where == tc ]] && pod=tcclient
    for i in 0 1; do
        addr=${addrs[$i]}
        if [[ $where == cg ]]; then
            in_pod_t $((DUR + 20)) client "$SVCLB_BIN/svclb-tcpbench" client --addr "$addr" --port $PORT \
                --inflight 64 --duration "$DUR" >"$TOPO_TMP/c.$i" 2>/dev/null &
        else
            timeout $((DUR + 20)) nsenter --net="/run/netns/$(pod_ns $pod)" "$SVCLB_BIN/svclb-tcpbench" client \
                --addr "$addr" --port $PORT --inflight 64 --duration "$DUR" >"$TOPO_TMP/c.$i" 2>/dev/null &
        fi
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    socklb_merge "$TOPO_TMP/c.0" "$TOPO_TMP/c.1"
}

# CT entries (svcctl status: the daemon walks the two CT maps): the socket
# path must make none, the tc path two per connection (checked in the table).
ct_total() {
    svcctl status -o json | jq '[.maps[] | select(.name == "ct_v2" or .name == "ct_est_v2") | .entries] | add'
}

CONFIGS=(direct-nocg direct-cg socket tc)
((FLOW_FILTER_AB)) && CONFIGS=(direct-nocg direct-nocg+ff socket socket+ff tc tc+ff)
# Straight: one client to each backend, as the Service spreads them.
DIRECT="${POD_IP[be1]} ${POD_IP[be2]}"
declare -A ADDR=([direct-nocg]=$DIRECT [direct-cg]=$DIRECT [socket]="$BVIP $BVIP" [tc]="$BVIP $BVIP")
declare -A WHERE=([direct-nocg]=nocg [direct-cg]=cg [socket]=cg [tc]=tc)
# flow_filter_v1's control word (svclb_abi.h SVCLB_FLOWF_CTL = 2 x 2^17):
# valid with the first map current, or invalid.
flowf_ctl() {
    bpftool map update pinned "$BPFFS/flow_filter_v1" key 0x00 0x00 0x04 0x00 \
        value "$1" 0 0 0 0 0 0 0 || die "flow_filter_v1 control word"
}
BPF_STATS=${BPF_STATS:-0}
if ((BPF_STATS)); then
    STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -qw kernel.bpf_stats_enabled=1
    trap 'sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"; topo_on_exit' EXIT
fi
results="[]"
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CONFIGS[@]}"; do
        base=${c%+ff}
        if ((FLOW_FILTER_AB)); then if [[ $c == *+ff ]]; then flowf_ctl 2; else flowf_ctl 0; fi; fi
        ct0=$(ct_total)
        ps0='{}'; ((BPF_STATS)) && ps0=$(socklb_prog_stats)
        # shellcheck disable=SC2086
        j=$(client "${WHERE[$base]}" ${ADDR[$base]})
        if ((BPF_STATS)); then
            j=$(socklb_with_progs "$j" "$ps0")
        fi
        ct1=$(ct_total)
        log "round $r $c: $j (CT entries $ct0 -> $ct1)"
        results=$(jq -c --arg c "$c" --argjson r "$r" --argjson j "$j" --argjson d $((ct1 - ct0)) \
            '. + [$j + {config: $c, round: $r, ct_delta: $d}]' <<<"$results")
    done
done
jq --argjson n "$N" --argjson dur "$DUR" --arg cfgs "${CONFIGS[*]}" \
    '{services: $n, seconds: $dur, configs: ($cfgs | split(" ")), rounds: .}' <<<"$results" >"$OUT"

"$PY" - "$OUT" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
rows = d["rounds"]
cfgs = d.get("configs", ["direct-nocg", "direct-cg", "socket", "tc"])
label = {"direct-nocg": "straight to the backends' addresses, client outside the cgroup",
         "direct-cg": "straight to the backends' addresses, client in the cgroup (hooks run, no Service)",
         "socket": "ClusterIP, socket path (client in the cgroup)",
         "tc": "ClusterIP, tc path (another pod, outside the cgroup)"}
for c in cfgs:
    if c.endswith("+ff"):
        label[c] = label[c[:-3]] + ", flow filter on"
med = {c: statistics.median([x["cps"] for x in rows if x["config"] == c]) for c in cfgs}
print("%d Services, %d rounds, medians\n" % (d["services"], max(x["round"] for x in rows)))
print("| path | conn/s | / direct-nocg | connect p50 us | errors | CT growth in a round (max) |")
print("|---|---|---|---|---|---|")
for c in cfgs:
    xs = [x for x in rows if x["config"] == c]
    ratios = [x["cps"] / y["cps"] for x, y in zip(xs, [z for z in rows if z["config"] == "direct-nocg"]) if y["cps"]]
    print("| %s | %.0f | %.2f (per round %s) | %d | %d | %d |" % (
        label[c], med[c], statistics.median(ratios) if ratios else 0,
        "-".join("%.2f" % v for v in (min(ratios), max(ratios))) if ratios else "",
        statistics.median([x["p50_us"] for x in xs]), sum(x["errors"] for x in xs),
        max(0, max(x["ct_delta"] for x in xs))))
if any("progs" in x for x in rows):
    names = sorted({n for x in rows for n in x.get("progs", {})})
    print("\nkernel bpf_stats, ns per run (medians over rounds; runs per connection)\n")
    print("| path | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for c in cfgs:
        xs = [x for x in rows if x["config"] == c and "progs" in x]
        cells = []
        for n in names:
            v = [x["progs"][n] for x in xs if n in x["progs"] and x["progs"][n][0]]
            if not v:
                cells.append("-")
                continue
            conns = statistics.median([x["cps"] for x in xs])
            cells.append("%.0f (%.1f)" % (statistics.median([t / k for k, t in v]),
                                         statistics.median([k for k, _ in v]) / max(1, conns * d.get("seconds", 3))))
        print("| %s | %s |" % (label[c], " | ".join(cells)))
PY
