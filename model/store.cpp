// The desired-state store: all-or-nothing apply/delete, ClusterIP
// allocation, and crash-safe persistence.
//
// ClusterIP allocation policy: deterministic, the lowest free address of
// StoreConfig.serviceCIDR, skipping the network and broadcast addresses and
// every IP requested explicitly by a Service of the same apply (so the order
// of documents in a file does not decide who gets an address). A freed IP is
// reused by the next allocation.
//
// Deletes follow kubectl: only what is named is deleted. Deleting a Service
// leaves its Endpoints/EndpointSlices alone (Kubernetes' endpoints controller
// would clean them up; svclb has none). A Service without a ClusterIP
// frontend simply contributes nothing to frontends().
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "model/internal.h"
#include "model/model.h"

namespace svclb {

using nlohmann::json;
using namespace model_internal;

namespace {

using Key = std::pair<std::string, std::string>;

std::string newUid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffULL);
}

std::string nowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += sep;
    s += v[i];
  }
  return s;
}

std::string notFound(const std::string& kind, const std::string& name) {
  return fmt::format("Error from server (NotFound): {} {} not found", resourcePlural(kind),
                     goQuote(name));
}

template <class T>
ApplyAction upsert(std::map<Key, T>& m, T obj) {
  Key key{obj.meta.ns, obj.meta.name};
  auto it = m.find(key);
  if (it == m.end()) {
    obj.meta.uid = newUid();
    obj.meta.creationTimestamp = nowRfc3339();
    m.emplace(std::move(key), std::move(obj));
    return ApplyAction::Created;
  }
  if (sameContent(Object{it->second}, Object{obj})) return ApplyAction::Unchanged;
  obj.meta.uid = it->second.meta.uid;
  obj.meta.creationTimestamp = it->second.meta.creationTimestamp;
  it->second = std::move(obj);
  return ApplyAction::Configured;
}

Status writeAll(int fd, const std::string& data, const std::string& what) {
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

Status mkdirs(const std::filesystem::path& dir) {
  std::filesystem::path cur;
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

}  // namespace

Store::Store(StoreConfig cfg) : cfg_(std::move(cfg)) {}

Result<std::vector<ApplyOutcome>> Store::apply(const std::vector<Object>& objs) {
  std::vector<std::string> errors;
  for (const auto& obj : objs) {
    Status st = validate(obj);
    if (!st.ok()) errors.push_back(st.error().message);
  }
  if (!errors.empty()) return Error{EINVAL, join(errors, "\n")};

  const std::optional<Cidr4> cidr = parseCidr4(cfg_.serviceCIDR);
  auto services = services_;
  auto endpoints = endpoints_;
  auto slices = slices_;

  // Who holds which ClusterIP, kept up to date as the apply proceeds.
  std::map<uint32_t, Key> used;
  for (const auto& [key, svc] : services)
    if (auto ip = parseIPv4(svc.clusterIP)) used[*ip] = key;
  // Explicit requests of this apply, kept out of dynamic allocation.
  std::set<uint32_t> requested;
  for (const auto& obj : objs)
    if (const auto* s = std::get_if<Service>(&obj))
      if (auto ip = parseIPv4(s->clusterIP)) requested.insert(*ip);

  std::vector<ApplyOutcome> outcomes;
  for (const auto& obj : objs) {
    const ObjectMeta& meta = metaOf(obj);
    ApplyOutcome out{kindOf(obj), meta.ns, meta.name, ApplyAction::Unchanged};
    if (const auto* in = std::get_if<Service>(&obj)) {
      Service s = *in;
      Key key{s.meta.ns, s.meta.name};
      auto fail = [&](const std::string& path, const std::string& detail) {
        FieldErrors fe;
        fe.invalid(path, goStringSlice({s.clusterIP}), detail);
        errors.push_back(fe.message("Service", s.meta.name));
      };
      auto it = services.find(key);
      const Service* old = it == services.end() ? nullptr : &it->second;
      const bool externalName = s.type == "ExternalName";
      const bool wasExternalName = old && old->type == "ExternalName";
      if (old && !externalName && !wasExternalName) {
        // kubectl apply leaves an unset clusterIP alone: keep what we have.
        if (s.clusterIP.empty()) s.clusterIP = old->clusterIP;
        if (!old->clusterIP.empty() && s.clusterIP != old->clusterIP) {
          fail("spec.clusterIPs[0]", "may not change once set");
          continue;
        }
      }
      const bool keeps = old && !old->clusterIP.empty() && s.clusterIP == old->clusterIP;
      if (!externalName && s.clusterIP != "None" && !keeps) {
        if (!cidr) {
          errors.push_back(fmt::format(
              "Internal error occurred: failed to allocate a serviceIP: invalid service CIDR {}",
              goQuote(cfg_.serviceCIDR)));
          continue;
        }
        const std::string range = fmt::format("{}/{}", formatIPv4(cidr->base), cidr->prefix);
        if (s.clusterIP.empty()) {
          std::optional<uint32_t> got;
          if (cidr->prefix <= 30) {
            for (uint64_t ip = uint64_t{cidr->base} + 1; ip < cidr->broadcast(); ++ip) {
              auto u = static_cast<uint32_t>(ip);
              if (!used.count(u) && !requested.count(u)) {
                got = u;
                break;
              }
            }
          }
          if (!got) {
            errors.push_back(
                "Internal error occurred: failed to allocate a serviceIP: range is full");
            continue;
          }
          s.clusterIP = formatIPv4(*got);
        } else {
          uint32_t ip = *parseIPv4(s.clusterIP);  // validate() checked the format
          if (!cidr->contains(ip) || ip == cidr->base || ip == cidr->broadcast()) {
            fail("spec.clusterIPs",
                 fmt::format("failed to allocate IP {}: the provided IP ({}) is not in the valid "
                             "range. The range of valid IPs is {}",
                             s.clusterIP, s.clusterIP, range));
            continue;
          }
          auto holder = used.find(ip);
          if (holder != used.end() && holder->second != key) {
            fail("spec.clusterIPs", fmt::format("failed to allocate IP {}: provided IP is already "
                                                "allocated",
                                                s.clusterIP));
            continue;
          }
        }
      }
      // Release the old address if the Service moved off it (to ExternalName).
      if (old)
        if (auto oldIp = parseIPv4(old->clusterIP); oldIp && s.clusterIP != old->clusterIP)
          used.erase(*oldIp);
      if (auto ip = parseIPv4(s.clusterIP)) used[*ip] = key;
      out.action = upsert(services, std::move(s));
    } else if (const auto* e = std::get_if<Endpoints>(&obj)) {
      out.action = upsert(endpoints, *e);
    } else {
      out.action = upsert(slices, std::get<EndpointSlice>(obj));
    }
    outcomes.push_back(std::move(out));
  }
  if (!errors.empty()) return Error{EINVAL, join(errors, "\n")};
  services_ = std::move(services);
  endpoints_ = std::move(endpoints);
  slices_ = std::move(slices);
  return outcomes;
}

Result<std::vector<ApplyOutcome>> Store::remove(const std::string& kind, const std::string& ns,
                                                const std::string& name) {
  auto k = kindFromResource(kind);
  if (!k)
    return Error{EINVAL,
                 fmt::format("error: the server doesn't have a resource type {}", goQuote(kind))};
  Key key{ns.empty() ? "default" : ns, name};
  size_t erased = 0;
  if (*k == "Service")
    erased = services_.erase(key);
  else if (*k == "Endpoints")
    erased = endpoints_.erase(key);
  else
    erased = slices_.erase(key);
  if (!erased) return Error{ENOENT, notFound(*k, name)};
  return std::vector<ApplyOutcome>{{*k, key.first, name, ApplyAction::Deleted}};
}

Result<std::vector<ApplyOutcome>> Store::removeAll(const std::vector<Object>& objs) {
  Store next = *this;
  std::vector<std::string> errors;
  std::vector<ApplyOutcome> outcomes;
  std::set<std::tuple<std::string, std::string, std::string>> done;
  for (const auto& obj : objs) {
    const ObjectMeta& m = metaOf(obj);
    const std::string kind = kindOf(obj);
    // The same object twice in one file is deleted once.
    if (!done.insert({kind, m.ns, m.name}).second) continue;
    auto r = next.remove(kind, m.ns, m.name);
    if (!r.ok()) {
      errors.push_back(r.error().message);
      continue;
    }
    outcomes.insert(outcomes.end(), r->begin(), r->end());
  }
  if (!errors.empty()) return Error{ENOENT, join(errors, "\n")};
  *this = std::move(next);
  return outcomes;
}

nlohmann::json Store::toJson() const {
  json services = json::array(), endpoints = json::array(), slices = json::array();
  for (const auto& [k, s] : services_) services.push_back(svclb::toJson(Object{s}));
  for (const auto& [k, e] : endpoints_) endpoints.push_back(svclb::toJson(Object{e}));
  for (const auto& [k, s] : slices_) slices.push_back(svclb::toJson(Object{s}));
  return json{{"version", 1},
              {"services", std::move(services)},
              {"endpoints", std::move(endpoints)},
              {"endpointSlices", std::move(slices)}};
}

Result<Store> Store::fromJson(const nlohmann::json& j, StoreConfig cfg) {
  if (!j.is_object()) return Error{EINVAL, "invalid state: not a JSON object"};
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != 1)
    return Error{EINVAL, "invalid state: unsupported version (want 1)"};
  Store st(std::move(cfg));
  const std::pair<const char*, const char*> lists[] = {
      {"services", "Service"}, {"endpoints", "Endpoints"}, {"endpointSlices", "EndpointSlice"}};
  for (const auto& [field, kind] : lists) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_array())
      return Error{EINVAL, fmt::format("invalid state: {} is not a list", field)};
    for (const auto& item : *it) {
      auto obj = svclb::fromJson(item);
      if (!obj.ok()) return Error{EINVAL, fmt::format("invalid state: {}", obj.error().message)};
      if (kindOf(*obj) != kind)
        return Error{EINVAL, fmt::format("invalid state: {} in {}", kindOf(*obj), field)};
      const ObjectMeta& m = metaOf(*obj);
      Key key{m.ns, m.name};
      if (auto* s = std::get_if<Service>(&*obj))
        st.services_[key] = std::move(*s);
      else if (auto* e = std::get_if<Endpoints>(&*obj))
        st.endpoints_[key] = std::move(*e);
      else
        st.slices_[key] = std::get<EndpointSlice>(std::move(*obj));
    }
  }
  return st;
}

Status Store::save(const std::string& path) const {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (Status st = mkdirs(dir); !st.ok())
    return Error{st.error().code, "save state: " + st.error().message};

  const std::string data = toJson().dump(2) + "\n";
  const fs::path tmp = dir / fmt::format(".{}.tmp.{}", p.filename().string(), ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::fromErrno(errno, "save state: create " + tmp.string());
  Status st = writeAll(fd, data, "save state: write " + tmp.string());
  if (st.ok() && ::fsync(fd) != 0)
    st = Error::fromErrno(errno, "save state: fsync " + tmp.string());
  if (::close(fd) != 0 && st.ok())
    st = Error::fromErrno(errno, "save state: close " + tmp.string());
  if (st.ok() && ::rename(tmp.c_str(), p.c_str()) != 0)
    st = Error::fromErrno(errno, "save state: rename " + tmp.string() + " to " + path);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Error::fromErrno(errno, "save state: open " + dir.string());
  Status dst;
  if (::fsync(dfd) != 0) dst = Error::fromErrno(errno, "save state: fsync " + dir.string());
  ::close(dfd);
  return dst;
}

Result<Store> Store::load(const std::string& path, StoreConfig cfg) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Store(std::move(cfg));
    return Error::fromErrno(errno, "load state: open " + path);
  }
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Error::fromErrno(err, "load state: read " + path);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  json j;
  try {
    j = json::parse(data);
  } catch (const std::exception& e) {
    return Error{EINVAL, fmt::format("load state: corrupt state file {}: {}", path, e.what())};
  }
  auto st = fromJson(j, std::move(cfg));
  if (!st.ok())
    return Error{EINVAL,
                 fmt::format("load state: corrupt state file {}: {}", path, st.error().message)};
  return st;
}

}  // namespace svclb
