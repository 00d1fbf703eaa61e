#!/usr/bin/env bash
# A long-lived TCP connection through the ClusterIP to backend be1 survives
# backends being added and OTHER backends being removed (Endpoints and
# EndpointSlice changes applied while it exchanges a request every 100 ms):
# no error, every request answered by be1. Once with
# svclb.io/lb-algorithm: maglev, once with random. New connections follow
# each change.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

# Two more backend pods, be3 and be4, serving before svclbd starts.
setup() {
    e2e_setup_pods llc be3=10.244.1.13 be4=10.244.1.14
}
setup

# topo.sh's long-lived client sends a request every 0.2 s; here every 0.1 s.
LONGCONN_PY=${LONGCONN_PY/time.sleep(0.2)/time.sleep(0.1)}
[[ $LONGCONN_PY == *"time.sleep(0.1)"* ]] || fatal_setup "could not set the long-lived client's interval"

svc_yaml() {  # ALGO
    local f=$TOPO_TMP/svc-$1.yaml
    cat >"$f" <<Y
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    svclb.io/lb-algorithm: $1
spec:
  type: ClusterIP
  clusterIP: $VIP
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
Y
    echo "$f"
}

# slice_yaml FILE-NAME POD...: EndpointSlice web-ll for web, all ready.
slice_yaml() {
    local f=$TOPO_TMP/$1.yaml p; shift
    {
        printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-ll\n  namespace: default\n'
        printf '  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\n'
        printf 'ports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n'
        for p in "$@"; do printf -- '- addresses:\n  - %s\n  conditions:\n    ready: true\n' "${POD_IP[$p]}"; done
    } >"$f"
    echo "$f"
}

LC_LOG=""
be1_ok()  { grep -c ' be1 ok be1$' "$LC_LOG"; }
be1_progress() { retry 30 0.1 eval "(( \$(be1_ok) >= $1 + 3 ))"; }

# change KIND POD...: apply Endpoints (KIND=ep) or the EndpointSlice (KIND=slice)
# with these backends; the be1 connection must keep making progress, and 12
# new connections must all be answered, by members of the new set only.
change() {
    local kind=$1 f n0 out p bad; shift
    if [[ $kind == ep ]]; then
        local ips=(); for p in "$@"; do ips+=("${POD_IP[$p]}"); done
        f=$(endpoints_yaml "ep-$(IFS=-; echo "$*")" "${ips[@]}")
    else
        f=$(slice_yaml "slice-$(IFS=-; echo "$*")" "$@")
    fi
    n0=$(be1_ok)
    assert_ok "apply $kind {$*}" svcctl apply -f "$f"
    out=$(http_get_many client 12 "http://$VIP/")
    ANSWERS+=$'\n'$out
    bad=$(grep -cvxE "$(IFS='|'; echo "$*")" <<<"$out")
    assert_eq 0 "$bad" "new connections after $kind {$*}: answers outside the set (got: $(sort <<<"$out" | uniq -c | xargs))"
    be1_progress "$n0" || _fail "the be1 connection stopped making progress after $kind {$*}:
$(tail -3 "$LC_LOG")"
}

# run_algo ALGO: the whole sequence for one algorithm.
run_algo() {
    local algo=$1 js ok p
    LC_LOG=$TOPO_TMP/longconn-$algo.log
    ANSWERS=""
    svcctl delete endpointslice web-ll >/dev/null 2>&1   # from a previous round
    assert_ok "apply Service web ($algo)" svcctl apply -f "$(svc_yaml "$algo")"
    assert_ok "apply Endpoints {be1,be2}" svcctl apply -f "$(endpoints_yaml ep-be1-be2 "${POD_IP[be1]}" "${POD_IP[be2]}")"
    js=$(stats_json)
    assert_eq "$algo" "$(svc_stat "$js" http algorithm)" "svcctl stats: web/http algorithm"

    longconn_start client "$LC_LOG" be1 90
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived connection landing on be1" || return
    be1_progress 0 || { _fail "no request answered on the be1 connection"; return; }

    change ep be1 be2 be3            # add be3
    change ep be1 be2 be3 be4        # add be4
    change ep be1 be3 be4            # remove be2
    change ep be1 be4                # remove be3
    change ep be1 be2 be3            # add be2, be3; remove be4
    change slice be1 be2 be3 be4     # the slice takes over from Endpoints
    change slice be1 be4             # remove be2, be3
    change slice be1                 # only be1 left
    change slice be1 be2 be3         # add again

    # The changes took effect: the added backends took new connections.
    for p in be2 be3 be4; do
        assert_ge "$(count_lines "$ANSWERS" "$p")" 1 "$algo: new connections answered by $p over all changes"
    done

    sleep 0.5
    longconn_stop
    ok=$(be1_ok)
    assert_eq 0 "$(grep -c ' be1 err ' "$LC_LOG")" "errors on the long-lived be1 connection:
$(grep ' be1 err ' "$LC_LOG" | head -3)"
    assert_eq 0 "$(grep ' be1 ok ' "$LC_LOG" | grep -vc ' be1 ok be1$')" \
        "requests on the be1 connection answered by another backend:
$(grep ' be1 ok ' "$LC_LOG" | grep -v ' be1 ok be1$' | head -3)"
    assert_ge "$ok" 30 "requests answered on the be1 connection"
    log "$algo: be1 connection answered $ok requests, $(grep -c ' err ' "$LC_LOG") errors"
}

run_test "long-lived: maglev, be1 connection survives 9 endpoint changes" run_algo maglev
run_test "long-lived: random, be1 connection survives 9 endpoint changes" run_algo random
finish
