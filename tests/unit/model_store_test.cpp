// Store: ClusterIP allocation, collisions, immutability, apply actions,
// deletes, persistence.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "model/model.h"

namespace svclb {
namespace {

namespace fs = std::filesystem;

std::vector<Object> parse(const std::string& text) {
  auto r = parseManifests(text, "t.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<Object>{};
}

std::string svcYaml(const std::string& name, const std::string& clusterIP = "", int port = 80) {
  std::string s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n";
  if (!clusterIP.empty()) s += "  clusterIP: " + clusterIP + "\n";
  s += "  ports:\n  - port: " + std::to_string(port) + "\n";
  return s;
}

std::vector<ApplyOutcome> applyOk(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<ApplyOutcome>{};
}

std::string applyErr(Store& st, const std::string& text) {
  auto r = st.apply(parse(text));
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

const Service& svc(const Store& st, const std::string& name, const std::string& ns = "default") {
  return st.services().at({ns, name});
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "svclb-model-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
};

// kube-apiserver's bands (KEP-3070): in 10.96.0.0/12 the first 256 addresses
// (10.96.0.1 .. 10.96.1.0: `kubernetes` at .1, kube-dns at .10) are kept for
// static requests; dynamic allocation starts above them.
// Spec fields svclb does not act on itself (trafficDistribution: the
// EndpointSlice controller turns it into hints) are kept: a change is
// "configured" and get -o yaml / the state file show it.
TEST(ModelStore, TrafficDistributionIsKeptAndAChangeIsAChange) {
  Store st;
  auto with = [](const std::string& td) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: td}\nspec:\n  trafficDistribution: " +
           td + "\n  ports: [{port: 80}]\n";
  };
  EXPECT_EQ(applyOk(st, with("PreferClose"))[0].action, ApplyAction::Created);
  EXPECT_EQ(applyOk(st, with("PreferSameNode"))[0].action, ApplyAction::Configured);
  EXPECT_EQ(applyOk(st, with("PreferSameNode"))[0].action, ApplyAction::Unchanged);
  EXPECT_EQ(st.toJson()["services"][0]["spec"]["trafficDistribution"], "PreferSameNode");
  EXPECT_NE(applyErr(st, with("PreferNowhere")).find("spec.trafficDistribution: Unsupported value"),
            std::string::npos);
}

// kube-apiserver's dropTypeDependentFields: a type change drops the fields
// the new type cannot have when they are as stored (a patch keeps them),
// and refuses them when the update changes them.
TEST(ModelStore, ATypeChangeDropsTheFieldsItNoLongerHasWhenUnchanged) {
  Store st;
  const std::string np =
      "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n  type: NodePort\n"
      "  ports: [{port: 80, nodePort: 30080}]\n";
  applyOk(st, np);
  ASSERT_EQ(st.services().at({"default", "np"}).externalTrafficPolicy, "Cluster");  // defaulted
  // What `kubectl patch -p '{"spec":{"type":"ClusterIP"}}'` sends: the rest as stored.
  const std::string asStored =
      "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n  type: ClusterIP\n"
      "  externalTrafficPolicy: Cluster\n  ports: [{port: 80, nodePort: 30080}]\n";
  applyOk(st, asStored);
  const Service& s = st.services().at({"default", "np"});
  EXPECT_EQ(s.type, "ClusterIP");
  EXPECT_EQ(s.ports[0].nodePort, 0);
  EXPECT_EQ(s.externalTrafficPolicy, "");
  // A nodePort the update changes is the user's: refused, as the API does.
  applyOk(st, np);
  EXPECT_NE(applyErr(st,
                     "apiVersion: v1\nkind: Service\nmetadata: {name: np}\nspec:\n"
                     "  type: ClusterIP\n  ports: [{port: 80, nodePort: 30081}]\n")
                .find("spec.ports[0].nodePort: Forbidden: may not be used when `type` is "
                      "'ClusterIP'"),
            std::string::npos);
  EXPECT_EQ(st.services().at({"default", "np"}).type, "NodePort");
}

TEST(ModelStore, AllocatesFromTheUpperBandFirst) {
  Store st;
  applyOk(st, svcYaml("a") + "---\n" + svcYaml("b"));
  EXPECT_EQ(svc(st, "a").clusterIP, "10.96.1.1");
  EXPECT_EQ(svc(st, "b").clusterIP, "10.96.1.2");
  // A freed address is reused.
  ASSERT_TRUE(st.remove("Service", "default", "a").ok());
  applyOk(st, svcYaml("c"));
  EXPECT_EQ(svc(st, "c").clusterIP, "10.96.1.1");
  // The static band stays requestable.
  applyOk(st, svcYaml("kubernetes", "10.96.0.1") + "---\n" + svcYaml("kube-dns", "10.96.0.10"));
  EXPECT_EQ(svc(st, "kubernetes").clusterIP, "10.96.0.1");
}

// The band sizes of calculateRangeOffset: min(max(16, size/16), 256), none
// for a range of 16 addresses or fewer; the lower band is used once the
// upper one is full.
TEST(ModelStore, LowerBandOnlyWhenTheUpperIsFull) {
  Store small(StoreConfig{"192.168.7.0/28"});  // 16 addresses: no band
  applyOk(small, svcYaml("a"));
  EXPECT_EQ(svc(small, "a").clusterIP, "192.168.7.1");
  Store st(StoreConfig{"192.168.8.0/27"});  // 32 addresses: 16 kept (.1-.16), upper .17-.30
  std::string all;
  for (int i = 0; i < 15; ++i) all += (i ? "---\n" : "") + svcYaml("s" + std::to_string(i));
  applyOk(st, all);
  for (int i = 0; i < 14; ++i)
    EXPECT_EQ(svc(st, "s" + std::to_string(i)).clusterIP, "192.168.8." + std::to_string(17 + i));
  EXPECT_EQ(svc(st, "s14").clusterIP, "192.168.8.1") << "upper band full: the lower band";
  Store big(StoreConfig{"10.0.0.0/24"});  // 256 / 16 = 16 kept
  applyOk(big, svcYaml("a"));
  EXPECT_EQ(svc(big, "a").clusterIP, "10.0.0.17");
  Store mid(StoreConfig{"10.1.0.0/20"});  // 4096 / 16 = 256 kept
  applyOk(mid, svcYaml("a"));
  EXPECT_EQ(svc(mid, "a").clusterIP, "10.1.1.1");
  Store wide(StoreConfig{"10.2.0.0/22"});  // 1024 / 16 = 64 kept
  applyOk(wide, svcYaml("a"));
  EXPECT_EQ(svc(wide, "a").clusterIP, "10.2.0.65");
}

TEST(ModelStore, ExplicitRequestsInTheSameApplyAreNotHandedOut) {
  Store st;
  // "a" comes first but must not take 10.96.1.1, which "b" asks for.
  applyOk(st, svcYaml("a") + "---\n" + svcYaml("b", "10.96.1.1"));
  EXPECT_EQ(svc(st, "a").clusterIP, "10.96.1.2");
  EXPECT_EQ(svc(st, "b").clusterIP, "10.96.1.1");
}

// svclbd --cluster-dns: its address is never handed out, and a Service
// holding it (kube-dns) keeps its other ports but not port 53, which is
// svclbd's own DNS server.
TEST(ModelStore, ClusterDNSAddressIsReservedAndItsPort53Unbalanced) {
  StoreConfig cfg{"192.168.7.0/29"};  // .1 - .6, no band
  cfg.clusterDNS = (192u << 24) | (168u << 16) | (7u << 8) | 1u;
  Store st(cfg);
  applyOk(st, svcYaml("a"));
  EXPECT_EQ(svc(st, "a").clusterIP, "192.168.7.2") << ".1 is the DNS address";
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata:\n  name: kube-dns\nspec:\n"
          "  clusterIP: 192.168.7.1\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n"
          "  - name: dns-tcp\n    port: 53\n  - name: metrics\n    port: 9153\n");
  std::vector<std::pair<std::string, uint16_t>> keys;
  for (const auto& f : st.frontends()) keys.emplace_back(formatIPv4(f.key.vip), f.key.port);
  EXPECT_EQ(keys, (std::vector<std::pair<std::string, uint16_t>>{{"192.168.7.1", 9153},
                                                                 {"192.168.7.2", 80}}));
  Store plain{StoreConfig{"192.168.7.0/29"}};
  applyOk(plain, svcYaml("a"));
  EXPECT_EQ(svc(plain, "a").clusterIP, "192.168.7.1");
}

// The same for an IPv6 cluster DNS address (--cluster-dns ...,IPv6).
TEST(ModelStore, IPv6ClusterDNSAddressIsReservedAndItsPort53Unbalanced) {
  StoreConfig cfg{"fd00:10:96::/125"};  // ::1 - ::7
  Ip6 dns{};
  ASSERT_EQ(inet_pton(AF_INET6, "fd00:10:96::1", dns.data()), 1);
  cfg.clusterDNS6 = dns;
  Store st(cfg);
  applyOk(st, svcYaml("a"));
  EXPECT_EQ(svc(st, "a").clusterIP, "fd00:10:96::2") << "::1 is the DNS address";
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata:\n  name: kube-dns\nspec:\n"
          "  clusterIP: fd00:10:96::1\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n"
          "  - name: dns-tcp\n    port: 53\n  - name: metrics\n    port: 9153\n");
  std::vector<std::pair<std::string, uint16_t>> keys;
  for (const auto& f : st.frontends()) keys.emplace_back(f.key.address(), f.key.port);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::pair<std::string, uint16_t>>{{"fd00:10:96::1", 9153},
                                                                 {"fd00:10:96::2", 80}}));
  Store plain{StoreConfig{"fd00:10:96::/125"}};
  applyOk(plain, svcYaml("a"));
  EXPECT_EQ(svc(plain, "a").clusterIP, "fd00:10:96::1");
}

TEST(ModelStore, SmallRangeFillsUpAndSkipsBroadcast) {
  Store st(StoreConfig{"192.168.7.0/30"});  // usable: .1 and .2
  applyOk(st, svcYaml("a") + "---\n" + svcYaml("b"));
  EXPECT_EQ(svc(st, "b").clusterIP, "192.168.7.2");
  EXPECT_EQ(applyErr(st, svcYaml("c")),
            "Internal error occurred: failed to allocate a serviceIP: range is full");
  EXPECT_EQ(applyErr(st, svcYaml("d", "192.168.7.3")),
            "The Service \"d\" is invalid: spec.clusterIPs: Invalid value: [\"192.168.7.3\"]: "
            "failed to allocate IP 192.168.7.3: the provided IP (192.168.7.3) is not in the valid "
            "range. The range of valid IPs is 192.168.7.0/30");
  EXPECT_EQ(st.services().size(), 2u);
}

TEST(ModelStore, CollisionsAreAllOrNothing) {
  Store st;
  applyOk(st, svcYaml("a", "10.96.0.10"));
  const auto before = st.toJson();
  EXPECT_EQ(applyErr(st, svcYaml("new") + "---\n" + svcYaml("b", "10.96.0.10")),
            "The Service \"b\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.10\"]: "
            "failed to allocate IP 10.96.0.10: provided IP is already allocated");
  EXPECT_EQ(st.toJson(), before);
  // Within one apply.
  EXPECT_EQ(applyErr(st, svcYaml("c", "10.96.0.20") + "---\n" + svcYaml("d", "10.96.0.20")),
            "The Service \"d\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.20\"]: "
            "failed to allocate IP 10.96.0.20: provided IP is already allocated");
  EXPECT_EQ(st.toJson(), before);
  // Every failing object is reported.
  std::string err = applyErr(st, svcYaml("e", "1.1.1.1") + "---\n" + svcYaml("f", "10.96.0.10"));
  EXPECT_NE(err.find("The Service \"e\" is invalid"), std::string::npos) << err;
  EXPECT_NE(err.find("\nThe Service \"f\" is invalid"), std::string::npos) << err;
  EXPECT_EQ(st.toJson(), before);
}

TEST(ModelStore, ClusterIPIsImmutableAndKeptWhenOmitted) {
  Store st;
  applyOk(st, svcYaml("web", "10.96.0.10"));
  const std::string uid = svc(st, "web").meta.uid;
  const std::string created = svc(st, "web").meta.creationTimestamp;
  EXPECT_FALSE(uid.empty());
  EXPECT_FALSE(created.empty());

  EXPECT_EQ(applyErr(st, svcYaml("web", "10.96.0.11")),
            "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: "
            "[\"10.96.0.11\"]: may not change once set");
  EXPECT_EQ(applyErr(st, svcYaml("web", "None")),
            "The Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: [\"None\"]: "
            "may not change once set");

  // Omitting clusterIP keeps it: same spec otherwise -> unchanged.
  auto r = applyOk(st, svcYaml("web"));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].action, ApplyAction::Unchanged);
  EXPECT_EQ(describeOutcome(r[0]), "service/web unchanged");
  EXPECT_EQ(svc(st, "web").clusterIP, "10.96.0.10");

  // A real change -> configured, identity kept.
  r = applyOk(st, svcYaml("web", "", 8080));
  EXPECT_EQ(r[0].action, ApplyAction::Configured);
  EXPECT_EQ(describeOutcome(r[0]), "service/web configured");
  EXPECT_EQ(svc(st, "web").clusterIP, "10.96.0.10");
  EXPECT_EQ(svc(st, "web").meta.uid, uid);
  EXPECT_EQ(svc(st, "web").meta.creationTimestamp, created);
}

TEST(ModelStore, SliceAddressTypeIsImmutable) {
  Store st;
  const std::string v4 = R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
)";
  applyOk(st, v4);
  std::string v6 = v4;
  v6.replace(v6.find("IPv4"), 4, "IPv6");
  v6.replace(v6.find("10.0.0.1"), 8, "fd00::1");
  EXPECT_EQ(applyErr(st, v6),
            "The EndpointSlice \"web-1\" is invalid: addressType: Invalid value: \"IPv6\": field "
            "is immutable");
  // Deleted, it may come back as another type.
  ASSERT_TRUE(st.remove("EndpointSlice", "default", "web-1").ok());
  applyOk(st, v6);
}

TEST(ModelStore, HeadlessAndExternalNameGetNoAddress) {
  Store st;
  applyOk(st, R"(apiVersion: v1
kind: Service
metadata: {name: h}
spec: {clusterIP: None}
---
apiVersion: v1
kind: Service
metadata: {name: x}
spec: {type: ExternalName, externalName: db.example.com}
)");
  EXPECT_EQ(svc(st, "h").clusterIP, "None");
  EXPECT_EQ(svc(st, "x").clusterIP, "");
  // Re-applying the headless one without clusterIP keeps it headless.
  auto r =
      applyOk(st, "apiVersion: v1\nkind: Service\nmetadata: {name: h}\nspec: {clusterIP: None}\n");
  EXPECT_EQ(r.at(0).action, ApplyAction::Unchanged);
  // ExternalName -> ClusterIP allocates; back to ExternalName releases.
  applyOk(st, svcYaml("x"));
  EXPECT_EQ(svc(st, "x").clusterIP, "10.96.1.1");
  applyOk(st,
          "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {type: ExternalName, "
          "externalName: db.example.com}\n");
  EXPECT_EQ(svc(st, "x").clusterIP, "");
  applyOk(st, svcYaml("y"));
  EXPECT_EQ(svc(st, "y").clusterIP, "10.96.1.1");
}

TEST(ModelStore, ActionsForEveryKind) {
  Store st;
  const std::string text = R"(apiVersion: v1
kind: Service
metadata: {name: web, labels: {a: b}}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 8080}]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
ports: [{port: 8080}]
)";
  auto r = applyOk(st, text);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(describeOutcome(r[0]), "service/web created");
  EXPECT_EQ(describeOutcome(r[1]), "endpoints/web created");
  EXPECT_EQ(describeOutcome(r[2]), "endpointslice.discovery.k8s.io/web-abc created");
  r = applyOk(st, text);
  for (const auto& o : r) EXPECT_EQ(o.action, ApplyAction::Unchanged);

  // Labels and annotations count as changes.
  std::string relabeled = text;
  relabeled.replace(relabeled.find("{a: b}"), 6, "{a: c}");
  r = applyOk(st, relabeled);
  EXPECT_EQ(r[0].action, ApplyAction::Configured);
  EXPECT_EQ(r[1].action, ApplyAction::Unchanged);
  std::string moved = text;
  moved.replace(moved.find("[{ip: 10.0.0.1}]"), 16, "[{ip: 10.0.0.2}]");
  r = applyOk(st, moved);
  EXPECT_EQ(describeOutcome(r[1]), "endpoints/web configured");
}

TEST(ModelStore, RemoveInKubectlWords) {
  Store st;
  applyOk(st, svcYaml("web"));
  auto nf = st.remove("Endpoints", "default", "web");
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().message, "Error from server (NotFound): endpoints \"web\" not found");
  EXPECT_EQ(nf.error().code, ENOENT);
  auto nfs = st.remove("EndpointSlice", "default", "web-abc");
  EXPECT_EQ(nfs.error().message,
            "Error from server (NotFound): endpointslices.discovery.k8s.io \"web-abc\" not found");
  EXPECT_EQ(st.remove("Service", "other", "web").error().message,
            "Error from server (NotFound): services \"web\" not found");
  EXPECT_FALSE(st.remove("Pod", "default", "web").ok());

  auto r = st.remove("svc", "default", "web");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(describeOutcome(r->at(0)), "service \"web\" deleted");
  EXPECT_TRUE(st.services().empty());
}

TEST(ModelStore, RemoveAllIsAllOrNothingAndKeepsEndpoints) {
  Store st;
  const std::string text = svcYaml("web") + R"(---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 8080}]}]
)";
  applyOk(st, text);
  const auto before = st.toJson();
  auto bad = st.removeAll(parse(svcYaml("web") + "---\n" + svcYaml("ghost")));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "Error from server (NotFound): services \"ghost\" not found");
  EXPECT_EQ(st.toJson(), before);

  // Deleting the Service leaves its Endpoints: only what is named goes.
  auto r = st.removeAll(parse(svcYaml("web") + "---\n" + svcYaml("web")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(st.services().empty());
  EXPECT_EQ(st.endpoints().size(), 1u);

  r = st.removeAll(parse(text.substr(text.find("---"))));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(describeOutcome(r->at(0)), "endpoints \"web\" deleted");
  EXPECT_EQ(
      describeOutcome(ApplyOutcome{"EndpointSlice", "default", "web-abc", ApplyAction::Deleted}),
      "endpointslice.discovery.k8s.io \"web-abc\" deleted");
}

// kubectl delete -f: with `missing`, what exists goes and the rest is named.
TEST(ModelStore, RemoveAllWithMissingDeletesWhatExists) {
  Store st;
  applyOk(st, svcYaml("web") + "---\n" + svcYaml("api"));
  std::vector<ObjectRef> refs{{"Service", "default", "web"},
                              {"Service", "default", "ghost"},
                              {"Service", "default", "api"}};
  std::vector<std::string> missing;
  auto r = st.removeAll(refs, nullptr, &missing);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 2u);
  EXPECT_TRUE(st.services().empty());
  EXPECT_EQ(missing,
            std::vector<std::string>{"Error from server (NotFound): services \"ghost\" not found"});
  // Without it, one missing object still fails the whole.
  applyOk(st, svcYaml("web"));
  EXPECT_FALSE(st.removeAll(refs).ok());
  EXPECT_EQ(st.services().size(), 1u);
}

TEST(ModelStore, SaveLoadRoundTrip) {
  TempDir tmp;
  const std::string path = (tmp.path / "state" / "nested" / "store.json").string();
  Store st;
  applyOk(st, svcYaml("web") + "---\n" + svcYaml("api", "10.96.0.50") + R"(---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], conditions: {ready: false, terminating: true}}]
ports: [{port: 8080}]
)");
  ASSERT_TRUE(st.save(path).ok());

  struct stat sb {};
  ASSERT_EQ(::stat((tmp.path / "state").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  // No temporary file left behind.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);

  auto loaded = Store::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->toJson(), st.toJson());
  EXPECT_EQ(loaded->frontends(), st.frontends());
  EXPECT_EQ(loaded->toJson()["version"], 1);

  // Saving again over the old file replaces it.
  ASSERT_TRUE(loaded->remove("Service", "default", "api").ok());
  ASSERT_TRUE(loaded->save(path).ok());
  auto again = Store::load(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->services().size(), 1u);
  // Allocation continues from the loaded state.
  applyOk(*again, svcYaml("next"));
  EXPECT_EQ(svc(*again, "next").clusterIP, "10.96.1.2");
}

TEST(ModelStore, MissingFileIsEmptyStore) {
  TempDir tmp;
  auto st = Store::load((tmp.path / "nope.json").string());
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->services().empty());
  EXPECT_TRUE(st->endpoints().empty());
  EXPECT_TRUE(st->slices().empty());
}

TEST(ModelStore, CorruptFileNamesThePath) {
  TempDir tmp;
  const std::string path = (tmp.path / "store.json").string();
  const char* contents[] = {
      "{not json",
      "",
      R"({"version": 2})",
      R"({"version": 1, "services": [{"apiVersion": "v1", "kind": "Service", "spec": {"ports": "x"}}]})",
      R"({"version": 1, "services": [{"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "a"}}]})",
  };
  for (const char* c : contents) {
    std::ofstream(path) << c;
    auto st = Store::load(path);
    ASSERT_FALSE(st.ok()) << c;
    EXPECT_NE(st.error().message.find("corrupt state file " + path), std::string::npos)
        << st.error().message;
  }
}

TEST(ModelStore, SaveFailsCleanlyWhenDirIsAFile) {
  TempDir tmp;
  std::ofstream(tmp.path / "file") << "x";
  Store st;
  Status s = st.save((tmp.path / "file" / "store.json").string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("file"), std::string::npos) << s.error().message;
}

TEST(ModelStore, NamespacesAreSeparate) {
  Store st;
  applyOk(st, svcYaml("web") +
                  "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, "
                  "namespace: prod}\nspec: {ports: [{port: 80}]}\n");
  EXPECT_EQ(st.services().size(), 2u);
  EXPECT_NE(svc(st, "web").clusterIP, svc(st, "web", "prod").clusterIP);
}

}  // namespace
}  // namespace svclb
