#include "k8s/client.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <optional>

namespace svclb::k8s {

using nlohmann::json;

// ---- watch stream decoding ----------------------------------------------------

const char* watchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::Added:
      return "ADDED";
    case WatchEventType::Modified:
      return "MODIFIED";
    case WatchEventType::Deleted:
      return "DELETED";
    case WatchEventType::Bookmark:
      return "BOOKMARK";
    case WatchEventType::Error:
      return "ERROR";
  }
  return "?";
}

Result<WatchEvent> parseWatchEvent(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Error{EBADMSG, fmt::format("a watch event is not valid JSON: {:.200}", line)};
  if (!j.is_object()) return Error{EBADMSG, "a watch event is not a JSON object"};
  auto type = j.find("type");
  auto object = j.find("object");
  if (type == j.end() || !type->is_string()) return Error{EBADMSG, "a watch event has no \"type\""};
  if (object == j.end() || !object->is_object())
    return Error{EBADMSG, "a watch event has no \"object\""};
  const std::string& t = type->get_ref<const std::string&>();
  WatchEvent ev;
  if (t == "ADDED")
    ev.type = WatchEventType::Added;
  else if (t == "MODIFIED")
    ev.type = WatchEventType::Modified;
  else if (t == "DELETED")
    ev.type = WatchEventType::Deleted;
  else if (t == "BOOKMARK")
    ev.type = WatchEventType::Bookmark;
  else if (t == "ERROR")
    ev.type = WatchEventType::Error;
  else
    return Error{EBADMSG, fmt::format("a watch event has an unknown type \"{:.40}\"", t)};
  ev.object = std::move(*object);
  return ev;
}

bool WatchDecoder::feed(std::string_view bytes, const Sink& sink) {
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      if (buf_.size() + bytes.size() > maxLine_) {
        buf_.clear();
        return false;
      }
      buf_.append(bytes);
      return true;
    }
    std::string_view line;
    if (buf_.empty()) {
      line = bytes.substr(0, nl);
    } else {
      buf_.append(bytes.substr(0, nl));
      line = buf_;
    }
    bytes.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool go = true;
    if (line.find_first_not_of(" \t") != std::string_view::npos) go = sink(parseWatchEvent(line));
    buf_.clear();
    if (!go) return false;
  }
  return true;
}

// ---- errors -------------------------------------------------------------------

namespace {

const char* statusText(long code) {
  switch (code) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 410:
      return "Gone";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
  }
  return "";
}

int errnoForStatus(long code, std::string_view reason, std::string_view message) {
  if (code == 410 || reason == "Expired" || reason == "Gone" ||
      message.find("too old resource version") != std::string_view::npos)
    return ESTALE;
  if (code == 401) return EACCES;
  if (code == 403) return EPERM;
  if (code == 404) return ENOENT;
  if (code == 429 || code >= 500) return EAGAIN;
  return EPROTO;
}

std::string statusMessage(const json& st) {
  if (st.is_object()) {
    auto m = st.find("message");
    if (m != st.end() && m->is_string() && !m->get_ref<const std::string&>().empty())
      return m->get<std::string>();
  }
  return "";
}

std::string stringField(const json& st, const char* key) {
  if (!st.is_object()) return "";
  auto it = st.find(key);
  return it != st.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string describe(long code, std::string_view reason, std::string_view message,
                     std::string_view server, std::string_view what) {
  std::string head;
  if (code == 401)
    head = fmt::format("the API server {} did not accept svclbd's credentials to {}", server, what);
  else if (code == 403)
    head = fmt::format("the API server {} refused to {}", server, what);
  else if (code == 410 || reason == "Expired" || reason == "Gone")
    head = fmt::format("the API server {} no longer has the requested version to {}", server, what);
  else
    head = fmt::format("the API server {} failed to {}", server, what);
  std::string text = statusText(code);
  std::string codeStr =
      code ? fmt::format(" ({}{}{})", code, text.empty() ? "" : " ", text) : std::string();
  std::string out = head + codeStr;
  if (!message.empty()) out += fmt::format(": {}", message);
  if (code == 403)
    out +=
        " (svclbd's ServiceAccount needs the ClusterRole in deploy/kubernetes/: list and watch "
        "services and endpointslices, get/list/watch nodes)";
  if (code == 401) out += " (check the token or the client certificate)";
  return out;
}

}  // namespace

Error httpError(long httpStatus, std::string_view body, std::string_view server,
                std::string_view what) {
  json st = json::parse(body.begin(), body.end(), nullptr, false);
  std::string message, reason;
  if (!st.is_discarded() && st.is_object() && stringField(st, "kind") == "Status") {
    message = statusMessage(st);
    reason = stringField(st, "reason");
  } else if (!body.empty()) {
    // Not a Status (a proxy in between?): show the start of the body.
    std::string b(body.substr(0, 200));
    for (char& c : b)
      if (c == '\n' || c == '\r') c = ' ';
    message = b;
  }
  int code = errnoForStatus(httpStatus, reason, message);
  return Error{code, describe(httpStatus, reason, message, server, what)};
}

Error watchStatusError(const json& status, std::string_view server, std::string_view what) {
  long code = 0;
  if (status.is_object()) {
    auto c = status.find("code");
    if (c != status.end() && c->is_number_integer()) code = c->get<long>();
  }
  std::string reason = stringField(status, "reason");
  std::string message = statusMessage(status);
  int err = errnoForStatus(code, reason, message);
  return Error{err, describe(code, reason, message, server, what)};
}

std::string jsonString(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return "";
    auto it = cur->find(key);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

std::string queryEscape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// ---- the client ---------------------------------------------------------------

namespace {

std::once_flag curlInitOnce;

int setSockopts(void* clientp, curl_socket_t fd, curlsocktype purpose) {
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKOPT_OK;
  const auto* o = static_cast<const ClientOptions*>(clientp);
  int on = 1;
  int idle = static_cast<int>(o->keepIdle.count());
  int intvl = static_cast<int>(o->keepInterval.count());
  int cnt = o->keepCount;
  unsigned userTimeout = static_cast<unsigned>(o->userTimeout.count());
  // Failures here only weaken dead-peer detection; the connection works.
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &userTimeout, sizeof userTimeout);
  return CURL_SOCKOPT_OK;
}

int errnoForCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      return ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
      return ETIMEDOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return EPROTO;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return ECONNRESET;
    default:
      return EIO;
  }
}

constexpr size_t kErrorBodyCap = 1u << 20;

}  // namespace

struct Client::Impl {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {};

  ~Impl() {
    if (easy) curl_easy_cleanup(easy);
    if (multi) curl_multi_cleanup(multi);
  }
};

namespace {

struct Transfer {
  CURL* easy = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
  bool streaming = false;
  long status = 0;
  std::string body;
  bool bodyTooLarge = false;
  WatchDecoder decoder;
  const Client::EventFn* onEvent = nullptr;
  uint64_t events = 0;
  bool stopped = false;
  std::optional<Error> streamErr;
};

bool feedEvents(Transfer* x, std::string_view bytes);

size_t onWrite(char* p, size_t size, size_t n, void* ud) {
  auto* x = static_cast<Transfer*>(ud);
  size_t len = size * n;
  if (x->cancelled->load()) return 0;
  if (x->status == 0) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  bool success = x->status >= 200 && x->status < 300;
  if (!x->streaming || !success) {
    if (!success && x->body.size() + len > kErrorBodyCap) {
      x->bodyTooLarge = true;
      return len;  // keep the start; the status decides
    }
    x->body.append(p, len);
    return len;
  }
  // No exception may cross libcurl's C frames: a throwing callback ends the
  // watch with its message.
  bool ok = false;
  try {
    ok = feedEvents(x, std::string_view(p, len));
  } catch (const std::exception& e) {
    x->streamErr = Error{EIO, std::string("handling a watch event failed: ") + e.what()};
  }
  if (ok) return len;
  if (!x->stopped && !x->streamErr)
    x->streamErr = Error{EBADMSG, "a watch event line is longer than the decoder allows"};
  return 0;  // ends the transfer (CURLE_WRITE_ERROR)
}

bool feedEvents(Transfer* x, std::string_view bytes) {
  return x->decoder.feed(bytes, [x](Result<WatchEvent>&& ev) {
    if (!ev) {
      x->streamErr = ev.error();
      return false;
    }
    ++x->events;
    if (!(*x->onEvent)(std::move(*ev))) {
      x->stopped = true;
      return false;
    }
    return true;
  });
}

}  // namespace

Client::Client(ConnectionConfig cfg, ClientOptions opts)
    : cfg_(std::move(cfg)), opts_(std::move(opts)), token_(cfg_), impl_(std::make_unique<Impl>()) {}

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(const ConnectionConfig& cfg, ClientOptions opts) {
  std::call_once(curlInitOnce, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (cfg.server.empty()) return Error{EINVAL, "no Kubernetes API server configured"};
  std::unique_ptr<Client> c(new Client(cfg, std::move(opts)));
  c->impl_->multi = curl_multi_init();
  c->impl_->easy = curl_easy_init();
  if (!c->impl_->multi || !c->impl_->easy) return Error{ENOMEM, "libcurl: cannot create a handle"};
  return c;
}

void Client::cancel() {
  cancelled_.store(true);
  if (impl_ && impl_->multi) curl_multi_wakeup(impl_->multi);
}

namespace {

// One request on the client's handles; the connection stays in the multi
// handle's cache for the next one (one TLS handshake for all pages).
struct RequestSpec {
  std::string url;
  bool streaming = false;
  long lowSpeedTime = 60;
  bool compressed = false;
};

}  // namespace

// Runs a request to the end; fills `x`. Returns the transport outcome only.
static Status runTransfer(CURL* easy, CURLM* multi, char* errbuf, const ConnectionConfig& cfg,
                          const ClientOptions& opts, TokenSource& token,
                          const std::atomic<bool>& cancelled, const RequestSpec& spec, Transfer& x,
                          std::string_view what) {
  if (cancelled.load()) return Error{ECANCELED, fmt::format("cancelled: {}", what)};
  auto tok = token.current();
  if (!tok) return tok.error();

  curl_easy_reset(easy);
  errbuf[0] = '\0';
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(easy, CURLOPT_URL, spec.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, opts.userAgent.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, static_cast<long>(opts.connectTimeout.count()));
  curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, setSockopts);
  curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, const_cast<ClientOptions*>(&opts));
  // Average below 1 byte/s over lowSpeedTime seconds: the request is dead.
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, spec.lowSpeedTime);
  if (spec.compressed) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "gzip");

  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, cfg.insecureSkipTlsVerify ? 0L : 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, cfg.insecureSkipTlsVerify ? 0L : 2L);
  struct curl_blob ca {
  }, cert{}, key{};
  if (!cfg.caPem.empty()) {
    ca = {const_cast<char*>(cfg.caPem.data()), cfg.caPem.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!cfg.caFile.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, cfg.caFile.c_str());
  }
  if (!cfg.clientCertPem.empty()) {
    cert = {const_cast<char*>(cfg.clientCertPem.data()), cfg.clientCertPem.size(),
            CURL_BLOB_NOCOPY};
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
  } else if (!cfg.clientCertFile.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, cfg.clientCertFile.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
  if (!cfg.clientKeyPem.empty()) {
    key = {const_cast<char*>(cfg.clientKeyPem.data()), cfg.clientKeyPem.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
  } else if (!cfg.clientKeyFile.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLKEY, cfg.clientKeyFile.c_str());
  }

  struct curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  std::string auth;
  if (!tok->empty()) {
    auth = "Authorization: Bearer " + *tok;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);

  x.easy = easy;
  x.cancelled = &cancelled;
  x.streaming = spec.streaming;
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &x);

  CURLcode rc = CURLE_OK;
  bool done = false;
  CURLMcode mc = curl_multi_add_handle(multi, easy);
  while (mc == CURLM_OK && !done) {
    int running = 0;
    mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) break;
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg == CURLMSG_DONE && m->easy_handle == easy) {
        rc = m->data.result;
        done = true;
      }
    }
    if (done) break;
    if (cancelled.load()) break;
    // Wakes at once on cancel() (curl_multi_wakeup), else on I/O or after 1 s.
    mc = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  curl_multi_remove_handle(multi, easy);
  curl_slist_free_all(headers);
  std::fill(auth.begin(), auth.end(), '\0');
  if (x.status == 0) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x.status);

  if (cancelled.load()) return Error{ECANCELED, fmt::format("cancelled: {}", what)};
  if (mc != CURLM_OK)
    return Error{EIO, fmt::format("libcurl: {} ({})", curl_multi_strerror(mc), what)};
  if (rc == CURLE_WRITE_ERROR && (x.stopped || x.streamErr)) return {};
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    int e = errnoForCurl(rc);
    std::string hint;
    if (e == EPROTO)
      hint = " (is the API server's CA the one configured?)";
    else if (rc == CURLE_OPERATION_TIMEDOUT)
      hint = " (no data: the connection or the server is dead)";
    return Error{
        e, fmt::format("cannot {} on the API server {}: {}{}", what, cfg.server, detail, hint)};
  }
  return {};
}

Error Client::withSource(Error e) const {
  if (e.code == EACCES || e.code == EPERM) e.message += "; credentials from " + cfg_.source;
  return e;
}

Result<json> Client::getJson(const std::string& pathAndQuery, std::string_view what) {
  RequestSpec spec;
  spec.url = cfg_.server + pathAndQuery;
  spec.lowSpeedTime = static_cast<long>(opts_.listStallTimeout.count());
  spec.compressed = true;
  Transfer x;
  auto st = runTransfer(impl_->easy, impl_->multi, impl_->errbuf, cfg_, opts_, token_, cancelled_,
                        spec, x, what);
  if (!st) return st.error();
  if (x.status < 200 || x.status >= 300)
    return withSource(httpError(x.status, x.body, cfg_.server, what));
  json j = json::parse(x.body, nullptr, false);
  if (j.is_discarded())
    return Error{EBADMSG,
                 fmt::format("the API server {} answered {} with something that is not JSON",
                             cfg_.server, what)};
  return j;
}

Result<ListResult> Client::listAll(const std::string& basePath, const std::string& query,
                                   std::string_view what) {
  ListResult out;
  std::string cont;
  int limit = opts_.pageSize;
  bool restarted = false;
  for (;;) {
    std::string q = query;
    auto add = [&q](const std::string& kv) {
      if (!q.empty()) q += '&';
      q += kv;
    };
    if (limit > 0) add(fmt::format("limit={}", limit));
    if (!cont.empty()) add("continue=" + queryEscape(cont));
    auto page = getJson(basePath + (q.empty() ? "" : "?" + q), what);
    if (!page) {
      if (page.error().code == ESTALE && !cont.empty() && !restarted) {
        // The continue token expired (compaction): one unpaginated list.
        out = ListResult{};
        cont.clear();
        limit = 0;
        restarted = true;
        continue;
      }
      return page.error();
    }
    ++out.pages;
    auto items = page->find("items");
    if (items != page->end() && !items->is_null() && !items->is_array())
      return Error{EBADMSG, fmt::format("the API server {} answered {} without an items list",
                                        cfg_.server, what)};
    if (items != page->end() && items->is_array())
      for (auto& it : *items) out.items.push_back(std::move(it));
    out.resourceVersion = jsonString(*page, {"metadata", "resourceVersion"});
    cont = jsonString(*page, {"metadata", "continue"});
    if (cont.empty()) break;
  }
  if (out.resourceVersion.empty())
    return Error{EBADMSG, fmt::format("the API server {} answered {} without a resourceVersion",
                                      cfg_.server, what)};
  return out;
}

Result<WatchEnd> Client::watch(const std::string& pathAndQuery, int timeoutSeconds,
                               std::string_view what, const EventFn& onEvent) {
  RequestSpec spec;
  spec.url = cfg_.server + pathAndQuery;
  spec.streaming = true;
  spec.lowSpeedTime = static_cast<long>(timeoutSeconds + opts_.watchGrace.count());
  Transfer x;
  x.onEvent = &onEvent;
  auto st = runTransfer(impl_->easy, impl_->multi, impl_->errbuf, cfg_, opts_, token_, cancelled_,
                        spec, x, what);
  if (!st) return st.error();
  if (x.status < 200 || x.status >= 300)
    return withSource(httpError(x.status, x.body, cfg_.server, what));
  if (x.streamErr)
    return Error{x.streamErr->code, fmt::format("{} from the API server {}: {}", what, cfg_.server,
                                                x.streamErr->message)};
  if (!x.stopped && x.decoder.pending() > 0)
    return Error{ECONNRESET, fmt::format("the API server {} ended the stream to {} in the middle "
                                         "of an event",
                                         cfg_.server, what)};
  return WatchEnd{x.events, x.stopped};
}

}  // namespace svclb::k8s
