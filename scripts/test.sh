#!/usr/bin/env bash
# Builds svclb and runs every test suite: unit (no privileges), BPF packet
# tests (BPF_PROG_TEST_RUN) and end-to-end tests in network namespaces.
# Needs root for the BPF and e2e suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# The pure-code unit tests (model, planner, Maglev, CLI) once more under
# ASan/UBSan, failing on the first report. Skip with SVCLB_NO_ASAN=1.
if [ -z "${SVCLB_NO_ASAN:-}" ]; then
  echo "== unit tests under ASan/UBSan"
  cmake -S . -B build-asan -DSVCLB_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-asan -j"$(nproc)" --target unit_tests
  build-asan/bin/unit_tests --gtest_brief=1
fi

# The k8s.* tests' control plane (kube-apiserver, kube-controller-manager,
# kubectl, etcd) from upstream Go modules, cached in /var/cache/svclb-k8s
# (docs/testing-k8s.md): built here so its time shows apart from the tests';
# without Go those tests skip. A failed build is left to them to report.
echo "== k8s test tools"
k8s_rc=0
bash tests/k8s/build-tools.sh >/dev/null || k8s_rc=$?
case $k8s_rc in
  0) ;;
  77) echo "k8s test tools: no Go toolchain, the k8s.* tests will be skipped" ;;
  *) echo "k8s test tools: build failed (exit $k8s_rc); the k8s.* tests will fail" >&2 ;;
esac

echo "== all suites (unit, BPF packet tests, fuzzing, end to end, k8s control plane)"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"
