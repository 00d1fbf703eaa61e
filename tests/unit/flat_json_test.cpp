// parseFlatJsonObject (common/flat_json.h), svclbd's fast path for request
// lines, against nlohmann::json::parse: where it answers it must give the
// same document, and it must decline everything outside its subset.
#include "common/flat_json.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "cli/client.h"

namespace svclb {
namespace {

void agrees(const std::string& text, bool expectFast) {
  auto fast = parseFlatJsonObject(text);
  auto slow = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_EQ(fast.has_value(), expectFast) << text;
  if (fast) {
    ASSERT_FALSE(slow.is_discarded()) << "fast accepted what nlohmann rejects: " << text;
    EXPECT_EQ(*fast, slow) << text;
  }
}

TEST(FlatJson, AnswersItsSubsetLikeNlohmann) {
  agrees(R"({"op":"apply","manifest":"a: b\nc: \"d\"\\ \/ \t\r\b\f","source":"x.yaml"})", true);
  agrees(" {\n\t\"op\" : \"get\" , \"allNamespaces\" : true, \"x\": false, \"y\": null }\r\n",
         true);
  agrees("{}", true);
  agrees("{ }\n", true);
  agrees(R"({"op":"a","op":"b"})", true);  // the last wins, as in nlohmann
  agrees(R"({"":""})", true);
}

TEST(FlatJson, DeclinesEverythingElse) {
  for (const char* t : {
           R"({"n":1})",
           R"({"a":[1]})",
           R"({"a":{"b":"c"}})",
           R"({"u":"\u00e9"})",
           "{\"raw\":\"\xc3\xa9\"}",
           "{\"ctl\":\"a\x01\"}",
           R"({"bad":"\q"})",
           R"({"a":"b"} x)",
           R"({"a":"b",})",
           R"({"a" "b"})",
           R"(["a"])",
           "",
           "{",
           R"({"a":"b)",
           R"({"a":tru})",
           R"({"a":nul})",
           "{\"a\":\"b\"}\n{}",
       })
    agrees(t, false);
}

TEST(FlatJson, RandomMutationsNeverDisagree) {
  const std::string base =
      R"({"op":"apply","manifest":"apiVersion: v1\nkind: Service\n\"q\" \\ x","source":"-","f":true})";
  std::mt19937 rng(7);
  const std::string alphabet = "{}[]\":,\\ntrufalse0123 \t\n\x01\x7f\xc3";
  for (int i = 0; i < 20000; ++i) {
    std::string t = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      const size_t at = rng() % t.size();
      const char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          t[at] = c;
          break;
        case 1:
          t.insert(t.begin() + static_cast<long>(at), c);
          break;
        default:
          t.erase(at, 1);
      }
    }
    auto fast = parseFlatJsonObject(t);
    if (!fast) continue;
    auto slow = nlohmann::json::parse(t, nullptr, false);
    ASSERT_FALSE(slow.is_discarded()) << t;
    ASSERT_EQ(*fast, slow) << t;
  }
}

// svcctl's side of the same lines: what it sends parses (both ways) to the
// request nlohmann would have serialized.
TEST(FlatJson, ManifestRequestIsTheJsonRequest) {
  std::string manifest = "apiVersion: v1\n\"q\" \\ \t\r\b\f\x01\x1f\x7f /\n";
  for (int c = 0; c < 0x80; ++c) manifest += static_cast<char>(c);
  for (const std::string& text : {manifest, std::string(), std::string("caf\xc3\xa9: x\n")}) {
    for (bool strict : {true, false}) {
      const std::string line = cli::manifestRequest("apply", text, "dir/x.yaml", strict);
      const nlohmann::json want = {
          {"op", "apply"}, {"manifest", text}, {"source", "dir/x.yaml"}, {"strict", strict}};
      EXPECT_EQ(nlohmann::json::parse(line), want);
      if (auto fast = parseFlatJsonObject(line)) EXPECT_EQ(*fast, want);
    }
  }
  EXPECT_TRUE(parseFlatJsonObject(cli::manifestRequest("apply", "a: b\n", "-")).has_value());
}

}  // namespace
}  // namespace svclb
