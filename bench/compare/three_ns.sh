# shellcheck shell=bash
# The three-namespace lab of tc_hook_cost.sh and tc_attach.sh (run.sh's
# routing config): client ns "$P-c" (c0 10.250.0.2) -> node ns "$P-n" (n0
# 10.250.0.1, nb 10.251.0.1, forwarding) -> backend ns "$P-b" (b0
# 10.251.0.11), static neighbours, GRO on n0 (veth NAPI for the generator's
# XDP live frames), every packet reaching b0 counted and dropped by
# bench_ref's ref_tc_sink. The caller sets P, BPFDIR, REFOBJ, GEN, PY, SECS,
# ROUNDS and NAME (its name in messages) and removes the lab with
# three_ns_cleanup (from its EXIT trap).

in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$P-$ns" "$@"; }
# sysfs of a namespace (ip netns exec mounts its own /sys; bpffs stays ours).
sys_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
mac() { sys_ns "$1" cat "/sys/class/net/$2/address"; }
rx() { sys_ns b cat /sys/class/net/b0/statistics/rx_packets; }

# three_ns_up: the lab, bench_ref's programs loaded under $BPFDIR/ref (its
# maps pinned under $BPFDIR/refmaps); sets N0MAC. Exits on a failure to load them.
three_ns_up() {
    local ns
    mkdir -p "$BPFDIR/ref"
    bpftool prog loadall "$REFOBJ" "$BPFDIR/ref" pinmaps "$BPFDIR/refmaps" >/dev/null ||
        { echo "$NAME: loading $REFOBJ failed" >&2; exit 1; }
    for ns in c n b; do ip netns add "$P-$ns"; in_ns "$ns" ip link set lo up; done
    in_ns n ip link add n0 numtxqueues 2 numrxqueues 2 type veth peer name c0 numtxqueues 2 numrxqueues 2 netns "$P-c"
    in_ns n ip link add nb numtxqueues 2 numrxqueues 2 type veth peer name b0 numtxqueues 2 numrxqueues 2 netns "$P-b"
    in_ns n sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    in_ns n ip addr add 10.250.0.1/24 dev n0
    in_ns n ip addr add 10.251.0.1/24 dev nb
    in_ns n ip link set n0 up
    in_ns n ip link set nb up
    in_ns c ip addr add 10.250.0.2/24 dev c0
    in_ns c ip link set c0 up
    in_ns c ip route add default via 10.250.0.1
    in_ns b ip addr add 10.251.0.11/24 dev b0
    in_ns b ip link set b0 up
    in_ns b ip route add default via 10.251.0.1
    in_ns c ip neigh replace 10.250.0.1 lladdr "$(mac n n0)" dev c0
    in_ns n ip neigh replace 10.250.0.2 lladdr "$(mac c c0)" dev n0
    in_ns n ip neigh replace 10.251.0.11 lladdr "$(mac b b0)" dev nb
    in_ns b ip neigh replace 10.251.0.1 lladdr "$(mac n nb)" dev b0
    # Redirected XDP frames need veth NAPI on the receiver: GRO on.
    in_ns n ethtool -K n0 gro on >/dev/null
    in_ns b tc qdisc add dev b0 clsact
    in_ns b tc filter add dev b0 ingress prio 1 bpf direct-action object-pinned "$BPFDIR/ref/ref_tc_sink"
    N0MAC=$(mac n n0)
    three_ns_probe_gen
}

# A kernel that refuses XDP live frames (svclb-trafficgen exits 77; seen on
# 2026-12-07's machines, EPERM), as run.sh does: the AF_PACKET generator
# (sendmmsg; its own ~1 us per frame runs in the same softirq as the node
# path, which compresses every ratio), GRO back off on n0, said on stderr
# and in the table's heading. Sets GEN_FLAGS and GEN_MODE.
three_ns_probe_gen() {
    local rc=0
    GEN_FLAGS=() GEN_MODE=live
    in_ns c timeout 20 "$GEN" --dev c0 --src 10.250.0.2 --dst 10.251.0.11 --dport 9 \
        --dst-mac "$N0MAC" --count 1 --duration 5 >/dev/null 2>"$TMP/probe.err" || rc=$?
    [ "$rc" = 77 ] || return 0
    echo "[$NAME] XDP live frames refused by this kernel ($(tr -d '\n' <"$TMP/probe.err")):" \
        "generator AF_PACKET (its per-frame cost shares the node's softirq: ratios compressed)" >&2
    GEN_FLAGS=(--af-packet) GEN_MODE=af-packet
    in_ns n ethtool -K n0 gro off >/dev/null
}

# three_ns_tcx IFNAME ingress|egress [PROG]: a tcx link of bench_ref's PROG
# (ref_tc_ok) on the node's IFNAME, pinned as $BPFDIR/link-IFNAME-HOOK
# (removing the pin detaches it), by tcx_link.py.
THREE_NS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
three_ns_tcx() {
    in_ns n "$PY" "$THREE_NS_DIR/tcx_link.py" "$1" "$2" "$BPFDIR/ref/${3:-ref_tc_ok}" "$BPFDIR/link-$1-$2"
}

# three_ns_dnat VIP PORT: the floor of an established flow to a Service on
# tcx links: bench_ref's ref_tc_ct_dnat on n0's ingress (one CT lookup, the
# destination rewritten with both checksums; no counters, no backend check),
# ref_tc_ok on the node's three other hooks (svclb runs two programs per
# forwarded packet too), and the one CT entry of the generator's flow
# (10.250.0.2:10000, svclb-trafficgen --flows 1) to VIP:PORT/UDP naming
# 10.251.0.11:5353 (maps/svclb_abi.h's ct_key / ct_value, FORWARD). A packet
# reaches the backend's counter only if it was translated. Undone by
# removing $BPFDIR/link-*.
three_ns_dnat() {
    local vip port
    read -r -a vip <<<"${1//./ }"
    port=$2
    # shellcheck disable=SC2046
    bpftool map update pinned "$BPFDIR/refmaps/ref_ct" \
        key hex 0a fa 00 02 $(printf '%02x ' "${vip[@]}") 27 10 \
        $(printf '%02x %02x' $((port >> 8)) $((port & 255))) 11 00 00 00 \
        value hex 0a fb 00 0b 14 e9 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ||
        { echo "$NAME: writing the reference CT entry failed" >&2; return 1; }
    three_ns_tcx n0 ingress ref_tc_ct_dnat && three_ns_tcx n0 egress &&
        three_ns_tcx nb ingress && three_ns_tcx nb egress
}

three_ns_cleanup() {
    local ns pid
    for ns in c n b; do
        for pid in $(ip netns pids "$P-$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$P-$ns" 2>/dev/null
    done
}

# three_ns_rounds BASE MODE...: ROUNDS rounds, each running every MODE in a
# rotating order: `setmode MODE` (the caller's), then SECS of UDP 64 B (2
# threads, one flow) to `target MODE` ("DST PORT", the caller's); prints the
# per-mode medians, their ratio per round to BASE, and tcx/legacy per round.
three_ns_rounds() {
    local base=$1; shift
    local modes=("$@") r k m dst dport a g z runs=$TMP/runs
    echo "[$NAME] $ROUNDS rounds x ${SECS}s per mode (${modes[*]}), rotating the order, generator ${GEN_MODE:-live}" >&2
    for ((r = 0; r < ROUNDS; r++)); do
        for ((k = 0; k < ${#modes[@]}; k++)); do
            m=${modes[$(((r + k) % ${#modes[@]}))]}
            setmode "$m" || { echo "$NAME: setting up $m failed" >&2; exit 1; }
            read -r dst dport < <(target "$m")
            a=$(rx)
            g=$(in_ns c timeout $((SECS + 20)) "$GEN" --dev c0 --src 10.250.0.2 --dst "$dst" --dport "$dport" \
                --dst-mac "$N0MAC" --threads 2 --duration "$SECS" --count 200000000 --size 64 --flows 1 \
                "${GEN_FLAGS[@]}" --json) ||
                { echo "$NAME: generator failed ($m)" >&2; exit 1; }
            sleep 0.2
            z=$(rx)
            echo "$r $m $("$PY" -c 'import json,sys; print("%.0f" % ((int(sys.argv[3]) - int(sys.argv[2])) / json.loads(sys.argv[1])["seconds"]))' "$g" "$a" "$z")" >>"$runs"
        done
    done
    "$PY" - "$runs" "$base" "${modes[@]}" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r, m, pps = line.split()
    rows.setdefault(r, {})[m] = float(pps)
base, modes = sys.argv[2], sys.argv[3:]
def med(xs): return statistics.median(xs)
print("| mode | forwarded pps (median) | per round vs %s (median, min-max) |" % base)
print("|---|---|---|")
for m in modes:
    v = [x[m] for x in rows.values()]
    rel = [x[m] / x[base] if x[base] else float("nan") for x in rows.values()]
    print("| %s | %.0f | %.3f (%.2f-%.2f) |" % (m, med(v), med(rel), min(rel), max(rel)))
if "dnat" in modes:
    for m in modes:
        if m in ("dnat", base):
            continue
        q = [x[m] / x["dnat"] if x["dnat"] else float("nan") for x in rows.values()]
        print("%s/dnat per round: median %.3f, min-max %.2f-%.2f" % (m, med(q), min(q), max(q)))
if "tcx" not in modes or "legacy" not in modes:
    sys.exit(0)
if "tcxb" in modes:
    q = [x["tcxb"] / x["tcx"] if x["tcx"] else float("nan") for x in rows.values()]
    print("tcxb/tcx per round: median %.3f, min-max %.2f-%.2f (%s)" %
          (med(q), min(q), max(q), " ".join("%.2f" % x for x in q)))
tl = [x["tcx"] / x["legacy"] if x["legacy"] else float("nan") for x in rows.values()]
print("\ntcx/legacy per round: median %.3f, min-max %.2f-%.2f (%s)" %
      (med(tl), min(tl), max(tl), " ".join("%.2f" % x for x in tl)))
EOF
}
