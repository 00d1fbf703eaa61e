// svclbd: loads and pins the svclb programs, attaches them, keeps the
// desired Service/Endpoints state and reconciles it into the maps, serves
// svcctl and /metrics. SIGTERM leaves the dataplane in place; --uninstall
// removes it.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>

#include "loader/daemon.h"
#include "loader/dataplane.h"
#include "loader/servers.h"

using namespace svclb;

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

int die(const std::string& msg) {
  fmt::print(stderr, "svclbd: {}\n", msg);
  return 1;
}

// One daemon per bpffs dir: an exclusive lock on the dir itself.
Result<int> lockBpffs(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::fromErrno(errno, "open " + dir);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return Error{EBUSY, fmt::format("another svclbd is already running with --bpffs {}", dir)};
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"svclbd: Kubernetes Service load balancing in eBPF"};
  DataplaneConfig dpc;
  DaemonConfig dc;
  bool uninstall = false;
  std::string cgroup = "default";
  app.add_option("--bpffs", dpc.bpffs, "bpffs dir for pinned maps and links")->capture_default_str();
  app.add_option("--iface", dc.ifaces, "pod-facing interface to attach to (repeatable)");
  app.add_option("--pod-iface-prefix", dc.podIfacePrefix,
                 "also attach to every interface whose name starts with this (watched)");
  app.add_option("--state-dir", dc.stateDir, "where desired state is persisted")->capture_default_str();
  app.add_option("--socket", dc.socketPath, "svcctl API socket")->capture_default_str();
  app.add_option("--metrics-addr", dc.metricsAddr, "Prometheus listener HOST:PORT")->capture_default_str();
  app.add_option("--service-cidr", dc.serviceCIDR, "ClusterIP allocation range")->capture_default_str();
  app.add_option("--cgroup", cgroup,
                 "cgroup2 dir for node-socket balancing (default: the cgroup2 root; 'none' to skip)");
  app.add_option("--max-services", dpc.maxServiceEntries, "services map entries (frontends + slots)")
      ->capture_default_str();
  app.add_option("--max-backends", dpc.maxBackends, "backend ids")->capture_default_str();
  app.add_option("--max-conntrack", dpc.maxCtEntries, "conntrack entries (2 per flow)")
      ->capture_default_str();
  app.add_flag("--uninstall", uninstall, "detach everything and remove the pins, then exit");
  CLI11_PARSE(app, argc, argv);

  if (cgroup == "default") cgroup = defaultCgroup2Path();
  if (cgroup == "none") cgroup.clear();
  dpc.cgroup = cgroup;

  if (uninstall) {
    if (auto st = Dataplane::uninstall(dpc); !st) return die(st.error().message);
    fmt::print(stderr, "svclbd: removed svclb from this node ({})\n", dpc.bpffs);
    return 0;
  }

  auto cookie = currentNetnsCookie();
  if (!cookie) return die(cookie.error().message);
  dpc.netnsCookie = *cookie;

  if (auto st = ensureBpffs(dpc.bpffs); !st) return die(st.error().message);
  auto lock = lockBpffs(dpc.bpffs);
  if (!lock) return die(lock.error().message);

  auto dp = Dataplane::load(dpc);
  if (!dp) return die(dp.error().message);
  Daemon daemon(dc, **dp);
  if (auto st = daemon.start(); !st) return die("restoring state: " + st.error().message);
  if (auto st = (*dp)->attachCgroup(); !st) return die(st.error().message);
  for (const auto& i : dc.ifaces)
    if (auto st = daemon.attachInterface(i); !st) return die(st.error().message);

  LinkWatcher watcher(daemon);
  if (auto st = watcher.start(); !st) return die(st.error().message);
  MetricsServer metrics(daemon);
  if (!dc.metricsAddr.empty() && dc.metricsAddr != "none")
    if (auto st = metrics.start(dc.metricsAddr); !st) return die(st.error().message);

  struct sigaction sa{};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto lfd = listenUnix(dc.socketPath);
  if (!lfd) return die(lfd.error().message);
  fmt::print(stderr, "svclbd: ready (bpffs {}, socket {}, metrics {}, cgroup {})\n", dpc.bpffs,
             dc.socketPath, dc.metricsAddr, cgroup.empty() ? "none" : cgroup);
  serveApi(*lfd, daemon, gStop);

  close(*lfd);
  unlink(dc.socketPath.c_str());
  watcher.stop();
  metrics.stop();
  fmt::print(stderr, "svclbd: stopped; the dataplane stays attached (svclbd --uninstall removes it)\n");
  return 0;
}
