#!/usr/bin/env bash
# Access control (issue 6): the API socket is root-only (0600) unless
# --socket-group grants a group (root:GROUP, 0660); the metrics listener is
# loopback-only by default and read-only; svclbd refuses to start without
# the capabilities it needs and names them.
#
# Users: 65534 (nobody, group nogroup 65534) and 65533 (no entry, no group):
# no account or group is created on the host.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

topo_init "fz-acl-$$"
# The socket in a dir everyone may traverse, so a refusal comes from the
# socket's own mode, and svcctl where every user may run it.
chmod 0711 "$TOPO_TMP"
mkdir -m 0755 "$TOPO_TMP/run"
SOCK=$TOPO_TMP/run/svclbd.sock
install -m 0755 "$SVCLB_BIN/svcctl" "$TOPO_TMP/run/svcctl"
SVCCTL=$TOPO_TMP/run/svcctl
topo_create_node || fatal_setup "node namespace"
mkdir -p "$CG"

# as_user UID GID [GROUPS] CMD...: CMD as that user, no other groups unless
# GROUPS (comma list) is given ("-" for none).
as_user() {
    local uid=$1 gid=$2 groups=$3; shift 3
    local g=(--clear-groups); [[ $groups != - ]] && g=(--groups="$groups")
    timeout 20 setpriv --reuid="$uid" --regid="$gid" "${g[@]}" -- "$@"
}
sock_mode() { stat -c '%a %U %G' "$SOCK"; }

test_default_root_only() {
    daemon_start && daemon_wait_ready || { _fail "svclbd did not start"; return; }
    assert_eq "600 root root" "$(sock_mode)" "socket mode and owner by default"
    assert_ok "root may use the API" "$SVCCTL" --socket "$SOCK" status
    local out rc
    out=$(as_user 65534 65534 - "$SVCCTL" --socket "$SOCK" status 2>&1); rc=$?
    assert_ne 0 "$rc" "svcctl status as nobody exit status"
    assert_contains "$out" "Permission denied" "svcctl status as nobody"
    assert_contains "$out" "$SOCK" "the error names the socket"
}

test_socket_group() {
    daemon_stop
    # Default metrics address this time (checked below).
    daemon_flags() {
        echo --bpffs "$BPFFS" --pod-iface-prefix lxc --state-dir "$STATE_DIR" \
            --socket "$SOCK" --service-cidr "$SERVICE_CIDR" --cgroup "$CG"
    }
    daemon_start --socket-group nogroup && daemon_wait_ready || { _fail "svclbd did not start"; return; }
    assert_eq "660 root nogroup" "$(sock_mode)" "socket mode and owner with --socket-group nogroup"
    local out rc
    out=$(as_user 65534 65534 - "$SVCCTL" --socket "$SOCK" status -o json 2>&1); rc=$?
    assert_eq 0 "$rc" "svcctl status as nobody (primary group nogroup): $out"
    assert_match "$(jq -r .bpffs <<<"$out" 2>/dev/null)" "^$BPFFS\$" "status answer for a group member"
    out=$(as_user 65533 65533 65534 "$SVCCTL" --socket "$SOCK" get svc 2>&1); rc=$?
    assert_eq 0 "$rc" "svcctl as uid 65533 with supplementary group nogroup: $out"
    out=$(as_user 65533 65533 - "$SVCCTL" --socket "$SOCK" status 2>&1); rc=$?
    assert_ne 0 "$rc" "svcctl status as a user outside the group"
    assert_contains "$out" "Permission denied" "svcctl status as a user outside the group"

    # Metrics: loopback by default, GET/HEAD only.
    local listen
    listen=$(in_node ss -ltnH 2>/dev/null | awk '{print $4}' | grep ':9810$' || true)
    assert_eq "127.0.0.1:9810" "$listen" "default metrics listener"
    assert_eq 200 "$(in_node_t 5 curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9810/metrics)" "GET /metrics"
    local m
    for m in POST PUT DELETE; do
        assert_eq 405 "$(in_node_t 5 curl -s -o /dev/null -w '%{http_code}' -X "$m" -d x http://127.0.0.1:9810/metrics)" "$m /metrics"
    done
}

test_unknown_group() {
    daemon_stop
    local out rc
    out=$(in_node_t 20 "$SVCLB_BIN/svclbd" $(daemon_flags) --socket-group "no-such-group-$$" 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd with an unknown --socket-group"
    assert_contains "$out" "--socket-group no-such-group-$$: no such group" "message for an unknown group"
    [[ -e $SOCK ]] && [[ $(sock_mode) != "600 root root" ]] && _fail "a socket with group access was left behind"
    return 0
}

# A bad --metrics-addr is refused in the user's words before anything is
# loaded or pinned (it used to throw out of std::stoi after pinning maps).
test_bad_metrics_addr() {
    daemon_stop
    local out rc bpffs=/sys/fs/bpf/svclb-acl-bad-$$
    out=$(in_node_t 20 "$SVCLB_BIN/svclbd" --bpffs "$bpffs" --pod-iface-prefix lxc --state-dir "$STATE_DIR" \
        --socket "$SOCK.bad" --service-cidr "$SERVICE_CIDR" --cgroup "$CG" --metrics-addr 127.0.0.1:abc 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd with --metrics-addr 127.0.0.1:abc"
    assert_contains "$out" "--metrics-addr 127.0.0.1:abc: the port must be a number from 0 to 65535" "message for a bad port"
    if [[ -e $bpffs ]]; then rm -rf "$bpffs"; _fail "maps were pinned before the flag was checked"; fi
    return 0
}

# A --service-cidr svclbd cannot allocate from (not a CIDR, two of one
# family, more than two) is refused at start in the user's words, nothing
# pinned. (One per family is dual-stack: tests/e2e/dual_stack.sh.)
test_bad_service_cidr() {
    daemon_stop
    local out rc c bpffs=/sys/fs/bpf/svclb-acl-cidr-$$
    for c in "10.96.0.0/12,10.100.0.0/16|two CIDRs must be of different families" \
             "fd00:10:96::/112,10.96.0.0/12,10.97.0.0/16|at most two CIDRs" \
             "fd00:10:96::/129|is not a CIDR" \
             "10.96.0.0/33|\"10.96.0.0/33\" is not a CIDR"; do
        out=$(in_node_t 20 "$SVCLB_BIN/svclbd" --bpffs "$bpffs" --pod-iface-prefix lxc --state-dir "$STATE_DIR" \
            --socket "$SOCK.bad" --service-cidr "${c%%|*}" --cgroup "$CG" 2>&1); rc=$?
        assert_ne 0 "$rc" "svclbd with --service-cidr ${c%%|*}"
        assert_contains "$out" "${c#*|}" "message for --service-cidr ${c%%|*}"
    done
    if [[ -e $bpffs ]]; then rm -rf "$bpffs"; _fail "maps were pinned before the flag was checked"; fi
    return 0
}

# svclbd as root minus CAPS (comma list of setpriv names): must refuse and
# name them. Runs with the daemon stopped, so nothing else can fail first.
refuses_without() {
    local caps=$1 want=$2 drop out rc
    drop=$(sed 's/\([a-z_]*\)/-\1/g' <<<"$caps")
    out=$(in_node_t 20 setpriv --inh-caps="$drop" --bounding-set="$drop" -- \
        "$SVCLB_BIN/svclbd" $(daemon_flags) 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd without $caps: exit status"
    assert_contains "$out" "svclbd: missing capabilities: $want (run as root or grant them)" "svclbd without $caps"
}

test_capabilities() {
    daemon_stop
    # CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON in the kernel, so
    # those two are only missing when it is gone too.
    refuses_without net_admin CAP_NET_ADMIN
    refuses_without bpf,sys_admin CAP_BPF
    refuses_without perfmon,sys_admin CAP_PERFMON
    refuses_without bpf,net_admin,sys_admin "CAP_BPF, CAP_NET_ADMIN"
    refuses_without net_bind_service "CAP_NET_BIND_SERVICE (--cluster-dns serves port 53; none turns it off)"
    local out rc
    out=$(as_user 65534 65534 - "$SVCLB_BIN/svclbd" $(daemon_flags) 2>&1); rc=$?
    assert_ne 0 "$rc" "svclbd as nobody: exit status"
    assert_contains "$out" "svclbd: missing capabilities: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON" "svclbd as nobody"
    # Not over-demanding: with bpffs mounted, CAP_SYS_ADMIN is not needed.
    out=$(in_node timeout -s TERM 6 setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- \
        "$SVCLB_BIN/svclbd" $(daemon_flags) 2>&1)
    assert_contains "$out" "svclbd: ready" "svclbd without CAP_SYS_ADMIN (bpffs mounted)"
    # Nothing was left attached or locked: a full-capability start works.
    daemon_start && daemon_wait_ready || _fail "svclbd with every capability did not start afterwards"
}

run_test "access: API socket is root-only by default" test_default_root_only
run_test "access: --socket-group grants that group, and only it; metrics loopback, read-only" test_socket_group
run_test "access: unknown --socket-group is refused" test_unknown_group
run_test "access: a bad --metrics-addr is refused before anything is pinned" test_bad_metrics_addr
run_test "access: a --service-cidr svclbd cannot allocate from is refused at start" test_bad_service_cidr
run_test "access: missing capabilities are named" test_capabilities
finish
