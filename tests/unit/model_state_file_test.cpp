// StateFile (model/state_file.h): the daemon's snapshot + journal. What was
// saved is what loads, in every order of snapshots, appends, deletions,
// compactions, torn or stale records and older state files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/model.h"
#include "model/state_file.h"
#include "temp_dir.h"

namespace svclb {
namespace {

namespace fs = std::filesystem;

struct Dir : testing_util::TempDir {
  Dir() : TempDir("svclb-statefile") {}
};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string svc(const std::string& name, const std::string& ip) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  clusterIP: " + ip + "\n  ports:\n  - port: 80\n";
}

std::string ep(const std::string& name, const std::string& ip) {
  return "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: " + name +
         "\nsubsets:\n- addresses:\n  - ip: " + ip + "\n  ports:\n  - port: 8080\n";
}

// Applies `text` to `st` and saves the change as the daemon does.
void change(Store& st, StateFile& f, const std::string& text) {
  auto objs = parseManifests(text, "t.yaml");
  ASSERT_TRUE(objs.ok()) << objs.error().message;
  Store::Undo undo;
  auto r = st.apply(*objs, &undo);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto saved = f.saveChange(st, undo);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
}

void remove(Store& st, StateFile& f, const std::string& kind, const std::string& name) {
  Store::Undo undo;
  ASSERT_TRUE(st.remove(kind, "default", name, &undo).ok());
  ASSERT_TRUE(f.saveChange(st, undo).ok());
}

void expectLoads(const std::string& path, const Store& want) {
  StateFile again(path);
  auto loaded = again.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->toJson(), want.toJson());
  EXPECT_EQ(loaded->frontends(), want.frontends());
}

TEST(ModelStateFile, FirstChangeIsASnapshotThenAppends) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  StateFile f(path);
  auto st = f.load();
  ASSERT_TRUE(st.ok());
  change(*st, f, svc("web", "10.96.0.10") + "---\n" + ep("web", "10.0.0.1"));
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(f.journalPath()));  // no snapshot yet: one was written
  const std::string snapshot = read(path);
  expectLoads(path, *st);

  change(*st, f, ep("web", "10.0.0.2"));
  change(*st, f, svc("api", "10.96.0.11"));
  EXPECT_EQ(read(path), snapshot);  // appended, not rewritten
  ASSERT_TRUE(fs::exists(f.journalPath()));
  EXPECT_EQ(fs::status(f.journalPath()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  expectLoads(path, *st);

  remove(*st, f, "Endpoints", "web");
  remove(*st, f, "Service", "api");
  expectLoads(path, *st);
  EXPECT_EQ(st->services().size(), 1u);
  EXPECT_TRUE(st->endpoints().empty());

  // A loaded file goes on appending to the same journal.
  StateFile g(path);
  auto st2 = g.load();
  ASSERT_TRUE(st2.ok());
  change(*st2, g, ep("web", "10.0.0.3"));
  EXPECT_EQ(read(path), snapshot);
  expectLoads(path, *st2);
}

TEST(ModelStateFile, JournalIsFoldedIntoASnapshotWhenLarge) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  StateFile f(path, /*minCompactBytes=*/2048);
  auto st = f.load();
  ASSERT_TRUE(st.ok());
  change(*st, f, svc("web", "10.96.0.10"));
  bool compacted = false;
  for (int i = 1; i < 60; ++i) {
    change(*st, f, ep("web", "10.0.0." + std::to_string(i)));
    if (!fs::exists(f.journalPath())) compacted = true;
    if (fs::exists(f.journalPath())) {
      EXPECT_LE(fs::file_size(f.journalPath()), 2048u);
    }
  }
  EXPECT_TRUE(compacted);
  expectLoads(path, *st);
}

TEST(ModelStateFile, TornLastRecordIsIgnoredAndNotAppendedTo) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  StateFile f(path);
  auto st = f.load();
  ASSERT_TRUE(st.ok());
  change(*st, f, svc("web", "10.96.0.10"));
  change(*st, f, ep("web", "10.0.0.1"));
  const std::string journal = read(f.journalPath());
  // A crash in the middle of the next append.
  { std::ofstream(f.journalPath(), std::ios::app) << "{\"generation\":\"x\",\"put\":[{\"api"; }

  StateFile g(path);
  auto loaded = g.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->toJson(), st->toJson());
  // The next change is a snapshot: nothing is appended behind the torn bytes.
  change(*loaded, g, ep("web", "10.0.0.2"));
  EXPECT_FALSE(fs::exists(g.journalPath()));
  expectLoads(path, *loaded);
}

TEST(ModelStateFile, RecordsOfAnotherGenerationAreIgnored) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  StateFile f(path);
  auto st = f.load();
  ASSERT_TRUE(st.ok());
  change(*st, f, svc("web", "10.96.0.10"));
  change(*st, f, ep("web", "10.0.0.1"));
  const std::string oldJournal = read(f.journalPath());
  // A new snapshot whose journal removal did not reach the disk: the old
  // records come back, and must not be replayed over the new snapshot.
  Store::Undo undo;
  ASSERT_TRUE(st->remove("Endpoints", "default", "web", &undo).ok());
  ASSERT_TRUE(f.saveAll(*st).ok());
  { std::ofstream(f.journalPath()) << oldJournal; }
  expectLoads(path, *st);
  EXPECT_TRUE(st->endpoints().empty());
}

TEST(ModelStateFile, DamagedJournalNamesThePath) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  StateFile f(path);
  auto st = f.load();
  ASSERT_TRUE(st.ok());
  change(*st, f, svc("web", "10.96.0.10"));
  change(*st, f, ep("web", "10.0.0.1"));
  const std::string journal = read(f.journalPath());
  { std::ofstream(f.journalPath()) << "not json\n" << journal; }
  StateFile g(path);
  auto loaded = g.load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.error().message.find("corrupt state file " + g.journalPath()), std::string::npos)
      << loaded.error().message;
}

TEST(ModelStateFile, ReadsTheOlderFormatAndThenWritesASnapshot) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  Store st;
  auto objs = parseManifests(svc("web", "10.96.0.10") + "---\n" + ep("web", "10.0.0.1"), "t");
  ASSERT_TRUE(objs.ok());
  ASSERT_TRUE(st.apply(*objs).ok());
  { std::ofstream(path) << st.toJson().dump(2) << "\n"; }  // what svclbd wrote before
  // A journal next to a file without generation is not ours: ignored.
  { std::ofstream(path + ".journal") << "{\"generation\":\"\",\"put\":[],\"delete\":[]}\n"; }
  StateFile f(path);
  auto loaded = f.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->toJson(), st.toJson());
  change(*loaded, f, ep("web", "10.0.0.2"));
  EXPECT_FALSE(fs::exists(f.journalPath()));
  EXPECT_NE(read(path).find("\"generation\""), std::string::npos);
  expectLoads(path, *loaded);
}

// A stored object that no longer passes validation (edited by hand, or
// written before a stricter rule) is loaded as it is, as the API server
// serves stored objects, and named by invalidObjects() for the daemon's log.
TEST(ModelStateFile, InvalidStoredObjectsLoadAndAreNamed) {
  Dir d;
  const std::string path = (d.path / "state.json").string();
  Store st;
  auto objs = parseManifests(svc("web", "10.96.0.10") + "---\n" + svc("api", "10.96.0.11") +
                                 "---\n" + ep("web", "10.0.0.1"),
                             "t");
  ASSERT_TRUE(objs.ok());
  ASSERT_TRUE(st.apply(*objs).ok());
  EXPECT_TRUE(st.invalidObjects().empty());
  nlohmann::json j = st.toJson();
  for (auto& s : j["services"])
    if (s["metadata"]["name"] == "api") s["spec"]["ports"][0]["port"] = 70000;
  j["endpoints"][0]["subsets"][0]["addresses"][0]["ip"] = "999.1.1.1";
  { std::ofstream(path) << j.dump() << "\n"; }
  StateFile f(path);
  auto loaded = f.load();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->services().size(), 2u);
  const auto bad = loaded->invalidObjects();
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].rfind("default: The Service \"api\" is invalid: spec.ports[0].port", 0), 0u)
      << bad[0];
  EXPECT_EQ(
      bad[1].rfind("default: The Endpoints \"web\" is invalid: subsets[0].addresses[0].ip", 0), 0u)
      << bad[1];
}

}  // namespace
}  // namespace svclb
