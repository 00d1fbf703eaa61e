#!/usr/bin/env bash
# Builds the svclb .deb (CPack, cmake/Packaging.cmake) into the build dir,
# building svclbd and svcctl first when needed, and prints the package's
# path on stdout. Install it with `apt-get install ./build/svclb_*.deb`
# (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
bash scripts/deps.sh
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
# Only what the package holds (not the tests and benchmarks).
cmake --build "$BUILD_DIR" -j"$(nproc)" --target svclbd svcctl >&2
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
rm -f "$BUILD_DIR"/svclb_*.deb
(cd "$BUILD_DIR" && cpack -G DEB -B "$BUILD_DIR" >&2) || {
  echo "package: cpack failed (see above; $BUILD_DIR/_CPack_Packages holds its logs)" >&2
  exit 1
}
debs=("$BUILD_DIR"/svclb_*.deb)
[ -f "${debs[0]}" ] || { echo "package: cpack wrote no svclb_*.deb into $BUILD_DIR" >&2; exit 1; }
echo "${debs[0]}"
