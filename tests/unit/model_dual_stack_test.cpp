// Dual-stack Services (issue 16): ipFamilyPolicy / ipFamilies / clusterIPs
// defaulted, validated and allocated as kube-apiserver does, and one
// frontend per ClusterIP with that family's endpoints.
#include <gtest/gtest.h>

#include "model/model.h"

namespace svclb {
namespace {

constexpr const char* kDual = "10.96.0.0/12,fd00:10:96::/112";

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

// A Service named `name` with a selector, port 80, and `spec` lines added.
std::string svc(const std::string& name, const std::string& spec = "") {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n" + spec;
}

Store store(const char* cidrs = kDual) {
  StoreConfig cfg;
  cfg.serviceCIDR = cidrs;
  return Store(cfg);
}

void applyOk(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

std::string applyErr(Store& st, const std::string& text) {
  const auto before = st.toJson();
  auto r = st.apply(parse(text));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(st.toJson(), before) << "a refused apply changed the store";
  return r.ok() ? "" : r.error().message;
}

const Service& get(const Store& st, const std::string& name) {
  return st.services().at({"default", name});
}

using Strings = std::vector<std::string>;

TEST(ModelDualStack, DefaultsFollowTheApiServer) {
  Store st = store();
  applyOk(st, svc("plain"));
  EXPECT_EQ(get(st, "plain").ipFamilyPolicy, "SingleStack");
  EXPECT_EQ(get(st, "plain").ipFamilies, Strings{"IPv4"});
  ASSERT_EQ(get(st, "plain").clusterIPs.size(), 1u);
  EXPECT_EQ(get(st, "plain").clusterIP, get(st, "plain").clusterIPs[0]);

  // PreferDualStack on a dual-stack cluster: one address per family, the
  // IPv6 one from the upper band of the /112 (first + 256).
  applyOk(st, svc("prefer", "  ipFamilyPolicy: PreferDualStack\n"));
  EXPECT_EQ(get(st, "prefer").ipFamilies, (Strings{"IPv4", "IPv6"}));
  ASSERT_EQ(get(st, "prefer").clusterIPs.size(), 2u);
  EXPECT_EQ(get(st, "prefer").clusterIPs[1], "fd00:10:96::101");

  // The IPv6 family first: the primary ClusterIP is IPv6.
  applyOk(st, svc("six", "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n"));
  EXPECT_EQ(get(st, "six").clusterIP, "fd00:10:96::102");
  EXPECT_EQ(get(st, "six").ipFamilies, (Strings{"IPv6", "IPv4"}));

  // Families inferred from the given addresses.
  applyOk(st, svc("given",
                  "  ipFamilyPolicy: RequireDualStack\n  clusterIP: fd00:10:96::20\n"
                  "  clusterIPs: [fd00:10:96::20, 10.96.0.20]\n"));
  EXPECT_EQ(get(st, "given").ipFamilies, (Strings{"IPv6", "IPv4"}));
  EXPECT_EQ(get(st, "given").clusterIPs, (Strings{"fd00:10:96::20", "10.96.0.20"}));

  // IPv6 single-stack.
  applyOk(st, svc("only6", "  ipFamilies: [IPv6]\n"));
  EXPECT_EQ(get(st, "only6").clusterIPs, Strings{"fd00:10:96::103"});
  EXPECT_EQ(get(st, "only6").ipFamilyPolicy, "SingleStack");

  // Headless without a selector: RequireDualStack, both families, no address.
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata:\n  name: bare\nspec:\n  clusterIP: None\n"
          "  ports:\n  - port: 80\n");
  EXPECT_EQ(get(st, "bare").ipFamilyPolicy, "RequireDualStack");
  EXPECT_EQ(get(st, "bare").ipFamilies, (Strings{"IPv4", "IPv6"}));
  EXPECT_EQ(get(st, "bare").clusterIPs, Strings{"None"});
}

TEST(ModelDualStack, ErrorsInTheApiServersWords) {
  Store st = store();
  EXPECT_EQ(applyErr(st, svc("web",
                             "  ipFamilyPolicy: SingleStack\n  clusterIP: 10.96.0.20\n"
                             "  clusterIPs: [10.96.0.20, fd00:10:96::20]\n")),
            "The Service \"web\" is invalid: spec.ipFamilyPolicy: Invalid value: \"SingleStack\": "
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are "
            "specified");
  EXPECT_EQ(applyErr(st, svc("web", "  ipFamilies: [IPv6]\n  clusterIP: fd00:99::1\n")),
            "The Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"fd00:99::1\"]: "
            "failed to allocate IP fd00:99::1: the provided IP (fd00:99::1) is not in the valid "
            "range. The range of valid IPs is fd00:10:96::/112");

  Store single = store("10.96.0.0/12");
  EXPECT_EQ(applyErr(single, svc("web", "  ipFamilyPolicy: RequireDualStack\n")),
            "The Service \"web\" is invalid: spec.ipFamilyPolicy: Invalid value: "
            "\"RequireDualStack\": this cluster is not configured for dual-stack services");
  EXPECT_EQ(applyErr(single, svc("web", "  ipFamilies: [IPv6]\n")),
            "The Service \"web\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not "
            "configured on this cluster");
  EXPECT_EQ(applyErr(single, svc("web", "  clusterIP: fd00:10:96::5\n")),
            "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: "
            "[\"fd00:10:96::5\"]: IPv6 is not configured on this cluster");
  // PreferDualStack on a single-stack cluster is single-stack, not an error.
  applyOk(single, svc("web", "  ipFamilyPolicy: PreferDualStack\n"));
  EXPECT_EQ(get(single, "web").ipFamilies, Strings{"IPv4"});
  EXPECT_EQ(get(single, "web").clusterIPs.size(), 1u);

  // An IPv6-only cluster.
  Store six = store("fd00:10:96::/112");
  applyOk(six, svc("web"));
  EXPECT_EQ(get(six, "web").clusterIPs, Strings{"fd00:10:96::101"});
  EXPECT_EQ(get(six, "web").ipFamilies, Strings{"IPv6"});
}

TEST(ModelDualStack, UpgradeAndDowngrade) {
  Store st = store();
  applyOk(st, svc("web"));
  const std::string v4 = get(st, "web").clusterIP;
  // Upgrade: the IPv4 address stays, an IPv6 one is added.
  applyOk(st, svc("web", "  ipFamilyPolicy: PreferDualStack\n"));
  ASSERT_EQ(get(st, "web").clusterIPs.size(), 2u);
  EXPECT_EQ(get(st, "web").clusterIPs[0], v4);
  const std::string v6 = get(st, "web").clusterIPs[1];
  // Re-applied without the fields: kept as they are.
  applyOk(st, svc("web"));
  EXPECT_EQ(get(st, "web").clusterIPs, (Strings{v4, v6}));
  // A dual-stack policy naming only the primary (address and family): the
  // allocated secondary stays, as kubectl apply's re-apply of such a
  // manifest leaves it (only SingleStack releases it, below).
  applyOk(st, svc("web", "  ipFamilyPolicy: PreferDualStack\n  clusterIP: " + v4 +
                             "\n  clusterIPs: [" + v4 + "]\n  ipFamilies: [IPv4]\n"));
  EXPECT_EQ(get(st, "web").clusterIPs, (Strings{v4, v6}));
  EXPECT_EQ(get(st, "web").ipFamilies, (Strings{"IPv4", "IPv6"}));
  // The families never swap, nor does the primary change.
  EXPECT_EQ(
      applyErr(st, svc("web", "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv6, IPv4]\n")),
      "The Service \"web\" is invalid: spec.ipFamilies[0]: Invalid value: "
      "[\"IPv6\",\"IPv4\"]: may not change once set");
  EXPECT_EQ(applyErr(st, svc("web", "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv6]\n")),
            "The Service \"web\" is invalid: spec.ipFamilies[0]: Invalid value: [\"" + v4 +
                "\",\"" + v6 + "\"]: may not change once set");
  // The primary never changes.
  EXPECT_EQ(
      applyErr(st, svc("web", "  clusterIP: 10.96.0.99\n  clusterIPs: [10.96.0.99, " + v6 + "]\n")),
      "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: "
      "[\"10.96.0.99\",\"" +
          v6 + "\"]: may not change once set");
  // Downgrade: SingleStack releases the IPv6 address, which is free again.
  applyOk(st, svc("web", "  ipFamilyPolicy: SingleStack\n"));
  EXPECT_EQ(get(st, "web").clusterIPs, Strings{v4});
  EXPECT_EQ(get(st, "web").ipFamilies, Strings{"IPv4"});
  applyOk(st, svc("other", "  ipFamilies: [IPv6]\n  clusterIP: " + v6 + "\n"));
}

TEST(ModelDualStack, OneFrontendPerFamilyWithThatFamilysEndpoints) {
  Store st = store();
  applyOk(st, svc("web",
                  "  ipFamilyPolicy: RequireDualStack\n  clusterIP: 10.96.0.20\n"
                  "  clusterIPs: [10.96.0.20, fd00:10:96::20]\n"));
  applyOk(st,
          "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-4\n"
          "  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\nendpoints:\n"
          "- addresses: [10.244.1.5]\nports:\n- port: 8080\n---\n"
          "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-6\n"
          "  annotations:\n    svclb.io/weights: \"fd00:244::5=3\"\n"
          "  labels:\n    kubernetes.io/service-name: web\naddressType: IPv6\nendpoints:\n"
          "- addresses: [\"fd00:244::5\"]\n- addresses: [\"fd00:244::6\"]\n"
          "  conditions:\n    ready: false\n    terminating: true\n    serving: true\n"
          "ports:\n- port: 8080\n");
  const auto fronts = st.frontends();
  ASSERT_EQ(fronts.size(), 2u);
  const Frontend* f4 = fronts[0].key.v6() ? &fronts[1] : &fronts[0];
  const Frontend* f6 = fronts[0].key.v6() ? &fronts[0] : &fronts[1];
  EXPECT_EQ(f4->key.address(), "10.96.0.20");
  ASSERT_EQ(f4->backends.size(), 1u);
  EXPECT_EQ(f4->backends[0].address(), "10.244.1.5");
  EXPECT_EQ(f6->key.address(), "fd00:10:96::20");
  EXPECT_EQ(f6->key.port, 80);
  ASSERT_EQ(f6->backends.size(), 2u);
  EXPECT_EQ(f6->backends[0].address(), "fd00:244::5");
  EXPECT_EQ(f6->backends[0].port, 8080);
  EXPECT_EQ(f6->backends[0].weight, 3) << "svclb.io/weights names an IPv6 endpoint";
  EXPECT_EQ(f6->backends[1].weight, 1);
  EXPECT_EQ(f6->backends[1].address(), "fd00:244::6");
  EXPECT_EQ(f6->backends[1].state, EndpointState::Terminating);
  EXPECT_EQ(f6->backends[0].ip, 0u);

  // A v1 Endpoints object's addresses go to the frontend of their family.
  applyOk(st, svc("ep", "  ipFamilyPolicy: PreferDualStack\n"));
  applyOk(st,
          "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: ep\nsubsets:\n"
          "- addresses:\n  - ip: 10.244.2.7\n  - ip: \"fd00:244::7\"\n  ports:\n  - port: 9090\n");
  const auto eps = st.frontendsOf({{"default", "ep"}});
  ASSERT_EQ(eps.size(), 2u);
  for (const auto& f : eps) {
    ASSERT_EQ(f.backends.size(), 1u);
    EXPECT_EQ(f.backends[0].v6(), f.key.v6());
    EXPECT_EQ(f.backends[0].address(), f.key.v6() ? "fd00:244::7" : "10.244.2.7");
  }
}

TEST(ModelDualStack, PersistedAndOldStateFilesRead) {
  Store st = store();
  applyOk(st, svc("web", "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv6]\n"));
  auto back = Store::fromJson(st.toJson(), StoreConfig{kDual});
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(get(*back, "web"), get(st, "web"));
  EXPECT_EQ(get(*back, "web").ipFamilies, (Strings{"IPv6", "IPv4"}));

  // A state file of an older svclb: clusterIP alone.
  nlohmann::json old = st.toJson();
  for (auto& s : old["services"]) {
    s["spec"].erase("clusterIPs");
    s["spec"].erase("ipFamilies");
    s["spec"].erase("ipFamilyPolicy");
    s["spec"]["clusterIP"] = "10.96.0.40";
  }
  auto loaded = Store::fromJson(old, StoreConfig{kDual});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(get(*loaded, "web").clusterIPs, Strings{"10.96.0.40"});
  EXPECT_EQ(get(*loaded, "web").ipFamilies, Strings{"IPv4"});
  EXPECT_EQ(get(*loaded, "web").ipFamilyPolicy, "SingleStack");
}

TEST(ModelDualStack, ServiceCidrFlag) {
  EXPECT_EQ(checkServiceCIDR("10.96.0.0/12"), "");
  EXPECT_EQ(checkServiceCIDR("10.96.0.0/12,fd00:10:96::/112"), "");
  EXPECT_EQ(checkServiceCIDR("fd00:10:96::/112,10.96.0.0/12"), "");
  EXPECT_EQ(checkServiceCIDR("fd00:10:96::/112"), "");
  EXPECT_EQ(checkServiceCIDR("10.96.0.0/12,10.97.0.0/16"),
            "two CIDRs must be of different families: one IPv4, one IPv6");
  EXPECT_EQ(checkServiceCIDR("10.96.0.0"),
            "\"10.96.0.0\" is not a CIDR (e.g. 10.96.0.0/12 or fd00:10:96::/112)");
}

}  // namespace
}  // namespace svclb
