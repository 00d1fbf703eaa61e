// The cluster zone's records (dns/zone.h) from a Store: the specification's
// names, NXDOMAIN/NODATA with the SOA, forwarding outside the zone, and
// incremental updates that follow each change.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "dns/zone.h"
#include "model/model.h"

namespace svclb::dns {
namespace {

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

std::vector<std::string> strs(const std::vector<Record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.str());
  std::sort(out.begin(), out.end());
  return out;
}

const char* kObjects = R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.30
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  ports:
  - {name: pg, port: 5432}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: prod
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
ports:
- {name: pg, port: 5432}
endpoints:
- addresses: [10.244.1.11]
  hostname: db-0
- addresses: [10.244.1.12]
  conditions: {ready: true}
- addresses: [10.244.1.13]
  conditions: {ready: false}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec:
  type: ExternalName
  externalName: backend.example.test
---
apiVersion: v1
kind: Service
metadata: {name: inzone, namespace: default}
spec:
  type: ExternalName
  externalName: web.default.svc.cluster.local
---
apiVersion: v1
kind: Service
metadata: {name: ipname, namespace: default}
spec:
  type: ExternalName
  externalName: 1.2.3.4
)";

struct DnsZone : ::testing::Test {
  Store store{[] {
    StoreConfig c;
    c.apiOwned = true;
    return c;
  }()};
  Zone zone{ZoneConfig{"cluster.local", 5, (10u << 24) | (96u << 16) | 10u}};
  void SetUp() override {
    auto r = store.apply(parse(kObjects));
    ASSERT_TRUE(r.ok()) << r.error().message;
    zone.update(store, nullptr);
  }
  // Apply `yaml` and update the zone with what it touched, as the daemon does.
  void change(const std::string& yaml) {
    auto objs = parse(yaml);
    auto touched = store.servicesTouchedBy(objs);
    auto r = store.apply(std::move(objs));
    ASSERT_TRUE(r.ok()) << r.error().message;
    zone.update(store, &touched);
  }
  std::vector<std::string> answer(const std::string& q, uint16_t t) {
    return strs(zone.lookup(q, t).answer);
  }
};

TEST_F(DnsZone, ClusterIPServices) {
  EXPECT_EQ(answer("web.default.svc.cluster.local.", kTypeA),
            std::vector<std::string>{"web.default.svc.cluster.local. 5 IN A 10.96.0.30"});
  EXPECT_EQ(answer("WEB.Default.svc.CLUSTER.local", kTypeA),
            std::vector<std::string>{"web.default.svc.cluster.local. 5 IN A 10.96.0.30"});
  Answer aaaa = zone.lookup("web.default.svc.cluster.local.", kTypeAAAA);
  EXPECT_EQ(aaaa.rcode, kNoError);
  EXPECT_TRUE(aaaa.answer.empty());
  ASSERT_EQ(aaaa.authority.size(), 1u);
  EXPECT_EQ(aaaa.authority[0].type, kTypeSOA);
  EXPECT_EQ(answer("_http._tcp.web.default.svc.cluster.local.", kTypeSRV),
            std::vector<std::string>{"_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 "
                                     "web.default.svc.cluster.local."});
  EXPECT_EQ(answer("_dns._udp.web.default.svc.cluster.local.", kTypeSRV),
            std::vector<std::string>{"_dns._udp.web.default.svc.cluster.local. 5 IN SRV 0 100 53 "
                                     "web.default.svc.cluster.local."});
  EXPECT_EQ(zone.lookup("_dns._tcp.web.default.svc.cluster.local.", kTypeSRV).rcode, kNXDomain);
  EXPECT_EQ(
      answer("30.0.96.10.in-addr.arpa.", kTypePTR),
      std::vector<std::string>{"30.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."});
}

TEST_F(DnsZone, HeadlessServices) {
  EXPECT_EQ(answer("db.prod.svc.cluster.local.", kTypeA),
            (std::vector<std::string>{"db.prod.svc.cluster.local. 5 IN A 10.244.1.11",
                                      "db.prod.svc.cluster.local. 5 IN A 10.244.1.12"}));
  EXPECT_EQ(answer("db-0.db.prod.svc.cluster.local.", kTypeA),
            std::vector<std::string>{"db-0.db.prod.svc.cluster.local. 5 IN A 10.244.1.11"});
  EXPECT_EQ(answer("10-244-1-12.db.prod.svc.cluster.local.", kTypeA),
            std::vector<std::string>{"10-244-1-12.db.prod.svc.cluster.local. 5 IN A 10.244.1.12"});
  EXPECT_EQ(zone.lookup("10-244-1-13.db.prod.svc.cluster.local.", kTypeA).rcode, kNXDomain)
      << "not ready";
  EXPECT_EQ(answer("_pg._tcp.db.prod.svc.cluster.local.", kTypeSRV),
            (std::vector<std::string>{"_pg._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 50 5432 "
                                      "10-244-1-12.db.prod.svc.cluster.local.",
                                      "_pg._tcp.db.prod.svc.cluster.local. 5 IN SRV 0 50 5432 "
                                      "db-0.db.prod.svc.cluster.local."}));
  EXPECT_EQ(strs(zone.lookup("_pg._tcp.db.prod.svc.cluster.local.", kTypeSRV).additional),
            (std::vector<std::string>{"10-244-1-12.db.prod.svc.cluster.local. 5 IN A 10.244.1.12",
                                      "db-0.db.prod.svc.cluster.local. 5 IN A 10.244.1.11"}));
  EXPECT_EQ(answer("11.1.244.10.in-addr.arpa.", kTypePTR),
            std::vector<std::string>{
                "11.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.prod.svc.cluster.local."});
}

TEST_F(DnsZone, ExternalNames) {
  Answer a = zone.lookup("ext.default.svc.cluster.local.", kTypeA);
  EXPECT_EQ(strs(a.answer), std::vector<std::string>{
                                "ext.default.svc.cluster.local. 5 IN CNAME backend.example.test."});
  EXPECT_EQ(a.chase, "backend.example.test.");
  Answer t = zone.lookup("ext.default.svc.cluster.local.", kTypeTXT);
  EXPECT_EQ(t.chase, "") << "only A and AAAA are chased";
  EXPECT_EQ(t.answer.size(), 1u);
  Answer in = zone.lookup("inzone.default.svc.cluster.local.", kTypeA);
  EXPECT_EQ(strs(in.answer),
            (std::vector<std::string>{
                "inzone.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. 5 IN A 10.96.0.30"}));
  EXPECT_EQ(in.chase, "");
  EXPECT_EQ(zone.lookup("ipname.default.svc.cluster.local.", kTypeA).rcode, kNXDomain);
}

TEST_F(DnsZone, ApexNamespacesAndForwarding) {
  EXPECT_EQ(answer("dns-version.cluster.local.", kTypeTXT),
            std::vector<std::string>{"dns-version.cluster.local. 5 IN TXT \"1.1.0\""});
  Answer ns = zone.lookup("cluster.local.", kTypeNS);
  EXPECT_EQ(strs(ns.answer),
            std::vector<std::string>{"cluster.local. 5 IN NS ns.dns.cluster.local."});
  EXPECT_EQ(strs(ns.additional),
            std::vector<std::string>{"ns.dns.cluster.local. 5 IN A 10.96.0.10"});
  Answer soa = zone.lookup("cluster.local.", kTypeSOA);
  ASSERT_EQ(soa.answer.size(), 1u);
  EXPECT_EQ(soa.answer[0].target, "ns.dns.cluster.local.");
  EXPECT_EQ(soa.answer[0].rname, "hostmaster.cluster.local.");
  Answer nx = zone.lookup("nope.default.svc.cluster.local.", kTypeA);
  EXPECT_EQ(nx.rcode, kNXDomain);
  ASSERT_EQ(nx.authority.size(), 1u);
  EXPECT_EQ(nx.authority[0].type, kTypeSOA);
  EXPECT_EQ(zone.lookup("prod.svc.cluster.local.", kTypeA).rcode, kNoError) << "namespace exists";
  EXPECT_EQ(zone.lookup("nons.svc.cluster.local.", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(answer("10-1-2-3.default.pod.cluster.local.", kTypeA),
            std::vector<std::string>{"10-1-2-3.default.pod.cluster.local. 5 IN A 10.1.2.3"});
  EXPECT_EQ(zone.lookup("example.com.", kTypeA).kind, Answer::Kind::Forward);
  EXPECT_EQ(zone.lookup("notcluster.local.", kTypeA).kind, Answer::Kind::Forward);
  EXPECT_EQ(zone.lookup("1.2.3.4.in-addr.arpa.", kTypePTR).kind, Answer::Kind::Forward);
}

// --cluster-dns with an IPv6 address: ns.dns.ZONE has its AAAA too.
TEST(DnsZoneApex, NsTargetHasTheIPv6AddressToo) {
  Ip6 a6{};
  ASSERT_EQ(inet_pton(AF_INET6, "fd00:10:96::a", a6.data()), 1);
  Store store;
  Zone zone{ZoneConfig{"cluster.local", 5, (10u << 24) | (96u << 16) | 10u, a6}};
  zone.update(store, nullptr);
  EXPECT_EQ(strs(zone.lookup("cluster.local.", kTypeNS).additional),
            (std::vector<std::string>{"ns.dns.cluster.local. 5 IN A 10.96.0.10",
                                      "ns.dns.cluster.local. 5 IN AAAA fd00:10:96::a"}));
  EXPECT_EQ(strs(zone.lookup("ns.dns.cluster.local.", kTypeAAAA).answer),
            std::vector<std::string>{"ns.dns.cluster.local. 5 IN AAAA fd00:10:96::a"});
  EXPECT_EQ(strs(zone.lookup("ns.dns.cluster.local.", kTypeA).answer),
            std::vector<std::string>{"ns.dns.cluster.local. 5 IN A 10.96.0.10"});
  Zone only6{ZoneConfig{"cluster.local", 5, 0, a6}};
  only6.update(store, nullptr);
  EXPECT_TRUE(only6.lookup("ns.dns.cluster.local.", kTypeA).answer.empty()) << "no IPv4 address";
  EXPECT_EQ(only6.lookup("ns.dns.cluster.local.", kTypeAAAA).answer.size(), 1u);
}

TEST_F(DnsZone, FollowsEachChange) {
  change(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: prod
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
endpoints:
- addresses: [10.244.1.12]
)");
  EXPECT_EQ(answer("db.prod.svc.cluster.local.", kTypeA),
            std::vector<std::string>{"db.prod.svc.cluster.local. 5 IN A 10.244.1.12"});
  EXPECT_EQ(zone.lookup("11.1.244.10.in-addr.arpa.", kTypePTR).kind, Answer::Kind::Forward)
      << "the PTR left with the endpoint";
  // publishNotReadyAddresses names the not-ready ones too.
  change(R"(apiVersion: v1
kind: Service
metadata: {name: db, namespace: prod}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: db-1
  namespace: prod
  labels: {kubernetes.io/service-name: db}
addressType: IPv4
endpoints:
- addresses: [10.244.1.13]
  conditions: {ready: false}
)");
  EXPECT_EQ(answer("db.prod.svc.cluster.local.", kTypeA),
            std::vector<std::string>{"db.prod.svc.cluster.local. 5 IN A 10.244.1.13"});
  // Deleted: NXDOMAIN, and the namespace with it.
  auto touched = store.servicesTouchedBy("Service", "prod", "db");
  ASSERT_TRUE(store.remove("Service", "prod", "db").ok());
  zone.update(store, &touched);
  EXPECT_EQ(zone.lookup("db.prod.svc.cluster.local.", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(zone.lookup("prod.svc.cluster.local.", kTypeA).rcode, kNXDomain);
  EXPECT_EQ(zone.services(), 4u);
}

}  // namespace
}  // namespace svclb::dns
