#!/usr/bin/env bash
# A pod created while svclbd runs: its interface (lxc<pod>) is attached
# through the netlink watch (--pod-iface-prefix), so it serves as a backend
# at once — its replies are reverse-translated at its own veth — and
# `svcctl status` lists it; when its interface is deleted, the pins of its
# tcx links go. Also the request limit: an oversized manifest is refused,
# naming the limit, and changes nothing. Last, --uninstall leaves no tcx
# link, pin or legacy filter.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

POD_IP[be3]=10.244.1.13

e2e_setup hotplug

attached() {
    svcctl status -o json 2>/dev/null | jq -e --arg i "$1" \
        '[.interfaces[]? | select(.name == $i and .progId > 0 and .egressProgId > 0)] | length == 1' >/dev/null
}

test_new_pod_is_attached_and_serves() {
    assert_fails "lxcbe3 is not attached before the pod exists" attached lxcbe3
    topo_add_pod be3 "${POD_IP[be3]}"
    start_backend be3
    retry 50 0.2 eval "[[ \$(in_pod_t 3 client curl -s -m 1 http://${POD_IP[be3]}:$HTTP_PORT/) == be3 ]]" \
        || { _fail "HTTP server in be3 did not come up"; return; }
    retry 50 0.1 attached lxcbe3
    assert_ok "svcctl status lists lxcbe3 with a program (netlink watch)" attached lxcbe3
    e2e_apply "$(endpoints_yaml only-be3 "${POD_IP[be3]}")"
    local out
    out=$(http_get_many client 10 "http://$VIP/")
    assert_eq 10 "$(count_lines "$out" be3)" "10 curls through $VIP answered by the new pod be3"
}

test_oversized_manifest_is_refused() {
    local big=$TOPO_TMP/big.yaml before after out
    {
        cat "$SVCLB_EXAMPLES/web-service.yaml"
        head -c $((16 * 1024 * 1024)) /dev/zero | tr '\0' '#'
        echo
    } >"$big"
    before=$(svcctl get svc -o json 2>&1)
    out=$(svcctl apply -f "$big" 2>&1) && _fail "an oversized manifest was accepted"
    assert_contains "$out" "MiB" "the error names the size limit"
    after=$(svcctl get svc -o json 2>&1)
    assert_eq "$before" "$after" "nothing changed"
}

pins_of() { ls "$BPFFS/links/tcx/" 2>/dev/null | grep -E "^[0-9]+-$1-(ingress|egress)\$"; }
legacy_filters() {  # svclb's legacy tc filters on the node's lxc interfaces
    local i
    for i in $(in_node ip -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1 | grep '^lxc'); do
        { in_node tc filter show dev "$i" ingress; in_node tc filter show dev "$i" egress; } 2>/dev/null |
            grep -q svclb_ && echo "$i"
    done
}

# The pod goes (its veth deleted): the pins of its tcx links go with it,
# status no longer lists it, the other pods keep theirs.
test_deleted_pod_leaves_no_pin() {
    local mode; mode=$(tc_attach_expected)
    e2e_apply "$SVCLB_EXAMPLES/web-endpoints.yaml"
    assert_eq "$mode" "$(svcctl status -o json | jq -r --arg i lxcbe3 '.interfaces[] | select(.name == $i) | .tcAttach')" \
        "lxcbe3 attached as $mode"
    if [[ $mode == tcx ]]; then
        assert_eq 2 "$(pins_of lxcbe3 | wc -l)" "lxcbe3's two tcx links are pinned"
    else
        assert_eq "" "$(pins_of lxcbe3)" "no tcx pins in legacy mode"
    fi
    in_node ip link del lxcbe3 || { _fail "could not delete lxcbe3"; return; }
    retry 50 0.1 eval '[[ -z $(pins_of lxcbe3) ]]'
    assert_eq "" "$(pins_of lxcbe3)" "no pin of the deleted lxcbe3 left"
    assert_fails "status no longer lists lxcbe3" attached lxcbe3
    assert_ok "lxcclient keeps its programs" attached lxcclient
    [[ $mode == tcx ]] && assert_eq 2 "$(pins_of lxcclient | wc -l)" "lxcclient keeps its two pins"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "after the pod went"
}

# --uninstall: no tcx link of svclb stays (the links pinned before are gone
# from the kernel, bpftool), no pin, no legacy filter.
test_uninstall_leaves_no_link() {
    local ids=() p id out
    for p in "$BPFFS"/links/tcx/*; do
        [[ -e $p ]] || continue
        id=$(bpftool link show pinned "$p" -j 2>/dev/null | jq -r .id) && ids+=("$id")
    done
    [[ $(tc_attach_expected) == tcx ]] && assert_ge "${#ids[@]}" 4 "tcx links pinned before the uninstall"
    daemon_stop
    # shellcheck disable=SC2046
    out=$(in_node_t 30 "$SVCLB_BIN/svclbd" --uninstall $(daemon_flags) 2>&1)
    assert_eq 0 "$?" "svclbd --uninstall exit status: $out"
    assert_fails "no bpffs dir $BPFFS left" test -e "$BPFFS"
    for id in "${ids[@]}"; do
        assert_fails "tcx link $id is gone from the kernel" bpftool link show id "$id"
    done
    assert_eq "" "$(legacy_filters)" "no svclb legacy tc filter left"
}

run_test "hotplug: a pod created after start is attached and serves" test_new_pod_is_attached_and_serves
run_test "limits: an oversized manifest is refused, naming the limit" test_oversized_manifest_is_refused
run_test "hotplug: a deleted pod interface leaves no pinned tcx link" test_deleted_pod_leaves_no_pin
run_test "uninstall: no tcx link, pin or legacy filter of svclb is left" test_uninstall_leaves_no_link
finish
