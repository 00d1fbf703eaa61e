// The manifest corpus: every valid/*.yaml parses, validates, applies and
// round-trips; every invalid/*.yaml fails (parse, validate or apply) with
// exactly the message in the .err file next to it, and leaves the store as
// it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/model.h"

namespace svclb {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> corpusFiles(const char* sub) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(SVCLB_TEST_CORPUS) / sub))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

// A store with something in it, so "unchanged" is a real check and the
// store-level corpus cases have something to collide with.
Store baselineStore() {
  Store st;
  auto objs = parseManifests(R"(apiVersion: v1
kind: Service
metadata: {name: baseline}
spec:
  clusterIP: 10.96.0.100
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: baseline}
subsets: [{addresses: [{ip: 10.0.0.1}], ports: [{name: http, port: 8080}]}]
)",
                             "baseline.yaml");
  EXPECT_TRUE(objs.ok());
  auto r = st.apply(*objs);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return st;
}

TEST(ModelCorpus, ValidManifestsLoadValidateApplyAndRoundTrip) {
  auto files = corpusFiles("valid");
  ASSERT_GE(files.size(), 10u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    auto objs = parseManifests(slurp(f), f.filename().string());
    ASSERT_TRUE(objs.ok()) << objs.error().message;
    ASSERT_FALSE(objs->empty());
    for (const auto& o : *objs) {
      Status st = validate(o);
      EXPECT_TRUE(st.ok()) << st.error().message;
      auto back = fromJson(toJson(o));
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_TRUE(*back == o) << toJson(o).dump(2) << "\nvs\n" << toJson(*back).dump(2);
    }
    Store store = baselineStore();
    auto r = store.apply(*objs);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->size(), objs->size());
    // Applying the same file again changes nothing.
    auto again = store.apply(*objs);
    ASSERT_TRUE(again.ok()) << again.error().message;
    for (const auto& o : *again) EXPECT_EQ(o.action, ApplyAction::Unchanged) << o.name;
    // The whole store survives its own JSON.
    auto copy = Store::fromJson(store.toJson());
    ASSERT_TRUE(copy.ok()) << copy.error().message;
    EXPECT_EQ(copy->toJson(), store.toJson());
    EXPECT_EQ(copy->frontends(), store.frontends());
  }
}

TEST(ModelCorpus, InvalidManifestsFailWithExactMessage) {
  auto files = corpusFiles("invalid");
  ASSERT_GE(files.size(), 30u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    fs::path errFile = f;
    errFile.replace_extension(".err");
    ASSERT_TRUE(fs::exists(errFile)) << "missing " << errFile;
    std::string want = slurp(errFile);
    if (!want.empty() && want.back() == '\n') want.pop_back();

    Store store = baselineStore();
    const nlohmann::json before = store.toJson();
    std::string got;
    auto objs = parseManifests(slurp(f), f.filename().string());
    if (!objs.ok()) {
      got = objs.error().message;
    } else {
      for (const auto& o : *objs) {
        Status st = validate(o);
        if (!st.ok()) {
          got = st.error().message;
          break;
        }
      }
      auto r = store.apply(*objs);
      EXPECT_FALSE(r.ok()) << "apply accepted an invalid manifest";
      if (got.empty() && !r.ok()) got = r.error().message;
      // apply reports the same first error as validate.
      if (!r.ok()) {
        EXPECT_EQ(r.error().message.substr(0, got.size()), got);
      }
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(store.toJson(), before) << "store changed by a failed apply";
  }
}

}  // namespace
}  // namespace svclb
