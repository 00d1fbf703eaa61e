// k8s/reflector.h, the pure parts: the resources and kube-proxy's selector as
// sent, the recovery decision (410 -> relist), the backoff's bounds, list
// items' apiVersion/kind, conversion to model objects (bad ones skipped and
// reported) and the Node's addresses.
#include <gtest/gtest.h>

#include "k8s/reflector.h"

namespace svclb::k8s {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

TEST(K8sResources, KubeProxySelectorAndPaths) {
  Resource s = servicesResource();
  EXPECT_EQ(s.path, "/api/v1/services");
  EXPECT_EQ(s.labelSelector,
            "!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name");
  EXPECT_EQ(selectorQuery(s),
            "labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%"
            "2Fservice-proxy-name");
  Resource e = endpointSlicesResource();
  EXPECT_EQ(e.path, "/apis/discovery.k8s.io/v1/endpointslices");
  EXPECT_EQ(e.apiVersion, "discovery.k8s.io/v1");
  EXPECT_EQ(e.kind, "EndpointSlice");
  EXPECT_EQ(e.labelSelector, s.labelSelector);
  // With the cluster DNS on, headless Services' slices are listed too.
  EXPECT_EQ(endpointSlicesResource(true).labelSelector,
            "!service.kubernetes.io/service-proxy-name");
  Resource n = nodeResource("node-1");
  EXPECT_EQ(selectorQuery(n), "fieldSelector=metadata.name%3Dnode-1");
  EXPECT_EQ(watchPath(n, "12345", 317),
            "/api/v1/nodes?watch=1&resourceVersion=12345&allowWatchBookmarks=true&"
            "timeoutSeconds=317&fieldSelector=metadata.name%3Dnode-1");
  EXPECT_EQ(watchPath(e, "9", 300),
            "/apis/discovery.k8s.io/v1/endpointslices?watch=1&resourceVersion=9&"
            "allowWatchBookmarks=true&timeoutSeconds=300&labelSelector=%21service.kubernetes.io%"
            "2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name");
}

TEST(K8sRecovery, GoneRelistsOthersReconnect) {
  EXPECT_EQ(recoveryFor(Error{ESTALE, "410"}), Recovery::Relist);
  EXPECT_EQ(recoveryFor(Error{ECANCELED, "stop"}), Recovery::Stop);
  for (int e : {ECONNREFUSED, ETIMEDOUT, EAGAIN, EPERM, EACCES, EBADMSG, ECONNRESET, EIO})
    EXPECT_EQ(recoveryFor(Error{e, "x"}), Recovery::Reconnect) << e;
  EXPECT_EQ(recoveryForStatus({{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}}),
            Recovery::Relist);
  EXPECT_EQ(
      recoveryForStatus(
          {{"kind", "Status"}, {"code", 500}, {"message", "too old resource version: 5 (9)"}}),
      Recovery::Relist);
  EXPECT_EQ(recoveryForStatus({{"kind", "Status"}, {"code", 500}, {"message", "internal"}}),
            Recovery::Reconnect);
  EXPECT_EQ(recoveryForStatus(json::object()), Recovery::Reconnect);
}

TEST(K8sBackoff, DoublesToTheCapWithJitterBelow) {
  Backoff full(milliseconds(500), milliseconds(30000), 0.5);
  std::vector<int64_t> got;
  for (int i = 0; i < 9; ++i) got.push_back(full.next(0.0).count());
  EXPECT_EQ(got, (std::vector<int64_t>{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}));
  full.reset();
  EXPECT_EQ(full.next(0.0).count(), 500);
  EXPECT_EQ(full.next(0.999999).count(), 500);  // 1000 * (1 - 0.5 * ~1)

  Backoff b(milliseconds(500), milliseconds(30000), 0.5);
  int64_t base = 500;
  for (int i = 0; i < 1000; ++i) {
    int64_t d = b.next().count();
    EXPECT_LE(d, base) << i;
    EXPECT_GE(d, base / 2) << i;
    EXPECT_LE(d, 30000);
    base = std::min<int64_t>(base * 2, 30000);
  }
  EXPECT_EQ(b.attempts(), 1000u);
}

TEST(K8sTypeMeta, ListItemsGetApiVersionAndKind) {
  std::vector<json> items = {
      {{"metadata", {{"name", "a"}}}},
      {{"apiVersion", "discovery.k8s.io/v1"}, {"kind", "EndpointSlice"}, {"metadata", {}}},
      {{"apiVersion", ""}, {"metadata", {{"name", "b"}}}},
  };
  fillTypeMeta(items, endpointSlicesResource());
  for (const auto& it : items) {
    EXPECT_EQ(it["apiVersion"], "discovery.k8s.io/v1");
    EXPECT_EQ(it["kind"], "EndpointSlice");
  }
  json svc = {{"apiVersion", "v1"}, {"kind", "Service"}};
  fillTypeMeta(svc, endpointSlicesResource());  // what the server sent stays
  EXPECT_EQ(svc["kind"], "Service");
}

// As the apiserver lists them (no apiVersion/kind per item; server-set fields).
json apiServerService() {
  return json::parse(R"({
    "metadata": {"name": "web", "namespace": "default", "uid": "7d3c6c5e-1",
                 "resourceVersion": "1234", "creationTimestamp": "2026-12-04T08:00:00Z",
                 "managedFields": [{"manager": "kubectl", "operation": "Update"}]},
    "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
             "selector": {"app": "web"}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
             "type": "ClusterIP", "sessionAffinity": "None", "ipFamilies": ["IPv4"],
             "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
    "status": {"loadBalancer": {}}})");
}

json apiServerSlice() {
  return json::parse(R"({
    "metadata": {"name": "web-abcde", "namespace": "default", "resourceVersion": "1240",
                 "generateName": "web-",
                 "labels": {"kubernetes.io/service-name": "web",
                            "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                      "uid": "7d3c6c5e-1", "controller": true}]},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.244.1.5"],
                   "conditions": {"ready": true, "serving": true, "terminating": false},
                   "nodeName": "node-1", "zone": "z1",
                   "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1",
                                 "uid": "p1"}}],
    "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]})");
}

TEST(K8sModelObjects, ApiServerShapesConvert) {
  std::vector<json> svcs = {apiServerService()};
  fillTypeMeta(svcs, servicesResource());
  std::vector<json> slices = {apiServerSlice()};
  fillTypeMeta(slices, endpointSlicesResource());
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  auto s = toModelObjects(svcs, warn);
  auto e = toModelObjects(slices, warn);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(kindOf(s[0]), "Service");
  EXPECT_EQ(metaOf(s[0]).name, "web");
  EXPECT_EQ(std::get<Service>(s[0]).clusterIP, "10.96.0.10");
  const auto& slice = std::get<EndpointSlice>(e[0]);
  EXPECT_EQ(metaOf(e[0]).name, "web-abcde");
  ASSERT_EQ(slice.endpoints.size(), 1u);
  EXPECT_EQ(slice.endpoints[0].addresses, std::vector<std::string>{"10.244.1.5"});
}

TEST(K8sModelObjects, SliceWithoutEndpoints) {
  // Go encodes an empty endpoints list as null (no omitempty on the field).
  json j = apiServerSlice();
  j["endpoints"] = nullptr;
  fillTypeMeta(j, endpointSlicesResource());
  auto o = toModelObject(j);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_TRUE(std::get<EndpointSlice>(*o).endpoints.empty());
}

TEST(K8sModelObjects, BadObjectsSkippedAndReported) {
  json bad = apiServerService();
  bad["spec"]["ports"][0]["port"] = "eighty";
  std::vector<json> items = {apiServerService(), bad, json::array()};
  fillTypeMeta(items, servicesResource());
  items[1]["metadata"]["name"] = "broken";
  std::vector<std::string> warnings;
  auto out = toModelObjects(items, [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(metaOf(out[0]).name, "web");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("skipped Service default/broken from the API server: invalid "
                              "object: ",
                              0),
            0u)
      << warnings[0];
  EXPECT_EQ(warnings[1].rfind("skipped object (no name) from the API server: ", 0), 0u)
      << warnings[1];
}

TEST(K8sNode, NameAddressesZone) {
  json node = json::parse(R"({"apiVersion":"v1","kind":"Node",
    "metadata":{"name":"node-1","labels":{"topology.kubernetes.io/zone":"eu-1a"}},
    "status":{"addresses":[{"type":"Hostname","address":"node-1"},
                           {"type":"InternalIP","address":"192.168.1.10"},
                           {"type":"InternalIP","address":"fd00::10"},
                           {"type":"ExternalIP","address":"203.0.113.7"}]}})");
  auto n = nodeInfoFromJson(node);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->name, "node-1");
  EXPECT_EQ(n->zone, "eu-1a");
  EXPECT_EQ(n->internalIPs, (std::vector<std::string>{"192.168.1.10", "fd00::10"}));
  EXPECT_EQ(n->externalIPs, std::vector<std::string>{"203.0.113.7"});
  EXPECT_EQ(nodeInfoFromJson(json::object()).error().message,
            "Node from the API server has no metadata.name");
}

}  // namespace
}  // namespace svclb::k8s
