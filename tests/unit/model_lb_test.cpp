// MetalLB objects (IPAddressPool, L2Advertisement), LoadBalancer IP
// assignment in the Store, and the external dataplane view.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <set>

#include "model/model.h"

namespace svclb {
namespace {

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

std::string pool(const std::string& name, const std::vector<std::string>& addresses,
                 const std::string& extraSpec = "") {
  std::string s =
      "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: " + name +
      "\n  namespace: metallb-system\nspec:\n" + extraSpec + "  addresses:\n";
  for (const auto& a : addresses) s += "  - \"" + a + "\"\n";
  return s;
}

std::string lbSvc(const std::string& name, const std::string& extraSpec = "",
                  const std::string& annotations = "", const std::string& type = "LoadBalancer") {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n";
  if (!annotations.empty()) s += "  annotations:\n" + annotations;
  return s + "spec:\n  type: " + type + "\n" + extraSpec + "  ports:\n  - port: 80\n";
}

std::string doc(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "---\n") + p;
  return out;
}

void applyOk(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

// The ingress IP ("" = pending) and the pool it came from.
std::string ip(const Store& st, const std::string& name) {
  const auto& s = st.services().at({"default", name});
  EXPECT_LE(s.loadBalancerIngressIPs.size(), 1u);
  return s.loadBalancerIngressIPs.empty() ? "" : s.loadBalancerIngressIPs[0];
}
std::string poolOf(const Store& st, const std::string& name) {
  return st.services().at({"default", name}).loadBalancerPool;
}

std::string errOf(const Object& o) {
  Status st = validate(o);
  return st.ok() ? "" : st.error().message;
}

// ---- objects ------------------------------------------------------------------

TEST(ModelLb, PoolAndAdvertisementParse) {
  auto objs = parse(R"(apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: p, namespace: metallb-system}
spec:
  addresses: [192.168.10.0/24, 192.168.9.1-192.168.9.5]
  autoAssign: false
  avoidBuggyIPs: true
  serviceAllocation: {priority: 50, namespaces: [a]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec:
  ipAddressPools: [p]
  interfaces: [eth0]
  nodeSelectors: [{matchLabels: {a: b}}]
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPoolList
items:
- metadata: {name: q}
  spec: {addresses: [10.0.0.1/32]}
)");
  ASSERT_EQ(objs.size(), 3u);
  EXPECT_EQ(kindOf(objs[0]), "IPAddressPool");
  EXPECT_EQ(kindOf(objs[1]), "L2Advertisement");
  const auto& p = std::get<IPAddressPool>(objs[0]);
  EXPECT_EQ(p.meta.ns, "metallb-system");
  EXPECT_EQ(p.addresses, (std::vector<std::string>{"192.168.10.0/24", "192.168.9.1-192.168.9.5"}));
  EXPECT_FALSE(p.autoAssign);
  EXPECT_TRUE(p.avoidBuggyIPs);
  const auto& l2 = std::get<L2Advertisement>(objs[1]);
  EXPECT_EQ(l2.ipAddressPools, std::vector<std::string>{"p"});
  EXPECT_EQ(l2.interfaces, std::vector<std::string>{"eth0"});
  const auto& q = std::get<IPAddressPool>(objs[2]);
  EXPECT_TRUE(q.autoAssign);  // the default
  EXPECT_FALSE(q.avoidBuggyIPs);
  for (const auto& o : objs) {
    EXPECT_EQ(errOf(o), "");
    auto back = fromJson(toJson(o));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(*back == o) << toJson(o).dump();
  }
  EXPECT_EQ(toJson(objs[0])["apiVersion"], "metallb.io/v1beta1");
  EXPECT_EQ(toJson(objs[0])["spec"]["autoAssign"], false);

  EXPECT_EQ(kindFromResource("ipaddresspools.metallb.io"), "IPAddressPool");
  EXPECT_EQ(kindFromResource("IPAddressPool"), "IPAddressPool");
  EXPECT_EQ(kindFromResource("l2advertisements"), "L2Advertisement");
  EXPECT_EQ(describeOutcome({"IPAddressPool", "metallb-system", "p", ApplyAction::Created}),
            "ipaddresspool.metallb.io/p created");
  EXPECT_EQ(describeOutcome({"L2Advertisement", "metallb-system", "l2", ApplyAction::Created}),
            "l2advertisement.metallb.io/l2 created");
  EXPECT_EQ(describeOutcome({"IPAddressPool", "metallb-system", "p", ApplyAction::Deleted}),
            "ipaddresspool.metallb.io \"p\" deleted");

  auto noName = parseManifests("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n", "p.yaml");
  ASSERT_FALSE(noName.ok());
  EXPECT_NE(noName.error().message.find(
                "Resource: \"metallb.io/v1beta1, Resource=ipaddresspools\", GroupVersionKind: "
                "\"metallb.io/v1beta1, Kind=IPAddressPool\""),
            std::string::npos)
      << noName.error().message;
  auto v2 = parseManifests("apiVersion: metallb.io/v1alpha1\nkind: IPAddressPool\n", "p.yaml");
  EXPECT_EQ(v2.error().message,
            "error: unable to recognize \"p.yaml\": no matches for kind \"IPAddressPool\" in "
            "version \"metallb.io/v1alpha1\"");
}

TEST(ModelLb, PoolAddressValidation) {
  struct Case {
    std::string address, wantDetail;  // "" = valid
  };
  const std::string kShape =
      "must be a CIDR (e.g. 192.168.10.0/24) or an IP range (e.g. 192.168.9.1-192.168.9.5)";
  const std::vector<Case> cases = {
      {"192.168.10.0/24", ""},
      {"192.168.10.7/24", ""},  // host bits ignored, as net.ParseCIDR does
      {"42.176.25.64/32", ""},
      {"0.0.0.0/0", ""},
      {"192.168.9.1-192.168.9.5", ""},
      {"192.168.9.1 - 192.168.9.5", ""},
      {"192.168.9.1-192.168.9.1", ""},
      {"fc00:f853:0ccd:e799::/124", ""},
      {"fc00::1-fc00::ff", ""},
      {"10.0.0.300", kShape},
      {"10.0.0.3", kShape},
      {"10.0.0.0/33", kShape},
      {"10.0.0.0/", kShape},
      {"10.0.0.0/024", kShape},
      {"fc00::/129", kShape},
      {"", kShape},
      {"pool", kShape},
      {"10.0.0.1-", "invalid end IP \"\""},
      {"-10.0.0.1", "invalid start IP \"\""},
      {"10.0.0.1-10.0.0.300", "invalid end IP \"10.0.0.300\""},
      {"10.0.0.01-10.0.0.5", "invalid start IP \"10.0.0.01\""},
      {"10.0.0.0/24-10.0.1.0", "invalid start IP \"10.0.0.0/24\""},
      {"10.0.0.9-10.0.0.1", "start IP \"10.0.0.9\" is after the end IP \"10.0.0.1\""},
      {"10.0.0.1-fc00::1", "start and end IP must be of the same IP family"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.address);
    IPAddressPool p;
    p.meta.name = "p";
    p.addresses = {c.address};
    EXPECT_EQ(errOf(p), c.wantDetail.empty()
                            ? ""
                            : "The IPAddressPool \"p\" is invalid: spec.addresses[0]: Invalid "
                              "value: \"" +
                                  c.address + "\": " + c.wantDetail);
  }

  IPAddressPool empty;
  empty.meta.name = "p";
  EXPECT_EQ(errOf(empty), "The IPAddressPool \"p\" is invalid: spec.addresses: Required value");
  IPAddressPool overlap;
  overlap.meta.name = "p";
  overlap.addresses = {"10.0.0.0/24", "10.1.0.0/24", "10.0.0.255-10.0.1.3"};
  EXPECT_EQ(errOf(overlap),
            "The IPAddressPool \"p\" is invalid: spec.addresses[2]: Invalid value: "
            "\"10.0.0.255-10.0.1.3\": overlaps with spec.addresses[0] (\"10.0.0.0/24\")");
  IPAddressPool badName;
  badName.meta.name = "Pool";
  badName.addresses = {"10.0.0.0/24"};
  EXPECT_NE(errOf(badName).find("metadata.name: Invalid value: \"Pool\""), std::string::npos);

  L2Advertisement l2;
  l2.meta.name = "l2";
  l2.ipAddressPools = {""};
  l2.interfaces = {"eth0", "bond0.100", "a/b"};
  EXPECT_EQ(errOf(l2),
            "The L2Advertisement \"l2\" is invalid: \n* spec.ipAddressPools[0]: Required value: "
            "must name an IPAddressPool\n* spec.interfaces[2]: Invalid value: \"a/b\": must be a "
            "network interface name (1-15 characters, no '/', ':' or whitespace)");
}

TEST(ModelLb, PoolsMayNotOverlapAcrossTheStore) {
  Store st;
  applyOk(st, pool("a", {"192.168.10.0/24"}));
  const auto before = st.toJson();
  auto r = st.apply(parse(doc({pool("c", {"172.16.0.0/16"}), pool("b", {"192.168.10.128/25"})})));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "The IPAddressPool \"b\" is invalid: spec.addresses[0]: Invalid value: "
            "\"192.168.10.128/25\": overlaps with \"192.168.10.0/24\" of IPAddressPool \"a\"");
  EXPECT_EQ(st.toJson(), before);
  // A pool may be re-applied or grown over its own addresses.
  auto again = st.apply(parse(pool("a", {"192.168.10.0/24"})));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->at(0).action, ApplyAction::Unchanged);
  applyOk(st, pool("a", {"192.168.10.0/23"}));
  // IPv6 entries are compared among themselves; another namespace is named.
  applyOk(st, pool("v6", {"fc00::/120"}));
  auto other = parse(pool("v6b", {"fc00::10-fc00::20"}));
  std::get<IPAddressPool>(other[0]).meta.ns = "other";
  r = st.apply(other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "The IPAddressPool \"v6b\" is invalid: spec.addresses[0]: Invalid value: "
            "\"fc00::10-fc00::20\": overlaps with \"fc00::/120\" of IPAddressPool "
            "\"metallb-system/v6\"");

  auto nf = st.remove("ipaddresspool", "metallb-system", "ghost");
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().message,
            "Error from server (NotFound): ipaddresspools.metallb.io \"ghost\" not found");
  auto del = st.remove("IPAddressPool", "metallb-system", "v6");
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(describeOutcome(del->at(0)), "ipaddresspool.metallb.io \"v6\" deleted");
}

// ---- assignment -----------------------------------------------------------------

TEST(ModelLb, AssignmentTable) {
  const std::string annotationIPs = "    metallb.universe.tf/loadBalancerIPs: ";
  struct Case {
    std::string name;
    std::string manifest;
    std::map<std::string, std::string> want;  // service -> ingress IP ("" = pending)
    std::map<std::string, std::string> wantPool = {};
  };
  const std::vector<Case> cases = {
      {"no pool: pending", lbSvc("a"), {{"a", ""}}},
      {"first free address, in Service order",
       doc({pool("p", {"192.168.50.10-192.168.50.12"}), lbSvc("b"), lbSvc("a")}),
       {{"a", "192.168.50.10"}, {"b", "192.168.50.11"}},
       {{"a", "p"}, {"b", "p"}}},
      {"exhausted: pending",
       doc({pool("p", {"192.168.50.10/32"}), lbSvc("a"), lbSvc("b")}),
       {{"a", "192.168.50.10"}, {"b", ""}}},
      {"pools by name, addresses in spec order",
       doc({pool("b-pool", {"10.0.2.0/31"}), pool("a-pool", {"10.0.1.5/32", "10.0.0.0/31"}),
            lbSvc("s1"), lbSvc("s2"), lbSvc("s3"), lbSvc("s4")}),
       {{"s1", "10.0.1.5"}, {"s2", "10.0.0.0"}, {"s3", "10.0.0.1"}, {"s4", "10.0.2.0"}},
       {{"s1", "a-pool"}, {"s4", "b-pool"}}},
      {"spec.loadBalancerIP",
       doc({pool("p", {"10.0.0.0/24"}), lbSvc("a", "  loadBalancerIP: 10.0.0.77\n")}),
       {{"a", "10.0.0.77"}}},
      {"requests win over automatic assignment whatever the order",
       doc({pool("p", {"10.0.0.0/31"}), lbSvc("a"), lbSvc("b", "  loadBalancerIP: 10.0.0.0\n")}),
       {{"a", "10.0.0.1"}, {"b", "10.0.0.0"}}},
      {"loadBalancerIP outside every pool: pending",
       doc({pool("p", {"10.0.0.0/24"}), lbSvc("a", "  loadBalancerIP: 10.9.0.1\n")}),
       {{"a", ""}}},
      {"loadBalancerIP asked twice: the first by name gets it",
       doc({pool("p", {"10.0.0.0/24"}), lbSvc("b", "  loadBalancerIP: 10.0.0.5\n"),
            lbSvc("a", "  loadBalancerIP: 10.0.0.5\n")}),
       {{"a", "10.0.0.5"}, {"b", ""}}},
      {"annotation, first IPv4 of the list",
       doc({pool("p", {"10.0.0.0/24"}),
            lbSvc("a", "", annotationIPs + "\"fc00::1, 10.0.0.9,10.0.0.10\"\n")}),
       {{"a", "10.0.0.9"}}},
      {"annotation, metallb.io spelling",
       doc({pool("p", {"10.0.0.0/24"}),
            lbSvc("a", "", "    metallb.io/loadBalancerIPs: 10.0.0.11\n")}),
       {{"a", "10.0.0.11"}}},
      {"annotation outside the pools: pending",
       doc({pool("p", {"10.0.0.0/24"}), lbSvc("a", "", annotationIPs + "10.1.0.1\n")}),
       {{"a", ""}}},
      {"autoAssign false is only used on request",
       doc({pool("cheap", {"10.0.0.0/32"}),
            pool("expensive", {"42.176.25.64/30"}, "  autoAssign: false\n"), lbSvc("a"), lbSvc("b"),
            lbSvc("c", "  loadBalancerIP: 42.176.25.65\n"),
            lbSvc("d", "", "    metallb.universe.tf/address-pool: expensive\n")}),
       {{"a", "10.0.0.0"}, {"b", ""}, {"c", "42.176.25.65"}, {"d", "42.176.25.64"}},
       {{"c", "expensive"}, {"d", "expensive"}}},
      {"address-pool annotation restricts a request",
       doc({pool("p", {"10.0.0.0/24"}), pool("q", {"10.0.1.0/24"}),
            lbSvc("a", "  loadBalancerIP: 10.0.0.5\n", "    metallb.io/address-pool: q\n")}),
       {{"a", ""}}},
      {"avoidBuggyIPs skips .0 and .255",
       doc({pool("p", {"10.0.0.254-10.0.1.1"}, "  avoidBuggyIPs: true\n"), lbSvc("a"), lbSvc("b"),
            lbSvc("c"), lbSvc("d", "  loadBalancerIP: 10.0.1.0\n")}),
       {{"a", "10.0.0.254"}, {"b", "10.0.1.1"}, {"c", ""}, {"d", ""}}},
      {"an IPv4 Service gets no address from an IPv6 pool",
       doc({pool("p", {"fc00::/124"}), lbSvc("a")}),
       {{"a", ""}}},
      {"other types get nothing",
       doc({pool("p", {"10.0.0.0/24"}), lbSvc("a", "", "", "NodePort"),
            lbSvc("b", "", "", "ClusterIP")}),
       {{"a", ""}, {"b", ""}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Store st;
    applyOk(st, c.manifest);
    for (const auto& [name, want] : c.want) EXPECT_EQ(ip(st, name), want) << name;
    for (const auto& [name, want] : c.wantPool) EXPECT_EQ(poolOf(st, name), want) << name;
    for (const auto& [name, want] : c.want) {
      if (want.empty()) {
        EXPECT_EQ(poolOf(st, name), "") << name;
      }
    }
  }
}

// One address per family of the Service (MetalLB), on a dual-stack store.
TEST(ModelLb, AssignmentPerFamily) {
  StoreConfig cfg;
  cfg.serviceCIDR = "10.96.0.0/12,fd00:10:96::/112";
  const std::string v6 = "  ipFamilies: [IPv6]\n";
  const std::string dual = "  ipFamilyPolicy: RequireDualStack\n";
  const std::string dualV6First =
      "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n";
  auto ips = [](const Store& st, const std::string& name) {
    return st.services().at({"default", name}).loadBalancerIngressIPs;
  };
  using V = std::vector<std::string>;
  {
    Store st(cfg);
    applyOk(st, doc({pool("p", {"10.0.0.0/31", "fd00:77::200-fd00:77::201"}), lbSvc("a", v6),
                     lbSvc("b", dual), lbSvc("c", dualV6First), lbSvc("d")}));
    EXPECT_EQ(ips(st, "a"), V{"fd00:77::200"}) << "IPv6 single-stack: an IPv6 address";
    EXPECT_EQ(ips(st, "b"), (V{"10.0.0.0", "fd00:77::201"})) << "dual-stack: one of each";
    EXPECT_EQ(ips(st, "c"), V{}) << "no IPv6 address left: pending (not half an allocation)";
    EXPECT_EQ(ips(st, "d"), V{"10.0.0.1"});
    EXPECT_EQ(poolOf(st, "b"), "p");
    // A freed IPv6 address goes to the pending dual-stack Service, in its
    // family order; the others keep theirs.
    ASSERT_TRUE(st.remove("Service", "default", "a").ok());
    ASSERT_TRUE(st.remove("Service", "default", "d").ok());
    EXPECT_EQ(ips(st, "c"), (V{"fd00:77::200", "10.0.0.1"}));
    EXPECT_EQ(ips(st, "b"), (V{"10.0.0.0", "fd00:77::201"}));
  }
  {
    Store st(cfg);
    // Both families must come from one pool.
    applyOk(st, doc({pool("p4", {"10.0.0.0/30"}), pool("p6", {"fd00:77::/120"}), lbSvc("a", dual),
                     lbSvc("b", v6)}));
    EXPECT_EQ(ips(st, "a"), V{}) << "no pool holds both families";
    EXPECT_EQ(ips(st, "b"), V{"fd00:77::"});
    EXPECT_EQ(poolOf(st, "b"), "p6");
  }
  {
    Store st(cfg);
    // Requests: the annotation names one address per family.
    applyOk(st, doc({pool("p", {"10.0.0.0/24", "fd00:77::/120"}),
                     lbSvc("a", dual, "    metallb.io/loadBalancerIPs: \"fd00:77::9,10.0.0.9\"\n"),
                     lbSvc("b", dual, "    metallb.io/loadBalancerIPs: 10.0.0.8\n"),
                     lbSvc("c", v6, "    metallb.io/loadBalancerIPs: fd00:77::7\n"),
                     lbSvc("d", v6 + "  loadBalancerIP: fd00:77::8\n")}));
    EXPECT_EQ(ips(st, "a"), (V{"10.0.0.9", "fd00:77::9"}));
    EXPECT_EQ(ips(st, "b"), V{}) << "a dual-stack request without an IPv6 address: pending";
    EXPECT_EQ(ips(st, "c"), V{"fd00:77::7"});
    EXPECT_EQ(ips(st, "d"), V{"fd00:77::8"});
  }
}

TEST(ModelLb, PendingServicesGetFreedAddresses) {
  Store st;
  applyOk(st, doc({pool("p", {"192.168.50.10-192.168.50.11"}), lbSvc("a"), lbSvc("b"), lbSvc("c"),
                   lbSvc("d")}));
  EXPECT_EQ(ip(st, "a"), "192.168.50.10");
  EXPECT_EQ(ip(st, "b"), "192.168.50.11");
  EXPECT_EQ(ip(st, "c"), "");
  EXPECT_EQ(ip(st, "d"), "");

  // A delete frees an address: the first pending Service gets it at once.
  ASSERT_TRUE(st.remove("Service", "default", "a").ok());
  EXPECT_EQ(ip(st, "c"), "192.168.50.10");
  EXPECT_EQ(ip(st, "d"), "");
  // A type change frees one too.
  applyOk(st, lbSvc("b", "", "", "ClusterIP"));
  EXPECT_EQ(ip(st, "b"), "");
  EXPECT_EQ(ip(st, "d"), "192.168.50.11");
  // Growing the pool serves new and pending ones.
  applyOk(st, doc({lbSvc("e"), lbSvc("f")}));
  EXPECT_EQ(ip(st, "e"), "");
  applyOk(st, pool("p", {"192.168.50.10-192.168.50.12"}));
  EXPECT_EQ(ip(st, "e"), "192.168.50.12");
  EXPECT_EQ(ip(st, "f"), "");
  // removeAll frees several at once.
  ASSERT_TRUE(st.removeAll(parse(doc({lbSvc("c"), lbSvc("d")}))).ok());
  EXPECT_EQ(ip(st, "f"), "192.168.50.10");

  // Deleting the pool: everyone is pending again.
  ASSERT_TRUE(st.remove("ipaddresspools.metallb.io", "metallb-system", "p").ok());
  EXPECT_EQ(ip(st, "e"), "");
  EXPECT_EQ(ip(st, "f"), "");
  EXPECT_EQ(poolOf(st, "f"), "");
  // Another pool picks them up.
  applyOk(st, pool("q", {"10.1.0.0/30"}));
  EXPECT_EQ(ip(st, "e"), "10.1.0.0");
  EXPECT_EQ(ip(st, "f"), "10.1.0.1");
  EXPECT_EQ(poolOf(st, "f"), "q");
}

TEST(ModelLb, AddressIsKeptAcrossUpdates) {
  Store st;
  applyOk(st, doc({pool("p", {"10.0.0.0/29"}), lbSvc("web")}));
  ASSERT_EQ(ip(st, "web"), "10.0.0.0");
  applyOk(st, lbSvc("other"));
  // The same manifest again: unchanged, same address.
  auto r = st.apply(parse(lbSvc("web")));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0).action, ApplyAction::Unchanged);
  // A real change keeps it, even if a lower address is free.
  ASSERT_TRUE(st.remove("Service", "default", "other").ok());
  applyOk(st, lbSvc("other2"));
  EXPECT_EQ(ip(st, "other2"), "10.0.0.1");
  applyOk(st, lbSvc("web", "  sessionAffinity: ClientIP\n"));
  EXPECT_EQ(ip(st, "web"), "10.0.0.0");
  // A manifest's status is not taken: the store owns it.
  r = st.apply(parse(lbSvc("web", "  sessionAffinity: ClientIP\n") +
                     "status: {loadBalancer: {ingress: [{ip: 10.0.0.5}]}}\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->at(0).action, ApplyAction::Unchanged);
  EXPECT_EQ(ip(st, "web"), "10.0.0.0");
  // Asking for another address moves it; the old one is free again.
  applyOk(st, lbSvc("web", "  loadBalancerIP: 10.0.0.6\n"));
  EXPECT_EQ(ip(st, "web"), "10.0.0.6");
  applyOk(st, lbSvc("third"));
  EXPECT_EQ(ip(st, "third"), "10.0.0.0");
  // A pool change that leaves the address outside moves the Service.
  applyOk(st, pool("p", {"10.0.0.0/30"}));
  EXPECT_EQ(ip(st, "web"), "");  // 10.0.0.6 is gone and it asked for it
  EXPECT_EQ(ip(st, "third"), "10.0.0.0");
  EXPECT_EQ(ip(st, "other2"), "10.0.0.1");
}

// spec.loadBalancerClass: another implementation's Services get no address
// from svclb's pools (MetalLB without --lb-class); with StoreConfig's class
// (svclbd --lb-class) only that class's do. kube-apiserver's rules: only on
// LoadBalancer Services, a qualified name, unchanged once set.
TEST(ModelLb, LoadBalancerClass) {
  const std::string classed = "  loadBalancerClass: example.com/other\n";
  {
    Store st;
    applyOk(st, doc({pool("p", {"192.168.10.0/30"}), lbSvc("mine"), lbSvc("theirs", classed)}));
    EXPECT_EQ(ip(st, "mine"), "192.168.10.0");
    EXPECT_EQ(ip(st, "theirs"), "") << "another class: pending, as MetalLB leaves it";
    EXPECT_EQ(st.services().at({"default", "theirs"}).loadBalancerClass, "example.com/other");
    // Written back as it came (get -o yaml, the state file).
    EXPECT_EQ(st.toJson()["services"][1]["spec"]["loadBalancerClass"], "example.com/other");
    size_t lbIps = 0;
    for (const auto& f : st.externalFrontends())
      if (f.kind == ExternalKind::LoadBalancerIP) {
        ++lbIps;
        EXPECT_EQ(f.name, "mine") << "a LoadBalancer IP frontend for the other class's Service";
      }
    EXPECT_EQ(lbIps, 1u);
  }
  {
    StoreConfig cfg;
    cfg.loadBalancerClass = "example.com/other";
    Store st(cfg);
    applyOk(st, doc({pool("p", {"192.168.10.0/30"}), lbSvc("mine"), lbSvc("theirs", classed)}));
    EXPECT_EQ(ip(st, "mine"), "") << "--lb-class set: a Service without a class is not ours";
    EXPECT_EQ(ip(st, "theirs"), "192.168.10.0");
  }
  Store st;
  applyOk(st, doc({pool("p", {"192.168.10.0/30"}), lbSvc("theirs", classed)}));
  auto changed = st.apply(parse(lbSvc("theirs", "  loadBalancerClass: example.com/third\n")));
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.error().message,
            "The Service \"theirs\" is invalid: spec.loadBalancerClass: Invalid value: "
            "\"example.com/third\": may not change once set");
  auto dropped = st.apply(parse(lbSvc("theirs")));
  EXPECT_FALSE(dropped.ok()) << "removing the class is a change too";
  // Leaving LoadBalancer is allowed, and clears the class with the type.
  EXPECT_TRUE(st.apply(parse(lbSvc("theirs", "", "", "NodePort"))).ok());
  EXPECT_NE(errOf(parse(lbSvc("c", classed, "", "ClusterIP"))[0])
                .find("spec.loadBalancerClass: Forbidden: may only be used when `type` is "
                      "'LoadBalancer'"),
            std::string::npos);
  EXPECT_NE(errOf(parse(lbSvc("c", "  loadBalancerClass: -bad/\n"))[0])
                .find("spec.loadBalancerClass: Invalid value: \"-bad/\""),
            std::string::npos);
}

// KEP-1860: an ingress IP with ipMode: Proxy (the load balancer proxies to
// the nodes) is not programmed, as kube-proxy skips it; ipMode VIP (or none)
// is. Kubernetes mode, where the status is the API's.
TEST(ModelLb, ProxyModeIngressIPsAreNotProgrammed) {
  StoreConfig cfg;
  cfg.apiOwned = true;
  Store st(cfg);
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  type: LoadBalancer\n"
          "  clusterIP: 10.96.0.10\n  ports: [{port: 80, nodePort: 30080}]\nstatus:\n"
          "  loadBalancer:\n    ingress:\n    - {ip: 203.0.113.7, ipMode: VIP}\n"
          "    - {ip: 203.0.113.8, ipMode: Proxy}\n    - {ip: 203.0.113.9}\n"
          "    - {hostname: lb-1.example.com}\n");
  std::set<std::string> programmed;
  for (const auto& f : st.externalFrontends())
    if (f.kind == ExternalKind::LoadBalancerIP) programmed.insert(formatIPv4(f.ip));
  EXPECT_EQ(programmed, (std::set<std::string>{"203.0.113.7", "203.0.113.9"}));
  // Kept and shown: get -o yaml / describe name all four (a hostname is
  // never programmed).
  const auto ingress = st.toJson()["services"][0]["status"]["loadBalancer"]["ingress"];
  ASSERT_EQ(ingress.size(), 4u);
  // An explicit or absent ipMode of an IP is written as the API server
  // defaults it: VIP.
  EXPECT_EQ(ingress[0], (nlohmann::json{{"ip", "203.0.113.7"}, {"ipMode", "VIP"}}));
  EXPECT_EQ(ingress[1], (nlohmann::json{{"ip", "203.0.113.9"}, {"ipMode", "VIP"}}));
  EXPECT_EQ(ingress[2], (nlohmann::json{{"ip", "203.0.113.8"}, {"ipMode", "Proxy"}}));
  EXPECT_EQ(ingress[3], (nlohmann::json{{"hostname", "lb-1.example.com"}}));
  auto bad = parseManifests(
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 80}]\n"
      "status:\n  loadBalancer:\n    ingress:\n    - {ip: 203.0.113.7, ipMode: Tunnel}\n",
      "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("status.loadBalancer.ingress[0].ipMode: Unsupported value: "
                                     "\"Tunnel\": supported values: \"VIP\", \"Proxy\""),
            std::string::npos)
      << bad.error().message;
}

TEST(ModelLb, ValidationOfRequestedAndExternalAddresses) {
  struct Case {
    std::string name;
    std::function<void(Service&)> mutate;
    std::string wantErr;
  };
  const std::string head = "The Service \"web\" is invalid: ";
  const std::vector<Case> cases = {
      {"IPv4 loadBalancerIP", [](Service& s) { s.loadBalancerIP = "10.0.0.1"; }, ""},
      {"IPv6 loadBalancerIP", [](Service& s) { s.loadBalancerIP = "fc00::1"; }, ""},
      {"bad loadBalancerIP", [](Service& s) { s.loadBalancerIP = "10.0.0"; },
       head + "spec.loadBalancerIP: Invalid value: \"10.0.0\": must be a valid IP address, (e.g. "
              "10.9.8.7 or 2001:db8::ffff)"},
      {"annotation with a bad entry",
       [](Service& s) { s.meta.annotations[kLbIPsAnnotationLegacy] = "10.0.0.1,nope"; },
       head + "metadata.annotations[metallb.universe.tf/loadBalancerIPs]: Invalid value: "
              "\"10.0.0.1,nope\": must be a comma-separated list of IP addresses"},
      {"annotation IPv6 only", [](Service& s) { s.meta.annotations[kLbIPsAnnotation] = "fc00::1"; },
       ""},
      {"annotation ignored off LoadBalancer",
       [](Service& s) {
         s.type = "ClusterIP";
         s.meta.annotations[kLbIPsAnnotation] = "nope";
       },
       ""},
      {"externalIP", [](Service& s) { s.externalIPs = {"192.0.2.10"}; }, ""},
      {"externalIP IPv6", [](Service& s) { s.externalIPs = {"2001:db8::1"}; }, ""},
      {"externalIP IPv6 loopback", [](Service& s) { s.externalIPs = {"::1"}; },
       head + "spec.externalIPs[0]: Invalid value: \"::1\": may not be in the loopback range "
              "(127.0.0.0/8, ::1/128)"},
      {"externalIP IPv6 link-local", [](Service& s) { s.externalIPs = {"fe80::1"}; },
       head + "spec.externalIPs[0]: Invalid value: \"fe80::1\": may not be in the link-local "
              "range (169.254.0.0/16, fe80::/10)"},
      {"externalIP IPv6 unspecified", [](Service& s) { s.externalIPs = {"::"}; },
       head + "spec.externalIPs[0]: Invalid value: \"::\": may not be unspecified (::)"},
      {"externalIP unspecified", [](Service& s) { s.externalIPs = {"0.0.0.0"}; },
       head + "spec.externalIPs[0]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0)"},
      {"externalIP loopback", [](Service& s) { s.externalIPs = {"127.1.2.3"}; },
       head + "spec.externalIPs[0]: Invalid value: \"127.1.2.3\": may not be in the loopback "
              "range (127.0.0.0/8, ::1/128)"},
      {"externalIP link-local", [](Service& s) { s.externalIPs = {"169.254.169.254"}; },
       head + "spec.externalIPs[0]: Invalid value: \"169.254.169.254\": may not be in the "
              "link-local range (169.254.0.0/16, fe80::/10)"},
      {"externalIP link-local multicast", [](Service& s) { s.externalIPs = {"224.0.0.251"}; },
       head + "spec.externalIPs[0]: Invalid value: \"224.0.0.251\": may not be in the link-local "
              "multicast range (224.0.0.0/24, ff02::/10)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Service s;
    s.meta.name = "web";
    s.type = "LoadBalancer";
    s.ports = {ServicePort{"", "TCP", 80, IntOrString{false, 80, ""}, 0, ""}};
    c.mutate(s);
    EXPECT_EQ(errOf(s), c.wantErr);
  }
}

// ---- persistence and the external view --------------------------------------------

const char* kScenario = R"(apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: metallb-system}
spec: {addresses: [192.168.50.10-192.168.50.20]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan, namespace: metallb-system}
spec: {ipAddressPools: [lan]}
---
apiVersion: v1
kind: Service
metadata: {name: edge}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  externalTrafficPolicy: Local
  loadBalancerSourceRanges: [" 203.0.113.0/24 "]
  sessionAffinity: ClientIP
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, protocol: UDP, port: 53}
---
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  clusterIP: 10.96.0.51
  externalIPs: [192.0.2.10]
  ports: [{port: 8443, nodePort: 31443}]
---
apiVersion: v1
kind: Service
metadata: {name: plain}
spec:
  clusterIP: 10.96.0.52
  externalIPs: [192.0.2.11]
  ports: [{port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: edge}
subsets:
- addresses: [{ip: 10.244.1.5, nodeName: node-a}]
  ports: [{name: http, port: 8080}, {name: dns, protocol: UDP, port: 5353}]
)";

TEST(ModelLb, ExternalFrontends) {
  Store st;
  applyOk(st, kScenario);
  ASSERT_EQ(ip(st, "edge"), "192.168.50.10");
  const auto fes = st.externalFrontends();
  struct Want {
    ExternalKind kind;
    std::string ip;
    uint16_t port;
    uint8_t proto;
    std::string name, portName;
  };
  const std::vector<Want> want = {
      {ExternalKind::NodePort, "", 30000, 6, "edge", "http"},
      {ExternalKind::NodePort, "", 30001, 17, "edge", "dns"},
      {ExternalKind::NodePort, "", 31443, 6, "np", ""},
      {ExternalKind::LoadBalancerIP, "192.168.50.10", 53, 17, "edge", "dns"},
      {ExternalKind::LoadBalancerIP, "192.168.50.10", 80, 6, "edge", "http"},
      {ExternalKind::ExternalIP, "192.0.2.10", 8443, 6, "np", ""},
      {ExternalKind::ExternalIP, "192.0.2.11", 80, 6, "plain", ""},
  };
  ASSERT_EQ(fes.size(), want.size());
  auto ipOf = [](const std::string& s) -> uint32_t {
    if (s.empty()) return 0;
    uint32_t a, b, c, d;
    sscanf(s.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d);
    return a << 24 | b << 16 | c << 8 | d;
  };
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(fes[i].kind, want[i].kind);
    EXPECT_EQ(fes[i].ip, ipOf(want[i].ip));
    EXPECT_EQ(fes[i].port, want[i].port);
    EXPECT_EQ(fes[i].proto, want[i].proto);
    EXPECT_EQ(fes[i].ns, "default");
    EXPECT_EQ(fes[i].name, want[i].name);
    EXPECT_EQ(fes[i].portName, want[i].portName);
  }
  const int32_t hc = st.services().at({"default", "edge"}).healthCheckNodePort;
  EXPECT_EQ(hc, 30002);

  // edge/http through the LB IP: Local, source ranges, affinity, backends
  // and health check port, and the ClusterIP frontend it stands for.
  const ExternalFrontend& lbHttp = fes[4];
  EXPECT_TRUE(lbHttp.localOnly);
  EXPECT_EQ(lbHttp.sourceRanges, std::vector<std::string>{"203.0.113.0/24"});
  EXPECT_TRUE(lbHttp.affinity);
  EXPECT_EQ(lbHttp.affinityTimeout, 10800u);
  EXPECT_EQ(lbHttp.healthCheckNodePort, 30002);
  EXPECT_EQ(lbHttp.clusterFrontend, (FrontendKey{ipOf("10.96.0.50"), 80, 6}));
  ASSERT_EQ(lbHttp.backends.size(), 1u);
  EXPECT_EQ(lbHttp.backends[0].ip, ipOf("10.244.1.5"));
  EXPECT_EQ(lbHttp.backends[0].port, 8080);
  EXPECT_EQ(lbHttp.backends[0].nodeName, "node-a");
  // The same backends as the ClusterIP view of that port.
  for (const auto& f : st.frontends()) {
    if (f.key == lbHttp.clusterFrontend) {
      EXPECT_EQ(f.backends, lbHttp.backends);
    }
  }
  // Source ranges only on LB IPs; the NodePort of the same port has none.
  EXPECT_TRUE(fes[0].sourceRanges.empty());
  EXPECT_TRUE(fes[0].localOnly);
  EXPECT_EQ(fes[0].healthCheckNodePort, 30002);
  EXPECT_EQ(fes[1].backends.at(0).port, 5353);
  // np: Cluster policy, no health check port, no backends.
  EXPECT_FALSE(fes[2].localOnly);
  EXPECT_EQ(fes[2].healthCheckNodePort, 0);
  EXPECT_TRUE(fes[2].backends.empty());
  EXPECT_EQ(fes[5].clusterFrontend, (FrontendKey{ipOf("10.96.0.51"), 8443, 6}));

  // Pending LB: only NodePorts.
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata: {name: pending}\nspec:\n  type: "
          "LoadBalancer\n  loadBalancerIP: 10.9.9.9\n  ports: [{port: 80}]\n");
  size_t pendingEntries = 0;
  for (const auto& f : st.externalFrontends())
    if (f.name == "pending") {
      ++pendingEntries;
      EXPECT_EQ(f.kind, ExternalKind::NodePort);
    }
  EXPECT_EQ(pendingEntries, 1u);
}

TEST(ModelLb, PersistenceRoundTrip) {
  Store st;
  applyOk(st, kScenario);
  // The pool shows up as MetalLB's annotation, not as a user annotation.
  const auto& edge = st.services().at({"default", "edge"});
  EXPECT_EQ(edge.loadBalancerPool, "lan");
  EXPECT_EQ(edge.meta.annotations.count(kLbPoolAnnotation), 0u);
  const auto j = toJson(Object{edge});
  EXPECT_EQ(j["metadata"]["annotations"][kLbPoolAnnotation], "lan");
  // As the API server shows it: ipMode defaulted to VIP (KEP-1860).
  EXPECT_EQ(j["status"]["loadBalancer"]["ingress"][0],
            (nlohmann::json{{"ip", "192.168.50.10"}, {"ipMode", "VIP"}}));
  auto back = fromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(std::get<Service>(*back) == edge);

  const auto sj = st.toJson();
  EXPECT_EQ(sj["ipAddressPools"].size(), 1u);
  EXPECT_EQ(sj["l2Advertisements"].size(), 1u);
  auto copy = Store::fromJson(sj);
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  EXPECT_EQ(copy->toJson(), sj);
  EXPECT_EQ(copy->pools(), st.pools());
  EXPECT_EQ(copy->l2Advertisements(), st.l2Advertisements());
  EXPECT_EQ(copy->services(), st.services());
  EXPECT_EQ(copy->externalFrontends(), st.externalFrontends());

  // Through a file, and then still the same after more changes.
  char tmpl[] = "/tmp/svclb-lb-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/state.json";
  ASSERT_TRUE(st.save(path).ok());
  auto loaded = Store::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->toJson(), sj);
  ASSERT_TRUE(loaded->remove("l2advertisement", "metallb-system", "lan").ok());
  EXPECT_TRUE(loaded->l2Advertisements().empty());
  ::unlink(path.c_str());
  ::rmdir(tmpl);

  // An older state file (no pool lists): loads, LB Services pending.
  nlohmann::json old = sj;
  old.erase("ipAddressPools");
  old.erase("l2Advertisements");
  auto legacy = Store::fromJson(old);
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_TRUE(legacy->pools().empty());
  EXPECT_EQ(ip(*legacy, "edge"), "");
}

}  // namespace
}  // namespace svclb
