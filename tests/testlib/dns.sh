# shellcheck shell=bash
# Cluster DNS labs (tests/e2e/dns.sh, scripts/demo-dns.sh), on top of
# topo.sh: pods with the resolv.conf the kubelet writes, and a real upstream
# DNS server (dnsmasq) in pod be2 for the names outside the cluster zone.
#
#   dns_lab_init                  resolv.conf files; DAEMON_FLAGS_EXTRA += --dns-upstream
#   (topo_up, daemon_start ...)
#   dns_upstream_up               dnsmasq in be2 (backend.example.test -> be1, ...)
#   in_pod_dns SECONDS POD CMD... CMD in POD with namespace default's resolv.conf
#   in_pod_dns_ns NS SECONDS POD CMD...  ... with namespace NS's search path

DNS_IP=10.96.0.10              # svclbd's default --cluster-dns
DNS_UPSTREAM_IP=10.244.1.12    # be2 (topo.sh POD_IP[be2])

dns_lab_init() {
    local t
    for t in dig nslookup busybox getent dnsmasq unshare; do
        command -v "$t" >/dev/null || { log "missing tool: $t"; return 1; }
    done
    DAEMON_FLAGS_EXTRA+=(--dns-upstream "$DNS_UPSTREAM_IP")
}

# The kubelet's resolv.conf for a pod in namespace NS (ClusterFirst).
dns_resolv_conf() {
    local f=$TOPO_TMP/resolv-$1.conf
    [[ -f $f ]] || printf 'search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n' \
        "$1" "$DNS_IP" >"$f"
    echo "$f"
}

# The pod's own view of /etc/resolv.conf: a bind mount in a private mount
# namespace (nsenter, not `ip netns exec`, which would hide /sys/fs/bpf).
in_pod_dns_ns() {
    local ns=$1 t=$2 p=$3 rc; shift 3
    rc=$(dns_resolv_conf "$ns")
    in_pod_t "$t" "$p" unshare --mount --propagation private \
        sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$rc" "$@"
}
in_pod_dns() { local t=$1 p=$2; shift 2; in_pod_dns_ns default "$t" "$p" "$@"; }

# dnsmasq in be2 answering a few names outside the cluster zone (and
# nothing else: no resolv.conf, no hosts file; example.test is local to it,
# so AAAA gets NODATA and unknown names NXDOMAIN, not REFUSED; TTL 60, as
# its default 0 would make every answer uncacheable), and HTTP on be1:80 for the
# ExternalName scenario (curl http://my-service/ lands on be1).
dns_upstream_up() {
    bg_ns "$(pod_ns be2)" dnsmasq --keep-in-foreground --no-resolv --no-hosts --user=root \
        --listen-address="$DNS_UPSTREAM_IP" --bind-interfaces --port=53 --pid-file= --local-ttl=60 \
        --local=/example.test/ --host-record=backend.example.test,"${POD_IP[be1]}" \
        --host-record=upstream.example.test,192.0.2.7 \
        --txt-record=txt.example.test,"from dnsmasq" --log-queries --log-facility="$TOPO_TMP/dnsmasq.log"
    retry 50 0.1 eval "[[ \$(in_pod_t 3 client dig +short +time=1 +tries=1 @$DNS_UPSTREAM_IP upstream.example.test) == 192.0.2.7 ]]" \
        || { log "dnsmasq in be2 did not come up"; return 1; }
    mkdir -p "$TOPO_TMP/www80"; echo be1 >"$TOPO_TMP/www80/index.html"
    bg_ns "$(pod_ns be1)" "$PY" -m http.server 80 --bind "${POD_IP[be1]}" --directory "$TOPO_TMP/www80" \
        >"$TOPO_TMP/http80.log" 2>&1
    retry 50 0.1 eval "[[ \$(in_pod_t 3 client curl -s -m 1 http://${POD_IP[be1]}/) == be1 ]]" \
        || { log "HTTP server on be1:80 did not come up"; return 1; }
}
