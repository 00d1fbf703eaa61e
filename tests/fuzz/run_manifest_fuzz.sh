#!/usr/bin/env bash
# Builds the libFuzzer manifest target (model/*.cpp, common/yaml.cpp and
# manifest_fuzz.cpp,
# clang++ -fsanitize=fuzzer,address,undefined; outside the CMake build,
# which may use gcc), runs the seed corpus (tests/unit/corpus/{valid,invalid}
# and examples/), then fuzzes for --time seconds.
#
#   run_manifest_fuzz.sh [--time SECONDS] [--work DIR]
# Exit 0: no crash, leak, sanitizer report, timeout or broken invariant.
# A finding is kept as DIR/artifacts/crash-* (rerun: DIR/manifest_fuzz FILE).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TIME=60
WORK=""
while (($#)); do
    case $1 in
        --time) TIME=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        *) echo "usage: $0 [--time SECONDS] [--work DIR]" >&2; exit 2 ;;
    esac
done
CXX=${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}
[[ -n $CXX ]] || { echo "run_manifest_fuzz: no clang++ (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 2; }
WORK=${WORK:-$(mktemp -d /tmp/svclb-manifest-fuzz.XXXXXX)}
mkdir -p "$WORK/corpus" "$WORK/seeds" "$WORK/artifacts"
BIN=$WORK/manifest_fuzz

SOURCES=("$REPO"/model/*.cpp "$REPO"/common/yaml.cpp "$HERE/manifest_fuzz.cpp")
newest=$(ls -t "${SOURCES[@]}" "$REPO"/model/*.h "$REPO"/common/*.h | head -1)
if [[ ! -x $BIN || $newest -nt $BIN ]]; then
    echo "run_manifest_fuzz: building $BIN with $CXX" >&2
    # shellcheck disable=SC2046
    timeout 600 "$CXX" -std=c++20 -O1 -g -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -I"$REPO" $(pkg-config --cflags yaml-0.1) \
        "${SOURCES[@]}" -o "$BIN.tmp" \
        $(pkg-config --libs yaml-0.1) -lfmt -luuid
    mv "$BIN.tmp" "$BIN"
fi

rm -f "$WORK"/artifacts/*
cp "$REPO"/tests/unit/corpus/valid/*.yaml "$REPO"/tests/unit/corpus/invalid/*.yaml "$WORK/seeds/"
# Inputs that once broke something (see docs/reliability.md).
cp "$HERE"/manifest_regressions/* "$WORK/seeds/"
cp "$REPO"/examples/*.yaml "$WORK/seeds/" 2>/dev/null || true
nseeds=$(ls "$WORK/seeds" | wc -l)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

report() {
    local rc=$1 what=$2 f
    echo "run_manifest_fuzz: FAILED ($what, exit $rc)" >&2
    for f in "$WORK"/artifacts/*; do
        [[ -e $f ]] || continue
        echo "--- finding $f ($(stat -c %s "$f") bytes; rerun: $BIN $f):" >&2
        head -c 2000 "$f" | cat -v >&2; echo >&2
    done
    exit 1
}

echo "run_manifest_fuzz: seed corpus ($nseeds files)" >&2
timeout 300 "$BIN" -runs=0 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$WORK/artifacts/" \
    "$WORK/seeds" >"$WORK/seeds.log" 2>&1 || { rc=$?; tail -40 "$WORK/seeds.log" >&2; report $rc "seed corpus"; }
echo "run_manifest_fuzz: seed corpus OK" >&2

if ((TIME > 0)); then
    echo "run_manifest_fuzz: fuzzing for ${TIME}s (corpus $WORK/corpus)" >&2
    timeout $((TIME + 120)) "$BIN" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -dict="$HERE/manifest.dict" -print_final_stats=1 \
        -artifact_prefix="$WORK/artifacts/" "$WORK/corpus" "$WORK/seeds" \
        >"$WORK/fuzz.log" 2>&1 || { rc=$?; tail -60 "$WORK/fuzz.log" >&2; report $rc "fuzzing"; }
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$WORK/fuzz.log" >&2 || true
    tail -1 "$WORK/fuzz.log" >&2 || true
fi
echo "run_manifest_fuzz: OK" >&2
