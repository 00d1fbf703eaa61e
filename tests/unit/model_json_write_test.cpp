// appendJson (model/json_write.cpp), the one encoder (state file, and toJson
// through it), against the decoder: for every object — the corpus, and
// hand-made ones that set every field and need every escape — its text is
// valid JSON that fromJson reads back to the same object, which encodes to
// the same text. (The shape itself: model_json_test.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/model.h"

namespace svclb {
namespace {

// `exact`: the object is read back equal (false where the encoder normalizes
// on purpose, e.g. a stale pool annotation replaced by loadBalancerPool).
void expectSame(const Object& obj, bool exact = true) {
  std::string text;
  appendJson(text, obj);
  nlohmann::json parsed = nlohmann::json::parse(text);  // throws on invalid JSON
  auto back = fromJson(parsed);
  ASSERT_TRUE(back.ok()) << back.error().message;
  if (exact) {
    EXPECT_TRUE(*back == obj) << text;
  }
  std::string again;
  appendJson(again, *back);
  EXPECT_EQ(again, text);
}

TEST(ModelJsonWrite, CorpusObjectsRoundTrip) {
  size_t n = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(SVCLB_TEST_CORPUS) + "/valid")) {
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto objs = parseManifests(ss.str(), e.path().filename().string());
    if (!objs.ok()) continue;  // e.g. a kind the store refuses later
    for (const auto& o : *objs) {
      SCOPED_TRACE(e.path().filename().string());
      expectSame(o);
      ++n;
    }
  }
  EXPECT_GT(n, 20u);
}

TEST(ModelJsonWrite, EveryFieldAndEscape) {
  const std::string odd = "q\"uote\\back/slash\b\f\n\r\t\x01\x1f\x7f é ✓";
  ObjectMeta meta;
  meta.name = "web";
  meta.ns = "ns-1";
  meta.uid = "0b5c4e38-6f39-4a8c-9d3e-1f2a3b4c5d6e";
  meta.creationTimestamp = "2026-11-23T06:00:00Z";
  meta.labels = {{"app", "web"}, {"odd", odd}};
  meta.annotations = {{kLbPoolAnnotation, "stale"}, {"note", odd}};

  Service s;
  s.meta = meta;
  s.type = "LoadBalancer";
  s.clusterIP = "10.96.0.10";
  s.selector = {{"app", "web"}};
  ServicePort p1;
  p1.name = "http";
  p1.port = 80;
  p1.targetPort.isString = true;
  p1.targetPort.strVal = "http-alt";
  p1.nodePort = 30080;
  p1.appProtocol = "http";
  ServicePort p2;
  p2.protocol = "UDP";
  p2.port = 53;
  p2.targetPort.intVal = 5353;
  s.ports = {p1, p2};
  s.sessionAffinity = "ClientIP";
  s.sessionAffinityTimeoutSeconds = 600;
  s.externalIPs = {"192.0.2.1", "192.0.2.2"};
  s.externalTrafficPolicy = "Local";
  s.internalTrafficPolicy = "Cluster";
  s.loadBalancerIP = "192.0.2.10";
  s.loadBalancerSourceRanges = {"10.0.0.0/8", " 192.168.0.0/16 "};
  s.healthCheckNodePort = 31000;
  s.publishNotReadyAddresses = true;
  s.loadBalancerIngressIPs = {"192.0.2.10"};
  s.loadBalancerPool = "pool-a";
  expectSame(s, /*exact=*/false);
  s.meta.annotations.clear();  // the pool alone makes the annotations
  expectSame(s);
  Service bare;  // defaults: no clusterIP, no ports, no status
  bare.meta.name = "bare";
  bare.type = "ExternalName";
  bare.externalName = "example.com";
  expectSame(bare);

  Endpoints e;
  e.meta = meta;
  EndpointSubset ss;
  EndpointAddress a;
  a.ip = "10.0.0.1";
  a.hostname = "h";
  a.nodeName = "node-1";
  a.targetRefKind = "Pod";
  a.targetRefName = "web-1";
  a.targetRefNamespace = "ns-1";
  EndpointAddress b;
  b.ip = "10.0.0.2";
  ss.addresses = {a, b};
  ss.notReadyAddresses = {b};
  EndpointPort ep;
  ep.name = "http";
  ep.port = 8080;
  ep.appProtocol = "http";
  EndpointPort unnamed;
  unnamed.protocol = "UDP";
  ss.ports = {ep, unnamed};
  e.subsets = {ss, EndpointSubset{}};
  expectSame(e);
  Endpoints empty;
  empty.meta.name = "empty";
  expectSame(empty);

  EndpointSlice sl;
  sl.meta = meta;
  SliceEndpoint se;
  se.addresses = {"10.0.0.1"};
  se.conditions.ready = false;
  se.conditions.serving = true;
  se.conditions.terminating = true;
  se.hostname = "h";
  se.nodeName = "node-1";
  se.zone = "z";
  se.targetRefKind = "Pod";
  se.targetRefName = "web-1";
  SliceEndpoint plain;
  plain.addresses = {"10.0.0.2"};
  sl.endpoints = {se, plain};
  sl.ports = {ep, unnamed};
  expectSame(sl);

  IPAddressPool pool;
  pool.meta = meta;
  pool.addresses = {"192.0.2.0/28", "192.0.2.100-192.0.2.110"};
  pool.autoAssign = false;
  pool.avoidBuggyIPs = true;
  expectSame(pool);

  L2Advertisement l2;
  l2.meta = meta;
  l2.ipAddressPools = {"pool-a"};
  l2.interfaces = {"eth0"};
  expectSame(l2);
  L2Advertisement l2Empty;
  l2Empty.meta.name = "all";
  expectSame(l2Empty);
}

TEST(ModelJsonWrite, StringLiteral) {
  std::string out;
  appendJsonString(out, "a\"b\\c\n\x02");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0002")");
  EXPECT_EQ(nlohmann::json::parse(out), nlohmann::json("a\"b\\c\n\x02"));
}

// YAML text may hold any bytes: what is not UTF-8 becomes U+FFFD (as
// nlohmann's dump with error_handler_t::replace), so the state file and the
// API's JSON stay parseable. Valid multi-byte sequences pass unchanged.
TEST(ModelJsonWrite, InvalidUtf8BecomesReplacementCharacter) {
  const std::string bad = std::string("a\xff") + "b\xc3" + "\xe2\x82" + "\xed\xa0\x80" +
                          "\xf0\x82\x82\xac" + "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80";
  std::string out;
  appendJsonString(out, bad);
  const auto parsed = nlohmann::json::parse(out);  // throws on invalid JSON
  const std::string r = "\xef\xbf\xbd";
  // \xe2\x82 is one truncated sequence: one replacement per byte that
  // starts no valid sequence, so two; the surrogate and the overlong are
  // 3 and 4 bytes each.
  EXPECT_EQ(parsed.get<std::string>(), "a" + r + "b" + r + r + r + r + r + r + r + r + r + r +
                                           "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80");
  Service svc;
  svc.meta.name = "web";
  svc.meta.labels = {{"odd", bad}};
  const auto j = toJson(svc);  // parses appendJson's text
  EXPECT_EQ(j["metadata"]["labels"]["odd"].get<std::string>(), parsed.get<std::string>());

  // A manifest's bytes are made UTF-8 when read, so an object read from it
  // survives JSON unchanged (the state file, the API).
  auto objs = parseManifests(
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels:\n    odd: \"x" + bad +
          "\"\nspec:\n  ports:\n  - port: 80\n",
      "bad.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  ASSERT_EQ(objs->size(), 1u);
  const auto& got = std::get<Service>(objs->front());
  EXPECT_EQ(got.meta.labels.at("odd"), "x" + parsed.get<std::string>());
  auto back = fromJson(toJson(objs->front()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == objs->front());
}

}  // namespace
}  // namespace svclb
