#!/usr/bin/env bash
# Dual-stack Services (issue 16): svclbd with one service CIDR per family, a
# RequireDualStack Service with an IPv4 and an IPv6 EndpointSlice. A pod
# reaches it over IPv6 (curl -6, UDP6 with replies from the v6 ClusterIP) and
# over IPv4; the node's own curl -6 too; a v6 Service without endpoints
# refuses at once; the node's connected UDP6 socket (and a dual-stack one on
# ::ffff:VIP) is closed when its backend goes; the cluster DNS answers AAAA
# and ip6.arpa PTR, on an IPv6 address too; svcctl
# get/describe/stats and /metrics name both ClusterIPs. Pods have a /128 beside their /32 (topo_add_pod6).
set -u
source "$(dirname "$0")/../testlib/svc.sh"

VIP6=fd00:10:96::a
SERVICE_CIDR=10.96.0.0/12,fd00:10:96::/112
POD_IP6_BE1=fd00:10:244:1::11
POD_IP6_BE2=fd00:10:244:1::12
POD_IP6_CLIENT=fd00:10:244:1::20

for t in jq curl nsenter dig "$PY"; do command -v "$t" >/dev/null || fatal_setup "missing $t"; done
topo_init "e2e-dual-$$"
topo_up || fatal_setup "topology"
topo_add_pod6 be1 "$POD_IP6_BE1"
topo_add_pod6 be2 "$POD_IP6_BE2"
topo_add_pod6 client "$POD_IP6_CLIENT"
start_backend6 be1
start_backend6 be2
for p in be1 be2; do
    retry 50 0.2 eval "[[ \$(in_pod_t 3 client curl -s -m 1 'http://[${POD_IP6[$p]}]:$HTTP_PORT/') == $p ]]" \
        || fatal_setup "IPv6 HTTP server in $p did not come up (the lab's v6 routing)"
done
# The cluster DNS on both families (one address each, comma-separated).
DNS6=fd00:10:96::35
DAEMON_FLAGS_EXTRA=(--cluster-dns "10.96.0.10,$DNS6")
e2e_daemon_up || fatal_setup "svclbd did not become ready"

MANIFEST=$TOPO_TMP/dual.yaml
cat >"$MANIFEST" <<EOF
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ipFamilyPolicy: RequireDualStack
  clusterIP: $VIP
  clusterIPs: [$VIP, "$VIP6"]
  ports:
  - name: http
    port: 80
    targetPort: 8080
  - name: dns
    port: 5353
    protocol: UDP
---
apiVersion: v1
kind: Service
metadata:
  name: empty6
spec:
  selector:
    app: none
  ipFamilies: [IPv6]
  ports:
  - port: 80
EOF
# slice_yaml NAME FAMILY IP...: web's EndpointSlice of that addressType.
slice_yaml() {
    local name=$1 family=$2 ip; shift 2
    printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s\n' "$name"
    printf '  labels:\n    kubernetes.io/service-name: web\naddressType: %s\nendpoints:\n' "$family"
    for ip in "$@"; do printf -- '- addresses: ["%s"]\n' "$ip"; done
    printf 'ports:\n- name: http\n  port: 8080\n- name: dns\n  port: 5353\n  protocol: UDP\n'
}
slice_yaml web-v4 IPv4 "${POD_IP[be1]}" "${POD_IP[be2]}" >>"$MANIFEST"
slice_yaml web-v6 IPv6 "$POD_IP6_BE1" "$POD_IP6_BE2" >>"$MANIFEST"
e2e_apply "$MANIFEST" || fatal_setup "apply $MANIFEST"

test_curl6_from_pod() {
    local out
    out=$(http_get_many client 20 "http://[$VIP6]/")
    check_both_answer "$out" 20 2 "curl -6 http://[$VIP6]/ from a pod"
}

test_curl4_same_service() {
    local out
    out=$(http_get_many client 20 "http://$VIP/")
    check_both_answer "$out" 20 2 "curl -4 http://$VIP/ of the same Service"
}

test_udp6_from_pod() {
    local out="" i
    for i in $(seq 12); do out+=$(udp_query_pod client "$VIP6" 5353 1 8)$'\n'; done
    out=${out%$'\n'}
    assert_eq 0 "$(grep -vc "^be[12] from $VIP6:5353\$" <<<"$out")" \
        "UDP6 datagrams without an answer from a backend via [$VIP6]:5353 ($out)"
    assert_ge "$(grep -c "^be" <<<"$out")" 12 "UDP6 answers"
}

test_node_curl6() {
    local out
    out=$(http_get_many node 20 "http://[$VIP6]/")
    check_both_answer "$out" 20 2 "the node's own curl -6 http://[$VIP6]/"
}

test_v6_no_endpoints_refused() {
    local ip rc=0 err
    ip=$(svcctl get svc empty6 -o json | jq -r '.spec.clusterIPs[0]')
    assert_match "$ip" '^fd00:10:96::' "empty6 got an IPv6 ClusterIP from the v6 range" || return
    err=$(in_pod_t 10 client curl -sS --connect-timeout 5 "http://[$ip]/" 2>&1 >/dev/null) || rc=$?
    assert_eq 7 "$rc" "curl to a v6 Service without endpoints fails to connect (exit 7, not 28: a timeout; $err)"
    # connect()'s own error: ECONNREFUSED (kube-proxy's REJECT), not a timeout
    # or an unreachable network.
    err=$(in_pod_t 10 client "$PY" -c '
import socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=5); print("connected")
except OSError as e:
    print(type(e).__name__)' "$ip")
    assert_eq ConnectionRefusedError "$err" "connect() to a v6 Service without endpoints"
}

# --cluster-dns IPv4,IPv6: the IPv6 address is a /128 on the node's lo
# marked with svclbd's IFA_PROTO (no labels in IPv6), no node address (no
# NodePorts on it), and the zone is served there over UDP and TCP from an
# IPv6 pod; a second IPv6 address is refused in the user's words.
test_dns_on_ipv6() {
    local q="dig +time=2 +tries=1 +short @$DNS6" out
    assert_contains "$(in_node ip -6 addr show dev lo)" "inet6 $DNS6/128 " \
        "$DNS6/128 on the node's lo (marked as svclbd's: net.DnsAddress.*)"
    assert_eq "$VIP6" "$(in_pod_t 10 client $q web.default.svc.cluster.local AAAA)" "AAAA of web over UDP6"
    assert_eq "$VIP" "$(in_pod_t 10 client $q +tcp web.default.svc.cluster.local A)" "A of web over TCP6"
    assert_eq "web.default.svc.cluster.local." "$(in_pod_t 10 client $q -x "$VIP6")" "PTR over UDP6"
    assert_eq "$DNS6" "$(in_pod_t 10 client $q ns.dns.cluster.local AAAA)" "the apex NS target's AAAA"
    assert_contains "$(cat "$DAEMON_LOG")" "cluster DNS on 10.96.0.10:53, [$DNS6]:53" "svclbd's log"
    assert_not_contains "$(grep 'addresses:' "$DAEMON_LOG" | tail -1)" "$DNS6" \
        "the DNS address is not a node address"
    out=$("$SVCLB_BIN/svclbd" --cluster-dns "fd00::1,fd00::2" 2>&1) && _fail "two IPv6 DNS addresses accepted"
    assert_contains "$out" "--cluster-dns fd00::1,fd00::2: expected an IPv4 address, an IPv6 address, one of each (IPv4,IPv6), or none" \
        "two IPv6 addresses: refused"
}

# svcctl trace over IPv6 ([IPv6]:PORT): a Maglev v6 Service; for 8 source
# ports trace names a backend before the flow, a curl -6 from the client on
# that port over the tc path (outside svclbd's cgroup) is answered by it,
# and trace then shows the flow's IPv6 CT entry. The source ports are
# below the client's ephemeral range (32768-60999), where an earlier test's
# socket could hold one. Mixed families: an error.
MAG6=fd00:10:96::3e
test_trace_v6() {
    local f=$TOPO_TMP/mag6.yaml sport j want got agree=0 seen="" out rc
    printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: mag6\n  annotations: {svclb.io/lb-algorithm: maglev}\nspec:\n  ipFamilies: [IPv6]\n  clusterIP: "%s"\n  ports: [{name: http, port: 80, targetPort: 8080}]\n' "$MAG6" >"$f"
    printf -- '---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: mag6-1\n  labels: {kubernetes.io/service-name: mag6}\naddressType: IPv6\nendpoints:\n- addresses: ["%s"]\n- addresses: ["%s"]\nports: [{name: http, port: 8080}]\n' \
        "$POD_IP6_BE1" "$POD_IP6_BE2" >>"$f"
    e2e_apply "$f"
    for sport in $(seq 23001 23008); do
        j=$(svcctl trace "[$POD_IP6_CLIENT]:$sport" "[$MAG6]:80" -o json)
        want=$(jq -r .verdict.backend.address <<<"$j")
        case $want in
            "[$POD_IP6_BE1]:8080") want=be1 ;;
            "[$POD_IP6_BE2]:8080") want=be2 ;;
            *) _fail "trace names no v6 backend for :$sport: $(jq -c .verdict <<<"$j")"; return ;;
        esac
        got=$(timeout 10 nsenter --net="/run/netns/$(pod_ns client)" curl -s -6 --connect-timeout 2 -m 3 \
            --local-port "$sport" "http://[$MAG6]/")
        [[ $got == "$want" ]] && agree=$((agree + 1))
        seen+=" $want"
        j=$(svcctl trace "[$POD_IP6_CLIENT]:$sport" "[$MAG6]:80" -o json)
        assert_match "$(jq -r '.conntrack.direction + " " + .conntrack.map' <<<"$j")" '^forward ct6_(est_)?v1$' \
            "trace after the flow: its IPv6 CT entry (:$sport)"
    done
    assert_eq 8 "$agree" "v6 flows answered by the backend trace predicted (predicted:$seen)"
    out=$(svcctl trace "[$POD_IP6_CLIENT]:23001" "[$MAG6]:80")
    assert_match "$out" "Service: +default/mag6 \\(port http\\)" "text output names the Service"
    assert_match "$out" "Verdict: +DNAT to \\[fd00:10:244:1::1[12]\\]:8080" "text output: the verdict"
    out=$(svcctl trace "$POD_IP6_CLIENT" "[$MAG6]:80")
    assert_contains "$out" "<no source port given>" "a bare IPv6 source has no port"
    out=$(svcctl trace "${POD_IP[client]}:1234" "[$MAG6]:80" 2>&1); rc=$?
    assert_eq 1 "$rc" "exit code of mixed families"
    assert_contains "$out" "are of two address families" "mixed families message"
}

test_cli_and_metrics() {
    local json get desc stats m
    json=$(svcctl get svc web -o json)
    assert_eq "$VIP $VIP6" "$(jq -r '.spec.clusterIPs | join(" ")' <<<"$json")" "spec.clusterIPs"
    assert_eq "IPv4 IPv6" "$(jq -r '.spec.ipFamilies | join(" ")' <<<"$json")" "spec.ipFamilies"
    assert_eq RequireDualStack "$(jq -r '.spec.ipFamilyPolicy' <<<"$json")" "spec.ipFamilyPolicy"
    get=$(svcctl get svc web)
    assert_match "$get" "web +ClusterIP +$VIP " "svcctl get: CLUSTER-IP is the primary ($VIP)"
    desc=$(svcctl describe svc web)
    assert_match "$desc" "IP Family Policy: +RequireDualStack" "describe: IP Family Policy"
    assert_match "$desc" "IP Families: +IPv4,IPv6" "describe: IP Families"
    assert_match "$desc" "IPs: +$VIP,$VIP6" "describe: IPs"
    stats=$(stats_json)
    assert_eq 2 "$(jq --arg v "$VIP6" '[.services[] | select(.vip==$v and .port=="http") | .backends[].ip] | length' <<<"$stats")" \
        "svcctl stats: the v6 frontends' backends (http)"
    assert_contains "$(jq -r --arg v "$VIP6" '[.services[] | select(.vip==$v) | .backends[].ip] | join(" ")' <<<"$stats")" \
        "$POD_IP6_BE1" "svcctl stats: a v6 backend's address"
    m=$(metrics)
    assert_ne none "$(metric_sample "$m" svclb_service_flows_total "vip=[$VIP6]:80")" \
        "/metrics: a sample for the v6 frontend [$VIP6]:80"
}

# Exact counters of an IPv6 flow, on either path: K UDP6 datagrams of SIZE
# bytes from one socket are one flow of K packets of 40+8+SIZE bytes each
# way (socket path: the cgroup_skb hooks, sock_flow6_v2; tc path: the CT).
v6stat() {  # JSON PORTNAME FIELD: the v6 frontend's counter
    jq -r --arg v "$VIP6" --arg p "$2" --arg f "$3" \
        '[.services[]? | select(.vip==$v and .port==$p)][0][$f] // empty' <<<"$1"
}
test_udp6_counters() {
    local before after out who K=20 SIZE=100 f
    before=$(stats_json)
    out=$(UDP_SPORT=20001 udp_query_pod client "$VIP6" 5353 $K $SIZE)
    assert_eq $K "$(grep -c "from $VIP6:5353" <<<"$out")" "replies to $K UDP6 datagrams" || return
    who=$(head -1 <<<"$out" | cut -d' ' -f1)
    after=$(stats_json)
    for f in packets replyPackets; do
        assert_eq $K "$(($(v6stat "$after" dns $f) - $(v6stat "$before" dns $f)))" "v6 frontend $f"
    done
    assert_eq $((K * (40 + 8 + SIZE))) "$(($(v6stat "$after" dns bytes) - $(v6stat "$before" dns bytes)))" \
        "v6 frontend bytes (K * (40+8+$SIZE))"
    assert_eq $((K * (40 + 8 + ${#who} + 1))) \
        "$(($(v6stat "$after" dns replyBytes) - $(v6stat "$before" dns replyBytes)))" "v6 frontend replyBytes"
    assert_eq 1 "$(($(v6stat "$after" dns flows) - $(v6stat "$before" dns flows)))" "one flow for one UDP6 socket"
}

# The cluster DNS (svclbd's, at --cluster-dns 10.96.0.10:53) names both
# ClusterIPs: A and AAAA, and the v6 address's ip6.arpa PTR.
test_dns_aaaa() {
    local q="dig +time=2 +tries=1 +short @10.96.0.10"
    assert_eq "$VIP" "$(in_pod_t 10 client $q web.default.svc.cluster.local A)" "A of web"
    assert_eq "$VIP6" "$(in_pod_t 10 client $q web.default.svc.cluster.local AAAA)" "AAAA of web"
    assert_eq "web.default.svc.cluster.local." "$(in_pod_t 10 client $q -x "$VIP6")" \
        "PTR of $VIP6 (ip6.arpa)"
    assert_match "$(in_pod_t 10 client $q empty6.default.svc.cluster.local AAAA)" '^fd00:10:96::' \
        "AAAA of the IPv6-only Service"
    assert_eq "" "$(in_pod_t 10 client $q empty6.default.svc.cluster.local A)" \
        "no A record for the IPv6-only Service"
}

# Hitless restart under IPv6 load: long-lived HTTP connections to the v6
# ClusterIP (one per backend) keep answering while svclbd is down and after
# it restarted; new v6 connections work throughout; the restarted daemon
# adopts the v6 frontends (nothing rewritten: no v6 frontend added).
LC_LOG=$TOPO_TMP/longconn6.log
ok_count() { grep -c " $1 ok $1\$" "$LC_LOG"; }
progress() { retry 20 0.2 eval "(( \$(ok_count be1) > $1 && \$(ok_count be2) > $2 ))"; }
test_restart_v6() {
    local a b vip4=$VIP
    VIP=$VIP6 longconn_start client "$LC_LOG" be1,be2 90
    assert_contains "$(cat "$LC_LOG")" " be1 open" "long-lived v6 connection on be1" || return
    assert_contains "$(cat "$LC_LOG")" " be2 open" "long-lived v6 connection on be2" || return
    a=$(ok_count be1); b=$(ok_count be2)
    daemon_stop
    check_both_answer "$(http_get_many client 20 "http://[$VIP6]/")" 20 2 "new v6 connections while svclbd is down"
    progress "$a" "$b" || _fail "long-lived v6 connections stalled while svclbd is down: $(tail -3 "$LC_LOG")"
    a=$(ok_count be1); b=$(ok_count be2)
    daemon_start && daemon_wait_ready || { _fail "svclbd did not come back"; return; }
    assert_match "$(grep 'restored' "$DAEMON_LOG" | tail -1)" "sync: 0 added" \
        "the restarted daemon adopted every frontend (v6 included): nothing added"
    check_both_answer "$(http_get_many client 20 "http://[$VIP6]/")" 20 2 "new v6 connections after the restart"
    progress "$a" "$b" || _fail "long-lived v6 connections stalled after the restart: $(tail -3 "$LC_LOG")"
    longconn_stop
    assert_eq 0 "$(grep -c ' err ' "$LC_LOG")" "v6 long-lived connection errors ($(grep ' err ' "$LC_LOG" | head -2))"
    VIP=$vip4
}

# The node's own connected UDP sockets have no tc path behind them: when the
# backend one was balanced to goes, svclbd closes it (the svclb_sock_destroy_udp
# iterator; sock_destroy6_v1 for an IPv6 Service), the application sees an
# error, and a new socket reaches the other backend. DST is what the socket
# names: [VIP6] (IPv6), or ::ffff:VIP (a dual-stack socket talking IPv4,
# balanced as IPv4: its entries are the v4 ones).
# test_node_udp_connected_closed DST SLICE FAMILY IP_BE1 IP_BE2
test_node_udp_connected_closed() {
    local dst=$1 slice=$2 family=$3 ip1=$4 ip2=$5 flag log done first other keep pid n0
    flag=$TOPO_TMP/nudp-$slice.flag done=$TOPO_TMP/nudp-$slice.done log=$TOPO_TMP/nudp-$slice.log
    n0=$(grep -c "closed 1 connected UDP socket(s) of removed backends" "$DAEMON_LOG")
    in_node_cg_t 40 "$PY" -u -c "$NODE_UDP_CONN_PY" "$dst" 5353 "$flag" "$done" >"$log" 2>&1 &
    pid=$!; TOPO_PIDS+=("$pid")
    retry 100 0.1 test -e "$flag" || { _fail "the node's connected UDP client did not start: $(cat "$log")"; return; }
    first=$(awk '$1 == "first" { print $2 }' "$log")
    assert_match "$first" '^be[12]$' "the node's connected UDP socket to [$dst]:5353: first answer ($(xargs <"$log"))" || return
    # recvmsg shows the frontend it named, after sends too (for ::ffff:VIP
    # the kernel runs sendmsg4 with the connected backend on every send).
    assert_eq "from $dst" "$(grep '^from' "$log")" "the answers come from $dst"
    [[ $first == be1 ]] && { other=be2; keep=$ip2; } || { other=be1; keep=$ip1; }
    slice_yaml "$slice" "$family" "$keep" >"$TOPO_TMP/$slice-one.yaml"
    e2e_apply "$TOPO_TMP/$slice-one.yaml"
    touch "$done"
    wait "$pid" 2>/dev/null
    assert_match "$(grep '^after' "$log")" "^after (ConnectionAbortedError|OSError)\$" \
        "the socket balanced to $first is closed once $first leaves $slice ($(xargs <"$log"))"
    assert_eq "reconnected $other" "$(grep '^reconnected' "$log")" "a new socket reaches $other"
    assert_eq $((n0 + 1)) "$(grep -c "closed 1 connected UDP socket(s) of removed backends" "$DAEMON_LOG")" \
        "svclbd's log: one socket closed"
    slice_yaml "$slice" "$family" "$ip1" "$ip2" >"$TOPO_TMP/$slice-both.yaml"
    e2e_apply "$TOPO_TMP/$slice-both.yaml"
}

run_test "dual-stack: curl -6 from a pod reaches both v6 backends" test_curl6_from_pod
run_test "dual-stack: curl -4 of the same Service" test_curl4_same_service
run_test "dual-stack: UDP6 from a pod, replies from the v6 ClusterIP" test_udp6_from_pod
run_test "dual-stack: the node's curl -6" test_node_curl6
run_test "dual-stack: exact counters of a UDP6 flow" test_udp6_counters
run_test "dual-stack: a v6 Service without endpoints refuses at once" test_v6_no_endpoints_refused
run_test "dual-stack: the node's connected UDP6 socket is closed when its backend goes" \
    test_node_udp_connected_closed "$VIP6" web-v6 IPv6 "$POD_IP6_BE1" "$POD_IP6_BE2"
run_test "dual-stack: a dual-stack socket on ::ffff:$VIP, closed when its IPv4 backend goes" \
    test_node_udp_connected_closed "::ffff:$VIP" web-v4 IPv4 "${POD_IP[be1]}" "${POD_IP[be2]}"
run_test "dual-stack: cluster DNS answers AAAA and ip6.arpa PTR" test_dns_aaaa
run_test "dual-stack: cluster DNS on an IPv6 address too (--cluster-dns IPv4,IPv6)" test_dns_on_ipv6
run_test "dual-stack: get/describe/stats/metrics show both families" test_cli_and_metrics
run_test "dual-stack: svcctl trace of IPv6 flows (Maglev predicted, then answered)" test_trace_v6
run_test "dual-stack: hitless restart under IPv6 load" test_restart_v6
finish
