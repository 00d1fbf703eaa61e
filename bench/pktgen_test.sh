#!/usr/bin/env bash
# ctest bench.pktgen: the pktgen scripts (bench/pktgen) without sending a
# packet. (1) Where the kernel has no pktgen, they fail naming the module and
# the alternative. (2) Against a scratch control directory (PKTGEN_DIR) they
# write the commands the kernel's pktgen expects: device per thread, sizes
# without the FCS, destination, per-thread flows that never overlap.
# (3) Bad flags are refused in words.
set -uo pipefail
DIR=$(cd "$(dirname "$0")/pktgen" && pwd)
T=$(mktemp -d /tmp/svclb-pktgen-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok   $1"; }
bad()  { echo "FAIL $1"; fails=$((fails + 1)); }
has()  { grep -qxF -- "$2" "$1" && ok "$3" || bad "$3 (no line '$2' in $(basename "$1"))"; }

ARGS=(-i eth9 -d 10.96.0.10 -p 53 -m 02:00:00:00:00:01 -D 1)

# (1) A kernel without pktgen: a control directory that does not exist and
# a modprobe that fails (a stub: the test never loads a module or sends).
mkdir -p "$T/stub"
printf '#!/bin/sh\nexit 1\n' >"$T/stub/modprobe"
chmod +x "$T/stub/modprobe"
if [ "$(id -u)" = 0 ]; then
    out=$(PATH="$T/stub:$PATH" PKTGEN_DIR="$T/none" bash "$DIR/pktgen_svc_udp.sh" "${ARGS[@]}" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -q "no pktgen module" <<<"$out" && grep -q "svclb-trafficgen" <<<"$out"; then
        ok "no module: exits $rc naming the module and svclb-trafficgen"
    else
        bad "no module: rc=$rc, output: $out"
    fi
fi

# (2) The command sequences.
run() {  # run SCRIPT TRACE ARGS...
    local s=$1 tr=$2; shift 2
    mkdir -p "$T/ctl-$tr"
    PKTGEN_DIR="$T/ctl-$tr" PG_TRACE="$T/$tr" timeout 30 bash "$DIR/$s" "$@" >"$T/$tr.out" 2>&1 \
        || bad "$s $*: exit $? ($(cat "$T/$tr.out"))"
}
run pktgen_svc_udp.sh udp "${ARGS[@]}" -t 2 -F 100 -s 128 -n 5000 -S 10.0.0.1-10.0.0.9
has "$T/udp" "pgctrl: reset" "udp: resets pktgen first"
has "$T/udp" "kpktgend_0: add_device eth9@0" "udp: thread 0 gets eth9@0"
has "$T/udp" "kpktgend_1: add_device eth9@1" "udp: thread 1 gets eth9@1"
has "$T/udp" "eth9@1: pkt_size 124" "udp: -s 128 is pkt_size 124 (no FCS)"
has "$T/udp" "eth9@0: count 5000" "udp: -n per thread"
has "$T/udp" "eth9@0: dst 10.96.0.10" "udp: destination address"
has "$T/udp" "eth9@1: udp_dst_min 53" "udp: destination port"
has "$T/udp" "eth9@0: udp_src_max 10099" "udp: thread 0 ports 10000-10099"
has "$T/udp" "eth9@1: udp_src_min 10100" "udp: thread 1 ports from 10100 (no overlap)"
has "$T/udp" "eth9@1: src_max 10.0.0.9" "udp: -S source range"
has "$T/udp" "pgctrl: start" "udp: started"
has "$T/udp" "pgctrl: stop" "udp: stopped after -D"

run pktgen_svc_newflow.sh nf "${ARGS[@]}" -t 2 -S 10.1.0.1-10.1.0.100
has "$T/nf" "eth9@0: src_min 10.1.0.1" "newflow: thread 0 from the first address"
has "$T/nf" "eth9@0: src_max 10.1.0.50" "newflow: thread 0 to the middle"
has "$T/nf" "eth9@1: src_min 10.1.0.51" "newflow: thread 1 from the middle (no overlap)"
has "$T/nf" "eth9@1: src_max 10.1.0.100" "newflow: thread 1 to the last address"
run pktgen_svc_newflow.sh nf2 "${ARGS[@]}" -t 2
has "$T/nf2" "eth9@0: udp_src_max 31023" "newflow without -S: thread 0 ports 1024-31023"
has "$T/nf2" "eth9@1: udp_src_min 31024" "newflow without -S: thread 1 ports from 31024"

# (3) Refusals.
refuse() {  # refuse WHAT PATTERN ARGS...
    local what=$1 pat=$2; shift 2
    local out rc
    out=$(PKTGEN_DIR="$T/ctl-x" bash "$DIR/pktgen_svc_udp.sh" "$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && grep -q -- "$pat" <<<"$out"; then ok "refused: $what"; else bad "refused: $what (rc=$rc: $out)"; fi
}
mkdir -p "$T/ctl-x"
refuse "no interface" "-i IFACE is required" -d 10.96.0.10 -m 02:00:00:00:00:01
refuse "duration 0" "DURATION must be" -i eth9 -d 10.96.0.10 -m 02:00:00:00:00:01 -D 0
refuse "duration over 600 s" "DURATION must be" -i eth9 -d 10.96.0.10 -m 02:00:00:00:00:01 -D 601
refuse "65536 flows" "FLOWS must be" -i eth9 -d 10.96.0.10 -m 02:00:00:00:00:01 -F 65536
[ -z "$(ls -A "$T/ctl-x")" ] && ok "refusals wrote nothing" || bad "a refused run wrote $(ls "$T/ctl-x")"

[ "$fails" = 0 ] || exit 1
echo "bench.pktgen: all checks passed"
