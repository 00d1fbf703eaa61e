// Node-specific endpoint choice in Store::frontends() / externalFrontends():
// EndpointSlice topology hints (kube-proxy's topologyModeFromHints /
// availableForTopology) and internalTrafficPolicy: Local. The hint cases are
// kube-proxy's TestCategorizeEndpoints (pkg/proxy/topology_test.go) ported
// as data, those whose outcome does not depend on the removed
// service.kubernetes.io/topology-mode annotation check (today's kube-proxy
// follows the hints alone).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "maps/svclb_abi.h"
#include "model/model.h"

namespace svclb {
namespace {

struct Ep {
  const char* ip;
  bool ready;
  std::vector<std::string> zones;  // hints.forZones
  std::vector<std::string> nodes;  // hints.forNodes
  const char* nodeName = "";
  bool terminating = false;
};

std::string sliceYaml(const std::vector<Ep>& eps, const std::string& itp = "") {
  std::string y = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
)";
  if (!itp.empty()) y += "  internalTrafficPolicy: " + itp + "\n";
  y += R"(  ports: [{name: http, port: 80, targetPort: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
)";
  for (const auto& e : eps) {
    y += fmt::format(
        "- addresses: [{}]\n  conditions: {{ready: {}, serving: {}, terminating: {}}}\n", e.ip,
        e.ready ? "true" : "false", e.ready || e.terminating ? "true" : "false",
        e.terminating ? "true" : "false");
    if (*e.nodeName) y += fmt::format("  nodeName: {}\n", e.nodeName);
    if (!e.zones.empty() || !e.nodes.empty()) {
      y += "  hints:\n";
      if (!e.zones.empty()) {
        y += "    forZones:\n";
        for (const auto& z : e.zones) y += "    - name: " + z + "\n";
      }
      if (!e.nodes.empty()) {
        y += "    forNodes:\n";
        for (const auto& n : e.nodes) y += "    - name: " + n + "\n";
      }
    }
  }
  return y;
}

std::string ipStr(uint32_t a) {
  return fmt::format("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

struct Got {
  std::set<std::string> ips;  // every backend in the ClusterIP frontend
  uint8_t flags = 0;
};

Got clusterFrontend(const std::string& yaml, const std::string& node, const std::string& zone) {
  StoreConfig cfg;
  cfg.nodeName = node;
  cfg.zone = zone;
  Store st(cfg);
  auto objs = parseManifests(yaml, "t.yaml");
  EXPECT_TRUE(objs.ok()) << (objs.ok() ? "" : objs.error().message);
  if (!objs.ok()) return {};
  auto r = st.apply(*objs);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  auto fes = st.frontends();
  EXPECT_EQ(fes.size(), 1u);
  if (fes.size() != 1) return {};
  Got g;
  for (const auto& b : fes[0].backends) g.ips.insert(ipStr(b.ip));
  g.flags = fes[0].flags;
  // The incremental path sees the same.
  auto only = st.frontendsOf({{"default", "web"}});
  EXPECT_EQ(only.size(), 1u);
  if (only.size() == 1) {
    EXPECT_EQ(only[0], fes[0]);
  }
  return g;
}

struct HintCase {
  const char* name;
  const char* zone;
  std::vector<Ep> eps;
  std::set<std::string> want;
};

TEST(ModelTopology, KubeProxyHintCases) {
  const std::vector<HintCase> cases = {
      {"normal endpoint filtering",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {}},
        {"10.1.2.4", true, {"zone-b"}, {}},
        {"10.1.2.5", true, {"zone-c"}, {}},
        {"10.1.2.6", true, {"zone-a"}, {}}},
       {"10.1.2.3", "10.1.2.6"}},
      {"empty node labels (no zone known)", "", {{"10.1.2.3", true, {"zone-a"}, {}}}, {"10.1.2.3"}},
      {"node in different zone, no endpoint filtering",
       "zone-b",
       {{"10.1.2.3", true, {"zone-a"}, {}}},
       {"10.1.2.3"}},
      {"unready endpoint",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {}},
        {"10.1.2.4", true, {"zone-b"}, {}},
        {"10.1.2.5", true, {"zone-c"}, {}},
        {"10.1.2.6", false, {"zone-a"}, {}}},
       // kube-proxy's clusterEndpoints: 10.1.2.3 only. The unready one is
       // also in svclb's list (NotReady backends are kept, never picked).
       {"10.1.2.3", "10.1.2.6"}},
      {"only unready endpoints in same zone (should not filter)",
       "zone-a",
       {{"10.1.2.3", false, {"zone-a"}, {}},
        {"10.1.2.4", true, {"zone-b"}, {}},
        {"10.1.2.5", true, {"zone-c"}, {}},
        {"10.1.2.6", false, {"zone-a"}, {}}},
       {"10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}},
      {"missing hints, no filtering applied",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {}},
        {"10.1.2.4", true, {"zone-b"}, {}},
        {"10.1.2.5", true, {}, {}},
        {"10.1.2.6", true, {"zone-a"}, {}}},
       {"10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"}},
      {"multiple hints per endpoint, filtering includes any endpoint with zone included",
       "zone-c",
       {{"10.1.2.3", true, {"zone-a", "zone-b", "zone-c"}, {}},
        {"10.1.2.4", true, {"zone-b", "zone-c"}, {}},
        {"10.1.2.5", true, {"zone-b", "zone-d"}, {}},
        {"10.1.2.6", true, {"zone-c"}, {}}},
       {"10.1.2.3", "10.1.2.4", "10.1.2.6"}},
      // PreferSameNode (forNodes hints, kube-proxy 1.33+): every endpoint has
      // a node hint and one names this node.
      {"node hints for this node win over zone hints",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {"node-1"}},
        {"10.1.2.4", true, {"zone-a"}, {"node-2"}},
        {"10.1.2.5", true, {"zone-b"}, {"node-3"}}},
       {"10.1.2.3"}},
      {"node hints for other nodes only: zone hints apply",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {"node-9"}},
        {"10.1.2.4", true, {"zone-a"}, {"node-2"}},
        {"10.1.2.5", true, {"zone-b"}, {"node-3"}}},
       {"10.1.2.3", "10.1.2.4"}},
      {"terminating endpoints stay (the dataplane's fallback)",
       "zone-a",
       {{"10.1.2.3", true, {"zone-a"}, {}},
        {"10.1.2.4", true, {"zone-b"}, {}},
        {"10.1.2.5", false, {"zone-b"}, {}, "", true}},
       {"10.1.2.3", "10.1.2.5"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Got g = clusterFrontend(sliceYaml(c.eps), "node-1", c.zone);
    EXPECT_EQ(g.ips, c.want);
    EXPECT_EQ(g.flags & SVC_F_NO_LOCAL_EPS, 0);
  }
}

TEST(ModelTopology, InternalTrafficPolicyLocal) {
  // kube-proxy: "internalTrafficPolicy: Local, topology ignored for Local endpoints"
  std::vector<Ep> eps = {{"10.1.2.3", true, {"zone-a"}, {}, "node-1"},
                         {"10.1.2.4", true, {"zone-b"}, {}, "node-1"},
                         {"10.1.2.5", true, {"zone-c"}, {}, "node-2"},
                         {"10.1.2.6", true, {"zone-a"}, {}, "node-2"}};
  Got g = clusterFrontend(sliceYaml(eps, "Local"), "node-1", "zone-a");
  EXPECT_EQ(g.ips, (std::set<std::string>{"10.1.2.3", "10.1.2.4"}));
  EXPECT_EQ(g.flags & SVC_F_NO_LOCAL_EPS, 0);
  // Cluster: the same endpoints follow the zone hints.
  g = clusterFrontend(sliceYaml(eps, "Cluster"), "node-1", "zone-a");
  EXPECT_EQ(g.ips, (std::set<std::string>{"10.1.2.3", "10.1.2.6"}));

  // All endpoints remote: no backend, and new flows are dropped (kube-proxy:
  // DROP, "has no local endpoints"), not rejected.
  g = clusterFrontend(
      sliceYaml({{"10.0.0.0", true, {}, {}, "node-2"}, {"10.0.0.1", true, {}, {}, "node-2"}},
                "Local"),
      "node-1", "");
  EXPECT_TRUE(g.ips.empty());
  EXPECT_EQ(g.flags & SVC_F_NO_LOCAL_EPS, SVC_F_NO_LOCAL_EPS);

  // No usable endpoint anywhere: rejected like any Service (no flag).
  g = clusterFrontend(sliceYaml({{"10.0.0.0", false, {}, {}, "node-2"}}, "Local"), "node-1", "");
  EXPECT_TRUE(g.ips.empty());
  EXPECT_EQ(g.flags & SVC_F_NO_LOCAL_EPS, 0);

  // Only a serving-terminating local one: kept (the dataplane falls back to it).
  g = clusterFrontend(
      sliceYaml({{"10.0.0.0", false, {}, {}, "node-1", true}, {"10.0.0.1", true, {}, {}, "node-2"}},
                "Local"),
      "node-1", "");
  EXPECT_EQ(g.ips, (std::set<std::string>{"10.0.0.0"}));
  EXPECT_EQ(g.flags & SVC_F_NO_LOCAL_EPS, 0);
}

TEST(ModelTopology, ExternalClusterPolicyFollowsHints) {
  std::string y = sliceYaml(
      {{"10.1.2.3", true, {"zone-a"}, {}, "node-1"}, {"10.1.2.4", true, {"zone-b"}, {}, "node-2"}});
  // Make it a NodePort Service.
  y.replace(y.find("  clusterIP: 10.96.0.10\n"), 24, "  type: NodePort\n  clusterIP: 10.96.0.10\n");
  y.replace(y.find("targetPort: 80}"), 15, "targetPort: 80, nodePort: 30080}");
  StoreConfig cfg;
  cfg.nodeName = "node-1";
  cfg.zone = "zone-a";
  Store st(cfg);
  auto objs = parseManifests(y, "t.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  ASSERT_TRUE(st.apply(*objs).ok());
  auto ext = st.externalFrontends();
  ASSERT_EQ(ext.size(), 1u);
  ASSERT_EQ(ext[0].backends.size(), 1u);
  EXPECT_EQ(ipStr(ext[0].backends[0].ip), "10.1.2.3");
}

TEST(ModelTopology, HintsSurviveTheStateFile) {
  std::vector<Ep> eps = {{"10.1.2.3", true, {"zone-a"}, {"node-1"}},
                         {"10.1.2.4", true, {"zone-b"}, {"node-2"}}};
  auto objs = parseManifests(sliceYaml(eps), "t.yaml");
  ASSERT_TRUE(objs.ok());
  const auto& slice = std::get<EndpointSlice>((*objs)[1]);
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_EQ(slice.endpoints[0].zoneHints, std::vector<std::string>{"zone-a"});
  EXPECT_EQ(slice.endpoints[0].nodeHints, std::vector<std::string>{"node-1"});
  // Written and read back (the state file and the API use this JSON).
  auto back = parseManifests(toJson((*objs)[1]).dump(), "back.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(std::get<EndpointSlice>((*back)[0]), slice);
}

}  // namespace
}  // namespace svclb
