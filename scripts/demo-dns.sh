#!/usr/bin/env bash
# svclb cluster DNS demo: a node and three pods in network namespaces, svclbd
# answering the cluster zone on 10.96.0.10 (its default --cluster-dns) and
# forwarding other names to a real upstream (dnsmasq in pod be2). The client
# pod has the resolv.conf a kubelet writes (search path, ndots:5) and uses
# ordinary clients:
#   - curl http://api/        a ClusterIP Service by its short name
#   - nslookup my-service     an ExternalName Service (CNAME, target chased upstream)
#   - curl http://my-service/ ... reaching the pod the upstream names
#   - dig db                  a headless Service: its pods' addresses, SRV, PTR
#
#   scripts/demo-dns.sh       (also: scripts/demo.sh dns)
#
# Needs root. Nothing is added to the root namespace's interfaces.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
[[ $(id -u) == 0 ]] || { echo "demo-dns.sh: needs root" >&2; exit 1; }
export SVCLB_BIN=${SVCLB_BIN:-$REPO/build/bin}
if [[ ! -x $SVCLB_BIN/svclbd || ! -x $SVCLB_BIN/svcctl ]]; then
    (cd "$REPO" && scripts/build.sh) || { echo "build failed" >&2; exit 1; }
fi
# shellcheck source=../tests/testlib/topo.sh
source "$REPO/tests/testlib/topo.sh"
# shellcheck source=../tests/testlib/dns.sh
source "$REPO/tests/testlib/dns.sh"

hdr() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
rc=0
# run NS REGEX CMD...: show the command as the pod's shell would, run it in
# the client pod (in namespace NS's search path), check its output.
run() {
    local ns=$1 want=$2 out; shift 2
    printf '\033[2mclient(%s)$ %s\033[0m\n' "$ns" "$*"
    out=$(in_pod_dns_ns "$ns" 15 client "$@" 2>&1)
    sed 's/^/  /' <<<"$out"
    [[ $out =~ $want ]] || { echo "  FAILED: expected /$want/" >&2; rc=1; }
}

dns_lab_init || exit 1
topo_init "svclb-dns-demo-$$"
hdr "topology: node, pods be1 ${POD_IP[be1]}, be2 ${POD_IP[be2]}, client ${POD_IP[client]}"
topo_up || exit 1
dns_upstream_up || exit 1
echo "  upstream DNS: dnsmasq in be2 ($DNS_UPSTREAM_IP): backend.example.test -> be1"
hdr "svclbd (cluster DNS on $DNS_IP, upstream $DNS_UPSTREAM_IP)"
daemon_start && daemon_wait_ready || exit 1
svcctl status | grep -E "Cluster DNS|DNS Upstreams"
hdr "svcctl apply -f examples/dns-services.yaml"
svcctl apply -f "$REPO/examples/dns-services.yaml" || exit 1
svcctl get svc -A

hdr "the client pod's /etc/resolv.conf (as the kubelet writes it)"
sed 's/^/  /' "$(dns_resolv_conf default)"
hdr "a ClusterIP Service by its short name"
run default '^be[12]$' curl -s -m 5 http://api/
run default '10\.96\.0\.30' getent hosts api
hdr "an ExternalName Service (namespace prod)"
run prod 'canonical name = backend\.example\.test' nslookup my-service
run prod '^be1$' curl -s -m 5 http://my-service/
hdr "a headless Service"
run default '10\.244\.1\.11' dig +noall +answer db.default.svc.cluster.local
run default 'db-0\.db\.default\.svc\.cluster\.local' dig +short SRV _pg._tcp.db.default.svc.cluster.local
run default 'db-0\.db\.default\.svc\.cluster\.local' dig +short -x 10.244.1.11
run default 'Address: 10\.244\.1\.1[12]' busybox nslookup db.default.svc.cluster.local "$DNS_IP"
hdr "counters"
svcctl stats | sed -n '/DNS RESULT/,$p'
((rc == 0)) || { echo "demo DNS checks FAILED (logs: $TOPO_TMP)" >&2; exit 1; }
hdr "tearing down"
exit 0
