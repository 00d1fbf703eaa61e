#!/usr/bin/env bash
# Runs CI (`bash .ci/run`) on a FRESH Debian 12 root, as CI's machine starts:
# what a developer installed by hand cannot hide a missing install step here.
#
#   scripts/fresh-check.sh [--rebuild] [--worktree] [--keep] [--cmd "COMMAND"]
#
#   --rebuild   make the cached root anew (debootstrap --variant=minbase bookworm)
#   --worktree  test the working tree (tracked + untracked, not ignored) instead
#               of a clean clone of HEAD (what CI tests)
#   --keep      leave the run's root (overlay upper dir) for inspection
#   --cmd CMD   run CMD in the checkout instead of `bash .ci/run`
#
# The root is built once and cached (SVCLB_FRESH_CACHE, default
# /var/cache/svclb-fresh); each run mounts an overlay on top of it, so every
# run starts from the pristine root and the cache never changes. Inside: /proc,
# /sys (with its bpffs and cgroup2 mounts), /dev and a tmpfs /run, the host's
# resolv.conf, the checkout under /src. Every mount is undone on exit (also on
# failure or Ctrl-C). Slow (packages + build + all suites): not part of CI.
# Do not run the e2e suite on the host at the same time: both use the same
# kernel (bpffs, interface names in the root namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${SVCLB_FRESH_CACHE:-/var/cache/svclb-fresh}
SUITE=bookworm
REBUILD=0 WORKTREE=0 KEEP=0 CMD="bash .ci/run"
while [ $# -gt 0 ]; do
    case $1 in
        --rebuild) REBUILD=1 ;;
        --worktree) WORKTREE=1 ;;
        --keep) KEEP=1 ;;
        --cmd) CMD=$2; shift ;;
        *) sed -n '2,20p' "$0" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || { echo "fresh-check: needs root (debootstrap, mounts, chroot)" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock -n 9 || { echo "fresh-check: another run holds $CACHE/lock" >&2; exit 1; }

# The host's Debian mirror (deb822 or one-line sources), else Debian's.
mirror() {
    local m
    m=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 || true)
    [ -n "$m" ] || m=$(awk '$1 == "deb" && $0 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
    echo "${m:-http://deb.debian.org/debian}"
}

ROOT=$CACHE/root
if [ $REBUILD = 1 ] || [ ! -f "$CACHE/root.ok" ]; then
    if ! command -v debootstrap >/dev/null; then
        echo "fresh-check: installing debootstrap (host tool of this script only)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    rm -rf "$ROOT" "$CACHE/root.ok"
    echo "fresh-check: debootstrap --variant=minbase $SUITE from $(mirror) into $ROOT" >&2
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 ||
        { echo "fresh-check: debootstrap failed (see $CACHE/debootstrap.log)" >&2; exit 1; }
    touch "$CACHE/root.ok"
fi

RUN=$(mktemp -d /var/tmp/svclb-fresh-run.XXXXXX)
MERGED=$RUN/merged
LOG=$CACHE/last-run.log
mounted=()
cleanup() {
    local rc=$? i
    set +e
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" 2>/dev/null
    done
    if [ $KEEP = 1 ]; then
        echo "fresh-check: kept $RUN (upper dir: $RUN/upper)" >&2
    else
        rm -rf "$RUN"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RUN/upper" "$RUN/work" "$MERGED"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$RUN/upper,workdir=$RUN/work" "$MERGED"
mounted+=("$MERGED")
# rbind brings the submounts (bpffs, cgroup2, devpts); rslave keeps our
# unmounts from propagating back to the host's own mounts.
for d in sys dev; do
    mount --rbind "/$d" "$MERGED/$d"
    mount --make-rslave "$MERGED/$d"
    mounted+=("$MERGED/$d")
done
mount -t proc proc "$MERGED/proc"
mounted+=("$MERGED/proc")
mount -t tmpfs tmpfs "$MERGED/run"
mounted+=("$MERGED/run")
cp -L /etc/resolv.conf "$MERGED/etc/resolv.conf"

mkdir -p "$MERGED/src"
if [ $WORKTREE = 1 ]; then
    git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$MERGED/src"
    what="the working tree of $REPO"
else
    git archive --format=tar HEAD | tar -xf - -C "$MERGED/src"
    what="HEAD $(git rev-parse --short HEAD) of $REPO"
fi

echo "fresh-check: running '$CMD' on $what in a fresh $SUITE root (log: $LOG)" >&2
rc=0
timeout 5400 chroot "$MERGED" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    bash -c "cd /src && $CMD" >"$LOG" 2>&1 || rc=$?
tail -25 "$LOG" >&2
if [ $rc = 0 ]; then
    echo "fresh-check: PASS ('$CMD' exited 0 on a fresh $SUITE root)" >&2
else
    echo "fresh-check: FAIL ('$CMD' exited $rc; full log: $LOG)" >&2
fi
exit $rc
