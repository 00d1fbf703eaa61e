#!/usr/bin/env bash
# ctest bench.run_builds: bench/run.sh builds what it runs before running it
# (on a fresh checkout it used to fail with "svclb-bench-perpacket: No such
# file or directory"). A stub cmake on PATH records the calls, so no real
# build happens here: the build dir must be configured and built, in that
# order, and nothing else may run before.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench.run_builds: needs root (bench/run.sh does); skipped"; exit 77; }
tmp=$(mktemp -d /tmp/svclb-bench-build.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/stub"
cat >"$tmp/stub/cmake" <<'STUB'
#!/bin/sh
echo "cmake $*" >>"$CMAKE_LOG"
STUB
chmod +x "$tmp/stub/cmake"
rc=0
CMAKE_LOG=$tmp/cmake.log PATH="$tmp/stub:$PATH" bash "$REPO/bench/run.sh" --build-only --build "$tmp/b" \
    >"$tmp/out.txt" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$tmp/out.txt"; echo "bench.run_builds: bench/run.sh --build-only exited $rc" >&2; exit 1; }
log=$(cat "$tmp/cmake.log" 2>/dev/null || true)
printf '%s\n' "$log"
first=$(sed -n 1p <<<"$log"); second=$(sed -n 2p <<<"$log")
[[ $first == "cmake -S . -B $tmp/b "* ]] || { echo "bench.run_builds: not configured first: '$first'" >&2; exit 1; }
[[ $second == "cmake --build $tmp/b "* ]] || { echo "bench.run_builds: not built second: '$second'" >&2; exit 1; }
echo "bench.run_builds: ok"
