#include "k8s/config.h"

#include <fmt/format.h>
#include <nettle/base64.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/yaml.h"
#include "model/model.h"  // goQuote

namespace svclb::k8s {

using nlohmann::json;

namespace {

std::string dirOf(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string resolvePath(const std::string& base, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return base + "/" + p;
}

Status checkReadable(const std::string& file, const std::string& what) {
  std::ifstream f(file);
  if (!f) return Error::fromErrno(errno ? errno : ENOENT, what + " " + file);
  return {};
}

Result<std::string> decodeBase64(const std::string& in) {
  std::string out(BASE64_DECODE_LENGTH(in.size()), '\0');
  struct base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  size_t n = out.size();
  if (!base64_decode_update(&ctx, &n, reinterpret_cast<uint8_t*>(out.data()), in.size(),
                            in.data()) ||
      !base64_decode_final(&ctx))
    return Error{EINVAL, "is not valid base64"};
  out.resize(n);
  return out;
}

// A kubeconfig's typed view over the JSON document: every field access names
// the field in errors.
struct Reader {
  std::string where;  // "kubeconfig /x"

  Error err(const std::string& msg) const { return Error{EINVAL, where + ": " + msg}; }

  Result<std::string> str(const json& obj, const char* key, const std::string& field) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) return err(field + "." + key + " must be a string");
    return it->get<std::string>();
  }

  Result<bool> boolean(const json& obj, const char* key, const std::string& field) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return false;
    if (!it->is_boolean()) return err(field + "." + key + " must be true or false");
    return it->get<bool>();
  }

  // clusters / contexts / users: a list of {name, <inner>: {...}}.
  Result<const json*> named(const json& doc, const char* list, const char* inner,
                            const std::string& name) const {
    auto it = doc.find(list);
    if (it != doc.end() && !it->is_null() && !it->is_array())
      return err(fmt::format("{} must be a list", list));
    if (it != doc.end() && it->is_array()) {
      for (const auto& e : *it) {
        if (!e.is_object()) return err(fmt::format("{} must be a list of mappings", list));
        auto n = e.find("name");
        if (n == e.end() || !n->is_string() || n->get<std::string>() != name) continue;
        auto in = e.find(inner);
        if (in == e.end() || in->is_null()) {
          static const json empty = json::object();
          return &empty;
        }
        if (!in->is_object())
          return err(fmt::format("{}[{}].{} must be a mapping", list, goQuote(name), inner));
        return &*in;
      }
    }
    return static_cast<const json*>(nullptr);
  }

  // A `*-data` field (base64 PEM) or its file twin; data wins.
  Status pem(const json& obj, const char* dataKey, const char* fileKey, const std::string& field,
             const std::string& baseDir, std::string& pemOut, std::string& fileOut) const {
    auto data = str(obj, dataKey, field);
    if (!data) return data.error();
    auto file = str(obj, fileKey, field);
    if (!file) return file.error();
    if (!data->empty()) {
      auto dec = decodeBase64(*data);
      if (!dec) return err(fmt::format("{}.{} {}", field, dataKey, dec.error().message));
      if (dec->find("-----BEGIN") == std::string::npos)
        return err(fmt::format("{}.{} does not hold a PEM block (-----BEGIN ...)", field, dataKey));
      pemOut = std::move(*dec);
      return {};
    }
    if (!file->empty()) {
      fileOut = resolvePath(baseDir, *file);
      auto st = checkReadable(fileOut, fmt::format("{}.{}", field, fileKey));
      if (!st) return err(st.error().message);
    }
    return {};
  }
};

std::string trimRight(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

Result<std::string> readFile(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error::fromErrno(errno ? errno : ENOENT, what + " " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Error::fromErrno(errno ? errno : EIO, what + " " + path);
  return ss.str();
}

}  // namespace

Result<json> readKubeconfigYaml(std::string_view text, std::string_view path) {
  // The project's one YAML reader (common/yaml.h: libyaml, kubectl's
  // words); a kubeconfig is one document.
  json doc;
  int docs = 0;
  auto err = yaml::readYaml(text, [&](json&& d) {
    if (docs++ == 0) doc = std::move(d);
  });
  if (err) return Error{EINVAL, fmt::format("kubeconfig {}: not valid YAML: {}", path, *err)};
  return doc;
}

Result<std::string> normalizeServerUrl(std::string_view url, bool allowInsecure) {
  std::string u(url);
  auto bad = [&](const std::string& why) {
    return Error{EINVAL, fmt::format("API server URL {}: {}", goQuote(u), why)};
  };
  std::string_view rest;
  if (u.rfind("https://", 0) == 0) {
    rest = std::string_view(u).substr(8);
  } else if (u.rfind("http://", 0) == 0) {
    if (!allowInsecure)
      return bad("plain http:// sends the token unencrypted and trusts anyone; use https://");
    rest = std::string_view(u).substr(7);
  } else {
    return bad("must start with https://");
  }
  if (rest.empty() || rest[0] == '/' || rest[0] == ':') return bad("has no host");
  for (char c : u)
    if (c == ' ' || c == '?' || c == '#' || c == '\t' || c == '\n')
      return bad("must not contain spaces, a query or a fragment");
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

Result<ConnectionConfig> parseKubeconfig(std::string_view text, std::string_view path,
                                         std::string_view context, bool allowInsecure) {
  Reader r{fmt::format("kubeconfig {}", path)};
  auto docR = readKubeconfigYaml(text, path);
  if (!docR) return docR.error();
  const json& doc = *docR;
  if (!doc.is_object())
    return r.err("not a kubeconfig (expected a mapping with clusters, contexts and users)");

  std::string ctxName(context);
  bool fromCurrent = ctxName.empty();
  if (fromCurrent) {
    auto cur = r.str(doc, "current-context", "");
    if (!cur) return cur.error();
    ctxName = *cur;
    if (ctxName.empty()) return r.err("current-context is not set");
  }
  auto ctx = r.named(doc, "contexts", "context", ctxName);
  if (!ctx) return ctx.error();
  if (!*ctx)
    return r.err(fmt::format("context {}{} does not exist", goQuote(ctxName),
                             fromCurrent ? " (current-context)" : ""));
  const std::string ctxField = fmt::format("contexts[{}].context", goQuote(ctxName));
  auto clusterName = r.str(**ctx, "cluster", ctxField);
  if (!clusterName) return clusterName.error();
  auto userName = r.str(**ctx, "user", ctxField);
  if (!userName) return userName.error();
  if (clusterName->empty()) return r.err(ctxField + ".cluster is not set");

  auto cluster = r.named(doc, "clusters", "cluster", *clusterName);
  if (!cluster) return cluster.error();
  if (!*cluster)
    return r.err(fmt::format("cluster {} (of context {}) does not exist", goQuote(*clusterName),
                             goQuote(ctxName)));
  const json& c = **cluster;
  const std::string cf = fmt::format("clusters[{}].cluster", goQuote(*clusterName));
  const std::string base = dirOf(path);

  ConnectionConfig cfg;
  cfg.source = fmt::format("kubeconfig {} (context {})", path, goQuote(ctxName));
  auto server = r.str(c, "server", cf);
  if (!server) return server.error();
  if (server->empty()) return r.err(cf + ".server is not set");
  auto url = normalizeServerUrl(*server, allowInsecure);
  if (!url) return r.err(cf + ".server: " + url.error().message);
  cfg.server = *url;
  if (auto st = r.pem(c, "certificate-authority-data", "certificate-authority", cf, base, cfg.caPem,
                      cfg.caFile);
      !st)
    return st.error();
  auto insecure = r.boolean(c, "insecure-skip-tls-verify", cf);
  if (!insecure) return insecure.error();
  if (*insecure) {
    if (!allowInsecure)
      return r.err(cf +
                   ".insecure-skip-tls-verify is set: svclbd does not talk to an API server "
                   "whose certificate it cannot verify (give the cluster's CA instead)");
    if (!cfg.caPem.empty() || !cfg.caFile.empty())
      return r.err(cf +
                   ": a certificate authority together with insecure-skip-tls-verify is not "
                   "allowed");
    cfg.insecureSkipTlsVerify = true;
  }
  auto tlsName = r.str(c, "tls-server-name", cf);
  if (!tlsName) return tlsName.error();
  if (!tlsName->empty()) return r.err(cf + ".tls-server-name is not supported by svclbd");

  if (!userName->empty()) {
    auto user = r.named(doc, "users", "user", *userName);
    if (!user) return user.error();
    if (!*user)
      return r.err(fmt::format("user {} (of context {}) does not exist", goQuote(*userName),
                               goQuote(ctxName)));
    const json& u = **user;
    const std::string uf = fmt::format("users[{}].user", goQuote(*userName));
    for (const char* plugin : {"exec", "auth-provider"})
      if (u.contains(plugin) && !u[plugin].is_null())
        return r.err(fmt::format(
            "{}.{}: credential plugins are not supported by svclbd; use a token, a token file "
            "or a client certificate",
            uf, plugin));
    if ((u.contains("username") && !u["username"].is_null()) ||
        (u.contains("password") && !u["password"].is_null()))
      return r.err(uf +
                   ": username/password (basic) authentication is not supported; use a token or "
                   "a client certificate");
    if (auto st = r.pem(u, "client-certificate-data", "client-certificate", uf, base,
                        cfg.clientCertPem, cfg.clientCertFile);
        !st)
      return st.error();
    if (auto st = r.pem(u, "client-key-data", "client-key", uf, base, cfg.clientKeyPem,
                        cfg.clientKeyFile);
        !st)
      return st.error();
    bool hasCert = !cfg.clientCertPem.empty() || !cfg.clientCertFile.empty();
    bool hasKey = !cfg.clientKeyPem.empty() || !cfg.clientKeyFile.empty();
    if (hasCert != hasKey)
      return r.err(uf + (hasCert ? ": client-certificate is set without client-key"
                                 : ": client-key is set without client-certificate"));
    auto token = r.str(u, "token", uf);
    if (!token) return token.error();
    cfg.token = trimRight(*token);
    auto tokenFile = r.str(u, "tokenFile", uf);
    if (!tokenFile) return tokenFile.error();
    if (cfg.token.empty() && !tokenFile->empty()) {
      cfg.tokenFile = resolvePath(base, *tokenFile);
      auto st = checkReadable(cfg.tokenFile, uf + ".tokenFile");
      if (!st) return r.err(st.error().message);
    }
  }
  return cfg;
}

Result<ConnectionConfig> inClusterConfig(const ConfigOptions& opts) {
  ConnectionConfig cfg;
  cfg.source = "in-cluster ServiceAccount (" + opts.serviceAccountDir + ")";
  if (!opts.apiServer.empty()) {
    auto url = normalizeServerUrl(opts.apiServer, opts.allowInsecure);
    if (!url) return url.error();
    cfg.server = *url;
  } else {
    std::string host = opts.serviceHost, port = opts.servicePort;
    if (host.empty())
      if (const char* e = std::getenv("KUBERNETES_SERVICE_HOST")) host = e;
    if (port.empty())
      if (const char* e = std::getenv("KUBERNETES_SERVICE_PORT")) port = e;
    if (host.empty() || port.empty())
      return Error{ENOENT,
                   "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST and "
                   "KUBERNETES_SERVICE_PORT are not set): give --kubeconfig PATH or "
                   "--k8s-api-server URL"};
    if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
    auto url = normalizeServerUrl("https://" + host + ":" + port, false);
    if (!url) return Error{EINVAL, "KUBERNETES_SERVICE_HOST/PORT: " + url.error().message};
    cfg.server = *url;
  }
  cfg.tokenFile = opts.serviceAccountDir + "/token";
  cfg.caFile = opts.serviceAccountDir + "/ca.crt";
  TokenSource probe(cfg);
  if (auto t = probe.current(); !t) return t.error();
  if (auto st = checkReadable(cfg.caFile, "ServiceAccount CA certificate"); !st) return st.error();
  return cfg;
}

Result<ConnectionConfig> loadConfig(const ConfigOptions& opts) {
  if (opts.kubeconfigPath.empty()) return inClusterConfig(opts);
  auto text = readFile(opts.kubeconfigPath, "kubeconfig");
  if (!text) return text.error();
  auto cfg = parseKubeconfig(*text, opts.kubeconfigPath, opts.context, opts.allowInsecure);
  if (!cfg) return cfg.error();
  if (!opts.apiServer.empty()) {
    auto url = normalizeServerUrl(opts.apiServer, opts.allowInsecure);
    if (!url) return url.error();
    cfg->server = *url;
  }
  return cfg;
}

TokenSource::TokenSource(const ConnectionConfig& cfg) : fixed_(cfg.token) {
  if (fixed_.empty()) file_ = cfg.tokenFile;
}

Result<std::string> TokenSource::current() {
  std::lock_guard lock(mu_);
  if (!fixed_.empty() || file_.empty()) return fixed_;
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    int e = errno;
    if (!cached_.empty()) return cached_;
    return Error::fromErrno(e, "token file " + file_);
  }
  bool changed = st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec ||
                 st.st_size != size_ || st.st_ino != ino_;
  if (!changed && !cached_.empty()) return cached_;
  auto text = readFile(file_, "token file");
  ++reads_;
  if (!text) {
    if (!cached_.empty()) return cached_;
    return text.error();
  }
  std::string tok = trimRight(std::move(*text));
  if (tok.empty()) {
    if (!cached_.empty()) return cached_;
    return Error{EINVAL, "token file " + file_ + " is empty"};
  }
  cached_ = std::move(tok);
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  ino_ = st.st_ino;
  return cached_;
}

unsigned TokenSource::reads() const {
  std::lock_guard lock(mu_);
  return reads_;
}

}  // namespace svclb::k8s
