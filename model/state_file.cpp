#include "model/state_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>

namespace svclb {

using nlohmann::json;

namespace {

namespace fs = std::filesystem;

Status writeAll(int fd, std::string_view data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno(errno, what);
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

Status mkdirs(const fs::path& dir) {
  fs::path cur;
  for (const auto& part : dir) {
    cur /= part;
    if (cur == "/" || cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
      return Error::fromErrno(errno, "create directory " + cur.string());
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Error::fromErrno(errno, "stat " + dir.string());
  if (!S_ISDIR(st.st_mode)) return Error{ENOTDIR, dir.string() + ": not a directory"};
  return {};
}

fs::path dirOf(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path() : fs::path(".");
}

Status fsyncDir(const fs::path& dir, const char* what) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Error::fromErrno(errno, fmt::format("{}: open {}", what, dir.string()));
  Status st;
  if (::fsync(dfd) != 0)
    st = Error::fromErrno(errno, fmt::format("{}: fsync {}", what, dir.string()));
  ::close(dfd);
  return st;
}

// Whole file; ENOENT is reported as nullopt.
Result<std::optional<std::string>> readFile(const std::string& path, const char* what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return Error::fromErrno(errno, fmt::format("{}: open {}", what, path));
  }
  std::string data;
  struct stat sb {};
  if (::fstat(fd, &sb) == 0 && sb.st_size > 0) data.reserve(static_cast<size_t>(sb.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Error::fromErrno(err, fmt::format("{}: read {}", what, path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return std::optional<std::string>(std::move(data));
}

std::string newGeneration() {
  uint64_t r[2] = {};
  if (::getrandom(r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    // Never fails for 16 bytes once the pool is initialised; be safe anyway.
    r[0] = static_cast<uint64_t>(::time(nullptr)) ^ (static_cast<uint64_t>(::getpid()) << 32);
    r[1] = reinterpret_cast<uintptr_t>(&r);
  }
  return fmt::format("{:016x}{:016x}", r[0], r[1]);
}

template <class T>
void appendList(std::string& out, const char* field, const std::map<Store::Key, T>& m) {
  out += ",\"";
  out += field;
  out += "\":[";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    appendJson(out, Object{v});
  }
  out += ']';
}

}  // namespace

StateFile::~StateFile() { closeJournal(); }

void StateFile::closeJournal() {
  if (journalFd_ >= 0) ::close(journalFd_);
  journalFd_ = -1;
}

Result<Store> StateFile::load(StoreConfig cfg) {
  closeJournal();
  generation_.clear();
  snapshotBytes_ = journalBytes_ = 0;
  needsSnapshot_ = true;
  auto corrupt = [&](const std::string& file, const std::string& why) {
    return Error{EINVAL, fmt::format("load state: corrupt state file {}: {}", file, why)};
  };

  auto data = readFile(path_, "load state");
  if (!data) return data.error();
  if (!*data) return Store(std::move(cfg));
  json j;
  try {
    j = json::parse(**data);
  } catch (const std::exception& e) {
    return corrupt(path_, e.what());
  }
  auto st = Store::fromJson(j, cfg);
  if (!st) return corrupt(path_, st.error().message);
  snapshotBytes_ = (*data)->size();
  if (auto g = j.find("generation"); g != j.end() && g->is_string())
    generation_ = g->get<std::string>();
  if (generation_.empty()) return st;  // an older state file: no journal

  auto journal = readFile(journalPath(), "load state");
  if (!journal) return journal.error();
  needsSnapshot_ = false;
  if (!*journal) return st;
  const std::string& text = **journal;
  journalBytes_ = text.size();
  bool replayed = false;
  size_t pos = 0, line = 0;
  while (pos < text.size()) {
    ++line;
    const size_t nl = text.find('\n', pos);
    const bool last = nl == std::string::npos || nl + 1 == text.size();
    std::string_view rec(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    json r = json::parse(rec.begin(), rec.end(), nullptr, /*allow_exceptions=*/false);
    if (nl == std::string::npos || r.is_discarded() || !r.is_object()) {
      // A crash mid-append tears the last record only; it was never
      // acknowledged. Anything else is damage.
      if (last) {
        needsSnapshot_ = true;
        break;
      }
      return corrupt(journalPath(), fmt::format("line {} is not a JSON object", line));
    }
    auto g = r.find("generation");
    if (g == r.end() || !g->is_string() || g->get<std::string>() != generation_) {
      needsSnapshot_ = true;  // left by a crash right after a new snapshot
      continue;
    }
    if (auto puts = r.find("put"); puts != r.end() && puts->is_array())
      for (const auto& item : *puts) {
        auto obj = fromJson(item);
        if (!obj)
          return corrupt(journalPath(), fmt::format("line {}: {}", line, obj.error().message));
        const ObjectMeta& m = metaOf(*obj);
        Store::Key key{m.ns, m.name};
        std::visit(
            [&](auto&& o) {
              using T = std::decay_t<decltype(o)>;
              if constexpr (std::is_same_v<T, Service>)
                st->services_[key] = std::move(o);
              else if constexpr (std::is_same_v<T, Endpoints>)
                st->endpoints_[key] = std::move(o);
              else if constexpr (std::is_same_v<T, EndpointSlice>)
                st->slices_[key] = std::move(o);
              else if constexpr (std::is_same_v<T, IPAddressPool>)
                st->pools_[key] = std::move(o);
              else
                st->l2Advertisements_[key] = std::move(o);
            },
            std::move(*obj));
      }
    if (auto dels = r.find("delete"); dels != r.end() && dels->is_array())
      for (const auto& d : *dels) {
        if (!d.is_object() || !d.value("kind", json()).is_string() ||
            !d.value("namespace", json()).is_string() || !d.value("name", json()).is_string())
          return corrupt(journalPath(), fmt::format("line {}: bad delete entry", line));
        const std::string kind = d["kind"];
        Store::Key key{d["namespace"].get<std::string>(), d["name"].get<std::string>()};
        if (kind == "Service")
          st->services_.erase(key);
        else if (kind == "Endpoints")
          st->endpoints_.erase(key);
        else if (kind == "EndpointSlice")
          st->slices_.erase(key);
        else if (kind == "IPAddressPool")
          st->pools_.erase(key);
        else if (kind == "L2Advertisement")
          st->l2Advertisements_.erase(key);
        else
          return corrupt(journalPath(), fmt::format("line {}: unknown kind {}", line, kind));
      }
    replayed = true;
  }
  if (replayed) st->repair();
  return st;
}

Status StateFile::saveAll(const Store& s) {
  const fs::path p(path_);
  const fs::path dir = dirOf(path_);
  if (Status st = mkdirs(dir); !st.ok())
    return Error{st.error().code, "save state: " + st.error().message};

  const std::string gen = newGeneration();
  std::string data = "{\"version\":1,\"generation\":\"" + gen + "\"";
  appendList(data, "services", s.services_);
  appendList(data, "endpoints", s.endpoints_);
  appendList(data, "endpointSlices", s.slices_);
  appendList(data, "ipAddressPools", s.pools_);
  appendList(data, "l2Advertisements", s.l2Advertisements_);
  data += "}\n";

  const fs::path tmp = dir / fmt::format(".{}.tmp.{}", p.filename().string(), ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::fromErrno(errno, "save state: create " + tmp.string());
  Status st = writeAll(fd, data, "save state: write " + tmp.string());
  if (st.ok() && ::fsync(fd) != 0)
    st = Error::fromErrno(errno, "save state: fsync " + tmp.string());
  if (::close(fd) != 0 && st.ok())
    st = Error::fromErrno(errno, "save state: close " + tmp.string());
  if (st.ok() && ::rename(tmp.c_str(), p.c_str()) != 0)
    st = Error::fromErrno(errno, "save state: rename " + tmp.string() + " to " + path_);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  // The journal's records are in the snapshot now. Should the unlink not
  // reach the disk, its records carry the old generation and are ignored.
  closeJournal();
  generation_ = gen;
  snapshotBytes_ = data.size();
  journalBytes_ = 0;
  needsSnapshot_ = false;
  if (::unlink(journalPath().c_str()) != 0 && errno != ENOENT) {
    needsSnapshot_ = true;  // never append to a journal we could not remove
    return Error::fromErrno(errno, "save state: remove " + journalPath());
  }
  // Make the rename (and the unlink) durable.
  return fsyncDir(dir, "save state");
}

Status StateFile::saveChange(const Store& s, const Store::Undo& changed) {
  if (needsSnapshot_ || generation_.empty()) return saveAll(s);
  std::string rec = "{\"generation\":\"" + generation_ + "\",\"put\":[";
  std::string dels;
  bool firstPut = true;
  auto add = [&](const auto& log, const auto& m, const char* kind) {
    std::set<Store::Key> seen;
    for (const auto& [key, old] : log) {
      if (!seen.insert(key).second) continue;
      auto it = m.find(key);
      if (it != m.end()) {
        if (!firstPut) rec += ',';
        firstPut = false;
        appendJson(rec, Object{it->second});
      } else {
        dels += dels.empty() ? "" : ",";
        dels += "{\"kind\":\"";
        dels += kind;
        dels += "\",\"namespace\":";
        appendJsonString(dels, key.first);
        dels += ",\"name\":";
        appendJsonString(dels, key.second);
        dels += '}';
      }
    }
  };
  add(changed.services, s.services_, "Service");
  add(changed.endpoints, s.endpoints_, "Endpoints");
  add(changed.slices, s.slices_, "EndpointSlice");
  add(changed.pools, s.pools_, "IPAddressPool");
  add(changed.l2Advertisements, s.l2Advertisements_, "L2Advertisement");
  rec += "],\"delete\":[" + dels + "]}\n";
  if (journalBytes_ + rec.size() > std::max(snapshotBytes_, minCompactBytes_)) return saveAll(s);

  bool created = false;
  if (journalFd_ < 0) {
    journalFd_ =
        ::open(journalPath().c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = journalFd_ >= 0;
    if (journalFd_ < 0 && errno == EEXIST)
      journalFd_ = ::open(journalPath().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (journalFd_ < 0) return Error::fromErrno(errno, "save state: open " + journalPath());
  }
  Status st = writeAll(journalFd_, rec, "save state: write " + journalPath());
  if (st.ok() && ::fdatasync(journalFd_) != 0)
    st = Error::fromErrno(errno, "save state: fdatasync " + journalPath());
  if (st.ok() && created) st = fsyncDir(dirOf(path_), "save state");
  if (!st.ok()) {
    // Part of the record may be on disk: the next save is a snapshot.
    needsSnapshot_ = true;
    closeJournal();
    return st;
  }
  journalBytes_ += rec.size();
  return {};
}

}  // namespace svclb
