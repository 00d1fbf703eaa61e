# shellcheck shell=bash
# Assertions and a tiny runner for the e2e scripts.
#
#   run_test "name" func args...   runs func in the current shell; a failed
#                                  assertion marks the test failed (it goes on
#                                  checking, so one run shows every problem).
#   finish                         prints "N passed, N failed" and exits 1 if
#                                  anything failed.
# Assertions return non-zero on failure, so `assert_x ... || return` stops a
# test early when later checks would only be noise.

TESTS_PASSED=0
TESTS_FAILED=0
CUR_TEST=""
CUR_FAILS=0

_fail() {
    CUR_FAILS=$((CUR_FAILS + 1))
    printf '  FAIL [%s] %s\n' "${CUR_TEST:-?}" "$*" >&2
    return 1
}

assert_eq() {  # EXPECTED ACTUAL MSG
    [[ "$1" == "$2" ]] || _fail "$3: expected '$1', got '$2'"
}
assert_ne() {  # UNEXPECTED ACTUAL MSG
    [[ "$1" != "$2" ]] || _fail "$3: did not expect '$2'"
}
assert_ge() {  # ACTUAL MIN MSG
    [[ "$1" =~ ^-?[0-9]+$ ]] && (($1 >= $2)) || _fail "$3: expected >= $2, got '$1'"
}
assert_le() {  # ACTUAL MAX MSG
    [[ "$1" =~ ^-?[0-9]+$ ]] && (($1 <= $2)) || _fail "$3: expected <= $2, got '$1'"
}
assert_contains() {  # HAYSTACK NEEDLE MSG
    [[ "$1" == *"$2"* ]] || _fail "$3: '$2' not found in:
$(sed 's/^/      | /' <<<"$1")"
}
assert_not_contains() {  # HAYSTACK NEEDLE MSG
    [[ "$1" != *"$2"* ]] || _fail "$3: '$2' unexpectedly found in:
$(sed 's/^/      | /' <<<"$1")"
}
assert_match() {  # STRING REGEX MSG
    [[ "$1" =~ $2 ]] || _fail "$3: /$2/ does not match:
$(sed 's/^/      | /' <<<"$1")"
}
assert_ok() {  # MSG CMD...: CMD exits 0
    local msg=$1; shift
    local out rc
    out=$("$@" 2>&1); rc=$?
    ((rc == 0)) || _fail "$msg: '$*' exited $rc:
$(sed 's/^/      | /' <<<"$out")"
}
assert_fails() {  # MSG CMD...: CMD exits non-zero
    local msg=$1; shift
    "$@" >/dev/null 2>&1 && _fail "$msg: '$*' succeeded but should have failed"
    return 0
}

run_test() {  # NAME FUNC ARGS...
    CUR_TEST=$1; CUR_FAILS=0; shift
    printf '=== RUN  %s\n' "$CUR_TEST" >&2
    local t0=$SECONDS
    "$@"
    local rc=$?
    if ((CUR_FAILS == 0 && rc != 0)); then
        _fail "test function returned $rc"
    fi
    if ((CUR_FAILS == 0)); then
        TESTS_PASSED=$((TESTS_PASSED + 1))
        printf -- '--- PASS %s (%ds)\n' "$CUR_TEST" $((SECONDS - t0)) >&2
    else
        TESTS_FAILED=$((TESTS_FAILED + 1))
        printf -- '--- FAIL %s (%ds, %d failed checks)\n' "$CUR_TEST" $((SECONDS - t0)) "$CUR_FAILS" >&2
    fi
    CUR_TEST=""
    return 0
}

# fatal_setup MSG: setup failed before any test could run: count it as a failure.
fatal_setup() {
    printf '  FAIL [setup] %s\n' "$*" >&2
    TESTS_FAILED=$((TESTS_FAILED + 1))
    finish
}

finish() {
    echo "$TESTS_PASSED passed, $TESTS_FAILED failed"
    ((TESTS_FAILED == 0)) && exit 0
    exit 1
}

# count_lines TEXT WORD: how many lines of TEXT are exactly WORD.
count_lines() { grep -cx -- "$2" <<<"$1" || true; }
