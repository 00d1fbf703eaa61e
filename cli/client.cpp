#include "cli/client.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace svclb::cli {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Error connectError(const std::string& path, int err) {
  std::string hint;
  switch (err) {
    case ENOENT:
    case ECONNREFUSED:
      hint = " (is svclbd running?)";
      break;
    case EACCES:
    case EPERM:
      hint = " (the socket is root-only; run svcctl as root)";
      break;
    default:
      break;
  }
  return Error{
      err, fmt::format("error: cannot reach svclbd at {}: {}{}", path, std::strerror(err), hint)};
}

Error timeoutError(const std::string& path, std::chrono::milliseconds timeout) {
  std::string t = timeout.count() % 1000 == 0 ? fmt::format("{}s", timeout.count() / 1000)
                                              : fmt::format("{}ms", timeout.count());
  return Error{ETIMEDOUT, fmt::format("error: svclbd at {} did not answer within {}", path, t)};
}

// Waits for `events` on fd until `deadline`; 1 ready, 0 timeout, -errno.
int waitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return 0;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    return r > 0 ? 1 : 0;
  }
}

// Connects (non-blocking) and sends `line` plus a newline before
// `deadline`; returns the socket.
Result<int> connectAndSend(const std::string& socketPath, std::string line,
                           std::chrono::milliseconds timeout, Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socketPath.empty() || socketPath.size() >= sizeof(addr.sun_path))
    return Error{ENAMETOOLONG,
                 fmt::format("error: invalid socket path \"{}\" (must be 1..{} bytes)", socketPath,
                             sizeof(addr.sun_path) - 1)};
  std::memcpy(addr.sun_path, socketPath.data(), socketPath.size());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return connectError(socketPath, errno);

  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return connectError(socketPath, errno);
    // A full listen backlog: wait for the daemon to accept.
    int r = waitFor(fd.get(), POLLOUT, deadline);
    if (r == 0) return timeoutError(socketPath, timeout);
    if (r < 0) return connectError(socketPath, -r);
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr) return connectError(socketPath, soerr);
  }

  line += '\n';
  size_t sent = 0;
  while (sent < line.size()) {
    // MSG_NOSIGNAL: a daemon that hangs up early is an error, not a SIGPIPE.
    ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      int r = waitFor(fd.get(), POLLOUT, deadline);
      if (r == 0) return timeoutError(socketPath, timeout);
      if (r > 0) continue;
      errno = -r;
    }
    return Error{errno, fmt::format("error: sending request to svclbd at {}: {}", socketPath,
                                    std::strerror(errno))};
  }
  return fd.release();
}

// One answer line: parsed, its "ok" checked (the daemon's own error text
// when false).
Result<nlohmann::json> parseReply(const std::string& socketPath, const std::string& response) {
  if (response.find_first_not_of(" \t\r\n") == std::string::npos)
    return Error{EPROTO, fmt::format("error: svclbd at {} closed the connection without an answer",
                                     socketPath)};
  nlohmann::json reply = nlohmann::json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object())
    return Error{EPROTO, fmt::format("error: invalid response from svclbd at {}", socketPath)};
  auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean())
    return Error{EPROTO, fmt::format("error: invalid response from svclbd at {}: missing \"ok\"",
                                     socketPath)};
  if (!ok->get<bool>()) {
    auto err = reply.find("error");
    std::string msg = (err != reply.end() && err->is_string()) ? err->get<std::string>()
                                                               : "error: svclbd reported a failure";
    return Error{kDaemonRefused, msg};
  }
  return reply;
}

// Reads the daemon's answer: to EOF (one request per connection), or with
// `oneLine` only up to the first newline, a byte at a time so nothing after
// it is consumed (a monitor stream's events).
Result<std::string> readReply(int fd, const std::string& socketPath,
                              std::chrono::milliseconds timeout, Clock::time_point deadline,
                              bool oneLine) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, oneLine ? 1 : sizeof(buf), 0);
    if (n > 0) {
      if (oneLine && buf[0] == '\n') break;
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      int r = waitFor(fd, POLLIN, deadline);
      if (r == 0) return timeoutError(socketPath, timeout);
      if (r > 0) continue;
      errno = -r;
    }
    return Error{errno, fmt::format("error: reading response from svclbd at {}: {}", socketPath,
                                    std::strerror(errno))};
  }
  return out;
}

}  // namespace

std::string defaultSocketPath() {
  const char* env = std::getenv("SVCLB_SOCKET");
  if (env && *env) return env;
  return kDefaultSocket;
}

Result<nlohmann::json> callDaemon(const std::string& socketPath, const nlohmann::json& request,
                                  std::chrono::milliseconds timeout) {
  return callDaemonLine(socketPath, request.dump(), timeout);
}

Result<nlohmann::json> callDaemonLine(const std::string& socketPath, std::string line,
                                      std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto sock = connectAndSend(socketPath, std::move(line), timeout, deadline);
  if (!sock) return sock.error();
  Fd fd(*sock);

  // Read to EOF; the daemon closes after its one response line.
  auto response = readReply(fd.get(), socketPath, timeout, deadline, false);
  if (!response) return response.error();
  return parseReply(socketPath, *response);
}

}  // namespace svclb::cli

namespace svclb::cli {

Result<int> openStream(const std::string& socketPath, const nlohmann::json& request,
                       nlohmann::json& first, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto sock = connectAndSend(socketPath, request.dump(), timeout, deadline);
  if (!sock) return sock.error();
  Fd fd(*sock);
  // Only the first line: the events that follow are the caller's to read.
  auto line = readReply(fd.get(), socketPath, timeout, deadline, true);
  if (!line) return line.error();
  auto reply = parseReply(socketPath, *line);
  if (!reply) return reply.error();
  first = std::move(*reply);
  return fd.release();
}

}  // namespace svclb::cli
