#!/usr/bin/env bash
# Builds svclb and runs every test suite: unit (no privileges), BPF packet
# tests (BPF_PROG_TEST_RUN) and end-to-end tests in network namespaces.
# Needs root for the BPF and e2e suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"
