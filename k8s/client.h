// An HTTP client for the Kubernetes API over libcurl: TLS always verified
// (the cluster's CA or the system's), client certificates or a bearer token,
// paginated GET lists and streaming watches whose newline-delimited JSON
// events are decoded as the bytes arrive.
//
// Errors carry an errno-style code the caller decides on:
//   ECANCELED  cancel() was called (shutdown)
//   ESTALE     410 Gone / "too old resource version" / expired continue: relist
//   EACCES     401: the server did not accept the credentials
//   EPERM      403: RBAC denies the request (the message is the server's)
//   ENOENT     404
//   EAGAIN     429 or 5xx: the server is overloaded or failing; retry later
//   ETIMEDOUT  the heartbeat noticed a dead connection, or connect timed out
//   EBADMSG    the server's reply is not what the API promises
//   ECONNREFUSED, EHOSTUNREACH, EPROTO (TLS), EIO: transport failures
// and a message in the user's words naming the server, the request and the
// apiserver's own Status message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "k8s/config.h"

namespace svclb::k8s {

// ---- watch stream decoding (pure) -----------------------------------------

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };
const char* watchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  nlohmann::json object;  // the object; for Error a metav1.Status
};

// One line of a watch stream: {"type":"ADDED","object":{...}}.
Result<WatchEvent> parseWatchEvent(std::string_view line);

// Splits a watch response body into lines wherever the transfer cut it (a
// chunk may end mid-event or hold many) and parses each complete line. Empty
// lines are skipped. A line longer than maxLine is an error (a server that
// never sends '\n' must not grow the buffer without bound).
class WatchDecoder {
 public:
  // Return false to stop decoding (the rest of the chunk is dropped).
  using Sink = std::function<bool(Result<WatchEvent>&&)>;
  explicit WatchDecoder(size_t maxLine = 64u << 20) : maxLine_(maxLine) {}
  // false when the sink asked to stop or a line grew past maxLine.
  bool feed(std::string_view bytes, const Sink& sink);
  // Bytes of an unfinished line (a stream that ended here was cut off).
  size_t pending() const { return buf_.size(); }

 private:
  std::string buf_;
  size_t maxLine_;
};

// ---- errors (pure) ----------------------------------------------------------

// A non-2xx reply as an Error: the code above and, e.g. for 403,
//   the API server https://10.0.0.1:6443 refused to list services (403 Forbidden):
//   services is forbidden: User "system:serviceaccount:kube-system:svclb" cannot
//   list resource "services" in API group "" at the cluster scope (svclbd needs
//   list and watch on services: see the ClusterRole in deploy/kubernetes/)
// `what` is "list services"; `body` the reply (a metav1.Status when JSON).
Error httpError(long httpStatus, std::string_view body, std::string_view server,
                std::string_view what);

// A watch ERROR event's Status -> Error (ESTALE for 410 / Expired / Gone /
// "too old resource version").
Error watchStatusError(const nlohmann::json& status, std::string_view server,
                       std::string_view what);

// ---- the client ---------------------------------------------------------------

struct ClientOptions {
  std::chrono::seconds connectTimeout{10};
  // Dead-peer detection below HTTP (see docs/kubernetes.md "The API client"):
  // TCP keepalive probes after keepIdle of silence, every keepInterval, and
  // TCP_USER_TIMEOUT so unacknowledged probes or data close the connection
  // after userTimeout. A live apiserver's kernel acknowledges probes however
  // quiet the watch is, so this cannot fire on an idle but healthy stream.
  std::chrono::seconds keepIdle{5};
  std::chrono::seconds keepInterval{5};
  int keepCount = 3;
  std::chrono::milliseconds userTimeout{15000};
  // A list page must make progress (a byte) within this long.
  std::chrono::seconds listStallTimeout{60};
  // A watch is bounded by its timeoutSeconds; the server closes it then.
  // Silence beyond timeoutSeconds + watchGrace means a hung server.
  std::chrono::seconds watchGrace{30};
  int pageSize = 500;  // list limit
  std::string userAgent = "svclbd";
};

struct ListResult {
  std::vector<nlohmann::json> items;  // as the server sent them (no kind/apiVersion)
  std::string resourceVersion;        // the list's, to watch from
  unsigned pages = 0;
};

// How a watch request ended without an error.
struct WatchEnd {
  uint64_t events = 0;   // events delivered (bookmarks included)
  bool stopped = false;  // the callback asked to stop
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> create(const ConnectionConfig& cfg,
                                                ClientOptions opts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& server() const { return cfg_.server; }

  // GET path?query (path starts with '/'), the reply parsed as JSON.
  // `what` names the request in errors ("list services").
  Result<nlohmann::json> getJson(const std::string& pathAndQuery, std::string_view what);

  // Every page of a list: `basePath` is "/api/v1/services", `query` the
  // selectors ("labelSelector=..."; may be empty). Pages with limit/continue;
  // an expired continue token (410) restarts the list once unpaginated, as
  // client-go's pager does.
  Result<ListResult> listAll(const std::string& basePath, const std::string& query,
                             std::string_view what);

  // A streaming watch: `pathAndQuery` includes watch=1&resourceVersion=...&
  // timeoutSeconds=N (N bounds the request: see ClientOptions::watchGrace).
  // `onEvent` runs on this thread for every event as it arrives; return false
  // to end the watch. Returns when the server ends the stream (timeout),
  // onEvent stops it, or with an error (a malformed line is EBADMSG).
  using EventFn = std::function<bool(WatchEvent&&)>;
  Result<WatchEnd> watch(const std::string& pathAndQuery, int timeoutSeconds, std::string_view what,
                         const EventFn& onEvent);

  // From any thread: the running request and every later one end with
  // ECANCELED at once.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  struct Impl;
  Client(ConnectionConfig cfg, ClientOptions opts);
  Error withSource(Error e) const;
  ConnectionConfig cfg_;
  ClientOptions opts_;
  TokenSource token_;
  std::atomic<bool> cancelled_{false};
  std::unique_ptr<Impl> impl_;
};

// The string at j[path[0]][path[1]]...; "" when a step is missing or not an
// object, or the leaf is not a string (server data never throws).
std::string jsonString(const nlohmann::json& j, std::initializer_list<const char*> path);

// Query-string escaping as Go's url.QueryEscape (what client-go sends):
// unreserved characters stay, ' ' -> '+', everything else %XX.
std::string queryEscape(std::string_view s);

}  // namespace svclb::k8s
