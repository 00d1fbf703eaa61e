// svcctl against real Unix sockets: the client's errors with no daemon, and
// whole commands against a tiny in-test server that records each request
// line and answers with a canned JSON line.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/table.h"
#include "common/api.h"

namespace svclb::cli {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/svcctl-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_; }

 private:
  std::string path_;
};

// Accepts one connection per canned reply, in order. Replies are sent as is
// (callers include the trailing "\n"); an empty reply means "never answer".
class FakeDaemon {
 public:
  FakeDaemon(const std::string& path, std::vector<std::string> replies)
      : path_(path), replies_(std::move(replies)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  // Requests as received. Waits until every canned reply has been served,
  // so call it only after the commands ran.
  const std::vector<std::string>& requests() {
    if (thread_.joinable()) thread_.join();
    return requests_;
  }
  nlohmann::json request(size_t i) { return nlohmann::json::parse(requests().at(i)); }

 private:
  void serve() {
    for (const auto& reply : replies_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return;  // client never came
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      // The request as svclbd reads it (common/api.h): a manifest's raw
      // bytes come back as its "manifest" string.
      nlohmann::json req;
      auto st = api::readRequest(c, req, 5000);
      requests_.push_back(st ? req.dump() : "READ ERROR: " + st.error().message);
      if (reply.empty()) {
        // Hold the connection until the client gives up.
        pollfd q{c, POLLIN, 0};
        ::poll(&q, 1, 5000);
      } else {
        EXPECT_EQ(::write(c, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
      }
      ::close(c);
    }
  }

  std::string path_;
  std::vector<std::string> replies_;
  std::vector<std::string> requests_;
  int fd_ = -1;
  std::thread thread_;
};

struct Run {
  int rc;
  std::string out;
  std::string err;
};

Run svcctl(const std::string& socket, std::vector<std::string> args,
           const std::string& stdin_ = "") {
  std::istringstream in(stdin_);
  std::ostringstream out, err;
  Context ctx{.socketPath = "",
              .now = *parseRfc3339("2024-05-01T12:00:05Z"),
              .in = in,
              .out = out,
              .err = err};
  args.insert(args.begin(), {"svcctl", "--socket", socket});
  int rc = runSvcctl(args, ctx);
  return {rc, out.str(), err.str()};
}

TEST(CliClient, MissingSocketSaysDaemonIsNotRunning) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  auto r = callDaemon(path, {{"op", "status"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ENOENT);
  EXPECT_EQ(r.error().message, "error: cannot reach svclbd at " + path +
                                   ": No such file or directory (is svclbd running?)");

  auto run = svcctl(path, {"status"});
  EXPECT_EQ(run.rc, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "error: cannot reach svclbd at " + path +
                         ": No such file or directory (is svclbd running?)\n");
}

TEST(CliClient, StaleSocketIsConnectionRefused) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // the file stays, nobody listens: a crashed daemon
  auto r = callDaemon(path, {{"op", "status"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "error: cannot reach svclbd at " + path + ": Connection refused (is svclbd running?)");
}

TEST(CliClient, TimesOutOnASilentDaemon) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {""});
  auto r = callDaemon(path, {{"op", "status"}}, std::chrono::milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_EQ(r.error().message, "error: svclbd at " + path + " did not answer within 200ms");
}

TEST(CliClient, RejectsGarbageAndMissingOk) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {"not json\n", "{\"items\":[]}\n", "{\"ok\":false,\"error\":\"nope\"}\n"});
  auto r1 = callDaemon(path, {{"op", "stats"}});
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().message, "error: invalid response from svclbd at " + path);
  auto r2 = callDaemon(path, {{"op", "stats"}});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().message,
            "error: invalid response from svclbd at " + path + ": missing \"ok\"");
  auto r3 = callDaemon(path, {{"op", "stats"}});
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.error().code, kDaemonRefused);  // reached, refused: message printed as is
  EXPECT_EQ(r3.error().message, "nope");
}

TEST(CliCommands, ApplySendsFileAndPrintsKubectlLines) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  std::string file = dir.path() + "/web.yaml";
  std::string manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n";
  std::ofstream(file) << manifest;
  FakeDaemon d(path, {R"({"ok":true,"results":[
      {"kind":"Service","namespace":"default","name":"web","action":"created"},
      {"kind":"Endpoints","namespace":"default","name":"web","action":"configured"},
      {"kind":"EndpointSlice","namespace":"default","name":"web-abc","action":"unchanged"}]})"
                      "\n"});
  auto run = svcctl(path, {"apply", "-f", file});
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out,
            "service/web created\nendpoints/web configured\n"
            "endpointslice.discovery.k8s.io/web-abc unchanged\n");
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(d.request(0),
            nlohmann::json(
                {{"op", "apply"}, {"manifest", manifest}, {"source", file}, {"strict", false}}));
}

TEST(CliCommands, ApplyFromStdinAndDaemonError) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  const std::string invalid =
      "The Service \"web\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 "
      "and 65535, inclusive";
  FakeDaemon d(path, {nlohmann::json({{"ok", false}, {"error", invalid}}).dump() + "\n"});
  auto run = svcctl(path, {"apply", "-f", "-"}, "kind: Service\n");
  EXPECT_EQ(run.rc, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, invalid + "\n");  // the daemon's words, unchanged
  EXPECT_EQ(
      d.request(0),
      nlohmann::json(
          {{"op", "apply"}, {"manifest", "kind: Service\n"}, {"source", "-"}, {"strict", false}}));
}

TEST(CliCommands, ApplyMissingFileNeedsNoDaemon) {
  auto run = svcctl("/nonexistent/svclbd.sock", {"apply", "-f", "x.yaml"});
  EXPECT_EQ(run.rc, 1);
  EXPECT_EQ(run.err, "error: the path \"x.yaml\" does not exist\n");
}

TEST(CliCommands, GetListsServicesInNamespace) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {R"({"ok":true,"items":[
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"prod",
       "creationTimestamp":"2024-05-01T12:00:00Z"},
       "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],
               "ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]},
       "svclb":{"ports":[{"name":"http","endpoints":[]}]}},
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"api","namespace":"prod",
       "creationTimestamp":"2024-05-01T11:00:00Z"},
       "spec":{"type":"ClusterIP","clusterIP":"None","clusterIPs":["None"],"ports":[]}}]})"
                      "\n"});
  auto run = svcctl(path, {"get", "svc", "-n", "prod"});
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out,
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            "api    ClusterIP   None         <none>        <none>    60m\n"
            "web    ClusterIP   10.96.0.10   <none>        80/TCP    5s\n");
  EXPECT_EQ(d.request(0), nlohmann::json({{"op", "get"},
                                          {"kind", "Service"},
                                          {"namespace", "prod"},
                                          {"allNamespaces", false},
                                          {"name", ""}}));
}

TEST(CliCommands, GetEmptyListAndNotFound) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(
      path, {"{\"ok\":true,\"items\":[]}\n", "{\"ok\":true,\"items\":[]}\n",
             R"({"ok":false,"error":"Error from server (NotFound): endpoints \"web\" not found"})"
             "\n"});
  auto empty = svcctl(path, {"get", "services"});
  EXPECT_EQ(empty.rc, 0);
  EXPECT_EQ(empty.out, "");
  EXPECT_EQ(empty.err, "No resources found in default namespace.\n");
  auto all = svcctl(path, {"get", "endpointslices", "-A"});
  EXPECT_EQ(all.err, "No resources found\n");
  auto missing = svcctl(path, {"get", "ep", "web"});
  EXPECT_EQ(missing.rc, 1);
  EXPECT_EQ(missing.out, "");
  // kubectl v1.37 against the API server: v1 Endpoints' deprecation first.
  EXPECT_EQ(missing.err,
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 "
            "EndpointSlice\nError from server (NotFound): endpoints \"web\" not found\n");
  EXPECT_EQ(d.request(1)["allNamespaces"], true);
  EXPECT_EQ(d.request(1)["kind"], "EndpointSlice");
  EXPECT_EQ(d.request(2), nlohmann::json({{"op", "get"},
                                          {"kind", "Endpoints"},
                                          {"namespace", "default"},
                                          {"allNamespaces", false},
                                          {"name", "web"}}));
}

TEST(CliCommands, GetJsonYamlAndName) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  std::string item =
      R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},
      "spec":{"clusterIP":"10.96.0.10"},"svclb":{"ports":[]}})";
  std::string reply = "{\"ok\":true,\"items\":[" + item + "]}\n";
  FakeDaemon d(path, {reply, reply, reply, reply});
  auto one = svcctl(path, {"get", "svc/web", "-o", "json"});
  EXPECT_EQ(one.rc, 0) << one.err;
  auto parsed = nlohmann::json::parse(one.out);
  EXPECT_EQ(parsed["kind"], "Service");
  EXPECT_FALSE(parsed.contains("svclb"));
  auto list = svcctl(path, {"get", "svc", "-o", "json"});
  parsed = nlohmann::json::parse(list.out);
  EXPECT_EQ(parsed["kind"], "List");
  EXPECT_EQ(parsed["items"][0]["metadata"]["name"], "web");
  EXPECT_EQ(parsed["metadata"]["resourceVersion"], "");
  auto yaml = svcctl(path, {"get", "svc", "web", "-oyaml"});
  EXPECT_EQ(yaml.out,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n"
            "spec:\n  clusterIP: 10.96.0.10\n");
  auto name = svcctl(path, {"get", "svc", "-o", "name"});
  EXPECT_EQ(name.out, "service/web\n");
  EXPECT_EQ(d.request(0)["name"], "web");
}

TEST(CliCommands, DescribeUsesHelperEndpoints) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {R"({"ok":true,"items":[{"kind":"Service",
      "metadata":{"name":"web","namespace":"default"},
      "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],
              "ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]},
      "svclb":{"ports":[{"name":"http","endpoints":["10.244.1.11:8080"]}]}}]})"
                      "\n"});
  auto run = svcctl(path, {"describe", "svc", "web"});
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_NE(run.out.find("Endpoints:         10.244.1.11:8080\n"), std::string::npos) << run.out;
  // Ends with a newline, as kubectl's: the next prompt starts on its own line.
  const std::string tail = "Events:            <none>\n";
  EXPECT_TRUE(run.out.size() >= tail.size() &&
              run.out.compare(run.out.size() - tail.size(), tail.size(), tail) == 0)
      << run.out;
  EXPECT_EQ(d.request(0)["name"], "web");
}

// kubectl get TYPE,TYPE / TYPE/NAME TYPE/NAME: one table per type in the
// order asked, a blank line between, names as TYPE/NAME once more than one
// kind is shown; -o name and -o json cover every type.
TEST(CliCommands, GetSeveralTypesAsKubectl) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  const std::string svcs = R"({"ok":true,"items":[
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default",
       "creationTimestamp":"2024-05-01T12:00:00Z"},
       "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],
               "ports":[{"port":80,"protocol":"TCP","targetPort":8080}]}}]})"
                           "\n";
  const std::string eps = R"({"ok":true,"items":[
      {"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"web","namespace":"default",
       "creationTimestamp":"2024-05-01T12:00:00Z"},
       "subsets":[{"addresses":[{"ip":"10.244.1.11"}],"ports":[{"port":8080}]}]}]})"
                          "\n";
  const std::string none = "{\"ok\":true,\"items\":[]}\n";
  FakeDaemon d(path, {svcs, eps, svcs, none, eps, svcs, svcs, eps, none, none});
  auto both = svcctl(path, {"get", "svc,ep"});
  // Only one kind has objects: kubectl shows plain names.
  auto oneKind = svcctl(path, {"get", "services,endpointslices"});
  auto names = svcctl(path, {"get", "ep/web", "svc/web", "-o", "name"});
  auto json = svcctl(path, {"get", "svc,ep", "web", "-o", "json"});
  auto empty = svcctl(path, {"get", "svc,ep"});
  EXPECT_EQ(both.rc, 0) << both.err;
  EXPECT_EQ(both.out,
            "NAME          TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            "service/web   ClusterIP   10.96.0.10   <none>        80/TCP    5s\n"
            "\n"
            "NAME            ENDPOINTS          AGE\n"
            "endpoints/web   10.244.1.11:8080   5s\n");
  EXPECT_EQ(oneKind.rc, 0) << oneKind.err;
  EXPECT_EQ(oneKind.out,
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            "web    ClusterIP   10.96.0.10   <none>        80/TCP    5s\n");
  EXPECT_EQ(names.rc, 0) << names.err;
  EXPECT_EQ(names.out, "endpoints/web\nservice/web\n");
  EXPECT_EQ(json.rc, 0) << json.err;
  auto doc = nlohmann::json::parse(json.out);
  EXPECT_EQ(doc["kind"], "List");
  ASSERT_EQ(doc["items"].size(), 2u);
  EXPECT_EQ(doc["items"][0]["kind"], "Service");
  EXPECT_EQ(doc["items"][1]["kind"], "Endpoints");
  EXPECT_EQ(empty.rc, 0);
  EXPECT_EQ(empty.out, "");
  EXPECT_EQ(empty.err,
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 "
            "EndpointSlice\nNo resources found in default namespace.\n");
  EXPECT_EQ(d.request(0)["kind"], "Service");
  EXPECT_EQ(d.request(1)["kind"], "Endpoints");
  EXPECT_EQ(d.request(1)["name"], "");
  EXPECT_EQ(d.request(3)["kind"], "EndpointSlice");
  EXPECT_EQ(d.request(4), nlohmann::json({{"op", "get"},
                                          {"kind", "Endpoints"},
                                          {"namespace", "default"},
                                          {"allNamespaces", false},
                                          {"name", "web"}}));
  EXPECT_EQ(d.request(5)["kind"], "Service");
  EXPECT_EQ(d.request(7)["name"], "web");
}

// kubectl's generic describer for kinds without their own (MetalLB's).
TEST(CliCommands, DescribeGenericKinds) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {R"({"ok":true,"items":[{"apiVersion":"metallb.io/v1beta1",
      "kind":"IPAddressPool","metadata":{"name":"pool1","namespace":"metallb-system",
      "uid":"u-1","creationTimestamp":"2024-05-01T12:00:00Z","labels":{"tier":"a"}},
      "spec":{"addresses":["192.168.10.0/24","10.0.0.1-10.0.0.9"],"autoAssign":false,
              "avoidBuggyIPs":true,"serviceAllocation":{"priority":5,
              "namespaces":["web"]}}}]})"
                      "\n"});
  auto run = svcctl(path, {"describe", "ipaddresspools", "pool1", "-n", "metallb-system"});
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out,
            "Name:         pool1\n"
            "Namespace:    metallb-system\n"
            "Labels:       tier=a\n"
            "Annotations:  <none>\n"
            "API Version:  metallb.io/v1beta1\n"
            "Kind:         IPAddressPool\n"
            "Metadata:\n"
            "  Creation Timestamp:  2024-05-01T12:00:00Z\n"
            "  UID:                 u-1\n"
            "Spec:\n"
            "  Addresses:\n"
            "    192.168.10.0/24\n"
            "    10.0.0.1-10.0.0.9\n"
            "  Auto Assign:       false\n"
            "  Avoid Buggy I Ps:  true\n"
            "  Service Allocation:\n"
            "    Namespaces:\n"
            "      web\n"
            "    Priority:  5\n"
            "Events:        <none>\n");
  EXPECT_EQ(d.request(0)["kind"], "IPAddressPool");
}

TEST(CliCommands, DeleteByNameAndByFile) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  std::string file = dir.path() + "/web.yaml";
  std::ofstream(file) << "kind: Service\n";
  FakeDaemon d(
      path,
      {R"({"ok":true,"results":[{"kind":"Service","namespace":"ns1","name":"web","action":"deleted"}]})"
       "\n",
       R"({"ok":false,"error":"Error from server (NotFound): services \"nope\" not found"})"
       "\n",
       R"({"ok":true,"results":[{"kind":"Service","namespace":"default","name":"web","action":"deleted"},
                         {"kind":"EndpointSlice","namespace":"default","name":"web-abc","action":"deleted"}]})"
       "\n"});
  auto byName = svcctl(path, {"delete", "svc", "web", "nope", "-n", "ns1"});
  EXPECT_EQ(byName.rc, 1);
  EXPECT_EQ(byName.out, "service \"web\" deleted\n");
  EXPECT_EQ(byName.err, "Error from server (NotFound): services \"nope\" not found\n");
  auto byFile = svcctl(path, {"delete", "-f", file});
  EXPECT_EQ(byFile.rc, 0) << byFile.err;
  EXPECT_EQ(byFile.out,
            "service \"web\" deleted\nendpointslice.discovery.k8s.io \"web-abc\" deleted\n");
  // requests() waits for the server to finish, so check them last.
  EXPECT_EQ(d.request(0),
            nlohmann::json(
                {{"op", "delete"}, {"kind", "Service"}, {"namespace", "ns1"}, {"name", "web"}}));
  EXPECT_EQ(d.request(1)["name"], "nope");
  EXPECT_EQ(d.request(2), nlohmann::json({{"op", "delete"},
                                          {"manifest", "kind: Service\n"},
                                          {"source", file},
                                          {"strict", false},
                                          {"missingOk", true}}));
}

// A mixed manifest without --strict: the daemon's "skipped" lines go to
// stderr, one each, the results to stdout; --strict is sent as such.
TEST(CliCommands, ApplyPrintsSkippedObjectsAndSendsStrict) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  const std::string skip =
      "Warning: skipped deployment.apps/web (apps/v1 Deployment): svclb applies only ...";
  FakeDaemon d(path, {nlohmann::json({{"ok", true},
                                      {"results",
                                       {{{"kind", "Service"},
                                         {"namespace", "default"},
                                         {"name", "web"},
                                         {"action", "created"}}}},
                                      {"skipped", {skip}}})
                              .dump() +
                          "\n",
                      R"({"ok":true,"results":[]})"
                      "\n"});
  auto run = svcctl(path, {"apply", "-f", "-"}, "kind: Service\n");
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out, "service/web created\n");
  EXPECT_EQ(run.err, skip + "\n");
  auto strict = svcctl(path, {"apply", "--strict", "-f", "-"}, "kind: Service\n");
  EXPECT_EQ(d.request(0)["strict"], false);
  EXPECT_EQ(d.request(1)["strict"], true);
}

// `svcctl apply -f app/` where the Deployment has a file of its own: one
// request for both files (the apply is all-or-nothing across them), each
// part named by its file; the daemon skips the Deployment (one "skipped"
// line), which is no error; "no objects passed to apply" stays for input
// with nothing in it at all.
TEST(CliCommands, ApplyOfAFileWithOnlySkippedObjectsSucceeds) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  fs::create_directory(dir.path() + "/app");
  std::ofstream(dir.path() + "/app/deployment.yaml") << "kind: Deployment\n";
  std::ofstream(dir.path() + "/app/service.yaml") << "kind: Service\n";
  const std::string skip = "Warning: skipped deployment.apps/web (apps/v1 Deployment): ...";
  FakeDaemon d(path, {nlohmann::json({{"ok", true},
                                      {"results",
                                       {{{"kind", "Service"},
                                         {"namespace", "default"},
                                         {"name", "web"},
                                         {"action", "created"}}}},
                                      {"skipped", {skip}}})
                              .dump() +
                          "\n",
                      R"({"ok":true,"results":[]})"
                      "\n"});
  auto run = svcctl(path, {"apply", "-f", dir.path() + "/app"});
  EXPECT_EQ(run.rc, 0) << run.err;
  EXPECT_EQ(run.out, "service/web created\n");
  EXPECT_EQ(run.err, skip + "\n");
  auto empty = svcctl(path, {"apply", "-f", "-"}, "");
  EXPECT_EQ(empty.rc, 1);
  EXPECT_EQ(empty.err, "error: no objects passed to apply\n");
  const auto parts = d.request(0)["parts"];
  ASSERT_EQ(parts.size(), 2u) << d.request(0).dump();
  EXPECT_EQ(parts[0]["source"], dir.path() + "/app/deployment.yaml");
  EXPECT_EQ(parts[0]["bytes"], 17);
  EXPECT_EQ(parts[1]["source"], dir.path() + "/app/service.yaml");
  EXPECT_EQ(d.request(0)["manifest"], "kind: Deployment\nkind: Service\n");
}

TEST(CliCommands, StatsAndStatusJson) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {"{\"ok\":true,\"services\":[],\"drops\":[]}\n",
                      "{\"ok\":true,\"version\":\"0.1.0\",\"pid\":7}\n"});
  auto stats = svcctl(path, {"stats", "-o", "json"});
  EXPECT_EQ(stats.rc, 0);
  EXPECT_EQ(nlohmann::json::parse(stats.out), nlohmann::json({{"services", nlohmann::json::array()},
                                                              {"drops", nlohmann::json::array()}}));
  auto status = svcctl(path, {"status"});
  EXPECT_EQ(status.rc, 0);
  EXPECT_NE(status.out.find("PID:"), std::string::npos);
  EXPECT_EQ(d.request(0), nlohmann::json({{"op", "stats"}}));
  EXPECT_EQ(d.request(1), nlohmann::json({{"op", "status"}}));
}

TEST(CliCommands, UsageErrors) {
  const std::string sock = "/nonexistent/svclbd.sock";
  auto unknown = svcctl(sock, {"get", "foo"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_EQ(unknown.err, "error: the server doesn't have a resource type \"foo\"\n");
  auto emptyType = svcctl(sock, {"get", "svc,"});
  EXPECT_EQ(emptyType.rc, 1);
  EXPECT_EQ(emptyType.err, "error: the server doesn't have a resource type \"\"\n");
  auto badPair = svcctl(sock, {"get", "svc/web", "ep"});
  EXPECT_EQ(badPair.err,
            "error: arguments in resource/name form must have a single resource and name: "
            "\"ep\"\n");
  auto format = svcctl(sock, {"get", "svc", "-o", "table"});
  EXPECT_EQ(format.rc, 1);
  EXPECT_NE(format.err.find("error: unable to match a printer"), std::string::npos);
  auto byNameAll = svcctl(sock, {"get", "svc", "web", "-A"});
  EXPECT_EQ(byNameAll.err, "error: a resource cannot be retrieved by name across all namespaces\n");
  auto noName = svcctl(sock, {"delete", "svc"});
  EXPECT_EQ(noName.err, "error: resource(s) were provided, but no name was specified\n");
  auto noFile = svcctl(sock, {"apply"});
  EXPECT_EQ(noFile.err, "error: must specify one of -f and -k\n");
  auto flag = svcctl(sock, {"get", "svc", "--bogus"});
  EXPECT_EQ(flag.rc, 1);
  EXPECT_EQ(flag.err.rfind("error: ", 0), 0u);
  auto help = svcctl(sock, {"--help"});
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.out.find("apply"), std::string::npos);
}

// --sort-by: kubectl's order (numbers by value, strings naturally: web2
// before web10; items without the field first; none has it: an error).
TEST(CliCommands, GetSortBy) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  auto svc = [](const std::string& name, int port, const std::string& extra) {
    return R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + name +
           R"(","namespace":"default"},"spec":{"type":"ClusterIP","clusterIP":"None",)" + extra +
           R"("ports":[{"port":)" + std::to_string(port) + R"(,"protocol":"TCP"}]}})";
  };
  const std::string list = R"({"ok":true,"items":[)" + svc("web10", 80, "") + "," +
                           svc("web2", 8080, "") + "," +
                           svc("api", 443, R"("sessionAffinity":"ClientIP",)") + "]}\n";
  FakeDaemon d(path, {list, list, list, list});
  auto byName = svcctl(path, {"get", "svc", "--sort-by", ".metadata.name", "-o", "name"});
  auto byPort = svcctl(path, {"get", "svc", "--sort-by", "{.spec.ports[0].port}", "-o", "name"});
  auto missingFirst =
      svcctl(path, {"get", "svc", "--sort-by", "spec.sessionAffinity", "-o", "name"});
  auto none = svcctl(path, {"get", "svc", "--sort-by", ".spec.nothing"});
  EXPECT_EQ(byName.out, "service/api\nservice/web2\nservice/web10\n") << byName.err;
  EXPECT_EQ(byPort.out, "service/web10\nservice/api\nservice/web2\n") << byPort.err;
  // The daemon's list comes in name order (web10 before web2 as plain
  // strings); the items without the field keep it.
  EXPECT_EQ(missingFirst.out, "service/web10\nservice/web2\nservice/api\n") << missingFirst.err;
  EXPECT_EQ(none.rc, 1);
  EXPECT_EQ(
      none.err,
      "error: couldn't find any field with path \"{.spec.nothing}\" in the list of objects\n");
}

// get -w: the list, then a row per object added, changed or deleted (a
// deleted one as last seen), columns as wide as what was printed before;
// ends when svclbd goes away. runGet directly, for a short interval.
TEST(CliCommands, GetWatchPrintsARowPerChange) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  auto svc = [](const std::string& name, const std::string& ip, int port) {
    return R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + name +
           R"(","namespace":"default","creationTimestamp":"2024-05-01T12:00:00Z"},)" +
           R"("spec":{"type":"ClusterIP","clusterIP":")" + ip + R"(","ports":[{"port":)" +
           std::to_string(port) + R"(,"protocol":"TCP"}]}})";
  };
  auto list = [](const std::vector<std::string>& items) {
    std::string out = R"({"ok":true,"items":[)";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
    return out + "]}\n";
  };
  const std::string web = svc("web", "10.96.0.10", 80), web2 = svc("web", "10.96.0.10", 8080),
                    longName = svc("a-much-longer-name", "10.96.0.11", 81);
  FakeDaemon d(path, {list({web}), list({web}), list({web, longName}), list({web2, longName}),
                      list({web2})});
  std::istringstream in;
  std::ostringstream out, err;
  Context ctx{.socketPath = path,
              .timeout = std::chrono::seconds(2),
              .now = *parseRfc3339("2024-05-01T12:00:05Z"),
              .in = in,
              .out = out,
              .err = err};
  GetOptions opts;
  opts.args = {"svc"};
  opts.watch = true;
  opts.watchInterval = std::chrono::milliseconds(10);
  EXPECT_EQ(runGet(ctx, opts), 1) << "ends when svclbd cannot be reached";
  EXPECT_EQ(out.str(),
            "NAME   TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n"
            "web    ClusterIP   10.96.0.10   <none>        80/TCP    5s\n"
            "a-much-longer-name   ClusterIP   10.96.0.11   <none>        81/TCP    5s\n"
            "web                  ClusterIP   10.96.0.10   <none>        8080/TCP   5s\n"
            "a-much-longer-name   ClusterIP   10.96.0.11   <none>        81/TCP     5s\n");
  EXPECT_NE(err.str().find("svclbd"), std::string::npos) << err.str();
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(d.request(i)["name"], "") << i;
  GetOptions two = opts;
  two.args = {"svc,ep"};
  std::ostringstream err2;
  Context ctx2{.socketPath = path, .now = ctx.now, .in = in, .out = out, .err = err2};
  EXPECT_EQ(runGet(ctx2, two), 1);
  EXPECT_EQ(err2.str(), "error: you may only specify a single resource type\n");
}

TEST(CliCommands, VersionAndApiResources) {
  TempDir dir;
  std::string path = dir.path() + "/svclbd.sock";
  FakeDaemon d(path, {"{\"ok\":true,\"version\":\"9.8.7\",\"pid\":7}\n"});
  auto v = svcctl(path, {"version"});
  EXPECT_EQ(v.rc, 0) << v.err;
  EXPECT_EQ(v.out, std::string("Client Version: ") + SVCLB_VERSION + "\nServer Version: 9.8.7\n");
  EXPECT_EQ(d.request(0), nlohmann::json({{"op", "status"}}));
  auto client = svcctl("/nonexistent/svclbd.sock", {"version", "--client"});
  EXPECT_EQ(client.rc, 0);
  EXPECT_EQ(client.out, std::string("Client Version: ") + SVCLB_VERSION + "\n");
  auto down = svcctl("/nonexistent/svclbd.sock", {"version"});
  EXPECT_EQ(down.rc, 1);
  EXPECT_NE(down.err.find("svclbd"), std::string::npos) << down.err;
  auto res = svcctl("/nonexistent/svclbd.sock", {"api-resources"});
  EXPECT_EQ(res.rc, 0);
  EXPECT_EQ(res.out,
            "NAME               SHORTNAMES   APIVERSION            NAMESPACED   KIND\n"
            "endpoints          ep           v1                    true         Endpoints\n"
            "services           svc          v1                    true         Service\n"
            "endpointslices                  discovery.k8s.io/v1   true         EndpointSlice\n"
            "ipaddresspools                  metallb.io/v1beta1    true         IPAddressPool\n"
            "l2advertisements                metallb.io/v1beta1    true         L2Advertisement\n");
  // Every name it lists is one svcctl get takes.
  for (const char* r : {"endpoints", "services", "endpointslices", "ipaddresspools",
                        "l2advertisements", "ep", "svc"})
    EXPECT_TRUE(resolveResource(r).has_value()) << r;
}

TEST(CliClient, DefaultSocketFromEnvironment) {
  ::unsetenv("SVCLB_SOCKET");
  EXPECT_EQ(defaultSocketPath(), "/run/svclb/svclbd.sock");
  ::setenv("SVCLB_SOCKET", "/tmp/other.sock", 1);
  EXPECT_EQ(defaultSocketPath(), "/tmp/other.sock");
  ::unsetenv("SVCLB_SOCKET");
}

}  // namespace
}  // namespace svclb::cli
