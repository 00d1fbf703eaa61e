// svclbd's persisted desired state: a snapshot (<path>, e.g. state.json)
// plus a journal of the changes made since (<path>.journal), so that one
// changed Endpoints costs an append of that object and an fdatasync, not a
// rewrite of every object (~5 MB for 10,000 Services).
//
// Snapshot: {"version":1,"generation":G,"services":[...],"endpoints":[...],
// "endpointSlices":[...],"ipAddressPools":[...],"l2Advertisements":[...]},
// written atomically (tmp file, fsync, rename, fsync dir). G is random per
// snapshot.
// Journal: one JSON object per line, appended and fdatasync'ed before the
// change is acknowledged:
//   {"generation":G,"put":[objects as they are now],
//    "delete":[{"kind":K,"namespace":N,"name":X}]}
// Only records of the snapshot's generation are replayed: a new snapshot
// gets a new G and then removes the journal, so a crash in between leaves
// records that are ignored (the snapshot already holds them). A torn last
// line (a crash mid-append: never acknowledged) is ignored; the next save
// then writes a snapshot instead of appending behind it. The journal is
// folded into a new snapshot once it outgrows the snapshot (at least 1 MiB).
#pragma once

#include <string>

#include "common/result.h"
#include "model/model.h"

namespace svclb {

class StateFile {
 public:
  // `minCompactBytes`: the journal may grow to max(snapshot, this) bytes.
  explicit StateFile(std::string path, size_t minCompactBytes = 1 << 20)
      : path_(std::move(path)), minCompactBytes_(minCompactBytes) {}
  ~StateFile();
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  const std::string& path() const { return path_; }
  std::string journalPath() const { return path_ + ".journal"; }

  // The snapshot with its journal replayed; no snapshot = an empty store.
  // Also reads state files of older versions (no generation, no journal).
  Result<Store> load(StoreConfig cfg = {});
  // A new snapshot of `s`; the journal is emptied.
  Status saveAll(const Store& s);
  // Makes the change recorded in `changed` (the undo log of what was just
  // applied to `s`) durable: appends the current version of every object it
  // names (or its deletion). Falls back to saveAll when there is no
  // snapshot of this generation yet, or the journal grew too large.
  Status saveChange(const Store& s, const Store::Undo& changed);

 private:
  void closeJournal();
  std::string path_;
  size_t minCompactBytes_;
  std::string generation_;  // of the snapshot on disk; "" = none written/loaded yet
  size_t snapshotBytes_ = 0, journalBytes_ = 0;
  bool needsSnapshot_ = true;  // appending is not safe (no snapshot, torn or stale journal)
  int journalFd_ = -1;
};

}  // namespace svclb
