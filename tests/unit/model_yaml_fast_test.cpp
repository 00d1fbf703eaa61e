// The fast block-YAML reader of parseManifests (model/manifest.cpp) against
// the yaml-cpp reading it stands in for: whenever the fast reader accepts a
// text, yaml-cpp must accept it too and yield the same documents. Checked on
// the corpus, on a generated bench-style manifest, on hand-picked edge cases
// and on random mutations of valid manifests.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"

namespace svclb::model_internal {
// Defined in model/manifest.cpp for this test.
std::optional<std::vector<nlohmann::json>> fastYamlDocsForTest(std::string_view text);
std::vector<nlohmann::json> yamlCppDocsForTest(std::string_view text);
}  // namespace svclb::model_internal

namespace svclb {
namespace {

using model_internal::fastYamlDocsForTest;
using model_internal::yamlCppDocsForTest;

// Fast accepted => yaml-cpp accepts and agrees. Returns whether fast accepted.
bool agrees(const std::string& text) {
  auto fast = fastYamlDocsForTest(text);
  if (!fast) return false;
  std::vector<nlohmann::json> slow;
  try {
    slow = yamlCppDocsForTest(text);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "fast reader accepted what yaml-cpp rejects (" << e.what() << "):\n" << text;
    return true;
  }
  EXPECT_EQ(nlohmann::json(*fast), nlohmann::json(slow)) << text;
  return true;
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

TEST(ModelYamlFast, CorpusAgreesWithYamlCpp) {
  int accepted = 0, files = 0;
  for (const auto& dir : {"valid", "invalid"})
    for (const auto& e :
         std::filesystem::directory_iterator(std::string(SVCLB_TEST_CORPUS) + "/" + dir)) {
      if (!e.is_regular_file()) continue;
      ++files;
      accepted += agrees(readFile(e.path()));
    }
  EXPECT_GT(files, 0);
  EXPECT_GT(accepted, 0);  // the subset covers real manifests, not only toys
}

TEST(ModelYamlFast, BenchManifestTakesTheFastPath) {
  const std::string text = benchManifest(50);
  EXPECT_TRUE(agrees(text));
  auto objs = parseManifests(text, "svc.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  EXPECT_EQ(objs->size(), 100u);
}

TEST(ModelYamlFast, EdgeCases) {
  const std::vector<std::string> cases = {
      "a: 1\n",
      "a:\n",
      "a: \n",
      "a: ~\nb: null\nc: Null\n",
      "a: yes\nb: off\nc: True\n",
      "a: 0x1F\nb: 017\nc: 0o17\nd: 1_000\ne: -5\nf: +3\ng: 1.5e3\nh: .5\ni: 1.\n",
      "a: 08\nb: 0x\nc: 1e\nd: .inf\ne: -.Inf\nf: 99999999999999999999\n",
      "a: '5'\nb: \"true\"\nc: ''\nd: \"\"\n",
      "a: 10.251.0.11\nb: v1\nc: discovery.k8s.io/v1\n",
      "a: x,y\nb: don't\nc: a=b\nd: x:y\n",
      "a: b: c\n",
      "a: b #c\n",
      "a: [1, 2]\n",
      "a: {b: 1}\n",
      "a: &x 1\nb: *x\n",
      "a: !!str 5\n",
      "a: |\n  text\n",
      "a: >\n  text\n",
      "a: plain\n  continued\n",
      "a:\n- 1\n- 2\nb: 3\n",
      "a:\n  - 1\n  -   2\n",
      "a:\n  - b: 1\n    c: 2\n  - b: 3\n",
      "a:\n- - 1\n",
      "a:\n-\n  b: 1\n",
      "a: 1\na: 2\n",
      "a:\n  b: 1\n   c: 2\n",
      "a:\n    b: 1\n  c: 2\n",
      "  a: 1\n  b: 2\n",
      "# comment\na: 1\n\n# more\n",
      "---\n---\na: 1\n---\n",
      "--- \na: 1\n",
      "--- a\n",
      "...\n",
      "%YAML 1.2\n---\na: 1\n",
      "- a\n- b\n",
      "scalar\n",
      "a:\tb\n",
      "a: b\r\n",
      "\"q\": 1\n",
      "a: 'it''s'\n",
      "a: \"x\\ty\"\n",
      "a: \"x\" y\n",
      "a: -\n",
      "a: - b\n",
      "a: ?x\n",
      "a: :x\n",
      "a: x:\n",
      "a-b_c.d/e: 1\n",
      "1: a\ntrue: b\n",
      "a:\n  b:\n    c:\n      d: 1\n  e: 2\n",
  };
  for (const auto& c : cases) agrees(c);
}

TEST(ModelYamlFast, RandomMutationsNeverDisagree) {
  std::vector<std::string> seeds = {benchManifest(2)};
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(SVCLB_TEST_CORPUS) + "/valid")) {
    std::string t = readFile(e.path());
    if (!t.empty() && t.find_first_not_of(" \n") != std::string::npos &&
        t[t.find_first_not_of(" \n")] != '{')
      seeds.push_back(t);
  }
  const std::string alphabet = " \n:-#'\"[]{}&*!|>?,.~0a1_/";
  std::mt19937 rng(12345);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string t = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits && !t.empty(); ++k) {
      const size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0:
          t.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        case 1:
          t.erase(at, 1);
          break;
        default:
          t[at] = alphabet[rng() % alphabet.size()];
          break;
      }
    }
    accepted += agrees(t);
  }
  EXPECT_GT(accepted, 100);
}

}  // namespace
}  // namespace svclb
