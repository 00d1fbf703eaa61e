#!/usr/bin/env bash
# svcctl against a live daemon: invalid manifests are rejected in kubectl's
# words and change nothing; get/describe/delete print what kubectl would;
# a missing daemon gives a clear error.
set -u
source "$(dirname "$0")/../testlib/svc.sh"
e2e_setup cli

manifest() {  # NAME: write stdin to $TOPO_TMP/NAME.yaml, print the path
    cat >"$TOPO_TMP/$1.yaml"; echo "$TOPO_TMP/$1.yaml"
}

# Each case: file name, manifest, expected text in the error.
bad_port=$(manifest bad-port <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  clusterIP: 10.96.0.20
  ports:
  - name: http
    port: 70000
    targetPort: 8080
Y
)
bad_proto=$(manifest bad-proto <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
  - name: http
    port: 80
    protocol: FOO
Y
)
bad_noname=$(manifest bad-noname <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
  - port: 80
    name: a
  - port: 81
Y
)
bad_cidr=$(manifest bad-cidr <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  clusterIP: 192.168.7.7
  ports:
  - name: http
    port: 80
Y
)
bad_yaml=$(manifest bad-yaml <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: [bad
Y
)
# All-or-nothing: a valid Service followed by an invalid one applies neither.
bad_mixed=$(manifest bad-mixed <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: good-one
spec:
  ports:
  - name: http
    port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
  - name: http
    port: 0
Y
)

svc_snapshot() { svcctl get svc -o json 2>&1 | jq -S 'del(.. | .creationTimestamp?)' 2>&1; }

check_rejected() {  # FILE EXPECTED-TEXT...
    local f=$1 out rc; shift
    out=$(svcctl apply -f "$f" 2>&1); rc=$?
    assert_ne 0 "$rc" "svcctl apply -f $(basename "$f") exit status (output: $out)"
    local want; for want in "$@"; do assert_contains "$out" "$want" "error for $(basename "$f")"; done
}

test_invalid_manifests() {
    local before after
    before=$(svc_snapshot)
    assert_contains "$before" '"web"' "get svc -o json before the invalid applies" || return
    check_rejected "$bad_port" 'The Service "bad" is invalid' 'spec.ports[0].port' '70000' 'between 1 and 65535'
    check_rejected "$bad_proto" 'The Service "bad" is invalid' 'spec.ports[0].protocol' 'Unsupported value: "FOO"'
    check_rejected "$bad_noname" 'The Service "bad" is invalid' 'spec.ports[1].name' 'Required value'
    check_rejected "$bad_cidr" 'The Service "bad" is invalid' '192.168.7.7'
    check_rejected "$bad_yaml" 'error'
    check_rejected "$bad_mixed" 'The Service "bad" is invalid' 'spec.ports[0].port'
    after=$(svc_snapshot)
    assert_eq "$before" "$after" "get svc -o json after rejected applies"
    assert_not_contains "$(svcctl get svc 2>&1)" "good-one" "all-or-nothing apply of a multi-document file"
    # The dataplane still serves the existing service.
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "traffic after rejected applies"
}

test_get_svc() {
    local out js
    out=$(svcctl get svc 2>&1)
    assert_match "$out" 'NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE' "get svc header"
    assert_match "$out" $'(^|\n)web +ClusterIP +10\\.96\\.0\\.10 +<none> +80/TCP,5353/UDP +[0-9]+[smhd]' "get svc row for web"
    js=$(svcctl get svc -o json 2>&1)
    assert_eq 10.96.0.10 "$(jq -r '(.items // [.])[] | select(.metadata.name=="web") | .spec.clusterIP' <<<"$js" 2>&1)" \
        "get svc -o json: web's spec.clusterIP"
    assert_eq "http:80:8080 dns:5353:5353" \
        "$(jq -r '(.items // [.])[] | select(.metadata.name=="web") | [.spec.ports[] | "\(.name):\(.port):\(.targetPort)"] | join(" ")' <<<"$js" 2>&1)" \
        "get svc -o json: web's ports"
    # kubectl's template printers, as scripts use them.
    assert_eq 10.96.0.10 "$(svcctl get svc web -o jsonpath='{.spec.clusterIP}' 2>&1)" "-o jsonpath of one Service"
    assert_eq "5353" "$(svcctl get svc web -o jsonpath='{.spec.ports[?(@.name=="dns")].port}' 2>&1)" \
        "-o jsonpath with a filter"
    assert_match "$(svcctl get svc -o jsonpath='{range .items[*]}{.metadata.name}={.spec.clusterIP}{"\n"}{end}' 2>&1)" \
        $'(^|\n)web=10\\.96\\.0\\.10($|\n)' "-o jsonpath range over the list"
    out=$(svcctl get svc web -o custom-columns=NAME:.metadata.name,PORTS:.spec.ports[*].port 2>&1)
    assert_eq $'NAME   PORTS\nweb    80,5353' "$out" "-o custom-columns"
    out=$(svcctl get svc web -o jsonpath='{.spec.ports[7]}' 2>&1) && _fail "an index out of range succeeded"
    assert_contains "$out" "array index out of bounds: index 7, length 2" "-o jsonpath error named"
}

test_get_ep() {
    local out
    out=$(svcctl get ep 2>&1)
    assert_match "$out" 'NAME +ENDPOINTS +AGE' "get ep header"
    assert_match "$out" $'(^|\n)web +[^ ]*10\\.244\\.1\\.1[12]:(8080|5353)' "get ep row for web"
}

test_describe() {
    local out
    out=$(svcctl describe svc web 2>&1)
    assert_match "$out" 'Name: +web' "describe: Name"
    assert_match "$out" 'Namespace: +default' "describe: Namespace"
    assert_match "$out" 'Type: +ClusterIP' "describe: Type"
    assert_match "$out" 'IP: +10\.96\.0\.10' "describe: IP"
    assert_match "$out" 'Port: +http +80/TCP' "describe: Port http"
    assert_match "$out" 'TargetPort: +8080/TCP' "describe: TargetPort 8080"
    assert_match "$out" 'Endpoints: +10\.244\.1\.1[12]:8080,10\.244\.1\.1[12]:8080' "describe: Endpoints of http"
    assert_match "$out" 'Port: +dns +5353/UDP' "describe: Port dns"
    out=$(svcctl describe svc nosuch 2>&1) && _fail "describe svc nosuch succeeded"
    assert_contains "$out" 'services "nosuch" not found' "describe svc nosuch"
    # kubectl describe TYPE NAME: an unknown NAME describes the objects it prefixes.
    out=$(svcctl describe svc we 2>&1)
    assert_match "$out" '^Name: +web' "describe svc we: the Service web (a name prefix)"
    assert_eq 1 "$(grep -c '^Name:' <<<"$out")" "describe svc we: only the Services it prefixes"
    out=$(svcctl describe svc/we 2>&1) && _fail "describe svc/we succeeded (TYPE/NAME is exact)"
    assert_contains "$out" 'services "we" not found' "describe svc/we: exact"
}

test_apply_delete_cycle() {
    local f out
    f=$(manifest tmp-svc <<'Y'
apiVersion: v1
kind: Service
metadata:
  name: tmp
spec:
  clusterIP: 10.96.0.30
  ports:
  - name: http
    port: 80
    targetPort: 8080
Y
)
    out=$(svcctl apply -f "$f" 2>&1); assert_eq 'service/tmp created' "$out" "first apply"
    out=$(svcctl apply -f "$f" 2>&1); assert_eq 'service/tmp unchanged' "$out" "second apply"
    out=$(svcctl apply -f "$SVCLB_EXAMPLES/web-service.yaml" 2>&1)
    assert_eq 'service/web unchanged' "$out" "re-apply web-service.yaml"
    assert_contains "$(svcctl get svc 2>&1)" "10.96.0.30" "get svc lists tmp"
    out=$(svcctl delete svc tmp 2>&1); assert_eq 'service "tmp" deleted' "$out" "delete svc tmp"
    out=$(svcctl delete svc tmp 2>&1) && _fail "second delete svc tmp succeeded"
    assert_eq 'Error from server (NotFound): services "tmp" not found' "$out" "second delete svc tmp"
    assert_not_contains "$(svcctl get svc 2>&1)" "10.96.0.30" "get svc after delete"
    svcctl apply -f "$f" >/dev/null 2>&1
    out=$(svcctl delete -f "$f" 2>&1); assert_eq 'service "tmp" deleted' "$out" "delete -f"
}

test_no_daemon() {
    local out rc
    out=$(timeout 10 "$SVCLB_BIN/svcctl" --socket "$TOPO_TMP/nobody-here.sock" get svc 2>&1); rc=$?
    assert_ne 0 "$rc" "svcctl against a missing socket: exit status"
    assert_ne 124 "$rc" "svcctl against a missing socket: must not hang"
    assert_contains "$out" "nobody-here.sock" "svcctl against a missing socket names the socket"
    assert_ge "$(wc -l <<<"$out")" 1 "an error message"
}

# A manifest from the Kubernetes documentation with a Deployment beside its
# Service: the Service is applied, the Deployment skipped with one warning
# line on stderr; --strict refuses the whole manifest and changes nothing.
test_mixed_kinds() {
    local app=$SVCLB_REPO/tests/e2e/manifests/nginx-app.yaml out err rc
    out=$(svcctl apply --strict -f "$app" 2>&1); rc=$?
    assert_ne 0 "$rc" "apply --strict of a Service + Deployment manifest"
    assert_contains "$out" 'no matches for kind "Deployment" in version "apps/v1"' "apply --strict error"
    assert_contains "$(svcctl get svc my-nginx-svc 2>&1)" 'NotFound' "--strict applied nothing"
    out=$(svcctl apply -f "$app" 2>"$TOPO_TMP/mixed.err"); rc=$?
    err=$(cat "$TOPO_TMP/mixed.err")
    assert_eq 0 "$rc" "apply of a Service + Deployment manifest: exit status ($err)"
    assert_eq "service/my-nginx-svc created" "$out" "apply stdout: the Service only"
    assert_match "$err" '^Warning: skipped deployment.apps/my-nginx \(apps/v1 Deployment\): svclb handles only ' \
        "apply stderr: one line for the skipped Deployment"
    assert_eq 1 "$(wc -l <<<"$err")" "apply stderr: exactly one line"
    assert_contains "$(svcctl get svc my-nginx-svc 2>&1)" 'LoadBalancer' "the Service exists"
    out=$(svcctl delete -f "$app" 2>"$TOPO_TMP/mixed.err"); rc=$?
    assert_eq 0 "$rc" "delete -f of the same manifest"
    assert_eq 'service "my-nginx-svc" deleted' "$out" "delete stdout"
    assert_match "$(cat "$TOPO_TMP/mixed.err")" '^Warning: skipped deployment.apps/my-nginx ' "delete stderr"
    # The same objects as a directory, the Deployment in a file of its own
    # (kubectl apply -f app/): that file applies nothing, which is no error.
    mkdir -p "$TOPO_TMP/app"
    "$PY" - "$app" "$TOPO_TMP/app" <<'PYEOF'
import sys
docs = [d for d in open(sys.argv[1]).read().split("\n---\n") if "kind:" in d]
for i, d in enumerate(docs):
    open(f"{sys.argv[2]}/{i}.yaml", "w").write(d.strip("-\n") + "\n")
PYEOF
    out=$(svcctl apply -f "$TOPO_TMP/app" 2>"$TOPO_TMP/mixed.err"); rc=$?
    err=$(cat "$TOPO_TMP/mixed.err")
    assert_eq 0 "$rc" "apply -f DIR with the Deployment in its own file: exit status ($err)"
    assert_eq "service/my-nginx-svc created" "$out" "apply -f DIR stdout"
    assert_match "$err" '^Warning: skipped deployment.apps/my-nginx ' "apply -f DIR stderr"
    assert_not_contains "$err" "no objects passed" "apply -f DIR: no error for the Deployment's file"
    svcctl delete -f "$TOPO_TMP/app" >/dev/null 2>&1
}

# SCTP is valid Kubernetes but svclb does not balance it: applied, said.
test_sctp_warned() {
    local out err rc
    cat >"$TOPO_TMP/sctp.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: sctp-svc}
spec:
  ports: [{name: s, port: 9999, protocol: SCTP}, {name: h, port: 80, protocol: TCP}]
EOF
    out=$(svcctl apply -f "$TOPO_TMP/sctp.yaml" 2>"$TOPO_TMP/sctp.err"); rc=$?
    err=$(cat "$TOPO_TMP/sctp.err")
    assert_eq 0 "$rc" "apply of a Service with an SCTP port ($err)"
    assert_eq "service/sctp-svc created" "$out" "apply stdout"
    assert_eq "Warning: service/sctp-svc port 9999/SCTP: svclb does not balance SCTP; this port takes no traffic through svclb (its TCP and UDP ports do)" \
        "$err" "apply stderr: the SCTP port named"
    svcctl delete svc sctp-svc >/dev/null 2>&1
}

# -n with -f, as kubectl: the namespace of objects that name none; one that
# names another is refused and nothing changes.
test_namespace_flag_with_files() {
    local out rc
    cat >"$TOPO_TMP/nsless.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: nsflag}
spec:
  ports: [{port: 80}]
EOF
    sed 's/{name: nsflag}/{name: nsflag, namespace: team3}/' "$TOPO_TMP/nsless.yaml" >"$TOPO_TMP/ns3.yaml"
    assert_eq "service/nsflag created" "$(svcctl apply -n team2 -f "$TOPO_TMP/nsless.yaml" 2>&1)" "apply -n team2 -f"
    assert_contains "$(svcctl get svc -n team2 nsflag 2>&1)" "nsflag" "the Service is in team2"
    assert_contains "$(svcctl get svc nsflag 2>&1)" "NotFound" "and not in default"
    out=$(svcctl apply -n team2 -f "$TOPO_TMP/ns3.yaml" 2>&1); rc=$?
    assert_ne 0 "$rc" "apply -n team2 of an object in team3"
    assert_eq "error: the namespace from the provided object \"team3\" does not match the namespace \"team2\". You must pass '--namespace=team3' to perform this operation." \
        "$out" "the mismatch in kubectl's words"
    assert_contains "$(svcctl get svc -n team3 nsflag 2>&1)" "NotFound" "nothing applied in team3"
    out=$(svcctl delete -n team2 -f "$TOPO_TMP/ns3.yaml" 2>&1); rc=$?
    assert_ne 0 "$rc" "delete -n team2 of an object in team3"
    assert_eq 'service "nsflag" deleted' "$(svcctl delete -n team2 -f "$TOPO_TMP/nsless.yaml" 2>&1)" "delete -n team2 -f"
    assert_contains "$(svcctl get svc -n team2 nsflag 2>&1)" "NotFound" "deleted from team2"
}

# Several files in one apply are all-or-nothing: an error in the second
# file leaves the first one's objects unapplied too.
test_multi_file_all_or_nothing() {
    local out rc
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: aon-a}\nspec:\n  ports: [{port: 80}]\n' >"$TOPO_TMP/aon-a.yaml"
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: aon-b}\nspec:\n  ports: [{port: 70000}]\n' >"$TOPO_TMP/aon-b.yaml"
    out=$(svcctl apply -f "$TOPO_TMP/aon-a.yaml" -f "$TOPO_TMP/aon-b.yaml" 2>&1); rc=$?
    assert_ne 0 "$rc" "apply of a good and a bad file"
    assert_contains "$out" 'The Service "aon-b" is invalid' "the bad file's error"
    assert_not_contains "$out" "aon-a created" "nothing reported created"
    assert_contains "$(svcctl get svc aon-a 2>&1)" "NotFound" "the good file's Service was not applied"
    sed -i 's/70000/81/' "$TOPO_TMP/aon-b.yaml"
    assert_eq $'service/aon-a created\nservice/aon-b created' \
        "$(svcctl apply -f "$TOPO_TMP/aon-a.yaml" -f "$TOPO_TMP/aon-b.yaml" 2>&1)" "both files once fixed"
    svcctl delete -f "$TOPO_TMP/aon-a.yaml" -f "$TOPO_TMP/aon-b.yaml" >/dev/null 2>&1
}

# delete -f as kubectl: what exists is deleted, each missing object is an
# error line (exit 1); --ignore-not-found makes that no error.
test_delete_partly_missing() {
    local out err rc
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: delme}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: notthere}\nspec:\n  ports: [{port: 80}]\n' >"$TOPO_TMP/del-partial.yaml"
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: delme}\nspec:\n  ports: [{port: 80}]\n' >"$TOPO_TMP/delme.yaml"
    assert_ok "apply delme" svcctl apply -f "$TOPO_TMP/delme.yaml"
    out=$(svcctl delete -f "$TOPO_TMP/del-partial.yaml" 2>"$TOPO_TMP/del.err"); rc=$?
    err=$(cat "$TOPO_TMP/del.err")
    assert_eq 1 "$rc" "delete -f with a missing object: exit status"
    assert_eq 'service "delme" deleted' "$out" "the existing one deleted"
    assert_eq 'Error from server (NotFound): services "notthere" not found' "$err" "the missing one named"
    assert_contains "$(svcctl get svc delme 2>&1)" "NotFound" "delme is gone"
    assert_ok "apply delme again" svcctl apply -f "$TOPO_TMP/delme.yaml"
    out=$(svcctl delete --ignore-not-found -f "$TOPO_TMP/del-partial.yaml" 2>"$TOPO_TMP/del.err"); rc=$?
    assert_eq 0 "$rc" "delete --ignore-not-found -f: exit status"
    assert_eq 'service "delme" deleted' "$out" "delete --ignore-not-found -f stdout"
    assert_eq "" "$(cat "$TOPO_TMP/del.err")" "delete --ignore-not-found -f stderr"
    out=$(svcctl delete --ignore-not-found svc notthere 2>&1); rc=$?
    assert_eq "0:" "$rc:$out" "delete --ignore-not-found of a missing name"
}

# The API server's warnings, as kubectl v1.37 prints them (k8s.api_parity
# compares them with kubectl's against kube-apiserver): each object's just
# before its line, none for an unchanged one, v1 Endpoints' deprecation on
# any request for one, each once per command.
test_api_warnings() {
    local out
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: warned}\nspec:\n  clusterIP: 10.96.0.42\n  ports: [{port: 80}]\n  externalIPs: [192.168.50.42]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: quiet}\nspec:\n  clusterIP: 10.96.0.43\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: quiet}\nsubsets:\n- addresses: [{ip: 10.244.9.8}]\n  ports: [{port: 80}]\n' \
        >"$TOPO_TMP/warned.yaml"
    out=$(svcctl apply -f "$TOPO_TMP/warned.yaml" 2>&1)
    assert_eq "Warning: spec.externalIPs is deprecated and may no longer be implemented in some clusters
service/warned created
service/quiet created
Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice
endpoints/quiet created" "$out" "apply: each object's warnings before its line"
    out=$(svcctl apply -f "$TOPO_TMP/warned.yaml" 2>&1)
    assert_eq "service/warned unchanged
service/quiet unchanged
Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice
endpoints/quiet unchanged" "$out" "apply again: no write, no strategy warning"
    out=$(svcctl label svc warned x=y 2>&1)
    assert_eq "Warning: spec.externalIPs is deprecated and may no longer be implemented in some clusters
service/warned labeled" "$out" "label: the update's warning"
    out=$(svcctl delete -f "$TOPO_TMP/warned.yaml" --dry-run=client 2>&1)
    assert_not_contains "$out" "Warning" "delete --dry-run=client: nothing sent, no warning"
    assert_ok "delete" svcctl delete -f "$TOPO_TMP/warned.yaml"
}

# kubectl's several types in one command: TYPE,TYPE [NAME] and TYPE/NAME...
test_several_types() {
    local out err rc
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: multi}\nspec:\n  clusterIP: 10.96.0.41\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: multi}\nsubsets:\n- addresses: [{ip: 10.244.9.9}]\n  ports: [{port: 8080}]\n' >"$TOPO_TMP/multi.yaml"
    assert_ok "apply multi" svcctl apply -f "$TOPO_TMP/multi.yaml" || return
    out=$(svcctl get svc,ep multi 2>&1)
    assert_contains "$out" "service/multi" "get svc,ep NAME: the Service, kind-qualified"
    assert_contains "$out" "endpoints/multi   10.244.9.9:8080" "get svc,ep NAME: its Endpoints"
    assert_eq 2 "$(grep -c '^NAME ' <<<"$out")" "get svc,ep NAME: one table per type"
    assert_eq "endpoints/multi service/multi" "$(svcctl get ep/multi svc/multi -o name 2>/dev/null | xargs)" \
        "get TYPE/NAME TYPE/NAME -o name, in the order asked"
    # kubectl v1.37 against the API server: any request for v1 Endpoints
    # is warned about, once per command.
    assert_eq "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice" \
        "$(svcctl get ep/multi svc/multi ep/multi -o name 2>&1 >/dev/null)" "get ep: the deprecation, once"
    out=$(svcctl describe svc,ep multi 2>&1)
    assert_match "$out" $'\n'"IP: +10\.96\.0\.41"$'\n' "describe svc,ep: the Service"
    assert_contains "$out" "Addresses:          10.244.9.9" "describe svc,ep: the Endpoints"
    out=$(svcctl delete svc,ep multi 2>&1); rc=$?
    assert_eq "0" "$rc" "delete svc,ep NAME: exit status"
    assert_eq $'Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice\nservice "multi" deleted\nendpoints "multi" deleted' \
        "$out" "delete svc,ep NAME: both deleted"
    out=$(svcctl get svc,ep multi 2>"$TOPO_TMP/multi.err"); rc=$?
    err=$(cat "$TOPO_TMP/multi.err")
    assert_eq "1:" "$rc:$out" "get svc,ep of deleted objects: exit 1, no table"
    assert_contains "$err" 'services "multi" not found' "the Service named NotFound"
    assert_contains "$err" 'endpoints "multi" not found' "the Endpoints named NotFound"
    out=$(svcctl get svc,pods 2>&1); rc=$?
    assert_eq "1" "$rc" "a type svclbd does not serve: exit status"
    assert_eq "error: the server doesn't have a resource type \"pods\"" "$out" "a type svclbd does not serve"
    # Every type api-resources lists is one get takes.
    for r in $(svcctl api-resources | awk 'NR > 1 {print $1}'); do
        svcctl get "$r" >/dev/null 2>&1 || _fail "svcctl get $r (listed by api-resources) failed"
    done
    assert_match "$(svcctl version 2>&1)" $'^Client Version: [0-9.]+\nServer Version: [0-9.]+$' "svcctl version names both"
}

# -l/--selector (get, describe, delete), delete --all, --show-labels, --no-headers.
test_selectors() {
    local out rc
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: sel-a, namespace: selns, labels: {tier: front, env: prod}}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: sel-b, namespace: selns, labels: {tier: back, env: dev}}\nspec:\n  ports: [{port: 81}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: sel-c, namespace: selns}\nspec:\n  ports: [{port: 82}]\n' >"$TOPO_TMP/sel.yaml"
    assert_ok "apply three Services" svcctl apply -f "$TOPO_TMP/sel.yaml" || return
    assert_eq "sel-a" "$(svcctl get svc -n selns -l tier=front -o name 2>&1 | sed 's|.*/||' | xargs)" "-l tier=front"
    assert_eq "sel-b sel-c" "$(svcctl get svc -n selns -l 'env!=prod' -o name 2>&1 | sed 's|.*/||' | xargs)" \
        "-l env!=prod (an absent key counts)"
    assert_eq "sel-c" "$(svcctl get svc -n selns -l '!tier' -o name 2>&1 | sed 's|.*/||' | xargs)" "-l !tier"
    assert_eq "sel-a sel-b" "$(svcctl get svc -n selns -l 'tier in (front,back)' -o name 2>&1 | sed 's|.*/||' | xargs)" \
        "-l 'tier in (front,back)'"
    assert_eq "sel-c sel-b sel-a" "$(svcctl get svc -n selns --sort-by .metadata.labels.tier -o name 2>&1 | sed 's|.*/||' | xargs)" \
        "--sort-by a label (none first, then back, front)"
    out=$(svcctl get svc -n selns -l tier=front --show-labels --no-headers 2>&1)
    assert_not_contains "$out" "NAME" "--no-headers"
    assert_contains "$out" "env=prod,tier=front" "--show-labels"
    out=$(svcctl get svc -n selns -l 'tier in front' 2>&1); rc=$?
    assert_eq 1 "$rc" "a bad selector: exit status"
    assert_contains "$out" "unable to parse the selector \"tier in front\"" "a bad selector is named"
    assert_match "$(svcctl describe svc -n selns -l env=dev 2>&1)" "^Name: +sel-b"$'\n' "describe -l"
    out=$(svcctl delete svc -n selns -l env=dev 2>&1)
    assert_eq 'service "sel-b" deleted' "$out" "delete -l env=dev"
    out=$(svcctl delete svc -n selns -l env=dev 2>&1); rc=$?
    assert_eq "0:No resources found" "$rc:$out" "delete -l with nothing selected"
    # get -w: the list, then a row for a Service added and one for a Service deleted.
    local wpid
    timeout 6 "$SVCLB_BIN/svcctl" --socket "$SOCK" get svc -n selns -w >"$TOPO_TMP/watch.out" 2>&1 &
    wpid=$!
    sleep 1.5
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: sel-d, namespace: selns}\nspec:\n  ports: [{port: 83}]\n' >"$TOPO_TMP/sel-d.yaml"
    assert_ok "apply sel-d while watching" svcctl apply -f "$TOPO_TMP/sel-d.yaml"
    sleep 1.5
    assert_ok "delete sel-d while watching" svcctl delete svc -n selns sel-d
    sleep 2
    kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
    out=$(cat "$TOPO_TMP/watch.out")
    assert_eq 1 "$(grep -c '^NAME ' <<<"$out")" "get -w: one header"
    assert_eq 2 "$(grep -c '^sel-d ' <<<"$out")" "get -w: sel-d added, then deleted"
    assert_eq 1 "$(grep -c '^sel-a ' <<<"$out")" "get -w: an unchanged Service printed once"
    out=$(svcctl delete svc -n selns --all 2>&1)
    assert_eq $'service "sel-a" deleted\nservice "sel-c" deleted' "$out" "delete --all"
    assert_eq "No resources found in selns namespace." "$(svcctl get svc -n selns 2>&1)" "the namespace is empty"
}

# --dry-run=server|client (and bare): svclbd's answer, nothing changed.
test_dry_run() {
    local out rc before
    before=$(svc_snapshot)
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: dry}\nspec:\n  ports: [{port: 80}]\n' >"$TOPO_TMP/dry.yaml"
    assert_eq "service/dry created (server dry run)" "$(svcctl apply --dry-run=server -f "$TOPO_TMP/dry.yaml" 2>&1)" \
        "apply --dry-run=server"
    assert_eq "service/dry created (dry run)" "$(svcctl apply -f "$TOPO_TMP/dry.yaml" --dry-run 2>&1)" "apply --dry-run"
    assert_contains "$(svcctl get svc dry 2>&1)" 'services "dry" not found' "nothing created"
    out=$(svcctl apply --dry-run=server -f "$bad_port" 2>&1); rc=$?
    assert_eq 1 "$rc" "an invalid manifest's dry run fails"
    assert_contains "$out" "Invalid value: 70000" "and says why"
    assert_eq 'service "web" deleted (server dry run)' "$(svcctl delete svc web --dry-run=server 2>&1)" \
        "delete --dry-run=server"
    assert_eq "$before" "$(svc_snapshot)" "the Services are as before"
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "web still serves after the dry runs"
    out=$(svcctl apply --dry-run=maybe -f "$TOPO_TMP/dry.yaml" 2>&1); rc=$?
    assert_eq "1:error: Invalid dry-run value (maybe). Must be \"none\", \"server\", or \"client\"." "$rc:$out" \
        "a bad --dry-run value"
}

# patch / label / annotate: svclbd patches the stored object in one change;
# traffic follows a patched port; a bad patch changes nothing.
test_patch_label_annotate() {
    local out rc before
    out=$(svcctl patch svc web -p '{"spec":{"ports":[{"port":80,"$patch":"delete"},{"port":8081,"name":"http","targetPort":8080}]}}' 2>&1)
    assert_eq "service/web patched" "$out" "patch: port 80 out, 8081 in (strategic, merged by port)"
    assert_eq "8081/TCP,5353/UDP" "$(svcctl get svc web -o jsonpath='{range .spec.ports[*]}{.port}/{.protocol},{end}' 2>&1 | sed 's/,$//')" \
        "the ports after the patch"
    check_both_answer "$(http_get_many client 20 "http://$VIP:8081/")" 20 2 "the patched port serves"
    out=$(ip netns exec client curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$VIP:80/" 2>&1); rc=$?
    assert_ne 0 "$rc" "the port the patch removed is no longer served ($out)"
    assert_eq "service/web patched (no change)" \
        "$(svcctl patch svc web --type merge -p '{"metadata":{"labels":{"app":"web"}}}' 2>&1)" "patch: no change"
    before=$(svc_snapshot)
    out=$(svcctl patch svc web --type json -p '[{"op":"remove","path":"/spec/nothere"}]' 2>&1); rc=$?
    assert_eq "1:error: unable to apply the json patch: key 'nothere' not found" "$rc:$out" "a json patch that cannot apply"
    out=$(svcctl patch svc web -p '{"spec":{"ports":[{"port":8081,"protocol":"FOO"}]}}' 2>&1); rc=$?
    assert_eq 1 "$rc" "a patch the API's validation refuses"
    assert_contains "$out" 'The Service "web" is invalid: spec.ports[0].protocol: Unsupported value: "FOO"' "and says why"
    # kubectl's os.ReadFile errors, by errno.
    out=$(svcctl patch svc web --patch-file "$TOPO_TMP/no-such.json" 2>&1); rc=$?
    assert_eq "1:error: unable to read patch file: open $TOPO_TMP/no-such.json: no such file or directory" \
        "$rc:$out" "--patch-file that is not there"
    out=$(svcctl patch svc web --patch-file "$TOPO_TMP" 2>&1); rc=$?
    assert_eq "1:error: unable to read patch file: read $TOPO_TMP: is a directory" "$rc:$out" \
        "--patch-file that is a directory"
    assert_eq "service/web patched (server dry run)" \
        "$(svcctl patch svc web --dry-run=server -p '{"spec":{"sessionAffinity":"ClientIP"}}' 2>&1)" "patch --dry-run=server"
    assert_eq "$before" "$(svc_snapshot)" "the failed and dry-run patches changed nothing"
    # label -l / --all: the selected objects of the types, type by type;
    # kubectl's aggregate of --overwrite refusals (one per line, no prefix).
    printf 'apiVersion: v1\nkind: Service\nmetadata: {name: sel-a, labels: {grp: g, tier: t}}\nspec:\n  clusterIP: 10.96.0.44\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: sel-b, labels: {grp: g, tier: t}}\nspec:\n  clusterIP: 10.96.0.45\n  ports: [{port: 80}]\n' >"$TOPO_TMP/sel.yaml"
    assert_ok "apply sel-a, sel-b" svcctl apply -f "$TOPO_TMP/sel.yaml"
    assert_eq $'service/sel-a labeled\nservice/sel-b labeled' "$(svcctl label svc -l grp=g stage=s 2>&1)" "label -l"
    assert_eq "0:" "$(svcctl label svc -l grp=none stage=s 2>&1; echo "$?:")" "label -l selecting nothing"
    out=$(svcctl label svc -l grp=g tier=u 2>&1); rc=$?
    assert_eq $'1:\'tier\' already has a value (t), and --overwrite is false\n\'tier\' already has a value (t), and --overwrite is false' \
        "$rc:$out" "label -l without --overwrite: each refusal, kubectl's aggregate"
    assert_contains "$(svcctl label svc --all all=1 2>&1)" "service/sel-b labeled" "label --all"
    out=$(svcctl label svc --all -l grp=g x=1 2>&1); rc=$?
    assert_eq "1:error: cannot set --all and --selector at the same time" "$rc:$out" "--all with -l"
    out=$(svcctl annotate svc sel-a -l grp=g n=1 2>&1); rc=$?
    assert_eq "1:error: name cannot be provided when a selector is specified" "$rc:$out" "a name with -l"
    assert_ok "delete sel-a, sel-b" svcctl delete -f "$TOPO_TMP/sel.yaml"
    # label and annotate, with kubectl's --overwrite rule.
    assert_eq "service/web labeled" "$(svcctl label svc web tier=front 2>&1)" "label"
    out=$(svcctl label svc web tier=back 2>&1); rc=$?
    assert_eq "1:error: 'tier' already has a value (front), and --overwrite is false" "$rc:$out" "label without --overwrite"
    assert_eq "service/web labeled" "$(svcctl label svc web tier=back --overwrite 2>&1)" "label --overwrite"
    assert_eq "web" "$(svcctl get svc -l tier=back -o name 2>&1 | sed 's|service/||')" "get -l finds the new label"
    assert_eq "service/web unlabeled" "$(svcctl label svc web tier- 2>&1)" "label KEY-"
    assert_eq $'label "tier" not found.\nservice/web not labeled' "$(svcctl label svc web tier- 2>&1)" "label KEY- again"
    out=$(svcctl annotate svc web svclb.io/lb-algorithm=roundrobin 2>&1); rc=$?
    assert_eq 1 "$rc" "an annotation svclb refuses"
    assert_contains "$out" 'metadata.annotations[svclb.io/lb-algorithm]' "and says which"
    assert_eq "service/web annotated" "$(svcctl annotate svc web svclb.io/lb-algorithm=random 2>&1)" "annotate"
    assert_eq "random" "$(svcctl get svc web -o jsonpath='{.metadata.annotations.svclb\.io/lb-algorithm}' 2>&1)" \
        "the annotation is stored"
    assert_eq "service/web annotated" "$(svcctl annotate svc web svclb.io/lb-algorithm- 2>&1)" "annotate KEY-"
    out=$(svcctl label svc nosuch a=b 2>&1); rc=$?
    assert_eq '1:Error from server (NotFound): services "nosuch" not found' "$rc:$out" "label a missing Service"
    svcctl apply -f "$SVCLB_EXAMPLES/web-service.yaml" >/dev/null 2>&1
    check_both_answer "$(http_get_many client 20 "http://$VIP/")" 20 2 "web serves port 80 again after re-apply"
}

run_test "cli: invalid manifests rejected, nothing changes" test_invalid_manifests
run_test "cli: --dry-run answers and changes nothing" test_dry_run
run_test "cli: delete -f deletes what exists, names what does not" test_delete_partly_missing
run_test "cli: several files in one apply are all-or-nothing" test_multi_file_all_or_nothing
run_test "cli: -n with -f sets the namespace, a different one is refused" test_namespace_flag_with_files
run_test "cli: a Service with an SCTP port is applied with a warning" test_sctp_warned
run_test "cli: a Service beside a Deployment: skipped kinds warned, --strict refuses" test_mixed_kinds
run_test "cli: get svc" test_get_svc
run_test "cli: get ep" test_get_ep
run_test "cli: several types in one get/describe/delete" test_several_types
run_test "cli: label selectors, delete --all, --show-labels, --no-headers" test_selectors
run_test "cli: describe svc" test_describe
run_test "cli: apply/unchanged/delete/NotFound" test_apply_delete_cycle
run_test "cli: patch, label, annotate" test_patch_label_annotate
run_test "cli: the API server's warnings" test_api_warnings
run_test "cli: daemon not running" test_no_daemon
finish
