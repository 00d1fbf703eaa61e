#!/usr/bin/env bash
# A Service without endpoints is rejected as kube-proxy does, not black-holed:
# TCP from a pod gets a RST ("Connection refused", curl exit 7, at once), from
# the node connect() fails with ECONNREFUSED; UDP from a pod gets ICMP port
# unreachable (a connected socket sees ConnectionRefusedError). Every refused
# attempt is counted in svcctl stats (rejects) and in /metrics.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup noep

LONELY_VIP=10.96.0.41   # a Service with no Endpoints object at all

setup_empty() {
    local f=$TOPO_TMP/ep-empty.yaml g=$TOPO_TMP/lonely.yaml
    cat >"$f" <<'Y'
apiVersion: v1
kind: Endpoints
metadata:
  name: web
  namespace: default
subsets: []
Y
    cat >"$g" <<Y
apiVersion: v1
kind: Service
metadata:
  name: lonely
  namespace: default
spec:
  clusterIP: $LONELY_VIP
  ports:
  - name: http
    port: 80
    targetPort: 8080
Y
    e2e_apply "$f" && e2e_apply "$g"
}
setup_empty || fatal_setup "apply the empty Endpoints / the lonely Service"

# refused WHERE URL WHAT: one curl from WHERE (pod name or "node") must fail
# with "Connection refused" (exit 7): a black hole would time out (exit 28;
# -m 8 bounds it). The time taken is logged, not asserted.
refused() {
    local where=$1 url=$2 what=$3 out rc t0 ms
    local cmd=(curl -sS -v --connect-timeout 5 -m 8 "$url")
    t0=$(date +%s%N)
    if [[ $where == node ]]; then out=$(in_node_cg_t 15 "${cmd[@]}" 2>&1); rc=$?
    else out=$(in_pod_t 15 "$where" "${cmd[@]}" 2>&1); rc=$?; fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    log "$what: exit $rc in ${ms} ms: $(grep -m1 -E 'failed|refused|timed out' <<<"$out")"
    assert_eq 7 "$rc" "$what: curl exit status (output: $(tail -2 <<<"$out" | tr "\n" " "))"
    assert_contains "$out" "Connection refused" "$what: curl's error"
}

# Connected UDP socket: connect + send + recv; prints REFUSED <ms> (the ICMP
# error arrived: the time is logged, not asserted), or what happened instead
# (TIMEOUT after 3 s, a reply, another error).
UDP_REFUSED_PY='
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
t0 = time.time()
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    s.send(b"query")
    data = s.recv(65535)
    print("REPLY %r" % data)
except ConnectionRefusedError:
    print("REFUSED %d" % ((time.time() - t0) * 1000))
except socket.timeout:
    print("TIMEOUT")
except OSError as e:
    print("ERROR %s" % e)
'
udp_refused() {  # WHERE WHAT
    local where=$1 what=$2 out
    if [[ $where == node ]]; then out=$(in_node_cg_t 10 "$PY" -c "$UDP_REFUSED_PY" "$VIP" 5353 2>&1)
    else out=$(in_pod_t 10 "$where" "$PY" -c "$UDP_REFUSED_PY" "$VIP" 5353 2>&1); fi
    log "$what: $out"
    assert_match "$out" '^REFUSED [0-9]+$' "$what: connected UDP socket to $VIP:5353" || return
}

N_POD=5 N_NODE=3 N_UDP=3
test_tcp_pod() {
    local i
    BEFORE=$(stats_json)
    for i in $(seq $N_POD); do refused client "http://$VIP/" "client pod -> $VIP:80 (empty Endpoints), try $i"; done
}

test_tcp_node() {
    local i
    for i in $(seq $N_NODE); do refused node "http://$VIP/" "node -> $VIP:80 (empty Endpoints), try $i"; done
}

test_udp_pod() {
    local i
    for i in $(seq $N_UDP); do udp_refused client "client pod -> $VIP:5353 UDP, try $i"; done
    # From the node the connect() hook refuses the connected UDP socket.
    udp_refused node "node -> $VIP:5353 UDP"
}

test_no_endpoints_object() {
    local before after
    before=$(stats_json)
    refused client "http://$LONELY_VIP/" "client pod -> $LONELY_VIP:80 (no Endpoints object)"
    refused node "http://$LONELY_VIP/" "node -> $LONELY_VIP:80 (no Endpoints object)"
    after=$(stats_json)
    assert_eq 2 "$(_delta "$(lonely_stat "$before")" "$(lonely_stat "$after")")" "svcctl stats: rejects of lonely/http"
}
lonely_stat() {
    jq -r '[.services[]? | select(.name=="lonely" and .port=="http")][0].rejects // empty' <<<"$1"
}

# curl sends one SYN; the RST answers it, so curl neither retransmits nor
# retries (one address): exactly one reject per pod curl. From the node the
# connect() hook refuses before any packet exists: one per curl. Each UDP
# query is one datagram: one ICMP, one reject; the node's UDP connect() is
# refused once. So the counts are exact.
test_stats() {
    local after
    after=$(stats_json)
    STATS=$after
    assert_eq $((N_POD + N_NODE)) "$(svc_delta "$BEFORE" "$after" http rejects)" \
        "svcctl stats: rejects of web/http after $N_POD pod + $N_NODE node curls"
    assert_eq $((N_UDP + 1)) "$(svc_delta "$BEFORE" "$after" dns rejects)" \
        "svcctl stats: rejects of web/dns after $N_UDP pod UDP queries + 1 node connect()"
    assert_eq 0 "$(svc_delta "$BEFORE" "$after" http flows)" "svcctl stats: flows of web/http (none should be created)"
}

test_metrics() {
    local m port want got
    m=$(metrics)
    assert_ne "" "$m" "GET $METRICS_URL" || return
    for port in http dns; do
        want=$(svc_stat "$STATS" "$port" rejects)
        got=$(metric_sample "$m" svclb_service_rejects_total namespace=default service=web port=$port)
        assert_eq "$want" "$got" "svclb_service_rejects_total{service=\"web\",port=\"$port\"} vs stats"
    done
    assert_ge "$(svc_stat "$STATS" http rejects)" $((N_POD + N_NODE)) "web/http rejects"
}


# Endpoints come back: nothing of the refusals lingers.
test_endpoints_back() {
    assert_ok "re-apply web-endpoints.yaml" svcctl apply -f "$SVCLB_EXAMPLES/web-endpoints.yaml"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "client pod after the endpoints came back"
    check_both_answer "$(http_get_many node 20 "http://$VIP/")" 20 2 "node after the endpoints came back"
    assert_match "$(udp_query_pod client "$VIP" 5353 1 8)" "^be[12] from $VIP:5353\$" "UDP after the endpoints came back"
}

run_test "no endpoints: TCP from a pod refused at once" test_tcp_pod
run_test "no endpoints: TCP from the node refused (ECONNREFUSED)" test_tcp_node
run_test "no endpoints: UDP from a pod gets port unreachable, from the node ECONNREFUSED" test_udp_pod
run_test "no endpoints: svcctl stats counts every rejected attempt" test_stats
run_test "no endpoints: svclb_service_rejects_total matches stats" test_metrics
run_test "no endpoints: a Service without an Endpoints object is refused too" test_no_endpoints_object
run_test "no endpoints: endpoints back, traffic flows again" test_endpoints_back
finish
