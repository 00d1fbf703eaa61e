#include "loader/servers.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grp.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/api.h"

namespace svclb {

namespace {

// All of `s` to `fd` (a client's socket); an error is the caller's to say.
Status writeAll(int fd, std::string_view s, const char* what) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Error::fromErrno(n < 0 ? errno : EPIPE, fmt::format("svclbd: writing {}", what));
    off += static_cast<size_t>(n);
  }
  return {};
}

// A client that left before its answer is no fault of the daemon's, but it
// is said once per occurrence (rare: svcctl waits for the answer).
void report(const Status& st) {
  if (!st) fmt::print(stderr, "{}\n", st.error().message);
}

}  // namespace

Result<sockaddr_in> parseHostPort(const std::string& hostPort, const std::string& flag) {
  const auto colon = hostPort.rfind(':');
  if (colon == std::string::npos)
    return Error{EINVAL, fmt::format("{} {}: expected HOST:PORT", flag, hostPort)};
  const std::string_view port = std::string_view(hostPort).substr(colon + 1);
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p > 65535)
    return Error{EINVAL,
                 fmt::format("{} {}: the port must be a number from 0 to 65535", flag, hostPort)};
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(p));
  if (inet_pton(AF_INET, hostPort.substr(0, colon).c_str(), &sa.sin_addr) != 1)
    return Error{EINVAL, fmt::format("{} {}: not an IPv4 address", flag, hostPort)};
  return sa;
}

Result<gid_t> resolveGroup(const std::string& group) {
  std::vector<char> buf(16384);
  struct group g {};
  struct group* res = nullptr;
  int rc = getgrnam_r(group.c_str(), &g, buf.data(), buf.size(), &res);
  if (rc == 0 && res) return res->gr_gid;
  if (!group.empty() && group.find_first_not_of("0123456789") == std::string::npos) {
    gid_t gid = 0;
    const auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), gid);
    if (ec == std::errc() && end == group.data() + group.size()) return gid;
  }
  return Error{ENOENT, fmt::format("--socket-group {}: no such group", group)};
}

Result<int> listenUnix(const std::string& path, const std::string& group) {
  std::optional<gid_t> gid;
  if (!group.empty()) {
    auto g = resolveGroup(group);
    if (!g) return g.error();
    gid = *g;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return Error{ENAMETOOLONG, "socket path too long: " + path};
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::fromErrno(errno, "socket");
  // Only one daemon holds the bpffs lock, so a file here is a stale socket.
  unlink(path.c_str());
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (rc != 0 || listen(fd, 64) != 0) {
    int e = errno;
    close(fd);
    return Error::fromErrno(e, "listen on " + path);
  }
  // Bound 0600 (umask above): group access is only granted once the group
  // owns the file, never the other way round.
  if (gid) {
    if (chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0 || chmod(path.c_str(), 0660) != 0) {
      int e = errno;
      close(fd);
      unlink(path.c_str());
      return Error::fromErrno(e, fmt::format("giving group {} access to {}", group, path));
    }
  } else {
    chmod(path.c_str(), 0600);
  }
  return fd;
}

void serveApi(int listenFd, Daemon& d, const std::atomic<bool>& stop) {
  while (!stop) {
    pollfd p{listenFd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    int c = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string reply;
    nlohmann::json req, resp;
    if (auto st = api::readRequest(c, req, 10000); !st) {
      resp = {{"ok", false}, {"error", st.error().message}};
    } else if (req.is_object() && req.contains("op") && req["op"] == "monitor") {
      // A stream: the monitor's thread owns the connection from here on.
      auto st = d.monitor(c, req);
      if (st) continue;
      resp = {{"ok", false}, {"error", st.error().message}};
    } else
      reply = d.handleLine(req);
    if (reply.empty()) reply = resp.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    reply += '\n';
    report(writeAll(c, reply, "an API answer"));
    close(c);
  }
}

LinkWatcher::~LinkWatcher() { stop(); }

void LinkWatcher::consider(const std::string& name) {
  if (!d_.wantsInterface(name)) return;
  if (auto st = d_.attachInterface(name); !st)
    fmt::print(stderr, "svclbd: {}\n", st.error().message);
}

Status LinkWatcher::start() {
  nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl_) return Error::fromErrno(errno, "netlink socket");
  if (mnl_socket_bind(nl_, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
                      MNL_SOCKET_AUTOPID) != 0)
    return Error::fromErrno(errno, "bind netlink");
  // Subscribe first, then scan: a link created in between is seen twice at
  // worst (attach is idempotent), never missed.
  if (struct if_nameindex* ifs = if_nameindex()) {
    for (auto* i = ifs; i->if_index; ++i) consider(i->if_name);
    if_freenameindex(ifs);
  }
  // Addresses may have changed since the daemon read them at start.
  d_.nodeChanged();
  thread_ = std::thread([this] { run(); });
  return {};
}

namespace {

// What one batch of rtnetlink events asks of the daemon.
struct LinkEvents {
  LinkWatcher* w;
  bool nodeChanged = false;
};

int ifnameAttr(const nlattr* a, void* data) {
  if (mnl_attr_get_type(a) == IFLA_IFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0)
    *static_cast<const char**>(data) = mnl_attr_get_str(a);
  return MNL_CB_OK;
}

}  // namespace

int LinkWatcher::onMessage(const nlmsghdr* nh, void* data) {
  auto* ev = static_cast<LinkEvents*>(data);
  switch (nh->nlmsg_type) {
    case RTM_NEWADDR:
    case RTM_DELADDR:
      ev->nodeChanged = true;
      break;
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      const char* name = nullptr;
      mnl_attr_parse(nh, sizeof(ifinfomsg), ifnameAttr, &name);
      if (!name) break;
      // An external NIC's ifindex or MAC may be new: rewrite its ARP entries.
      if (ev->w->d_.isExternalInterface(name)) ev->nodeChanged = true;
      if (nh->nlmsg_type == RTM_NEWLINK)
        ev->w->consider(name);
      else
        ev->w->d_.interfaceRemoved(name);
      break;
    }
    default:
      break;
  }
  return MNL_CB_OK;
}

void LinkWatcher::run() {
  std::vector<char> buf(1 << 16);
  const int fd = mnl_socket_get_fd(nl_);
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
    if (n < 0 && errno == ENOBUFS) {
      // Events were lost: rescan links and re-read the addresses.
      if (struct if_nameindex* ifs = if_nameindex()) {
        for (auto* i = ifs; i->if_index; ++i) consider(i->if_name);
        if_freenameindex(ifs);
      }
      d_.nodeChanged();
      continue;
    }
    if (n <= 0) continue;
    LinkEvents ev{this};
    // Events carry sequence number and port id 0: nothing to match.
    mnl_cb_run(buf.data(), static_cast<size_t>(n), 0, 0, &LinkWatcher::onMessage, &ev);
    if (ev.nodeChanged) d_.nodeChanged();
  }
}

void LinkWatcher::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (nl_) mnl_socket_close(nl_);
  nl_ = nullptr;
}

MetricsServer::~MetricsServer() { stop(); }

Status MetricsServer::start(const std::string& hostPort) {
  auto addr = parseHostPort(hostPort, "--metrics-addr");
  if (!addr) return addr.error();
  auto fd = http::openTcpListener(*addr);
  if (!fd) return Error::fromErrno(fd.error().code, "metrics listener on " + hostPort);
  auto id = server_.serve(*fd, [this](const http::Request& req) {
    http::Response r;
    if (req.method != "GET" && req.method != "HEAD") {
      r.status = 405;
      r.reason = "Method Not Allowed";
      r.body = "only GET\n";
    } else if (req.uri == "/metrics" || req.uri.rfind("/metrics?", 0) == 0) {
      r.reason = "OK";
      r.body = d_.metrics();
    } else {
      r.status = 404;
      r.reason = "Not Found";
      r.body = "see /metrics\n";
    }
    r.headers = {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
                 {"Content-Length", std::to_string(r.body.size())},
                 {"Connection", "close"}};
    return r;
  });
  if (!id) return id.error();
  id_ = *id;
  return {};
}

void MetricsServer::stop() {
  if (id_ >= 0) server_.close(id_);
  id_ = -1;
}

}  // namespace svclb
