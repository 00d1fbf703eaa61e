#!/usr/bin/env bash
# packet_fuzz --replay (issue 18). A run whose conntrack state is corrupted
# on purpose (--corrupt-at: the REPLY entries of the latest flows name a
# wrong port, as a datapath bug could leave them) must fail and record its
# window; replaying that recording must reproduce the same first violation
# (packet, program, message), and a recording without the corrupting write
# must not reproduce it (the replay really runs the frames).
# The recorded window starts at the last counter check (--check-every), so
# the run checks only at its end: the window then always holds the
# corrupting write, however late the first corrupted flow is answered (CI
# once saw it 8,448 frames after the write, past a check).
# Usage: replay.sh PATH/TO/packet_fuzz
set -euo pipefail
fuzz=${1:?usage: replay.sh PATH/TO/packet_fuzz}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

set +e
"$fuzz" --packets 60000 --check-every 60000 --seed 5 --corrupt-at 10000 --record "$work/r.replay" --quiet >"$work/run.log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "FAIL: the corrupted run exited $rc, want 1 (a violation)"; tail -20 "$work/run.log"; exit 1
fi
[ -s "$work/r.replay" ] || { echo "FAIL: no recording written"; tail -20 "$work/run.log"; exit 1; }
recorded=$(grep -m1 '^VIOLATION #1 ' "$work/run.log")
echo "recorded: $recorded"

if ! "$fuzz" --replay "$work/r.replay" >"$work/replay.log" 2>&1; then
  echo "FAIL: the replay did not reproduce the violation"; grep '^replay' "$work/replay.log"; exit 1
fi
grep '^replay' "$work/replay.log"
replayed=$(grep -m1 '^VIOLATION #1 ' "$work/replay.log" || true)
if [ "$replayed" != "$recorded" ]; then
  echo "FAIL: first violation differs:"; echo "  run:    $recorded"; echo "  replay: $replayed"; exit 1
fi

# Negative control: without the corrupting write the window is clean.
python3 - "$work/r.replay" "$work/clean.replay" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
n = len(j["events"])
j["events"] = [e for e in j["events"] if e["kind"] != "write"]
assert len(j["events"]) == n - 1, "expected exactly one corrupting write in the window"
json.dump(j, open(sys.argv[2], "w"))
PY
if "$fuzz" --replay "$work/clean.replay" >"$work/clean.log" 2>&1; then
  echo "FAIL: a recording without the corruption 'reproduced' the violation"; grep '^replay' "$work/clean.log"; exit 1
fi
grep -q '^replay: replayed violation: none' "$work/clean.log" || {
  echo "FAIL: the clean replay found a violation:"; grep '^VIOLATION\|^replay' "$work/clean.log" | grep -v 'CT entry' | tail -8; exit 1; }
echo "PASS: replay reproduced '$recorded'; the clean window replays clean"
