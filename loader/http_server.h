// svclbd's one HTTP server, for the health check ports and /metrics:
// libevent's evhttp (Debian libevent-dev) on one event-loop thread.
// Listeners are added and removed while it serves; the others keep their
// sockets and connections.
//
// evhttp was chosen over libmicrohttpd and cpp-httplib because it alone lets
// a handler reproduce Go's net/http bytes: headers are written in the order
// given (cpp-httplib sorts them; libmicrohttpd puts Connection first and its
// own Content-Length last), the reason phrase is the handler's (net/http's
// "400 Bad Request: missing required Host header"), and the status line keeps
// the request's version (HTTP/1.0 answered in HTTP/1.0).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;
struct bufferevent;

namespace svclb::http {

struct Request {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string uri;     // as sent ("/metrics?x=1")
  int major = 1, minor = 1;
  bool hasHost = false;
  size_t headBytes = 0;  // request line and header lines, line ends not counted
};

struct Response {
  int status = 200;
  std::string reason;  // the status line's text after the code
  // Written in this order, then whatever evhttp adds: for HTTP/1.1, Date and
  // Content-Length when absent here, and `Connection: close` (last) when the
  // client asked to close.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // not sent to a HEAD request
  // No answer at all: the connection is closed.
  bool drop = false;
};

using Handler = std::function<Response(const Request&)>;

// A TCP listener on `addr` (SO_REUSEADDR, non-blocking). Errors name the
// address: "bind 0.0.0.0:30111: Address already in use".
Result<int> openTcpListener(const sockaddr_in& addr);
// A TCP listener on every address of both families, `port`: one IPv6
// socket on [::] with IPV6_V6ONLY off (IPv4 clients arrive as
// ::ffff:a.b.c.d), as a Go server's ":port" listens; 0.0.0.0 alone when the
// host has no IPv6. Errors name "[::]:PORT".
Result<int> openTcpListenerAnyAddress(uint16_t port);

class Server {
 public:
  // Bounds of one connection: a probe or a scrape is one small request.
  struct Limits {
    int timeoutSeconds = 5;           // from accept to the answer written
    size_t maxHeadBytes = 64 * 1024;  // past this evhttp answers 413 itself
    size_t maxBodyBytes = 64 * 1024;
  };

  Server();  // starts nothing: the thread starts with the first listener
  explicit Server(Limits limits);
  ~Server();  // closes every listener and connection, stops the thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves `handler` on `listenFd` (a listening TCP socket, owned from now
  // on) and returns the listener's id. The handler runs on the loop thread.
  Result<int> serve(int listenFd, Handler handler);
  // Closes the listener and its open connections (without an answer)
  // before returning. An unknown id does nothing.
  void close(int id);

 private:
  struct Listener;
  struct Conn;

  // Runs `fn` on the loop thread and waits for it.
  void call(std::function<void()> fn);
  void ensureStarted();
  void freeListener(Listener& l);
  void setAccepting(bool on);
  void connClosed();

  static void onRequest(evhttp_request* req, void* arg);
  static bufferevent* onNewConnection(event_base* base, void* arg);
  static void onAdopt(int, short, void* arg);
  static void onTask(int, short, void* arg);
  static void onDeadline(int, short, void* arg);
  static void onConnClose(evhttp_connection* evcon, void* arg);

  const Limits limits_;
  event_base* base_ = nullptr;
  event* task_ = nullptr;   // wakes the loop for call()
  event* adopt_ = nullptr;  // takes new connections under the cap's count
  std::thread thread_;
  std::mutex startMu_;  // guards starting the thread

  std::mutex taskMu_;
  std::deque<std::function<void()>> tasks_;  // guarded by taskMu_

  // Loop thread only below.
  std::map<int, std::unique_ptr<Listener>> listeners_;
  int nextId_ = 1;
  std::vector<bufferevent*> pending_;  // accepted, not yet adopted (one ref held)
  size_t conns_ = 0;                   // open connections, all listeners
  bool accepting_ = true;
};

}  // namespace svclb::http
