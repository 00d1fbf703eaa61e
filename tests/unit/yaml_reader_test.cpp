// The manifest's YAML reader (common/yaml.h: libyaml events -> JSON), on
// the cases that pinned the hand-written subset reader and yaml-cpp against
// each other before libyaml replaced both: the documents are the ones
// yaml-cpp read (empty documents left out) and errors carry go-yaml's words
// and line (kubectl's). Where libyaml (like go-yaml) refuses what yaml-cpp
// read, the case says so.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/yaml.h"
#include "model/model.h"

namespace svclb {
namespace {

using nlohmann::json;

struct Case {
  const char* text;
  const char* docs;   // JSON array of the non-empty documents, or
  const char* error;  // go-yaml's message after "yaml: "
};

// What bench/compare/gen.py writes: Services and Endpoints, many documents.
std::string benchManifest(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s" + std::to_string(i) +
         "\n  namespace: bench\nspec:\n  type: ClusterIP\n  clusterIP: 10.96.0." +
         std::to_string(i + 1) +
         "\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: 5353\n";
    s += "---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s" + std::to_string(i) +
         "\n  namespace: bench\nsubsets:\n- addresses:\n";
    for (int k = 0; k < 3; ++k) s += "  - ip: 10.251.0." + std::to_string(11 + k) + "\n";
    s += "  ports:\n  - name: dns\n    port: 5353\n    protocol: UDP\n";
  }
  return s;
}

TEST(YamlReader, BenchManifest) {
  const std::string text = benchManifest(50);
  std::vector<json> docs;
  EXPECT_FALSE(yaml::readYaml(text, [&](json&& d) { docs.push_back(std::move(d)); }));
  EXPECT_EQ(docs.size(), 100u);
  auto objs = parseManifests(text, "svc.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  EXPECT_EQ(objs->size(), 100u);
}

TEST(YamlReader, EdgeCases) {
  const Case cases[] = {
      {"a: 1\n", R"([{"a":1}])", nullptr},
      {"a:\n", R"([{"a":null}])", nullptr},
      {"a: \n", R"([{"a":null}])", nullptr},
      {"a: ~\nb: null\nc: Null\n", R"([{"a":null,"b":null,"c":null}])", nullptr},
      {"a: yes\nb: off\nc: True\n", R"([{"a":true,"b":false,"c":true}])", nullptr},
      {"a: 0x1F\nb: 017\nc: 0o17\nd: 1_000\ne: -5\nf: +3\ng: 1.5e3\nh: .5\ni: 1.\n",
       R"([{"a":31,"b":15,"c":15,"d":1000,"e":-5,"f":3,"g":1500.0,"h":0.5,"i":1.0}])", nullptr},
      {"a: 08\nb: 0x\nc: 1e\nd: .inf\ne: -.Inf\nf: 99999999999999999999\n",
       R"([{"a":8.0,"b":"0x","c":"1e","d":null,"e":null,"f":"99999999999999999999"}])", nullptr},
      {"a: '5'\nb: \"true\"\nc: ''\nd: \"\"\n", R"([{"a":"5","b":"true","c":"","d":""}])", nullptr},
      {"a: 10.251.0.11\nb: v1\nc: discovery.k8s.io/v1\n",
       R"([{"a":"10.251.0.11","b":"v1","c":"discovery.k8s.io/v1"}])", nullptr},
      {"a: x,y\nb: don't\nc: a=b\nd: x:y\n", R"([{"a":"x,y","b":"don't","c":"a=b","d":"x:y"}])",
       nullptr},
      {"a: b: c\n", nullptr, "line 1: mapping values are not allowed in this context"},
      {"a: b #c\n", R"([{"a":"b"}])", nullptr},
      {"a: [1, 2]\n", R"([{"a":[1,2]}])", nullptr},
      {"a: {b: 1}\n", R"([{"a":{"b":1}}])", nullptr},
      {"a: &x 1\nb: *x\n", R"([{"a":1,"b":1}])", nullptr},
      {"a: !!str 5\n", R"([{"a":"5"}])", nullptr},
      {"a: |\n  text\n", R"([{"a":"text\n"}])", nullptr},
      {"a: >\n  text\n", R"([{"a":"text\n"}])", nullptr},
      {"a: plain\n  continued\n", R"([{"a":"plain continued"}])", nullptr},
      {"a:\n- 1\n- 2\nb: 3\n", R"([{"a":[1,2],"b":3}])", nullptr},
      {"a:\n  - 1\n  -   2\n", R"([{"a":[1,2]}])", nullptr},
      {"a:\n  - b: 1\n    c: 2\n  - b: 3\n", R"([{"a":[{"b":1,"c":2},{"b":3}]}])", nullptr},
      {"a:\n- - 1\n", R"([{"a":[[1]]}])", nullptr},
      {"a:\n-\n  b: 1\n", R"([{"a":[{"b":1}]}])", nullptr},
      {"a: 1\na: 2\n", nullptr, "line 2: key \"a\" already set in map"},
      {"a:\n  b: 1\n   c: 2\n", nullptr, "line 3: mapping values are not allowed in this context"},
      {"a:\n    b: 1\n  c: 2\n", nullptr, "line 2: did not find expected key"},
      {"  a: 1\n  b: 2\n", R"([{"a":1,"b":2}])", nullptr},
      {"# comment\na: 1\n\n# more\n", R"([{"a":1}])", nullptr},
      {"---\n---\na: 1\n---\n", R"([{"a":1}])", nullptr},
      {"--- \na: 1\n", R"([{"a":1}])", nullptr},
      {"--- a\n", R"(["a"])", nullptr},
      // yaml-cpp read no document here; go-yaml and libyaml refuse it.
      {"...\n", nullptr, "line 1: did not find expected node content"},
      {"%YAML 1.2\n---\na: 1\n", R"([{"a":1}])", nullptr},
      {"- a\n- b\n", R"([["a","b"]])", nullptr},
      {"scalar\n", R"(["scalar"])", nullptr},
      {"a:\tb\n", R"([{"a":"b"}])", nullptr},
      {"a: b\r\n", R"([{"a":"b"}])", nullptr},
      {"\"q\": 1\n", R"([{"q":1}])", nullptr},
      {"a: 'it''s'\n", R"([{"a":"it's"}])", nullptr},
      {"a: \"x\\ty\"\n", R"([{"a":"x\ty"}])", nullptr},
      {"a: \"x\" y\n", nullptr, "line 1: did not find expected key"},
      {"a: -\n", nullptr, "line 1: block sequence entries are not allowed in this context"},
      {"a: - b\n", nullptr, "line 1: block sequence entries are not allowed in this context"},
      {"a: ?x\n", R"([{"a":"?x"}])", nullptr},
      {"a: :x\n", R"([{"a":":x"}])", nullptr},
      {"a: x:\n", nullptr, "line 1: mapping values are not allowed in this context"},
      {"a-b_c.d/e: 1\n", R"([{"a-b_c.d/e":1}])", nullptr},
      {"1: a\ntrue: b\n", R"([{"1":"a","true":"b"}])", nullptr},
      {"a:\n  b:\n    c:\n      d: 1\n  e: 2\n", R"([{"a":{"b":{"c":{"d":1}},"e":2}}])", nullptr},
      {"a: !!int \"5\"\n", R"([{"a":5}])", nullptr},
      {"a: ! 5\n", R"([{"a":"5"}])", nullptr},
      {"? [a]\n: b\n", nullptr, "line 1: invalid map key: only scalar keys"},
      {"a: &x {b: 1}\nc: *x\n", R"([{"a":{"b":1},"c":{"b":1}}])", nullptr},
      {"a: *nope\n", nullptr, "unknown anchor 'nope' referenced"},
      {"&k x: 1\ny: *k\n", R"([{"x":1,"y":"x"}])", nullptr},
      {"- 1\n- - 2\n", R"([[1,[2]]])", nullptr},
      {"a: |\n  x\n  y\nb: >-\n  p\n  q\n", R"([{"a":"x\ny\n","b":"p q"}])", nullptr},
      {"a:\n  - b\n  -\n", R"([{"a":["b",null]}])", nullptr},
      {"~: 1\n", R"([{"null":1}])", nullptr},
      {"'null': 1\n", R"([{"null":1}])", nullptr},
      {"a: 1\n---\nb: [\n", nullptr, "line 3: did not find expected node content"},
      {"---\na: 1\n...\n---\nb: 2\n", R"([{"a":1},{"b":2}])", nullptr},
      // yaml-cpp took the control character as a key; go-yaml refuses it.
      {"a: 1\n\x01\n", nullptr, "control characters are not allowed"},
      {"a: \"\\u00e9\"\n", R"([{"a":"é"}])", nullptr},
      {"key: value # c\n", R"([{"key":"value"}])", nullptr},
      // yaml-cpp read ["", "foo", "bar"]; go-yaml and libyaml refuse it.
      {"--- |\nfoo\n---\nbar\n", nullptr, "line 1: did not find expected <document start>"},
      {"a: 1\nb: 2\n a: 3\n", nullptr, "line 3: mapping values are not allowed in this context"},
  };
  for (const auto& c : cases) {
    std::vector<json> docs;
    auto err = yaml::readYaml(c.text, [&](json&& d) {
      if (!d.is_null()) docs.push_back(std::move(d));
    });
    if (c.error) {
      EXPECT_EQ(err.value_or("(no error)"), c.error) << c.text;
    } else {
      EXPECT_FALSE(err) << c.text << *err;
      // dump(): .inf is written as null on both sides.
      EXPECT_EQ(json(docs).dump(), json::parse(c.docs).dump()) << c.text;
    }
  }
}

}  // namespace
}  // namespace svclb
