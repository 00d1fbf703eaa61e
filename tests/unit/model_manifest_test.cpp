// parseManifests: kubectl output, docs-style manifests, defaults, JSON input,
// Lists and kubectl-worded parse errors.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "model/model.h"

namespace svclb {
namespace {

std::string readCorpus(const std::string& rel) {
  std::ifstream in(std::string(SVCLB_TEST_CORPUS) + "/" + rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Object> parseOk(const std::string& text, const std::string& src = "t.yaml") {
  auto r = parseManifests(text, src);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

std::string parseErr(const std::string& text, const std::string& src = "t.yaml") {
  auto r = parseManifests(text, src);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(ModelManifest, KubectlCreateServiceClusterIP) {
  auto objs = parseOk(readCorpus("valid/kubectl_clusterip.yaml"));
  ASSERT_EQ(objs.size(), 1u);
  const auto& s = std::get<Service>(objs[0]);
  EXPECT_EQ(s.meta.name, "web");
  EXPECT_EQ(s.meta.ns, "default");
  EXPECT_EQ(s.meta.labels.at("app"), "web");
  EXPECT_EQ(s.meta.creationTimestamp, "");  // creationTimestamp: null
  EXPECT_EQ(s.type, "ClusterIP");
  EXPECT_EQ(s.clusterIP, "");
  EXPECT_EQ(s.selector.at("app"), "web");
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].name, "80-8080");
  EXPECT_EQ(s.ports[0].protocol, "TCP");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].targetPort, (IntOrString{false, 8080, ""}));
  EXPECT_EQ(s.sessionAffinity, "None");
  EXPECT_TRUE(validate(objs[0]).ok());
}

TEST(ModelManifest, KubectlNodePortAndJsonOutput) {
  auto np = parseOk(readCorpus("valid/kubectl_nodeport.yaml"));
  ASSERT_EQ(np.size(), 1u);
  EXPECT_EQ(std::get<Service>(np[0]).type, "NodePort");
  EXPECT_EQ(std::get<Service>(np[0]).ports[0].nodePort, 30080);

  auto js = parseOk(readCorpus("valid/kubectl_clusterip_json.yaml"), "web.json");
  ASSERT_EQ(js.size(), 1u);
  EXPECT_EQ(std::get<Service>(js[0]).meta.name, "web-json");
  EXPECT_EQ(std::get<Service>(js[0]).ports[0].targetPort.intVal, 8080);
}

TEST(ModelManifest, NamedTargetPortAndDefaults) {
  auto objs = parseOk(R"(apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports:
  - name: http
    port: 80
    targetPort: http-web-svc
  - name: plain
    port: 81
  - name: zero
    port: 82
    targetPort: 0
)");
  ASSERT_EQ(objs.size(), 1u);
  const auto& s = std::get<Service>(objs[0]);
  EXPECT_EQ(s.ports[0].targetPort, (IntOrString{true, 0, "http-web-svc"}));
  EXPECT_EQ(s.ports[1].targetPort, (IntOrString{false, 81, ""}));  // default = port
  EXPECT_EQ(s.ports[2].targetPort, (IntOrString{false, 82, ""}));  // 0 = unset
  EXPECT_EQ(s.ports[1].protocol, "TCP");
  EXPECT_EQ(s.sessionAffinityTimeoutSeconds, 10800);
}

TEST(ModelManifest, QuotedNumbersStayStrings) {
  // `targetPort: "8080"` is a (bad) port name, not a number, as in kubectl.
  auto objs = parseOk(R"(apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    svclb.io/weight: "3"
    note: |
      multi
      line
spec:
  ports:
  - port: 80
    targetPort: "8080"
)");
  const auto& s = std::get<Service>(objs.at(0));
  EXPECT_TRUE(s.ports[0].targetPort.isString);
  EXPECT_EQ(s.ports[0].targetPort.strVal, "8080");
  EXPECT_EQ(s.meta.annotations.at("svclb.io/weight"), "3");
  EXPECT_EQ(s.meta.annotations.at("note"), "multi\nline\n");
  EXPECT_EQ(validate(objs[0]).error().message,
            "The Service \"web\" is invalid: spec.ports[0].targetPort: Invalid value: \"8080\": "
            "must contain at least one letter (a-z)");
}

TEST(ModelManifest, AllServiceFields) {
  auto objs = parseOk(readCorpus("valid/service_full.yaml"));
  ASSERT_EQ(objs.size(), 1u);
  const auto& s = std::get<Service>(objs[0]);
  EXPECT_EQ(s.meta.ns, "frontend");
  EXPECT_EQ(s.type, "LoadBalancer");
  EXPECT_EQ(s.clusterIP, "10.96.0.77");
  EXPECT_EQ(s.externalIPs, std::vector<std::string>{"192.0.2.10"});
  EXPECT_EQ(s.externalTrafficPolicy, "Local");
  EXPECT_EQ(s.internalTrafficPolicy, "Cluster");
  EXPECT_EQ(s.healthCheckNodePort, 31000);
  EXPECT_EQ(s.loadBalancerIP, "198.51.100.7");
  EXPECT_EQ(s.loadBalancerSourceRanges, (std::vector<std::string>{"203.0.113.0/24", "10.0.0.0/8"}));
  EXPECT_EQ(s.sessionAffinity, "ClientIP");
  EXPECT_EQ(s.sessionAffinityTimeoutSeconds, 10800);  // no config: default
  EXPECT_EQ(s.ports[0].appProtocol, "https");
  EXPECT_EQ(s.ports[0].nodePort, 30443);
  EXPECT_EQ(s.ports[1].protocol, "UDP");
  EXPECT_EQ(s.loadBalancerIngressIPs, std::vector<std::string>{"198.51.100.7"});
  EXPECT_TRUE(validate(objs[0]).ok()) << validate(objs[0]).error().message;
}

TEST(ModelManifest, MultiDocumentAllThreeKinds) {
  auto objs = parseOk(readCorpus("valid/multi_doc_all_three.yaml"));
  ASSERT_EQ(objs.size(), 3u);
  EXPECT_EQ(kindOf(objs[0]), "Service");
  EXPECT_EQ(kindOf(objs[1]), "Endpoints");
  EXPECT_EQ(kindOf(objs[2]), "EndpointSlice");
  const auto& s = std::get<Service>(objs[0]);
  EXPECT_EQ(s.meta.ns, "prod");
  EXPECT_EQ(s.sessionAffinityTimeoutSeconds, 600);
  const auto& e = std::get<Endpoints>(objs[1]);
  ASSERT_EQ(e.subsets.size(), 1u);
  EXPECT_EQ(e.subsets[0].ports[0].protocol, "TCP");  // defaulted
  EXPECT_EQ(e.subsets[0].ports[1].protocol, "UDP");
  const auto& sl = std::get<EndpointSlice>(objs[2]);
  EXPECT_EQ(sl.meta.labels.at("kubernetes.io/service-name"), "shop");
  ASSERT_EQ(sl.endpoints.size(), 2u);
  EXPECT_EQ(sl.endpoints[0].conditions.ready, std::optional<bool>(true));
  EXPECT_EQ(sl.endpoints[0].conditions.terminating, std::nullopt);
  EXPECT_EQ(sl.endpoints[1].conditions.terminating, std::optional<bool>(true));
  for (const auto& o : objs) EXPECT_TRUE(validate(o).ok()) << validate(o).error().message;
}

TEST(ModelManifest, EndpointsFields) {
  auto objs = parseOk(readCorpus("valid/docs_service_without_selector.yaml"));
  ASSERT_EQ(objs.size(), 2u);
  const auto& e = std::get<Endpoints>(objs[1]);
  ASSERT_EQ(e.subsets.size(), 1u);
  const auto& ss = e.subsets[0];
  ASSERT_EQ(ss.addresses.size(), 2u);
  EXPECT_EQ(ss.addresses[1].ip, "10.4.5.7");
  EXPECT_EQ(ss.addresses[1].nodeName, "node-1");
  EXPECT_EQ(ss.addresses[1].targetRefKind, "Pod");
  EXPECT_EQ(ss.addresses[1].targetRefName, "my-pod-7d9f");
  EXPECT_EQ(ss.addresses[1].targetRefNamespace, "default");
  ASSERT_EQ(ss.notReadyAddresses.size(), 1u);
  EXPECT_EQ(ss.ports[0], (EndpointPort{"http", "TCP", 9376, ""}));
}

TEST(ModelManifest, EndpointSliceFields) {
  auto objs = parseOk(readCorpus("valid/docs_endpointslice_conditions.yaml"));
  const auto& s = std::get<EndpointSlice>(objs.at(0));
  EXPECT_EQ(s.addressType, "IPv4");
  ASSERT_EQ(s.endpoints.size(), 4u);
  const auto& e0 = s.endpoints[0];
  EXPECT_EQ(e0.hostname, "pod-1");
  EXPECT_EQ(e0.nodeName, "node-1");
  EXPECT_EQ(e0.zone, "us-west2-a");
  EXPECT_EQ(e0.targetRefName, "example-pod-1");
  EXPECT_EQ(e0.conditions.serving, std::optional<bool>(true));
  EXPECT_FALSE(s.endpoints[3].conditions.ready.has_value());

  // A slice port may omit port, name and protocol.
  auto bare = parseOk(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s1}
addressType: IPv4
endpoints: [{addresses: ["10.0.0.1"]}]
ports: [{}]
)");
  const auto& b = std::get<EndpointSlice>(bare.at(0));
  ASSERT_EQ(b.ports.size(), 1u);
  EXPECT_EQ(b.ports[0], (EndpointPort{"", "TCP", 0, ""}));
  EXPECT_TRUE(validate(bare[0]).ok());
}

TEST(ModelManifest, ListIsExpanded) {
  auto objs = parseOk(readCorpus("valid/list.yaml"));
  ASSERT_EQ(objs.size(), 2u);
  const auto& s = std::get<Service>(objs[0]);
  EXPECT_EQ(s.clusterIP, "10.96.0.20");
  EXPECT_EQ(s.meta.uid, "0b6c4a4e-52b2-4cf0-9a8e-2f1d7c7a1f00");
  EXPECT_EQ(std::get<Endpoints>(objs[1]).subsets[0].addresses[0].nodeName, "node-a");

  auto typed = parseOk(R"(apiVersion: v1
kind: ServiceList
items:
- metadata: {name: a}
  spec: {ports: [{port: 80}]}
)");
  ASSERT_EQ(typed.size(), 1u);
  EXPECT_EQ(std::get<Service>(typed[0]).meta.name, "a");
}

TEST(ModelManifest, EmptyDocumentsAndEmptyInput) {
  EXPECT_TRUE(parseOk("").empty());
  EXPECT_TRUE(parseOk("---\n---\n# only a comment\n").empty());
}

TEST(ModelManifest, JsonWithTabs) {
  auto objs = parseOk(
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Endpoints\",\n\t\"metadata\": {\"name\": "
      "\"x\"},\n\t\"subsets\": [{\"addresses\": [{\"ip\": \"10.1.1.1\"}], \"ports\": [{\"port\": "
      "80}]}]\n}\n");
  ASSERT_EQ(objs.size(), 1u);
  EXPECT_EQ(std::get<Endpoints>(objs[0]).subsets[0].addresses[0].ip, "10.1.1.1");
}

// `svcctl get svc -o json | jq '.items[]'`: JSON objects one after the
// other (pretty or on one line each), as kubectl reads them.
TEST(ModelManifest, ConcatenatedJsonObjects) {
  const std::string a = R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
  "spec": {"ports": [{"port": 80}]}})";
  const std::string b =
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Service\",\n\t\"metadata\": "
      "{\"name\": \"b\"},\n\t\"spec\": {\"ports\": [{\"port\": 81}]}\n}";
  auto objs = parseOk(a + "\n" + b + "\n");
  ASSERT_EQ(objs.size(), 2u);
  EXPECT_EQ(std::get<Service>(objs[0]).meta.name, "a");
  EXPECT_EQ(std::get<Service>(objs[1]).ports[0].port, 81);
  EXPECT_EQ(parseOk(a + b).size(), 2u);
  // Something after them that is not an object: not a JSON stream.
  EXPECT_FALSE(parseManifests(a + "\n" + b + "\n]", "s.json").ok());
}

TEST(ModelManifest, YamlSyntaxErrorNamesFileAndLine) {
  std::string err =
      parseErr("apiVersion: v1\nkind: Service\nmetadata:\n  name: [web\n", "web.yaml");
  EXPECT_EQ(
      err.rfind("error: error parsing web.yaml: error converting YAML to JSON: yaml: line ", 0), 0u)
      << err;
  std::string stdinErr = parseErr("a: b: c\n", "-");
  EXPECT_EQ(stdinErr.rfind(
                "error: error parsing STDIN: error converting YAML to JSON: yaml: line 1: ", 0),
            0u)
      << stdinErr;
}

TEST(ModelManifest, UnknownKindUsesStdinName) {
  EXPECT_EQ(parseErr("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "-"),
            "error: unable to recognize \"STDIN\": no matches for kind \"Pod\" in version \"v1\"");
}

// An application manifest from the Kubernetes documentation: a Service
// beside its Deployment. Strict (svcctl apply --strict, and every caller
// that passes no list): refused whole. Otherwise the Service is read and the
// Deployment named in one warning line.
TEST(ModelManifest, OtherKindsAreSkippedUnlessStrict) {
  std::ifstream in(SVCLB_E2E_MANIFESTS "/nginx-app.yaml");
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  auto strict = parseManifests(text.str(), "nginx-app.yaml");
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.error().message,
            "error: unable to recognize \"nginx-app.yaml\": no matches for kind \"Deployment\" in "
            "version \"apps/v1\"");
  std::vector<std::string> skipped;
  auto objs = parseManifests(text.str(), "nginx-app.yaml", &skipped);
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  ASSERT_EQ(objs->size(), 1u);
  EXPECT_EQ(kindOf((*objs)[0]), "Service");
  EXPECT_EQ(metaOf((*objs)[0]).name, "my-nginx-svc");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].rfind("Warning: skipped deployment.apps/my-nginx (apps/v1 Deployment): ", 0),
            0u)
      << skipped[0];

  // Core kinds have no group; list items and block YAML are skipped
  // alike; a malformed object of svclb's kinds is still refused.
  skipped.clear();
  const std::string mixed =
      "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n---\n"
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n"
      "    name: cm\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n"
      "  spec:\n    ports:\n    - port: 80\n";
  objs = parseManifests(mixed, "m.yaml", &skipped);
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  ASSERT_EQ(objs->size(), 1u);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].rfind("Warning: skipped serviceaccount/sa (v1 ServiceAccount): ", 0), 0u);
  EXPECT_EQ(skipped[1].rfind("Warning: skipped configmap/cm (v1 ConfigMap): ", 0), 0u);
  auto bad = parseManifests(mixed + "---\napiVersion: v1\nkind: Service\nmetadata: {}\n", "m.yaml",
                            &skipped);
  EXPECT_FALSE(bad.ok());
}

// The warning says why, in words that fit delete -f as well as apply.
TEST(ModelManifest, SkippedLineNamesWhatSvclbHandles) {
  std::vector<std::string> skipped;
  auto objs = parseManifests("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
                             "d.yaml", &skipped);
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  EXPECT_TRUE(objs->empty());  // only skipped objects: nothing to do, no error
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0],
            "Warning: skipped deployment.apps/web (apps/v1 Deployment): svclb handles only v1 "
            "Services and Endpoints, discovery.k8s.io/v1 EndpointSlices and metallb.io/v1beta1 "
            "IPAddressPools and L2Advertisements (--strict refuses the manifest instead)");
}

// svclb's own kinds in a version of their group svclb does not read are a
// mistake in an object meant for svclb: refused whole even when other kinds
// are skipped. The same kind name in another group is someone else's.
TEST(ModelManifest, OwnKindsInAnotherVersionAreRefusedNotSkipped) {
  const std::string service =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n";
  const std::pair<const char*, const char*> refused[] = {
      {"discovery.k8s.io/v1beta1", "EndpointSlice"},
      {"v1", "EndpointSlice"},
      {"v2", "Service"},
      {"metallb.io/v1beta2", "IPAddressPool"},
      {"metallb.io/v1alpha1", "L2Advertisement"},
  };
  for (const auto& [apiVersion, kind] : refused) {
    std::vector<std::string> skipped;
    const std::string text =
        service + "---\napiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata: {name: x}\n";
    auto r = parseManifests(text, "m.yaml", &skipped);
    ASSERT_FALSE(r.ok()) << apiVersion << " " << kind;
    EXPECT_EQ(r.error().message,
              std::string("error: unable to recognize \"m.yaml\": no matches for kind \"") + kind +
                  "\" in version \"" + apiVersion + "\"");
  }
  std::vector<std::string> skipped;
  auto r = parseManifests(
      service + "---\napiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: web}\n" +
          "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p}\n",
      "m.yaml", &skipped);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 1u);
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_EQ(skipped[0].rfind("Warning: skipped service.serving.knative.dev/web ", 0), 0u)
      << skipped[0];
  EXPECT_EQ(skipped[1].rfind("Warning: skipped bgppeer.metallb.io/p ", 0), 0u) << skipped[1];
}

TEST(ModelManifest, TypeErrorsNeverThrow) {
  const char* bad[] = {
      "apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {ports: [{port: 1.5}]}\n",
      "apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {ports: [80]}\n",
      "apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {ports: [{port: 99999999999}]}\n",
      "apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {ports: [{targetPort: [1]}]}\n",
      "apiVersion: v1\nkind: Service\nmetadata: [w]\n",
      "apiVersion: v1\nkind: Service\nmetadata: {name: 5}\n",
      "apiVersion: v1\nkind: Endpoints\nmetadata: {name: w}\nsubsets: {a: 1}\n",
      "apiVersion: v1\nkind: List\nitems: 3\n",
      "apiVersion: 1\nkind: Service\n",
      "- just\n- a list\n",
      "just a string\n",
      "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"w\"}, \"spec\": ",
      "? [a, b]\n: c\n",
      "\t\ttabs: are not indentation\n",
  };
  for (const char* text : bad) {
    auto r = parseManifests(text, "bad.yaml");
    EXPECT_FALSE(r.ok()) << text;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.rfind("error: ", 0), 0u) << r.error().message;
    }
  }
  EXPECT_EQ(parseErr("apiVersion: v1\nkind: Service\nmetadata: {name: w}\nspec: {ports: [{port: "
                     "1.5}]}\n"),
            "error: error validating \"t.yaml\": error validating data: "
            "ValidationError(Service.spec.ports[0].port): invalid type for "
            "io.k8s.api.core.v1.ServicePort.port: got \"number\", expected \"integer\"; if you "
            "choose to ignore these errors, turn validation off with --validate=false");
}

TEST(ModelManifest, MissingNameForEachKind) {
  EXPECT_EQ(parseErr("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  "
                     "namespace: prod\naddressType: IPv4\n",
                     "s.yaml"),
            "error: error when retrieving current configuration of:\nResource: "
            "\"discovery.k8s.io/v1, Resource=endpointslices\", GroupVersionKind: "
            "\"discovery.k8s.io/v1, Kind=EndpointSlice\"\nName: \"\", Namespace: \"prod\"\nfrom "
            "server for: \"s.yaml\": resource name may not be empty");
  EXPECT_EQ(parseErr("apiVersion: v1\nkind: Endpoints\n", "e.yaml"),
            "error: error when retrieving current configuration of:\nResource: \"/v1, "
            "Resource=endpoints\", GroupVersionKind: \"/v1, Kind=Endpoints\"\nName: \"\", "
            "Namespace: \"default\"\nfrom server for: \"e.yaml\": resource name may not be empty");
}

TEST(ModelManifest, MissingApiVersionAndKind) {
  EXPECT_EQ(parseErr("metadata: {name: x}\n"),
            "error: error validating \"t.yaml\": error validating data: [apiVersion not set, kind "
            "not set]; if you choose to ignore these errors, turn validation off with "
            "--validate=false");
}

TEST(ModelManifest, KindHelpers) {
  EXPECT_EQ(kindFromResource("svc"), std::optional<std::string>("Service"));
  EXPECT_EQ(kindFromResource("Services"), std::optional<std::string>("Service"));
  EXPECT_EQ(kindFromResource("ep"), std::optional<std::string>("Endpoints"));
  EXPECT_EQ(kindFromResource("endpointslices.discovery.k8s.io"),
            std::optional<std::string>("EndpointSlice"));
  EXPECT_EQ(kindFromResource("pods"), std::nullopt);
}

}  // namespace
}  // namespace svclb
