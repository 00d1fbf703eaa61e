#!/usr/bin/env bash
# svclb's tc programs beside a user's legacy tc filter on a pod interface:
# the packets svclb leaves untouched get TC_ACT_UNSPEC (tcx: TCX_NEXT), so
# the filter still sees them; the packets svclb translates end tc's
# processing (TC_ACT_OK). The user's filter drops UDP: a datagram to a pod's
# own address (untouched) is lost, one to a ClusterIP is answered. Both with tcx links (which run before every legacy
# filter; the default on Linux >= 6.6) and with legacy filters (ours at
# priority 0x5c1b, the user's after it).
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup coexist

USER_PRIO=30000   # after svclb's legacy filter (0x5c1b = 23579)
# The user's filter: bench_ref's ref_tc_sink (drops UDP, passes the rest),
# pinned in a dir of the test's own under its bpffs dir (removed with it).
REF_OBJ=$SVCLB_BIN/../bench/bench_ref.bpf.o
USER_PINS=$BPFFS/user-filter

add_user_filter() {
    [[ -e $REF_OBJ ]] || { log "$REF_OBJ missing (build first)"; return 1; }
    mkdir -p "$USER_PINS" && bpftool prog loadall "$REF_OBJ" "$USER_PINS" || return 1
    in_node tc qdisc add dev lxcclient clsact 2>/dev/null  # absent in tcx mode
    in_node tc filter add dev lxcclient ingress prio $USER_PRIO bpf direct-action \
        object-pinned "$USER_PINS/ref_tc_sink"
}
# UDP from the client pod's namespace outside the test cgroup (the socket
# hooks leave it to the tc programs): N datagrams to DST, answers printed.
udp_tc() { timeout 30 nsenter --net="/run/netns/$(pod_ns client)" "$PY" -c "$UDP_CLIENT_PY" "$1" "$UDP_PORT" "$2" 8; }

check_mode() {  # check_mode MODE
    local mode=$1 out
    assert_eq "$mode" "$(svcctl status -o json | jq -r '.interfaces[] | select(.name == "lxcclient") | .tcAttach')" \
        "lxcclient attached as $mode"
    assert_contains "$(in_node tc filter show dev lxcclient ingress)" ref_tc_sink "$mode: the user's filter is there"
    # Not a Service: svclb leaves it untouched, the user's filter drops it.
    out=$(udp_tc "${POD_IP[be1]}" 3)
    assert_eq 3 "$(grep -c '^TIMEOUT$' <<<"$out")" "$mode: UDP to be1's own address reached the user's filter (dropped there): $out"
    # A Service flow: translated by svclb (TC_ACT_OK), the user's filter never sees it.
    out=$(udp_tc "$VIP" 10)
    assert_eq 10 "$(grep -c "^be[12] from $VIP:$UDP_PORT\$" <<<"$out")" "$mode: UDP through $VIP (translated) answered"
}

test_tcx() {
    add_user_filter || { _fail "could not add the user's filter"; return; }
    check_mode "$(SVCLB_TC_ATTACH='' tc_attach_expected)"
}

test_legacy() {
    daemon_stop
    daemon_start --tc-attach legacy && daemon_wait_ready || { _fail "svclbd --tc-attach legacy did not start"; return; }
    check_mode legacy
}

run_test "coexist: default attach, a later legacy filter sees what svclb leaves untouched" test_tcx
run_test "coexist: --tc-attach legacy, a later filter sees what svclb leaves untouched" test_legacy
in_node tc filter del dev lxcclient ingress prio $USER_PRIO 2>/dev/null
rm -rf "$USER_PINS"
finish
