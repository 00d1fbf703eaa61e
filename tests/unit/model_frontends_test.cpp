// Store::frontends(): port matching, states, slices vs Endpoints, dedupe,
// affinity and what is skipped.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

uint32_t ip(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}

Store storeOf(const std::string& text) {
  Store st;
  auto objs = parseManifests(text, "t.yaml");
  EXPECT_TRUE(objs.ok()) << (objs.ok() ? "" : objs.error().message);
  if (objs.ok()) {
    auto r = st.apply(*objs);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  }
  return st;
}

BackendSpec be(uint32_t addr, uint16_t port, EndpointState state = EndpointState::Ready,
               bool serving = true, std::string node = "") {
  BackendSpec b;
  b.ip = addr;
  b.port = port;
  b.state = state;
  b.serving = serving;
  b.nodeName = std::move(node);
  return b;
}

const char* kShop = R"(apiVersion: v1
kind: Service
metadata:
  name: shop
  annotations: {svclb.io/weight: "3"}
spec:
  clusterIP: 10.96.0.50
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: dns}
  - {name: sig, port: 3868, protocol: SCTP}
)";

TEST(ModelFrontends, EndpointsNamedPortsAndStates) {
  Store st = storeOf(std::string(kShop) + R"(---
apiVersion: v1
kind: Endpoints
metadata: {name: shop}
subsets:
- addresses: [{ip: 10.0.1.3, nodeName: n1}, {ip: 10.0.1.2}]
  notReadyAddresses: [{ip: 10.0.1.9}]
  ports:
  - {name: http, port: 8080}
  - {name: dns, port: 5353, protocol: UDP}
- addresses: [{ip: 10.0.2.1}]
  ports: [{name: http, port: 9090}]
- addresses: [{ip: 10.0.3.1}]
  ports: [{name: dns, port: 5353}]
)");
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 2u);  // SCTP skipped
  // Sorted by key: port 53 before 80.
  const Frontend& dns = fes[0];
  EXPECT_EQ(dns.key, (FrontendKey{ip(10, 96, 0, 50), 53, 17}));
  EXPECT_EQ(dns.portName, "dns");
  EXPECT_EQ(dns.ns, "default");
  EXPECT_EQ(dns.name, "shop");
  // 10.0.3.1 offers dns over TCP only: no match.
  EXPECT_EQ(dns.backends,
            (std::vector<BackendSpec>{be(ip(10, 0, 1, 2), 5353),
                                      be(ip(10, 0, 1, 3), 5353, EndpointState::Ready, true, "n1"),
                                      be(ip(10, 0, 1, 9), 5353, EndpointState::NotReady, false)}));
  const Frontend& http = fes[1];
  EXPECT_EQ(http.key, (FrontendKey{ip(10, 96, 0, 50), 80, 6}));
  ASSERT_EQ(http.backends.size(), 4u);
  EXPECT_EQ(http.backends[3], be(ip(10, 0, 2, 1), 9090));
  EXPECT_TRUE(http.affinity);
  EXPECT_EQ(http.affinityTimeout, 10800u);
  EXPECT_EQ(http.annotations.at("svclb.io/weight"), "3");
  for (const auto& b : http.backends) EXPECT_EQ(b.weight, 1);
}

TEST(ModelFrontends, SlicesArePreferredAndConditionsMapToStates) {
  Store st = storeOf(std::string(kShop) + R"(---
apiVersion: v1
kind: Endpoints
metadata: {name: shop}
subsets: [{addresses: [{ip: 10.9.9.9}], ports: [{name: http, port: 8080}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-a, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
  conditions: {ready: true}
- addresses: [10.0.0.3]
  conditions: {ready: false, serving: true, terminating: true}
- addresses: [10.0.0.4]
  conditions: {ready: false, terminating: true}
- addresses: [10.0.0.5]
  conditions: {ready: false}
  nodeName: n5
- addresses: [10.0.0.8]
  conditions: {ready: false, serving: false, terminating: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-b, labels: {kubernetes.io/service-name: shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: false}
- addresses: [10.0.0.6, 10.0.0.7]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shop-v6, labels: {kubernetes.io/service-name: shop}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["fd00::1"]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other, labels: {kubernetes.io/service-name: not-shop}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.0.99]}]
)");
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 2u);
  EXPECT_TRUE(fes[0].backends.empty());  // dns: no slice port named dns
  EXPECT_EQ(fes[1].backends,
            (std::vector<BackendSpec>{
                be(ip(10, 0, 0, 1), 8080),  // Ready in shop-a wins over NotReady in shop-b
                be(ip(10, 0, 0, 2), 8080),
                be(ip(10, 0, 0, 3), 8080, EndpointState::Terminating, true),
                // serving unset: serving (kube-proxy: Serving == nil || *Serving)
                be(ip(10, 0, 0, 4), 8080, EndpointState::Terminating, true),
                be(ip(10, 0, 0, 5), 8080, EndpointState::NotReady, false, "n5"),
                be(ip(10, 0, 0, 6), 8080),  // first address only
                be(ip(10, 0, 0, 8), 8080, EndpointState::Terminating, false),
            }));
}

TEST(ModelFrontends, UnnamedSinglePortAndAffinityTimeout) {
  Store st = storeOf(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 30}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: prod}
subsets: [{addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.1}], ports: [{port: 8080}]}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 10.0.0.2}], ports: [{port: 8080}]}]
)");
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 1u);
  EXPECT_EQ(fes[0].ns, "prod");
  EXPECT_EQ(fes[0].portName, "");
  EXPECT_EQ(fes[0].affinityTimeout, 30u);
  // Deduplicated, and the default-namespace Endpoints is not this Service's.
  EXPECT_EQ(fes[0].backends, (std::vector<BackendSpec>{be(ip(10, 0, 0, 1), 8080)}));
}

TEST(ModelFrontends, SkipsHeadlessExternalNameAndNonAffinity) {
  Store st = storeOf(R"(apiVersion: v1
kind: Service
metadata: {name: h}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: x}
spec: {type: ExternalName, externalName: a.example.com, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec: {ports: [{port: 80}]}
)");
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 1u);
  EXPECT_EQ(fes[0].name, "plain");
  EXPECT_FALSE(fes[0].affinity);
  EXPECT_EQ(fes[0].affinityTimeout, 0u);
  EXPECT_TRUE(fes[0].backends.empty());
}

TEST(ModelFrontends, SortedByKeyAcrossServices) {
  Store st = storeOf(R"(apiVersion: v1
kind: Service
metadata: {name: b}
spec: {clusterIP: 10.96.0.9, ports: [{name: x, port: 90}, {name: y, port: 9, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.20, ports: [{port: 1}]}
)");
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 3u);
  EXPECT_TRUE(std::is_sorted(fes.begin(), fes.end(),
                             [](const Frontend& l, const Frontend& r) { return l.key < r.key; }));
  EXPECT_EQ(fes[0].key, (FrontendKey{ip(10, 96, 0, 9), 9, 17}));
  EXPECT_EQ(fes[2].name, "a");
}

// Many Services, each with its own slice, in two namespaces with the same
// Service names: every Service gets exactly its own slice's endpoint, from
// frontends(), frontendsOf() and externalFrontends() alike (the slices are
// found through one index per derivation).
TEST(ModelFrontends, EachServiceFindsItsOwnSlicesAmongMany) {
  constexpr int kN = 1200;  // 2,400 nodePorts fit 30000-32767
  std::string text;
  for (const char* ns : {"a", "b"}) {
    for (int i = 0; i < kN; ++i) {
      const int id = (ns[0] == 'a' ? 0 : kN) + i;
      text += fmt::format(
          "apiVersion: v1\nkind: Service\nmetadata: {{name: s{0}, namespace: {1}}}\n"
          "spec:\n  type: NodePort\n  clusterIP: 10.96.{2}.{3}\n"
          "  ports: [{{name: http, port: 80, nodePort: {4}}}]\n---\n"
          "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
          "metadata: {{name: s{0}-x, namespace: {1}, labels: {{kubernetes.io/service-name: "
          "s{0}}}}}\n"
          "addressType: IPv4\nports: [{{name: http, port: 8080}}]\n"
          "endpoints: [{{addresses: [10.{5}.{2}.{3}]}}]\n---\n",
          i, ns, id / 250, id % 250 + 1, 30000 + id, ns[0] == 'a' ? 1 : 2);
    }
  }
  Store st = storeOf(text);
  auto fes = st.frontends();
  ASSERT_EQ(fes.size(), 2u * kN);
  for (const auto& fe : fes) {
    ASSERT_EQ(fe.backends.size(), 1u) << fe.ns << "/" << fe.name;
    const uint32_t vip = fe.key.vip;
    const uint32_t want = (10u << 24) | ((fe.ns == "a" ? 1u : 2u) << 16) | (vip & 0xffff);
    EXPECT_EQ(fe.backends[0].ip, want) << fe.ns << "/" << fe.name;
  }
  auto one = st.frontendsOf({{"b", "s7"}});
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(one[0].backends.size(), 1u);
  EXPECT_EQ(one[0].backends[0].ip, ip(10, 2, (kN + 7) / 250, (kN + 7) % 250 + 1));
  auto ext = st.externalFrontends();
  ASSERT_EQ(ext.size(), 2u * kN);
  for (const auto& fe : ext) {
    ASSERT_EQ(fe.backends.size(), 1u) << fe.ns << "/" << fe.name;
    EXPECT_EQ(fe.backends[0].ip >> 16, fe.ns == "a" ? 0x0a01u : 0x0a02u) << fe.ns << "/" << fe.name;
  }
}

}  // namespace
}  // namespace svclb

namespace svclb {
namespace {

// Store keeps an index of which slices name which Service, so that
// frontendsOf() need not scan every slice: it must follow every way a slice
// changes (created, relabelled to another Service, deleted, an apply
// reverted, a store loaded) and always give frontends()'s entries.
std::vector<Object> objectsOf(const std::string& text) {
  auto objs = parseManifests(text, "t.yaml");
  EXPECT_TRUE(objs.ok()) << (objs.ok() ? "" : objs.error().message);
  return objs.ok() ? *objs : std::vector<Object>{};
}

std::string sliceOf(const std::string& name, const std::string& svc, const std::string& addr) {
  return fmt::format(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {}, labels: {{kubernetes.io/service-name: {}}}}}
addressType: IPv4
ports: [{{port: 8080}}]
endpoints: [{{addresses: [{}]}}]
)",
                     name, svc, addr);
}

// frontendsOf(each Service) equals frontends() restricted to it.
void expectIndexConsistent(const Store& st, const std::string& when) {
  const auto all = st.frontends();
  for (const auto& [key, svc] : st.services()) {
    std::vector<Frontend> want;
    for (const auto& f : all)
      if (f.ns == key.first && f.name == key.second) want.push_back(f);
    auto got = st.frontendsOf({key});
    ASSERT_EQ(got.size(), want.size()) << when << ": " << key.second;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_EQ(got[i].backends, want[i].backends) << when << ": " << key.second;
  }
}

TEST(ModelFrontends, SliceIndexFollowsEveryChange) {
  Store st;
  const std::string svcs = R"(apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.1, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {clusterIP: 10.96.0.2, ports: [{port: 80, targetPort: 8080}]}
)";
  ASSERT_TRUE(st.apply(objectsOf(svcs)).ok());
  ASSERT_TRUE(
      st.apply(objectsOf(sliceOf("s1", "a", "10.0.0.1") + "---\n" + sliceOf("s2", "a", "10.0.0.2") +
                         "---\n" + sliceOf("s3", "b", "10.0.0.3")))
          .ok());
  expectIndexConsistent(st, "created");
  EXPECT_EQ(st.frontendsOf({{"default", "a"}}).at(0).backends.size(), 2u);
  // s2 moves to b.
  ASSERT_TRUE(st.apply(objectsOf(sliceOf("s2", "b", "10.0.0.2"))).ok());
  expectIndexConsistent(st, "relabelled");
  EXPECT_EQ(st.frontendsOf({{"default", "a"}}).at(0).backends.size(), 1u);
  EXPECT_EQ(st.frontendsOf({{"default", "b"}}).at(0).backends.size(), 2u);
  // s3 deleted.
  ASSERT_TRUE(st.remove("EndpointSlice", "default", "s3").ok());
  expectIndexConsistent(st, "deleted");
  EXPECT_EQ(st.frontendsOf({{"default", "b"}}).at(0).backends.size(), 1u);
  // An apply that fails as a whole (a bad Service beside a slice change):
  // the slice change is reverted, and so is the index.
  auto bad = objectsOf(sliceOf("s2", "a", "10.0.0.2") + R"(---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {clusterIP: 10.96.0.9, ports: [{port: 80}]}
)");
  ASSERT_FALSE(st.apply(bad).ok());
  expectIndexConsistent(st, "reverted");
  EXPECT_EQ(st.frontendsOf({{"default", "b"}}).at(0).backends.size(), 1u);
  // An undo log taken back (the commit path's rollBack).
  Store::Undo undo;
  ASSERT_TRUE(st.apply(objectsOf(sliceOf("s4", "a", "10.0.0.4")), &undo).ok());
  EXPECT_EQ(st.frontendsOf({{"default", "a"}}).at(0).backends.size(), 2u);
  st.revert(std::move(undo));
  expectIndexConsistent(st, "undo");
  EXPECT_EQ(st.frontendsOf({{"default", "a"}}).at(0).backends.size(), 1u);
  // A store loaded from its JSON.
  auto loaded = Store::fromJson(st.toJson());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  expectIndexConsistent(*loaded, "loaded");
  EXPECT_EQ(loaded->frontendsOf({{"default", "b"}}).at(0).backends.size(), 1u);
}

}  // namespace
}  // namespace svclb
