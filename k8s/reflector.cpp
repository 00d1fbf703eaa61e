#include "k8s/reflector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

namespace svclb::k8s {

using nlohmann::json;
using namespace std::chrono_literals;

// ---- resources ---------------------------------------------------------------

Resource servicesResource() {
  return Resource{"services", "v1", "Service", "/api/v1/services", kProxyLabelSelector, ""};
}

Resource endpointSlicesResource(bool withHeadless) {
  return Resource{"endpointslices",
                  "discovery.k8s.io/v1",
                  "EndpointSlice",
                  "/apis/discovery.k8s.io/v1/endpointslices",
                  withHeadless ? kNoProxyNameLabelSelector : kProxyLabelSelector,
                  ""};
}

Resource nodeResource(const std::string& nodeName) {
  return Resource{"nodes", "v1", "Node", "/api/v1/nodes", "", "metadata.name=" + nodeName};
}

std::string selectorQuery(const Resource& r) {
  std::string q;
  if (!r.labelSelector.empty()) q += "labelSelector=" + queryEscape(r.labelSelector);
  if (!r.fieldSelector.empty()) {
    if (!q.empty()) q += '&';
    q += "fieldSelector=" + queryEscape(r.fieldSelector);
  }
  return q;
}

std::string watchPath(const Resource& r, const std::string& resourceVersion, int timeoutSeconds) {
  std::string p = fmt::format(
      "{}?watch=1&resourceVersion={}&allowWatchBookmarks=true&"
      "timeoutSeconds={}",
      r.path, queryEscape(resourceVersion), timeoutSeconds);
  std::string sel = selectorQuery(r);
  if (!sel.empty()) p += "&" + sel;
  return p;
}

void fillTypeMeta(json& item, const Resource& r) {
  if (!item.is_object()) return;
  auto av = item.find("apiVersion");
  if (av == item.end() || !av->is_string() || av->get_ref<const std::string&>().empty())
    item["apiVersion"] = r.apiVersion;
  auto k = item.find("kind");
  if (k == item.end() || !k->is_string() || k->get_ref<const std::string&>().empty())
    item["kind"] = r.kind;
}

void fillTypeMeta(std::vector<json>& items, const Resource& r) {
  for (auto& it : items) fillTypeMeta(it, r);
}

Recovery recoveryFor(const Error& err) {
  if (err.code == ESTALE) return Recovery::Relist;
  if (err.code == ECANCELED) return Recovery::Stop;
  return Recovery::Reconnect;
}

Recovery recoveryForStatus(const json& status) {
  return recoveryFor(watchStatusError(status, "", ""));
}

// ---- backoff -------------------------------------------------------------------

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds cap, double jitter)
    : initial_(initial),
      cap_(cap),
      jitter_(std::clamp(jitter, 0.0, 1.0)),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next(double u) {
  u = std::clamp(u, 0.0, 1.0);
  double base = static_cast<double>(initial_.count());
  // 2^attempts without overflow: stop doubling once past the cap.
  for (unsigned i = 0; i < attempts_ && base < static_cast<double>(cap_.count()); ++i) base *= 2;
  base = std::min(base, static_cast<double>(cap_.count()));
  ++attempts_;
  double d = base * (1.0 - jitter_ * u);
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(d)));
}

std::chrono::milliseconds Backoff::next() {
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  return next(dist(rng_));
}

// ---- model objects -----------------------------------------------------------

namespace {

std::string describeJson(const json& j) {
  std::string kind = jsonString(j, {"kind"});
  std::string ns = jsonString(j, {"metadata", "namespace"});
  std::string name = jsonString(j, {"metadata", "name"});
  return fmt::format("{} {}{}{}", kind.empty() ? "object" : kind, ns, ns.empty() ? "" : "/",
                     name.empty() ? "(no name)" : name);
}

}  // namespace

Result<Object> toModelObject(const json& j) {
  auto o = fromJson(j);
  if (!o)
    return Error{o.error().code, describeJson(j) + " from the API server: " + o.error().message};
  return o;
}

std::vector<Object> toModelObjects(const std::vector<json>& items,
                                   const std::function<void(const std::string&)>& warn) {
  std::vector<Object> out;
  out.reserve(items.size());
  for (const auto& it : items) {
    auto o = toModelObject(it);
    if (o) {
      out.push_back(std::move(*o));
      continue;
    }
    std::string line = "skipped " + o.error().message;
    if (warn)
      warn(line);
    else
      fmt::print(stderr, "svclbd: warning: {}\n", line);
  }
  return out;
}

Result<NodeInfo> nodeInfoFromJson(const json& node) {
  if (!node.is_object()) return Error{EINVAL, "Node from the API server: not a JSON object"};
  NodeInfo n;
  n.name = jsonString(node, {"metadata", "name"});
  n.zone = jsonString(node, {"metadata", "labels", "topology.kubernetes.io/zone"});
  if (n.name.empty()) return Error{EINVAL, "Node from the API server has no metadata.name"};
  auto status = node.find("status");
  if (status != node.end() && status->is_object()) {
    auto addrs = status->find("addresses");
    if (addrs != status->end() && addrs->is_array())
      for (const auto& a : *addrs) {
        std::string type = jsonString(a, {"type"}), addr = jsonString(a, {"address"});
        if (addr.empty()) continue;
        if (type == "InternalIP") n.internalIPs.push_back(addr);
        if (type == "ExternalIP") n.externalIPs.push_back(addr);
      }
  }
  return n;
}

// ---- reflector -------------------------------------------------------------------

Reflector::Reflector(Resource res, ConnectionConfig cfg, ClientOptions copts,
                     ReflectorOptions ropts, Handlers h)
    : res_(std::move(res)),
      cfg_(std::move(cfg)),
      copts_(std::move(copts)),
      ropts_(ropts),
      h_(std::move(h)),
      backoff_(ropts.backoffInitial, ropts.backoffCap),
      rng_(std::random_device{}()) {
  st_.resource = res_.name;
  st_.server = cfg_.server;
  st_.state = "stopped";
}

Reflector::~Reflector() { stop(); }

Status Reflector::start() {
  if (thread_.joinable()) return {};
  auto c = Client::create(cfg_, copts_);
  if (!c) return c.error();
  client_ = std::move(*c);
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
    st_.state = "listing";
  }
  thread_ = std::thread([this] { run(); });
  return {};
}

void Reflector::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (client_) client_->cancel();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  st_.state = "stopped";
}

ReflectorStatus Reflector::status() const {
  std::lock_guard lock(mu_);
  return st_;
}

bool Reflector::listed() const {
  std::lock_guard lock(mu_);
  return st_.listed;
}

void Reflector::log(const std::string& line) {
  if (h_.log)
    h_.log(line);
  else
    fmt::print(stderr, "svclbd: {}\n", line);
}

void Reflector::failed(const Error& err) {
  auto delay = backoff_.next();
  {
    std::lock_guard lock(mu_);
    st_.lastError = err.message;
    st_.lastErrorTime = std::chrono::system_clock::now();
    st_.state = "backoff";
    ++st_.reconnects;
  }
  log(fmt::format("{}; retrying in {:.1f}s", err.message, delay.count() / 1000.0));
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, delay, [this] { return stopping_; });
}

void Reflector::run() {
  bool needList = true;
  unsigned goneStreak = 0;  // 410s in a row with nothing delivered between
  std::string rv;
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  while (!stopping()) {
    if (needList) {
      {
        std::lock_guard lock(mu_);
        st_.state = "listing";
      }
      auto l = client_->listAll(res_.path, selectorQuery(res_), "list " + res_.name);
      if (!l) {
        if (recoveryFor(l.error()) == Recovery::Stop) break;
        failed(l.error());
        continue;
      }
      fillTypeMeta(l->items, res_);
      rv = l->resourceVersion;
      {
        std::lock_guard lock(mu_);
        if (st_.listed) ++st_.relists;
        st_.resourceVersion = rv;
        st_.lastEvent = std::chrono::system_clock::now();
      }
      if (h_.replace) {
        try {
          h_.replace(res_, std::move(l->items));
        } catch (const std::exception& e) {
          // The receiver's state is unknown: list again after the backoff.
          failed(Error{EIO, fmt::format("taking the list of {} failed: {}", res_.name, e.what())});
          continue;
        }
      }
      {
        std::lock_guard lock(mu_);
        st_.listed = true;
      }
      needList = false;
    }

    int timeout = ropts_.watchTimeout;
    if (ropts_.watchTimeoutJitter > 0)
      timeout += std::uniform_int_distribution<int>(0, ropts_.watchTimeoutJitter - 1)(rng_);
    {
      std::lock_guard lock(mu_);
      st_.state = "watching";
    }
    std::optional<Error> statusErr, callbackErr;
    uint64_t delivered = 0;
    auto began = std::chrono::steady_clock::now();
    auto w = client_->watch(
        watchPath(res_, rv, timeout), timeout, "watch " + res_.name, [&](WatchEvent&& ev) {
          if (ev.type == WatchEventType::Error) {
            statusErr = watchStatusError(ev.object, client_->server(), "watch " + res_.name);
            return false;
          }
          std::string evRv = jsonString(ev.object, {"metadata", "resourceVersion"});
          if (!evRv.empty()) rv = evRv;
          {
            std::lock_guard lock(mu_);
            st_.resourceVersion = rv;
            st_.lastEvent = std::chrono::system_clock::now();
            if (ev.type == WatchEventType::Bookmark)
              ++st_.bookmarks;
            else
              ++st_.events;
          }
          ++delivered;
          if (ev.type == WatchEventType::Bookmark) return true;
          fillTypeMeta(ev.object, res_);
          if (h_.event) {
            try {
              h_.event(res_, ev.type, std::move(ev.object));
            } catch (const std::exception& e) {
              // That event is lost to the receiver: relist (a full replace).
              callbackErr =
                  Error{EIO, fmt::format("taking a {} event failed: {}", res_.name, e.what())};
              return false;
            }
          }
          return true;
        });
    if (delivered > 0) {
      goneStreak = 0;
      backoff_.reset();
    }
    if (callbackErr) {
      needList = true;
      failed(*callbackErr);
      continue;
    }
    std::optional<Error> err;
    if (!w)
      err = w.error();
    else if (statusErr)
      err = *statusErr;
    if (!err) {
      // The server ended the watch at its timeout: watch on from rv. One
      // that ends at once without a single event is a failing server.
      if (delivered == 0 && std::chrono::steady_clock::now() - began < 1s)
        failed(Error{EPROTO, fmt::format("the API server {} ended the watch of {} at once",
                                         client_->server(), res_.name)});
      else
        backoff_.reset();
      continue;
    }
    switch (recoveryFor(*err)) {
      case Recovery::Stop:
        break;
      case Recovery::Relist:
        log(fmt::format("{}; listing {} again", err->message, res_.name));
        needList = true;
        // A relist is immediate, unless the last one was followed by another
        // 410 at once (an apiserver compacting faster than we list).
        if (++goneStreak > 1) failed(*err);
        continue;
      case Recovery::Reconnect:
        failed(*err);
        continue;
    }
    break;  // Stop
  }
}

// ---- ClusterWatch ------------------------------------------------------------------

ClusterWatch::ClusterWatch(Options opts, Handlers h, std::function<void()> onSynced)
    : onSynced_(std::move(onSynced)) {
  std::vector<Resource> kinds = {servicesResource(), endpointSlicesResource(opts.headlessSlices)};
  if (!opts.nodeName.empty()) kinds.push_back(nodeResource(opts.nodeName));
  const unsigned n = static_cast<unsigned>(kinds.size());
  for (auto& kind : kinds) {
    Handlers wrapped = h;
    auto first = std::make_shared<bool>(true);  // touched by this reflector's thread only
    wrapped.replace = [this, n, first, replace = h.replace](const Resource& r,
                                                            std::vector<json>&& items) {
      if (replace) replace(r, std::move(items));
      if (!*first) return;
      *first = false;
      if (listedKinds_.fetch_add(1) + 1 == n) {
        synced_.store(true);
        if (onSynced_) onSynced_();
      }
    };
    reflectors_.push_back(std::make_unique<Reflector>(std::move(kind), opts.config, opts.client,
                                                      opts.reflector, std::move(wrapped)));
  }
}

ClusterWatch::~ClusterWatch() { stop(); }

Status ClusterWatch::start() {
  for (auto& r : reflectors_)
    if (auto st = r->start(); !st) {
      stop();
      return st;
    }
  return {};
}

void ClusterWatch::stop() {
  // Each stop cancels its request at once (curl_multi_wakeup), so this is quick.
  for (auto& r : reflectors_) r->stop();
}

std::vector<ReflectorStatus> ClusterWatch::status() const {
  std::vector<ReflectorStatus> out;
  for (const auto& r : reflectors_) out.push_back(r->status());
  return out;
}

}  // namespace svclb::k8s
