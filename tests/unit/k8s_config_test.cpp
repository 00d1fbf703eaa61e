// k8s/config.h: kubeconfig parsing (inline data vs files, precedence,
// errors in the user's words), in-cluster configuration and the rotating
// token file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "k8s/config.h"

namespace svclb::k8s {
namespace {

namespace fs = std::filesystem;

const std::string kCaPem = "-----BEGIN CERTIFICATE-----\nMIIBcA==\n-----END CERTIFICATE-----\n";
const std::string kCertPem = "-----BEGIN CERTIFICATE-----\nMIIBcB==\n-----END CERTIFICATE-----\n";
const std::string kKeyPem = "-----BEGIN PRIVATE KEY-----\nMIIBcC==\n-----END PRIVATE KEY-----\n";

std::string b64(const std::string& s) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == s.size()) {
    unsigned v = uint8_t(s[i]) << 16;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == s.size()) {
    unsigned v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/svclb-k8s-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::string path_;
};

std::string inlineKubeconfig(const std::string& extraCluster = "",
                             const std::string& extraUser = "") {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "current-context: admin@test\n"
         "clusters:\n"
         "- name: test\n"
         "  cluster:\n"
         "    server: https://10.0.0.1:6443/\n"
         "    certificate-authority-data: " +
         b64(kCaPem) + "\n" + extraCluster +
         "contexts:\n"
         "- name: admin@test\n"
         "  context:\n"
         "    cluster: test\n"
         "    user: admin\n"
         "- name: other\n"
         "  context:\n"
         "    cluster: test\n"
         "    user: tokenuser\n"
         "users:\n"
         "- name: admin\n"
         "  user:\n"
         "    client-certificate-data: " +
         b64(kCertPem) +
         "\n"
         "    client-key-data: " +
         b64(kKeyPem) + "\n" + extraUser +
         "- name: tokenuser\n"
         "  user:\n"
         "    token: abc.def\n";
}

TEST(K8sKubeconfig, InlineDataDecoded) {
  auto cfg = parseKubeconfig(inlineKubeconfig(), "/root/.kube/config", "", false);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");  // trailing '/' dropped
  EXPECT_EQ(cfg->caPem, kCaPem);
  EXPECT_EQ(cfg->clientCertPem, kCertPem);
  EXPECT_EQ(cfg->clientKeyPem, kKeyPem);
  EXPECT_TRUE(cfg->caFile.empty());
  EXPECT_TRUE(cfg->token.empty());
  EXPECT_FALSE(cfg->insecureSkipTlsVerify);
  EXPECT_EQ(cfg->source, "kubeconfig /root/.kube/config (context \"admin@test\")");
}

TEST(K8sKubeconfig, ExplicitContextAndToken) {
  auto cfg = parseKubeconfig(inlineKubeconfig(), "/k", "other", false);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->token, "abc.def");
  EXPECT_TRUE(cfg->clientCertPem.empty());
  EXPECT_EQ(cfg->caPem, kCaPem);
}

TEST(K8sKubeconfig, RelativeFilesResolvedAgainstItsDirectory) {
  TempDir d;
  d.write("ca.crt", kCaPem);
  fs::create_directory(d.path() + "/pki");
  d.write("pki/client.crt", kCertPem);
  d.write("pki/client.key", kKeyPem);
  d.write("token", "tok-from-file\n");
  std::string text =
      "current-context: c\n"
      "clusters: [{name: k, cluster: {server: 'https://api.example:6443', "
      "certificate-authority: ca.crt}}]\n"
      "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
      "users: [{name: u, user: {client-certificate: pki/client.crt, client-key: " +
      d.path() + "/pki/client.key, tokenFile: token}}]\n";
  std::string path = d.write("config", text);
  auto cfg = parseKubeconfig(text, path, "", false);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->caFile, d.path() + "/ca.crt");
  EXPECT_EQ(cfg->clientCertFile, d.path() + "/pki/client.crt");
  EXPECT_EQ(cfg->clientKeyFile, d.path() + "/pki/client.key");  // absolute stays
  EXPECT_EQ(cfg->tokenFile, d.path() + "/token");
  EXPECT_TRUE(cfg->caPem.empty());

  // loadConfig reads the same file; --k8s-api-server overrides the server only.
  ConfigOptions o;
  o.kubeconfigPath = path;
  o.apiServer = "https://192.0.2.10:6443/";
  auto loaded = loadConfig(o);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->server, "https://192.0.2.10:6443");
  EXPECT_EQ(loaded->caFile, d.path() + "/ca.crt");
  TokenSource ts(*loaded);
  auto tok = ts.current();
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(*tok, "tok-from-file");
}

TEST(K8sKubeconfig, DataWinsOverFileAndTokenOverTokenFile) {
  // The files do not exist: with the data (and token) set they are not used.
  auto cfg = parseKubeconfig(inlineKubeconfig("    certificate-authority: /nonexistent/ca\n",
                                              "    client-key: /nonexistent/key\n"
                                              "    token: t1\n"
                                              "    tokenFile: /nonexistent/token\n"),
                             "/k", "", false);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->caPem, kCaPem);
  EXPECT_TRUE(cfg->caFile.empty());
  EXPECT_EQ(cfg->clientKeyPem, kKeyPem);
  EXPECT_EQ(cfg->token, "t1");
  EXPECT_TRUE(cfg->tokenFile.empty());
}

void expectError(const std::string& text, const std::string& context, bool allowInsecure,
                 const std::string& want) {
  auto cfg = parseKubeconfig(text, "/k", context, allowInsecure);
  ASSERT_FALSE(cfg.ok()) << "accepted; wanted: " << want;
  EXPECT_EQ(cfg.error().message, want);
}

TEST(K8sKubeconfig, ErrorsNameFileAndField) {
  expectError("clusters: []\n", "", false, "kubeconfig /k: current-context is not set");
  expectError(inlineKubeconfig(), "prod", false, "kubeconfig /k: context \"prod\" does not exist");
  expectError("current-context: x\ncontexts: []\n", "", false,
              "kubeconfig /k: context \"x\" (current-context) does not exist");
  expectError("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n", "",
              false, "kubeconfig /k: cluster \"c\" (of context \"x\") does not exist");
  expectError(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {}}]\n",
      "", false, "kubeconfig /k: clusters[\"c\"].cluster.server is not set");
  expectError(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
      "clusters: [{name: c, cluster: {server: 'https://a:1'}}]\n",
      "", false, "kubeconfig /k: user \"u\" (of context \"x\") does not exist");
  expectError("- a\n- b\n", "", false,
              "kubeconfig /k: not a kubeconfig (expected a mapping with clusters, contexts and "
              "users)");
  expectError(
      "current-context: [\n", "", false,
      "kubeconfig /k: not valid YAML: line 1: did not find expected node content");  // go-yaml's
                                                                                     // words
}

TEST(K8sKubeconfig, InsecureRefusedUnlessAllowed) {
  std::string text =
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: 'https://a:6443', insecure-skip-tls-verify: "
      "true}}]\n";
  expectError(text, "", false,
              "kubeconfig /k: clusters[\"c\"].cluster.insecure-skip-tls-verify is set: svclbd "
              "does not talk to an API server whose certificate it cannot verify (give the "
              "cluster's CA instead)");
  auto cfg = parseKubeconfig(text, "/k", "", true);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_TRUE(cfg->insecureSkipTlsVerify);
  // With a CA as well: refused even when allowed (client-go refuses it too).
  expectError(inlineKubeconfig("    insecure-skip-tls-verify: true\n"), "", true,
              "kubeconfig /k: clusters[\"test\"].cluster: a certificate authority together with "
              "insecure-skip-tls-verify is not allowed");
  // http:// only when insecure is allowed.
  std::string http =
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:8001'}}]\n";
  expectError(http, "", false,
              "kubeconfig /k: clusters[\"c\"].cluster.server: API server URL "
              "\"http://127.0.0.1:8001\": plain http:// sends the token unencrypted and trusts "
              "anyone; use https://");
  EXPECT_TRUE(parseKubeconfig(http, "/k", "", true).ok());
}

TEST(K8sKubeconfig, UnsupportedAuthAndBadData) {
  expectError(inlineKubeconfig("", "    exec:\n      command: aws\n"), "", false,
              "kubeconfig /k: users[\"admin\"].user.exec: credential plugins are not supported "
              "by svclbd; use a token, a token file or a client certificate");
  expectError(inlineKubeconfig("", "    username: bob\n    password: pw\n"), "", false,
              "kubeconfig /k: users[\"admin\"].user: username/password (basic) authentication is "
              "not supported; use a token or a client certificate");
  expectError(inlineKubeconfig("    tls-server-name: api\n"), "", false,
              "kubeconfig /k: clusters[\"test\"].cluster.tls-server-name is not supported by "
              "svclbd");
  std::string badB64 = inlineKubeconfig();
  badB64.replace(badB64.find(b64(kCaPem)), 4, "a$%&");
  expectError(badB64, "", false,
              "kubeconfig /k: clusters[\"test\"].cluster.certificate-authority-data is not valid "
              "base64");
  std::string notPem = inlineKubeconfig();
  notPem.replace(notPem.find(b64(kCaPem)), b64(kCaPem).size(), b64("hello"));
  expectError(notPem, "", false,
              "kubeconfig /k: clusters[\"test\"].cluster.certificate-authority-data does not "
              "hold a PEM block (-----BEGIN ...)");
  std::string noKey = inlineKubeconfig();
  noKey.erase(noKey.find("    client-key-data:"),
              std::string("    client-key-data: ").size() + b64(kKeyPem).size() + 1);
  expectError(noKey, "", false,
              "kubeconfig /k: users[\"admin\"].user: client-certificate is set without "
              "client-key");
  expectError(inlineKubeconfig("    certificate-authority-data: 5\n"), "", false,
              "kubeconfig /k: not valid YAML: line 9: key \"certificate-authority-data\" "
              "already set in map");
}

TEST(K8sKubeconfig, MissingFileNamed) {
  std::string text =
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
      "clusters: [{name: c, cluster: {server: 'https://a:6443', certificate-authority: "
      "/nonexistent/ca.crt}}]\n";
  expectError(text, "", false,
              "kubeconfig /k: clusters[\"c\"].cluster.certificate-authority /nonexistent/ca.crt: "
              "No such file or directory");
  ConfigOptions o;
  o.kubeconfigPath = "/nonexistent/kubeconfig";
  auto cfg = loadConfig(o);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message, "kubeconfig /nonexistent/kubeconfig: No such file or directory");
}

TEST(K8sServerUrl, Normalized) {
  EXPECT_EQ(*normalizeServerUrl("https://10.0.0.1:6443//", false), "https://10.0.0.1:6443");
  EXPECT_EQ(*normalizeServerUrl("https://h/k8s/clusters/c-1", false), "https://h/k8s/clusters/c-1");
  EXPECT_EQ(normalizeServerUrl("10.0.0.1:6443", false).error().message,
            "API server URL \"10.0.0.1:6443\": must start with https://");
  EXPECT_EQ(normalizeServerUrl("https://", false).error().message,
            "API server URL \"https://\": has no host");
  EXPECT_EQ(normalizeServerUrl("https://h?x=1", false).error().message,
            "API server URL \"https://h?x=1\": must not contain spaces, a query or a fragment");
}

TEST(K8sInCluster, FromEnvironmentAndServiceAccount) {
  TempDir d;
  d.write("token", "sa-token\n");
  d.write("ca.crt", kCaPem);
  ConfigOptions o;
  o.serviceAccountDir = d.path();
  o.serviceHost = "10.96.0.1";
  o.servicePort = "443";
  auto cfg = loadConfig(o);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->tokenFile, d.path() + "/token");
  EXPECT_EQ(cfg->caFile, d.path() + "/ca.crt");
  EXPECT_EQ(cfg->source, "in-cluster ServiceAccount (" + d.path() + ")");

  o.serviceHost = "fd00::1";
  cfg = loadConfig(o);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->server, "https://[fd00::1]:443");

  // --k8s-api-server: the ClusterIP is not needed (nor its environment).
  o.serviceHost.clear();
  o.servicePort.clear();
  o.apiServer = "https://192.0.2.1:6443";
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  cfg = loadConfig(o);
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->server, "https://192.0.2.1:6443");
  EXPECT_EQ(cfg->tokenFile, d.path() + "/token");

  o.apiServer.clear();
  cfg = loadConfig(o);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message,
            "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and "
            "KUBERNETES_SERVICE_PORT are not set): give --kubeconfig PATH or --k8s-api-server "
            "URL");
}

TEST(K8sInCluster, MissingTokenOrCa) {
  TempDir d;
  ConfigOptions o;
  o.serviceAccountDir = d.path();
  o.serviceHost = "10.96.0.1";
  o.servicePort = "443";
  auto cfg = loadConfig(o);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message, "token file " + d.path() + "/token: No such file or directory");
  d.write("token", "t");
  cfg = loadConfig(o);
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.error().message,
            "ServiceAccount CA certificate " + d.path() + "/ca.crt: No such file or directory");
}

TEST(K8sToken, ReReadOnlyWhenTheFileChanges) {
  TempDir d;
  std::string p = d.write("token", "first\n");
  ConnectionConfig cfg;
  cfg.tokenFile = p;
  TokenSource ts(cfg);
  EXPECT_EQ(*ts.current(), "first");
  EXPECT_EQ(*ts.current(), "first");
  EXPECT_EQ(ts.reads(), 1u);  // unchanged file: not read again

  // The kubelet's rotation: a new file swapped in (new inode).
  d.write("token.new", "second-token");
  ASSERT_EQ(::rename((d.path() + "/token.new").c_str(), p.c_str()), 0);
  EXPECT_EQ(*ts.current(), "second-token");
  EXPECT_EQ(ts.reads(), 2u);

  // Rewritten in place, same size: the mtime tells.
  { std::ofstream(p) << "third-token!"; }
  struct timespec times[2] = {{0, UTIME_OMIT}, {1234567, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
  EXPECT_EQ(*ts.current(), "third-token!");
  EXPECT_EQ(ts.reads(), 3u);

  // Gone or emptied: the last good token stays in use.
  { std::ofstream(p) << ""; }
  EXPECT_EQ(*ts.current(), "third-token!");
  ::unlink(p.c_str());
  EXPECT_EQ(*ts.current(), "third-token!");

  ConnectionConfig fixed;
  fixed.token = "fixed";
  fixed.tokenFile = p;  // token wins; the file is never read
  TokenSource tf(fixed);
  EXPECT_EQ(*tf.current(), "fixed");
  EXPECT_EQ(tf.reads(), 0u);
}

TEST(K8sKubeconfigYaml, ScalarsTyped) {
  auto j = readKubeconfigYaml("a: true\nb: 'true'\nc: ~\nd: 123\ne: off\n", "/k");
  ASSERT_TRUE(j.ok()) << j.error().message;
  EXPECT_EQ((*j)["a"], true);
  EXPECT_EQ((*j)["b"], "true");
  EXPECT_TRUE((*j)["c"].is_null());
  EXPECT_EQ((*j)["d"], 123);  // YAML 1.1, as go-yaml (kubectl) resolves it
  EXPECT_EQ((*j)["e"], false);
}

}  // namespace
}  // namespace svclb::k8s
