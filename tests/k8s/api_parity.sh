#!/usr/bin/env bash
# svclb's reading of the Kubernetes API against the real thing (the
# kube-apiserver of tests/testlib/k8s.sh, v1.37):
#  - the manifest corpus (tests/unit/corpus): every invalid case svclb
#    refuses is refused by the apiserver too (server-side dry run), except
#    svclb's own rules listed in SVCLB_ONLY, and every valid case is taken;
#  - svcctl patch / label / annotate: the same Service is created in the
#    apiserver and in a standalone svclbd, the same change is made with
#    kubectl and with svcctl, and the two objects must then agree on what the
#    change touched (labels, annotations, ports without nodePort,
#    externalIPs, type, session affinity), as must the two commands' output
#    and exit status. The cases cover the strategic merge patch of a
#    Service's ports (merged by port, $patch delete/replace, the API's
#    order), maps and other lists, JSON merge and JSON patches, YAML
#    patches, no-change patches, patches both refuse, and label/annotate with
#    and without --overwrite;
#  - the API server's warnings (deprecated and ignored fields, non-canonical
#    addresses, v1 Endpoints) as kubectl prints them and as svcctl does.
# Exits 77 (skipped) only when there is no Go toolchain to build the tools.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../testlib/svc.sh"
source "$HERE/../testlib/k8s.sh"

k8s_test_start nsenter ip jq

topo_init "k8sap-$$"
k8s_init "k8sap-$$" || fatal_setup "k8s_init"
k8s_up || { k8s_dump_logs; fatal_setup "the control plane did not come up"; }
topo_create_node || fatal_setup "node namespace"
mkdir -p "$CG"
daemon_start && daemon_wait_ready || fatal_setup "svclbd did not start"

BASE='apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {app: web, tier: front}
  annotations: {note: a}
spec:
  externalIPs: [192.0.2.1]
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 5353, protocol: UDP, targetPort: 5353}'

# What a change may touch, comparable between the two (nodePorts and
# ClusterIPs are each side's own allocations).
view() {
    jq -S '{labels: (.metadata.labels // {}), annotations: (.metadata.annotations // {}),
            ports: [(.spec.ports // [])[] | del(.nodePort)], externalIPs: (.spec.externalIPs // []),
            type: .spec.type, sessionAffinity: .spec.sessionAffinity,
            externalTrafficPolicy: .spec.externalTrafficPolicy,
            internalTrafficPolicy: .spec.internalTrafficPolicy,
            sessionAffinityConfig: .spec.sessionAffinityConfig}'
}

reset_both() {
    k8s_kubectl delete svc web --ignore-not-found >/dev/null 2>&1
    svcctl delete svc web --ignore-not-found >/dev/null 2>&1
    k8s_kubectl create -f - >/dev/null <<<"$BASE" || _fail "kubectl create web"
    svcctl apply -f - >/dev/null <<<"$BASE" || _fail "svcctl apply web"
}

# same DESCRIPTION ARGS...: `kubectl ARGS` and `svcctl ARGS` (a command on
# svc web) agree on output, exit status and the object afterwards.
same() {
    local what=$1 kout krc sout src; shift
    # Warnings included (svcctl prints the API server's: spec.externalIPs).
    kout=$(k8s_kubectl "$@" 2>&1); krc=$?
    sout=$(svcctl "$@" 2>&1); src=$?
    if ((krc == 0)); then
        assert_eq "$krc:$kout" "$src:$sout" "$what: output"
    else
        assert_ne 0 "$src" "$what: kubectl refused ($kout); svcctl: $sout"
    fi
    local kv sv
    kv=$(k8s_kubectl get svc web -o json | view); sv=$(svcctl get svc web -o json | view)
    assert_eq "$kv" "$sv" "$what: the object" || diff <(echo "$kv") <(echo "$sv") >&2
}

test_patches() {
    local p
    reset_both
    assert_eq "$(k8s_kubectl get svc web -o json | view)" "$(svcctl get svc web -o json | view)" \
        "the same Service on both sides"
    same "strategic: a port merged by port, one added" \
        patch svc web -p '{"spec":{"ports":[{"port":80,"targetPort":9090},{"port":443,"name":"https"}]}}'
    same "strategic: \$patch delete of a port" \
        patch svc web -p '{"spec":{"ports":[{"port":5353,"$patch":"delete"}]}}'
    same "strategic: a field of a port nulled" \
        patch svc web -p '{"spec":{"ports":[{"port":80,"name":null}]}}'
    reset_both
    same "strategic: \$patch replace of the ports" \
        patch svc web -p '{"spec":{"ports":[{"$patch":"replace"},{"port":81,"name":"x"}]}}'
    reset_both
    same "strategic: labels merged, externalIPs replaced" \
        patch svc web -p '{"metadata":{"labels":{"tier":null,"new":"x"}},"spec":{"externalIPs":["192.0.2.9","192.0.2.8"]}}'
    same "strategic: \$patch replace of the labels" \
        patch svc web -p '{"metadata":{"labels":{"$patch":"replace","only":"me"}}}'
    same "strategic, YAML: session affinity" patch svc web -p $'spec:\n  sessionAffinity: ClientIP'
    same "no change" patch svc web -p '{"spec":{"sessionAffinity":"ClientIP"}}'
    same "back to None: the config is dropped (API defaulting)" patch svc web -p '{"spec":{"sessionAffinity":"None"}}'
    same "type NodePort" patch svc web -p '{"spec":{"type":"NodePort"}}'
    same "back to ClusterIP: the nodePorts and the policy go" patch svc web -p '{"spec":{"type":"ClusterIP"}}'
    reset_both
    same "merge: the ports replaced whole" patch svc web --type merge -p '{"spec":{"ports":[{"port":81,"name":"m"}]}}'
    reset_both
    same "json: replace and add" patch svc web --type json \
        -p '[{"op":"replace","path":"/spec/ports/1/port","value":53},{"op":"add","path":"/metadata/labels/z","value":"1"}]'
    same "json: a path that is not there" patch svc web --type json -p '[{"op":"remove","path":"/spec/nothere"}]'
    same "json: a failed test" patch svc web --type json -p '[{"op":"test","path":"/spec/type","value":"NodePort"}]'
    same "a port number out of range" patch svc web -p '{"spec":{"ports":[{"port":70000}]}}'
}

test_label_annotate() {
    reset_both
    same "label a new key" label svc web stage=dev
    same "label an existing key without --overwrite" label svc web tier=back
    same "label --overwrite" label svc web tier=back --overwrite
    same "label KEY-" label svc web stage-
    same "label the same value" label svc web tier=back
    same "annotate an existing key without --overwrite" annotate svc web note=b
    same "annotate --overwrite" annotate svc web note=b --overwrite
    same "annotate a new key" annotate svc web other=1
    same "annotate KEY-" annotate svc web other-
    same "label -l" label svc -l app=web stage=sel
    same "label -l, no object selected" label svc -l app=none stage=x
    same "label -l with a name" label svc web -l app=web stage=y
    same "label --all with -l" label svc --all -l app=web stage=y
    same "label -l without --overwrite" label svc -l 'app in (web)' stage=other
    same "annotate -l" annotate svc -l app=web sel=1
}

# svclb's own rules, which the apiserver does not have: its ClusterIP and
# nodePort ranges and allocations (a dry run allocates nothing, so two
# objects of one file never collide there), its annotations, and the YAML
# reading of kubectl v1.32 (duplicate keys).
SVCLB_ONLY=" clusterip_change_baseline clusterip_collision_in_file clusterip_taken_by_baseline
  ep-bad-weights np-clash-in-file np-healthcheck-out-of-range np-out-of-range svc-bad-lb-algorithm
  yaml_duplicate_key "
CORPUS=$K8S_REPO/tests/unit/corpus

test_corpus() {
    local f name out rc
    k8s_kubectl create namespace prod >/dev/null && k8s_kubectl create namespace frontend >/dev/null ||
        { _fail "namespaces for the corpus"; return; }
    for f in "$CORPUS"/invalid/*.yaml; do
        name=$(basename "$f" .yaml)
        [[ $SVCLB_ONLY == *" $name "* || $SVCLB_ONLY == *" $name"$'\n'* ]] && continue
        grep -q 'metallb.io/' "$f" && continue  # no MetalLB CRDs in this apiserver
        out=$(k8s_kubectl create --dry-run=server -f "$f" 2>&1); rc=$?
        assert_ne 0 "$rc" "invalid/$name: the apiserver refuses it too (svclb: $(head -c 160 "${f%.yaml}.err"))"
    done
    for f in "$CORPUS"/valid/*.yaml; do
        name=$(basename "$f" .yaml)
        grep -q 'metallb.io/' "$f" && continue
        out=$(k8s_kubectl create --dry-run=server -f "$f" 2>&1); rc=$?
        assert_eq 0 "$rc" "valid/$name: the apiserver takes it ($out)"
    done
}

# get -o wide and describe of the same Services (ClusterIP with a selector,
# NodePort, LoadBalancer with externalIPs, headless, ExternalName): the
# same lines, but for AGE, the Endpoints lines (the apiserver's come from
# its EndpointSlice controller, svclb's from its own view) and the Events.
test_get_describe() {
    local f=$K8S_TMP/get.yaml s
    cat >"$f" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: g-web, labels: {app: web}}
spec:
  clusterIP: 10.96.5.10
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 5353, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: g-np}
spec:
  type: NodePort
  clusterIP: 10.96.5.11
  ports: [{port: 80, nodePort: 31080}]
---
apiVersion: v1
kind: Service
metadata: {name: g-lb}
spec:
  type: LoadBalancer
  clusterIP: 10.96.5.12
  externalIPs: [192.0.2.10]
  ports: [{port: 443, nodePort: 31443}]
---
apiVersion: v1
kind: Service
metadata: {name: g-headless}
spec:
  clusterIP: None
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: g-ext}
spec:
  type: ExternalName
  externalName: example.com
Y
    k8s_kubectl create -f "$f" >/dev/null 2>&1 || { _fail "kubectl create"; return; }
    svcctl apply -f "$f" >/dev/null || { _fail "svcctl apply"; return; }
    local names=(g-ext g-headless g-lb g-np g-web) age='s/ [0-9]+[smhd]( |$)/ AGE\1/'
    assert_eq "$(k8s_kubectl get svc "${names[@]}" -o wide | sed -E "$age")" \
        "$(svcctl get svc "${names[@]}" -o wide | sed -E "$age")" "get svc -o wide"
    # Events are the cluster's own (the apiserver's ClusterIP repair loop
    # may report a Service created while it runs): compared up to them.
    for s in "${names[@]}"; do
        assert_eq "$(k8s_kubectl describe svc "$s" | grep -v '^Endpoints:' | sed '/^Events:/,$d')" \
            "$(svcctl describe svc "$s" | grep -v '^Endpoints:' | sed '/^Events:/,$d')" "describe svc $s"
    done
}

# The API server's warnings: the same objects applied with kubectl and
# svcctl print the same lines (warnings on stderr, each before its
# object's line), on a create, a no-change apply, a label, a client dry run
# and a get of v1 Endpoints.
test_warnings() {
    local f=$K8S_TMP/warn.yaml svcs=$K8S_TMP/warn-svcs.yaml moved=$K8S_TMP/warn-moved.yaml
    cat >"$svcs" <<'Y'
apiVersion: v1
kind: Service
metadata: {name: w-ext}
spec:
  type: LoadBalancer
  clusterIP: 10.96.6.10
  ports: [{port: 80, nodePort: 31180}]
  externalIPs: ["192.0.2.20", "2001:DB8::1"]
  loadBalancerSourceRanges: ["10.0.0.0/24", "2001:db8:0::/64"]
---
apiVersion: v1
kind: Service
metadata: {name: w-hl}
spec:
  clusterIP: None
  ports: [{port: 80}]
  sessionAffinity: ClientIP
  externalIPs: ["192.0.2.21"]
  externalName: foo.example.com
---
apiVersion: v1
kind: Service
metadata: {name: w-en, annotations: {service.kubernetes.io/topology-aware-hints: auto}}
spec:
  type: ExternalName
  externalName: foo.example.com
  externalIPs: ["192.0.2.22"]
---
apiVersion: v1
kind: Service
metadata: {name: w-td}
spec:
  clusterIP: 10.96.6.13
  ports: [{port: 80}]
  trafficDistribution: PreferClose
Y
    local eps='apiVersion: v1
kind: Endpoints
metadata: {name: w-td}
subsets:
- addresses: [{ip: "2001:DB8::5"}, {ip: 10.0.0.5}]
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: w-td-1, labels: {kubernetes.io/service-name: w-td}}
addressType: FQDN
endpoints: [{addresses: [foo.example.com]}]
ports: [{port: 80}]'
    { cat "$svcs"; echo ---; echo "$eps"; } >"$f"
    # The Endpoints alone: kubectl reports a re-applied EndpointSlice as
    # "configured" though nothing changes (its lists have no merge key and
    # the server defaulted fields in them, so its patch is never empty);
    # svclb says "unchanged".
    sed -n '/^---$/q; s/10.0.0.5/10.0.0.6/; p' <<<"$eps" >"$moved"
    local args kout sout krc src
    for args in "apply -f $f" "apply -f $svcs" "label svc w-ext a=b" "get ep w-td -o name" \
        "apply -f $moved --dry-run=client"; do
        # shellcheck disable=SC2086
        kout=$(k8s_kubectl $args 2>&1); krc=$?
        # shellcheck disable=SC2086
        sout=$(svcctl $args 2>&1); src=$?
        assert_eq "$krc:$kout" "$src:$sout" "$args: the same lines"
    done
}

run_test "get, describe: svcctl prints what kubectl prints" test_get_describe
run_test "the API server's warnings: svcctl prints what kubectl prints" test_warnings
run_test "corpus: the apiserver refuses what svclb refuses and takes what it takes" test_corpus
run_test "patch: svcctl and kubectl against the apiserver agree" test_patches
run_test "label, annotate: svcctl and kubectl agree" test_label_annotate
finish
