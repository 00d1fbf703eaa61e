// svclbd's I/O around the Daemon: the svcctl socket, the netlink watch for
// new pod interfaces, and the Prometheus endpoint.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "common/result.h"
#include "loader/daemon.h"

namespace svclb {

// Binds the API socket (mode 0600; a stale socket file is replaced).
Result<int> listenUnix(const std::string& path);
// Serves one request per connection until `stop` is set.
void serveApi(int listenFd, Daemon& d, const std::atomic<bool>& stop);

// Attaches to existing and newly appearing interfaces the daemon wants.
class LinkWatcher {
 public:
  explicit LinkWatcher(Daemon& d) : d_(d) {}
  ~LinkWatcher();
  Status start();  // scans existing links, then watches RTM_NEWLINK
  void stop();

 private:
  void run();
  void consider(const std::string& name);
  Daemon& d_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class MetricsServer {
 public:
  explicit MetricsServer(Daemon& d) : d_(d) {}
  ~MetricsServer();
  Status start(const std::string& hostPort);
  void stop();

 private:
  void run();
  Daemon& d_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace svclb
