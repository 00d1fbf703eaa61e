// The commit path (loader/committer.h) as a StateSink, over in-memory maps:
// a full replace (a relist, as the Kubernetes source will send after a
// watch restarts) converges the store, the maps and the state file exactly
// to the listed objects, with no orphan left; a change that fails leaves all
// three as they were. The svcctl source (loader/svcctl_source.h) turns its
// requests into the same sink calls.
#include "loader/committer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "loader/svcctl_source.h"
#include "model/model.h"
#include "temp_dir.h"

namespace svclb {
namespace {

namespace fs = std::filesystem;

struct Dir : testing_util::TempDir {
  Dir() : TempDir("svclb-committer") {}
};

// The maps as the Syncer would leave them: the actual state after each plan.
struct FakeMaps final : MapSync {
  ActualState actual{{}, IdPool(64), IdPool(256)};
  int applies = 0;
  bool failNext = false;
  Status adopt() override { return {}; }
  Result<Plan> plan(const std::vector<Frontend>& desired) const override {
    return planSync(actual, desired);
  }
  Result<Plan> planDelta(const std::vector<Frontend>& changed,
                         const std::vector<FrontendKey>& removed) const override {
    return planSyncDelta(actual, changed, removed);
  }
  Status apply(Plan plan) override {
    if (failNext) {
      failNext = false;
      return Error{EIO, "injected map write failure"};
    }
    ++applies;
    std::move(plan).mergeInto(actual);
    return {};
  }
  // The live frontends (a deleted TCP Service's stays retired while its
  // endpoints are held for their connections: not a Service any more).
  std::set<FrontendKey> keys() const {
    std::set<FrontendKey> out;
    for (const auto& [k, f] : actual.frontends)
      if (!f.retired) out.insert(k);
    return out;
  }
};

std::vector<Object> objects(const std::string& yaml) {
  auto objs = parseManifests(yaml, "t.yaml");
  EXPECT_TRUE(objs.ok()) << objs.error().message;
  return objs.ok() ? *objs : std::vector<Object>{};
}

std::string svc(const std::string& name, const std::string& ip, int port = 80) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  clusterIP: " + ip + "\n  ports:\n  - port: " + std::to_string(port) +
         "\n---\n";
}

std::string ep(const std::string& name, const std::string& ip) {
  return "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: " + name +
         "\nsubsets:\n- addresses:\n  - ip: " + ip + "\n  ports:\n  - port: 8080\n---\n";
}

std::string slice(const std::string& name, const std::string& service, const std::string& ip) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: " + name +
         "\n  labels:\n    kubernetes.io/service-name: " + service +
         "\naddressType: IPv4\nendpoints:\n- addresses: [" + ip +
         "]\n  conditions: {ready: true}\nports:\n- port: 8080\n---\n";
}

const std::string kPool =
    "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: pool\nspec:\n"
    "  addresses: [192.168.10.0/24]\n---\n";

std::set<std::string> names(const auto& m) {
  std::set<std::string> out;
  for (const auto& [k, v] : m) out.insert(k.first + "/" + k.second);
  return out;
}

// The frontends of `s` as keys: what the maps must hold.
std::set<FrontendKey> frontendKeys(const Store& s) {
  std::set<FrontendKey> out;
  for (const auto& f : s.frontends()) out.insert(f.key);
  return out;
}

struct CommitterTest : ::testing::Test {
  Dir dir;
  FakeMaps maps;
  CommitterConfig cfg{(dir.path / "state.json").string(), {}, "node-a"};
  Committer c{cfg, maps};
  int changes = 0;
  void SetUp() override {
    c.onChange([this](const Store&) { ++changes; });
    ASSERT_TRUE(c.load().ok());
    ASSERT_TRUE(c.restore({}).ok());
  }
  // What a restart would read back.
  Store reloaded() {
    StateFile f(cfg.statePath);
    auto s = f.load(cfg.store);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : Store{};
  }
};

TEST_F(CommitterTest, ReplaceConvergesToTheListedObjectsAndNothingElse) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + svc("b", "10.96.0.12") +
                              svc("c", "10.96.0.13") + ep("a", "10.0.0.1") + ep("b", "10.0.0.2") +
                              slice("c-1", "c", "10.0.0.3") + kPool))
                  .ok());
  ASSERT_EQ(maps.keys(), frontendKeys(c.store()));
  ASSERT_EQ(maps.keys().size(), 3u);

  // The relist: a changed, b and c gone, d new; Endpoints a only; slice d-1.
  auto r = c.replace({"Service", "Endpoints", "EndpointSlice"},
                     objects(svc("a", "10.96.0.11", 81) + svc("d", "10.96.0.14") +
                             ep("a", "10.0.0.9") + slice("d-1", "d", "10.0.0.4")));
  ASSERT_TRUE(r.ok()) << r.error().message;

  EXPECT_EQ(names(c.store().services()), (std::set<std::string>{"default/a", "default/d"}));
  EXPECT_EQ(names(c.store().endpoints()), (std::set<std::string>{"default/a"}));
  EXPECT_EQ(names(c.store().slices()), (std::set<std::string>{"default/d-1"}));
  // A kind outside the resync is left alone.
  EXPECT_EQ(names(c.store().pools()), (std::set<std::string>{"default/pool"}));
  EXPECT_EQ(c.store().services().at({"default", "a"}).ports.at(0).port, 81);

  std::set<std::string> said;
  for (const auto& o : *r) said.insert(describeOutcome(o));
  EXPECT_EQ(said, (std::set<std::string>{
                      "service \"b\" deleted", "service \"c\" deleted", "endpoints \"b\" deleted",
                      "endpointslice.discovery.k8s.io \"c-1\" deleted", "service/a configured",
                      "service/d created", "endpoints/a configured",
                      "endpointslice.discovery.k8s.io/d-1 created"}));

  // The maps hold exactly the store's frontends, with the listed backends.
  EXPECT_EQ(maps.keys(), frontendKeys(c.store()));
  std::map<FrontendKey, size_t> backends;
  for (const auto& [k, f] : maps.actual.frontends)
    for (const auto& b : f.backends) backends[k] += b.value.state != BE_STATE_REMOVED;
  for (const auto& f : c.store().frontends()) EXPECT_EQ(backends[f.key], f.backends.size());
  EXPECT_EQ(maps.keys().size(), 2u);

  // And so does the state file.
  Store back = reloaded();
  EXPECT_EQ(names(back.services()), names(c.store().services()));
  EXPECT_EQ(names(back.endpoints()), names(c.store().endpoints()));
  EXPECT_EQ(names(back.slices()), names(c.store().slices()));
  EXPECT_EQ(names(back.pools()), names(c.store().pools()));
  EXPECT_EQ(back.services().at({"default", "a"}).ports.at(0).port, 81);
}

TEST_F(CommitterTest, ReplaceWithNothingListedDeletesEveryObjectOfThoseKinds) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + ep("a", "10.0.0.1") + kPool)).ok());
  auto r = c.replace({"Service", "Endpoints"}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(c.store().services().empty());
  EXPECT_TRUE(c.store().endpoints().empty());
  EXPECT_EQ(c.store().pools().size(), 1u);
  EXPECT_TRUE(maps.keys().empty());
  EXPECT_TRUE(reloaded().services().empty());
}

TEST_F(CommitterTest, AnUnchangedRelistChangesNothing) {
  const std::string all = svc("a", "10.96.0.11") + ep("a", "10.0.0.1");
  ASSERT_TRUE(c.apply(objects(all)).ok());
  const auto uid = c.store().services().at({"default", "a"}).meta.uid;
  auto r = c.replace({"Service", "Endpoints"}, objects(all));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  for (const auto& o : *r) EXPECT_EQ(o.action, ApplyAction::Unchanged) << describeOutcome(o);
  EXPECT_EQ(c.store().services().at({"default", "a"}).meta.uid, uid);
  EXPECT_EQ(maps.keys(), frontendKeys(c.store()));
}

TEST_F(CommitterTest, AListedObjectMayTakeWhatAnOrphanHeld) {
  ASSERT_TRUE(c.apply(objects(svc("old", "10.96.0.11"))).ok());
  // "new" asks for old's ClusterIP: possible only once old is gone.
  auto r = c.replace({"Service"}, objects(svc("new", "10.96.0.11")));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(names(c.store().services()), (std::set<std::string>{"default/new"}));
  EXPECT_EQ(c.store().services().at({"default", "new"}).clusterIP, "10.96.0.11");
}

TEST_F(CommitterTest, AFailedReplaceChangesNothing) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + svc("b", "10.96.0.12"))).ok());
  const int before = changes;
  const auto keys = maps.keys();
  // c collides with a's ClusterIP: the whole resync is refused, b stays.
  auto r = c.replace({"Service"}, objects(svc("a", "10.96.0.11") + svc("c", "10.96.0.11")));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("provided IP is already allocated"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(names(c.store().services()), (std::set<std::string>{"default/a", "default/b"}));
  EXPECT_EQ(maps.keys(), keys);
  EXPECT_EQ(changes, before);
  EXPECT_EQ(names(reloaded().services()), (std::set<std::string>{"default/a", "default/b"}));

  // A kind outside the resync's, or one svclb does not know: refused.
  EXPECT_FALSE(c.replace({"Service"}, objects(ep("a", "10.0.0.1"))).ok());
  EXPECT_FALSE(c.replace({"Pod"}, {}).ok());
  EXPECT_EQ(names(c.store().services()), (std::set<std::string>{"default/a", "default/b"}));
}

TEST_F(CommitterTest, AFailedMapWriteRestoresTheStoreAndTheStateFile) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11"))).ok());
  maps.failNext = true;
  auto r = c.replace({"Service"}, objects(svc("b", "10.96.0.12")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "error: writing the dataplane maps failed: injected map write failure; the previous "
            "state was restored");
  EXPECT_EQ(names(c.store().services()), (std::set<std::string>{"default/a"}));
  EXPECT_EQ(maps.keys(), frontendKeys(c.store()));
  EXPECT_EQ(names(reloaded().services()), (std::set<std::string>{"default/a"}));
}

// Dry runs (svcctl --dry-run): the real answer, and nothing changed: the
// store, the maps, the state file, the change listeners.
TEST_F(CommitterTest, DryRunsAnswerAndChangeNothing) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + ep("a", "10.0.0.1") + kPool)).ok());
  const int before = changes;
  const auto keys = maps.keys();
  const nlohmann::json stored = c.store().toJson();
  auto created = c.tryApply(objects(svc("b", "10.96.0.12") + svc("a", "10.96.0.11", 81)));
  ASSERT_TRUE(created.ok()) << created.error().message;
  ASSERT_EQ(created->size(), 2u);
  EXPECT_EQ(describeOutcome((*created)[0]), "service/b created");
  EXPECT_EQ(describeOutcome((*created)[1]), "service/a configured");
  auto refused = c.tryApply(objects(svc("c", "10.96.0.11")));  // a's ClusterIP
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("provided IP is already allocated"), std::string::npos);
  std::vector<std::string> missing;
  auto removed = c.tryRemove({{"Service", "default", "a"}, {"Service", "default", "zz"}}, &missing);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ(describeOutcome(removed->front()), "service \"a\" deleted");
  EXPECT_EQ(missing,
            (std::vector<std::string>{"Error from server (NotFound): services \"zz\" not found"}));
  EXPECT_EQ(c.store().toJson(), stored);
  EXPECT_EQ(maps.keys(), keys);
  EXPECT_EQ(changes, before);
  EXPECT_EQ(reloaded().toJson(), stored);
  // The real apply after a dry run: the same answer.
  auto real = c.apply(objects(svc("b", "10.96.0.12")));
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(describeOutcome(real->front()), "service/b created");
}

// A dry run plans the map writes too: a change the maps cannot hold (here
// FakeMaps' 64 service ids) is refused as the real change is, and the dry
// run still changes nothing.
TEST_F(CommitterTest, DryRunsRefuseWhatTheMapsCannotHold) {
  std::string many;
  for (int i = 0; i < 60; ++i) many += svc(fmt::format("s{}", i), fmt::format("10.96.1.{}", i + 1));
  ASSERT_TRUE(c.apply(objects(many)).ok());
  const nlohmann::json stored = c.store().toJson();
  const auto keys = maps.keys();
  const int applies = maps.applies;
  std::string more;
  for (int i = 60; i < 70; ++i)
    more += svc(fmt::format("s{}", i), fmt::format("10.96.1.{}", i + 1));
  auto dry = c.tryApply(objects(more));
  ASSERT_FALSE(dry.ok());
  EXPECT_NE(dry.error().message.find("nothing was applied"), std::string::npos)
      << dry.error().message;
  EXPECT_EQ(c.store().toJson(), stored);
  EXPECT_EQ(maps.keys(), keys);
  EXPECT_EQ(maps.applies, applies);
  auto real = c.apply(objects(more));
  ASSERT_FALSE(real.ok());
  EXPECT_EQ(real.error().message, dry.error().message);
  EXPECT_EQ(c.store().toJson(), stored);
  // What fits still passes a dry run, and a dry delete plans too.
  auto fits = c.tryApply(objects(svc("s60", "10.96.1.61")));
  ASSERT_TRUE(fits.ok()) << fits.error().message;
  EXPECT_EQ(describeOutcome(fits->front()), "service/s60 created");
  auto del = c.tryRemove({{"Service", "default", "s0"}}, nullptr);
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_EQ(c.store().toJson(), stored);
  EXPECT_EQ(maps.applies, applies);
}

// Stored objects that fail today's validation (svcctl status lists them):
// found at load, dropped once a change fixes or deletes them.
TEST_F(CommitterTest, InvalidStoredObjectsAreNamedUntilFixedOrDeleted) {
  ASSERT_TRUE(
      c.apply(objects(svc("a", "10.96.0.11") + svc("b", "10.96.0.12") + ep("a", "10.0.0.1"))).ok());
  EXPECT_TRUE(c.invalidStored().empty());
  nlohmann::json j = c.store().toJson();
  for (auto& s : j["services"]) s["spec"]["ports"][0]["port"] = 70000;  // a and b
  { std::ofstream(cfg.statePath) << j.dump() << "\n"; }
  Committer again{cfg, maps};
  ASSERT_TRUE(again.load().ok());
  ASSERT_EQ(again.invalidStored().size(), 2u);
  EXPECT_EQ(
      again.invalidStored()[0].rfind("default: The Service \"a\" is invalid: spec.ports[0]", 0), 0u)
      << again.invalidStored()[0];
  ASSERT_TRUE(again.restore({}).ok());
  // A change elsewhere keeps both named; fixing a and deleting b clears them.
  ASSERT_TRUE(again.apply(objects(ep("b", "10.0.0.2"))).ok());
  EXPECT_EQ(again.invalidStored().size(), 2u);
  ASSERT_TRUE(again.apply(objects(svc("a", "10.96.0.11"))).ok());
  ASSERT_EQ(again.invalidStored().size(), 1u);
  EXPECT_EQ(again.invalidStored()[0].rfind("default: The Service \"b\"", 0), 0u);
  ASSERT_TRUE(again.remove({{"Service", "default", "b"}}).ok());
  EXPECT_TRUE(again.invalidStored().empty());
}

TEST_F(CommitterTest, RemoveNamesObjectsAndIsAllOrNothing) {
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + svc("b", "10.96.0.12"))).ok());
  auto missing = c.remove({{"Service", "default", "a"}, {"svc", "default", "zz"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "Error from server (NotFound): services \"zz\" not found");
  EXPECT_EQ(c.store().services().size(), 2u);
  auto r = c.remove({{"svc", "", "a"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(describeOutcome(r->front()), "service \"a\" deleted");
  EXPECT_EQ(maps.keys(), frontendKeys(c.store()));
}

// A sink that records what a source asks of it.
struct RecordingSink final : StateSink {
  std::vector<std::string> calls;
  Result<Outcomes> apply(std::vector<Object> objs) override {
    calls.push_back("apply " + std::to_string(objs.size()));
    return Outcomes{};
  }
  Result<Outcomes> remove(const std::vector<ObjectRef>& refs,
                          std::vector<std::string>* = nullptr) override {
    std::string s = "remove";
    for (const auto& r : refs) s += " " + r.kind + ":" + r.ns + "/" + r.name;
    calls.push_back(s);
    return Outcomes{{"Service", "default", "web", ApplyAction::Deleted}};
  }
  Result<Outcomes> replace(const std::vector<std::string>&, std::vector<Object>) override {
    calls.push_back("replace");
    return Outcomes{};
  }
};

// The cluster DNS zone follows onServicesChanged: every successful change
// names the Services whose records may differ (the Service itself, the one
// an Endpoints or EndpointSlice belongs to, before and after), and a failed
// one names none.
TEST_F(CommitterTest, ServicesChangedNamesWhatEachChangeTouched) {
  std::vector<std::set<std::string>> calls;
  c.onServicesChanged([&](const Store&, const std::set<Store::Key>& touched) {
    std::set<std::string> n;
    for (const auto& [ns, name] : touched) n.insert(ns + "/" + name);
    calls.push_back(n);
  });
  ASSERT_TRUE(c.apply(objects(svc("a", "10.96.0.11") + svc("b", "10.96.0.12"))).ok());
  ASSERT_TRUE(c.apply(objects(slice("x-1", "a", "10.0.0.1"))).ok());
  ASSERT_TRUE(c.apply(objects(slice("x-1", "b", "10.0.0.1"))).ok());  // moves to b
  ASSERT_TRUE(c.apply(objects(ep("b", "10.0.0.2"))).ok());
  ASSERT_TRUE(c.remove({ObjectRef{"Service", "default", "a"}}).ok());
  maps.failNext = true;
  ASSERT_FALSE(c.apply(objects(svc("d", "10.96.0.14"))).ok());
  ASSERT_TRUE(c.replace({"Service"}, objects(svc("b", "10.96.0.12"))).ok());
  const std::vector<std::set<std::string>> want{{"default/a", "default/b"},
                                                {"default/a"},
                                                {"default/a", "default/b"},
                                                {"default/b"},
                                                {"default/a"},
                                                {"default/b"}};
  EXPECT_EQ(calls, want);
}

TEST(SvcctlSource, RequestsBecomeSinkCalls) {
  RecordingSink sink;
  SvcctlSource src;
  ASSERT_TRUE(src.start(sink).ok());
  const std::string two = svc("a", "10.96.0.11") + ep("a", "10.0.0.1");
  ASSERT_TRUE(src.handle({{"op", "apply"}, {"manifest", two}, {"source", "t.yaml"}}).ok());
  ASSERT_TRUE(src.handle({{"op", "delete"}, {"manifest", two}}).ok());
  auto byName = src.handle({{"op", "delete"}, {"kind", "svc"}, {"name", "web"}});
  ASSERT_TRUE(byName.ok());
  EXPECT_EQ(sink.calls,
            (std::vector<std::string>{"apply 2", "remove Service:default/a Endpoints:default/a",
                                      "remove svc:default/web"}));
  // Nothing to apply: an error, and the sink is not asked.
  auto empty = src.handle({{"op", "apply"}, {"manifest", ""}});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "error: no objects passed to apply");
  // A field of the wrong type: an error, not an exception.
  auto bad = src.handle({{"op", "delete"}, {"kind", 5}, {"name", "web"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("error: malformed request: ", 0), 0u) << bad.error().message;
  EXPECT_EQ(sink.calls.size(), 3u);
}

// The API server's warnings come back with the change, as kubectl v1.37
// prints them against kube-apiserver (k8s.api_parity compares the two):
// per object, v1 Endpoints' deprecation on any request for one, then the
// strategy's on a write; none on an unchanged object's, none of a write's
// on a client dry run, each line once per command (the CLI's warnOnce).
TEST_F(CommitterTest, SvcctlRepliesCarryTheApiServersWarnings) {
  SvcctlSource src;
  ASSERT_TRUE(src.start(c).ok());
  const std::string extBody =
      "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec:\n  clusterIP: 10.96.0.20\n"
      "  ports: [{port: 80}]\n  externalIPs: [192.168.50.10]\n";
  const std::string ext = extBody + "---\n";
  const std::string manifest = ext + ep("ext", "10.0.0.1");
  const std::string extWarn =
      "Warning: spec.externalIPs is deprecated and may no longer be implemented in some clusters";
  const std::string epWarn =
      "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice";
  using Lines = std::vector<std::vector<std::string>>;
  auto first = src.handle({{"op", "apply"}, {"manifest", manifest}});
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->results.size(), 2u);
  EXPECT_EQ(first->results[1].kind, "Endpoints");
  EXPECT_EQ(first->warnings, (Lines{{extWarn}, {epWarn}}));
  EXPECT_TRUE(first->skipped.empty());
  EXPECT_NE(
      changeReplyText(*first).find("\"namespace\":\"default\",\"warnings\":[\"" + extWarn + "\"]}"),
      std::string::npos)
      << changeReplyText(*first);
  auto again = src.handle({{"op", "apply"}, {"manifest", manifest}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->warnings, (Lines{{}, {epWarn}}));
  // A change seen through a client dry run: the Endpoints' GET only.
  const std::string moved = ext + ep("ext", "10.0.0.2");
  auto client =
      src.handle({{"op", "apply"}, {"manifest", moved}, {"dryRun", true}, {"clientDryRun", true}});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->warnings, (Lines{{}, {epWarn}}));
  auto server = src.handle(
      {{"op", "apply"}, {"manifest", extBody + "  sessionAffinity: ClientIP\n"}, {"dryRun", true}});
  ASSERT_TRUE(server.ok());
  EXPECT_EQ(server->warnings, (Lines{{extWarn}}));
  // A patch, even one that changes nothing, is an update the API warns on.
  auto patched = src.handle({{"op", "patch"},
                             {"kind", "Service"},
                             {"name", "ext"},
                             {"patchType", "merge"},
                             {"patch", R"({"spec":{"ports":[{"port":80}]}})"}});
  ASSERT_TRUE(patched.ok()) << patched.error().message;
  EXPECT_EQ(patched->skipped, (std::vector<std::string>{extWarn}));
  auto clientDelete = src.handle(
      {{"op", "delete"}, {"manifest", manifest}, {"dryRun", true}, {"clientDryRun", true}});
  ASSERT_TRUE(clientDelete.ok());
  EXPECT_TRUE(clientDelete->skipped.empty());
  auto removed = src.handle({{"op", "delete"}, {"manifest", manifest}});
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->skipped, (std::vector<std::string>{epWarn}));
}

// The apply/delete reply, byte for byte as svclbd wrote it by hand before
// (keys sorted, compact, UTF-8 as is, invalid bytes as U+FFFD).
TEST(SvcctlSource, ChangeReplyBytes) {
  ChangeReply r;
  r.results = {{"Service", "default", "web", ApplyAction::Created},
               {"Endpoints", "ns-1", "web", ApplyAction::Unchanged},
               {"EndpointSlice", "default", "we\"b\\", ApplyAction::Configured}};
  EXPECT_EQ(changeReplyText(r),
            "{\"ok\":true,\"results\":[{\"action\":\"created\",\"kind\":\"Service\",\"name\":"
            "\"web\",\"namespace\":\"default\"},{\"action\":\"unchanged\",\"kind\":\"Endpoints\","
            "\"name\":\"web\",\"namespace\":\"ns-1\"},{\"action\":\"configured\",\"kind\":"
            "\"EndpointSlice\",\"name\":\"we\\\"b\\\\\",\"namespace\":\"default\"}]}");
  r.results.clear();
  r.skipped = {"Warning: skipped Deployment.apps/caf\xc3\xa9 (\x01)", "bad \xff byte"};
  EXPECT_EQ(
      changeReplyText(r),
      "{\"ok\":true,\"results\":[],\"skipped\":[\"Warning: skipped Deployment.apps/caf\xc3\xa9 "
      "(\\u0001)\",\"bad \xef\xbf\xbd byte\"]}");
}

}  // namespace
}  // namespace svclb
