#!/usr/bin/env bash
# Builds the test control plane (docs/testing-k8s.md) from upstream Go
# modules: kube-apiserver, kube-controller-manager and kubectl from
# k8s.io/kubernetes (tests/k8s/tools/go.mod), etcd from go.etcd.io/etcd/server/v3
# (tests/k8s/tools/etcd/go.mod). Test-only: nothing of it is part of svclb.
#
# Everything lives OUTSIDE the build tree, in $SVCLB_K8S_CACHE
# (default /var/cache/svclb-k8s): the module cache, the Go build cache and
# bin/. A stamp (the hash of both go.mod/go.sum, this script and the Go
# version) makes a repeated call a no-op; after a change Go's build cache
# makes it a relink. Prints how long it took.
#
# Exit codes: 0 built or up to date; 77 no Go toolchain (callers skip);
# anything else is a real failure. Prints the bin directory on stdout.
set -euo pipefail
TOOLS_DIR=$(cd "$(dirname "$0")/tools" && pwd)
CACHE=${SVCLB_K8S_CACHE:-/var/cache/svclb-k8s}
BIN=$CACHE/bin

# Go from PATH, else where the machine image installs it (a non-login shell,
# as CI's, may not have /usr/local/go/bin in PATH).
GO=${GO:-$(command -v go || true)}
[[ -z $GO && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
if [[ -z $GO || ! -x $GO ]]; then
  echo "k8s tools: no Go toolchain (${GO:-go not in PATH}): cannot build the test control plane" >&2
  exit 77
fi

# Versions: the Kubernetes release of tools/go.mod (its replace lines name the
# same release of the staging modules, v0.X.Y for v1.X.Y).
K8S_VERSION=$(awk '$1 == "require" { $1 = "" ; $0 = $0 } $1 == "k8s.io/kubernetes" && $2 ~ /^v1[.]/ { print $2 }' "$TOOLS_DIR/go.mod")
[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "k8s tools: no k8s.io/kubernetes version in $TOOLS_DIR/go.mod" >&2; exit 1; }
K8S_MINOR=${BASH_REMATCH[1]}

mkdir -p "$CACHE" "$BIN"
exec 9>"$CACHE/.build.lock"
flock 9   # one build at a time on this machine (worktrees share the cache)

stamp=$( { cat "$TOOLS_DIR/go.mod" "$TOOLS_DIR/go.sum" "$TOOLS_DIR/etcd/go.mod" \
           "$TOOLS_DIR/etcd/go.sum" "$TOOLS_DIR/etcd/main.go" "$0"; "$GO" version; } | sha256sum | cut -d' ' -f1)
want=(kube-apiserver kube-controller-manager kubectl etcd)
uptodate=1
for b in "${want[@]}"; do [[ -x $BIN/$b ]] || uptodate=0; done
if ((uptodate)) && [[ -f $BIN/.stamp && $(cat "$BIN/.stamp") == "$stamp" ]]; then
  echo "k8s tools: up to date in $BIN (Kubernetes $K8S_VERSION)" >&2
  echo "$BIN"
  exit 0
fi

export GOMODCACHE=$CACHE/gomod GOCACHE=$CACHE/gocache GOPATH=$CACHE/gopath
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
# The version the binaries report (kubectl version, /version), as the release
# build's hack/lib/version.sh sets it.
ldflags="-s -w"
for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$K8S_MINOR" gitTreeState=clean; do
  ldflags+=" -X k8s.io/component-base/version.$kv"
done

t0=$(date +%s)
echo "k8s tools: building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kubectl) and etcd with $("$GO" version | cut -d' ' -f3) into $BIN" >&2
rm -f "$BIN/.stamp"
# The machine is shared: build at a lower priority.
(cd "$TOOLS_DIR" && nice -n 10 "$GO" build -trimpath -ldflags "$ldflags" -o "$BIN/" \
   k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
   k8s.io/kubernetes/cmd/kubectl)
t1=$(date +%s)
(cd "$TOOLS_DIR/etcd" && nice -n 10 "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .)
t2=$(date +%s)
echo "$stamp" >"$BIN/.stamp"
echo "k8s tools: built in $((t2 - t0)) s (Kubernetes $((t1 - t0)) s, etcd $((t2 - t1)) s)" >&2
echo "$BIN"
