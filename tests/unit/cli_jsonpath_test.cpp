// kubectl's JSONPath templates (cli/jsonpath.h): the forms kubectl users
// write, on a kubectl-shaped List, with client-go's output rules.
#include <gtest/gtest.h>

#include "cli/jsonpath.h"

namespace svclb::cli {
namespace {

const Json& list() {
  static const Json j = Json::parse(R"({"apiVersion":"v1","kind":"List","items":[
    {"kind":"Service","metadata":{"name":"web","labels":{"app":"web","example.com/tier":"front"}},
     "spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":80,"nodePort":30080},
                                               {"name":"https","port":443,"nodePort":30443}]}},
    {"kind":"Service","metadata":{"name":"dns"},
     "spec":{"clusterIP":"10.96.0.53","ports":[{"name":"dns","port":53,"protocol":"UDP"}],
             "publishNotReady":true}}]})");
  return j;
}

std::string run(const std::string& tmpl) {
  auto jp = JsonPath::parse(tmpl);
  if (!jp) return "PARSE: " + jp.error().message;
  auto out = jp->execute(list());
  if (!out) return "EXEC: " + out.error().message;
  return *out;
}

TEST(CliJsonPath, KubectlForms) {
  const std::pair<const char*, const char*> cases[] = {
      {"{.kind}", "List"},
      {"{$.kind}", "List"},
      {"{@.kind}", "List"},
      {"kind={.kind}!", "kind=List!"},
      {"{.items[0].metadata.name}", "web"},
      {"{.items[-1].metadata.name}", "dns"},
      {"{.items[*].metadata.name}", "web dns"},
      {"{.items[0:1].metadata.name}", "web"},
      {"{.items[:].spec.clusterIP}", "10.96.0.10 10.96.0.53"},
      {"{.items[::2].metadata.name}", "web"},
      {"{.items[0,1].spec.ports[0].port}", "80 53"},
      {"{.items[0].spec.ports[*].nodePort}", "30080 30443"},
      {"{..nodePort}", "30080 30443"},
      {"{.items[?(@.metadata.name==\"dns\")].spec.clusterIP}", "10.96.0.53"},
      {"{.items[0].spec.ports[?(@.port>100)].name}", "https"},
      {"{.items[0].spec.ports[?(@.port<=80)].name}", "http"},
      {"{.items[*].spec.ports[?(@.protocol)].name}", "dns"},
      {"{.items[?(@.spec.publishNotReady==true)].metadata.name}", "dns"},
      {"{.items[?(@.metadata.name!='web')].metadata.name}", "dns"},
      {"{.items[0].metadata.labels.example\\.com/tier}", "front"},
      {"{.items[0].metadata.labels['example.com/tier']}", "front"},
      {"{.items[0].metadata.labels.*}", "web front"},
      {"{.items[0].metadata['name','labels']}",
       "web {\"app\":\"web\",\"example.com/tier\":\"front\"}"},
      {"{.items[1].spec.ports}", "[{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"}]"},
      {"{.items[1].spec.publishNotReady}", "true"},
      {"{range .items[*]}{.metadata.name}{\"\\t\"}{.spec.clusterIP}{\"\\n\"}{end}",
       "web\t10.96.0.10\ndns\t10.96.0.53\n"},
      {"{range .items[*]}[{range .spec.ports[*]}{.port},{end}]{end}", "[80,443,][53,]"},
      {"{.items[0].missing}", ""},  // kubectl's --allow-missing-template-keys
      {"{.items[5]}", "EXEC: array index out of bounds: index 5, length 2"},
      {"{.kind[0]}", "EXEC: \"List\" is not array or slice"},
      {"{.items[}", "PARSE: error parsing jsonpath {.items[}, unclosed array expect ]"},
      {"{.kind", "PARSE: error parsing jsonpath {.kind, unclosed action"},
      {"{range .items[*]}{.kind}",
       "PARSE: error parsing jsonpath {range .items[*]}{.kind}, range without {end}"},
      {"{end}", "PARSE: error parsing jsonpath {end}, not in range, nothing to end"},
      {"{kind}", "PARSE: error parsing jsonpath {kind}, unrecognized identifier kind"},
      {"{.items[?(@.x=1)]}",
       "PARSE: error parsing jsonpath {.items[?(@.x=1)]}, unrecognized filter operator ="},
  };
  for (const auto& [tmpl, want] : cases) EXPECT_EQ(run(tmpl), want) << tmpl;
}

TEST(CliJsonPath, ValuesForCustomColumns) {
  auto jp = JsonPath::parse("{.spec.ports[*].port}");
  ASSERT_TRUE(jp.ok());
  auto v = jp->values(list()["items"][0]);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, (std::vector<std::string>{"80", "443"}));
  auto none = JsonPath::parse("{.spec.missing}")->values(list()["items"][0]);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace svclb::cli
