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
SVCLB_SOCKET_LB=all
topo_init "socklb-$$"
# SVCLBD_FLAGS: more svclbd flags (e.g. --flow-filter off, for an A/B).
read -r -a DAEMON_FLAGS_EXTRA <<<"${SVCLBD_FLAGS:-}"
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

# N-1 filler Services (UDP 53, two endpoints each in an unused range) and the
# tested one, in one manifest.
"$PY" - "$N" "$BVIP" "${POD_IP[be1]}" "${POD_IP[be2]}" $PORT >"$TOPO_TMP/svc.yaml" <<'PY'
import ipaddress, sys
n, bvip, be1, be2, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
base = int(ipaddress.ip_address("10.97.0.1"))
ep = int(ipaddress.ip_address("10.250.0.1"))
def svc(name, vip, ports, ips):
    print("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\nspec:\n  clusterIP: %s\n  ports:" % (name, vip))
    for pn, proto, p, tp in ports:
        print("  - name: %s\n    port: %d\n    protocol: %s\n    targetPort: %d" % (pn, p, proto, tp))
    print("---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: %s\n  namespace: default\nsubsets:\n- addresses:" % name)
    for ip in ips:
        print("  - ip: %s" % ip)
    print("  ports:")
    for pn, proto, p, tp in ports:
        print("  - name: %s\n    port: %d\n    protocol: %s" % (pn, tp, proto))
for i in range(n - 1):
    svc("f%d" % i, str(ipaddress.ip_address(base + i)), [("dns", "UDP", 53, 5353)],
        [str(ipaddress.ip_address(ep + 2 * i)), str(ipaddress.ip_address(ep + 2 * i + 1))])
svc("bench", bvip, [("tcp", "TCP", port, port)], [be1, be2])
PY
t0=$(date +%s.%N)
svcctl apply -f "$TOPO_TMP/svc.yaml" >/dev/null || die "apply of $N Services failed"
log "applied $N Services in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"

# client CG ADDR0 ADDR1: 2 tcpbench clients from the client pod (client i to
# ADDRi), in (cg) or out (nocg) of svclbd's cgroup, or (tc) from the
# tcclient pod outside it. Prints one JSON object.
client() {
    local where=$1 addrs=("$2" "$3") addr i pids=() outs=() pod=client
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
    for i in 0 1; do outs+=("$(cat "$TOPO_TMP/c.$i")"); done
    "$PY" -c 'import json,sys; r=[json.loads(x) for x in sys.argv[1:] if x.strip()]
print(json.dumps({"cps": sum(x["cps"] for x in r), "p50_us": max([x["connect_us_p50"] for x in r] or [0]),
"p99_us": max([x["connect_us_p99"] for x in r] or [0]), "errors": sum(x["errors"] for x in r)}))' "${outs[@]}"
}

# CT entries (svcctl status: the daemon walks the two CT maps): the socket
# path must make none, the tc path two per connection (checked in the table).
ct_total() {
    svcctl status -o json | jq '[.maps[] | select(.name == "ct_v2" or .name == "ct_est_v2") | .entries] | add'
}

CONFIGS=(direct-nocg direct-cg socket tc)
# Straight: one client to each backend, as the Service spreads them.
DIRECT="${POD_IP[be1]} ${POD_IP[be2]}"
declare -A ADDR=([direct-nocg]=$DIRECT [direct-cg]=$DIRECT [socket]="$BVIP $BVIP" [tc]="$BVIP $BVIP")
declare -A WHERE=([direct-nocg]=nocg [direct-cg]=cg [socket]=cg [tc]=tc)
results="[]"
for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CONFIGS[@]}"; do
        ct0=$(ct_total)
        # shellcheck disable=SC2086
        j=$(client "${WHERE[$c]}" ${ADDR[$c]})
        ct1=$(ct_total)
        log "round $r $c: $j (CT entries $ct0 -> $ct1)"
        results=$(jq -c --arg c "$c" --argjson r "$r" --argjson j "$j" --argjson d $((ct1 - ct0)) \
            '. + [$j + {config: $c, round: $r, ct_delta: $d}]' <<<"$results")
    done
done
jq --argjson n "$N" '{services: $n, rounds: .}' <<<"$results" >"$OUT"

"$PY" - "$OUT" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
rows = d["rounds"]
cfgs = ["direct-nocg", "direct-cg", "socket", "tc"]
label = {"direct-nocg": "straight to the backends' addresses, client outside the cgroup",
         "direct-cg": "straight to the backends' addresses, client in the cgroup (hooks run, no Service)",
         "socket": "ClusterIP, socket path (client in the cgroup)",
         "tc": "ClusterIP, tc path (another pod, outside the cgroup)"}
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
PY
