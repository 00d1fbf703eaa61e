#!/usr/bin/env bash
# Hairpin (issue 17): a pod reaching a Service whose only endpoint is the pod
# itself. On the tc path (SVCLB_SOCKET_LB=node: e2e.tc.hairpin) the flow is
# source-NATed to the node's address toward the pod and sent straight back
# into the pod, as kube-proxy masquerades hairpin traffic: without that the
# pod's answer stays inside the pod, never reverse-translated, and the
# connection fails. On the socket path (--socket-lb=all: e2e.hairpin) the
# pod's connect() is balanced to its own address inside the pod: the flow
# never leaves it and the server sees the pod's own address.
#  - be1 -> self (TCP, 20 curls; UDP, 5 datagrams) all answered by be1, the
#    UDP replies from the Service address;
#  - be1's HTTP server saw them from the node's address (tc) / itself (socket);
#  - another pod reaching the same Service keeps its own address (no SNAT);
#  - svcctl trace shows the hairpin conntrack entry of a live connection (tc).
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup hairpin

SELF=10.96.0.60
BE1=${POD_IP[be1]}

apply_self() {
    cat >"$TOPO_TMP/self.yaml" <<Y
apiVersion: v1
kind: Service
metadata: {name: self, namespace: default}
spec:
  clusterIP: $SELF
  ports:
  - {name: http, port: 80, targetPort: $HTTP_PORT}
  - {name: dns, port: 53, protocol: UDP, targetPort: $UDP_PORT}
---
apiVersion: v1
kind: Endpoints
metadata: {name: self, namespace: default}
subsets:
- addresses: [{ip: $BE1}]
  ports:
  - {name: http, port: $HTTP_PORT}
  - {name: dns, port: $UDP_PORT, protocol: UDP}
Y
    svcctl apply -f "$TOPO_TMP/self.yaml" >/dev/null
}
apply_self || fatal_setup "apply self.yaml"

# The address be1's HTTP server sees its hairpin requests from.
if [[ $SVCLB_SOCKET_LB == all ]]; then EXPECT_SRC=$BE1; else EXPECT_SRC=$NODE_IP; fi

# Requests in be1's HTTP log from ADDR (http.server logs "ADDR - - [...]").
http_log_from() { grep -c "^$1 - - .*\"GET /?hairpin" "$TOPO_TMP/http-be1.log" || true; }

test_tcp() {
    local out before after
    before=$(http_log_from "$EXPECT_SRC")
    out=$(http_get_many be1 20 "http://$SELF/?hairpin")
    assert_eq 20 "$(count_lines "$out" be1)" "be1 -> $SELF:80 (itself): 20 of 20 answered by be1: $(sort <<<"$out" | uniq -c | tr '\n' ' ')" || return
    # http.server writes its log line after answering: give it a moment.
    retry 20 0.1 eval '(( $(http_log_from "$EXPECT_SRC") - before >= 20 ))'
    after=$(http_log_from "$EXPECT_SRC")
    assert_eq 20 "$((after - before))" "be1's server saw the 20 hairpin requests from $EXPECT_SRC (--socket-lb=$SVCLB_SOCKET_LB)"
}

test_udp() {
    local out
    out=$(udp_query_pod be1 "$SELF" 53 5)
    assert_eq 5 "$(count_lines "$out" "be1 from $SELF:53")" "be1 -> $SELF:53/UDP (itself): 5 replies from the Service address: $out"
}

test_other_pod() {
    local out before
    before=$(http_log_from "${POD_IP[client]}")
    out=$(http_get_many client 5 "http://$SELF/?hairpin")
    assert_eq 5 "$(count_lines "$out" be1)" "client -> $SELF:80: answered by be1" || return
    retry 20 0.1 eval '(( $(http_log_from "${POD_IP[client]}") - before >= 5 ))'
    assert_eq 5 "$(($(http_log_from "${POD_IP[client]}") - before))" \
        "be1's server saw the client's own address (no SNAT when the backend is another pod)"
}

# A live hairpin connection from be1 (a fixed source port) and its
# conntrack entry as svcctl trace shows it.
test_trace() {
    local js
    if [[ $SVCLB_SOCKET_LB == all ]]; then
        # No CT entry on the socket path: the flow never left the pod.
        in_pod_t 10 be1 socat -u - "TCP4:$SELF:80,sourceport=47001" </dev/null >/dev/null 2>&1
        js=$(svcctl trace "$BE1:47001" "$SELF:80" -o json)
        assert_eq null "$(jq -c '.conntrack' <<<"$js")" "socket path: no conntrack entry for be1's own flow"
        return
    fi
    in_pod_t 15 be1 socat -u "EXEC:sleep 8" "TCP4:$SELF:80,sourceport=47001" &
    local pid=$!
    retry 30 0.2 eval "svcctl trace $BE1:47001 $SELF:80 -o json | jq -e '.conntrack.hairpin == true' >/dev/null"
    js=$(svcctl trace "$BE1:47001" "$SELF:80" -o json)
    assert_eq true "$(jq -r '.conntrack.hairpin' <<<"$js")" "trace: the flow's conntrack entry is a hairpin: $js" || { kill "$pid" 2>/dev/null; return; }
    assert_match "$(jq -r '.conntrack.snatAddress' <<<"$js")" "^$NODE_IP:[0-9]+$" "trace: source-NATed to the node's address"
    assert_contains "$(svcctl trace "$BE1:47001" "$SELF:80")" "hairpin via $NODE_IP:" "trace table names the hairpin"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
}

run_test "hairpin: be1 reaches itself through its Service (TCP)" test_tcp
run_test "hairpin: be1 reaches itself through its Service (UDP)" test_udp
run_test "hairpin: another pod keeps its address" test_other_pod
run_test "hairpin: svcctl trace shows the flow" test_trace
finish
