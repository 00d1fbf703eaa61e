// svclbd's I/O around the Daemon: the svcctl socket, the netlink watch for
// new pod interfaces and for changes of the node's addresses and external
// NICs, and the Prometheus endpoint.
#pragma once

#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <atomic>
#include <string>
#include <thread>

#include "common/result.h"
#include "loader/daemon.h"
#include "loader/http_server.h"

struct mnl_socket;

namespace svclb {

// Binds the API socket; a stale socket file is replaced. Mode 0600 owned by
// the daemon's user; with `group` (a name or a numeric gid) the socket is
// chowned to that group and made 0660, so its members may use svcctl.
// "IPv4:PORT" (e.g. --metrics-addr 127.0.0.1:9810) as a socket address;
// errors name `flag`.
Result<sockaddr_in> parseHostPort(const std::string& hostPort, const std::string& flag);

Result<int> listenUnix(const std::string& path, const std::string& group = "");
// Resolves --socket-group (name or numeric gid).
Result<gid_t> resolveGroup(const std::string& group);
// Serves one request per connection until `stop` is set.
void serveApi(int listenFd, Daemon& d, const std::atomic<bool>& stop);

// Attaches to existing and newly appearing interfaces the daemon wants,
// tells it when one is deleted (Daemon::interfaceRemoved), and
// calls Daemon::nodeChanged() when an IPv4 address is added or removed, when
// an external NIC appears, changes or goes away, and when netlink dropped
// events (ENOBUFS) — once per batch of messages.
class LinkWatcher {
 public:
  explicit LinkWatcher(Daemon& d) : d_(d) {}
  ~LinkWatcher();
  Status start();  // subscribes, scans existing links, then watches
  void stop();

 private:
  void run();
  void consider(const std::string& name);
  static int onMessage(const nlmsghdr* nh, void* data);  // libmnl callback
  Daemon& d_;
  mnl_socket* nl_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// GET /metrics (Prometheus text from Daemon::metrics()), HEAD the same
// without the body; other paths 404, other methods 405.
class MetricsServer {
 public:
  explicit MetricsServer(Daemon& d) : d_(d) {}
  ~MetricsServer();
  Status start(const std::string& hostPort);
  void stop();

 private:
  Daemon& d_;
  http::Server server_;
  int id_ = -1;
};

}  // namespace svclb
