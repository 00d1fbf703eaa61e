#!/usr/bin/env bash
# sessionAffinity: ClientIP (timeoutSeconds: 2) over 4 backends: every new
# connection of one client (pod, or the node through the cgroup hooks) lands
# on ONE backend while it keeps coming back within the timeout; after > 2 s
# idle a new choice is made. describe / get -o yaml show the affinity; an
# out-of-range timeout is rejected in kubectl's words and changes nothing.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

# Two more backend pods, be3 and be4, serving before svclbd starts.
setup() {
    e2e_setup_pods aff be3=10.244.1.13 be4=10.244.1.14
    e2e_apply "$(affinity_svc_yaml svc-2s 2)" || fatal_setup "apply the ClientIP service"
    e2e_apply "$(endpoints_yaml ep4 "${POD_IP[be1]}" "${POD_IP[be2]}" "${POD_IP[be3]}" "${POD_IP[be4]}")" \
        || fatal_setup "apply 4 endpoints"
}

# affinity_svc_yaml FILE-NAME TIMEOUT: Service web with ClientIP affinity.
# Random selection (explicit): with Maglev a client's hash is fixed, so an
# expired affinity would pick the same backend again by design.
affinity_svc_yaml() {
    local f=$TOPO_TMP/$1.yaml
    cat >"$f" <<Y
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    svclb.io/lb-algorithm: random
spec:
  type: ClusterIP
  clusterIP: $VIP
  sessionAffinity: ClientIP
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: $2
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
  - name: dns
    port: 5353
    protocol: UDP
    targetPort: 5353
Y
    echo "$f"
}

setup

# one_backend RESULTS N WHAT: all N lines name the same backend be1..be4;
# sets ONE_BE to it.
one_backend() {
    local out=$1 n=$2 what=$3
    ONE_BE=$(head -1 <<<"$out")
    assert_match "$ONE_BE" '^be[1-4]$' "$what: first answer" || return
    assert_eq "$n" "$(count_lines "$out" "$ONE_BE")" \
        "$what: answers from $ONE_BE (got: $(sort <<<"$out" | uniq -c | xargs))"
}

test_pod_sticky() {
    local out
    out=$(http_get_many client 50 "http://$VIP/")
    one_backend "$out" 50 "50 new connections from the client pod" || return
    POD_BE=$ONE_BE
    log "client pod sticks to $POD_BE"
    # Idle 1 s (< 2 s timeout): still the same backend.
    sleep 1
    out=$(http_get_many client 5 "http://$VIP/")
    assert_eq 5 "$(count_lines "$out" "$POD_BE")" "after 1 s idle (< timeout) still on $POD_BE (got: $(xargs <<<"$out"))"
}

test_node_sticky() {
    local out
    out=$(http_get_many node 20 "http://$VIP/")
    one_backend "$out" 20 "20 new connections from the node (cgroup hooks)" || return
    log "node sticks to $ONE_BE"
}

# After > 2 s idle the affinity has expired and the next connection is a
# fresh random choice among 4. A round (sleep 3 s, then 10 curls that must
# agree) may legitimately re-pick the previous round's backend (p = 1/4), so
# up to 6 rounds are tried and at least one must differ from the round before
# it (the first compares with test_pod_sticky's backend). A correct svclb
# fails this with probability (1/4)^6 < 0.03%; one that ignores the timeout
# (or treats it as hours) always fails it.
test_expiry() {
    [[ -n ${POD_BE:-} ]] || { _fail "no backend from the sticky test"; return; }
    local prev=$POD_BE r out who changed=0 seen=$POD_BE
    for r in 1 2 3 4 5 6; do
        sleep 3
        out=$(http_get_many client 10 "http://$VIP/")
        one_backend "$out" 10 "round $r (after 3 s idle): 10 connections" || return
        who=$ONE_BE
        seen+=" $who"
        if [[ $who != "$prev" ]]; then changed=1; break; fi
        prev=$who
    done
    log "backends per round: $seen"
    assert_eq 1 "$changed" "a new backend chosen after the 2 s affinity expired (rounds: $seen)"
}

test_describe_get() {
    local out
    out=$(svcctl describe svc web 2>&1)
    assert_match "$out" $'(^|\n)Session Affinity: +ClientIP\n' "describe svc web: Session Affinity"
    assert_match "$out" $'(^|\n)Session Affinity Timeout: +2s\n' "describe svc web: timeout"
    out=$(svcctl get svc -o yaml 2>&1)
    assert_match "$out" 'sessionAffinity: ClientIP' "get svc -o yaml: sessionAffinity"
    assert_match "$out" $'sessionAffinityConfig:\n +clientIP:\n +timeoutSeconds: 2\n' "get svc -o yaml: sessionAffinityConfig"
    out=$(svcctl get svc -o json 2>&1)
    assert_eq "ClientIP 2" "$(jq -r '(.items // [.])[] | select(.metadata.name=="web")
        | "\(.spec.sessionAffinity) \(.spec.sessionAffinityConfig.clientIP.timeoutSeconds)"' <<<"$out" 2>&1)" \
        "get svc -o json: web's affinity"
}

test_bad_timeout() {
    local before after out rc f
    before=$(svcctl get svc -o json 2>&1)
    f=$(affinity_svc_yaml svc-100000 100000)
    out=$(svcctl apply -f "$f" 2>&1); rc=$?
    assert_ne 0 "$rc" "apply with timeoutSeconds 100000: exit status (output: $out)"
    assert_contains "$out" 'The Service "web" is invalid: spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 100000: must be greater than 0 and less than 86400' \
        "apply with timeoutSeconds 100000"
    after=$(svcctl get svc -o json 2>&1)
    assert_contains "$after" '"timeoutSeconds": 2' "get svc -o json after the rejected apply" || return
    assert_eq "$before" "$after" "get svc -o json unchanged by the rejected apply"
    assert_match "$(svcctl describe svc web 2>&1)" 'Session Affinity Timeout: +2s' "describe after the rejected apply"
    # The dataplane still sticks a client to one backend.
    one_backend "$(http_get_many client 10 "http://$VIP/")" 10 "10 connections after the rejected apply"
}

run_test "affinity: 50 connections from a pod stick to one of 4 backends" test_pod_sticky
run_test "affinity: 20 connections from the node stick to one backend" test_node_sticky
run_test "affinity: after > 2 s idle a new backend is chosen" test_expiry
run_test "affinity: describe and get -o yaml show ClientIP and 2s" test_describe_get
run_test "affinity: timeoutSeconds 100000 rejected, nothing changes" test_bad_timeout
finish
