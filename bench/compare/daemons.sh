# Sourced by the side-by-side control-path benches (apply_load.sh,
# ep_latency.sh): one svclbd per build, each in a network namespace of its
# own (loopback only, --cgroup none, a private bpffs dir and state dir),
# all removed on exit. The caller sets `set -euo pipefail` first.
#   daemons_init PREFIX   TMP (a fresh dir) and the EXIT trap
#   daemon_start NAME BIN its svclbd, socket $TMP/NAME.sock, pins under
#                         /sys/fs/bpf/PREFIX-NAME (visible from here)
DAEMON_PIDS=()
DAEMON_NAMES=()

daemons_cleanup() {
    for p in "${DAEMON_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${DAEMON_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    for s in "${DAEMON_NAMES[@]}"; do
        ip netns del "$P-$s" 2>/dev/null || true
        rm -rf "/sys/fs/bpf/$P-$s"
    done
    rm -rf "$TMP"
}

daemons_init() {
    P=$1
    TMP=$(mktemp -d "/tmp/svclb-$P.XXXXXX")
    trap daemons_cleanup EXIT
}

daemon_start() {  # name bindir
    ip netns add "$P-$1"
    DAEMON_NAMES+=("$1")
    ip netns exec "$P-$1" ip link set lo up
    mkdir -p "$TMP/$1-state"
    # nsenter, not `ip netns exec`: that one mounts a private /sys, and the
    # pins (read by svclb-mappoll) would not be visible from here.
    nsenter --net="/run/netns/$P-$1" "$2/svclbd" --bpffs "/sys/fs/bpf/$P-$1" \
        --state-dir "$TMP/$1-state" --socket "$TMP/$1.sock" --metrics-addr 127.0.0.1:0 \
        --cgroup none --max-services 1048576 --max-backends 524288 >"$TMP/$1.log" 2>&1 &
    DAEMON_PIDS+=($!)
    for _ in $(seq 100); do
        "$2/svcctl" --socket "$TMP/$1.sock" status >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "svclbd ($1) did not start:"
    tail "$TMP/$1.log"
    exit 1
}

# The median of the numbers on stdin (one or more per line, space-separated).
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
