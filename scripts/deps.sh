#!/usr/bin/env bash
# Installs svclb's build and test dependencies from Debian 12 packages when
# any is missing. Idempotent; needs root (apt-get).
set -euo pipefail

# Every program a build step, test, script or benchmark runs comes from one
# of these (a fresh Debian 12 minbase root has only the essential ones:
# coreutils, grep, sed, mawk, dash/bash). scripts/fresh-check.sh proves it.
PKGS=(
  # build: compilers, the one BPF compile (cmake/BpfObject.cmake: clang
  # -target bpf, bpftool gen skeleton) and the libraries
  build-essential cmake pkg-config git
  # the .deb: CPack runs dpkg-shlibdeps for the package's library
  # dependencies (scripts/package.sh); CPackDeb needs `file` for it
  dpkg-dev
  file
  # the tree's format (scripts/format.sh, ctest style.format)
  clang-format-14
  clang llvm libclang-rt-14-dev libbpf-dev libxdp-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev libgtest-dev
  # hashes (sha256: nettle), object uids (libuuid), capabilities (libcap),
  # rtnetlink messages (libmnl), the HTTP server of the health check
  # ports and /metrics (libevent's evhttp), YAML manifests and kubeconfig
  # (libyaml: what go-yaml, and so kubectl, ports)
  nettle-dev uuid-dev libcap-dev libmnl-dev libevent-dev libyaml-dev
  # the Kubernetes API client (k8s/): HTTPS with client certificates and
  # bearer tokens, chunked watch streams (libcurl, OpenSSL flavour: blobs)
  libcurl4-openssl-dev
  # cluster DNS (dns/): DNS messages (ldns), forwarding upstream (c-ares)
  libldns-dev libc-ares-dev
  # labs: ip/tc/bridge/ss (iproute2), nsenter/unshare/mountpoint
  # (util-linux), sysctl (procps), xdp-loader (xdp-tools), modprobe pktgen
  # (kmod), ethtool (offloads, veth stats), tcpdump (ARP captures)
  iproute2 util-linux procps xdp-tools kmod ethtool tcpdump
  # clients, servers and checks: curl, socat, jq, python3 (HTTP/UDP servers,
  # clients, report; standard library only), promtool (prometheus)
  curl socat jq python3 prometheus
  # DNS labs: an upstream server (dnsmasq, without its system service),
  # clients (dig, nslookup: bind9-dnsutils; busybox nslookup)
  dnsmasq-base bind9-dnsutils busybox
  # DNS load (qps of the cluster DNS server: dns_server_tests --dnsperf,
  # bench/dns/qps.sh and its ctest bench.dns_smoke)
  dnsperf
  # the k8s tests' control plane (tests/testlib/k8s.sh): CA, certificates
  # and service-account keys
  openssl
  # benchmarks: the iptables/nftables references (iptables-legacy-restore,
  # nft), charts (gnuplot), pktgen timing (bc)
  iptables nftables gnuplot-nox bc
  # the cluster DNS benchmark (bench/dns/qps.sh; ctest bench.dns_smoke):
  # a peer resolver, run with its own config (its init script never starts:
  # see policy-rc.d below)
  unbound
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Tools, not services: no package's init script may start a daemon (unbound
  # would take 127.0.0.1:53). Where the machine has no policy-rc.d saying
  # so (a fresh root), one that refuses every start is in place for the
  # install and removed after it.
  rcd=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    rcd=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts during its install\nexit 101\n' >"$rcd"
    chmod 755 "$rcd"
    trap 'rm -f "$rcd"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$rcd" ]; then rm -f "$rcd"; trap - EXIT; fi
fi

# kubectl (not a Debian package) is only used by developers to produce
# manifests; the committed corpora do not need it.
