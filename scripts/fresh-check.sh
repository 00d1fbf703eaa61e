#!/usr/bin/env bash
# Runs CI (`bash .ci/run`) on a FRESH Debian 12 root, as CI's machine starts:
# what a developer installed by hand cannot hide a missing install step here.
#
#   scripts/fresh-check.sh [--rebuild] [--worktree] [--keep] [--cmd "COMMAND"]
#
#   --rebuild   make the cached root anew (debootstrap --variant=minbase bookworm)
#   --worktree  test the working tree (tracked + untracked, not ignored) instead
#               of a clean copy of HEAD (what CI tests)
#   --keep      leave the run's root (overlay upper dir) for inspection
#   --cmd CMD   run CMD in the checkout instead of `bash .ci/run`, e.g.
#               --cmd "bash scripts/deps.sh && bash scripts/build.sh"
#
# The root is built once and cached (SVCLB_FRESH_CACHE, default
# /var/cache/svclb-fresh; root.ok marks it complete); each run mounts an
# overlay on top of it, so every run starts from the pristine root and the
# cache never changes. Inside: /proc, /sys (cgroups as the host's, a bpffs of
# its own), /dev, a tmpfs /run, the host's resolv.conf, apt sources for the
# host's Debian mirror (bookworm, -updates, -security), the checkout under
# /src. Logs: $CACHE/logs/ (last-run.log links to the newest). Slow (packages,
# build, all suites, up to 90 min): not part of CI. Needs root.
# Do not run the e2e suite on the host at the same time: both use the same
# kernel (interfaces in the root namespace, cgroups, CPU for timed tests).
set -euo pipefail
SELF=$(readlink -f "$0")

# Everything runs in a private mount namespace: the overlay, the bind mounts
# of /sys and /dev and whatever the tests mount inside (bpffs, /run/netns)
# stay invisible to the host, no unmount here can propagate to the host's own
# /sys or /dev, and all of them vanish with the namespace's last process even
# if this script is killed.
if [ -z "${SVCLB_FRESH_INNER:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "fresh-check: needs root (debootstrap, mounts, chroot)" >&2; exit 1; }
    exec env SVCLB_FRESH_INNER=1 unshare --mount --propagation private -- bash "$SELF" "$@"
fi
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] ||
    { echo "fresh-check: not in a private mount namespace; refusing to mount" >&2; exit 1; }

cd "$(dirname "$SELF")/.."
REPO=$(pwd)
CACHE=${SVCLB_FRESH_CACHE:-/var/cache/svclb-fresh}
SUITE=bookworm
TIMEOUT=5400
REBUILD=0 WORKTREE=0 KEEP=0 CMD="bash .ci/run"
while [ $# -gt 0 ]; do
    case $1 in
        --rebuild) REBUILD=1 ;;
        --worktree) WORKTREE=1 ;;
        --keep) KEEP=1 ;;
        --cmd) [ $# -ge 2 ] || { echo "fresh-check: --cmd needs a command" >&2; exit 2; }
               CMD=$2; shift ;;
        *) sed -n '2,23p' "$SELF" >&2; exit 2 ;;
    esac
    shift
done

mkdir -p "$CACHE/logs"
exec 9>"$CACHE/lock"
flock -n 9 || { echo "fresh-check: another run holds $CACHE/lock" >&2; exit 1; }

# host_uri SUITE: the host's apt URI for that Debian suite (deb822 .sources or
# one-line lists), so the root is built and updated from the host's mirror.
host_uri() {
    local suite=$1 f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v s="$suite" '
            function flush() { if (!done && deb && ok && u != "") { print u; done = 1 } u = ""; deb = ok = 0 }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "uris:" { u = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
            END { flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v s="$suite" '$1 == "deb" { sub(/^deb[ \t]+(\[[^]]*\][ \t]*)?/, ""); if ($2 == s) print $1 }' "$f"
    done
}
MIRROR=${SVCLB_FRESH_MIRROR:-$(host_uri "$SUITE" | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(host_uri "$SUITE-security" | head -1)
SECURITY=${SECURITY:-http://security.debian.org/debian-security}

# no_mounts_under DIR: true when nothing is mounted at or below DIR. rm -rf
# must never run into a bind mount of /dev or /sys.
no_mounts_under() {
    ! awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

ROOT=$CACHE/root
if [ $REBUILD = 1 ] || [ ! -f "$CACHE/root.ok" ]; then
    if ! command -v debootstrap >/dev/null; then
        echo "fresh-check: installing debootstrap (host tool of this script only)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    rm -f "$CACHE/root.ok"
    no_mounts_under "$ROOT" || { echo "fresh-check: something is mounted under $ROOT; not removing it" >&2; exit 1; }
    rm -rf --one-file-system "$ROOT"
    echo "fresh-check: debootstrap --variant=minbase $SUITE from $MIRROR into $ROOT (a few minutes)" >&2
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { echo "fresh-check: debootstrap failed (see $CACHE/debootstrap.log)" >&2; exit 1; }
    echo "$SUITE $MIRROR $(date -u +%FT%TZ)" >"$CACHE/root.ok"
fi

RUN=$(mktemp -d /var/tmp/svclb-fresh-run.XXXXXX)
MERGED=$RUN/merged
LOG=$CACHE/logs/$(date -u +%Y%m%d-%H%M%S).log

# chroot_pids: processes whose root is the run's root (what the command
# started and left running, e.g. after the timeout).
chroot_pids() {
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        [[ $r == "$MERGED" || $r == "$MERGED"/* ]] && echo "${p#/proc/}"
    done
    return 0
}
cleanup() {
    local rc=$? i pids
    set +e
    pids=$(chroot_pids)
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null
        for ((i = 0; i < 20; i++)); do
            pids=$(chroot_pids); [ -z "$pids" ] && break; sleep 0.5
        done
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 1
    fi
    if ! no_mounts_under "$MERGED"; then
        umount -R "$MERGED" 2>/dev/null || umount -R -l "$MERGED"
    fi
    if ! no_mounts_under "$RUN"; then
        echo "fresh-check: mounts remain under $RUN (left in place; they go with this namespace)" >&2
    elif [ $KEEP = 1 ]; then
        echo "fresh-check: kept $RUN (the run's changes: $RUN/upper)" >&2
    else
        rm -rf --one-file-system "$RUN"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RUN/upper" "$RUN/work" "$MERGED"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$RUN/upper,workdir=$RUN/work" "$MERGED"
# rbind brings the submounts (cgroups, devpts, /dev/shm); a bpffs of its own
# keeps this run's pins apart from the host's and gone after it, as on a
# freshly booted machine.
mount --rbind /sys "$MERGED/sys"
mount --rbind /dev "$MERGED/dev"
if [ -d "$MERGED/sys/fs/bpf" ]; then
    mount -t bpf bpf "$MERGED/sys/fs/bpf"
fi
mount -t proc proc "$MERGED/proc"
mount -t tmpfs tmpfs "$MERGED/run"
cp -L /etc/resolv.conf "$MERGED/etc/resolv.conf"
# A fresh Debian 12 installation's sources (debootstrap writes only the
# release itself): the point releases' updates and the security archive.
cat >"$MERGED/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF

mkdir -p "$MERGED/src"
if [ $WORKTREE = 1 ]; then
    git ls-files -z -co --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$MERGED/src"
    what="the working tree of $REPO"
else
    git archive --format=tar HEAD | tar -xf - -C "$MERGED/src"
    what="HEAD $(git rev-parse --short HEAD) of $REPO"
fi

ln -sfn "logs/$(basename "$LOG")" "$CACHE/last-run.log"
echo "fresh-check: running '$CMD' on $what in a fresh $SUITE root" >&2
echo "fresh-check: log $LOG (follow: tail -f $CACHE/last-run.log)" >&2
rc=0
timeout --kill-after=60 "$TIMEOUT" chroot "$MERGED" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    bash -c "cd /src && $CMD" >"$LOG" 2>&1 || rc=$?
tail -25 "$LOG" >&2
if [ $rc = 0 ]; then
    echo "fresh-check: PASS ('$CMD' exited 0 on a fresh $SUITE root; log: $LOG)" >&2
elif [ $rc = 124 ] || [ $rc = 137 ]; then
    echo "fresh-check: FAIL ('$CMD' timed out after ${TIMEOUT}s, exit $rc; log: $LOG)" >&2
else
    echo "fresh-check: FAIL ('$CMD' exited $rc; log: $LOG)" >&2
fi
exit $rc
