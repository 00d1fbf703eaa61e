#include "loader/http_server.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "model/model.h"

namespace svclb::http {

namespace {

// Past this many open connections (all listeners together) the listeners
// stop accepting (the kernel backlog queues the rest) instead of
// exhausting the daemon's descriptors.
constexpr size_t kMaxConns = 512;

const char* methodName(evhttp_cmd_type t) {
  switch (t) {
    case EVHTTP_REQ_GET:
      return "GET";
    case EVHTTP_REQ_POST:
      return "POST";
    case EVHTTP_REQ_HEAD:
      return "HEAD";
    case EVHTTP_REQ_PUT:
      return "PUT";
    case EVHTTP_REQ_DELETE:
      return "DELETE";
    case EVHTTP_REQ_OPTIONS:
      return "OPTIONS";
    case EVHTTP_REQ_TRACE:
      return "TRACE";
    case EVHTTP_REQ_CONNECT:
      return "CONNECT";
    case EVHTTP_REQ_PATCH:
      return "PATCH";
  }
  return "";
}

}  // namespace

Result<int> openTcpListener(const sockaddr_in& addr) {
  const std::string where =
      fmt::format("{}:{}", formatIPv4(ntohl(addr.sin_addr.s_addr)), ntohs(addr.sin_port));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::fromErrno(errno, "socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    int err = errno;
    ::close(fd);
    return Error::fromErrno(err, "SO_REUSEADDR");
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return Error::fromErrno(err, "bind " + where);
  }
  if (listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    return Error::fromErrno(err, "listen " + where);
  }
  return fd;
}

Result<int> openTcpListenerAnyAddress(uint16_t port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    return openTcpListener(sa);
  }
  if (fd < 0) return Error::fromErrno(errno, "socket");
  const std::string where = fmt::format("[::]:{}", port);
  int one = 1, zero = 0;
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  sa.sin6_addr = in6addr_any;
  const char* step = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    step = "SO_REUSEADDR";
  else if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0)
    step = "IPV6_V6ONLY";
  else if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0)
    step = "bind";
  else if (listen(fd, SOMAXCONN) != 0)
    step = "listen";
  if (step) {
    int err = errno;
    ::close(fd);
    return Error::fromErrno(err, fmt::format("{} {}", step, where));
  }
  return fd;
}

struct Server::Listener {
  Server* srv = nullptr;
  evhttp* http = nullptr;
  evhttp_bound_socket* bound = nullptr;
  Handler handler;
};

// One open connection: its deadline, and its share of kMaxConns.
struct Server::Conn {
  Server* srv = nullptr;
  evhttp_connection* evcon = nullptr;
  event* deadline = nullptr;
};

Server::Server() : Server(Limits{}) {}
Server::Server(Limits limits) : limits_(limits) {}

Server::~Server() {
  if (!thread_.joinable()) return;
  call([this] {
    for (auto& [id, l] : listeners_) freeListener(*l);
    listeners_.clear();
    event_base_loopbreak(base_);
  });
  thread_.join();
  event_free(task_);
  event_free(adopt_);
  event_base_free(base_);
}

void Server::ensureStarted() {
  std::lock_guard<std::mutex> lock(startMu_);
  if (thread_.joinable()) return;
  // call() hands work to the loop from other threads: libevent's locks on.
  static const int threads = evthread_use_pthreads();
  (void)threads;
  base_ = event_base_new();
  task_ = event_new(base_, -1, 0, &Server::onTask, this);
  adopt_ = event_new(base_, -1, 0, &Server::onAdopt, this);
  thread_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
}

void Server::call(std::function<void()> fn) {
  ensureStarted();
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(taskMu_);
    tasks_.push_back([&] {
      fn();
      done.set_value();
    });
  }
  event_active(task_, EV_READ, 0);
  done.get_future().wait();
}

void Server::onTask(int, short, void* arg) {
  auto* s = static_cast<Server*>(arg);
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(s->taskMu_);
      if (s->tasks_.empty()) return;
      fn = std::move(s->tasks_.front());
      s->tasks_.pop_front();
    }
    fn();
  }
}

Result<int> Server::serve(int listenFd, Handler handler) {
  Result<int> out = Error{ENOMEM, "HTTP server"};
  call([&] {
    auto l = std::make_unique<Listener>();
    l->srv = this;
    l->handler = std::move(handler);
    l->http = evhttp_new(base_);
    if (!l->http) {
      ::close(listenFd);
      out = Error{ENOMEM, "HTTP server: evhttp_new"};
      return;
    }
    evhttp_set_timeout(l->http, limits_.timeoutSeconds);
    evhttp_set_max_headers_size(l->http, static_cast<ev_ssize_t>(limits_.maxHeadBytes));
    evhttp_set_max_body_size(l->http, static_cast<ev_ssize_t>(limits_.maxBodyBytes));
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(l->http, &Server::onRequest, l.get());
    evhttp_set_bevcb(l->http, &Server::onNewConnection, l.get());
    // Owns the fd from here: evhttp_free() closes it.
    l->bound = evhttp_accept_socket_with_handle(l->http, listenFd);
    if (!l->bound) {
      evhttp_free(l->http);
      ::close(listenFd);
      out = Error{ENOMEM, "HTTP server: evhttp_accept_socket"};
      return;
    }
    if (!accepting_) evconnlistener_disable(evhttp_bound_socket_get_listener(l->bound));
    const int id = nextId_++;
    listeners_.emplace(id, std::move(l));
    out = id;
  });
  return out;
}

void Server::close(int id) {
  if (!thread_.joinable()) return;
  call([&] {
    auto it = listeners_.find(id);
    if (it == listeners_.end()) return;
    freeListener(*it->second);
    listeners_.erase(it);
  });
}

// The listening socket and every connection it accepted go (as
// http.Server.Close() does); each connection's close callback returns its
// share of kMaxConns.
void Server::freeListener(Listener& l) {
  // Connections accepted in this loop turn and not yet adopted are freed
  // with the evhttp below; adopt them first so their count is returned.
  onAdopt(-1, 0, this);
  evhttp_free(l.http);
  l.http = nullptr;
}

void Server::setAccepting(bool on) {
  if (accepting_ == on) return;
  accepting_ = on;
  for (auto& [id, l] : listeners_) {
    evconnlistener* lev = evhttp_bound_socket_get_listener(l->bound);
    if (on)
      evconnlistener_enable(lev);
    else
      evconnlistener_disable(lev);
  }
}

void Server::connClosed() {
  --conns_;
  if (conns_ < kMaxConns) setAccepting(true);
}

// evhttp makes the connection object right after this returns, so the
// bufferevent is only remembered here (with a reference of ours: it cannot be
// freed and reused before onAdopt looks at it) and adopted on the next turn.
bufferevent* Server::onNewConnection(event_base* base, void* arg) {
  Server* s = static_cast<Listener*>(arg)->srv;
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) return nullptr;  // evhttp tries to make one itself, uncounted
  bufferevent_incref(bev);
  s->pending_.push_back(bev);
  ++s->conns_;
  if (s->conns_ >= kMaxConns) s->setAccepting(false);
  event_active(s->adopt_, EV_TIMEOUT, 0);
  return bev;
}

// Gives each new connection a close callback (its count and deadline go with
// it) and a deadline: a connection that has not been answered within the
// timeout is closed, however slowly it trickles bytes.
void Server::onAdopt(int, short, void* arg) {
  auto* s = static_cast<Server*>(arg);
  std::vector<bufferevent*> pending;
  pending.swap(s->pending_);
  for (bufferevent* bev : pending) {
    bufferevent_data_cb rd = nullptr, wr = nullptr;
    bufferevent_event_cb ev = nullptr;
    void* cbarg = nullptr;
    bufferevent_getcb(bev, &rd, &wr, &ev, &cbarg);
    // bufferevent_free() clears the callbacks: evhttp is already done with
    // it (a client that left at once).
    if (ev == nullptr || cbarg == nullptr) {
      bufferevent_decref(bev);
      s->connClosed();
      continue;
    }
    auto* c = new Conn{s, static_cast<evhttp_connection*>(cbarg), nullptr};
    c->deadline = evtimer_new(s->base_, &Server::onDeadline, c);
    const timeval tv{s->limits_.timeoutSeconds, 0};
    evtimer_add(c->deadline, &tv);
    evhttp_connection_set_closecb(c->evcon, &Server::onConnClose, c);
    bufferevent_decref(bev);  // evhttp's reference remains
  }
}

void Server::onDeadline(int, short, void* arg) {
  // Frees the connection; onConnClose frees `c`.
  evhttp_connection_free(static_cast<Conn*>(arg)->evcon);
}

void Server::onConnClose(evhttp_connection*, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  Server* s = c->srv;
  event_free(c->deadline);
  delete c;
  s->connClosed();
}

void Server::onRequest(evhttp_request* req, void* arg) {
  auto* l = static_cast<Listener*>(arg);
  Request r;
  r.method = methodName(evhttp_request_get_command(req));
  const char* uri = evhttp_request_get_uri(req);
  r.uri = uri ? uri : "";
  r.major = req->major;
  r.minor = req->minor;
  r.hasHost = evhttp_find_header(evhttp_request_get_input_headers(req), "Host") != nullptr;
  r.headBytes = req->headers_size;

  Response resp = l->handler(r);
  if (resp.drop) {
    // As libevent itself does on a failed answer: the connection goes, and
    // the request with it.
    evhttp_connection_free(evhttp_request_get_connection(req));
    return;
  }
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  for (const auto& [name, value] : resp.headers)
    evhttp_add_header(out, name.c_str(), value.c_str());
  evbuffer* body = nullptr;
  if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD && !resp.body.empty()) {
    body = evbuffer_new();
    if (body) evbuffer_add(body, resp.body.data(), resp.body.size());
  }
  evhttp_send_reply(req, resp.status, resp.reason.c_str(), body);
  if (body) evbuffer_free(body);
}

}  // namespace svclb::http
