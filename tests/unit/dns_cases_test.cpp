// dns/zone.cpp: CoreDNS's kubernetes plugin test tables as data
// (dns_cases/cases.yaml against dns_cases/fixtures.yaml), run with two TTLs,
// plus targeted tests of what a table cannot show: incremental update,
// endpoint changes, deletes, the chase field, a 10,000-Service store.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "common/yaml.h"
#include "dns/zone.h"
#include "model/model.h"

namespace svclb::dns {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void applyText(Store& store, const std::string& text) {
  auto objs = parseManifests(text, "test");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  auto r = store.apply(*objs);
  ASSERT_TRUE(r.ok()) << r.error().message;
}

uint16_t typeOf(const std::string& s) {
  static const std::map<std::string, uint16_t> m = {
      {"A", kTypeA},       {"NS", kTypeNS},   {"CNAME", kTypeCNAME},
      {"SOA", kTypeSOA},   {"PTR", kTypePTR}, {"TXT", kTypeTXT},
      {"AAAA", kTypeAAAA}, {"SRV", kTypeSRV}, {"ANY", kTypeANY}};
  auto it = m.find(s);
  return it == m.end() ? 0 : it->second;
}

uint8_t rcodeOf(const std::string& s) {
  if (s == "NOERROR") return kNoError;
  if (s == "NXDOMAIN") return kNXDomain;
  if (s == "SERVFAIL") return kServFail;
  return 255;
}

// Record::str() with the SOA serial zeroed.
std::set<std::string> strs(const std::vector<Record>& rs) {
  std::set<std::string> out;
  for (Record r : rs) {
    if (r.type == kTypeSOA) r.serial = 0;
    out.insert(r.str());
  }
  return out;
}

std::set<std::string> expected(const nlohmann::json& c, const char* key, uint32_t ttl) {
  std::set<std::string> out;
  if (!c.contains(key)) return out;
  for (const auto& s : c[key]) {
    std::string t = s.get<std::string>();
    for (size_t p; (p = t.find("$TTL")) != std::string::npos;) t.replace(p, 4, std::to_string(ttl));
    out.insert(t);
  }
  return out;
}

std::vector<nlohmann::json> loadCases() {
  std::vector<nlohmann::json> docs;
  auto err = yaml::readYaml(slurp(std::string(SVCLB_DNS_CASES) + "/cases.yaml"),
                            [&](nlohmann::json&& d) { docs.push_back(std::move(d)); });
  EXPECT_FALSE(err.has_value()) << *err;
  EXPECT_EQ(docs.size(), 1u);
  std::vector<nlohmann::json> out;
  if (!docs.empty())
    for (const auto& c : docs[0]["cases"]) out.push_back(c);
  return out;
}

Store fixtureStore() {
  StoreConfig sc;
  sc.apiOwned = true;
  Store store(sc);
  applyText(store, slurp(std::string(SVCLB_DNS_CASES) + "/fixtures.yaml"));
  return store;
}

class DnsCases : public ::testing::TestWithParam<uint32_t> {};

TEST_P(DnsCases, CoreDnsTables) {
  const uint32_t ttl = GetParam();
  Store store = fixtureStore();
  ZoneConfig zc;
  zc.ttl = ttl;
  zc.nsAddress = 0x0a00000a;  // 10.0.0.10
  Zone zone(zc);
  zone.update(store, nullptr);
  const auto cases = loadCases();
  ASSERT_GE(cases.size(), 75u);
  for (const auto& c : cases) {
    const std::string qname = c["qname"].get<std::string>();
    const std::string qt = c["qtype"].get<std::string>();
    SCOPED_TRACE(qname + " " + qt);
    ASSERT_NE(typeOf(qt), 0) << "unknown qtype in cases.yaml";
    Answer a = zone.lookup(qname, typeOf(qt));
    const bool fwd = c.contains("forward") && c["forward"].get<bool>();
    EXPECT_EQ(a.kind == Answer::Kind::Forward, fwd);
    if (fwd) continue;
    EXPECT_EQ(int(a.rcode), int(rcodeOf(c["rcode"].get<std::string>())));
    EXPECT_EQ(strs(a.answer), expected(c, "answer", ttl));
    EXPECT_EQ(strs(a.authority), expected(c, "ns", ttl));
    EXPECT_EQ(strs(a.additional), expected(c, "extra", ttl));
    EXPECT_EQ(a.chase, c.contains("chase") ? c["chase"].get<std::string>() : "");
  }
}

INSTANTIATE_TEST_SUITE_P(Ttl, DnsCases, ::testing::Values(5u, 30u));

std::set<std::string> answerOf(const Zone& z, const std::string& q, uint16_t t) {
  return strs(z.lookup(q, t).answer);
}

TEST(DnsZoneTargeted, RecordStr) {
  Record r;
  r.name = "web.default.svc.cluster.local.";
  r.type = kTypeA;
  r.ttl = 5;
  r.ipv4 = 0x0a600014;
  EXPECT_EQ(r.str(), "web.default.svc.cluster.local. 5 IN A 10.96.0.20");
}

TEST(DnsZoneTargeted, IncrementalUpdateFollowsChangesAndDeletes) {
  Store store;
  Zone zone;
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80}]
)");
  zone.update(store, nullptr);
  EXPECT_EQ(zone.services(), 1u);
  EXPECT_EQ(answerOf(zone, "web.default.svc.cluster.local", kTypeA),
            std::set<std::string>{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"});
  EXPECT_EQ(
      answerOf(zone, "20.0.96.10.in-addr.arpa", kTypePTR),
      std::set<std::string>{"20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."});

  // A second Service, touched alone.
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: api, namespace: prod}
spec:
  clusterIP: 10.96.0.30
  ports: [{name: grpc, port: 9000}]
)");
  std::set<Store::Key> touched = {{"prod", "api"}};
  zone.update(store, &touched);
  EXPECT_EQ(zone.services(), 2u);
  EXPECT_EQ(answerOf(zone, "api.prod.svc.cluster.local", kTypeA),
            std::set<std::string>{"api.prod.svc.cluster.local. 5 IN A 10.96.0.30"});
  EXPECT_EQ(zone.lookup("prod.svc.cluster.local", kTypeA).rcode, kNoError);

  // Port renamed: the old SRV name goes, the new one comes.
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: api, namespace: prod}
spec:
  clusterIP: 10.96.0.30
  ports: [{name: rpc, port: 9001}]
)");
  zone.update(store, &touched);
  EXPECT_EQ(zone.lookup("_grpc._tcp.api.prod.svc.cluster.local", kTypeSRV).rcode, kNXDomain);
  EXPECT_EQ(answerOf(zone, "_rpc._tcp.api.prod.svc.cluster.local", kTypeSRV),
            std::set<std::string>{"_rpc._tcp.api.prod.svc.cluster.local. 5 IN SRV 0 100 9001 "
                                  "api.prod.svc.cluster.local."});

  // Delete: NXDOMAIN, its PTR forwarded, its namespace gone; web untouched.
  ASSERT_TRUE(store.remove("Service", "prod", "api").ok());
  zone.update(store, &touched);
  EXPECT_EQ(zone.services(), 1u);
  EXPECT_EQ(zone.lookup("api.prod.svc.cluster.local", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(zone.lookup("prod.svc.cluster.local", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(zone.lookup("30.0.96.10.in-addr.arpa", kTypePTR).kind, Answer::Kind::Forward);
  EXPECT_EQ(answerOf(zone, "web.default.svc.cluster.local", kTypeA).size(), 1u);
}

TEST(DnsZoneTargeted, HeadlessFollowsEndpointChanges) {
  Store store;
  Zone zone;
  const std::string svc = R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432}]
)";
  auto slice = [](const std::string& eps) {
    return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: db-a\n"
           "  namespace: default\n  labels: {kubernetes.io/service-name: db}\naddressType: IPv4\n"
           "ports: [{name: pg, port: 5432}]\nendpoints:\n" +
           eps;
  };
  applyText(store, svc);
  zone.update(store, nullptr);
  EXPECT_EQ(zone.lookup("db.default.svc.cluster.local", kTypeA).rcode, kNXDomain);

  applyText(store,
            slice("- addresses: [10.244.1.5]\n- addresses: [10.244.2.6]\n  hostname: db-1\n"));
  std::set<Store::Key> touched = {{"default", "db"}};
  zone.update(store, &touched);
  EXPECT_EQ(answerOf(zone, "db.default.svc.cluster.local", kTypeA),
            (std::set<std::string>{"db.default.svc.cluster.local. 5 IN A 10.244.1.5",
                                   "db.default.svc.cluster.local. 5 IN A 10.244.2.6"}));
  EXPECT_EQ(answerOf(zone, "10-244-1-5.db.default.svc.cluster.local", kTypeA).size(), 1u);
  EXPECT_EQ(answerOf(zone, "6.2.244.10.in-addr.arpa", kTypePTR),
            std::set<std::string>{
                "6.2.244.10.in-addr.arpa. 5 IN PTR db-1.db.default.svc.cluster.local."});

  // One endpoint becomes not ready: its names and PTR go.
  applyText(store, slice("- addresses: [10.244.1.5]\n  conditions: {ready: false}\n"
                         "- addresses: [10.244.2.6]\n  hostname: db-1\n"));
  zone.update(store, &touched);
  EXPECT_EQ(answerOf(zone, "db.default.svc.cluster.local", kTypeA),
            std::set<std::string>{"db.default.svc.cluster.local. 5 IN A 10.244.2.6"});
  EXPECT_EQ(zone.lookup("10-244-1-5.db.default.svc.cluster.local", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(zone.lookup("5.1.244.10.in-addr.arpa", kTypePTR).kind, Answer::Kind::Forward);

  // publishNotReadyAddresses brings it back.
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  ports: [{name: pg, port: 5432}]
)");
  zone.update(store, &touched);
  EXPECT_EQ(answerOf(zone, "db.default.svc.cluster.local", kTypeA).size(), 2u);
  EXPECT_EQ(answerOf(zone, "_pg._tcp.db.default.svc.cluster.local", kTypeSRV),
            (std::set<std::string>{"_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 "
                                   "10-244-1-5.db.default.svc.cluster.local.",
                                   "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 "
                                   "db-1.db.default.svc.cluster.local."}));
}

TEST(DnsZoneTargeted, EndpointsObjectWhenNoSlice) {
  Store store;
  Zone zone;
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: old, namespace: default}
spec:
  clusterIP: None
---
apiVersion: v1
kind: Endpoints
metadata: {name: old, namespace: default}
subsets:
- addresses: [{ip: 10.1.0.1}]
  notReadyAddresses: [{ip: 10.1.0.2}]
)");
  zone.update(store, nullptr);
  EXPECT_EQ(answerOf(zone, "old.default.svc.cluster.local", kTypeA),
            std::set<std::string>{"old.default.svc.cluster.local. 5 IN A 10.1.0.1"});
}

TEST(DnsZoneTargeted, ExternalNameChase) {
  Store store;
  Zone zone;
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: example.com
)");
  zone.update(store, nullptr);
  Answer a = zone.lookup("ext.default.svc.cluster.local", kTypeA);
  EXPECT_EQ(a.chase, "example.com.");
  EXPECT_EQ(strs(a.answer),
            std::set<std::string>{"ext.default.svc.cluster.local. 5 IN CNAME example.com."});
  EXPECT_EQ(zone.lookup("ext.default.svc.cluster.local", kTypeCNAME).chase, "");
  EXPECT_EQ(zone.lookup("ext.default.svc.cluster.local", kTypeTXT).chase, "");
}

TEST(DnsZoneTargeted, OtherDomain) {
  Store store;
  ZoneConfig zc;
  zc.domain = "Corp.Example.";
  Zone zone(zc);
  applyText(store, R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.20
  ports: [{port: 80}]
)");
  zone.update(store, nullptr);
  EXPECT_EQ(answerOf(zone, "WEB.default.svc.corp.example.", kTypeA),
            std::set<std::string>{"web.default.svc.corp.example. 5 IN A 10.96.0.20"});
  EXPECT_EQ(zone.lookup("web.default.svc.cluster.local", kTypeA).kind, Answer::Kind::Forward);
}

TEST(DnsZoneTargeted, TenThousandServicesThenOneTouched) {
  Store store;
  std::string text;
  for (int i = 0; i < 10000; ++i)
    text += "apiVersion: v1\nkind: Service\nmetadata: {name: s" + std::to_string(i) +
            ", namespace: ns" + std::to_string(i % 50) +
            "}\nspec:\n  ports: [{name: http, port: 80}]\n---\n";
  applyText(store, text);
  Zone zone;
  zone.update(store, nullptr);
  EXPECT_EQ(zone.services(), 10000u);
  const Service& s7 = store.services().at({"ns7", "s7"});
  EXPECT_EQ(answerOf(zone, "s7.ns7.svc.cluster.local", kTypeA),
            std::set<std::string>{"s7.ns7.svc.cluster.local. 5 IN A " + s7.clusterIP});

  ASSERT_TRUE(store.remove("Service", "ns7", "s7").ok());
  applyText(store,
            "apiVersion: v1\nkind: Service\nmetadata: {name: new, namespace: ns7}\nspec:\n"
            "  ports: [{name: http, port: 80}]\n");
  std::set<Store::Key> touched = {{"ns7", "s7"}, {"ns7", "new"}};
  zone.update(store, &touched);
  EXPECT_EQ(zone.services(), 10000u);
  EXPECT_EQ(zone.lookup("s7.ns7.svc.cluster.local", kTypeA).rcode, kNXDomain);
  const Service& nw = store.services().at({"ns7", "new"});
  EXPECT_EQ(answerOf(zone, "new.ns7.svc.cluster.local", kTypeA),
            std::set<std::string>{"new.ns7.svc.cluster.local. 5 IN A " + nw.clusterIP});
  EXPECT_EQ(answerOf(zone, "s9999.ns49.svc.cluster.local", kTypeA).size(), 1u);
  EXPECT_EQ(zone.lookup("ns7.svc.cluster.local", kTypeA).rcode, kNoError);
}

}  // namespace
}  // namespace svclb::dns
