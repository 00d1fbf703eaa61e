// The Kubernetes source's mirror (loader/k8s_source.h) against a sink that
// is a real Store in apiOwned mode: nothing is pushed before every kind has
// listed; the first push converges the store to exactly the listed objects;
// events go in batches; one object svclb cannot take never blocks the
// others; a relist removes what the list lacks; a failed push is followed by
// a full resync. Plus what is served of dual-stack and IPv6 objects.
#include "loader/k8s_source.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

using k8s::WatchEventType;
using nlohmann::json;

// A StateSink over a Store, recording each call.
struct StoreSink final : StateSink {
  Store store{StoreConfig{.serviceCIDR = "10.96.0.0/12", .apiOwned = true}};
  std::vector<std::string> calls;  // "apply 2", "remove 1", "replace Service,EndpointSlice 3"
  int failNext = 0;                // the next N calls fail with EIO

  bool failing(Result<Outcomes>& r) {
    if (failNext == 0) return false;
    --failNext;
    r = Error{EIO, "injected map write failure"};
    return true;
  }
  Result<Outcomes> apply(std::vector<Object> objs) override {
    calls.push_back(fmt::format("apply {}", objs.size()));
    Result<Outcomes> r = Outcomes{};
    if (failing(r)) return r;
    return store.apply(std::move(objs));
  }
  Result<Outcomes> remove(const std::vector<ObjectRef>& refs,
                          std::vector<std::string>* missing = nullptr) override {
    calls.push_back(fmt::format("remove {}", refs.size()));
    Result<Outcomes> r = Outcomes{};
    if (failing(r)) return r;
    return store.removeAll(refs, nullptr, missing);
  }
  Result<Outcomes> replace(const std::vector<std::string>& kinds,
                           std::vector<Object> objs) override {
    calls.push_back(fmt::format("replace {} {}", fmt::join(kinds, ","), objs.size()));
    Result<Outcomes> r = Outcomes{};
    if (failing(r)) return r;
    Store::Undo undo;
    auto orphans = store.notListed(kinds, objs);
    if (!orphans.empty())
      if (auto rm = store.removeAll(orphans, &undo); !rm) return rm;
    auto ap = store.apply(std::move(objs), &undo);
    if (!ap) store.revert(std::move(undo));
    return ap;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [k, s] : store.services()) out.push_back("svc/" + k.second);
    for (const auto& [k, s] : store.slices()) out.push_back("slice/" + k.second);
    for (const auto& [k, s] : store.endpoints()) out.push_back("ep/" + k.second);
    return out;
  }
};

json service(const std::string& name, const std::string& ip, int port = 80) {
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", "7"}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", ip},
        {"clusterIPs", {ip}},
        {"ipFamilies", {ip.find(':') != std::string::npos ? "IPv6" : "IPv4"}},
        {"ipFamilyPolicy", "SingleStack"},
        {"sessionAffinity", "None"},
        {"internalTrafficPolicy", "Cluster"},
        {"ports", {{{"name", "http"}, {"port", port}, {"protocol", "TCP"}, {"targetPort", 8080}}}},
        {"selector", {{"app", name}}}}},
      {"status", {{"loadBalancer", json::object()}}}};
}

json slice(const std::string& svc, const std::string& name, std::vector<std::string> ips,
           const std::string& addressType = "IPv4") {
  json eps = json::array();
  for (const auto& ip : ips)
    eps.push_back({{"addresses", {ip}}, {"conditions", {{"ready", true}}}, {"nodeName", "n1"}});
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", name},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", addressType},
          {"endpoints", eps},
          {"ports", {{{"name", "http"}, {"port", 8080}, {"protocol", "TCP"}}}}};
}

std::vector<json> list(std::initializer_list<json> items) { return std::vector<json>(items); }

TEST(ApiMirror, NothingIsPushedBeforeEveryKindListed) {
  ApiMirror m;
  StoreSink sink;
  m.replace("Service", list({service("web", "10.96.0.10")}));
  m.event("Service", WatchEventType::Added, service("web2", "10.96.0.11"));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_TRUE(sink.calls.empty()) << "a Service without its slices would be programmed empty";
  m.replace("EndpointSlice", list({slice("web", "web-a", {"10.244.1.11"})}));
  m.setSynced();
  ASSERT_TRUE(m.pending());
  ASSERT_TRUE(m.flush(sink).ok());
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_EQ(sink.calls[0],
            "replace Service,Endpoints,EndpointSlice,IPAddressPool,L2Advertisement 3");
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/web", "svc/web2", "slice/web-a"}));
  EXPECT_FALSE(m.pending());
}

TEST(ApiMirror, FirstPushRemovesWhatTheApiDoesNotHold) {
  StoreSink sink;
  // What the state file held: a Service deleted while svclbd was down, and
  // v1 Endpoints svcctl made before the node joined the cluster.
  ASSERT_TRUE(sink.apply({*fromJson(service("gone", "10.96.0.99"))}).ok());
  auto ep = parseManifests(
      "apiVersion: v1\nkind: Endpoints\nmetadata: {name: old}\nsubsets: "
      "[{addresses: [{ip: 10.244.9.9}], ports: [{port: 80}]}]\n",
      "t.yaml");
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  ASSERT_TRUE(sink.apply(*ep).ok());
  ApiMirror m;
  m.replace("Service", list({service("web", "10.96.0.10")}));
  m.replace("EndpointSlice", {});
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/web"}));
}

TEST(ApiMirror, EventsArePushedInOneBatch) {
  StoreSink sink;
  ApiMirror m;
  m.replace("Service", list({service("a", "10.96.0.1"), service("b", "10.96.0.2")}));
  m.replace("EndpointSlice", {});
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  sink.calls.clear();
  m.event("Service", WatchEventType::Added, service("c", "10.96.0.3"));
  m.event("EndpointSlice", WatchEventType::Added, slice("c", "c-1", {"10.244.1.1"}));
  m.event("Service", WatchEventType::Modified, service("a", "10.96.0.1", 81));
  m.event("Service", WatchEventType::Deleted, service("b", "10.96.0.2"));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"remove 1", "apply 3"}));
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/a", "svc/c", "slice/c-1"}));
  EXPECT_EQ(sink.store.services().at({"default", "a"}).ports.at(0).port, 81);
  // The same object changed twice before a push: its last version, once.
  sink.calls.clear();
  m.event("Service", WatchEventType::Modified, service("a", "10.96.0.1", 82));
  m.event("Service", WatchEventType::Modified, service("a", "10.96.0.1", 83));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"apply 1"}));
  EXPECT_EQ(sink.store.services().at({"default", "a"}).ports.at(0).port, 83);
}

TEST(ApiMirror, ApiOwnedAllocationsAreTakenAsTheyAre) {
  // The apiserver made these: a ClusterIP outside svclbd's --service-cidr, a
  // nodePort outside its range, a Service recreated with a new ClusterIP
  // while the watch was down, an ingress IP from another controller.
  StoreSink sink;
  ApiMirror m;
  json np = service("np", "10.0.0.5");
  np["spec"]["type"] = "LoadBalancer";
  np["spec"]["ports"][0]["nodePort"] = 40000;
  np["status"]["loadBalancer"]["ingress"] = {{{"ip", "192.0.2.7"}}};
  m.replace("Service", list({np, service("web", "10.96.0.10")}));
  m.replace("EndpointSlice", {});
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  m.replace("Service", list({np, service("web", "10.96.0.77")}));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.store.services().at({"default", "web"}).clusterIP, "10.96.0.77");
  const Service& s = sink.store.services().at({"default", "np"});
  EXPECT_EQ(s.clusterIP, "10.0.0.5");
  EXPECT_EQ(s.ports.at(0).nodePort, 40000);
  EXPECT_EQ(s.loadBalancerIngressIPs, (std::vector<std::string>{"192.0.2.7"}));
}

TEST(ApiMirror, ARefusedObjectDoesNotBlockTheOthers) {
  StoreSink sink;
  ApiMirror m;
  json bad = service("bad", "10.96.0.5");
  bad["spec"]["ports"][0]["port"] = 0;  // our validation refuses it
  m.replace("Service", list({service("web", "10.96.0.10"), bad}));
  m.replace("EndpointSlice", list({slice("web", "web-a", {"10.244.1.11"})}));
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/web", "slice/web-a"}));
  K8sSourceStatus st;
  m.status(st);
  ASSERT_EQ(st.refused.size(), 1u);
  EXPECT_NE(st.refused[0].find("Service default/bad"), std::string::npos) << st.refused[0];
  EXPECT_NE(st.refused[0].find("spec.ports[0].port"), std::string::npos) << st.refused[0];
  // Its deletion is not pushed (the sink never had it: no NotFound).
  sink.calls.clear();
  m.event("Service", WatchEventType::Deleted, json(bad));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_TRUE(sink.calls.empty());
  m.status(st);
  EXPECT_TRUE(st.refused.empty());
  // Fixed, it is taken.
  m.event("Service", WatchEventType::Added, service("bad", "10.96.0.5"));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/bad", "svc/web", "slice/web-a"}));
}

TEST(ApiMirror, ABatchTheSinkRefusesIsRetriedObjectByObject) {
  StoreSink sink;
  ApiMirror m;
  m.replace("Service", {});
  m.replace("EndpointSlice", {});
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  sink.calls.clear();
  sink.failNext = 1;  // the batch fails; each object alone succeeds
  m.event("Service", WatchEventType::Added, service("a", "10.96.0.1"));
  m.event("Service", WatchEventType::Added, service("b", "10.96.0.2"));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"apply 2", "apply 1", "apply 1"}));
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/a", "svc/b"}));
}

TEST(ApiMirror, RelistRemovesWhatTheListLacks) {
  StoreSink sink;
  ApiMirror m;
  m.replace("Service", list({service("a", "10.96.0.1"), service("b", "10.96.0.2")}));
  m.replace("EndpointSlice",
            list({slice("a", "a-1", {"10.244.1.1"}), slice("b", "b-1", {"10.244.1.2"})}));
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  sink.calls.clear();
  // b's slice deleted while the watch was down (410 -> relist).
  m.replace("EndpointSlice", list({slice("a", "a-1", {"10.244.1.1", "10.244.1.3"})}));
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.calls, (std::vector<std::string>{"replace EndpointSlice 1"}));
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/a", "svc/b", "slice/a-1"}));
  EXPECT_EQ(sink.store.slices().at({"default", "a-1"}).endpoints.size(), 2u);
}

TEST(ApiMirror, AFailedPushIsFollowedByAFullResync) {
  StoreSink sink;
  ApiMirror m;
  m.replace("Service", list({service("a", "10.96.0.1")}));
  m.replace("EndpointSlice", {});
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  m.event("Service", WatchEventType::Deleted, service("a", "10.96.0.1"));
  sink.failNext = 1;
  EXPECT_FALSE(m.flush(sink).ok());
  EXPECT_TRUE(m.pending());
  K8sSourceStatus st;
  m.status(st);
  EXPECT_EQ(st.pushFailures, 1u);
  EXPECT_EQ(st.lastPushError, "injected map write failure");
  sink.calls.clear();
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.calls,
            (std::vector<std::string>{
                "replace Service,Endpoints,EndpointSlice,IPAddressPool,L2Advertisement 0"}));
  EXPECT_TRUE(sink.names().empty());
  m.status(st);
  EXPECT_EQ(st.lastPushError, "");
}

TEST(DataplaneView, DualStackServiceIsServedWhole) {
  json s = service("web", "fd00::10");
  s["spec"]["type"] = "LoadBalancer";
  s["spec"]["ports"][0]["nodePort"] = 30080;
  s["spec"]["clusterIPs"] = {"fd00::10", "10.96.0.10"};
  s["spec"]["ipFamilies"] = {"IPv6", "IPv4"};
  s["spec"]["ipFamilyPolicy"] = "RequireDualStack";
  s["spec"]["externalIPs"] = {"2001:db8::1", "192.0.2.1"};
  s["spec"]["loadBalancerSourceRanges"] = {"2001:db8::/64", "198.51.100.0/24"};
  s["status"]["loadBalancer"]["ingress"] = {{{"ip", "2001:db8::2"}}, {{"ip", "192.0.2.2"}}};
  EXPECT_EQ(dataplaneView(s), std::nullopt);
  EXPECT_EQ(s["spec"]["clusterIP"], "fd00::10");
  EXPECT_EQ(s["spec"]["clusterIPs"], json({"fd00::10", "10.96.0.10"}));
  EXPECT_EQ(s["spec"]["ipFamilies"], json({"IPv6", "IPv4"}));
  EXPECT_EQ(s["spec"]["externalIPs"], json({"2001:db8::1", "192.0.2.1"}));
  EXPECT_EQ(s["spec"]["loadBalancerSourceRanges"], json({"2001:db8::/64", "198.51.100.0/24"}));
  EXPECT_EQ(s["status"]["loadBalancer"]["ingress"],
            json({{{"ip", "2001:db8::2"}}, {{"ip", "192.0.2.2"}}}));
  auto o = fromJson(s);
  ASSERT_TRUE(o.ok()) << o.error().message;
  auto v = validate(*o);
  EXPECT_TRUE(v.ok()) << v.error().message;
}

TEST(DataplaneView, IPv6ObjectsAreServedFqdnSlicesIgnored) {
  json s = service("web6", "fd00::10");
  EXPECT_EQ(dataplaneView(s), std::nullopt);
  json sl = slice("web6", "web-6", {"fd00::1"}, "IPv6");
  EXPECT_EQ(dataplaneView(sl), std::nullopt);
  json fq = slice("web", "web-f", {"a.example"}, "FQDN");
  auto why = dataplaneView(fq);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("FQDN"), std::string::npos);
  ApiMirror m;
  StoreSink sink;
  m.replace("Service", list({service("web6", "fd00::10"), service("web", "10.96.0.10")}));
  m.replace("EndpointSlice", list({slice("web6", "web-6", {"fd00::1"}, "IPv6"),
                                   slice("web", "web-f", {"a.example"}, "FQDN")}));
  m.setSynced();
  ASSERT_TRUE(m.flush(sink).ok());
  EXPECT_EQ(sink.names(), (std::vector<std::string>{"svc/web", "svc/web6", "slice/web-6"}));
  K8sSourceStatus st;
  m.status(st);
  EXPECT_EQ(st.ignored, 1u);
  EXPECT_TRUE(st.refused.empty());
  // The IPv6 Service has its frontend, with the slice's endpoint.
  bool found = false;
  for (const auto& f : sink.store.frontends())
    if (f.key.v6()) {
      found = true;
      EXPECT_EQ(f.key.address(), "fd00::10");
      ASSERT_EQ(f.backends.size(), 1u);
      EXPECT_EQ(f.backends[0].address(), "fd00::1");
    }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace svclb
