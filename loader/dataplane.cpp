#include "loader/dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>
#include <fstream>
#include <sstream>

#include "svclb_bpf.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace fs = std::filesystem;

namespace svclb {

namespace {

struct CgroupHook {
  const char* name;  // pin name and attach type shown in status
  bpf_program* (*prog)(::svclb_bpf*);
};

const CgroupHook kCgroupHooks[] = {
    {"connect4", [](::svclb_bpf* s) { return s->progs.svclb_sock_connect4; }},
    {"sendmsg4", [](::svclb_bpf* s) { return s->progs.svclb_sock_sendmsg4; }},
    {"recvmsg4", [](::svclb_bpf* s) { return s->progs.svclb_sock_recvmsg4; }},
    {"getpeername4", [](::svclb_bpf* s) { return s->progs.svclb_sock_getpeername4; }},
};

const char* const kPinnedMaps[] = {SVCLB_MAP_SERVICES, SVCLB_MAP_BACKENDS, SVCLB_MAP_CT, SVCLB_MAP_CT_EST,
                                   SVCLB_MAP_SVC_STATS, SVCLB_MAP_BE_STATS, SVCLB_MAP_DROPS,
                                   SVCLB_MAP_SOCK_REV, SVCLB_MAP_MAGLEV, SVCLB_MAP_AFFINITY};

std::string linksDir(const DataplaneConfig& cfg) { return cfg.bpffs + "/links"; }

uint32_t progIdOf(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.id;
}

std::string progNameById(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return {};
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  std::string name;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
  close(fd);
  return name;
}

// libbpf prints to stderr by default; keep warnings and errors only, minus
// the kernel's netlink notes for cases we expect and handle: the clsact
// qdisc already exists (EEXIST), or an interface has none when we look for
// our filter (uninstall, status).
int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, args);
  if (strstr(buf, "Exclusivity flag on") || strstr(buf, "Parent Qdisc doesn't exists") ||
      strstr(buf, "Cannot find specified filter chain") || strstr(buf, "Filter with specified priority/protocol not found"))
    return 0;
  return fputs(buf, stderr);
}

uint64_t cgroupIdOf(const std::string& path) {
  struct stat st{};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;  // on cgroup2 the inode number is the cgroup id
}

}  // namespace

Result<uint64_t> currentNetnsCookie() {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (s < 0) return Error::fromErrno(errno, "socket");
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  int rc = getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len);
  int e = errno;
  close(s);
  if (rc != 0) return Error::fromErrno(e, "getsockopt(SO_NETNS_COOKIE)");
  return cookie;
}

std::string defaultCgroup2Path() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, dir, type;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    ls >> dev >> dir >> type;
    if (type == "cgroup2") return dir;
  }
  return {};
}

Status ensureBpffs(const std::string& dir) {
  struct statfs sfs{};
  fs::path p(dir);
  // Find the closest existing ancestor and check it is bpffs.
  while (!p.empty() && statfs(p.c_str(), &sfs) != 0) p = p.parent_path();
  if (sfs.f_type != BPF_FS_MAGIC) {
    if (dir.rfind("/sys/fs/bpf", 0) != 0)
      return Error{EINVAL, fmt::format("--bpffs {} is not on a bpf filesystem", dir)};
    if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
      return Error::fromErrno(errno, "mount bpffs at /sys/fs/bpf");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{ec.value(), fmt::format("create {}: {}", dir, ec.message())};
  return {};
}

Dataplane::~Dataplane() {
  // Destroying the skeleton closes fds only: pinned maps, pinned links and
  // tc filters stay, so traffic keeps flowing while the daemon is away.
  if (skel_) svclb_bpf__destroy(skel_);
}

Result<std::unique_ptr<Dataplane>> Dataplane::load(const DataplaneConfig& cfg) {
  libbpf_set_print(libbpfPrint);
  std::unique_ptr<Dataplane> dp(new Dataplane(cfg));
  if (cfg.pin) {
    if (auto st = ensureBpffs(cfg.bpffs); !st) return st.error();
  }
  LIBBPF_OPTS(bpf_object_open_opts, opts);
  if (cfg.pin) opts.pin_root_path = cfg.bpffs.c_str();
  dp->skel_ = svclb_bpf__open_opts(&opts);
  if (!dp->skel_) return Error::fromErrno(errno, "open BPF object");
  auto* s = dp->skel_;
  s->rodata->cfg_netns_cookie = cfg.netnsCookie;
  bpf_map__set_max_entries(s->maps.svc_v1, cfg.maxServiceEntries);
  bpf_map__set_max_entries(s->maps.backends_v1, cfg.maxBackends);
  bpf_map__set_max_entries(s->maps.be_stats_v1, cfg.maxBackends);
  bpf_map__set_max_entries(s->maps.svc_stats_v1, cfg.maxSvcIds);
  bpf_map__set_max_entries(s->maps.ct_v2, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.ct_est_v2, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.maglev_v1, cfg.maxSvcIds);
  bpf_map__set_max_entries(s->maps.affinity_v1, cfg.maxAffinityEntries);
  if (!cfg.pin)
    for (bpf_map* m = bpf_object__next_map(s->obj, nullptr); m; m = bpf_object__next_map(s->obj, m))
      bpf_map__set_pin_path(m, nullptr);
  if (int err = svclb_bpf__load(s); err != 0)
    return Error::fromErrno(err,
                            fmt::format("load BPF programs (pinned maps under {} that do not match "
                                        "this build or the --max-* sizes are refused)",
                                        cfg.bpffs));
  if (auto st = dp->setCtLifetimes(); !st) return st.error();
  return dp;
}

Result<uint64_t> Dataplane::jiffies() const {
  uint8_t frame[64] = {};
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
  if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.svclb_probe_jiffies), &o) != 0)
    return Error::fromErrno(errno, "run the jiffies probe");
  return static_cast<uint64_t>(skel_->bss->probe_jiffies);
}

uint32_t Dataplane::nowTicks() const {
  auto j = jiffies();
  return j ? static_cast<uint32_t>(*j >> CT_TICK_SHIFT) : 0;
}

// The kernel's HZ, measured once per process: jiffies over 60 ms of
// CLOCK_MONOTONIC, rounded to the nearest HZ a kernel can be built with.
Status Dataplane::setCtLifetimes() {
  static uint32_t cachedHz = 0;
  if (cachedHz == 0) {
    auto j0 = jiffies();
    if (!j0) return j0.error();
    auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    auto j1 = jiffies();
    if (!j1) return j1.error();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double measured = static_cast<double>(*j1 - *j0) / secs;
    uint32_t best = 250;
    for (uint32_t hz : {100u, 250u, 300u, 1000u})
      if (std::abs(measured - hz) < std::abs(measured - best)) best = hz;
    cachedHz = best;
  }
  auto ticks = [](uint64_t secs, uint32_t hz) {  // rounded up: never shorter
    return static_cast<uint32_t>((secs * hz + (1u << CT_TICK_SHIFT) - 1) >> CT_TICK_SHIFT);
  };
  ctLife_ = {cachedHz, ticks(CT_LIFETIME_TCP_SECS, cachedHz), ticks(CT_LIFETIME_NONTCP_SECS, cachedHz),
             ticks(CT_LIFETIME_CLOSING_SECS, cachedHz)};
  skel_->data->cfg_ct_life_tcp = ctLife_.tcp;
  skel_->data->cfg_ct_life_nontcp = ctLife_.nontcp;
  skel_->data->cfg_ct_life_closing = ctLife_.closing;
  return {};
}

Status Dataplane::attachTc(const std::string& ifname) {
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error::fromErrno(errno, "interface " + ifname);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Error::fromErrno(err, "create clsact qdisc on " + ifname);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(skel_->progs.svclb_tc_pod_in),
              .flags = BPF_TC_F_REPLACE, .handle = kTcHandle, .priority = kTcPriority);
  err = bpf_tc_attach(&hook, &opts);
  if (err) return Error::fromErrno(err, "attach tc ingress on " + ifname);
  if (std::find(tcIfaces_.begin(), tcIfaces_.end(), ifname) == tcIfaces_.end())
    tcIfaces_.push_back(ifname);
  return {};
}

Status Dataplane::attachCgroup() {
  if (cfg_.cgroup.empty()) return {};
  int cg = open(cfg_.cgroup.c_str(), O_RDONLY | O_DIRECTORY);
  if (cg < 0) return Error::fromErrno(errno, "open cgroup " + cfg_.cgroup);
  std::error_code ec;
  fs::create_directories(linksDir(cfg_), ec);
  const uint64_t wantCg = cgroupIdOf(cfg_.cgroup);
  Status result;
  for (const auto& hook : kCgroupHooks) {
    bpf_program* prog = hook.prog(skel_);
    const std::string pin = linksDir(cfg_) + "/" + hook.name;
    bpf_link* old = fs::exists(pin) ? bpf_link__open(pin.c_str()) : nullptr;
    if (old) {
      bpf_link_info info{};
      uint32_t len = sizeof(info);
      bool sameCg = bpf_obj_get_info_by_fd(bpf_link__fd(old), &info, &len) == 0 &&
                    info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == wantCg;
      if (sameCg) {
        int err = bpf_link__update_program(old, prog);
        bpf_link__destroy(old);
        if (err) {
          result = Error::fromErrno(err, fmt::format("update pinned link {}", pin));
          break;
        }
        continue;
      }
      // Pinned for another cgroup: replace it.
      bpf_link__unpin(old);
      bpf_link__destroy(old);
    }
    bpf_link* link = bpf_program__attach_cgroup(prog, cg);
    if (!link) {
      result = Error::fromErrno(errno, fmt::format("attach {} to cgroup {}", hook.name, cfg_.cgroup));
      break;
    }
    int err = bpf_link__pin(link, pin.c_str());
    bpf_link__destroy(link);  // the pin keeps it attached
    if (err) {
      result = Error::fromErrno(err, "pin link " + pin);
      break;
    }
  }
  close(cg);
  return result;
}

Status Dataplane::uninstall(const DataplaneConfig& cfg) {
  // tc filters: ours are identified by handle/priority AND program name.
  struct if_nameindex* ifs = if_nameindex();
  for (auto* i = ifs; i && i->if_index; ++i) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(i->if_index),
                .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_query(&hook, &q) != 0) continue;
    if (progNameById(q.prog_id).rfind("svclb_", 0) != 0) continue;
    LIBBPF_OPTS(bpf_tc_opts, d, .handle = kTcHandle, .priority = kTcPriority);
    bpf_tc_detach(&hook, &d);
  }
  if (ifs) if_freenameindex(ifs);

  std::error_code ec;
  for (const auto& hook : kCgroupHooks) fs::remove(linksDir(cfg) + "/" + hook.name, ec);
  fs::remove(linksDir(cfg), ec);
  for (const char* m : kPinnedMaps) fs::remove(cfg.bpffs + "/" + m, ec);
  fs::remove(cfg.bpffs, ec);
  if (ec && fs::exists(cfg.bpffs))
    return Error{ec.value(), fmt::format("remove {}: {} (unknown files left in it?)", cfg.bpffs,
                                         ec.message())};
  return {};
}

ServiceMap Dataplane::services() const {
  return {bpf_map__fd(skel_->maps.svc_v1), SVCLB_MAP_SERVICES};
}
BackendMap Dataplane::backends() const {
  return {bpf_map__fd(skel_->maps.backends_v1), SVCLB_MAP_BACKENDS};
}
CtMap Dataplane::conntrack() const { return {bpf_map__fd(skel_->maps.ct_v2), SVCLB_MAP_CT}; }
CtMap Dataplane::conntrackEst() const {
  return {bpf_map__fd(skel_->maps.ct_est_v2), SVCLB_MAP_CT_EST};
}
SockRevMap Dataplane::sockRev() const {
  return {bpf_map__fd(skel_->maps.sock_rev_v1), SVCLB_MAP_SOCK_REV};
}
StatsMap Dataplane::svcStats() const {
  return {bpf_map__fd(skel_->maps.svc_stats_v1), SVCLB_MAP_SVC_STATS};
}
StatsMap Dataplane::backendStats() const {
  return {bpf_map__fd(skel_->maps.be_stats_v1), SVCLB_MAP_BE_STATS};
}
AffinityMap Dataplane::affinity() const {
  return {bpf_map__fd(skel_->maps.affinity_v1), SVCLB_MAP_AFFINITY};
}
int Dataplane::maglevOuterFd() const { return bpf_map__fd(skel_->maps.maglev_v1); }
DropsMap Dataplane::drops() const { return {bpf_map__fd(skel_->maps.drops_v1), SVCLB_MAP_DROPS}; }
SrcRangeMap Dataplane::srcRanges() const {
  return {bpf_map__fd(skel_->maps.src_ranges_v1), SVCLB_MAP_SRC_RANGES};
}
L2ArpMap Dataplane::l2Arp() const { return {bpf_map__fd(skel_->maps.l2_arp_v1), SVCLB_MAP_L2_ARP}; }
TxPortMap Dataplane::txPorts() const {
  return {bpf_map__fd(skel_->maps.tx_ports_v1), SVCLB_MAP_TX_PORTS};
}

int Dataplane::tcProgFd() const { return bpf_program__fd(skel_->progs.svclb_tc_pod_in); }
int Dataplane::xdpProgFd() const { return bpf_program__fd(skel_->progs.svclb_xdp_lb); }

std::vector<ProgramInfo> Dataplane::programs() const {
  std::vector<ProgramInfo> out;
  bpf_program* p = nullptr;
  while ((p = bpf_object__next_program(skel_->obj, p))) {
    const char* type = libbpf_bpf_prog_type_str(bpf_program__type(p));
    out.push_back({bpf_program__name(p), type ? type : "?", progIdOf(bpf_program__fd(p))});
  }
  return out;
}

std::vector<TcAttachment> Dataplane::tcAttachments() const {
  std::vector<TcAttachment> out;
  for (const auto& name : tcIfaces_) {
    int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
    if (ifindex == 0) continue;  // interface gone
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = kTcHandle, .priority = kTcPriority);
    uint32_t id = bpf_tc_query(&hook, &q) == 0 ? q.prog_id : 0;
    out.push_back({name, ifindex, id});
  }
  return out;
}

std::vector<CgroupLinkInfo> Dataplane::cgroupLinks() const {
  std::vector<CgroupLinkInfo> out;
  if (cfg_.cgroup.empty()) return out;
  for (const auto& hook : kCgroupHooks) {
    int fd = bpf_obj_get((linksDir(cfg_) + "/" + hook.name).c_str());
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
      out.push_back({hook.name, info.id, info.prog_id});
    close(fd);
  }
  return out;
}

}  // namespace svclb
