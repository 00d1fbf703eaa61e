// svclb-mappoll: latency from applying one endpoint change to the maps
// holding it. Runs COMMAND (e.g. `svcctl apply -f endpoints.yaml`) and polls
// the pinned svc_v1/backends_v1 maps of DIR until the frontend VIP:VPORT/PROTO
// makes an ACTIVE backend ADDR:PORT reachable (or, with --gone, until it no
// longer does), printing both the command's own time and the time until the
// maps held the change, both from just before the fork of COMMAND. Each poll
// looks up the frontend's master, its ready slots and their backends only
// (bench/mappoll_probe.h): ~25 single-key lookups, tens of microseconds,
// whatever the map sizes. Bounded by --timeout.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "bench/mappoll_probe.h"
#include "maps/svclb_abi.h"

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& m) {
  fmt::print(stderr, "svclb-mappoll: {}\n", m);
  std::exit(1);
}

int openMap(const std::string& dir, const char* name) {
  const std::string path = dir + "/" + name;
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) die(fmt::format("open {}: {}", path, strerror(errno)));
  return fd;
}

__be32 parseAddr(const std::string& s, const char* what) {
  in_addr ia{};
  if (inet_pton(AF_INET, s.c_str(), &ia) != 1) die(fmt::format("bad {} {}", what, s));
  return ia.s_addr;
}

const char* kUsage =
    "usage: svclb-mappoll --bpffs DIR --vip IP --vport P [--proto udp|tcp] --addr IP --port P "
    "[--gone] [--timeout S] -- CMD...";
}  // namespace

int main(int argc, char** argv) {
  std::string dir, vip, addr, proto = "udp";
  uint16_t vport = 0, port = 0;
  double timeout = 10;
  bool gone = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--gone") {
      gone = true;
      continue;
    }
    if (i + 1 >= argc) die("missing value for " + a);
    if (a == "--bpffs")
      dir = argv[++i];
    else if (a == "--vip")
      vip = argv[++i];
    else if (a == "--vport")
      vport = static_cast<uint16_t>(std::stoul(argv[++i]));
    else if (a == "--proto")
      proto = argv[++i];
    else if (a == "--addr")
      addr = argv[++i];
    else if (a == "--port")
      port = static_cast<uint16_t>(std::stoul(argv[++i]));
    else if (a == "--timeout")
      timeout = std::stod(argv[++i]);
    else
      die(kUsage);
  }
  if (i >= argc || dir.empty() || vip.empty() || addr.empty() || vport == 0 || port == 0 ||
      timeout <= 0 || timeout > 120 || (proto != "udp" && proto != "tcp"))
    die(kUsage);
  const __be32 nvip = parseAddr(vip, "--vip"), naddr = parseAddr(addr, "--addr");
  const __be16 nvport = htons(vport), nport = htons(port);
  const uint8_t nproto = proto == "udp" ? IPPROTO_UDP : IPPROTO_TCP;
  const int svcFd = openMap(dir, SVCLB_MAP_SERVICES), beFd = openMap(dir, SVCLB_MAP_BACKENDS);
  const svclb::mappoll::SvcLookup svc = [&](const svc_key& k, svc_value& v) {
    return bpf_map_lookup_elem(svcFd, &k, &v) == 0;
  };
  const svclb::mappoll::BackendLookup be = [&](uint32_t id, backend_value& v) {
    return bpf_map_lookup_elem(beFd, &id, &v) == 0;
  };
  auto probe = [&] {
    return svclb::mappoll::reachable(svc, be, nvip, nvport, nproto, naddr, nport);
  };
  // Measuring a change that is already there would report ~0.
  if (probe() != gone)
    die(gone ? "the backend is not reachable before the command"
             : "the backend is already reachable before the command");

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
    // The time is read after the probe saw the change: never early, late by
    // at most one probe plus one sleep (~0.1 ms).
    if (mapSecs < 0 && probe() != gone)
      mapSecs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (mapSecs < 0)
      usleep(50);
    else if (cmdSecs < 0)
      usleep(1000);
  }
  if (cmdSecs < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  fmt::print("{{\"command_s\": {:.6f}, \"map_s\": {:.6f}, \"command_ok\": {}}}\n", cmdSecs, mapSecs,
             WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "true" : "false");
  return mapSecs >= 0 ? 0 : 1;
}
