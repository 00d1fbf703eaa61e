#!/usr/bin/env bash
# The svclb .deb end to end (what CI's fresh Debian root runs, and the host):
#  - scripts/package.sh builds it; dpkg-deb shows its metadata (shlibdeps
#    dependencies), files, conffile and maintainer scripts;
#  - `dpkg -i` installs it system-wide (postinst enables the unit through
#    deb-systemd-helper; where systemd runs, a policy-rc.d keeps it from
#    starting the real service); `systemd-analyze verify` checks the unit
#    when systemd-analyze exists;
#  - svclbd is started as the unit starts it: the installed unit's
#    ExecStart with /etc/default/svclbd's SVCLBD_ARGS, only the unit's
#    capabilities (setpriv: bounding, inheritable and ambient sets, no new
#    privileges), its RuntimeDirectory and StateDirectory; in a network
#    namespace of this test with a veth to attach to, a bpffs dir and a
#    cgroup of its own (the args say so); the installed svcctl (default
#    socket) answers, applies a Service, completion is installed;
#  - an upgrade (dpkg -i over itself) keeps the dataplane and the conffile;
#  - SIGTERM leaves the dataplane (pins) in place; `dpkg --purge` (prerm's
#    `svclbd --uninstall`, run in that namespace) removes it: no pins, no tc
#    filter, no cgroup program, no file of the package, no /var/lib/svclb,
#    /run/svclb, /etc/default/svclbd or enablement state.
# It refuses to run where svclb is installed already or a path it would
# remove exists, and purges the package (and cleans what a failed purge
# left) on any exit. Run it under /tmp/svclb-ns.lock: /var/lib/svclb and
# /run/svclb are fixed paths.
set -u
export LC_ALL=C
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$REPO/build}
source "$REPO/tests/testlib/assert.sh"

[[ $(id -u) == 0 ]] || { fatal_setup "needs root (dpkg -i, network namespace, bpffs)"; finish; }
for t in dpkg dpkg-deb setpriv nsenter ip tc bpftool jq; do
    command -v "$t" >/dev/null || { fatal_setup "missing tool: $t"; finish; }
done
if dpkg-query -W -f='${Status}' svclb 2>/dev/null | grep -q installed; then
    fatal_setup "svclb is installed on this machine already: not touching it"; finish
fi
# The unit's enablement as deb-systemd-helper records it (postinst enables
# it also without a running systemd; postrm purge removes it all).
SYSTEMD_STATE=(/etc/systemd/system/multi-user.target.wants/svclbd.service
    /etc/systemd/system/svclbd.service
    /var/lib/systemd/deb-systemd-helper-enabled/svclbd.service.dsh-also
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/svclbd.service
    /var/lib/systemd/deb-systemd-helper-masked/svclbd.service)
for p in /var/lib/svclb /run/svclb /etc/default/svclbd /usr/sbin/svclbd /usr/bin/svcctl "${SYSTEMD_STATE[@]}"; do
    [[ -e $p || -L $p ]] && { fatal_setup "$p exists: the package would own or remove it; not running"; finish; }
done
# Where systemd runs, postinst would start the real svclbd.service:
# policy-rc.d (Debian's switch, honoured by deb-systemd-invoke) forbids it
# while this test runs.
POLICY_RC=""
if [[ -d /run/systemd/system && ! -e /usr/sbin/policy-rc.d ]]; then
    POLICY_RC=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# tests/packaging/deb.sh (removed when it ends)\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
fi

NS=svclb-pkg-$$
TMP=$(mktemp -d /tmp/svclb-pkg.XXXXXX)
BPFFS=/sys/fs/bpf/svclb-pkg-$$
# The cgroup2 hierarchy may be /sys/fs/cgroup or, on a hybrid host, /sys/fs/cgroup/unified.
CG2_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CG2_ROOT ]] || { fatal_setup "no cgroup2 mount in /proc/mounts"; finish; }
CG=$CG2_ROOT/svclb-pkg-$$
UNIT=/lib/systemd/system/svclbd.service
DAEMON_PID=""
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
# svclb's programs on pkg0's tc ingress: legacy filters and pinned tcx links.
tc_progs_pkg0() {
    local n
    n=$(in_ns tc filter show dev pkg0 ingress 2>/dev/null | grep -c svclb_)
    echo $((n + $(ls "$BPFFS/links/tcx/" 2>/dev/null | grep -c -- '-pkg0-ingress$')))
}

stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=""
}

cleanup() {
    stop_daemon
    if dpkg-query -W -f='${Status}' svclb 2>/dev/null | grep -q installed ||
        dpkg-query -W -f='${Status}' svclb 2>/dev/null | grep -q config-files; then
        echo "cleanup: purging svclb" >&2
        if ip netns list | grep -q "^$NS\b"; then
            timeout 120 nsenter --net="/run/netns/$NS" dpkg --purge svclb >/dev/null 2>&1 ||
                SVCLB_SKIP_UNINSTALL=1 timeout 120 dpkg --purge svclb >/dev/null 2>&1
        else
            SVCLB_SKIP_UNINSTALL=1 timeout 120 dpkg --purge svclb >/dev/null 2>&1
        fi
    fi
    # What a failed purge may have left (the paths were checked absent at start).
    if ip netns list | grep -q "^$NS\b"; then
        [[ -d $BPFFS && -n ${BUILD_DIR:-} && -x $BUILD_DIR/bin/svclbd ]] &&
            timeout 20 nsenter --net="/run/netns/$NS" "$BUILD_DIR/bin/svclbd" --bpffs "$BPFFS" \
                --cgroup "$CG" --uninstall >/dev/null 2>&1
        ip netns del "$NS" 2>/dev/null
    fi
    rm -rf /var/lib/svclb /run/svclb
    local p
    for p in "${SYSTEMD_STATE[@]}"; do
        [[ -e $p || -L $p ]] || continue
        DPKG_MAINTSCRIPT_PACKAGE=svclb DPKG_MAINTSCRIPT_NAME=postrm deb-systemd-helper purge svclbd.service
        DPKG_MAINTSCRIPT_PACKAGE=svclb DPKG_MAINTSCRIPT_NAME=postrm deb-systemd-helper unmask svclbd.service
        break
    done >/dev/null 2>&1
    rm -rf "$BPFFS" 2>/dev/null
    [[ -d $CG ]] && rmdir "$CG" 2>/dev/null
    rm -rf "$TMP"
    [[ -n $POLICY_RC ]] && rm -f "$POLICY_RC"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

DEB=""
test_build_and_contents() {
    local out
    out=$(bash "$REPO/scripts/package.sh" 2>"$TMP/package.log")
    DEB=$(tail -1 <<<"$out")
    assert_match "$DEB" '/svclb_[0-9.]+_[a-z0-9]+\.deb$' "scripts/package.sh prints the .deb's path" ||
        { tail -20 "$TMP/package.log" >&2; return 1; }
    [[ -f $DEB ]] || { _fail "$DEB does not exist"; return 1; }
    assert_eq "svclb" "$(dpkg-deb -f "$DEB" Package)" "package name"
    assert_eq "$(sed -n 's/^project(svclb VERSION \([0-9.]*\).*/\1/p' "$REPO/CMakeLists.txt")" \
        "$(dpkg-deb -f "$DEB" Version)" "version from CMakeLists.txt"
    assert_eq "$(dpkg --print-architecture)" "$(dpkg-deb -f "$DEB" Architecture)" "architecture"
    local deps
    deps=$(dpkg-deb -f "$DEB" Depends)
    # From dpkg-shlibdeps: the libraries svclbd and svcctl link.
    for lib in libbpf1 libxdp1 libevent- libyaml-0-2 libmnl0 libcap2 libc6 libstdc++6; do
        assert_contains "$deps" "$lib" "Depends (shlibdeps) names $lib"
    done
    local files
    files=$(dpkg-deb -c "$DEB" | awk '{ print $1, $NF }')
    for f in "-rwxr-xr-x ./usr/sbin/svclbd" "-rwxr-xr-x ./usr/bin/svcctl" \
        "-rw-r--r-- ./lib/systemd/system/svclbd.service" "-rw-r--r-- ./etc/default/svclbd" \
        "-rw-r--r-- ./usr/share/bash-completion/completions/svcctl" \
        "-rw-r--r-- ./usr/share/doc/svclb/deploy.md" \
        "-rw-r--r-- ./usr/share/doc/svclb/kubernetes/daemonset.yaml"; do
        assert_contains "$files" "$f" "the package holds ${f#* }"
    done
    assert_not_contains "$files" ".bpf.o" "no separate BPF object (embedded in svclbd)"
    assert_not_contains "$files" "unit_tests" "no test binaries"
    # The image is built from this package (deploy/container/Containerfile,
    # not built here: no container engine) and named by the DaemonSet.
    local glob
    glob=$(awk '$1 == "COPY" { print $2 }' "$REPO/deploy/container/Containerfile")
    # shellcheck disable=SC2053  # $glob is a pattern
    [[ build/$(basename "$DEB") == $glob ]] ||
        _fail "Containerfile's COPY $glob does not match build/$(basename "$DEB")"
    assert_eq "image: svclbd:$(dpkg-deb -f "$DEB" Version)" \
        "$(grep -o 'image: svclbd:[^ ]*' "$REPO/deploy/kubernetes/daemonset.yaml")" \
        "the DaemonSet's image is this version's"
    mkdir -p "$TMP/control"
    dpkg-deb -e "$DEB" "$TMP/control" || { _fail "dpkg-deb -e"; return 1; }
    assert_eq "/etc/default/svclbd" "$(cat "$TMP/control/conffiles")" "conffiles"
    local s
    for s in postinst prerm postrm; do
        [[ -x $TMP/control/$s ]] || _fail "maintainer script $s missing or not executable"
        sh -n "$TMP/control/$s" || _fail "maintainer script $s: sh syntax error"
    done
}

test_install_start_purge() {
    [[ -n $DEB && -f $DEB ]] || { _fail "no package built"; return; }
    local out
    out=$(dpkg -i "$DEB" 2>&1) || { _fail "dpkg -i failed: $out"; return; }
    assert_eq "install ok installed" "$(dpkg-query -W -f='${Status}' svclb)" "dpkg -i: installed"
    assert_ok "the installed svclbd runs" /usr/sbin/svclbd --help
    assert_eq "$UNIT" "$(readlink /etc/systemd/system/multi-user.target.wants/svclbd.service)" \
        "postinst enabled the unit (deb-systemd-helper, also without a running systemd)"
    if command -v systemd-analyze >/dev/null; then
        out=$(systemd-analyze verify "$UNIT" 2>&1)
        assert_eq "" "$out" "systemd-analyze verify $UNIT: no complaint"
    else
        echo "note: no systemd-analyze here, the unit is not verified" >&2
    fi

    # The namespace svclbd runs in: one veth to attach to, and a cgroup.
    ip netns add "$NS" || { _fail "ip netns add"; return; }
    in_ns ip link set lo up
    in_ns ip link add pkg0 type veth peer name pkg1 && in_ns ip link set pkg0 up &&
        in_ns ip link set pkg1 up || { _fail "veth in $NS"; return; }
    mkdir "$CG" || { _fail "mkdir $CG"; return; }

    # The admin's configuration (a conffile), as docs/deploy.md shows it.
    sed -i "s|^SVCLBD_ARGS=.*|SVCLBD_ARGS=\"--bpffs $BPFFS --cgroup $CG --iface pkg0\"|" /etc/default/svclbd
    # What systemd does for the unit: the directories, the environment file,
    # ExecStart with $SVCLBD_ARGS split at whitespace, the capability sets.
    local exec caps
    exec=$(sed -n 's/^ExecStart=//p' "$UNIT")
    assert_eq '/usr/sbin/svclbd $SVCLBD_ARGS' "$exec" "the unit's ExecStart" || return
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT")
    assert_eq "$caps" "$(sed -n 's/^AmbientCapabilities=//p' "$UNIT")" "ambient = bounding set"
    local set
    set=$(tr ' ' '\n' <<<"$caps" | sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd,)
    [[ $(sed -n 's/^RuntimeDirectory=//p' "$UNIT") == svclb ]] && mkdir -p -m 0755 /run/svclb
    [[ $(sed -n 's/^StateDirectory=//p' "$UNIT") == svclb ]] && mkdir -p -m 0700 /var/lib/svclb
    (
        set -a
        # shellcheck disable=SC1091
        . /etc/default/svclbd
        set +a
        # shellcheck disable=SC2086  # systemd splits an unquoted $VAR at whitespace
        exec nsenter --net="/run/netns/$NS" setpriv --no-new-privs \
            --bounding-set="-all,$set" --inh-caps="-all,$set" --ambient-caps="-all,$set" \
            -- /usr/sbin/svclbd $SVCLBD_ARGS
    ) >"$TMP/svclbd.log" 2>&1 &
    DAEMON_PID=$!
    local i up=0
    for ((i = 0; i < 100; i++)); do
        in_ns timeout 5 /usr/bin/svcctl status >/dev/null 2>&1 && { up=1; break; }
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    ((up)) || { _fail "svclbd (as the unit starts it) did not answer svcctl status:
$(tail -20 "$TMP/svclbd.log")"; return; }
    # nsenter and setpriv exec: $DAEMON_PID is svclbd, with exactly the unit's set.
    local want=0 c n
    for c in $caps; do
        n=$(awk -v c="$c" '$1 == "#define" && $2 == c { print $3 }' /usr/include/linux/capability.h)
        [[ -n $n ]] || { _fail "capability $c unknown to linux/capability.h"; continue; }
        want=$((want | (1 << n)))
    done
    assert_eq "$(printf '%016x' "$want")" "$(awk '/^CapEff/ { print $2 }' "/proc/$DAEMON_PID/status")" \
        "svclbd runs with the unit's capabilities only"
    out=$(in_ns timeout 10 /usr/bin/svcctl status 2>&1)
    assert_contains "$out" "pkg0" "svcctl status (default socket /run/svclb/svclbd.sock) shows the attached veth"
    assert_ok "svcctl apply" in_ns timeout 10 /usr/bin/svcctl apply -f "$REPO/examples/web-service.yaml"
    out=$(in_ns timeout 10 /usr/bin/svcctl get svc -o name 2>&1)
    assert_eq "service/web" "$out" "svcctl get svc"
    assert_ge "$(find /var/lib/svclb -type f | wc -l)" 1 "desired state persisted in /var/lib/svclb"
    assert_ge "$(tc_progs_pkg0)" 1 "tc program on pkg0"
    assert_ge "$(bpftool cgroup show "$CG" 2>/dev/null | grep -c svclb_)" 1 "socket programs on the cgroup"
    out=$(bash -c 'source /usr/share/bash-completion/completions/svcctl && complete -p svcctl' 2>&1)
    assert_eq "complete -F _svcctl svcctl" "$out" "bash completion installed"

    # An upgrade (the same package again: prerm upgrade, postinst configure
    # with the old version) leaves the running dataplane alone and keeps the
    # admin's /etc/default/svclbd (a conffile; stdin closed: a prompt fails).
    out=$(in_ns timeout 120 dpkg -i "$DEB" </dev/null 2>&1) || { _fail "dpkg -i over itself failed: $out"; return; }
    assert_not_contains "$out" "removed svclb from this node" "an upgrade does not uninstall"
    assert_contains "$(cat /etc/default/svclbd)" "--iface pkg0" "the admin's SVCLBD_ARGS kept"
    assert_ok "svclbd still serves after the upgrade" in_ns timeout 10 /usr/bin/svcctl get svc web
    assert_ge "$(tc_progs_pkg0)" 1 "tc program stays across the upgrade"

    # systemctl stop: SIGTERM. The dataplane stays by design.
    kill -TERM "$DAEMON_PID"
    for ((i = 0; i < 100; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$DAEMON_PID"
    assert_eq 0 "$?" "svclbd exits 0 on SIGTERM"
    DAEMON_PID=""
    assert_ge "$(find "$BPFFS" -mindepth 1 | wc -l)" 1 "pins stay after SIGTERM"
    assert_ge "$(tc_progs_pkg0)" 1 "tc program stays after SIGTERM"

    # dpkg --purge on this "host" (the namespace): prerm removes the dataplane.
    out=$(in_ns timeout 120 dpkg --purge svclb 2>&1) || { _fail "dpkg --purge failed: $out"; return; }
    assert_contains "$out" "removed svclb from this node ($BPFFS)" "prerm ran svclbd --uninstall with SVCLBD_ARGS"
    assert_eq "" "$(dpkg-query -W -f='${Status}' svclb 2>/dev/null)" "purged: dpkg knows no svclb"
    local f left=()
    for f in /usr/sbin/svclbd /usr/bin/svcctl "$UNIT" /etc/default/svclbd \
        /usr/share/bash-completion/completions/svcctl /usr/share/doc/svclb /var/lib/svclb /run/svclb \
        "${SYSTEMD_STATE[@]}" "$BPFFS"; do
        [[ -e $f || -L $f ]] && left+=("$f")
    done
    assert_eq "" "${left[*]}" "nothing of the package left"
    assert_eq 0 "$(tc_progs_pkg0)" "no tc program on pkg0"
    assert_eq 0 "$(bpftool cgroup show "$CG" 2>/dev/null | grep -c svclb_)" "no socket program on the cgroup"
}

run_test "scripts/package.sh builds the .deb: metadata, files, scripts" test_build_and_contents
run_test "installs, starts as the unit does, purges cleanly" test_install_start_purge
finish
