#!/usr/bin/env bash
# svcctl trace SRC[:PORT] DST:PORT: computed from the live maps, it must agree
# with what the packet path then does. A Maglev Service: for 12 source ports
# trace names a backend BEFORE the flow exists, then a curl from the client
# pod on that source port (tc path: the process is outside svclbd's cgroup)
# must be answered by that backend, and trace then shows the flow's CT entry.
# sessionAffinity: after one connection trace names the client's backend.
# No endpoints: REJECT; an address that is no frontend: PASS; bad input: an
# error in svcctl's words and exit 1.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup trace

MVIP=10.96.0.30
AVIP=10.96.0.31
svc() {  # NAME VIP ALGO [affinity]
    local f=$TOPO_TMP/$1.yaml
    {
        printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\n' "$1"
        printf '  annotations: {svclb.io/lb-algorithm: %s}\nspec:\n  clusterIP: %s\n' "$3" "$2"
        [[ ${4:-} == affinity ]] && printf '  sessionAffinity: ClientIP\n'
        printf '  ports: [{name: http, port: 80, targetPort: 8080}]\n---\n'
        printf 'apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: %s\n  namespace: default\n' "$1"
        printf 'subsets:\n- addresses: [{ip: %s}, {ip: %s}]\n  ports: [{name: http, port: 8080}]\n' \
            "${POD_IP[be1]}" "${POD_IP[be2]}"
    } >"$f"
    e2e_apply "$f"
}
svc mag $MVIP maglev
svc aff $AVIP random affinity

tr() { svcctl trace "$@" -o json; }
# The pod whose address a "IP:PORT" names.
pod_of() { local p; for p in be1 be2; do [[ ${1%:*} == "${POD_IP[$p]}" ]] && echo $p; done; }
# curl from the client pod on a fixed source port, outside the test cgroup
# (the packet path, which trace describes; a socket balanced at connect()
# hashes its cookie instead).
curl_from_port() {
    timeout 10 nsenter --net="/run/netns/$(pod_ns client)" curl -s --connect-timeout 2 -m 3 \
        --local-port "$1" "http://$2/"
}

test_maglev_prediction() {
    local sport j want got seen="" agree=0
    for sport in $(seq 41001 41012); do
        j=$(tr "${POD_IP[client]}:$sport" "$MVIP:80")
        assert_eq dnat "$(jq -r .verdict.action <<<"$j")" "trace verdict for :$sport" || return
        want=$(pod_of "$(jq -r .verdict.backend.address <<<"$j")")
        assert_match "$want" '^be[12]$' "trace names a backend for :$sport ($(jq -c .verdict <<<"$j"))" || return
        assert_eq "active active" "$(jq -r '[.backends[].state] | join(" ")' <<<"$j")" \
            "trace's candidates in the words of svcctl stats (:$sport)"
        got=$(curl_from_port "$sport" "$MVIP")
        [[ $got == "$want" ]] && agree=$((agree + 1))
        seen+=" $want"
        j=$(tr "${POD_IP[client]}:$sport" "$MVIP:80")
        assert_eq forward "$(jq -r .conntrack.direction <<<"$j")" "trace after the flow: its CT entry (:$sport)"
        assert_eq "$(jq -r .verdict.backend.address <<<"$j")" "${POD_IP[$want]}:8080" "tracked flow keeps its backend (:$sport)"
    done
    assert_eq 12 "$agree" "flows answered by the backend trace predicted (predicted:$seen)"
    assert_match "$seen" 'be1' "Maglev predictions include be1"
    assert_match "$seen" 'be2' "Maglev predictions include be2"
}

test_affinity() {
    local j got
    got=$(curl_from_port 41100 "$AVIP")
    assert_match "$got" '^be[12]$' "a connection to the affinity Service" || return
    j=$(tr "${POD_IP[client]}" "$AVIP:80")
    assert_contains "$(jq -r .verdict.reason <<<"$j")" "sessionAffinity" "trace uses the client's affinity entry"
    assert_eq "${POD_IP[$got]}:8080" "$(jq -r .verdict.backend.address <<<"$j")" "trace names the client's backend"
}

test_reject_pass_and_text() {
    local j out
    printf 'apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: web\n  namespace: default\nsubsets: []\n' \
        >"$TOPO_TMP/ep-none.yaml"
    e2e_apply "$TOPO_TMP/ep-none.yaml"   # web: no endpoints left
    j=$(tr "${POD_IP[client]}:42000" "$VIP:80")
    assert_eq reject "$(jq -r .verdict.action <<<"$j")" "trace of a Service without endpoints"
    j=$(tr "${POD_IP[client]}:42000" "10.96.0.99:80")
    assert_eq pass "$(jq -r .verdict.action <<<"$j")" "trace of an address that is no frontend"
    out=$(svcctl trace "${POD_IP[client]}:41001" "$MVIP:80")
    assert_match "$out" "Service: +default/mag \\(port http\\)" "text output names the Service: $out"
    assert_match "$out" "Verdict: +DNAT to 10\\.244\\.1\\.1[12]:8080" "text output: the verdict"
    assert_contains "$out" "SLOT" "text output: the backends table"
}

test_bad_input() {
    local out rc
    out=$(svcctl trace 10.1.2 "$MVIP:80" 2>&1); rc=$?
    assert_eq 1 "$rc" "exit code of a bad source"
    assert_contains "$out" 'error: source "10.1.2": expected an IPv4 address' "bad source message"
    out=$(svcctl trace 10.1.2.3 "$MVIP" 2>&1); rc=$?
    assert_eq 1 "$rc" "exit code of a destination without port"
    assert_contains "$out" 'a port is required' "destination without port message"
    out=$(svcctl trace -p SCTP 10.1.2.3 "$MVIP:80" 2>&1); rc=$?
    assert_contains "$out" 'expected TCP or UDP' "bad protocol message"
}

run_test "trace: Maglev choice predicted before the flow, CT entry after" test_maglev_prediction
run_test "trace: sessionAffinity" test_affinity
run_test "trace: reject, pass, text output" test_reject_pass_and_text
run_test "trace: bad input" test_bad_input
finish
