#!/usr/bin/env bash
# The floor of the socket path: TCP connections/s from a pod through svclb's
# socket path against plain routing and against the same hooks doing
# nothing, side by side in one run (issue 15's "pod TCP connections/s,
# socket path >= 0.95x plain routing").
#
#   bench/socklb/floor.sh [N_SERVICES=10000] [ROUNDS=7] [SECONDS=3]
#
# One node namespace, two sets of pods on it:
# - svclb's: be1 be2 client on lxc* veths (svclbd --socket-lb all, its tc
#   programs on them, its cgroup hooks on the test cgroup), N Services (the
#   tested one plus N-1 others);
# - routing's: rbe1 rbe2 rclient on rt* veths, which svclbd leaves alone.
# Configurations, rotated round by round (medians, per-round ratios):
#   route   rclient -> rbe1/rbe2 straight, no program anywhere on its path
#           (one client per backend, as bench/compare's routing row)
#   spread  the same, each client's connects taking rbe1 and rbe2 in turn,
#           as the Service spreads them (both clients talk to both servers)
#   hooks   the same with bench_ref's empty programs where svclbd puts its
#           own: tcx ingress and egress of the three rt* veths (ref_tc_ok),
#           and connect4 / cgroup_skb egress / ingress of a cgroup of its own
#           (ref_sock_ok, ref_skb_*_ok) holding rclient's process: what the
#           hooks cost before any work
#   direct  client (in svclbd's cgroup) -> be1/be2 straight: svclb's programs
#           on traffic not for a Service
#   socket  client (in svclbd's cgroup) -> the ClusterIP: the socket path
# Each uses one svclb-tcpbench client per backend (2 x 64 connects in flight,
# each connection closed with RST once connected), as the Service spreads
# them. Prints a Markdown table; writes every round as JSON to $OUT
# (default ./socklb-floor-N.json). BPF_STATS=1 adds the programs' ns per run;
# PERF=1 a system-wide profile of each configuration's last round.
# Everything (namespaces, cgroups, bpffs pins, processes) is removed on exit;
# every client run is bounded in time.
set -euo pipefail
N=${1:-10000}
ROUNDS=${2:-7}
DUR=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
export SVCLB_REPO=${SVCLB_REPO:-$(cd "$HERE/../.." && pwd)}
BUILD=${BUILD:-$SVCLB_REPO/build}
export SVCLB_BIN=${SVCLB_BIN:-$BUILD/bin}
REFOBJ=$BUILD/bench/bench_ref.bpf.o
OUT=${OUT:-$PWD/socklb-floor-$N.json}
[[ $(id -u) == 0 ]] || { echo "socklb floor: needs root" >&2; exit 77; }
[[ $N =~ ^[1-9][0-9]*$ && $ROUNDS =~ ^[1-9][0-9]*$ && $DUR =~ ^[1-9][0-9]*$ ]] ||
    { echo "socklb floor: N_SERVICES, ROUNDS and SECONDS are positive numbers" >&2; exit 2; }
for t in "$SVCLB_BIN/svclbd" "$SVCLB_BIN/svcctl" "$SVCLB_BIN/svclb-tcpbench" "$REFOBJ"; do
    [[ -e $t ]] || { echo "socklb floor: $t missing (build first)" >&2; exit 1; }
done
command -v bpftool >/dev/null || { echo "socklb floor: needs bpftool" >&2; exit 1; }
# shellcheck source=../../tests/testlib/topo.sh
source "$SVCLB_REPO/tests/testlib/topo.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
SVCLB_SOCKET_LB=all
topo_init "sfloor-$$"
REFDIR=/sys/fs/bpf/svclb-sfloor-ref-$$
CGH=$CG-hooks
BPF_STATS=${BPF_STATS:-0}
# PERF=1: the last round of each configuration sampled system-wide (perf
# record -a -g, 499 Hz, for the client's run); the top symbols of each
# printed after the table, and the samples kept in the tmp dir's perf-*.data
# until exit.
PERF=${PERF:-0}
((PERF)) && { command -v perf >/dev/null || { echo "socklb floor: PERF=1 needs perf (Debian linux-perf)" >&2; exit 1; }; }
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled)
floor_cleanup() {
    rm -f "$REFDIR"/link-* 2>/dev/null || true
    topo_on_exit
    # The empty hooks' cgroup (its processes are gone with the namespaces'):
    # removing it releases its programs.
    [[ -d $CGH ]] && rmdir "$CGH" 2>/dev/null
    rm -rf "$REFDIR"
    sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
}
trap floor_cleanup EXIT

topo_up
for p in rbe1:10.244.3.11 rbe2:10.244.3.12 rclient:10.244.3.21; do
    topo_add_pod "${p%%:*}" "${p#*:}" rt
    POD_IP[${p%%:*}]=${p#*:}
done
daemon_start
daemon_wait_ready || die "svclbd not ready"

mkdir -p "$REFDIR/ref" "$CGH"
bpftool prog loadall "$REFOBJ" "$REFDIR/ref" pinmaps "$REFDIR/refmaps" >/dev/null ||
    die "loading $REFOBJ failed"
bpftool cgroup attach "$CGH" connect4 pinned "$REFDIR/ref/ref_sock_ok" || die "attach ref_sock_ok"
bpftool cgroup attach "$CGH" egress pinned "$REFDIR/ref/ref_skb_egress_ok" || die "attach ref_skb_egress_ok"
bpftool cgroup attach "$CGH" ingress pinned "$REFDIR/ref/ref_skb_ingress_ok" || die "attach ref_skb_ingress_ok"

PORT=9000
BVIP=10.96.100.1
for p in be1 be2 rbe1 rbe2; do
    bg_ns "$(pod_ns "$p")" timeout 3600 "$SVCLB_BIN/svclb-tcpbench" server --port $PORT --duration 3600 \
        >"$TOPO_TMP/srv-$p.log" 2>&1
done

# N-1 filler Services and the tested one, in one manifest.
"$PY" "$HERE/services.py" "$N" "$BVIP" "${POD_IP[be1]}" "${POD_IP[be2]}" $PORT >"$TOPO_TMP/svc.yaml"
svcctl apply -f "$TOPO_TMP/svc.yaml" >/dev/null || die "apply of $N Services failed"
listening() { in_ns "$(pod_ns "$1")" ss -Hltn "sport = :$PORT" | grep -q .; }
for p in be1 be2 rbe1 rbe2; do retry 50 0.1 listening "$p" || die "no server in $p"; done

# hooks_tc on|off: bench_ref's ref_tc_ok on both tcx hooks of the rt* veths.
hooks_tc() {
    local d h
    rm -f "$REFDIR"/link-*
    [[ $1 == on ]] || return 0
    for d in rtrbe1 rtrbe2 rtrclient; do
        for h in ingress egress; do
            in_node "$PY" "$SVCLB_REPO/bench/compare/tcx_link.py" "$d" "$h" "$REFDIR/ref/ref_tc_ok" \
                "$REFDIR/link-$d-$h" || die "tcx link on $d $h"
        done
    done
}

# client POD CGROUP ADDR0 ADDR1: 2 tcpbench clients (client i to ADDRi) from
# POD, its process in CGROUP (/nonexistent: left where it is). One JSON object.
client() {
    local pod=$1 cg=$2 addrs=("$3" "$4") i pids=()
    for i in 0 1; do
        timeout $((DUR + 20)) sh -c "$IN_CG_SH" "$(pod_ns "$pod")" "$cg" "$SVCLB_BIN/svclb-tcpbench" client \
            --addr "${addrs[$i]}" --port $PORT --inflight 64 --duration "$DUR" >"$TOPO_TMP/c.$i" 2>/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    socklb_merge "$TOPO_TMP/c.0" "$TOPO_TMP/c.1"
}
((BPF_STATS)) && sysctl -qw kernel.bpf_stats_enabled=1

CONFIGS=(route spread hooks direct socket)
SPREAD="${POD_IP[rbe1]},${POD_IP[rbe2]}"
declare -A RUN=(
    [route]="rclient /nonexistent ${POD_IP[rbe1]} ${POD_IP[rbe2]}"
    [spread]="rclient /nonexistent $SPREAD $SPREAD"
    [hooks]="rclient $CGH ${POD_IP[rbe1]} ${POD_IP[rbe2]}"
    [direct]="client $CG ${POD_IP[be1]} ${POD_IP[be2]}"
    [socket]="client $CG $BVIP $BVIP")
# A warm-up run, not counted: the first client run after setup is slow.
# shellcheck disable=SC2086
client ${RUN[route]} >/dev/null
results="[]"
for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order too: no configuration always runs first or last.
    for ((k = 0; k < ${#CONFIGS[@]}; k++)); do
        c=${CONFIGS[$(((k + r - 1) % ${#CONFIGS[@]}))]}
        if [[ $c == hooks ]]; then hooks_tc on; else hooks_tc off; fi
        ps0='{}'; ((BPF_STATS)) && ps0=$(socklb_prog_stats)
        PERF_PID=""
        if ((PERF)) && ((r == ROUNDS)); then
            perf record -a -g -F 499 -o "$TOPO_TMP/perf-$c.data" -- sleep "$DUR" >/dev/null 2>&1 &
            PERF_PID=$!
        fi
        # shellcheck disable=SC2086
        j=$(client ${RUN[$c]})
        [[ -n $PERF_PID ]] && wait "$PERF_PID"
        if ((BPF_STATS)); then
            j=$(socklb_with_progs "$j" "$ps0")
        fi
        log "round $r $c: $j"
        results=$(jq -c --arg c "$c" --argjson r "$r" --argjson j "$j" '. + [$j + {config: $c, round: $r}]' <<<"$results")
    done
done
hooks_tc off
if ((PERF)); then
    # symbol -> % of all samples, per configuration; the 40 symbols where the
    # socket path spends the most beyond the direct run, side by side.
    for c in "${CONFIGS[@]}"; do
        perf report -i "$TOPO_TMP/perf-$c.data" --no-children --sort symbol --stdio 2>/dev/null |
            awk '$1 ~ /%$/ { p = $1; sub(/%/, "", p); $1 = ""; $2 = ""; sub(/^ +/, ""); print p "\t" $0 }' \
                >"$TOPO_TMP/perf-$c.tsv" || true
    done
    "$PY" - "$TOPO_TMP" "${CONFIGS[@]}" >&2 <<'PY'
import re, sys
d, cfgs = sys.argv[1], sys.argv[2:]
prof = {}
for c in cfgs:
    prof[c] = {}
    for line in open("%s/perf-%s.tsv" % (d, c)):
        p, sym = line.rstrip("\n").split("\t", 1)
        sym = re.sub(r"( -)+$", "", sym.strip())  # perf's empty trailing columns
        prof[c][sym] = prof[c].get(sym, 0) + float(p)
syms = sorted(set(prof["socket"]) | set(prof["direct"]),
              key=lambda s: prof["socket"].get(s, 0) - prof["direct"].get(s, 0), reverse=True)[:40]
print("\nperf (cpu-clock samples, % of all; last round of each): socket path minus direct\n")
print("| symbol | " + " | ".join(cfgs) + " | socket - direct |")
print("|---|" + "---|" * (len(cfgs) + 1))
for s in syms:
    print("| %s | %s | %+.2f |" % (s, " | ".join("%.2f" % prof[c].get(s, 0) for c in cfgs),
                                  prof["socket"].get(s, 0) - prof["direct"].get(s, 0)))
PY
fi
jq --argjson n "$N" --argjson dur "$DUR" --arg cfgs "${CONFIGS[*]}" \
    '{services: $n, seconds: $dur, configs: ($cfgs | split(" ")), rounds: .}' <<<"$results" >"$OUT"

"$PY" - "$OUT" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
rows, cfgs = d["rounds"], d["configs"]
label = {"route": "plain routing (no program)",
         "spread": "plain routing, each client's connections spread over both backends in turn",
         "hooks": "the same hooks, empty programs (tcx + connect4 + cgroup_skb)",
         "direct": "svclb, client in its cgroup, straight to the backends",
         "socket": "svclb, ClusterIP, socket path"}
print("%d Services, %d rounds of %d s, medians\n" % (d["services"], max(x["round"] for x in rows), d["seconds"]))
print("| path | conn/s | / route (per round min-max) | / spread | / hooks | connect p50 us | errors |")
print("|---|---|---|---|---|---|---|")
def per_round(c, base):
    a = {x["round"]: x["cps"] for x in rows if x["config"] == c}
    b = {x["round"]: x["cps"] for x in rows if x["config"] == base}
    return [a[k] / b[k] for k in a if b.get(k)]
for c in cfgs:
    xs = [x for x in rows if x["config"] == c]
    r1, r2, r3 = per_round(c, "route"), per_round(c, "hooks"), per_round(c, "spread")
    print("| %s | %.0f | %.3f (%.2f-%.2f) | %.3f | %.3f | %d | %d |" % (
        label[c], statistics.median(x["cps"] for x in xs), statistics.median(r1), min(r1), max(r1),
        statistics.median(r3), statistics.median(r2), statistics.median(x["p50_us"] for x in xs),
        sum(x["errors"] for x in xs)))
if any("progs" in x for x in rows):
    names = sorted({n for x in rows for n in x.get("progs", {})})
    print("\nkernel bpf_stats, ns per run (median over rounds) and runs per connection\n")
    print("| path | program | ns/run | runs/conn |")
    print("|---|---|---|---|")
    for c in cfgs:
        xs = [x for x in rows if x["config"] == c and "progs" in x]
        for n in names:
            v = [(x["progs"][n], x["cps"]) for x in xs if n in x["progs"] and x["progs"][n][0]]
            if v:
                print("| %s | %s | %.0f | %.1f |" % (c, n, statistics.median(t / k for (k, t), _ in v),
                                                   statistics.median(k / max(1, cps * d["seconds"]) for (k, _), cps in v)))
PY
