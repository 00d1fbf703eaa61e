// Helpers for tests that need a network of their own.
//
// inFreshNetns(body) runs `body` on a new thread that unshare()s into a new
// network namespace (CLONE_NEWNET is per thread) and brings up its `lo`.
// Sockets the body opens, threads it starts and processes it forks all live
// in that namespace; the gtest process's other threads stay where they were.
// Nothing pins the namespace, so it (with any veths made in it) is destroyed
// as soon as the thread and the body's sockets are gone, even if the body
// fails half-way.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace svclb::nettest {

inline bool setLinkUp(const std::string& ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

inline void inFreshNetns(const std::function<void()>& body) {
  if (geteuid() != 0) GTEST_SKIP() << "net_tests need root (network namespaces, AF_PACKET)";
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    if (!setLinkUp("lo")) {
      ADD_FAILURE() << "bringing up lo in the test namespace: " << std::strerror(errno);
      return;
    }
    body();
  });
  t.join();
}

// Runs argv (argv[0] looked up in PATH) in the calling thread's namespace;
// returns its exit status (-1 if it could not run) and fills `out` with its
// stdout.
inline int run(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(pipefd[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (out) *out = data;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline bool haveProgram(const std::string& name) {
  return run({"sh", "-c", "command -v " + name + " >/dev/null"}) == 0;
}

// A parsed HTTP response.
struct HttpResponse {
  std::string statusLine;
  std::vector<std::pair<std::string, std::string>> headers;  // in wire order
  std::string body;
  std::string raw;

  int status() const {
    auto sp = statusLine.find(' ');
    return sp == std::string::npos ? 0 : std::atoi(statusLine.c_str() + sp + 1);
  }
  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    return "<missing>";
  }
  std::vector<std::string> headerNames() const {
    std::vector<std::string> out;
    for (const auto& h : headers) out.push_back(h.first);
    return out;
  }
};

inline HttpResponse parseHttp(const std::string& raw) {
  HttpResponse r;
  r.raw = raw;
  auto end = raw.find("\r\n\r\n");
  std::string head = raw.substr(0, end);
  if (end != std::string::npos) r.body = raw.substr(end + 4);
  size_t pos = 0;
  bool first = true;
  while (pos <= head.size()) {
    auto eol = head.find("\r\n", pos);
    std::string line = head.substr(pos, eol == std::string::npos ? eol : eol - pos);
    if (first) {
      r.statusLine = line;
      first = false;
    } else if (auto colon = line.find(": "); colon != std::string::npos) {
      r.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    if (eol == std::string::npos) break;
    pos = eol + 2;
  }
  return r;
}

// Connects to 127.0.0.1:port; -errno on failure.
inline int connectLocal(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

inline bool sendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until the peer closes (or `timeout` passes); `closed` says which.
inline std::string readToEof(int fd, std::chrono::milliseconds timeout, bool* closed = nullptr) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (closed) *closed = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// One raw request on a fresh connection; "" if the connect failed.
inline std::string rawRequest(uint16_t port, const std::string& request) {
  int fd = connectLocal(port);
  if (fd < 0) return "";
  sendAll(fd, request);
  std::string out = readToEof(fd, std::chrono::seconds(5));
  close(fd);
  return out;
}

}  // namespace svclb::nettest
