// k8s/client.h: watch-event lines decoded wherever the transfer cuts them,
// HTTP status and watch ERROR events turned into errors in the apiserver's
// words, and the client's own transport behaviour that needs no API server:
// a refused connection, cancel() from another thread, and the stall limit
// against a peer that accepts and then says nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "k8s/client.h"

namespace svclb::k8s {
namespace {

using nlohmann::json;

const std::string kStream =
    "{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":"
    "{\"name\":\"web\",\"namespace\":\"default\",\"resourceVersion\":\"101\"}}}\n"
    "\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
    "\"resourceVersion\":\"102\",\"annotations\":{\"note\":\"a\\nb \\u00e9\"}}}}\r\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"resourceVersion\":"
    "\"150\"}}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"web\","
    "\"resourceVersion\":\"151\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
    "\"status\":\"Failure\",\"message\":\"too old resource version: 100 (151)\",\"reason\":"
    "\"Expired\",\"code\":410}}\n";

struct Seen {
  std::vector<WatchEventType> types;
  std::vector<std::string> rvs;
  std::vector<std::string> errors;
};

WatchDecoder::Sink collect(Seen& s) {
  return [&s](Result<WatchEvent>&& ev) {
    if (!ev) {
      s.errors.push_back(ev.error().message);
      return true;
    }
    s.types.push_back(ev->type);
    s.rvs.push_back(jsonString(ev->object, {"metadata", "resourceVersion"}));
    return true;
  };
}

void expectWhole(const Seen& s) {
  using T = WatchEventType;
  EXPECT_EQ(s.types, (std::vector<T>{T::Added, T::Modified, T::Bookmark, T::Deleted, T::Error}));
  EXPECT_EQ(s.rvs, (std::vector<std::string>{"101", "102", "150", "151", ""}));
  EXPECT_TRUE(s.errors.empty());
}

TEST(K8sWatchDecoder, WholeStreamAtOnce) {
  Seen s;
  WatchDecoder d;
  EXPECT_TRUE(d.feed(kStream, collect(s)));
  expectWhole(s);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(K8sWatchDecoder, OneByteAtATime) {
  Seen s;
  WatchDecoder d;
  for (char c : kStream) {
    ASSERT_TRUE(d.feed(std::string_view(&c, 1), collect(s)));
  }
  expectWhole(s);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(K8sWatchDecoder, RandomChunkBoundaries) {
  std::mt19937 rng(13);
  for (int round = 0; round < 200; ++round) {
    Seen s;
    WatchDecoder d;
    size_t pos = 0;
    while (pos < kStream.size()) {
      size_t n = std::uniform_int_distribution<size_t>(1, 64)(rng);
      n = std::min(n, kStream.size() - pos);
      ASSERT_TRUE(d.feed(std::string_view(kStream).substr(pos, n), collect(s)));
      pos += n;
    }
    expectWhole(s);
  }
}

TEST(K8sWatchDecoder, UnfinishedLineIsPending) {
  Seen s;
  WatchDecoder d;
  std::string partial = R"({"type":"MODIFIED","ob)";
  std::string cut = kStream.substr(0, kStream.find('\n') + 1) + partial;
  EXPECT_TRUE(d.feed(cut, collect(s)));
  EXPECT_EQ(s.types.size(), 1u);
  EXPECT_EQ(d.pending(), partial.size());
  // The rest of the line completes it.
  EXPECT_TRUE(d.feed("ject\":{}}\n", collect(s)));
  EXPECT_EQ(s.types.size(), 2u);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(K8sWatchDecoder, SinkStopsAndLongLinesFail) {
  WatchDecoder d;
  int n = 0;
  EXPECT_FALSE(d.feed(kStream, [&](Result<WatchEvent>&&) { return ++n < 2; }));
  EXPECT_EQ(n, 2);

  WatchDecoder small(16);
  Seen s;
  EXPECT_TRUE(small.feed("{\"type\":", collect(s)));
  EXPECT_FALSE(small.feed("\"ADDED\",\"object\":{}}", collect(s)));  // 31 bytes, no '\n'
  EXPECT_EQ(small.pending(), 0u);
}

TEST(K8sWatchEvent, Malformed) {
  EXPECT_EQ(parseWatchEvent("{\"type\":\"ADDED\"").error().code, EBADMSG);
  EXPECT_EQ(parseWatchEvent("[1]").error().message, "a watch event is not a JSON object");
  EXPECT_EQ(parseWatchEvent("{\"object\":{}}").error().message, "a watch event has no \"type\"");
  EXPECT_EQ(parseWatchEvent("{\"type\":\"ADDED\",\"object\":3}").error().message,
            "a watch event has no \"object\"");
  EXPECT_EQ(parseWatchEvent("{\"type\":\"SYNC\",\"object\":{}}").error().message,
            "a watch event has an unknown type \"SYNC\"");
  Seen s;
  WatchDecoder d;
  EXPECT_TRUE(d.feed("not json\n", collect(s)));
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0], "a watch event is not valid JSON: not json");
}

TEST(K8sHttpError, ForbiddenInTheApiserversWords) {
  std::string body =
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)"
      R"("services is forbidden: User \"system:serviceaccount:kube-system:svclb\" cannot list )"
      R"(resource \"services\" in API group \"\" at the cluster scope","reason":"Forbidden",)"
      R"("details":{"kind":"services"},"code":403})";
  Error e = httpError(403, body, "https://10.0.0.1:6443", "list services");
  EXPECT_EQ(e.code, EPERM);
  EXPECT_EQ(e.message,
            "the API server https://10.0.0.1:6443 refused to list services (403 Forbidden): "
            "services is forbidden: User \"system:serviceaccount:kube-system:svclb\" cannot list "
            "resource \"services\" in API group \"\" at the cluster scope (svclbd's "
            "ServiceAccount needs the ClusterRole in deploy/kubernetes/: list and watch services "
            "and endpointslices, get/list/watch nodes)");
}

TEST(K8sHttpError, OtherStatuses) {
  Error e = httpError(401,
                      R"({"kind":"Status","status":"Failure","message":"Unauthorized",)"
                      R"("reason":"Unauthorized","code":401})",
                      "https://a:6443", "watch endpointslices");
  EXPECT_EQ(e.code, EACCES);
  EXPECT_EQ(e.message,
            "the API server https://a:6443 did not accept svclbd's credentials to watch "
            "endpointslices (401 Unauthorized): Unauthorized (check the token or the client "
            "certificate)");
  e = httpError(410,
                R"({"kind":"Status","message":"The provided continue parameter is too old to )"
                R"(display a consistent list result.","reason":"Expired","code":410})",
                "https://a:6443", "list services");
  EXPECT_EQ(e.code, ESTALE);
  e = httpError(503, "<html>\nbusy</html>", "https://a:6443", "list services");
  EXPECT_EQ(e.code, EAGAIN);
  EXPECT_EQ(e.message,
            "the API server https://a:6443 failed to list services (503 Service Unavailable): "
            "<html> busy</html>");
  EXPECT_EQ(httpError(429, "", "s", "w").code, EAGAIN);
  EXPECT_EQ(httpError(404, "", "s", "list nodes").message,
            "the API server s failed to list nodes (404 Not Found)");
}

TEST(K8sWatchStatus, GoneMeansRelist) {
  json expired = {{"kind", "Status"},
                  {"message", "too old resource version: 100 (151)"},
                  {"reason", "Expired"},
                  {"code", 410}};
  Error e = watchStatusError(expired, "https://a:6443", "watch services");
  EXPECT_EQ(e.code, ESTALE);
  EXPECT_EQ(e.message,
            "the API server https://a:6443 no longer has the requested version to watch services "
            "(410 Gone): too old resource version: 100 (151)");
  // Older servers: only the message, or only the reason.
  EXPECT_EQ(watchStatusError({{"message", "too old resource version: 1 (2)"}}, "s", "w").code,
            ESTALE);
  EXPECT_EQ(watchStatusError({{"reason", "Gone"}}, "s", "w").code, ESTALE);
  EXPECT_EQ(
      watchStatusError({{"code", 500}, {"message", "etcdserver: leader changed"}}, "s", "w").code,
      EAGAIN);
}

TEST(K8sQueryEscape, AsGoQueryEscape) {
  EXPECT_EQ(queryEscape("!service.kubernetes.io/headless,a=b c~_-"),
            "%21service.kubernetes.io%2Fheadless%2Ca%3Db+c~_-");
}

// ---- transport behaviour without an API server ----------------------------------

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the
// handshake (backlog), so the client connects, sends and hears nothing.
class SilentPeer {
 public:
  SilentPeer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 8) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port_ = ntohs(a.sin_port);
  }
  ~SilentPeer() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

ConnectionConfig plainHttp(int port) {
  ConnectionConfig cfg;
  cfg.server = "http://127.0.0.1:" + std::to_string(port);
  cfg.source = "test";
  return cfg;
}

TEST(K8sClientTransport, RefusedConnectionIsAClearError) {
  int port;
  {
    SilentPeer p;  // bound then closed: nothing listens on this port now
    port = p.port();
  }
  auto c = Client::create(plainHttp(port));
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r = (*c)->listAll("/api/v1/services", "", "list services");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ECONNREFUSED);
  EXPECT_NE(r.error().message.find("cannot list services on the API server http://127.0.0.1:" +
                                   std::to_string(port) + ": "),
            std::string::npos)
      << r.error().message;
}

TEST(K8sClientTransport, CancelEndsAWatchAtOnce) {
  SilentPeer peer;
  ASSERT_NE(peer.port(), 0);
  auto c = Client::create(plainHttp(peer.port()));
  ASSERT_TRUE(c.ok());
  Client* client = c->get();
  auto t0 = std::chrono::steady_clock::now();
  std::thread canceller([client] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client->cancel();
  });
  auto r = client->watch("/api/v1/services?watch=1", 300, "watch services",
                         [](WatchEvent&&) { return true; });
  canceller.join();
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ECANCELED);
  EXPECT_LT(took, std::chrono::milliseconds(900));  // woken, not the 1 s poll
  // Later requests end at once too.
  auto again = client->getJson("/version", "get the version");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ECANCELED);
}

TEST(K8sClientTransport, SilentPeerNoticedByTheStallLimit) {
  SilentPeer peer;
  ASSERT_NE(peer.port(), 0);
  ClientOptions o;
  o.watchGrace = std::chrono::seconds(1);
  auto c = Client::create(plainHttp(peer.port()), o);
  ASSERT_TRUE(c.ok());
  auto t0 = std::chrono::steady_clock::now();
  // timeoutSeconds=1: the server should have ended it after 1 s; silence for
  // 1 + 1 s more is a hung server.
  auto r = (*c)->watch("/api/v1/services?watch=1&timeoutSeconds=1", 1, "watch services",
                       [](WatchEvent&&) { return true; });
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ETIMEDOUT) << r.error().message;
  EXPECT_GE(took, std::chrono::seconds(2));
  EXPECT_LT(took, std::chrono::seconds(6));
}

}  // namespace
}  // namespace svclb::k8s
