// loader/external.h: Store::externalFrontends() -> this node's Frontends
// (flags, local filtering, source ranges, key clashes) and the L2
// announcements with MetalLB's one-node-per-address election, without a
// kernel.
#include "loader/external.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "loader/sha256.h"
#include "maps/svclb_abi.h"

namespace svclb {
namespace {

constexpr uint8_t kTcp = 6, kUdp = 17;

uint32_t ip(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return ntohl(a.s_addr);
}

BackendSpec be(const char* addr, const std::string& node, EndpointState st = EndpointState::Ready,
               bool serving = true) {
  BackendSpec b;
  b.ip = ip(addr);
  b.port = 8080;
  b.state = st;
  b.serving = serving;
  b.nodeName = node;
  return b;
}

ExternalFrontend ext(ExternalKind kind, const char* addr, uint16_t port,
                     std::vector<BackendSpec> backends, const std::string& name = "web") {
  ExternalFrontend e;
  e.kind = kind;
  e.ip = addr ? ip(addr) : 0;
  e.port = port;
  e.proto = kTcp;
  e.ns = "default";
  e.name = name;
  e.portName = "http";
  e.clusterFrontend = {ip("10.96.0.10"), 80, kTcp};
  e.backends = std::move(backends);
  return e;
}

Frontend clusterFe(const char* vip, uint16_t port, const std::string& name = "web") {
  Frontend f;
  f.key = {ip(vip), port, kTcp};
  f.ns = "default";
  f.name = name;
  f.portName = "http";
  f.annotations = {{kLbAlgorithmAnnotation, "maglev"}};
  return f;
}

const std::vector<uint32_t> kNodeAddrs = {ip("192.168.1.10"), ip("10.244.0.1")};

TEST(ExternalFrontends, NodePortExpandsToEveryNodeAddressSorted) {
  auto r =
      externalToFrontends({ext(ExternalKind::NodePort, nullptr, 30080, {be("10.244.1.11", "n1")})},
                          {ip("192.168.1.10"), ip("10.244.0.1"), ip("10.244.0.1"), 0}, "n1",
                          {clusterFe("10.96.0.10", 80)});
  ASSERT_EQ(r.frontends.size(), 2u);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.frontends[0].key, (FrontendKey{ip("10.244.0.1"), 30080, kTcp}));
  EXPECT_EQ(r.frontends[1].key, (FrontendKey{ip("192.168.1.10"), 30080, kTcp}));
  for (const auto& f : r.frontends) {
    EXPECT_EQ(f.flags, SVC_F_EXTERNAL);
    EXPECT_EQ(f.ns, "default");
    EXPECT_EQ(f.name, "web");
    EXPECT_EQ(f.portName, "http");
    EXPECT_EQ(f.backends.size(), 1u);
    EXPECT_TRUE(f.sourceRanges.empty());
    // The Service's annotations (lb-algorithm) as the ClusterIP one has them.
    EXPECT_EQ(f.annotations.at(kLbAlgorithmAnnotation), "maglev");
  }
}

TEST(ExternalFrontends, NoNodeAddressMeansNoNodePortFrontend) {
  auto r = externalToFrontends({ext(ExternalKind::NodePort, nullptr, 30080, {})}, {}, "n1");
  EXPECT_TRUE(r.frontends.empty());
}

TEST(ExternalFrontends, LoadBalancerAndExternalIPsAreOneFrontendEach) {
  auto lb = ext(ExternalKind::LoadBalancerIP, "192.0.2.10", 80, {be("10.244.1.11", "n2")});
  lb.affinity = true;
  lb.affinityTimeout = 60;
  auto r = externalToFrontends(
      {lb, ext(ExternalKind::ExternalIP, "198.51.100.5", 80, {be("10.244.1.11", "n2")})},
      kNodeAddrs, "n1");
  ASSERT_EQ(r.frontends.size(), 2u);
  EXPECT_EQ(r.frontends[0].key, (FrontendKey{ip("192.0.2.10"), 80, kTcp}));
  EXPECT_TRUE(r.frontends[0].affinity);
  EXPECT_EQ(r.frontends[0].affinityTimeout, 60u);
  EXPECT_EQ(r.frontends[1].key, (FrontendKey{ip("198.51.100.5"), 80, kTcp}));
  EXPECT_EQ(r.frontends[1].flags, SVC_F_EXTERNAL);
  EXPECT_FALSE(r.frontends[1].affinity);
}

TEST(ExternalFrontends, LocalPolicyKeepsThisNodesEndpointsOnly) {
  auto e = ext(ExternalKind::LoadBalancerIP, "192.0.2.10", 80,
               {be("10.244.1.11", "n1"), be("10.244.2.11", "n2"), be("10.244.3.11", ""),
                be("10.244.1.12", "n1", EndpointState::Terminating, false)});
  e.localOnly = true;
  auto r = externalToFrontends({e}, kNodeAddrs, "n1");
  ASSERT_EQ(r.frontends.size(), 2u);  // and its twin for this node's own traffic
  const auto& f = r.frontends[0];
  EXPECT_EQ(f.flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY);
  ASSERT_EQ(f.backends.size(), 2u);
  EXPECT_EQ(f.backends[0].ip, ip("10.244.1.11"));
  EXPECT_EQ(f.backends[1].ip, ip("10.244.1.12"));  // keeps its flows, no slot
  // This node's pods and processes reach every endpoint (kube-proxy's
  // short-circuit): the same address in SVC_SCOPE_INTERNAL, right after it.
  const auto& twin = r.frontends[1];
  FrontendKey k = f.key;
  k.scope = SVC_SCOPE_INTERNAL;
  EXPECT_EQ(twin.key, k);
  EXPECT_EQ(twin.flags, SVC_F_EXTERNAL | SVC_F_NODE_VIEW);
  EXPECT_EQ(twin.backends.size(), 4u);
  EXPECT_EQ(twin.backends, e.backends);
  EXPECT_EQ(twin.name, f.name);
  EXPECT_EQ(twin.portName, f.portName);
}

TEST(ExternalFrontends, LocalPolicyWithoutLocalEndpointDrops) {
  auto e = ext(ExternalKind::NodePort, nullptr, 30080,
               {be("10.244.2.11", "n2"),
                // Local, but takes no new flows.
                be("10.244.1.13", "n1", EndpointState::NotReady, false),
                be("10.244.1.12", "n1", EndpointState::Terminating, false)});
  e.localOnly = true;
  auto r = externalToFrontends({e}, {ip("10.244.0.1")}, "n1");
  ASSERT_EQ(r.frontends.size(), 2u);  // and its twin for this node's own traffic
  EXPECT_EQ(r.frontends[0].flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS);
  EXPECT_EQ(r.frontends[1].flags, SVC_F_EXTERNAL | SVC_F_NODE_VIEW) << "the twin is never dropped";
  EXPECT_EQ(r.frontends[1].backends.size(), 3u);
}

TEST(ExternalFrontends, LocalTerminatingServingEndpointCountsAsLocal) {
  auto e =
      ext(ExternalKind::NodePort, nullptr, 30080,
          {be("10.244.2.11", "n2"), be("10.244.1.12", "n1", EndpointState::Terminating, true)});
  e.localOnly = true;
  auto r = externalToFrontends({e}, {ip("10.244.0.1")}, "n1");
  ASSERT_EQ(r.frontends.size(), 2u);  // and its twin for this node's own traffic
  EXPECT_EQ(r.frontends[0].flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY);
}

TEST(ExternalFrontends, LocalPolicyWithNoUsableEndpointAnywhereRejects) {
  auto e = ext(ExternalKind::NodePort, nullptr, 30080,
               {be("10.244.2.11", "n2", EndpointState::NotReady, false)});
  e.localOnly = true;
  auto r = externalToFrontends({e}, {ip("10.244.0.1")}, "n1");
  ASSERT_EQ(r.frontends.size(), 2u);  // and its twin for this node's own traffic
  EXPECT_EQ(r.frontends[0].flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY);  // no NO_LOCAL_EPS
  EXPECT_TRUE(r.frontends[0].backends.empty());
}

TEST(ExternalFrontends, EmptyNodeNameIsNeverLocal) {
  auto e = ext(ExternalKind::NodePort, nullptr, 30080, {be("10.244.1.11", "")});
  e.localOnly = true;
  auto r = externalToFrontends({e}, {ip("10.244.0.1")}, "");
  ASSERT_EQ(r.frontends.size(), 2u);  // and its twin for this node's own traffic
  EXPECT_TRUE(r.frontends[0].backends.empty());
  EXPECT_EQ(r.frontends[0].flags, SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS);
}

TEST(ExternalFrontends, SourceRangesAreParsedMaskedSortedAndFlagged) {
  auto e = ext(ExternalKind::LoadBalancerIP, "192.0.2.10", 80, {be("10.244.1.11", "n1")});
  e.sourceRanges = {"203.0.113.77/24", " 10.0.0.0/8 ", "2001:db8::/32", "10.0.0.0/8",
                    "not-a-cidr",      "1.2.3.4/33",   "1.2.3.4",       "0.0.0.0/0"};
  auto r = externalToFrontends({e}, kNodeAddrs, "n1");
  ASSERT_EQ(r.frontends.size(), 1u);
  const auto& f = r.frontends[0];
  EXPECT_EQ(f.flags, SVC_F_EXTERNAL | SVC_F_SRC_RANGES);
  EXPECT_EQ(f.sourceRanges,
            (std::vector<SourceRange>{{0, 0}, {ip("10.0.0.0"), 8}, {ip("203.0.113.0"), 24}}));
}

TEST(ExternalFrontends, OnlyIPv6SourceRangesAdmitNoIPv4Client) {
  auto e = ext(ExternalKind::LoadBalancerIP, "192.0.2.10", 80, {be("10.244.1.11", "n1")});
  e.sourceRanges = {"2001:db8::/32"};
  auto r = externalToFrontends({e}, kNodeAddrs, "n1");
  ASSERT_EQ(r.frontends.size(), 1u);
  EXPECT_EQ(r.frontends[0].flags, SVC_F_EXTERNAL | SVC_F_SRC_RANGES);
  EXPECT_TRUE(r.frontends[0].sourceRanges.empty());
}

TEST(ExternalFrontends, ParseSourceRange) {
  EXPECT_EQ(parseSourceRange("192.168.0.1/16"), (SourceRange{ip("192.168.0.0"), 16}));
  EXPECT_EQ(parseSourceRange("192.168.0.1/32"), (SourceRange{ip("192.168.0.1"), 32}));
  EXPECT_FALSE(parseSourceRange("192.168.0.1/"));
  EXPECT_FALSE(parseSourceRange("192.168.0.1/-1"));
  EXPECT_FALSE(parseSourceRange("192.168.0.1/123"));
  EXPECT_FALSE(parseSourceRange("/24"));
  EXPECT_FALSE(parseSourceRange(""));
  EXPECT_FALSE(parseSourceRange("fd00::/129"));
  EXPECT_FALSE(parseSourceRange("fd00::1"));
  SourceRange all6;
  all6.isV6 = true;
  EXPECT_EQ(parseSourceRange(" ::/0 "), all6);
  SourceRange r6;
  r6.isV6 = true;
  r6.prefix = 60;
  r6.addr6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x10};  // host bits past /60 cleared
  EXPECT_EQ(parseSourceRange("2001:db8:0:1f::5/60"), r6);
}

Ip6 ip6(const char* text) {
  Ip6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, text, a.data()), 1) << text;
  return a;
}

// An IPv6 entry: the v6 side of a Service (its v6 ClusterIP frontend).
ExternalFrontend ext6(ExternalKind kind, const char* addr, uint16_t port,
                      std::vector<BackendSpec> backends, const std::string& name = "web") {
  ExternalFrontend e = ext(kind, nullptr, port, std::move(backends), name);
  e.v6 = true;
  if (addr) e.ip6 = ip6(addr);
  e.clusterFrontend = {0, 80, kTcp};
  e.clusterFrontend.vip6 = ip6("fd00:10:96::a");
  return e;
}

TEST(ExternalFrontends, IPv6EntriesUseTheNodesIPv6AddressesAndRangesOfTheirFamily) {
  BackendSpec b6;
  b6.ip6 = ip6("fd00:10:244:1::11");
  b6.port = 8080;
  b6.nodeName = "n2";
  auto lb = ext6(ExternalKind::LoadBalancerIP, "fd00:77::200", 80, {b6});
  lb.sourceRanges = {"192.0.2.0/24", "fd00:77::/64"};
  auto lb4only = ext6(ExternalKind::LoadBalancerIP, "fd00:77::201", 80, {b6}, "v4ranges");
  lb4only.sourceRanges = {"192.0.2.0/24"};
  auto r = externalToFrontends(
      {ext6(ExternalKind::NodePort, nullptr, 30080, {b6}),
       ext(ExternalKind::NodePort, nullptr, 30080, {be("10.244.1.11", "n2")}), lb, lb4only},
      {ip("192.168.77.2")}, "n1", {}, {ip6("fd00:77::2"), ip6("fd00:77::2"), Ip6{}});
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  std::map<std::string, const Frontend*> by;
  for (const auto& f : r.frontends) by[joinHostPort(f.key.address(), f.key.port)] = &f;
  ASSERT_EQ(by.size(), 4u) << "v4 NodePort, v6 NodePort once (duplicate and :: ignored), 2 LB IPs";
  ASSERT_TRUE(by.count("192.168.77.2:30080"));
  ASSERT_TRUE(by.count("[fd00:77::2]:30080"));
  const Frontend* np6 = by["[fd00:77::2]:30080"];
  EXPECT_TRUE(np6->key.v6());
  ASSERT_EQ(np6->backends.size(), 1u);
  EXPECT_EQ(np6->backends[0].ip6, b6.ip6);
  EXPECT_EQ(np6->flags, SVC_F_EXTERNAL);
  const Frontend* l = by["[fd00:77::200]:80"];
  ASSERT_TRUE(l);
  EXPECT_EQ(l->flags, SVC_F_EXTERNAL | SVC_F_SRC_RANGES);
  ASSERT_EQ(l->sourceRanges.size(), 1u) << "only the IPv6 CIDR";
  EXPECT_TRUE(l->sourceRanges[0].v6());
  EXPECT_EQ(l->sourceRanges[0].prefix, 64);
  const Frontend* l4 = by["[fd00:77::201]:80"];
  ASSERT_TRUE(l4);
  EXPECT_EQ(l4->flags, SVC_F_EXTERNAL | SVC_F_SRC_RANGES) << "fails closed";
  EXPECT_TRUE(l4->sourceRanges.empty());
}

TEST(ExternalFrontends, ExternalIPOnANodeAddressLosesToTheNodePort) {
  auto r = externalToFrontends({ext(ExternalKind::ExternalIP, "10.244.0.1", 30080, {}, "a"),
                                ext(ExternalKind::NodePort, nullptr, 30080, {}, "b")},
                               {ip("10.244.0.1")}, "n1");
  ASSERT_EQ(r.frontends.size(), 1u);
  EXPECT_EQ(r.frontends[0].name, "b");
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0],
            "externalIP of Service default/a (port \"http\") 10.244.0.1:30080/TCP is ignored: "
            "NodePort of Service default/b (port \"http\") already has that address, port and "
            "protocol");
}

TEST(ExternalFrontends, ClusterIPFrontendsWinAndOtherProtocolsDoNotClash) {
  auto udp = ext(ExternalKind::ExternalIP, "10.96.0.10", 80, {}, "b");
  udp.proto = kUdp;
  auto r = externalToFrontends({ext(ExternalKind::ExternalIP, "10.96.0.10", 80, {}, "b"), udp},
                               kNodeAddrs, "n1", {clusterFe("10.96.0.10", 80, "a")});
  ASSERT_EQ(r.frontends.size(), 1u);
  EXPECT_EQ(r.frontends[0].key.proto, kUdp);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("ClusterIP of Service default/a"), std::string::npos)
      << r.warnings[0];
}

TEST(ExternalFrontends, ClashWinnerDoesNotDependOnInputOrder) {
  auto a = ext(ExternalKind::ExternalIP, "198.51.100.5", 80, {}, "a");
  auto b = ext(ExternalKind::ExternalIP, "198.51.100.5", 80, {}, "b");
  auto r1 = externalToFrontends({a, b}, kNodeAddrs, "n1");
  auto r2 = externalToFrontends({b, a}, kNodeAddrs, "n1");
  ASSERT_EQ(r1.frontends.size(), 1u);
  EXPECT_EQ(r1.frontends[0].name, "a");
  EXPECT_EQ(r1.frontends, r2.frontends);
  EXPECT_EQ(r1.warnings, r2.warnings);
}

// ---- L2 announcements ------------------------------------------------------

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

void applyOk(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

std::string pool(const std::string& name, const std::string& range,
                 const std::string& ns = "metallb-system") {
  return "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n  addresses:\n  - " + range + "\n";
}

std::string l2adv(const std::string& name, const std::vector<std::string>& pools,
                  const std::vector<std::string>& ifaces,
                  const std::string& ns = "metallb-system") {
  std::string s =
      "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: " + name +
      "\n  namespace: " + ns + "\nspec:\n";
  if (!pools.empty()) {
    s += "  ipAddressPools:\n";
    for (const auto& p : pools) s += "  - " + p + "\n";
  }
  if (!ifaces.empty()) {
    s += "  interfaces:\n";
    for (const auto& i : ifaces) s += "  - " + i + "\n";
  }
  return s;
}

std::string lbSvc(const std::string& name, const std::string& extraSpec = "",
                  const std::string& annotations = "") {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n";
  if (!annotations.empty()) s += "  annotations:\n" + annotations;
  return s + "spec:\n  type: LoadBalancer\n" + extraSpec +
         "  ports:\n  - name: http\n    port: 80\n";
}

std::string slice(const std::string& svc, const std::string& addr, const std::string& node) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + svc +
         "-1\n  labels:\n    kubernetes.io/service-name: " + svc +
         "\naddressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\n"
         "endpoints:\n- addresses: [\"" +
         addr + "\"]\n  nodeName: " + node + "\n";
}

std::string doc(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "---\n") + p;
  return out;
}

std::vector<std::string> show(const std::vector<L2Announcement>& as) {
  std::vector<std::string> out;
  for (const auto& a : as) {
    in_addr x{htonl(a.ip)};
    char buf[INET6_ADDRSTRLEN];
    if (a.ip6 != Ip6{})
      inet_ntop(AF_INET6, a.ip6.data(), buf, sizeof buf);
    else
      inet_ntop(AF_INET, &x, buf, sizeof buf);
    out.push_back(std::string(buf) + " " + a.iface + " " + a.ns + "/" + a.name);
  }
  return out;
}

TEST(L2Announcements, AdvertisedPoolIsAnnouncedOnEveryExternalNic) {
  Store st;
  applyOk(st, doc({pool("p", "192.0.2.10-192.0.2.11"), l2adv("l2", {}, {}), lbSvc("web")}));
  EXPECT_EQ(
      show(l2Announcements(st, {"eth0", "eth1"}, "n1")),
      (std::vector<std::string>{"192.0.2.10 eth0 default/web", "192.0.2.10 eth1 default/web"}));
  // No external NIC: nothing to announce on.
  EXPECT_TRUE(l2Announcements(st, {}, "n1").empty());
}

TEST(L2Announcements, NoAdvertisementNoAnnouncement) {
  Store st;
  applyOk(st, doc({pool("p", "192.0.2.10/32"), lbSvc("web")}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "n1").empty());
}

TEST(L2Announcements, AdvertisementSelectsPoolsByNameInItsNamespace) {
  Store st;
  applyOk(st, doc({pool("a", "192.0.2.10/32"), pool("b", "192.0.2.20/32"),
                   pool("c", "192.0.2.30/32", "other"),
                   // selects "b" only; "c" lives in another namespace
                   l2adv("l2", {"b", "c"}, {}), lbSvc("x", "", "    metallb.io/address-pool: a\n"),
                   lbSvc("y", "", "    metallb.io/address-pool: b\n"),
                   lbSvc("z", "", "    metallb.io/address-pool: c\n")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "n1")),
            (std::vector<std::string>{"192.0.2.20 eth0 default/y"}));
}

TEST(L2Announcements, InterfacesAreIntersectedWithTheExternalNics) {
  Store st;
  applyOk(st,
          doc({pool("p", "192.0.2.10/32"), l2adv("l2", {"p"}, {"eth1", "eth9"}), lbSvc("web")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0", "eth1"}, "n1")),
            (std::vector<std::string>{"192.0.2.10 eth1 default/web"}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "n1").empty());
}

TEST(L2Announcements, TwoAdvertisementsDoNotDuplicate) {
  Store st;
  applyOk(st, doc({pool("p", "192.0.2.10/32"), l2adv("l2a", {"p"}, {}), l2adv("l2b", {}, {"eth0"}),
                   lbSvc("web")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "n1")),
            (std::vector<std::string>{"192.0.2.10 eth0 default/web"}));
}

TEST(L2Announcements, LocalPolicyNeedsALocalEndpoint) {
  Store st;
  applyOk(st, doc({pool("p", "192.0.2.10/32"), l2adv("l2", {}, {}),
                   lbSvc("web", "  externalTrafficPolicy: Local\n"),
                   slice("web", "10.244.2.11", "n2")}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "n1").empty());
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "n2")),
            (std::vector<std::string>{"192.0.2.10 eth0 default/web"}));
}

TEST(L2Announcements, PendingServiceIsNotAnnounced) {
  Store st;
  applyOk(st, doc({pool("p", "192.0.2.10/32"), l2adv("l2", {}, {}), lbSvc("a"), lbSvc("b")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "n1")),
            (std::vector<std::string>{"192.0.2.10 eth0 default/a"}));
}

// ---- L2 election among --l2-members (MetalLB's ShouldAnnounce) -------------

const std::vector<std::string> kMembers = {"node1", "node2"};

std::vector<std::string> ipsOf(const std::vector<L2Announcement>& as) {
  std::vector<std::string> out;
  for (const auto& s : show(as)) out.push_back(s.substr(0, s.find(' ')));
  return out;
}

TEST(L2Election, WinnerFollowsMetalLBsHashOrder) {
  // The oracle, from coreutils: printf '%s' 'node1#192.168.77.200' | sha256sum
  const std::string h1 = "87cc9f527d87953868bb4c5499339e86e8e009c21dfc52dfe80f2990d4d14d4f";
  const std::string h2 = "9490b8805e6d1c14977ccf041dc408a06cb03d68bf1f938095e3062231eb9271";
  EXPECT_EQ(toHex(sha256("node1#192.168.77.200")), h1);
  EXPECT_EQ(toHex(sha256("node2#192.168.77.200")), h2);
  ASSERT_LT(h1, h2);  // same-length lower-case hex sorts as the bytes do
  EXPECT_EQ(l2Winner({"node1", "node2"}, "192.168.77.200"), "node1");
  EXPECT_EQ(l2Winner({"node2", "node1"}, "192.168.77.200"), "node1");
  EXPECT_EQ(l2Winner({"node2"}, "192.168.77.200"), "node2");
  EXPECT_EQ(l2Winner({}, "192.168.77.200"), "");

  // The same through the store: only node1 answers for .200.
  Store st;
  applyOk(st, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}), lbSvc("web")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "node1", kMembers)),
            (std::vector<std::string>{"192.168.77.200 eth0 default/web"}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node2", kMembers).empty());
}

// IPv6: MetalLB hashes net.IP.String() (RFC 5952). Expected winner computed
// apart: `printf 'node1#fd00:77::200' | sha256sum` (a516...) >
// node2's (8db9...), so node2 wins.
TEST(L2Election, IPv6AddressesAreElectedAndAnnounced) {
  EXPECT_EQ(l2Winner({"node1", "node2"}, "fd00:77::200"), "node2");
  StoreConfig cfg;
  cfg.serviceCIDR = "10.96.0.0/12,fd00:10:96::/112";
  Store st(cfg);
  applyOk(st, doc({pool("lan6", "fd00:77::200-fd00:77::20f"), l2adv("l2", {}, {}),
                   lbSvc("web", "  ipFamilies: [IPv6]\n")}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "node2", kMembers)),
            (std::vector<std::string>{"fd00:77::200 eth0 default/web"}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node1", kMembers).empty());
  // A single speaker announces it, from a CIDR pool too.
  Store one(cfg);
  applyOk(one, doc({pool("lan6", "fd00:77::/120"), l2adv("l2", {}, {}),
                    lbSvc("web", "  ipFamilies: [IPv6]\n")}));
  EXPECT_EQ(show(l2Announcements(one, {"eth0"}, "node1")),
            (std::vector<std::string>{"fd00:77:: eth0 default/web"}));
}

TEST(L2Election, TwoMembersEachIpAnnouncedByExactlyOne) {
  Store st;
  std::vector<std::string> parts = {pool("lan", "192.168.77.200-192.168.77.215"),
                                    l2adv("l2", {}, {})};
  for (int i = 0; i < 16; ++i) parts.push_back(lbSvc("s" + std::to_string(i)));
  applyOk(st, doc(parts));
  const auto a1 = ipsOf(l2Announcements(st, {"eth0"}, "node1", kMembers));
  const auto a2 = ipsOf(l2Announcements(st, {"eth0"}, "node2", kMembers));
  const auto all = ipsOf(l2Announcements(st, {"eth0"}, "node1"));  // everything announceable
  ASSERT_EQ(all.size(), 16u);
  std::set<std::string> s1(a1.begin(), a1.end()), s2(a2.begin(), a2.end()), seen;
  for (const auto& ip : all) {
    EXPECT_NE(s1.count(ip), s2.count(ip)) << ip << " must be announced by exactly one node";
    // Each by the node MetalLB's order puts first.
    EXPECT_EQ(s1.count(ip) ? "node1" : "node2", l2Winner(kMembers, ip)) << ip;
  }
  EXPECT_EQ(a1.size() + a2.size(), all.size());
  // The hash spreads the addresses: both nodes get some.
  EXPECT_FALSE(a1.empty());
  EXPECT_FALSE(a2.empty());
}

TEST(L2Election, LocalPolicyElectsOnlyNodesWithALocalEndpoint) {
  // node1 would win 192.168.77.200 by the hash, but only node2 hosts an
  // endpoint.
  Store st;
  applyOk(st, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}),
                   lbSvc("web", "  externalTrafficPolicy: Local\n"),
                   slice("web", "10.244.2.11", "node2")}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node1", kMembers).empty());
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "node2", kMembers)),
            (std::vector<std::string>{"192.168.77.200 eth0 default/web"}));
}

TEST(L2Election, LocalPolicyWithEndpointsOnBothNodesFollowsTheHash) {
  Store st;
  applyOk(st, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}),
                   lbSvc("web", "  externalTrafficPolicy: Local\n"),
                   "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
                   "  name: web-1\n  labels:\n    kubernetes.io/service-name: web\n"
                   "addressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\n"
                   "endpoints:\n- addresses: [\"10.244.2.11\"]\n  nodeName: node2\n"
                   "- addresses: [\"10.244.1.11\"]\n  nodeName: node1\n"}));
  EXPECT_EQ(show(l2Announcements(st, {"eth0"}, "node1", kMembers)),
            (std::vector<std::string>{"192.168.77.200 eth0 default/web"}));
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node2", kMembers).empty());
}

TEST(L2Election, LocalPolicyWithNoMemberHostingAnEndpointIsNotAnnounced) {
  Store st;
  applyOk(st, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}),
                   lbSvc("web", "  externalTrafficPolicy: Local\n"),
                   slice("web", "10.244.3.11", "node3")}));  // node3 runs no svclbd
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node1", kMembers).empty());
  EXPECT_TRUE(l2Announcements(st, {"eth0"}, "node2", kMembers).empty());
}

TEST(L2Election, EmptyMemberListAnnouncesEverythingMatched) {
  // Single-node use: each node believes it is alone and answers.
  Store st;
  applyOk(st, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}), lbSvc("web")}));
  for (const char* node : {"node1", "node2"})
    EXPECT_EQ(show(l2Announcements(st, {"eth0"}, node, {})),
              (std::vector<std::string>{"192.168.77.200 eth0 default/web"}))
        << node;
}

TEST(L2Election, NodeNotAmongTheMembersIsAnError) {
  EXPECT_TRUE(checkL2Members({}, "node3").ok());
  EXPECT_TRUE(checkL2Members(kMembers, "node2").ok());
  auto st = checkL2Members(kMembers, "node3");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("--l2-members node1,node2 does not name this node (node3"),
            std::string::npos)
      << st.error().message;
  // Should it run anyway, it announces nothing.
  Store s;
  applyOk(s, doc({pool("lan", "192.168.77.200/32"), l2adv("l2", {}, {}), lbSvc("web")}));
  EXPECT_TRUE(l2Announcements(s, {"eth0"}, "node3", kMembers).empty());
}

}  // namespace
}  // namespace svclb
