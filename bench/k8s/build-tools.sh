#!/usr/bin/env bash
# Builds the bench-only Kubernetes tools of bench/k8s/tools (its own Go
# module): kube-proxy (cmd/kube-proxy) from the same k8s.io/kubernetes
# release as the test control plane (tests/k8s/tools/go.mod; checked here),
# and svclb-k8sload (./k8sload, client-go). Like tests/k8s/build-tools.sh,
# whose cache it shares: everything OUTSIDE the build tree, in
# $SVCLB_K8S_CACHE (default /var/cache/svclb-k8s), binaries in bench-bin/
# with a stamp of their own (the test binaries and their stamp are not
# touched), CGO_ENABLED=0. A repeated call is a no-op.
#
# Exit codes: 0 built or up to date; 77 no Go toolchain; anything else a
# failure. Prints the bin directory on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOOLS_DIR=$HERE/tools
TEST_TOOLS_DIR=$(cd "$HERE/../../tests/k8s/tools" && pwd)
CACHE=${SVCLB_K8S_CACHE:-/var/cache/svclb-k8s}
BIN=$CACHE/bench-bin

GO=${GO:-$(command -v go || true)}
[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
if [[ -z $GO || ! -x $GO ]]; then
  echo "bench k8s tools: no Go toolchain (${GO:-go not in PATH})" >&2
  exit 77
fi

version() { awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1[.]/ { print $2 }' "$1/go.mod"; }
K8S_VERSION=$(version "$TOOLS_DIR")
if [[ $K8S_VERSION != "$(version "$TEST_TOOLS_DIR")" ]]; then
  echo "bench k8s tools: bench/k8s/tools/go.mod has k8s.io/kubernetes ${K8S_VERSION:-none}," \
       "tests/k8s/tools/go.mod $(version "$TEST_TOOLS_DIR"): make them equal (and their replace blocks)" >&2
  exit 1
fi
[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "bench k8s tools: bad version '$K8S_VERSION'" >&2; exit 1; }
K8S_MINOR=${BASH_REMATCH[1]}

mkdir -p "$CACHE" "$BIN"
exec 9>"$CACHE/.build.lock"
flock 9   # one Go build at a time on this machine (shared with tests/k8s/build-tools.sh)

stamp=$( { cat "$TOOLS_DIR/go.mod" "$TOOLS_DIR/go.sum" "$TOOLS_DIR"/k8sload/*.go "$0"; "$GO" version; } |
  sha256sum | cut -d' ' -f1)
if [[ -x $BIN/kube-proxy && -x $BIN/svclb-k8sload && -f $BIN/.stamp && $(cat "$BIN/.stamp") == "$stamp" ]]; then
  echo "bench k8s tools: up to date in $BIN (Kubernetes $K8S_VERSION)" >&2
  echo "$BIN"
  exit 0
fi

export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOPATH=$CACHE/gopath
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
ldflags="-s -w"
for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$K8S_MINOR" gitTreeState=clean; do
  ldflags+=" -X k8s.io/component-base/version.$kv"
done
t0=$(date +%s)
echo "bench k8s tools: building kube-proxy $K8S_VERSION and svclb-k8sload into $BIN" >&2
rm -f "$BIN/.stamp"
(cd "$TOOLS_DIR" &&
  nice -n 10 "$GO" build -trimpath -ldflags "$ldflags" -o "$BIN/" k8s.io/kubernetes/cmd/kube-proxy &&
  nice -n 10 "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/svclb-k8sload" ./k8sload)
echo "$stamp" >"$BIN/.stamp"
echo "bench k8s tools: built in $(($(date +%s) - t0)) s" >&2
echo "$BIN"
