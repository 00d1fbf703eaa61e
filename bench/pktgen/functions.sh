# shellcheck shell=bash
# Helpers for the pktgen scripts, in the style of the kernel's
# samples/pktgen/functions.sh: pg_ctrl / pg_thread / pg_set write the
# /proc/net/pktgen control files.
# PKTGEN_DIR: the control directory (tests point it at a scratch dir);
# PG_TRACE: a file every command written is also appended to ("FILE: CMD").
PGDIR=${PKTGEN_DIR:-/proc/net/pktgen}

err() { echo "ERROR: $*" >&2; exit 1; }
info() { [ -n "${VERBOSE:-}" ] && echo "$*" >&2; return 0; }

# Fails clearly when the kernel has no pktgen (CONFIG_NET_PKTGEN=m/y).
pg_require() {
    [ "$(id -u)" = 0 ] || err "pktgen needs root"
    if [ ! -d "$PGDIR" ]; then
        modprobe pktgen 2>/dev/null || true
    fi
    if [ ! -d "$PGDIR" ]; then
        err "this kernel has no pktgen module (modprobe pktgen failed, no $PGDIR).
       Use svclb-trafficgen (bench/trafficgen.cpp: XDP live frames) instead,
       or run on a node whose kernel ships CONFIG_NET_PKTGEN."
    fi
}

proc_cmd() {  # proc_cmd FILE CMD...
    local f=$1; shift
    if [ -n "${PG_TRACE:-}" ]; then echo "$f: $*" >>"$PG_TRACE"; fi
    echo "$*" > "$PGDIR/$f" || err "pktgen: write '$*' to $f failed"
    if grep -q "^Result: OK" "$PGDIR/$f" 2>/dev/null || ! grep -q "^Result:" "$PGDIR/$f" 2>/dev/null; then
        return 0
    fi
    grep "^Result:" "$PGDIR/$f" >&2
    err "pktgen: '$*' on $f"
}
pg_ctrl()   { proc_cmd pgctrl "$@"; }
pg_thread() { local t=$1; shift; proc_cmd "kpktgend_$t" "$@"; }
pg_set()    { local d=$1; shift; proc_cmd "$d" "$@"; }

# Parameters shared by the scripts (kernel samples' flags):
#  -i IFACE  -d DST_IP  -m DST_MAC  -p DST_PORT  -s PKT_SIZE  -t THREADS
#  -f FIRST_CPU  -n COUNT (per thread, 0 = until duration)  -D DURATION_S
#  -F FLOWS (distinct source ports)  -S SRC_MIN-SRC_MAX (source addresses)
#  -b BURST  -v
pg_parse() {
    DEV="" DEST_IP="" DST_MAC="" DST_PORT=80 PKT_SIZE=64 THREADS=1 F_THREAD=0
    COUNT=0 DURATION=10 FLOWS=1 SRC_RANGE="" BURST=1 VERBOSE=""
    while getopts "i:d:m:p:s:t:f:n:D:F:S:b:vh" opt; do
        case $opt in
            i) DEV=$OPTARG ;; d) DEST_IP=$OPTARG ;; m) DST_MAC=$OPTARG ;;
            p) DST_PORT=$OPTARG ;; s) PKT_SIZE=$OPTARG ;; t) THREADS=$OPTARG ;;
            f) F_THREAD=$OPTARG ;; n) COUNT=$OPTARG ;; D) DURATION=$OPTARG ;;
            F) FLOWS=$OPTARG ;; S) SRC_RANGE=$OPTARG ;; b) BURST=$OPTARG ;; v) VERBOSE=1 ;;
            h|*) usage; exit 2 ;;
        esac
    done
    [ -n "$DEV" ] || err "-i IFACE is required"
    [ -n "$DEST_IP" ] || err "-d DST_IP (the ClusterIP or node address) is required"
    [ -n "$DST_MAC" ] || err "-m DST_MAC (next hop MAC) is required"
    ((DURATION > 0 && DURATION <= 600)) || err "-D DURATION must be 1..600 s"
    ((COUNT >= 0 && COUNT <= 2000000000)) || err "-n COUNT must be 0..2e9"
    ((FLOWS >= 1 && FLOWS <= 65535)) || err "-F FLOWS must be 1..65535"
}

ip2int() { local IFS=.; set -- $1; echo $((($1 << 24) | ($2 << 16) | ($3 << 8) | $4)); }
int2ip() { echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"; }

# Runs the configured devices for at most DURATION seconds (bounded), then
# stops pktgen and prints each device's result line.
pg_run_bounded() {
    local t0 pid
    t0=$(date +%s.%N)
    pg_ctrl "start" &
    pid=$!
    sleep "$DURATION"
    pg_ctrl "stop" || true
    wait "$pid" 2>/dev/null || true
    local dev
    for dev in "$@"; do
        echo "== $dev"
        grep -A2 "^Result" "$PGDIR/$dev" || true
    done
    echo "elapsed $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo "?") s"
}

# Resets everything we configured (also on failure).
pg_cleanup() {
    [ -d "$PGDIR" ] && echo "reset" > "$PGDIR/pgctrl" 2>/dev/null || true
}
