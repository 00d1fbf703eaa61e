// svclb-mappoll: latency from applying one endpoint change to the map
// holding it. Runs COMMAND (e.g. `svcctl apply -f endpoints.yaml`) and polls
// the pinned backends map until an ACTIVE entry for ADDR:PORT appears (or,
// with --gone, until none is left), printing both the command's own time
// and the time until the map held the change. Bounded by --timeout.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fmt/format.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "maps/svclb_abi.h"

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& m) {
  fmt::print(stderr, "svclb-mappoll: {}\n", m);
  std::exit(1);
}

// True when the array holds an ACTIVE backend addr:port.
bool present(int fd, uint32_t addr, uint16_t port) {
  static std::vector<uint32_t> keys(8192);
  static std::vector<backend_value> vals(8192);
  uint32_t out = 0;
  bool first = true;
  for (;;) {
    uint32_t n = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, o);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &out, &out, keys.data(), vals.data(), &n, &o);
    first = false;
    if (err && errno != ENOENT) die(fmt::format("read backends map: {}", strerror(errno)));
    for (uint32_t i = 0; i < n; ++i)
      if (vals[i].state == BE_STATE_ACTIVE && vals[i].addr == addr && vals[i].port == port) return true;
    if (err) return false;
  }
}
}  // namespace

int main(int argc, char** argv) {
  std::string map, addr;
  uint16_t port = 0;
  double timeout = 10;
  bool gone = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") { ++i; break; }
    if (i + 1 >= argc && a != "--gone") die("missing value for " + a);
    if (a == "--map") map = argv[++i];
    else if (a == "--addr") addr = argv[++i];
    else if (a == "--port") port = static_cast<uint16_t>(std::stoul(argv[++i]));
    else if (a == "--timeout") timeout = std::stod(argv[++i]);
    else if (a == "--gone") gone = true;
    else die("usage: svclb-mappoll --map PINNED_backends_v1 --addr IP --port P [--gone] [--timeout S] -- CMD...");
  }
  if (i >= argc || map.empty() || addr.empty() || timeout <= 0 || timeout > 120) die("bad arguments");
  in_addr ia{};
  if (inet_pton(AF_INET, addr.c_str(), &ia) != 1) die("bad --addr");
  int fd = bpf_obj_get(map.c_str());
  if (fd < 0) die(fmt::format("open {}: {}", map, strerror(errno)));
  const uint16_t nport = htons(port);

  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    // Our stdout carries the JSON result only.
    if (int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, STDOUT_FILENO);
    execvp(argv[i], argv + i);
    _exit(127);
  }
  double cmdSecs = -1, mapSecs = -1;
  auto end = t0 + std::chrono::duration<double>(timeout);
  int status = 0;
  while (Clock::now() < end && (mapSecs < 0 || cmdSecs < 0)) {
    if (cmdSecs < 0 && waitpid(pid, &status, WNOHANG) == pid)
      cmdSecs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (mapSecs < 0 && present(fd, ia.s_addr, nport) != gone)
      mapSecs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (mapSecs < 0) usleep(100);
    else if (cmdSecs < 0) usleep(1000);
  }
  if (cmdSecs < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  fmt::print("{{\"command_s\": {:.6f}, \"map_s\": {:.6f}, \"command_ok\": {}}}\n", cmdSecs, mapSecs,
             WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "true" : "false");
  return mapSecs >= 0 ? 0 : 1;
}
