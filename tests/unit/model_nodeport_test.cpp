// Store: nodePort and healthCheckNodePort allocation (range, clashes, keep
// on update, release, range change, persistence).
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

// A Service with ports given as "port[/proto][:nodePort]" items.
std::string svc(const std::string& name, const std::string& type,
                const std::vector<std::string>& ports, const std::string& extraSpec = "") {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                  "\nspec:\n  type: " + type + "\n" + extraSpec + "  ports:\n";
  for (size_t i = 0; i < ports.size(); ++i) {
    std::string p = ports[i], proto = "TCP", nodePort;
    if (auto c = p.find(':'); c != std::string::npos) {
      nodePort = p.substr(c + 1);
      p = p.substr(0, c);
    }
    if (auto sl = p.find('/'); sl != std::string::npos) {
      proto = p.substr(sl + 1);
      p = p.substr(0, sl);
    }
    s += "  - name: p" + std::to_string(i) + "\n    port: " + p + "\n    protocol: " + proto + "\n";
    if (!nodePort.empty()) s += "    nodePort: " + nodePort + "\n";
  }
  return s;
}

std::string doc(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "---\n") + p;
  return out;
}

std::vector<int32_t> nodePorts(const Store& st, const std::string& name) {
  std::vector<int32_t> v;
  for (const auto& p : st.services().at({"default", name}).ports) v.push_back(p.nodePort);
  return v;
}

int32_t healthPort(const Store& st, const std::string& name) {
  return st.services().at({"default", name}).healthCheckNodePort;
}

void applyOk(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

std::string applyErr(Store& st, const std::string& text) {
  const auto before = st.toJson();
  auto r = st.apply(parse(text));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(st.toJson(), before) << "a failed apply changed the store";
  return r.ok() ? "" : r.error().message;
}

std::string invalidNodePort(const std::string& name, int idx, int port, const std::string& why) {
  return "The Service \"" + name + "\" is invalid: spec.ports[" + std::to_string(idx) +
         "].nodePort: Invalid value: " + std::to_string(port) + ": " + why;
}

const std::string kNotInRange =
    "provided port is not in the valid range. The range of valid ports is 30000-32767";
const std::string kTaken = "provided port is already allocated";

struct AllocCase {
  std::string name;
  std::vector<std::string> before;  // applied first, one apply each
  std::string apply;
  std::string wantErr;                                    // "" = success
  std::map<std::string, std::vector<int32_t>> want = {};  // service -> nodePorts
  StoreConfig cfg = {};
};

TEST(ModelNodePort, AllocationTable) {
  StoreConfig small;
  small.nodePortMin = 31000;
  small.nodePortMax = 31001;
  const std::vector<AllocCase> cases = {
      {"absent -> lowest of the range", {}, svc("web", "NodePort", {"80"}), "", {{"web", {30000}}}},
      {"every port of a LoadBalancer gets one",
       {},
       svc("lb", "LoadBalancer", {"80", "443"}),
       "",
       {{"lb", {30000, 30001}}}},
      {"explicit in range is kept",
       {},
       svc("web", "NodePort", {"80:30310"}),
       "",
       {{"web", {30310}}}},
      {"explicit at both ends of the range",
       {},
       svc("web", "NodePort", {"80:30000", "81:32767"}),
       "",
       {{"web", {30000, 32767}}}},
      {"explicit above the range",
       {},
       svc("huazi", "NodePort", {"80:33333"}),
       invalidNodePort("huazi", 0, 33333, kNotInRange)},
      {"explicit below the range",
       {},
       svc("web", "NodePort", {"80", "81:29999"}),
       invalidNodePort("web", 1, 29999, kNotInRange)},
      {"clash with another Service",
       {svc("a", "NodePort", {"80:30310"})},
       svc("x", "NodePort", {"80:30310"}),
       invalidNodePort("x", 0, 30310, kTaken)},
      {"clash with another Service's health check port",
       {svc("a", "LoadBalancer", {"80:30100"},
            "  externalTrafficPolicy: Local\n  healthCheckNodePort: 30101\n")},
       svc("x", "NodePort", {"80:30101"}),
       invalidNodePort("x", 0, 30101, kTaken)},
      {"clash within one apply",
       {},
       doc({svc("a", "NodePort", {"80:30310"}), svc("x", "NodePort", {"80:30310"})}),
       invalidNodePort("x", 0, 30310, kTaken)},
      {"same nodePort, same protocol, same Service",
       {},
       svc("web", "NodePort", {"80:30310", "81:30310"}),
       "The Service \"web\" is invalid: spec.ports[1].nodePort: Duplicate value: 30310"},
      {"same nodePort for TCP and UDP of one Service",
       {},
       svc("dns", "NodePort", {"53/TCP:30053", "53/UDP:30053"}),
       "",
       {{"dns", {30053, 30053}}}},
      {"TCP and UDP of the same port share an allocated one",
       {},
       svc("dns", "NodePort", {"53/TCP", "53/UDP", "54/UDP"}),
       "",
       {{"dns", {30000, 30000, 30001}}}},
      {"allocation skips what a later Service of the apply asks for",
       {},
       doc({svc("a", "NodePort", {"80"}), svc("b", "NodePort", {"80:30000"})}),
       "",
       {{"a", {30001}}, {"b", {30000}}}},
      {"allocation skips ports held by others",
       {svc("a", "NodePort", {"80:30000"})},
       svc("b", "NodePort", {"80"}),
       "",
       {{"a", {30000}}, {"b", {30001}}}},
      {"ClusterIP may not have one",
       {},
       svc("web", "ClusterIP", {"80:30080"}),
       "The Service \"web\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when "
       "`type` is 'ClusterIP'"},
      {"ClusterIP gets none", {}, svc("web", "ClusterIP", {"80"}), "", {{"web", {0}}}},
      {"configured range",
       {},
       svc("web", "NodePort", {"80", "81"}),
       "",
       {{"web", {31000, 31001}}},
       small},
      {"configured range is full",
       {svc("a", "NodePort", {"80", "81"})},
       svc("b", "NodePort", {"80"}),
       "Internal error occurred: failed to allocate a nodePort: range is full",
       {},
       small},
      {"configured range in the message",
       {},
       svc("web", "NodePort", {"80:30310"}),
       invalidNodePort("web", 0, 30310,
                       "provided port is not in the valid range. The range of valid ports is "
                       "31000-31001"),
       {},
       small},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Store st(c.cfg);
    for (const auto& b : c.before) applyOk(st, b);
    if (c.wantErr.empty()) {
      applyOk(st, c.apply);
      for (const auto& [name, ports] : c.want) EXPECT_EQ(nodePorts(st, name), ports) << name;
    } else {
      EXPECT_EQ(applyErr(st, c.apply), c.wantErr);
    }
  }
}

TEST(ModelNodePort, KeptOnUpdateThatOmitsIt) {
  Store st;
  applyOk(st, svc("web", "NodePort", {"80", "443"}));
  applyOk(st, svc("other", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "web"), (std::vector<int32_t>{30000, 30001}));
  EXPECT_EQ(nodePorts(st, "other"), (std::vector<int32_t>{30002}));

  // The same manifest again: nothing to do.
  auto r = st.apply(parse(svc("web", "NodePort", {"80", "443"})));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at(0).action, ApplyAction::Unchanged);

  // Ports matched by (port, protocol): 443 keeps its nodePort after a
  // reorder, the new port 8080 gets a fresh one, the dropped 80 is freed.
  r = st.apply(parse(svc("web", "NodePort", {"8080", "443"})));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at(0).action, ApplyAction::Configured);
  EXPECT_EQ(nodePorts(st, "web"), (std::vector<int32_t>{30003, 30001}));
  applyOk(st, svc("third", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "third"), (std::vector<int32_t>{30000}));

  // Moving to an explicit one releases the old; asking for its own is fine.
  applyOk(st, svc("web", "NodePort", {"8080:30003", "443:30500"}));
  EXPECT_EQ(nodePorts(st, "web"), (std::vector<int32_t>{30003, 30500}));
  applyOk(st, svc("fourth", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "fourth"), (std::vector<int32_t>{30001}));

  // A kept nodePort cannot be asked for again by another port.
  EXPECT_EQ(applyErr(st, svc("web", "NodePort", {"8080", "443", "444:30003"})),
            "The Service \"web\" is invalid: spec.ports[2].nodePort: Duplicate value: 30003");

  // NodePort -> LoadBalancer keeps them too.
  applyOk(st, svc("web", "LoadBalancer", {"8080", "443"}));
  EXPECT_EQ(nodePorts(st, "web"), (std::vector<int32_t>{30003, 30500}));
}

// spec.allocateLoadBalancerNodePorts (kube-apiserver): defaulted to true on
// a LoadBalancer; false gives only the nodePorts asked for, and keeps the
// ones an update does not send (kubectl apply leaves them alone).
TEST(ModelNodePort, AllocateLoadBalancerNodePorts) {
  Store st;
  const std::string off = "  allocateLoadBalancerNodePorts: false\n";
  applyOk(st, svc("lb", "LoadBalancer", {"80", "443:30443"}, off));
  EXPECT_EQ(nodePorts(st, "lb"), (std::vector<int32_t>{0, 30443}));
  EXPECT_EQ(st.services().at({"default", "lb"}).allocateLoadBalancerNodePorts,
            std::optional<bool>(false));
  // The default, and kept by an update that omits it.
  applyOk(st, svc("dflt", "LoadBalancer", {"80"}));
  EXPECT_EQ(nodePorts(st, "dflt"), (std::vector<int32_t>{30000}));
  EXPECT_EQ(st.services().at({"default", "dflt"}).allocateLoadBalancerNodePorts,
            std::optional<bool>(true));
  applyOk(st, svc("lb", "LoadBalancer", {"80", "443"}));
  EXPECT_EQ(st.services().at({"default", "lb"}).allocateLoadBalancerNodePorts,
            std::optional<bool>(false));
  EXPECT_EQ(nodePorts(st, "lb"), (std::vector<int32_t>{0, 30443}));
  // Turned off on a Service that has nodePorts: they stay.
  applyOk(st, svc("dflt", "LoadBalancer", {"80"}, off));
  EXPECT_EQ(nodePorts(st, "dflt"), (std::vector<int32_t>{30000}));
  // Only on LoadBalancer Services.
  EXPECT_EQ(applyErr(st, svc("np", "NodePort", {"80"}, off)),
            "The Service \"np\" is invalid: spec.allocateLoadBalancerNodePorts: Forbidden: may "
            "only be used when `type` is 'LoadBalancer'");
  // No nodePort, no NodePort frontend (ClusterIP and the rest stay).
  size_t lbNodePorts = 0;
  for (const auto& f : st.externalFrontends())
    lbNodePorts += f.name == "lb" && f.kind == ExternalKind::NodePort;
  EXPECT_EQ(lbNodePorts, 1u) << "only 443's nodePort 30443";
}

TEST(ModelNodePort, ReleasedOnDeleteAndTypeChange) {
  Store st;
  applyOk(st, doc({svc("a", "NodePort", {"80"}), svc("b", "LoadBalancer", {"80"})}));
  EXPECT_EQ(nodePorts(st, "a"), (std::vector<int32_t>{30000}));
  EXPECT_EQ(nodePorts(st, "b"), (std::vector<int32_t>{30001}));

  ASSERT_TRUE(st.remove("Service", "default", "a").ok());
  applyOk(st, svc("c", "NodePort", {"80:30000"}));  // a's port is free again

  // To ClusterIP: the nodePort goes (the manifest cannot carry one).
  applyOk(st, svc("b", "ClusterIP", {"80"}));
  EXPECT_EQ(nodePorts(st, "b"), (std::vector<int32_t>{0}));
  applyOk(st, svc("d", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "d"), (std::vector<int32_t>{30001}));
  // ... and back to NodePort allocates afresh.
  applyOk(st, svc("b", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "b"), (std::vector<int32_t>{30002}));

  // removeAll releases too.
  ASSERT_TRUE(
      st.removeAll(parse(doc({svc("b", "NodePort", {"80"}), svc("d", "NodePort", {"80"})}))).ok());
  applyOk(st, svc("e", "NodePort", {"80", "81"}));
  EXPECT_EQ(nodePorts(st, "e"), (std::vector<int32_t>{30001, 30002}));
}

TEST(ModelNodePort, AllOrNothing) {
  Store st;
  applyOk(st, svc("a", "NodePort", {"80:30310"}));
  // The valid first Service is not created either.
  EXPECT_EQ(applyErr(st, doc({svc("new", "NodePort", {"80"}), svc("x", "NodePort", {"80:30310"})})),
            invalidNodePort("x", 0, 30310, kTaken));
  EXPECT_EQ(st.services().size(), 1u);
  // Every failing Service is reported.
  std::string err =
      applyErr(st, doc({svc("y", "NodePort", {"80:40000"}), svc("z", "NodePort", {"80:30310"})}));
  EXPECT_EQ(err, invalidNodePort("y", 0, 40000, kNotInRange) + "\n" +
                     invalidNodePort("z", 0, 30310, kTaken));
}

TEST(ModelNodePort, RangeChangeKeepsExistingAllocations) {
  Store st;
  applyOk(st, svc("web", "NodePort", {"80", "81:30500"}));
  ASSERT_EQ(nodePorts(st, "web"), (std::vector<int32_t>{30000, 30500}));

  // Restart with another range (svclbd --service-node-port-range).
  StoreConfig cfg;
  cfg.nodePortMin = 31000;
  cfg.nodePortMax = 31010;
  auto loaded = Store::fromJson(st.toJson(), cfg);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  Store moved = std::move(*loaded);
  EXPECT_EQ(nodePorts(moved, "web"), (std::vector<int32_t>{30000, 30500}));

  // Re-applying without nodePorts, or with the old explicit one, keeps them.
  auto r = moved.apply(parse(svc("web", "NodePort", {"80", "81:30500"})));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at(0).action, ApplyAction::Unchanged);
  applyOk(moved, svc("web", "NodePort", {"80", "81"}));
  EXPECT_EQ(nodePorts(moved, "web"), (std::vector<int32_t>{30000, 30500}));
  // New ones come from the new range, and new requests are checked against it.
  applyOk(moved, svc("new", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(moved, "new"), (std::vector<int32_t>{31000}));
  EXPECT_EQ(applyErr(moved, svc("other", "NodePort", {"80:30001"})),
            invalidNodePort("other", 0, 30001,
                            "provided port is not in the valid range. The range of valid ports "
                            "is 31000-31010"));
  // An out-of-range port still counts as taken.
  EXPECT_EQ(applyErr(moved, svc("other", "NodePort", {"80:30000"})),
            invalidNodePort("other", 0, 30000,
                            "provided port is not in the valid range. The range of valid ports "
                            "is 31000-31010"));
}

TEST(ModelNodePort, HealthCheckNodePort) {
  const std::string local = "  externalTrafficPolicy: Local\n";
  Store st;
  applyOk(st, svc("edge", "LoadBalancer", {"80", "443"}, local));
  EXPECT_EQ(nodePorts(st, "edge"), (std::vector<int32_t>{30000, 30001}));
  EXPECT_EQ(healthPort(st, "edge"), 30002);
  // Kept when the manifest omits it.
  auto r = st.apply(parse(svc("edge", "LoadBalancer", {"80", "443"}, local)));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->at(0).action, ApplyAction::Unchanged);
  EXPECT_EQ(healthPort(st, "edge"), 30002);

  // Cluster policy releases it; Local again allocates the lowest free one.
  applyOk(st, svc("edge", "LoadBalancer", {"80", "443"}, "  externalTrafficPolicy: Cluster\n"));
  EXPECT_EQ(healthPort(st, "edge"), 0);
  applyOk(st, svc("np", "NodePort", {"80"}));
  EXPECT_EQ(nodePorts(st, "np"), (std::vector<int32_t>{30002}));
  applyOk(st, svc("edge", "LoadBalancer", {"80", "443"}, local));
  EXPECT_EQ(healthPort(st, "edge"), 30003);

  // Explicit: kube-apiserver's internal errors.
  const std::string head =
      "Internal error occurred: failed to allocate requested HealthCheck "
      "NodePort ";
  struct Case {
    std::string name, extra, wantErr;
    std::vector<std::string> ports = {"80"};
  };
  const std::vector<Case> cases = {
      {"out of range", local + "  healthCheckNodePort: 40000\n", head + "40000: " + kNotInRange},
      {"held by another Service", local + "  healthCheckNodePort: 30002\n",
       head + "30002: " + kTaken},
      {"one of its own nodePorts",
       local + "  healthCheckNodePort: 30600\n",
       head + "30600: " + kTaken,
       {"80:30600"}},
      {"not LoadBalancer + Local", "  healthCheckNodePort: 30600\n",
       "The Service \"x\" is invalid: spec.healthCheckNodePort: Invalid value: 30600: may only be "
       "set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(applyErr(st, svc("x", "LoadBalancer", c.ports, c.extra)), c.wantErr);
  }
  applyOk(st, svc("x", "LoadBalancer", {"80"}, local + "  healthCheckNodePort: 32000\n"));
  EXPECT_EQ(healthPort(st, "x"), 32000);
  EXPECT_EQ(nodePorts(st, "x"), (std::vector<int32_t>{30004}));

  // Deleting releases it.
  ASSERT_TRUE(st.remove("svc", "default", "x").ok());
  applyOk(st, svc("y", "NodePort", {"80:32000"}));

  // Range exhausted while allocating the health check port.
  StoreConfig one;
  one.nodePortMin = one.nodePortMax = 31000;
  Store tiny(one);
  EXPECT_EQ(applyErr(tiny, svc("edge", "LoadBalancer", {"80"}, local)),
            "Internal error occurred: failed to allocate a HealthCheck NodePort 0: range is full");
}

TEST(ModelNodePort, PersistedAndRepairedOnLoad) {
  Store st;
  applyOk(st, doc({svc("a", "NodePort", {"80", "53/UDP"}),
                   svc("b", "LoadBalancer", {"80"}, "  externalTrafficPolicy: Local\n")}));
  auto copy = Store::fromJson(st.toJson());
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  EXPECT_EQ(copy->toJson(), st.toJson());
  EXPECT_EQ(copy->services(), st.services());

  // A state file from before allocation existed: filled in on load, and the
  // explicit ones left as they are.
  nlohmann::json old = st.toJson();
  for (auto& s : old["services"]) {
    for (auto& p : s["spec"]["ports"])
      if (s["metadata"]["name"] == "a") p.erase("nodePort");
    s["spec"].erase("healthCheckNodePort");
  }
  auto repaired = Store::fromJson(old);
  ASSERT_TRUE(repaired.ok()) << repaired.error().message;
  EXPECT_EQ(nodePorts(*repaired, "b"), (std::vector<int32_t>{30002}));
  EXPECT_EQ(nodePorts(*repaired, "a"), (std::vector<int32_t>{30000, 30001}));
  EXPECT_EQ(healthPort(*repaired, "b"), 30003);
}

}  // namespace
}  // namespace svclb
