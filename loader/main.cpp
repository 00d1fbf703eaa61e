// svclbd: loads and pins the svclb programs, attaches them, keeps the
// desired Service/Endpoints state and reconciles it into the maps, serves
// svcctl and /metrics. SIGTERM leaves the dataplane in place; --uninstall
// removes it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/magic.h>
#include <net/if.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "k8s/config.h"
#include "loader/daemon.h"
#include "loader/dataplane.h"
#include "loader/dns_address.h"
#include "loader/external.h"
#include "loader/maglev.h"
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

// The capabilities svclbd needs, found by dropping them one at a time with
// setpriv (tests/fuzz/access_control.sh, docs/reliability.md):
//   CAP_BPF        map creation, program load, pinning, GET_FD_BY_ID
//   CAP_PERFMON    the verifier rejects the programs without it (EACCES)
//   CAP_NET_ADMIN  tc qdisc/filters over netlink (without it svclbd would
//                  come up with no pod interface attached)
//   CAP_NET_RAW    only for gratuitous ARP on --external-iface NICs (an
//                  AF_PACKET socket, loader/garp.cpp, which says so when
//                  it is missing); not checked here
//   CAP_NET_BIND_SERVICE  the cluster DNS server's port 53 (--cluster-dns;
//                  not needed with --cluster-dns none)
//   CAP_SYS_ADMIN  only to mount bpffs at /sys/fs/bpf when nothing is
//                  mounted there; the kernel also accepts it in place of
//                  CAP_BPF and CAP_PERFMON.
// True if `cap` is in this process's effective set (libcap).
bool hasCap(cap_t caps, cap_value_t cap) {
  cap_flag_value_t v = CAP_CLEAR;
  return cap_get_flag(caps, cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET;
}

bool bpffsMounted() {
  struct statfs st {};
  return statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

// "" or "missing capabilities: CAP_BPF, ... (run as root or grant them)".
std::string missingCapabilities(bool clusterDNS) {
  cap_t caps = cap_get_proc();
  if (!caps) return "";  // cannot tell: let the kernel say what fails
  const bool sysAdmin = hasCap(caps, CAP_SYS_ADMIN);
  std::vector<std::string> missing;
  if (!hasCap(caps, CAP_BPF) && !sysAdmin) missing.push_back("CAP_BPF");
  if (!hasCap(caps, CAP_NET_ADMIN)) missing.push_back("CAP_NET_ADMIN");
  if (!hasCap(caps, CAP_PERFMON) && !sysAdmin) missing.push_back("CAP_PERFMON");
  if (clusterDNS && !hasCap(caps, CAP_NET_BIND_SERVICE))
    missing.push_back("CAP_NET_BIND_SERVICE (--cluster-dns serves port 53; none turns it off)");
  cap_free(caps);
  if (!sysAdmin && !bpffsMounted()) missing.push_back("CAP_SYS_ADMIN (to mount bpffs)");
  if (missing.empty()) return "";
  return fmt::format("missing capabilities: {} (run as root or grant them)",
                     fmt::join(missing, ", "));
}

// "IP" or "IP:PORT" (IPv4), as c-ares takes it.
bool validUpstream(const std::string& u) {
  const auto colon = u.find(':');
  const std::string ip = u.substr(0, colon);
  in_addr a{};
  if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return false;
  if (colon == std::string::npos) return true;
  unsigned port = 0;
  const std::string p = u.substr(colon + 1);
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  return !p.empty() && ec == std::errc() && end == p.data() + p.size() && port >= 1 &&
         port <= 65535;
}

// --cluster-dns, --cluster-domain, --dns-upstream: checked and defaulted.
Status parseDnsOptions(const std::string& clusterDNS, std::vector<std::string> upstreams,
                       DnsOptions& o) {
  o.address = 0;
  o.address6 = {};
  if (clusterDNS != "none") {
    // One address per family: "10.96.0.10", "fd00:10:96::a", or both
    // comma-separated (a dual-stack cluster's kubelets may name either).
    const auto bad = [&] {
      return Error{EINVAL, fmt::format("--cluster-dns {}: expected an IPv4 address, an IPv6 "
                                       "address, one of each (IPv4,IPv6), or none",
                                       clusterDNS)};
    };
    size_t start = 0;
    int n = 0;
    while (start <= clusterDNS.size()) {
      const size_t comma = clusterDNS.find(',', start);
      const std::string one =
          clusterDNS.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      in_addr a{};
      in6_addr a6{};
      if (++n > 2) return bad();
      if (inet_pton(AF_INET, one.c_str(), &a) == 1 && a.s_addr != 0 && o.address == 0) {
        o.address = ntohl(a.s_addr);
      } else if (inet_pton(AF_INET6, one.c_str(), &a6) == 1 && o.address6 == Ip6{} &&
                 !IN6_IS_ADDR_UNSPECIFIED(&a6) && !IN6_IS_ADDR_LOOPBACK(&a6) &&
                 !IN6_IS_ADDR_MULTICAST(&a6) && !IN6_IS_ADDR_LINKLOCAL(&a6) &&
                 !IN6_IS_ADDR_V4MAPPED(&a6)) {
        std::memcpy(o.address6.data(), a6.s6_addr, 16);
      } else {
        return bad();
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  // The zone: lower case, no trailing dot, DNS labels.
  std::string& d = o.domain;
  for (char& c : d)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (!d.empty() && d.back() == '.') d.pop_back();
  bool ok = !d.empty() && d.size() <= 253 && d.front() != '.' && d.find("..") == std::string::npos;
  for (char c : d)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  if (!ok)
    return Error{EINVAL, fmt::format("--cluster-domain {}: expected a DNS name such as "
                                     "cluster.local",
                                     o.domain)};
  for (const auto& u : upstreams)
    if (!validUpstream(u))
      return Error{EINVAL, fmt::format("--dns-upstream {}: expected IP or IP:PORT (IPv4)", u)};
  if (upstreams.empty()) {
    // The node's resolvers, as CoreDNS's `forward . /etc/resolv.conf`;
    // never the cluster DNS address itself (a loop).
    std::ifstream rc("/etc/resolv.conf");
    std::string line;
    while (std::getline(rc, line)) {
      std::istringstream in(line);
      std::string key, ip;
      if (!(in >> key >> ip) || key != "nameserver" || !validUpstream(ip)) continue;
      in_addr a{};
      inet_pton(AF_INET, ip.c_str(), &a);
      if (ntohl(a.s_addr) != o.address || o.address == 0) upstreams.push_back(ip);
    }
  }
  o.upstreams = std::move(upstreams);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"svclbd: Kubernetes Service load balancing in eBPF"};
  DataplaneConfig dpc;
  DaemonConfig dc;
  bool uninstall = false;
  std::string cgroup = "default";
  app.add_option("--bpffs", dpc.bpffs, "bpffs dir for pinned maps and links")
      ->capture_default_str();
  app.add_option("--iface", dc.ifaces, "pod-facing interface to attach to (repeatable)");
  std::vector<std::string> externalIfaces;
  app.add_option("--external-iface", externalIfaces,
                 "node NIC to balance on with XDP (libxdp dispatcher, beside other XDP programs) "
                 "and tc (repeatable)");
  std::string externalDatapath = "auto";
  app.add_option("--external-datapath", externalDatapath,
                 "how node NICs forward: auto (tc on a veth, XDP on other NICs), xdp or tc")
      ->check(CLI::IsMember({"auto", "xdp", "tc"}))
      ->capture_default_str();
  std::string tcAttach = "auto";
  app.add_option("--tc-attach", tcAttach,
                 "how the tc programs are attached: auto (tcx links where the kernel has them, "
                 "Linux >= 6.6, else legacy), tcx (refuse to start without them) or legacy "
                 "(clsact qdisc + cls_bpf filter)")
      ->check(CLI::IsMember({"auto", "tcx", "legacy"}))
      ->capture_default_str();
  app.add_option("--pod-iface-prefix", dc.podIfacePrefix,
                 "also attach to every interface whose name starts with this (watched)");
  app.add_option("--state-dir", dc.stateDir, "where desired state is persisted")
      ->capture_default_str();
  app.add_option("--socket", dc.socketPath, "svcctl API socket")->capture_default_str();
  std::string socketGroup;
  app.add_option(
      "--socket-group", socketGroup,
      "let this group use the API socket (root:GROUP, mode 0660; default root only, 0600)");
  app.add_option("--metrics-addr", dc.metricsAddr, "Prometheus listener HOST:PORT")
      ->capture_default_str();
  app.add_option("--service-cidr", dc.serviceCIDR,
                 "ClusterIP allocation ranges: one CIDR, or one per family for dual-stack "
                 "Services, the primary family first (10.96.0.0/12,fd00:10:96::/112)")
      ->capture_default_str()
      ->check([](const std::string& v) -> std::string {
        // Checked here, not at the first allocation: a wrong range must
        // stop the daemon, not fail every later apply.
        return checkServiceCIDR(v);
      });
  app.add_option(
      "--cgroup", cgroup,
      "cgroup2 dir of the socket hooks: the processes under it are balanced at the socket "
      "(default: the cgroup2 root; 'none' = --socket-lb none)");
  std::string socketLb = "all";
  app.add_option("--socket-lb", socketLb,
                 "balance at the socket (connect/sendmsg): all (the node's and the pods' "
                 "processes in --cgroup), node (the node's network namespace only) or none")
      ->check(CLI::IsMember({"all", "node", "none"}))
      ->capture_default_str();
  std::string flowFilter = "on";
  app.add_option("--flow-filter", flowFilter,
                 "on: a backend's packets to a client tuple no translated flow uses skip the "
                 "conntrack lookups (flow_filter_v1, rebuilt from the conntrack maps); off: "
                 "every such packet is looked up")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--max-services", dpc.maxServiceEntries,
                 "services map entries (frontends + slots)")
      ->capture_default_str();
  app.add_option("--max-backends", dpc.maxBackends, "backend ids")->capture_default_str();
  app.add_option("--max-conntrack", dpc.maxCtEntries,
                 "entries of each conntrack map, new and established (2 per flow)")
      ->capture_default_str();
  std::string nodePortRange = "30000-32767";
  app.add_option("--service-node-port-range", nodePortRange,
                 "NodePort allocation range MIN-MAX (existing allocations outside it are kept)")
      ->capture_default_str();
  app.add_option("--lb-class", dc.lbClass,
                 "the spec.loadBalancerClass of the LoadBalancer Services that get addresses from "
                 "the IPAddressPools (as MetalLB's --lb-class); default: those without a class");
  std::string algo = "random";
  app.add_option("--lb-algorithm", algo,
                 "default backend choice for new flows: random | maglev (per Service: "
                 "annotation svclb.io/lb-algorithm)")
      ->capture_default_str()
      ->check(CLI::IsMember({"random", "maglev"}));
  app.add_option("--maglev-table-size", dc.sync.maglevSize,
                 "entries of each Service's Maglev table (a prime; 16381 = 64 KiB/Service)")
      ->capture_default_str()
      ->check([](const std::string& v) -> std::string {
        unsigned long n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return "not a number";
        if (n < 3 || n > kMaxMaglevTableSize || !isPrime(static_cast<uint32_t>(n)))
          return fmt::format("{} is not a prime between 3 and {}", v, kMaxMaglevTableSize);
        return {};
      });
  app.add_option("--node-name", dc.nodeName,
                 "this node's name: endpoints whose nodeName equals it are local "
                 "(externalTrafficPolicy and internalTrafficPolicy: Local); default: the host "
                 "name, lowercased (kube-proxy's --hostname-override)");
  app.add_option("--zone", dc.zone,
                 "this node's zone (its topology.kubernetes.io/zone label): EndpointSlice "
                 "topology hints (trafficDistribution: PreferClose) pick the endpoints hinted "
                 "for it, as kube-proxy does");
  app.add_option("--l2-members", dc.l2Members,
                 "NAME[,NAME...]: the nodes running svclbd on this L2 segment, this one "
                 "included (repeatable); one of them per LoadBalancer IP answers ARP, chosen "
                 "as MetalLB's speakers choose; default: this node alone answers for all")
      ->delimiter(',');
  std::string source = "svcctl";
  app.add_option("--source", source,
                 "where Services and endpoints come from: svcctl (standalone: svcctl apply) or "
                 "kubernetes (list+watch a kube-apiserver; svcctl apply/delete are refused)")
      ->check(CLI::IsMember({"svcctl", "kubernetes"}))
      ->capture_default_str();
  k8s::ConfigOptions kco;
  app.add_option("--kubeconfig", kco.kubeconfigPath,
                 "kubeconfig for the API server (implies --source=kubernetes; default in a pod: "
                 "the in-cluster ServiceAccount)");
  app.add_option("--k8s-api-server", kco.apiServer,
                 "https://HOST[:PORT] of the kube-apiserver, overriding the kubeconfig's or the "
                 "in-cluster address (implies --source=kubernetes); svclb replaces kube-proxy, so "
                 "give the apiserver's real address, not the kubernetes Service's ClusterIP");
  std::string clusterDNS = "10.96.0.10";
  app.add_option("--cluster-dns", clusterDNS,
                 "serve the cluster DNS zone on IP:53 (put on lo as lo:svclb-dns; pods' "
                 "resolv.conf names it; kubeadm's kube-dns address by default); an IPv6 "
                 "address, one of each family (IPv4,IPv6), or none")
      ->capture_default_str();
  app.add_option("--cluster-domain", dc.dns.domain, "the cluster DNS zone")->capture_default_str();
  std::vector<std::string> dnsUpstreams;
  app.add_option("--dns-upstream", dnsUpstreams,
                 "IP[:PORT] answering names outside the zone (repeatable; default: the "
                 "nameservers of /etc/resolv.conf)");
  app.add_option("--dns-ttl", dc.dns.ttl, "TTL of the cluster zone's records, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  uint32_t monitorRate = MON_RATE_DEFAULT;
  app.add_option("--monitor-rate", monitorRate,
                 "svcctl monitor: at most this many drop/reject events per second per CPU "
                 "(the rest are counted as lost)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--uninstall", uninstall, "detach everything and remove the pins, then exit");
  CLI11_PARSE(app, argc, argv);
  if (dc.nodeName.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) dc.nodeName = host;
  }
  // kube-proxy trims and lowercases the host name (node names are DNS-1123).
  dc.nodeName.erase(0, dc.nodeName.find_first_not_of(" \t\n"));
  dc.nodeName.erase(dc.nodeName.find_last_not_of(" \t\n") + 1);
  for (char& c : dc.nodeName)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  // Member names as --node-name is read (trimmed, lowercased); empty ones
  // ("a,,b", a trailing comma) dropped.
  for (std::string& m : dc.l2Members) {
    m.erase(0, m.find_first_not_of(" \t\n"));
    m.erase(m.find_last_not_of(" \t\n") + 1);
    for (char& c : m)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  std::erase_if(dc.l2Members, [](const std::string& m) { return m.empty(); });
  if (auto st = checkL2Members(dc.l2Members, dc.nodeName); !st) return die(st.error().message);
  dc.externalIfaces = externalIfaces;  // L2 announcements go out on these
  dpc.externalDatapath = *parseExternalDatapath(externalDatapath);  // checked by CLI11
  dpc.tcAttach = *parseTcAttach(tcAttach);                          // likewise
  dc.sync.defaultAlgo = algo == "maglev" ? SVC_ALGO_MAGLEV : SVC_ALGO_RANDOM;
  dc.sync.maxServiceEntries = dpc.maxServiceEntries;
  {
    int lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(nodePortRange);
    if (!(in >> lo >> dash >> hi) || dash != '-' || !in.eof() || lo < 1 || hi > 65535 || lo > hi)
      return die(fmt::format("--service-node-port-range {}: expected MIN-MAX within 1-65535",
                             nodePortRange));
    dc.nodePortMin = lo;
    dc.nodePortMax = hi;
  }

  if (cgroup == "default") cgroup = defaultCgroup2Path();
  if (cgroup == "none") cgroup.clear();
  dpc.cgroup = cgroup;
  dpc.socketLb = cgroup.empty() ? SocketLb::None : *parseSocketLb(socketLb);
  // Benchmark only, never a flag (bench/compare/local_delivery.sh).
  if (const char* e = std::getenv("SVCLB_BENCH_LOCAL_REDIRECT"); e && std::string_view(e) == "1") {
    dpc.benchLocalRedirect = true;
    fmt::print(stderr,
               "svclbd: benchmark knob SVCLB_BENCH_LOCAL_REDIRECT=1: local node-facing flows "
               "are redirected into the backend's veth\n");
  }

  if (auto st = parseDnsOptions(clusterDNS, dnsUpstreams, dc.dns); !st)
    return die(st.error().message);

  if (!kco.kubeconfigPath.empty() || !kco.apiServer.empty()) source = "kubernetes";
  if (source == "kubernetes" && !uninstall) {
    auto conn = k8s::loadConfig(kco);
    if (!conn) return die(conn.error().message);
    K8sSourceOptions ko;
    ko.config = std::move(*conn);
    ko.nodeName = dc.nodeName;
    ko.headlessSlices = dc.dns.on();  // the DNS names headless endpoints
    dc.kubernetes = std::move(ko);
  }

  if (std::string missing = missingCapabilities(dc.dns.on() && !uninstall); !missing.empty())
    return die(missing);
  if (!socketGroup.empty())
    if (auto g = resolveGroup(socketGroup); !g) return die(g.error().message);
  // Flags are checked before anything is loaded or pinned.
  if (!dc.metricsAddr.empty() && dc.metricsAddr != "none")
    if (auto a = parseHostPort(dc.metricsAddr, "--metrics-addr"); !a) return die(a.error().message);

  if (uninstall) {
    if (auto st = Dataplane::uninstall(dpc); !st) return die(st.error().message);
    if (auto st = ensureDnsAddress(0); !st) return die(st.error().message);
    fmt::print(stderr, "svclbd: removed svclb from this node ({})\n", dpc.bpffs);
    return 0;
  }

  for (const auto& i : externalIfaces)
    if (if_nametoindex(i.c_str()) == 0)
      return die(fmt::format(
          "--external-iface {}: there is no interface named {} in this network namespace", i, i));

  auto cookie = currentNetnsCookie();
  if (!cookie) return die(cookie.error().message);
  dpc.netnsCookie = *cookie;

  if (auto st = ensureBpffs(dpc.bpffs); !st) return die(st.error().message);
  auto lock = lockBpffs(dpc.bpffs);
  if (!lock) return die(lock.error().message);

  auto dp = Dataplane::load(dpc);
  if (!dp) return die(dp.error().message);
  if (auto st = (*dp)->setMonitorRate(monitorRate); !st) return die(st.error().message);
  fmt::print(
      stderr, "svclbd: tc programs attached {} ({})\n",
      (*dp)->tcAttachMode() == TcAttach::Tcx ? "as tcx links" : "as legacy clsact/cls_bpf filters",
      (*dp)->tcAttachReason());
  Daemon daemon(dc, **dp);
  if (auto st = daemon.start(); !st) return die("restoring state: " + st.error().message);
  if (auto st = (*dp)->attachCgroup(); !st) return die(st.error().message);
  for (const auto& i : dc.ifaces)
    if (auto st = daemon.attachInterface(i); !st) return die(st.error().message);
  // Node NICs once the maps hold the restored state.
  for (const auto& i : externalIfaces)
    if (auto st = (*dp)->attachExternal(i); !st)
      return die("--external-iface " + i + ": " + st.error().message);

  LinkWatcher watcher(daemon);
  if (auto st = watcher.start(); !st) return die(st.error().message);
  // An earlier svclbd's programs on interfaces this one does not select.
  const StaleRemoval stale = (*dp)->removeStale([&](const std::string& ifname) {
    return daemon.wantsInterface(ifname) || daemon.isExternalInterface(ifname);
  });
  for (const auto& ifname : stale.cleaned)
    fmt::print(stderr,
               "svclbd: {}: not selected (--iface, --pod-iface-prefix, --external-iface): "
               "removed an earlier svclbd's programs from it\n",
               ifname);
  for (const auto& pin : stale.gonePins)
    fmt::print(stderr,
               "svclbd: removed the pin of an earlier svclbd's tcx link {} (its interface no "
               "longer exists)\n",
               pin);
  for (const auto& [ifname, why] : stale.failed)
    fmt::print(stderr,
               "svclbd: {}: not selected, but an earlier svclbd's programs could not be removed "
               "from it: {}\n",
               ifname, why);
  // Once every program of this build is attached (the watcher's start
  // attached the pod interfaces present; an older build's programs did not
  // set flow_filter_v1's slots): the filter's first rebuild, then its keeper.
  // Off while an older build's program may still run somewhere.
  FlowFilterKeeper flowFilterKeeper((*dp)->flowFilter());
  if (flowFilter != "on") {
    (*dp)->flowFilter().turnOff("--flow-filter off");
  } else if (!stale.failed.empty()) {
    const std::string why = fmt::format(
        "svclb's programs of an earlier run are still attached to {} (not selected), and they "
        "set no flow-filter slots; restart after removing them",
        stale.failed.front().first);
    fmt::print(stderr, "svclbd: flow filter off: {}\n", why);
    (*dp)->flowFilter().turnOff(why);
  } else {
    flowFilterKeeper.start();
  }
  MetricsServer metrics(daemon);
  if (!dc.metricsAddr.empty() && dc.metricsAddr != "none")
    if (auto st = metrics.start(dc.metricsAddr); !st) return die(st.error().message);

  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto lfd = listenUnix(dc.socketPath, socketGroup);
  if (!lfd) return die(lfd.error().message);
  fmt::print(stderr,
             "svclbd: ready (bpffs {}, socket {}, metrics {}, cgroup {}, socket-lb {}, tc-attach "
             "{})\n",
             dpc.bpffs, dc.socketPath, dc.metricsAddr, cgroup.empty() ? "none" : cgroup,
             socketLbName(dpc.socketLb), tcAttachName((*dp)->tcAttachMode()));
  serveApi(*lfd, daemon, gStop);

  close(*lfd);
  unlink(dc.socketPath.c_str());
  watcher.stop();
  metrics.stop();
  flowFilterKeeper.stop();
  fmt::print(stderr,
             "svclbd: stopped; the dataplane stays attached (svclbd --uninstall removes it)\n");
  return 0;
}
