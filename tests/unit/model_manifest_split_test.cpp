// parseManifests reads a large manifest in parts on several threads
// (model/manifest.cpp). The result must be the one-piece reading's: the
// same objects in the same order, the first error by document order, flow
// style in any part, and a YAML error's line as the whole text's.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/model.h"

namespace svclb {
namespace {

std::string doc(int i) {
  std::string d =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: s" + std::to_string(i) +
      "\n  namespace: bench\nspec:\n  clusterIP: 10.96." + std::to_string(i / 250) + "." +
      std::to_string(i % 250 + 1) +
      "\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n    targetPort: 5353\n"
      "---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s" +
      std::to_string(i) + "\n  namespace: bench\nsubsets:\n- addresses:\n";
  for (int k = 0; k < 10; ++k) d += "  - ip: 10.251.0." + std::to_string(11 + k) + "\n";
  d += "  ports:\n  - name: dns\n    port: 5353\n    protocol: UDP\n";
  return d;
}

// ~3.5 MB: more than one part wherever there are two cores or more.
std::vector<std::string> docs() {
  std::vector<std::string> v;
  for (int i = 0; i < 6000; ++i) v.push_back(doc(i));
  return v;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& d : v) s += "---\n" + d;
  return s;
}

TEST(ModelManifestSplit, SameObjectsAsDocumentByDocument) {
  const auto v = docs();
  const std::string text = join(v);
  ASSERT_GT(text.size(), 3u << 20);
  auto all = parseManifests(text, "big.yaml");
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::vector<Object> want;
  for (const auto& d : v) {
    auto one = parseManifests(d, "big.yaml");
    ASSERT_TRUE(one.ok());
    want.insert(want.end(), one->begin(), one->end());
  }
  ASSERT_EQ(all->size(), want.size());
  EXPECT_TRUE(*all == want);
}

TEST(ModelManifestSplit, FirstErrorByDocumentOrder) {
  auto v = docs();
  const std::string early = "apiVersion: v1\nkind: Nope\nmetadata:\n  name: early\n";
  const std::string late = "apiVersion: v1\nkind: Late\nmetadata:\n  name: late\n";
  v.insert(v.end() - 10, late);
  auto onlyLate = parseManifests(join(v), "big.yaml");
  ASSERT_FALSE(onlyLate.ok());
  EXPECT_NE(onlyLate.error().message.find("\"Late\""), std::string::npos)
      << onlyLate.error().message;
  v.insert(v.begin() + 10, early);
  auto both = parseManifests(join(v), "big.yaml");
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message, parseManifests(early, "big.yaml").error().message);
}

TEST(ModelManifestSplit, FlowStyleInAPart) {
  auto v = docs();
  // Flow style near the end, in the last part.
  v.insert(v.end() - 5,
           "apiVersion: v1\nkind: Service\nmetadata: {name: flow, namespace: bench}\n"
           "spec:\n  ports: [{port: 80}]\n");
  auto all = parseManifests(join(v), "big.yaml");
  ASSERT_TRUE(all.ok()) << all.error().message;
  std::vector<Object> want;
  for (const auto& d : v) {
    auto one = parseManifests(d, "big.yaml");
    ASSERT_TRUE(one.ok());
    want.insert(want.end(), one->begin(), one->end());
  }
  EXPECT_TRUE(*all == want);
}

// A syntax error in a later part is reported with its line in the whole
// text (go-yaml's words), as a one-piece reading would.
TEST(ModelManifestSplit, YamlErrorLineIsTheWholeTexts) {
  auto v = docs();
  std::string text = join(v);
  const size_t lines = static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  text += "---\napiVersion: v1\nkind: Service\nmetadata:\n  labels: app: web\n";
  auto r = parseManifests(text, "big.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "error: error parsing big.yaml: error converting YAML to JSON: yaml: line " +
                std::to_string(lines + 5) + ": mapping values are not allowed in this context");
}

}  // namespace
}  // namespace svclb
