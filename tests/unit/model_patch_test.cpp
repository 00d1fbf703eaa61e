// model/patch.h: kubectl patch's three types on objects as the API shows
// them. Cases follow the Kubernetes strategic-merge-patch semantics for the
// fields svclb stores (a Service's spec.ports merged by port, every other
// list replaced, null deleting a key) and RFC 7386 / RFC 6902.
#include <gtest/gtest.h>

#include "model/patch.h"

namespace svclb {
namespace {

using json = nlohmann::json;

const json kWeb = json::parse(R"({
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
  "spec": {"clusterIP": "10.96.0.10", "externalIPs": ["192.0.2.1", "192.0.2.2"],
           "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                     {"name": "dns", "port": 5353, "targetPort": 5353, "protocol": "UDP"}]}
})");

json patched(std::string_view patch, PatchType type = PatchType::Strategic) {
  auto r = applyPatch(kWeb, "Service", patch, type);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : json();
}

std::string refused(std::string_view patch, PatchType type = PatchType::Strategic) {
  auto r = applyPatch(kWeb, "Service", patch, type);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(ModelPatch, StrategicMergesServicePortsByPort) {
  // An item with an existing port merges into it; a new one comes in the
  // patch's order, before the stored items the patch does not name (the
  // order kube-apiserver v1.37 gives: tests/k8s/api_parity.sh).
  json j =
      patched(R"({"spec":{"ports":[{"port":80,"targetPort":9090},{"port":443,"name":"https"}]}})");
  ASSERT_EQ(j["spec"]["ports"].size(), 3u);
  EXPECT_EQ(j["spec"]["ports"][0],
            json::parse(R"({"name":"http","port":80,"targetPort":9090,"protocol":"TCP"})"));
  EXPECT_EQ(j["spec"]["ports"][1], json::parse(R"({"port":443,"name":"https"})"));
  EXPECT_EQ(j["spec"]["ports"][2]["port"], 5353);
  j = patched(R"({"spec":{"ports":[{"port":443}]}})");
  EXPECT_EQ(j["spec"]["ports"][0]["port"], 443);
  j = patched(R"({"spec":{"ports":[{"port":5353,"name":"d"},{"port":80,"name":"h"}]}})");
  EXPECT_EQ(j["spec"]["ports"][0]["name"], "d");  // both stored: the patch's order
  j = patched(R"({"spec":{"ports":[{"port":5353,"name":"d"}]}})");
  EXPECT_EQ(j["spec"]["ports"][0]["name"], "http");  // stored before 5353, not named
  // $patch: delete removes the item with that port; null removes a field.
  j = patched(
      R"({"spec":{"ports":[{"port":5353,"$patch":"delete"},{"port":80,"targetPort":null}]}})");
  EXPECT_EQ(j["spec"]["ports"], json::parse(R"([{"name":"http","port":80,"protocol":"TCP"}])"));
  // {"$patch":"replace"} in the list: the list is the patch's other items.
  j = patched(R"({"spec":{"ports":[{"$patch":"replace"},{"port":81,"name":"x"}]}})");
  EXPECT_EQ(j["spec"]["ports"], json::parse(R"([{"port":81,"name":"x"}])"));
  // $setElementOrder is accepted (the stored order is kept).
  j = patched(
      R"({"$setElementOrder/spec":[],"spec":{"$setElementOrder/ports":[{"port":5353},{"port":80}],"ports":[{"port":80,"name":"web"}]}})");
  EXPECT_EQ(j["spec"]["ports"][0]["name"], "web");
}

TEST(ModelPatch, StrategicReplacesOtherListsAndMergesMaps) {
  json j = patched(
      R"({"metadata":{"labels":{"tier":null,"new":"x"}},"spec":{"externalIPs":["192.0.2.9"]}})");
  EXPECT_EQ(j["metadata"]["labels"], json::parse(R"({"app":"web","new":"x"})"));
  EXPECT_EQ(j["spec"]["externalIPs"], json::parse(R"(["192.0.2.9"])"));
  EXPECT_EQ(j["spec"]["clusterIP"], "10.96.0.10");
  // $patch: replace on a map replaces it; delete removes it.
  j = patched(R"({"metadata":{"labels":{"$patch":"replace","only":"me"}}})");
  EXPECT_EQ(j["metadata"]["labels"], json::parse(R"({"only":"me"})"));
  j = patched(R"({"metadata":{"labels":{"$patch":"delete"}}})");
  EXPECT_FALSE(j["metadata"].contains("labels"));
  // YAML, as kubectl -p takes it.
  j = patched("spec:\n  sessionAffinity: ClientIP\n");
  EXPECT_EQ(j["spec"]["sessionAffinity"], "ClientIP");
}

TEST(ModelPatch, StrategicRefusesWhatItCannotDo) {
  EXPECT_NE(refused(R"({"spec":{"ports":[{"name":"noport"}]}})").find("must have it"),
            std::string::npos);
  EXPECT_NE(refused(R"({"spec":{"$retainKeys":["ports"]}})").find("$retainKeys is not supported"),
            std::string::npos);
  EXPECT_NE(refused(R"({"spec":{"ports":[{"port":80,"$patch":"merge"}]}})")
                .find("unknown patch directive"),
            std::string::npos);
  EXPECT_NE(refused("[1]").find("must be an object"), std::string::npos);
  EXPECT_EQ(refused("{x"),
            "error: unable to parse \"{x\": yaml: line 1: did not find expected ',' or '}'");
}

TEST(ModelPatch, MergeIsRfc7386) {
  // Lists are replaced whole, ports too; null deletes.
  json j = patched(R"({"spec":{"ports":[{"port":81}],"clusterIP":null}})", PatchType::Merge);
  EXPECT_EQ(j["spec"]["ports"], json::parse(R"([{"port":81}])"));
  EXPECT_FALSE(j["spec"].contains("clusterIP"));
}

TEST(ModelPatch, JsonIsRfc6902) {
  json j = patched(R"([{"op":"replace","path":"/spec/ports/1/port","value":53},
                       {"op":"add","path":"/spec/externalIPs/-","value":"192.0.2.3"},
                       {"op":"test","path":"/metadata/name","value":"web"}])",
                   PatchType::Json);
  EXPECT_EQ(j["spec"]["ports"][1]["port"], 53);
  EXPECT_EQ(j["spec"]["externalIPs"].size(), 3u);
  EXPECT_EQ(refused(R"([{"op":"remove","path":"/spec/nothere"}])", PatchType::Json),
            "error: unable to apply the json patch: key 'nothere' not found");
  EXPECT_NE(refused(R"([{"op":"test","path":"/metadata/name","value":"other"}])", PatchType::Json)
                .find("unable to apply the json patch"),
            std::string::npos);
  EXPECT_NE(refused(R"({"spec":{}})", PatchType::Json).find("list of operations"),
            std::string::npos);
}

TEST(ModelPatch, TypeNames) {
  EXPECT_EQ(patchTypeFromName("strategic"), PatchType::Strategic);
  EXPECT_EQ(patchTypeFromName("merge"), PatchType::Merge);
  EXPECT_EQ(patchTypeFromName("json"), PatchType::Json);
  EXPECT_EQ(patchTypeFromName("apply"), std::nullopt);
}

}  // namespace
}  // namespace svclb
