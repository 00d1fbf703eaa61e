#!/usr/bin/env bash
# Cluster DNS (issue 14): svclbd answers the cluster zone on --cluster-dns
# (default 10.96.0.10, put on the node's lo) and forwards the rest to a real
# upstream (dnsmasq in pod be2). Pods get a resolv.conf as the kubelet writes
# it (search default.svc.cluster.local svc.cluster.local cluster.local,
# ndots:5) bind-mounted in a private mount namespace, and use real clients:
# dig, nslookup (bind9), busybox nslookup, getent (glibc) and curl.
set -u
source "$(dirname "$0")/../testlib/svc.sh"

source "$(dirname "$0")/../testlib/dns.sh"

API_VIP=10.96.0.30
dns_lab_init || exit 1
e2e_setup dns
dns_upstream_up || fatal_setup "the upstream DNS server and be1:80"

# qdig ARGS...: dig from the client pod at the cluster DNS address.
qdig() { in_pod_t 10 client dig +time=2 +tries=1 @"$DNS_IP" "$@"; }
short() { qdig +short "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
rcode() { qdig "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

# api (ClusterIP, endpoints be1 and be2), my-service (ExternalName in prod
# -> backend.example.test, which dnsmasq resolves to be1), db (headless,
# endpoints db-0 = be1 and db-1 = be2): the demo's objects.
e2e_apply "$SVCLB_EXAMPLES/dns-services.yaml" || fatal_setup "apply examples/dns-services.yaml"

# db_slice ENDPOINT-LINES...: the headless Service's one slice.
db_slice() {
    local f=$TOPO_TMP/db-slice.yaml
    {
        printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n'
        printf '  name: db-1\n  namespace: default\n  labels: {kubernetes.io/service-name: db}\n'
        printf 'addressType: IPv4\nports:\n- {name: pg, port: 5432, protocol: TCP}\nendpoints:\n'
        printf '%s\n' "$@"
    } >"$f"
    svcctl apply -f "$f" >/dev/null
}

test_records() {
    local out
    assert_eq "$API_VIP" "$(short api.default.svc.cluster.local)" "A of a ClusterIP Service"
    assert_eq "$API_VIP" "$(short API.Default.SVC.cluster.LOCAL)" "names are case-insensitive"
    out=$(qdig api.default.svc.cluster.local)
    assert_match "$out" "flags: qr aa rd ra;" "AA and RA set for the zone"
    assert_eq "NOERROR" "$(rcode api.default.svc.cluster.local AAAA)" "AAAA of an IPv4 Service: NODATA"
    assert_eq "" "$(short api.default.svc.cluster.local AAAA)" "AAAA: no records"
    out=$(qdig nope.default.svc.cluster.local)
    assert_contains "$out" "status: NXDOMAIN" "unknown Service: NXDOMAIN"
    assert_match "$out" "cluster\.local\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA" "NXDOMAIN carries the SOA"
    assert_eq "0 100 80 api.default.svc.cluster.local." "$(short SRV _http._tcp.api.default.svc.cluster.local)" \
        "SRV of a named port"
    assert_eq "api.default.svc.cluster.local." "$(short -x $API_VIP)" "PTR of a ClusterIP"
    assert_eq '"1.1.0"' "$(short TXT dns-version.cluster.local)" "dns-version TXT"
    assert_eq "$API_VIP" "$(qdig +tcp +short api.default.svc.cluster.local)" "over TCP"
    assert_eq "$API_VIP" "$(qdig +noedns +short api.default.svc.cluster.local)" "without EDNS"
}

test_short_names() {
    local out
    out=$(in_pod_dns 10 client getent hosts api)
    assert_match "$out" "^$API_VIP[[:space:]]+api\.default\.svc\.cluster\.local" "getent hosts api (search path)"
    out=$(in_pod_dns 10 client curl -s -m 5 http://api:80/)
    assert_match "$out" "^be[12]$" "curl http://api/ by its short name reaches a backend"
    out=$(in_pod_dns 10 client nslookup api)
    assert_contains "$out" "Address: $API_VIP" "nslookup api (bind9)"
    out=$(in_pod_dns 10 client busybox nslookup api.default.svc.cluster.local "$DNS_IP")
    assert_contains "$out" "$API_VIP" "busybox nslookup"
    out=$(in_pod_dns 10 client getent hosts api.prod)
    assert_eq "" "$out" "no Service api in namespace prod"
}

test_external_name() {
    local out
    out=$(in_pod_dns 10 client nslookup my-service.prod)
    assert_contains "$out" "canonical name = backend.example.test" "nslookup shows the CNAME"
    assert_contains "$out" "Address: ${POD_IP[be1]}" "and the target's address, from the upstream"
    assert_not_contains "$out" "SERVFAIL" "the AAAA half answered too (NODATA from the upstream)"
    out=$(qdig my-service.prod.svc.cluster.local)
    assert_match "$out" "my-service\.prod\.svc\.cluster\.local\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+CNAME[[:space:]]+backend\.example\.test\." \
        "dig: the CNAME"
    assert_match "$out" "backend\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+${POD_IP[be1]//./\\.}" \
        "dig: the chased A record"
    # The seed scenario: a pod in namespace prod curls the ExternalName by its
    # short name; glibc does not chase CNAMEs itself.
    out=$(in_pod_dns_ns prod 10 client curl -s -m 5 http://my-service/)
    assert_eq "be1" "$out" "curl http://my-service/ reaches the pod the upstream names"
    out=$(svcctl get svc -n prod my-service)
    assert_contains "$out" "backend.example.test" "svcctl get svc shows the target as EXTERNAL-IP"
}

test_headless() {
    # No sleep anywhere: each answer follows its apply at once.
    assert_eq "${POD_IP[be1]} ${POD_IP[be2]}" "$(short db.default.svc.cluster.local)" "one A per ready endpoint"
    assert_eq "${POD_IP[be2]}" "$(short db-1.db.default.svc.cluster.local)" "hostname record"
    db_slice "- {addresses: [${POD_IP[be1]}], hostname: db-0}" "- {addresses: [${POD_IP[be2]}]}" \
        || { _fail "apply db slice"; return; }
    assert_eq "${POD_IP[be1]}" "$(short db-0.db.default.svc.cluster.local)" "hostname record kept"
    assert_eq "NXDOMAIN" "$(rcode db-1.db.default.svc.cluster.local)" "a hostname gone is gone"
    assert_eq "${POD_IP[be2]}" "$(short 10-244-1-12.db.default.svc.cluster.local)" "dashed-address record"
    assert_eq "5432 10-244-1-12.db.default.svc.cluster.local. 5432 db-0.db.default.svc.cluster.local." \
        "$(qdig +short SRV _pg._tcp.db.default.svc.cluster.local | awk '{ print $3, $4 }' | sort | tr '\n' ' ' | sed 's/ $//')" \
        "SRV per endpoint (port and target)"
    assert_eq "db-0.db.default.svc.cluster.local." "$(short -x ${POD_IP[be1]})" "PTR of a headless endpoint"
    db_slice "- {addresses: [${POD_IP[be1]}], hostname: db-0}" \
        "- {addresses: [${POD_IP[be2]}], conditions: {ready: false}}" || { _fail "apply db slice"; return; }
    assert_eq "${POD_IP[be1]}" "$(short db.default.svc.cluster.local)" "a not-ready endpoint leaves at once"
    svcctl delete endpointslice db-1 >/dev/null || _fail "delete db slice"
    assert_eq "NXDOMAIN" "$(rcode db.default.svc.cluster.local)" "every endpoint gone: NXDOMAIN"
}

test_follows_apply() {
    local f=$TOPO_TMP/late.yaml
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: late, namespace: default}\nspec:\n  clusterIP: 10.96.0.77\n  ports:\n  - {port: 80}\n' >"$f"
    svcctl apply -f "$f" >/dev/null || { _fail "apply late"; return; }
    assert_eq "10.96.0.77" "$(short late.default.svc.cluster.local)" "a new Service answers right after apply"
    svcctl delete svc late >/dev/null || _fail "delete late"
    assert_eq "NXDOMAIN" "$(rcode late.default.svc.cluster.local)" "and is gone right after delete"
}

test_forwarding() {
    local out before after
    out=$(qdig upstream.example.test)
    assert_contains "$out" "status: NOERROR" "forwarded name answered"
    # RA: recursion is offered (dnsmasq sets AA on its own --address answers:
    # forwarded as it came).
    assert_match "$out" "flags: qr( aa)? rd ra;" "RA set for a forwarded answer"
    assert_match "$out" "upstream\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+A[[:space:]]+192\.0\.2\.7" "the upstream's record"
    assert_eq '"from dnsmasq"' "$(short TXT txt.example.test)" "TXT forwarded"
    before=$(stats_json | jq -r '.dns.cacheHits // empty')
    assert_eq "192.0.2.7" "$(short upstream.example.test)" "asked again"
    after=$(stats_json | jq -r '.dns.cacheHits // empty')
    assert_ge "${after:-0}" "$((${before:-0} + 1))" "the second answer came from the cache"
    assert_eq "192.0.2.7" "$(qdig +tcp +short upstream.example.test)" "forwarded over TCP"
}

test_counters() {
    local s m lint
    s=$(svcctl stats)
    assert_match "$s" "NXDOMAIN[[:space:]]+[1-9]" "svcctl stats counts NXDOMAIN answers"
    assert_match "$s" "NODATA[[:space:]]+[1-9]" "svcctl stats counts NODATA answers"
    assert_match "$s" "forwarded [1-9]" "svcctl stats counts forwarded queries"
    m=$(metrics)
    assert_match "$m" 'svclb_dns_responses_total\{result="NOERROR"\} [1-9]' "/metrics: answers by result"
    assert_match "$m" 'svclb_dns_queries_total\{transport="tcp"\} [1-9]' "/metrics: TCP queries"
    assert_match "$m" 'svclb_dns_cache_hits_total [1-9]' "/metrics: cache hits"
    lint=$(promtool check metrics <<<"$m" 2>&1)
    assert_eq 0 $? "promtool check metrics: $lint"
    s=$(svcctl status)
    assert_match "$s" "Cluster DNS:[[:space:]]+$DNS_IP:53 for cluster.local" "svcctl status shows the DNS server"
}

# kubernetes#56903: glibc sends A and AAAA in parallel from one socket; with
# kube-proxy's DNAT a conntrack race dropped one and the lookup waited 5 s.
# Here the queries meet a local socket: 1,000 lookups, none slow.
test_getent_race() {
    local out slow fails max
    out=$(in_pod_dns 120 client sh -c '
        i=0; end=$(( $(date +%s) + 90 ))
        while [ $i -lt 1000 ] && [ $(date +%s) -lt $end ]; do
            t0=$(date +%s%N)
            getent ahosts api >/dev/null || echo FAIL
            echo ms $(( ($(date +%s%N) - t0) / 1000000 ))
            i=$((i + 1))
        done')
    fails=$(grep -c FAIL <<<"$out")
    max=$(awk '$1 == "ms" && $2 > m { m = $2 } END { print m + 0 }' <<<"$out")
    # A resolver retry waits glibc's 5 s timeout: 4 s tells one from a slow
    # fork on a loaded machine.
    slow=$(awk '$1 == "ms" && $2 >= 4000' <<<"$out" | wc -l)
    log "1,000 getent ahosts: slowest ${max} ms, failures $fails"
    assert_eq 1000 "$(grep -c '^ms ' <<<"$out")" "1,000 lookups ran"
    assert_eq 0 "$fails" "every lookup answered"
    assert_eq 0 "$slow" "no lookup took a resolver retry (>= 4 s; glibc's timeout is 5 s)"
}

# A query flood (bounded: 40,000 queries or 10 s) must not stall svcctl.
FLOOD_PY='
import socket, struct, sys, time
dst = (sys.argv[1], 53)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
q = b"".join(bytes([len(l)]) + l.encode() for l in "api.default.svc.cluster.local".split(".")) + b"\0"
end = time.time() + 10
for i in range(40000):
    if time.time() > end: break
    s.sendto(struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1), dst)
    try:
        while True: s.recv(4096)
    except BlockingIOError:
        pass
'
test_flood() {
    local fpid out
    in_pod_t 20 client "$PY" -c "$FLOOD_PY" "$DNS_IP" & fpid=$!
    TOPO_PIDS+=("$fpid")
    sleep 0.3
    out=$(svcctl get svc api 2>&1)
    assert_contains "$out" "$API_VIP" "svcctl answers during a query flood"
    wait "$fpid"
    assert_eq "$API_VIP" "$(short api.default.svc.cluster.local)" "DNS answers after the flood"
}

run_test "dns: the zone's records (A, NODATA, NXDOMAIN+SOA, SRV, PTR, TXT, TCP, no EDNS)" test_records
run_test "dns: short names through the search path (getent, curl, nslookup, busybox)" test_short_names
run_test "dns: ExternalName: CNAME chased upstream, curl http://my-service/" test_external_name
run_test "dns: headless Service follows its endpoints" test_headless
run_test "dns: answers follow apply and delete at once" test_follows_apply
run_test "dns: other names forwarded to the upstream and cached" test_forwarding
run_test "dns: counters in svcctl stats, /metrics and status" test_counters
run_test "dns: 1,000 getent ahosts, no 5 s retry" test_getent_race
run_test "dns: a query flood does not stall the API" test_flood
finish
