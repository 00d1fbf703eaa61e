#!/usr/bin/env bash
# svclbd --external-iface on a node NIC (a veth whose peer is another netns):
# svclb_xdp_lb joins libxdp's dispatcher beside an unrelated XDP program
# loaded with xdp-loader, svclb_tc_ext_in sits on tc ingress and the NIC's
# ifindex is in tx_ports; svcctl status reports it; a daemon restart leaves
# exactly one svclb_xdp_lb; svclbd --uninstall removes ours and leaves the
# other program attached. A bridge (no native XDP) checks the generic-mode
# fallback, and a libxdp without its dispatcher object the degraded direct
# attach.
#
# Where the kernel cannot run libxdp's dispatcher at all (it refuses freplace
# programs: xdp-loader then attaches a program directly, without the
# dispatcher), the coexistence checks cannot run: the test checks instead
# that svclbd refuses the NIC in plain words, runs every other check with
# svclb alone on the NIC, and exits 77 (ctest: skipped) if they all pass.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

for t in xdp-loader bpftool jq tc nsenter; do
    command -v "$t" >/dev/null || fatal_setup "missing tool: $t"
done
topo_init "e2e-xdp-$$"
# NIC and GEN_NIC are a veth and a bridge: auto would pick the tc datapath
# for the veth; this test is about attaching XDP.
DAEMON_FLAGS_EXTRA=(--external-datapath xdp)
PEER_NS=$TOPO_PREFIX-peer
NIC=ext0
GEN_NIC=brx        # a bridge: no native XDP, so generic mode
NIC_IP=192.168.77.1
PEER_IP=192.168.77.2
TOPO_PODS+=("$PEER_NS")  # topo_cleanup deletes it

# libxdp keeps the dispatcher's pins under /sys/fs/bpf/xdp; deleting the
# netns detaches the programs but leaves the pins, so unload through libxdp
# first. Then the usual cleanup (daemon, --uninstall, namespaces, pins).
xdp_on_exit() {
    local rc=$? i
    if ip netns list | grep -q "^$NODE_NS\b"; then
        for i in "$NIC" "$GEN_NIC"; do in_node_t 20 xdp-loader unload "$i" --all >/dev/null 2>&1; done
    fi
    (exit $rc)
    topo_on_exit
}
trap xdp_on_exit EXIT

xdp_status() { in_node_t 20 xdp-loader status "$1" 2>&1; }
ours_in() { grep -cw svclb_xdp_lb <<<"$1"; }
ifindex_of() { in_node ip -o link show "$1" | cut -d: -f1; }
# ext_field NIC FIELD: one field of the NIC's externalInterfaces entry.
ext_field() {
    svcctl status -o json 2>/dev/null |
        jq -r --arg n "$1" --arg f "$2" \
            '[.externalInterfaces[]? | select(.ifname == $n)][0][$f] | if . == null then empty else . end'
}
prog_name() { bpftool prog show id "$1" 2>/dev/null | sed -n 's/.* name \([^ ]*\) .*/\1/p'; }
# tc_ingress IF: what is on IF's tc ingress: `tc filter show` (legacy
# filters) and a line per tcx link svclbd pinned for it, in the same words
# ("<name> ... id <prog id> ").
tc_ingress() {
    in_node_t 10 tc filter show dev "$1" ingress 2>&1
    local idx p id
    idx=$(in_node ip -o link show dev "$1" 2>/dev/null | cut -d: -f1)
    for p in "$BPFFS/links/tcx/$idx-$1-ingress"; do
        [[ -e $p ]] || continue
        id=$(bpftool link show pinned "$p" -j 2>/dev/null | jq -r .prog_id) || continue
        echo "tcx link $(basename "$p"): $(prog_name "$id") id $id "
    done
}
# udp_ok WHAT: datagrams from the peer to the node's UDP server on NIC_IP
# (through the NIC's XDP and tc programs) are answered.
udp_query_nic() { timeout 15 nsenter --net="/run/netns/$PEER_NS" "$PY" -c "$UDP_CLIENT_PY" "$NIC_IP" "$UDP_PORT" "$@"; }
udp_ok() {
    local out; out=$(udp_query_nic 3 8 2>&1)
    assert_eq 3 "$(grep -cx "node from $NIC_IP:$UDP_PORT" <<<"$out")" "$1: UDP answers from $NIC_IP:$UDP_PORT across $NIC: $out"
}
in_tx_ports() {  # IFINDEX (< 256 in a fresh netns): little-endian key bytes
    bpftool map lookup pinned "$BPFFS/tx_ports_v1" key "$1" 0 0 0 >/dev/null 2>&1
}

setup() {
    topo_create_node
    mkdir -p "$CG"
    ip netns add "$PEER_NS"
    in_node ip link add "$NIC" type veth peer name eth0 netns "$PEER_NS"
    in_node ip addr add "$NIC_IP/24" dev "$NIC"
    in_node ip link set "$NIC" up
    in_ns "$PEER_NS" ip link set lo up
    in_ns "$PEER_NS" ip addr add "$PEER_IP/24" dev eth0
    in_ns "$PEER_NS" ip link set eth0 up
    in_node ip link add "$GEN_NIC" type bridge && in_node ip link set "$GEN_NIC" up ||
        fatal_setup "cannot create bridge $GEN_NIC"
    # The unrelated program: XDP_PASS "other_pass", with BTF (libxdp needs
    # it), built by CMake (tests/e2e/bpf/xdp_pass.bpf.c).
    [[ -f $SVCLB_TEST_XDP_PASS ]] || fatal_setup "no $SVCLB_TEST_XDP_PASS (build first)"
    in_node_t 30 xdp-loader load -vv -m native "$NIC" "$SVCLB_TEST_XDP_PASS" >"$TOPO_TMP/xdp-loader.log" 2>&1 ||
        fatal_setup "xdp-loader load: $(cat "$TOPO_TMP/xdp-loader.log")"
    local st; st=$(xdp_status "$NIC")
    [[ $st == *other_pass* ]] || fatal_setup "xdp-loader status does not show other_pass: $st"
    if [[ $st == *xdp_dispatcher* ]]; then
        DISPATCHER=1
        log "libxdp's dispatcher works here: coexistence is checked"
    else
        DISPATCHER=0
        log "SKIP coexistence: xdp-loader attached other_pass without libxdp's dispatcher, which this" \
            "kernel cannot run ($(grep -m1 -o 'Compatibility check.*' "$TOPO_TMP/xdp-loader.log"));" \
            "checking svclb alone on $NIC"
    fi
    IFX=$(ifindex_of "$NIC"); GIFX=$(ifindex_of "$GEN_NIC")
    bg_ns "$NODE_NS" "$PY" -c "$UDP_SERVER_PY" node "$NIC_IP" "$UDP_PORT" >"$TOPO_TMP/udp-node.log" 2>&1
    retry 20 0.2 udp_query_nic 1 8 >/dev/null || fatal_setup "UDP server on $NIC_IP did not answer the peer"
}

test_bad_flags() {
    local out rc
    out=$(in_node_t 30 "$SVCLB_BIN/svclbd" $(daemon_flags) --external-iface nosuch0 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd --external-iface nosuch0 exit status"
    assert_contains "$out" "no interface named nosuch0" "missing NIC error in plain words"
    ((DISPATCHER)) && return 0
    # Without a dispatcher the NIC cannot be shared: a clear refusal, and
    # nothing of ours left behind on it.
    out=$(in_node_t 30 "$SVCLB_BIN/svclbd" $(daemon_flags) --external-iface "$NIC" 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd next to a directly attached XDP program: exit status"
    assert_match "$out" "$NIC already has XDP program other_pass .*dispatcher" "refusal names the program"
    assert_not_contains "$(tc_ingress "$NIC")" svclb "tc filter after the refusal"
    assert_eq 0 "$(ours_in "$(xdp_status "$NIC")")" "svclb_xdp_lb after the refusal"
    assert_contains "$(xdp_status "$NIC")" other_pass "other_pass after the refusal"
    # The rest runs with svclb alone on the NIC.
    in_node_t 20 xdp-loader unload "$NIC" --all >/dev/null 2>&1
    assert_not_contains "$(xdp_status "$NIC")" other_pass "other_pass unloaded"
}

# check_attached WHAT: ours once on each NIC, the other program still there
# (dispatcher), status fields, tc filter, tx_ports; sets XDP_ID.
check_attached() {
    local what=$1 st id tcid
    st=$(xdp_status "$NIC")
    assert_eq 1 "$(ours_in "$st")" "$what: svclb_xdp_lb entries in xdp-loader status $NIC
$st"
    ((DISPATCHER)) && assert_contains "$st" other_pass "$what: other_pass still attached beside ours"
    assert_eq "$IFX" "$(ext_field "$NIC" ifindex)" "$what: status ifindex of $NIC"
    assert_eq native "$(ext_field "$NIC" xdpMode)" "$what: status xdpMode of $NIC"
    id=$(ext_field "$NIC" xdpProgId)
    assert_eq svclb_xdp_lb "$(prog_name "$id")" "$what: status xdpProgId $id is svclb_xdp_lb"
    ((DISPATCHER)) && assert_eq true "$(ext_field "$NIC" xdpDispatcher)" "$what: in libxdp's dispatcher"
    tcid=$(ext_field "$NIC" tcProgId)
    assert_eq svclb_tc_ext_in "$(prog_name "$tcid")" "$what: status tcProgId $tcid is svclb_tc_ext_in"
    assert_match "$(tc_ingress "$NIC")" "svclb_tc_ext_in.* id $tcid " "$what: tc ingress of $NIC"
    assert_eq "$(tc_attach_expected)" "$(ext_field "$NIC" tcAttach)" "$what: status tcAttach of $NIC"
    in_tx_ports "$IFX" || _fail "$what: ifindex $IFX of $NIC not in tx_ports_v1"
    assert_eq 1 "$(ours_in "$(xdp_status "$GEN_NIC")")" "$what: svclb_xdp_lb on $GEN_NIC"
    assert_eq generic "$(ext_field "$GEN_NIC" xdpMode)" "$what: status xdpMode of $GEN_NIC (no native XDP)"
    in_tx_ports "$GIFX" || _fail "$what: ifindex $GIFX of $GEN_NIC not in tx_ports_v1"
    XDP_ID=$id
}

test_attach() {
    daemon_start --external-iface "$NIC" --external-iface "$GEN_NIC" && daemon_wait_ready ||
        { _fail "svclbd did not start with --external-iface"; return; }
    check_attached "first start"
    local txt; txt=$(svcctl status 2>&1)
    assert_match "$txt" $'External Interfaces:\n +NAME +IFINDEX +DATAPATH +XDP-MODE' "svcctl status section"
    assert_match "$(grep -E "^  $NIC " <<<"$txt")" "^  $NIC +$IFX +xdp +native +[0-9]+ +[0-9]+ +(true|false) +--external-datapath xdp\$" \
        "svcctl status row of $NIC"
    udp_ok "with XDP attached"
}

test_restart() {
    local before=$XDP_ID st
    daemon_stop
    assert_eq 0 "$DAEMON_RC" "svclbd exit status on SIGTERM"
    st=$(xdp_status "$NIC")
    assert_eq 1 "$(ours_in "$st")" "svclb_xdp_lb stays attached while svclbd is down"
    assert_contains "$(tc_ingress "$NIC")" svclb_tc_ext_in "tc program stays while svclbd is down"
    daemon_start --external-iface "$NIC" --external-iface "$GEN_NIC" && daemon_wait_ready ||
        { _fail "svclbd did not come back"; return; }
    check_attached "after the restart"
    assert_ne "$before" "$XDP_ID" "the restarted daemon's svclb_xdp_lb replaced the old one"
    udp_ok "after the restart"
}

# uninstall_and_check WHAT OTHER: OTHER=1 if other_pass must survive.
uninstall_and_check() {
    local what=$1 other=$2 out st
    daemon_stop
    out=$(in_node_t 30 "$SVCLB_BIN/svclbd" --uninstall $(daemon_flags) 2>&1)
    assert_eq 0 $? "$what: svclbd --uninstall: $out"
    st=$(xdp_status "$NIC")
    assert_eq 0 "$(ours_in "$st")" "$what: svclb_xdp_lb after --uninstall
$st"
    ((other)) && assert_contains "$st" other_pass "$what: other_pass survives --uninstall"
    assert_eq 0 "$(ours_in "$(xdp_status "$GEN_NIC")")" "$what: svclb_xdp_lb on $GEN_NIC after --uninstall"
    assert_not_contains "$(tc_ingress "$NIC")" svclb "$what: tc filter on $NIC after --uninstall"
    assert_not_contains "$(tc_ingress "$GEN_NIC")" svclb "$what: tc filter on $GEN_NIC after --uninstall"
    [[ ! -e $BPFFS ]] || _fail "$what: $BPFFS left after --uninstall: $(ls "$BPFFS")"
}

test_uninstall() { uninstall_and_check "uninstall" "$DISPATCHER"; }

# Degraded mode: libxdp cannot build its dispatcher (here: its object file
# is not found); on a NIC without other XDP programs svclbd attaches
# svclb_xdp_lb directly, warns, and status says so. A normal restart puts it
# back through libxdp.
test_direct_fallback() {
    local empty=$TOPO_TMP/no-libxdp-objects st
    mkdir -p "$empty"
    ((DISPATCHER)) && in_node_t 20 xdp-loader unload "$NIC" --all >/dev/null 2>&1
    LIBXDP_OBJECT_PATH=$empty daemon_start --external-iface "$NIC" --external-iface "$GEN_NIC" &&
        daemon_wait_ready || { _fail "svclbd did not start without libxdp's dispatcher"; return; }
    assert_eq false "$(ext_field "$NIC" xdpDispatcher)" "status: attached without the dispatcher"
    assert_eq native "$(ext_field "$NIC" xdpMode)" "status: direct attach in native mode"
    assert_eq 1 "$(ours_in "$(xdp_status "$NIC")")" "svclb_xdp_lb attached directly"
    assert_contains "$(cat "$DAEMON_LOG")" "WARNING: libxdp's dispatcher refused svclb_xdp_lb" "warning in the log"
    daemon_stop
    daemon_start --external-iface "$NIC" --external-iface "$GEN_NIC" && daemon_wait_ready ||
        { _fail "svclbd did not come back"; return; }
    st=$(xdp_status "$NIC")
    assert_eq 1 "$(ours_in "$st")" "after the restart through libxdp: one svclb_xdp_lb
$st"
    ((DISPATCHER)) && assert_eq true "$(ext_field "$NIC" xdpDispatcher)" "after the restart: in the dispatcher"
    uninstall_and_check "uninstall after the direct attach" 0
}

setup
run_test "xdp: missing or unshareable NICs are refused in plain words" test_bad_flags
run_test "xdp: --external-iface attaches XDP (libxdp), tc and tx_ports" test_attach
run_test "xdp: SIGTERM keeps it attached; a restart leaves exactly one svclb_xdp_lb" test_restart
run_test "xdp: --uninstall removes ours only" test_uninstall
run_test "xdp: direct attach when libxdp's dispatcher is unusable" test_direct_fallback
if ((TESTS_FAILED == 0 && !DISPATCHER)); then
    echo "$TESTS_PASSED passed; SKIPPED: coexistence with another XDP program (this kernel cannot run libxdp's dispatcher)"
    exit 77
fi
finish
