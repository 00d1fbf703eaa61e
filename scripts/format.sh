#!/usr/bin/env bash
# Applies the tree's .clang-format files (clang-format-14, Debian
# clang-format-14): the root one (Google, 100 columns) to the C++, bpf/'s
# (kernel style) to the BPF C in bpf/, bench/bpf and tests/e2e/bpf, and to
# maps/svclb_abi.h, which both sides include. `--check` changes nothing and
# exits 1 listing the files that differ.
set -euo pipefail
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-clang-format-14}
command -v "$CF" >/dev/null || { echo "format: $CF not found (scripts/deps.sh installs it)" >&2; exit 2; }
check=0
[ "${1:-}" = --check ] && check=1
# The files: git's list in a clone; in a tree without .git (an unpacked
# archive, as scripts/fresh-check.sh runs) the same sources found on disk.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp')
else
  mapfile -t files < <(find . \( -path './build*' -o -path './.git' \) -prune -o \
    \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -type f -print | sed 's|^\./||' | sort)
fi
[ "${#files[@]}" -gt 0 ] || { echo "format: found no C/C++ sources to check" >&2; exit 2; }
bad=()
for f in "${files[@]}"; do
  style=file
  case $f in maps/svclb_abi.h) style=file:bpf/.clang-format ;; esac
  if [ "$check" = 1 ]; then
    "$CF" --style="$style" "$f" | cmp -s "$f" - || bad+=("$f")
  else
    "$CF" --style="$style" -i "$f"
  fi
done
if [ "${#bad[@]}" -gt 0 ]; then
  printf 'format: not formatted (run scripts/format.sh): %s\n' "${bad[@]}" >&2
  exit 1
fi
