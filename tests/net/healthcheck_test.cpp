// HealthCheckServer against real HTTP clients (curl, and raw sockets for what
// curl hides), each test in a network namespace of its own.
#include "loader/healthcheck.h"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>

#include "tests/net/netns_util.h"

namespace svclb {
namespace {

using namespace nettest;
using namespace std::chrono_literals;

constexpr uint16_t kPortA = 30111;
constexpr uint16_t kPortB = 30222;

// kube-proxy's body for default/web, byte for byte: tab-indented, no trailing
// newline (service_health.go: strings.Trim(dedent.Dedent(...), "\n")).
std::string expectedBody(const std::string& ns, const std::string& name, int count,
                         bool healthy = true) {
  return "{\n"
         "\t\"service\": {\n"
         "\t\t\"namespace\": \"" +
         ns +
         "\",\n"
         "\t\t\"name\": \"" +
         name +
         "\"\n"
         "\t},\n"
         "\t\"localEndpoints\": " +
         std::to_string(count) +
         ",\n"
         "\t\"serviceProxyHealthy\": " +
         (healthy ? "true" : "false") + "\n}";
}

HttpResponse curl(uint16_t port, const std::string& path = "/healthz", int* rc = nullptr,
                  const std::string& host = "127.0.0.1") {
  std::string out;
  int code = run({"curl", "-sS", "-i", "--noproxy", "*", "--max-time", "5",
                  "http://" + host + ":" + std::to_string(port) + path},
                 &out);
  if (rc) *rc = code;
  return parseHttp(out);
}

void expectKubeProxyHeaders(const HttpResponse& r, int count) {
  EXPECT_EQ(r.header("Content-Type"), "application/json") << r.raw;
  EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff") << r.raw;
  EXPECT_EQ(r.header("X-Load-Balancing-Endpoint-Weight"), std::to_string(count)) << r.raw;
  EXPECT_EQ(r.header("Connection"), "close") << r.raw;
  EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size())) << r.raw;
  EXPECT_TRUE(
      std::regex_match(r.header("Date"), std::regex(R"([A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} )"
                                                    R"(\d\d:\d\d:\d\d GMT)")))
      << r.header("Date");
}

TEST(HealthCheckServer, CurlSees200WithLocalEndpointsAnd503Without) {
  if (!haveProgram("curl")) GTEST_SKIP() << "curl not installed";
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 2}}).ok());
    EXPECT_EQ(hc.ports(), std::vector<uint16_t>{kPortA});

    int rc = -1;
    HttpResponse r = curl(kPortA, "/healthz", &rc);
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
    EXPECT_EQ(r.body, expectedBody("default", "web", 2));
    expectKubeProxyHeaders(r, 2);
    // Go's net/http writes the handler's headers sorted, then Date and
    // Content-Length; Connection last when it closes.
    EXPECT_EQ(r.headerNames(), (std::vector<std::string>{"Content-Type", "X-Content-Type-Options",
                                                         "X-Load-Balancing-Endpoint-Weight", "Date",
                                                         "Content-Length", "Connection"}));

    // Any path is the same health check.
    EXPECT_EQ(curl(kPortA, "/some/other/path?x=1").body, expectedBody("default", "web", 2));
    // Over IPv6 too (a load balancer probing a v6 node address).
    rc = -1;
    r = curl(kPortA, "/healthz", &rc, "[::1]");
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
    EXPECT_EQ(r.body, expectedBody("default", "web", 2));

    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 0}}).ok());
    r = curl(kPortA);
    EXPECT_EQ(r.statusLine, "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(r.body, expectedBody("default", "web", 0));
    expectKubeProxyHeaders(r, 0);
  });
}

TEST(HealthCheckServer, UpdateKeepsTheSocketAndTheNextRequestSeesTheNewCount) {
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}}).ok());
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).body,
              expectedBody("default", "web", 1));

    // A connection accepted before the update survives it: the listener was
    // kept, not reopened (a reopened one would have dropped it).
    int fd = connectLocal(kPortA);
    ASSERT_GE(fd, 0);
    std::this_thread::sleep_for(100ms);  // let the server accept it
    ASSERT_TRUE(hc.update({{"default", "web-renamed", kPortA, 3}}).ok());
    ASSERT_TRUE(sendAll(fd, "GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n"));
    HttpResponse r = parseHttp(readToEof(fd, 5s));
    close(fd);
    EXPECT_EQ(r.status(), 200) << r.raw;
    EXPECT_EQ(r.body, expectedBody("default", "web-renamed", 3));
    EXPECT_EQ(r.header("X-Load-Balancing-Endpoint-Weight"), "3");
    EXPECT_EQ(hc.ports(), std::vector<uint16_t>{kPortA});
  });
}

TEST(HealthCheckServer, TwoServicesOnTwoPorts) {
  if (!haveProgram("curl")) GTEST_SKIP() << "curl not installed";
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}, {"shop", "cart", kPortB, 0}}).ok());
    EXPECT_EQ(hc.ports(), (std::vector<uint16_t>{kPortA, kPortB}));
    HttpResponse a = curl(kPortA), b = curl(kPortB);
    EXPECT_EQ(a.status(), 200);
    EXPECT_EQ(a.body, expectedBody("default", "web", 1));
    EXPECT_EQ(b.status(), 503);
    EXPECT_EQ(b.body, expectedBody("shop", "cart", 0));
  });
}

TEST(HealthCheckServer, RemovingAPortClosesIt) {
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}, {"shop", "cart", kPortB, 1}}).ok());
    int idle = connectLocal(kPortA);  // open, request not sent yet
    ASSERT_GE(idle, 0);
    std::this_thread::sleep_for(100ms);

    ASSERT_TRUE(hc.update({{"shop", "cart", kPortB, 1}}).ok());
    EXPECT_EQ(hc.ports(), std::vector<uint16_t>{kPortB});
    EXPECT_EQ(connectLocal(kPortA), -ECONNREFUSED);
    // The connection of the closed port goes too, without an answer.
    bool closed = false;
    EXPECT_EQ(readToEof(idle, 3s, &closed), "");
    EXPECT_TRUE(closed);
    close(idle);
    EXPECT_EQ(parseHttp(rawRequest(kPortB, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 200);

    // And the port can come back.
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 0}, {"shop", "cart", kPortB, 1}}).ok());
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 503);

    ASSERT_TRUE(hc.update({}).ok());
    EXPECT_TRUE(hc.ports().empty());
    EXPECT_EQ(connectLocal(kPortA), -ECONNREFUSED);
    EXPECT_EQ(connectLocal(kPortB), -ECONNREFUSED);
  });
}

TEST(HealthCheckServer, BindFailureNamesThePortAndTheOthersServe) {
  inFreshNetns([] {
    // Someone else holds kPortA.
    int blocker = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(blocker, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kPortA);
    ASSERT_EQ(bind(blocker, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    ASSERT_EQ(listen(blocker, 1), 0);

    HealthCheckServer hc;
    Status st = hc.update({{"default", "web", kPortA, 1}, {"shop", "cart", kPortB, 1}});
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EADDRINUSE);
    EXPECT_NE(st.error().message.find(std::to_string(kPortA)), std::string::npos)
        << st.error().message;
    EXPECT_NE(st.error().message.find("default/web"), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.find(std::to_string(kPortB)), std::string::npos)
        << st.error().message;
    EXPECT_EQ(hc.ports(), std::vector<uint16_t>{kPortB});
    HttpResponse r = parseHttp(rawRequest(kPortB, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(r.status(), 200);
    EXPECT_EQ(r.body, expectedBody("shop", "cart", 1));

    // Once the port is free, the next sync takes it.
    close(blocker);
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}, {"shop", "cart", kPortB, 1}}).ok());
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).body,
              expectedBody("default", "web", 1));
  });
}

TEST(HealthCheckServer, TwoServicesClaimingOnePortIsReported) {
  inFreshNetns([] {
    HealthCheckServer hc;
    Status st = hc.update({{"default", "web", kPortA, 1}, {"default", "api", kPortA, 0}});
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find(std::to_string(kPortA)), std::string::npos);
    EXPECT_NE(st.error().message.find("default/api"), std::string::npos) << st.error().message;
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).body,
              expectedBody("default", "web", 1));
  });
}

TEST(HealthCheckServer, UnhealthyProxyAnswers503) {
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 4}}).ok());
    hc.setProxyHealthy(false);
    HttpResponse r = parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(r.statusLine, "HTTP/1.1 503 Service Unavailable");
    EXPECT_EQ(r.body, expectedBody("default", "web", 4, false));
    EXPECT_EQ(r.header("X-Load-Balancing-Endpoint-Weight"), "4");
    hc.setProxyHealthy(true);
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 200);
  });
}

TEST(HealthCheckServer, HttpDetailsLikeNetHttp) {
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}}).ok());

    // HEAD: the same head, Content-Length of the body not sent.
    HttpResponse h = parseHttp(rawRequest(kPortA, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(h.statusLine, "HTTP/1.1 200 OK");
    EXPECT_EQ(h.body, "");
    EXPECT_EQ(h.header("Content-Length"), std::to_string(expectedBody("default", "web", 1).size()));

    // Any method; kube-proxy's handler does not look at it.
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "POST /x HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 200);

    // HTTP/1.0 is answered in HTTP/1.0, without a Connection header.
    HttpResponse old = parseHttp(rawRequest(kPortA, "GET / HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(old.statusLine, "HTTP/1.0 200 OK");
    EXPECT_EQ(old.header("Connection"), "<missing>");
    EXPECT_EQ(old.body, expectedBody("default", "web", 1));

    // Bare LF line ends are accepted, as net/http does.
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\nHost: x\n\n")).status(), 200);

    EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\n\r\n")).statusLine,
              "HTTP/1.1 400 Bad Request: missing required Host header");
    EXPECT_EQ(parseHttp(rawRequest(kPortA, "garbage\r\n\r\n")).statusLine,
              "HTTP/1.1 400 Bad Request");

    // A request head over 8 KiB is refused, not buffered without bound.
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
    EXPECT_EQ(parseHttp(rawRequest(kPortA, big)).statusLine,
              "HTTP/1.1 431 Request Header Fields Too Large");
  });
}

TEST(HealthCheckServer, SlowClientTimesOutWithoutBlockingOthers) {
  inFreshNetns([] {
    HealthCheckServer hc;
    ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}}).ok());
    int slow = connectLocal(kPortA);
    ASSERT_GE(slow, 0);
    ASSERT_TRUE(sendAll(slow, "GET / HTTP/1.1\r\nHost:"));  // and then nothing
    auto start = std::chrono::steady_clock::now();

    // Meanwhile others are served at once.
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(parseHttp(rawRequest(kPortA, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);

    bool closed = false;
    EXPECT_EQ(readToEof(slow, 10s, &closed), "");
    EXPECT_TRUE(closed);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 4s);
    EXPECT_LE(took, 8s);
    close(slow);
  });
}

TEST(HealthCheckServer, DestructionClosesEveryPort) {
  inFreshNetns([] {
    {
      HealthCheckServer hc;
      ASSERT_TRUE(hc.update({{"default", "web", kPortA, 1}, {"shop", "cart", kPortB, 1}}).ok());
      EXPECT_EQ(parseHttp(rawRequest(kPortB, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")).status(), 200);
    }
    EXPECT_EQ(connectLocal(kPortA), -ECONNREFUSED);
    EXPECT_EQ(connectLocal(kPortB), -ECONNREFUSED);
  });
}

TEST(HealthCheckServer, ConstructionStartsNothing) {
  inFreshNetns([] {
    HealthCheckServer hc;
    EXPECT_TRUE(hc.ports().empty());
    EXPECT_EQ(connectLocal(kPortA), -ECONNREFUSED);
  });
}

}  // namespace
}  // namespace svclb
