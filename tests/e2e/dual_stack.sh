#!/usr/bin/env bash
# Dual-stack Services (issue 16): svclbd with one service CIDR per family, a
# RequireDualStack Service with an IPv4 and an IPv6 EndpointSlice. A pod
# reaches it over IPv6 (curl -6, UDP6 with replies from the v6 ClusterIP) and
# over IPv4; the node's own curl -6 too; a v6 Service without endpoints
# refuses at once; the cluster DNS answers AAAA and ip6.arpa PTR; svcctl
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
    out=$(http_get_many node 10 "http://[$VIP6]/")
    check_both_answer "$out" 10 1 "the node's own curl -6 http://[$VIP6]/"
}

test_v6_no_endpoints_refused() {
    local ip rc=0 start end
    ip=$(svcctl get svc empty6 -o json | jq -r '.spec.clusterIPs[0]')
    assert_match "$ip" '^fd00:10:96::' "empty6 got an IPv6 ClusterIP from the v6 range" || return
    start=$(date +%s%N)
    in_pod_t 10 client curl -s --connect-timeout 5 "http://[$ip]/" >/dev/null || rc=$?
    end=$(date +%s%N)
    assert_eq 7 "$rc" "curl to a v6 Service without endpoints fails with 'connection refused' (exit 7)"
    assert_ge 1000 $(((end - start) / 1000000)) "refused within a second (ms), not a timeout"
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
# way (socket path: the cgroup_skb hooks, sock_flow6_v1; tc path: the CT).
v6stat() {  # JSON PORTNAME FIELD: the v6 frontend's counter
    jq -r --arg v "$VIP6" --arg p "$2" --arg f "$3" \
        '[.services[]? | select(.vip==$v and .port==$p)][0][$f] // empty' <<<"$1"
}
test_udp6_counters() {
    local before after out who K=20 SIZE=100 f
    before=$(stats_json)
    out=$(udp_query_pod client "$VIP6" 5353 $K $SIZE)
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

run_test "dual-stack: curl -6 from a pod reaches both v6 backends" test_curl6_from_pod
run_test "dual-stack: curl -4 of the same Service" test_curl4_same_service
run_test "dual-stack: UDP6 from a pod, replies from the v6 ClusterIP" test_udp6_from_pod
run_test "dual-stack: the node's curl -6" test_node_curl6
run_test "dual-stack: exact counters of a UDP6 flow" test_udp6_counters
run_test "dual-stack: a v6 Service without endpoints refuses at once" test_v6_no_endpoints_refused
run_test "dual-stack: cluster DNS answers AAAA and ip6.arpa PTR" test_dns_aaaa
run_test "dual-stack: get/describe/stats/metrics show both families" test_cli_and_metrics
run_test "dual-stack: hitless restart under IPv6 load" test_restart_v6
finish
