#!/usr/bin/env bash
# Installs svclb's build and test dependencies from Debian 12 packages when
# any is missing. Idempotent; needs root (apt-get).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  clang llvm libclang-rt-14-dev libbpf-dev libxdp-dev bpftool linux-libc-dev libelf-dev zlib1g-dev
  libcli11-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev libgtest-dev
  iproute2 iptables nftables curl socat dnsutils jq python3 procps util-linux
  prometheus xdp-tools kmod gnuplot-nox
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
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl (not a Debian package) is only used by developers to produce
# manifests; the committed corpora do not need it.
