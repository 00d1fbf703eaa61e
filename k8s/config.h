// How svclbd reaches the Kubernetes API server: the server URL, how the
// server's certificate is verified and how svclbd proves who it is. Read from
// a kubeconfig file (svclbd --kubeconfig) or, in a pod, from the in-cluster
// environment (KUBERNETES_SERVICE_HOST/PORT and the ServiceAccount's token and
// ca.crt); `--k8s-api-server URL` overrides the server of either, so a
// kube-proxy replacement need not depend on the ClusterIP it programs itself.
//
// Errors name the file and the field in the user's words, e.g.
//   kubeconfig /root/.kube/config: context "dev" (current-context) does not exist
#pragma once

#include <sys/types.h>

#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace svclb::k8s {

// The ServiceAccount directory a pod gets mounted.
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ConnectionConfig {
  std::string server;  // "https://10.0.0.1:6443" (no trailing '/'; may carry a path prefix)
  // Trust: PEM text (certificate-authority-data) wins over a file; both empty
  // means the system's CA bundle (as client-go does).
  std::string caPem;
  std::string caFile;
  bool insecureSkipTlsVerify = false;  // only when explicitly allowed
  // Client certificate (PEM text or a file), both or neither.
  std::string clientCertPem, clientCertFile;
  std::string clientKeyPem, clientKeyFile;
  // Bearer token: a fixed one, or a file re-read when it changes (the
  // projected ServiceAccount token is rotated by the kubelet).
  std::string token;
  std::string tokenFile;
  // Where this came from, for messages: "kubeconfig /x (context \"dev\")" or
  // "in-cluster ServiceAccount".
  std::string source;
};

struct ConfigOptions {
  std::string kubeconfigPath;  // --kubeconfig; empty: in-cluster
  std::string context;         // empty: the kubeconfig's current-context
  std::string apiServer;       // --k8s-api-server; empty: from kubeconfig / environment
  // insecure-skip-tls-verify (and an http:// server) are refused unless this
  // is set: a load balancer must not trust whoever answers on the address.
  bool allowInsecure = false;
  // In-cluster inputs (tests point these elsewhere).
  std::string serviceAccountDir = kServiceAccountDir;
  std::string serviceHost;  // empty: getenv("KUBERNETES_SERVICE_HOST")
  std::string servicePort;  // empty: getenv("KUBERNETES_SERVICE_PORT")
};

// The one place kubeconfig YAML is read (yaml-cpp for now): the document as
// JSON; plain true/false/yes/no/on/off become booleans, plain null/~/empty
// null, every other scalar a string. `path` is for messages.
Result<nlohmann::json> readKubeconfigYaml(std::string_view text, std::string_view path);

// kubeconfig text -> config. Relative file paths are resolved against the
// kubeconfig's directory, as kubectl does; files named are checked readable
// now so a typo fails at start-up, not at the first request. `*-data` fields
// win over the file fields, `token` over `tokenFile` (client-go's precedence).
// Refused with a clear message: exec/auth-provider plugins, username/password,
// tls-server-name, insecure-skip-tls-verify unless allowInsecure (and with a
// CA, which client-go refuses too).
Result<ConnectionConfig> parseKubeconfig(std::string_view text, std::string_view path,
                                         std::string_view context, bool allowInsecure);

// KUBERNETES_SERVICE_HOST/PORT (an IPv6 host is bracketed), <dir>/token
// (re-read as it rotates) and <dir>/ca.crt.
Result<ConnectionConfig> inClusterConfig(const ConfigOptions& opts);

// --k8s-api-server: "https://host[:port][/prefix]" (http:// only with
// allowInsecure). Returns the normalized URL (no trailing '/').
Result<std::string> normalizeServerUrl(std::string_view url, bool allowInsecure);

// The whole choice: kubeconfig if given, else in-cluster; then the override.
Result<ConnectionConfig> loadConfig(const ConfigOptions& opts);

// The bearer token for the next request: a fixed token, or the file's content
// (trailing whitespace trimmed) re-read whenever its mtime, size or inode
// changed since the last read (the kubelet swaps the projected token
// atomically through a symlink). Thread-safe. A file that vanished or became
// empty keeps the last good token and reports the error once it has none.
class TokenSource {
 public:
  TokenSource() = default;
  explicit TokenSource(const ConnectionConfig& cfg);
  Result<std::string> current();
  // How many times the file was (re-)read: tests and status.
  unsigned reads() const;

 private:
  mutable std::mutex mu_;
  std::string fixed_;
  std::string file_;
  std::string cached_;
  struct timespec mtime_ {};
  off_t size_ = -1;
  ino_t ino_ = 0;
  unsigned reads_ = 0;
};

}  // namespace svclb::k8s
