#!/usr/bin/env bash
# A pod created while svclbd runs: its interface (lxc<pod>) is attached
# through the netlink watch (--pod-iface-prefix), so it serves as a backend
# at once — its replies are reverse-translated at its own veth — and
# `svcctl status` lists it. Also the request limit: an oversized manifest is
# refused, naming the limit, and changes nothing.
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

run_test "hotplug: a pod created after start is attached and serves" test_new_pod_is_attached_and_serves
run_test "limits: an oversized manifest is refused, naming the limit" test_oversized_manifest_is_refused
finish
