#!/usr/bin/env bash
# Cluster DNS queries/s (issue 14): svclbd's DNS server beside unbound and
# dnsmasq, same lab, same names, same dnsperf query files, rounds alternating
# the servers. bench/dns/README.md tells what it measures and how to read it.
#
#   flock /tmp/svclb-ns.lock bench/dns/qps.sh [options]
#     --services N      Services fed to every server (default 1000; every 20th headless)
#     --duration S      dnsperf -l per run (default 10)
#     --rounds R        rounds, each running every mix on every server (default 3)
#     --clients C       dnsperf -c (default 4)
#     --threads T       dnsperf -T (default 1)
#     --outstanding Q   dnsperf -q (default 100)
#     --servers LIST    svclbd,unbound1,unbound2,dnsmasq (default: all)
#     --mixes LIST      zone,nx,fwd,pod (default: all)
#     --churn           also: svclbd's zone mix while an `svcctl apply` loop changes Services
#     --bin DIR         svclbd and svcctl (default: build/bin of this tree)
#     --out FILE        also write the summary (markdown) there
#     --smoke           ctest bench.dns_smoke: fail unless every server answered > 0
#                       queries of every mix with 0 lost in the zone mix (no timing checks)
#
# Lab (fixed names: run it under the lock): netns svclb-dnsb-node (the
# servers, each on its own address on lo), svclb-dnsb-client (dnsperf) and
# svclb-dnsb-up (dnsmasq, the upstream resolver), two veth pairs; addresses
# exist only inside those namespaces. Everything it makes (namespaces,
# processes, the bpffs dir /sys/fs/bpf/svclb-dnsbench, its temp dir) is
# removed on exit, also on failure or interrupt. Needs root.
set -euo pipefail

N=1000 DUR=10 ROUNDS=3 CLIENTS=4 THREADS=1 OUTSTANDING=100
SERVERS=svclbd,unbound1,unbound2,dnsmasq MIXES=zone,nx,fwd,pod
CHURN=0 SMOKE=0 OUT=
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(cd "$HERE/../.." && pwd)/build/bin
usage() { sed -n '/^#   flock/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
    case $1 in
    --services) N=$2; shift ;;
    --duration) DUR=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --outstanding) OUTSTANDING=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --mixes) MIXES=$2; shift ;;
    --churn) CHURN=1 ;;
    --bin) BIN=$2; shift ;;
    --out) OUT=$2; shift ;;
    --smoke) SMOKE=1 ;;
    -h | --help) usage 0 ;;
    *) echo "qps.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
for v in N DUR ROUNDS CLIENTS THREADS OUTSTANDING; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "qps.sh: ${v}=${!v}: expected a positive whole number" >&2; exit 2; }
done
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"
IFS=, read -r -a MIX_LIST <<<"$MIXES"
for s in "${SERVER_LIST[@]}"; do
    case $s in svclbd | unbound1 | unbound2 | dnsmasq) ;;
    *) echo "qps.sh: --servers: unknown server '$s' (svclbd, unbound1, unbound2, dnsmasq)" >&2; exit 2 ;;
    esac
done
for m in "${MIX_LIST[@]}"; do
    case $m in zone | nx | fwd | pod) ;;
    *) echo "qps.sh: --mixes: unknown mix '$m' (zone, nx, fwd, pod)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "qps.sh: needs root (network namespaces, bpffs)"; exit 77; }
for t in dnsperf unbound dnsmasq dig ip nsenter python3 curl; do
    command -v "$t" >/dev/null || { echo "qps.sh: missing tool: $t (scripts/deps.sh installs it)"; exit 77; }
done
has() { local x; for x in "${SERVER_LIST[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
if has svclbd; then
    for b in svclbd svcctl; do
        [ -x "$BIN/$b" ] || { echo "qps.sh: $BIN/$b not found (build first, or --bin DIR)" >&2; exit 2; }
    done
fi

NODE=svclb-dnsb-node CLIENT=svclb-dnsb-client UP=svclb-dnsb-up
PIN=/sys/fs/bpf/svclb-dnsbench
CLIENT_IP=10.253.0.2 NODE_C_IP=10.253.0.1 UP_IP=10.253.1.2 NODE_U_IP=10.253.1.1
declare -A ADDR=([svclbd]=10.96.0.10 [unbound1]=10.96.0.11 [unbound2]=10.96.0.12 [dnsmasq]=10.96.0.13)
METRICS=127.0.0.1:9810 # inside the node netns
PIDS=()
TMP=

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for n in $NODE $CLIENT $UP; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$PIN"
    [ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local n=$1; shift; nsenter --net="/run/netns/$n" "$@"; }
log() { echo "[dns-qps] $*" >&2; }
die() { log "$*"; exit 1; }

# A stale lab of an interrupted run (we hold the lock: nobody else's).
for n in $NODE $CLIENT $UP; do ip netns del "$n" 2>/dev/null || true; done
rm -rf "$PIN"
TMP=$(mktemp -d /tmp/svclb-dnsbench.XXXXXX)

log "generating $N Services and the query files"
python3 "$HERE/gen.py" "$N" "$TMP" >&2

# ---- the lab -------------------------------------------------------------
for n in $NODE $CLIENT $UP; do ip netns add "$n"; in_ns "$n" ip link set lo up; done
ip link add dnsb-c type veth peer name dnsb-nc
ip link set dnsb-c netns $CLIENT
ip link set dnsb-nc netns $NODE
ip link add dnsb-u type veth peer name dnsb-nu
ip link set dnsb-u netns $UP
ip link set dnsb-nu netns $NODE
in_ns $CLIENT ip addr add $CLIENT_IP/24 dev dnsb-c
in_ns $CLIENT ip link set dnsb-c up
in_ns $CLIENT ip route add 10.96.0.0/24 via $NODE_C_IP
in_ns $NODE ip addr add $NODE_C_IP/24 dev dnsb-nc
in_ns $NODE ip link set dnsb-nc up
in_ns $NODE ip addr add $NODE_U_IP/24 dev dnsb-nu
in_ns $NODE ip link set dnsb-nu up
in_ns $UP ip addr add $UP_IP/24 dev dnsb-u
in_ns $UP ip link set dnsb-u up
# The peers' addresses (svclbd puts its own on lo, as lo:svclb-dns).
for s in unbound1 unbound2 dnsmasq; do in_ns $NODE ip addr add "${ADDR[$s]}/32" dev lo; done

bg() { # NAME NETNS CMD... : started in NETNS, output in $TMP/NAME.log
    local name=$1 n=$2; shift 2
    # nsenter itself (not a function: $! must be the server's PID, nsenter
    # execs it).
    nsenter --net="/run/netns/$n" "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$name=$!"
}
# dig from the client (or ASK_NS): RC = the rcode word, ANS = the A/AAAA
# addresses answered, sorted, space-separated.
ask() { # SERVER_IP NAME [TYPE]
    local out
    out=$(in_ns "${ASK_NS:-$CLIENT}" timeout 5 dig +time=1 +tries=2 +noall +comments +answer "@$1" "$2" "${3:-A}" 2>&1) || true
    RC=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
    ANS=$(awk '$4 == "A" || $4 == "AAAA" {print $5}' <<<"$out" | sort | tr '\n' ' ' | sed 's/ $//')
}
wait_answer() { # SERVER_IP NAME WHAT
    local i
    for i in $(seq 100); do
        ask "$1" "$2"
        [ -n "$ANS" ] && return 0
        if [ $((i % 10)) = 0 ]; then
            for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "$3 exited: $(tail -5 "$TMP"/*.log)"; done
        fi
        sleep 0.1
    done
    die "$3 does not answer $2 at $1"
}

# ---- upstream: dnsmasq, a fixed set of names, TTL 600 (cacheable) -------
bg upstream $UP dnsmasq --keep-in-foreground --no-resolv --no-hosts --user=root --pid-file= \
    --listen-address=$UP_IP --bind-interfaces --port=53 --local-ttl=600 --cache-size=0 \
    --conf-file="$TMP/upstream.conf"
ASK_NS=$NODE wait_answer $UP_IP n0.ext.example.test "the upstream dnsmasq"

# ---- servers under test ---------------------------------------------------
start_svclbd() {
    bg svclbd $NODE "$BIN/svclbd" --bpffs "$PIN" --state-dir "$TMP/state" --socket "$TMP/svclbd.sock" \
        --cgroup none --metrics-addr $METRICS --cluster-dns "${ADDR[svclbd]}" --dns-upstream $UP_IP
    local i
    for i in $(seq 100); do
        "$BIN/svcctl" --socket "$TMP/svclbd.sock" status >/dev/null 2>&1 && break
        kill -0 "$PID_svclbd" 2>/dev/null || die "svclbd exited: $(tail -5 "$TMP/svclbd.log")"
        sleep 0.1
    done
    local t0 t1
    t0=$(date +%s.%N)
    timeout 120 "$BIN/svcctl" --socket "$TMP/svclbd.sock" apply -f "$TMP/svc.yaml" >"$TMP/apply.log" 2>&1 \
        || die "svcctl apply failed: $(tail -5 "$TMP/apply.log")"
    t1=$(date +%s.%N)
    log "svclbd: svcctl apply of $N Services took $(printf '%.3f' "$(echo "$t1 - $t0" | bc)") s"
}
start_unbound() { # NAME THREADS
    local d=$TMP/$1
    mkdir -p "$d"
    cat >"$d/unbound.conf" <<EOF
server:
    interface: ${ADDR[$1]}
    port: 53
    do-ip6: no
    access-control: 0.0.0.0/0 allow
    num-threads: $2
    so-reuseport: yes
    username: ""
    chroot: ""
    directory: "$d"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
    # unbound answers test. itself (RFC 6761) unless told not to.
    local-zone: "test." nodefault
    do-not-query-localhost: no
$(cat "$TMP/unbound-zone.conf")
forward-zone:
    name: "."
    forward-addr: $UP_IP
remote-control:
    control-enable: no
EOF
    bg "$1" $NODE unbound -d -c "$d/unbound.conf"
}
start_dnsmasq() {
    bg dnsmasq $NODE dnsmasq --keep-in-foreground --no-resolv --no-hosts --user=root --pid-file= \
        --listen-address="${ADDR[dnsmasq]}" --bind-interfaces --port=53 --server=$UP_IP \
        --cache-size=10000 --local-ttl=5 --conf-file="$TMP/dnsmasq-zone.conf"
}

first=$(head -1 "$TMP/q-zone.txt" | cut -d' ' -f1)
for s in "${SERVER_LIST[@]}"; do
    case $s in
    svclbd) start_svclbd ;;
    unbound1) start_unbound unbound1 1 ;;
    unbound2) start_unbound unbound2 2 ;;
    dnsmasq) start_dnsmasq ;;
    esac
    wait_answer "${ADDR[$s]}" "$first" "$s"
done

# ---- the same answers from every server (reported, not fatal) -----------
# A few names of each kind, checked against what gen.py wrote; a server
# that answers differently is named in the summary with query/expected/got.
CHECKS=$TMP/checks.txt
: >"$CHECKS"
check() { # SERVER NAME TYPE EXPECTED_RCODE EXPECTED_ADDRS(sorted, space-separated)
    local got
    ask "${ADDR[$1]}" "$2" "$3"
    got=$ANS
    if [ "$RC" != "$4" ] || [ "$got" != "$5" ]; then
        echo "$1: $2 $3: expected $4 [$5], got ${RC:-no answer} [$got]" >>"$CHECKS"
    fi
}
hl=$(awk -F'\t' '$1 ~ /^svc[0-9]+-0\./ {print $1; exit}' "$TMP/zone.tsv") # a headless pod name
for s in "${SERVER_LIST[@]}"; do
    check "$s" svc0.default.svc.cluster.local A NOERROR "$(awk -F'\t' '$1=="svc0.default.svc.cluster.local"{print $2}' "$TMP/zone.tsv")"
    check "$s" svc0.default.svc.cluster.local AAAA NOERROR ""
    check "$s" svc1.bench.svc.cluster.local A NOERROR "$(awk -F'\t' '$1=="svc1.bench.svc.cluster.local"{print $2}' "$TMP/zone.tsv")"
    check "$s" www.example.com.default.svc.cluster.local A NXDOMAIN ""
    check "$s" n7.ext.example.test A NOERROR 198.18.0.8
    check "$s" h1.fwd.example.test A NOERROR 192.0.2.1
    if [ -n "$hl" ]; then
        svc=${hl#*.}
        check "$s" "$hl" A NOERROR "$(awk -F'\t' -v n="$hl" '$1==n{print $2}' "$TMP/zone.tsv")"
        check "$s" "$svc" A NOERROR "$(awk -F'\t' -v n="$svc" '$1==n{print $2}' "$TMP/zone.tsv" | sort | tr '\n' ' ' | sed 's/ $//')"
    fi
done
if [ -s "$CHECKS" ]; then log "answers that differ from the generated zone:"; cat "$CHECKS" >&2; fi

# ---- measurement ----------------------------------------------------------
RES=$TMP/runs.tsv # round mix server qps sent completed lost lost% avg_ms rcodes response_bytes
: >"$RES"
perf() { # SERVER MIX TAG [extra dnsperf args]: one dnsperf run, a line in $RES
    local s=$1 m=$2 tag=$3 o; shift 3
    o=$TMP/dnsperf-$tag-$m-$s.txt
    in_ns $CLIENT timeout $((DUR + 30)) dnsperf -s "${ADDR[$s]}" -d "$TMP/q-$m.txt" -l "$DUR" \
        -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING" -t 2 "$@" >"$o" 2>&1 || { log "dnsperf failed:"; cat "$o" >&2; exit 1; }
    python3 - "$o" "$tag" "$m" "$s" >>"$RES" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def f(pat, conv=float):
    m = re.search(pat, t)
    if not m:
        sys.exit(f"dnsperf output without {pat!r}:\n{t}")
    return conv(m.group(1))
sent = f(r"Queries sent:\s+(\d+)", int)
done = f(r"Queries completed:\s+(\d+)", int)
lost = f(r"Queries lost:\s+(\d+)", int)
qps = f(r"Queries per second:\s+([\d.]+)")
lat = f(r"Average Latency \(s\):\s+([\d.]+)") * 1000
size = f(r"Average packet size:.*response\s+(\d+)", int)
m = re.search(r"Response codes:\s+(.*)", t)
rc = ",".join(f"{k}:{v}" for k, v in re.findall(r"([A-Z]+) (\d+) \(", m.group(1))) if m else "-"
pct = 100.0 * lost / sent if sent else 0.0
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{qps:.1f}\t{sent}\t{done}\t{lost}\t{pct:.3f}\t{lat:.3f}\t{rc}\t{size}")
PY
    log "$(tail -1 "$RES" | awk -F'\t' '{printf "%s %-4s %-9s %10s q/s  lost %s (%s%%)  avg %s ms  %s  response %s B", $1, $2, $3, $4, $7, $8, $9, $10, $11}')"
}

# Warm-up: one pass of every query file per server (not measured), so the
# forwarded names are in every cache before round 0: the fwd and pod mixes
# measure cached answers (upstream TTL 600 s), apart from what a server's
# own cache policy sends upstream again.
log "warm-up: one pass of each query file per server"
for m in "${MIX_LIST[@]}"; do
    for s in "${SERVER_LIST[@]}"; do
        in_ns $CLIENT timeout 60 dnsperf -s "${ADDR[$s]}" -d "$TMP/q-$m.txt" -n 1 -c 1 -q 20 -t 2 \
            >"$TMP/warm-$m-$s.txt" 2>&1 || true
    done
done

metrics() { in_ns $NODE curl -s -m 2 "http://$METRICS/metrics" | grep '^svclb_dns_' || true; }
has svclbd && metrics >"$TMP/metrics-before.txt"
for ((r = 0; r < ROUNDS; r++)); do
    for m in "${MIX_LIST[@]}"; do
        # The servers' order rotates every round.
        k=${#SERVER_LIST[@]}
        for ((j = 0; j < k; j++)); do
            perf "${SERVER_LIST[$(((j + r) % k))]}" "$m" "r$r"
        done
    done
done
has svclbd && metrics >"$TMP/metrics-after.txt"

# svclbd following changes: the zone mix while svcctl applies, back and
# forth, an EndpointSlice of a headless Service with two sets of pods (as a
# rollout does; each apply changes that Service's records), bounded: DUR + 5 s
# and 100,000 applies; beside a run without the loop in the same round.
if [ "$CHURN" = 1 ] && has svclbd; then
    slice() { # ADDR...
        printf -- '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: churn\n  namespace: default\nspec:\n  clusterIP: None\n  ports:\n  - {name: http, port: 8080, protocol: TCP}\n'
        printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: churn-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: churn\naddressType: IPv4\nports:\n- {name: http, port: 8080, protocol: TCP}\nendpoints:\n'
        local a
        for a in "$@"; do printf -- '- addresses: [%s]\n  conditions: {ready: true}\n' "$a"; done
    }
    slice 10.245.0.1 10.245.0.2 >"$TMP/churn-a.yaml"
    slice 10.245.0.3 10.245.0.4 >"$TMP/churn-b.yaml"
    for ((r = 0; r < ROUNDS; r++)); do
        perf svclbd zone "churn-off-r$r"
        (
            end=$(($(date +%s) + DUR + 5)) k=0
            while [ "$(date +%s)" -lt "$end" ] && [ $k -lt 100000 ]; do
                f=$TMP/churn-a.yaml; [ $((k % 2)) = 1 ] && f=$TMP/churn-b.yaml
                timeout 10 "$BIN/svcctl" --socket "$TMP/svclbd.sock" apply -f "$f" >/dev/null || exit 1
                k=$((k + 1))
            done
            echo "$k" >"$TMP/churn-count-r$r"
        ) &
        cpid=$!
        PIDS+=($cpid)
        sleep 1
        perf svclbd zone "churn-on-r$r"
        wait $cpid || die "the svcctl apply loop failed"
        ask "${ADDR[svclbd]}" churn.default.svc.cluster.local
        want="10.245.0.1 10.245.0.2"
        [ $(($(cat "$TMP/churn-count-r$r") % 2)) = 0 ] && want="10.245.0.3 10.245.0.4"
        [ "$ANS" = "$want" ] || echo "svclbd: churn.default.svc.cluster.local A after the apply loop: expected [$want], got [$ANS]" >>"$CHECKS"
        log "churn round $r: $(cat "$TMP/churn-count-r$r") applies in $((DUR + 5)) s; churn.default -> $ANS (expected $want)"
        echo "churn-r$r $(cat "$TMP/churn-count-r$r") $((DUR + 5))" >>"$TMP/churn.txt"
    done
fi

# ---- summary ---------------------------------------------------------------
{
    echo "dnsperf -l $DUR -c $CLIENTS -T $THREADS -q $OUTSTANDING -t 2; $N Services; $ROUNDS round(s); $(date -u +%FT%TZ)"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r)"
    echo
    python3 - "$RES" "${SERVER_LIST[*]}" "${MIX_LIST[*]}" <<'PY'
import statistics as st, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
servers, mixes = sys.argv[2].split(), sys.argv[3].split()
def runs(tag_pred, m, s):
    return [r for r in rows if tag_pred(r[0]) and r[1] == m and r[2] == s]
main = lambda t: t.startswith("r")
print("| mix | server | q/s (median) | rounds' q/s | lost (sum) | avg latency ms (median) | response codes (last round) | avg response B |")
print("|---|---|---:|---|---:|---:|---|---:|")
med = {}
for m in mixes:
    for s in servers:
        rr = runs(main, m, s)
        if not rr:
            continue
        q = [float(r[3]) for r in rr]
        med[m, s] = st.median(q)
        print(f"| {m} | {s} | {st.median(q):.0f} | {' '.join(f'{x:.0f}' for x in q)} | "
              f"{sum(int(r[6]) for r in rr)} of {sum(int(r[4]) for r in rr)} | "
              f"{st.median(float(r[8]) for r in rr):.3f} | {rr[-1][9]} | {rr[-1][10]} |")
if "svclbd" in servers and len(servers) > 1:
    print()
    others = [s for s in servers if s != "svclbd"]
    print("| mix | " + " | ".join(f"svclbd/{s}" for s in others) + " |")
    print("|---|" + "---:|" * len(others))
    for m in mixes:
        if (m, "svclbd") in med:
            print(f"| {m} | " + " | ".join(f"{med[m, 'svclbd'] / med[m, s]:.2f}" if med.get((m, s)) else "-"
                                          for s in others) + " |")
churn = [r for r in rows if r[0].startswith("churn-")]
if churn:
    off = [float(r[3]) for r in churn if r[0].startswith("churn-off")]
    on = [float(r[3]) for r in churn if r[0].startswith("churn-on")]
    print()
    print(f"svclbd zone mix while following changes: {st.median(on):.0f} q/s (rounds {' '.join(f'{x:.0f}' for x in on)}), "
          f"without the apply loop in the same rounds {st.median(off):.0f} q/s (rounds {' '.join(f'{x:.0f}' for x in off)}); "
          f"lost while following: {sum(int(r[6]) for r in churn if r[0].startswith('churn-on'))}")
PY
    if [ -f "$TMP/churn.txt" ]; then
        echo
        awk '{printf "%s: %d svcctl applies in %d s (%.0f/s)\n", $1, $2, $3, $2 / $3}' "$TMP/churn.txt"
    fi
    if has svclbd; then
        echo
        echo "svclbd DNS counters after the warm-up and after the rounds (/metrics):"
        echo '```'
        paste -d' ' <(cat "$TMP/metrics-before.txt") <(awk '{print "->", $2}' "$TMP/metrics-after.txt")
        echo '```'
    fi
    if [ -s "$CHECKS" ]; then
        echo
        echo "Answers that differ from the generated zone (query: expected, got):"
        sed 's/^/- /' "$CHECKS"
    fi
} >"$TMP/summary.md"
cat "$TMP/summary.md"
[ -n "$OUT" ] && cp "$TMP/summary.md" "$OUT"
if [ -n "${KEEP_RUNS:-}" ]; then cp "$RES" "$KEEP_RUNS"; fi

if [ "$SMOKE" = 1 ]; then
    python3 - "$RES" "${SERVER_LIST[*]}" "${MIX_LIST[*]}" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
bad = []
for s in sys.argv[2].split():
    for m in sys.argv[3].split():
        rr = [r for r in rows if r[1] == m and r[2] == s]
        if not rr:
            bad.append(f"{s} {m}: no run")
            continue
        for r in rr:
            if int(r[5]) == 0:
                bad.append(f"{s} {m} {r[0]}: no query answered")
            if m == "zone" and int(r[6]) != 0:
                bad.append(f"{s} zone {r[0]}: {r[6]} of {r[4]} in-zone queries lost")
if bad:
    print("bench.dns_smoke: FAILED\n  " + "\n  ".join(bad))
    sys.exit(1)
print("bench.dns_smoke: every server answered every mix, no in-zone query lost")
PY
fi
