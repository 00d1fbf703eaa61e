#!/usr/bin/env bash
# deploy/completion/svcctl.bash driven as bash drives it: the file sourced,
# COMP_WORDS/COMP_CWORD/COMP_LINE set, _svcctl called, COMPREPLY checked.
# Object names come from a real svclbd (the built one, in a network
# namespace of this test with its own bpffs dir, state dir and socket; no
# interface attached, no cgroup hooks), with Services applied by svcctl.
# Needs root (netns, bpffs).
set -u
export LC_ALL=C  # sort order of the expected lists
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
source "$REPO/tests/testlib/assert.sh"
BIN=${SVCLB_BIN:-$REPO/build/bin}
SVCCTL=$BIN/svcctl

[[ -x $BIN/svclbd && -x $SVCCTL ]] || { fatal_setup "no $BIN/svclbd or svcctl (build first)"; finish; }
[[ $(id -u) == 0 ]] || { fatal_setup "needs root (network namespace, bpffs)"; finish; }

NS=svclb-compl-$$
TMP=$(mktemp -d /tmp/svclb-compl.XXXXXX)
BPFFS=/sys/fs/bpf/svclb-compl-$$
SOCK=$TMP/svclbd.sock
DAEMON_PID=""
cleanup() {
    if [[ -n $DAEMON_PID ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null
        for ((i = 0; i < 50; i++)); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    if ip netns list | grep -q "^$NS\b"; then
        timeout 20 nsenter --net="/run/netns/$NS" "$BIN/svclbd" --bpffs "$BPFFS" --cgroup none \
            --uninstall >/dev/null 2>&1
        ip netns del "$NS" 2>/dev/null
    fi
    rm -rf "$BPFFS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=../../deploy/completion/svcctl.bash
source "$REPO/deploy/completion/svcctl.bash"

# complete LINE: COMPREPLY for the cursor at the end of LINE (a trailing
# space starts a new word), split into words as readline does (COMP_WORDBREAKS
# splits at "="), printed sorted, space-separated.
complete_line() {
    local line=$1
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMP_WORDS=()
    local w
    # Words: whitespace-separated; "=" its own word, as with the default COMP_WORDBREAKS.
    for w in $(sed 's/=/ = /g' <<<"$line"); do COMP_WORDS+=("$w"); done
    [[ $line == *" " || $line == *"=" ]] && COMP_WORDS+=("")
    COMP_WORDS[0]=$SVCCTL
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _svcctl svcctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//'
}

test_commands_and_flags() {
    assert_eq "annotate api-resources apply delete describe get label monitor patch stats status trace version" "$(complete_line "svcctl ")" "subcommands"
    assert_eq "get" "$(complete_line "svcctl g")" "a prefix"
    assert_eq "delete describe" "$(complete_line "svcctl de")" "two matches"
    assert_eq "--help --request-timeout --socket" "$(complete_line "svcctl --")" "global flags"
    assert_eq "--all --dry-run --filename --help --ignore-not-found --namespace --selector --strict" "$(complete_line "svcctl delete --")" "delete's flags"
    assert_eq "--all-namespaces --help --namespace --no-headers --output --selector --show-labels --sort-by --watch" "$(complete_line "svcctl get --")" "get's flags"
    assert_eq "--all-namespaces --help --namespace --no-headers --output --selector --show-labels --sort-by --watch -A -l -n -o -w" "$(complete_line "svcctl get -")" \
        "get's short and long flags (no -f)"
    assert_eq "" "$(complete_line "svcctl apply -n")" "apply has no -n"
    assert_eq "custom-columns= json jsonpath= name wide yaml" "$(complete_line "svcctl get svc -o ")" "get's output formats"
    assert_eq "json jsonpath=" "$(complete_line "svcctl get svc --output=j")" "--output=VALUE"
    assert_eq "json" "$(complete_line "svcctl status -o ")" "status prints json only"
    assert_eq "endpoints endpointslices ep" "$(complete_line "svcctl get e")" "resources"
    assert_eq "services svc" "$(complete_line "svcctl describe s")" "resources for describe"
    assert_eq "" "$(complete_line "svcctl stats ")" "stats takes no arguments"
    assert_eq "--dry-run --help --namespace --patch --patch-file --type" "$(complete_line "svcctl patch --")" "patch's flags"
    assert_eq "--all --dry-run --help --namespace --overwrite --selector" "$(complete_line "svcctl label --")" "label's flags"
    assert_eq "services svc" "$(complete_line "svcctl annotate s")" "resources for annotate"
    assert_eq "json merge strategic" "$(complete_line "svcctl patch svc web --type ")" "patch's --type values"
    assert_eq "drop reject" "$(complete_line "svcctl monitor --type ")" "monitor's --type values"
}

test_files() {
    mkdir -p "$TMP/manifests/sub"
    : >"$TMP/manifests/web.yaml"
    : >"$TMP/manifests/web-eps.yaml"
    : >"$TMP/manifests/other.json"
    assert_eq "$TMP/manifests/web-eps.yaml $TMP/manifests/web.yaml" \
        "$(complete_line "svcctl apply -f $TMP/manifests/w")" "-f completes files"
    assert_eq "$TMP/manifests/sub" "$(complete_line "svcctl delete --filename $TMP/manifests/s")" \
        "--filename completes directories"
    assert_eq "$TMP/manifests/other.json" "$(complete_line "svcctl apply --filename=$TMP/manifests/o")" \
        "--filename=FILE"
}

test_names_without_daemon() {
    local t0=$SECONDS
    assert_eq "" "$(complete_line "svcctl --socket $TMP/nobody.sock get svc ")" \
        "no names when no daemon answers"
    assert_ge $((5 - (SECONDS - t0))) 0 "and no long wait"
}

daemon_up() {
    ip netns add "$NS" || return 1
    nsenter --net="/run/netns/$NS" ip link set lo up || return 1
    nsenter --net="/run/netns/$NS" "$BIN/svclbd" --bpffs "$BPFFS" --state-dir "$TMP/state" \
        --socket "$SOCK" --metrics-addr none --cgroup none >"$TMP/svclbd.log" 2>&1 &
    DAEMON_PID=$!
    for ((i = 0; i < 100; i++)); do
        "$SVCCTL" --socket "$SOCK" status >/dev/null 2>&1 && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TMP/svclbd.log" >&2
    return 1
}

test_names_from_daemon() {
    daemon_up || { _fail "svclbd did not come up"; return; }
    local s=(--socket "$SOCK")
    assert_ok "apply web" "$SVCCTL" "${s[@]}" apply -f "$REPO/examples/web-service.yaml" \
        -f "$REPO/examples/web-endpoints.yaml" || return
    cat >"$TMP/more.yaml" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  clusterIP: 10.96.0.11
  ports: [{port: 80, targetPort: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: other}
spec:
  clusterIP: 10.96.0.12
  ports: [{port: 5432, protocol: TCP}]
Y
    assert_ok "apply api, other/db" "$SVCCTL" "${s[@]}" apply -f "$TMP/more.yaml" || return
    assert_eq "api web" "$(complete_line "svcctl --socket $SOCK get svc ")" "Service names"
    assert_eq "web" "$(complete_line "svcctl --socket $SOCK describe service w")" "a name prefix"
    assert_eq "api" "$(complete_line "svcctl --socket $SOCK get svc web ")" "names already given are not offered"
    assert_eq "db" "$(complete_line "svcctl --socket $SOCK get svc -n other ")" "names of -n's namespace"
    assert_eq "db" "$(complete_line "svcctl --socket=$SOCK delete svc --namespace=other ")" \
        "--socket=PATH and --namespace=NS"
    assert_eq "web" "$(complete_line "svcctl --socket $SOCK get ep ")" "Endpoints names"
    assert_eq "svc/api svc/web" "$(complete_line "svcctl --socket $SOCK describe svc/")" "RESOURCE/NAME"
    assert_eq "" "$(complete_line "svcctl --socket $SOCK get svc/web ")" "nothing after RESOURCE/NAME"
    # Without --socket: $SVCLB_SOCKET, as svcctl itself reads it.
    local out
    out=$(export SVCLB_SOCKET=$SOCK; complete_line "svcctl get services ")
    assert_eq "api web" "$out" "\$SVCLB_SOCKET"
}

run_test "subcommands, flags, flag values, resources" test_commands_and_flags
run_test "-f completes files" test_files
run_test "no daemon: no names, no wait" test_names_without_daemon
run_test "object names from the running svclbd" test_names_from_daemon
finish
