#include "loader/dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include "svclb_bpf.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

// tcx (Linux 6.6) in the kernel's uapi; Debian 12's headers (linux-libc-dev
// 6.1) and libbpf 1.1 predate it. libbpf's generic bpf_link_create,
// bpf_link_update and bpf_obj_get_info_by_fd take them as they are.
constexpr auto kTcxIngress = static_cast<bpf_attach_type>(46);  // BPF_TCX_INGRESS
constexpr auto kTcxEgress = static_cast<bpf_attach_type>(47);   // BPF_TCX_EGRESS
constexpr uint32_t kLinkTypeTcx = 11;                           // BPF_LINK_TYPE_TCX

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
    {"connect6", [](::svclb_bpf* s) { return s->progs.svclb_sock_connect6; }},
    {"sendmsg6", [](::svclb_bpf* s) { return s->progs.svclb_sock_sendmsg6; }},
    {"recvmsg6", [](::svclb_bpf* s) { return s->progs.svclb_sock_recvmsg6; }},
    {"getpeername6", [](::svclb_bpf* s) { return s->progs.svclb_sock_getpeername6; }},
    {"skb_egress", [](::svclb_bpf* s) { return s->progs.svclb_sock_skb_egress; }},
    {"skb_ingress", [](::svclb_bpf* s) { return s->progs.svclb_sock_skb_ingress; }},
};

const char* const kPinnedMaps[] = {
    SVCLB_MAP_SERVICES,  SVCLB_MAP_BACKENDS,   SVCLB_MAP_CT,          SVCLB_MAP_CT_EST,
    SVCLB_MAP_SVC_STATS, SVCLB_MAP_BE_STATS,   SVCLB_MAP_DROPS,       SVCLB_MAP_SOCK_REV,
    SVCLB_MAP_MAGLEV,    SVCLB_MAP_AFFINITY,   SVCLB_MAP_SRC_RANGES,  SVCLB_MAP_L2_ARP,
    SVCLB_MAP_TX_PORTS,  SVCLB_MAP_NIC_XDP,    SVCLB_MAP_CT_EVENTS,   SVCLB_MAP_SOCK_FLOW,
    SVCLB_MAP_FRAG,      SVCLB_MAP_SERVICES6,  SVCLB_MAP_BACKEND6,    SVCLB_MAP_CT6,
    SVCLB_MAP_CT6_EST,   SVCLB_MAP_AFFINITY6,  SVCLB_MAP_SRC_RANGES6, SVCLB_MAP_SOCK_REV6,
    SVCLB_MAP_L2_NDP,    SVCLB_MAP_TAIL_PROGS, SVCLB_MAP_SOCK_FLOW6,  SVCLB_MAP_TAIL_EXT6,
    SVCLB_MAP_TAIL_XDP6, SVCLB_MAP_FRAG6,      SVCLB_MAP_FILTER,      SVCLB_MAP_BE_REV,
    SVCLB_MAP_BE_REV6,   SVCLB_MAP_FLOW_FILTER};

// Pins of maps an earlier build used and this one replaced (a layout
// change means a new name: libbpf refuses a pinned map of another layout).
// Removed at load (the programs that still use them keep them alive until
// they are replaced) and by --uninstall.
const char* const kRetiredMaps[] = {"sock_flow_v1", "sock_flow6_v1", "svc_stats_v1", "be_stats_v1"};

// Our XDP program as the kernel names it (also in libxdp's dispatcher: that
// is how a restarted daemon and --uninstall recognise it).
constexpr const char* kXdpProgName = "svclb_xdp_lb";

std::string linksDir(const DataplaneConfig& cfg) { return cfg.bpffs + "/links"; }
// The pinned tcx links: <ifindex>-<ifname>-ingress|egress (the ifindex
// first: a name the kernel gives another interface later is another pin).
std::string tcxDir(const DataplaneConfig& cfg) { return linksDir(cfg) + "/tcx"; }

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

// While libxdp attaches (it probes the kernel and may fall back), libbpf's
// and libxdp's messages are collected here and shown only if the attach
// fails after all.
thread_local std::string* gXdpCapture = nullptr;

// libbpf prints to stderr by default; keep warnings and errors only, minus
// the kernel's netlink notes for cases we expect and handle: the clsact
// qdisc already exists (EEXIST), or an interface has none when we look for
// our filter (uninstall, status).
int libbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, args);
  if (gXdpCapture) {
    *gXdpCapture += buf;
    return 0;
  }
  if (strstr(buf, "Exclusivity flag on") || strstr(buf, "Parent Qdisc doesn't exists") ||
      strstr(buf, "Cannot find specified filter chain") ||
      strstr(buf, "Filter with specified priority/protocol not found"))
    return 0;
  return fputs(buf, stderr);
}

int libxdpPrint(enum libxdp_print_level level, const char* fmt, va_list args) {
  if (level == LIBXDP_DEBUG) return 0;
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, args);
  if (gXdpCapture) {
    *gXdpCapture += std::string("libxdp: ") + buf;
    return 0;
  }
  return level == LIBXDP_WARN ? fputs(buf, stderr) : 0;
}

std::string xdpStrerror(int err) {
  char buf[256] = {};
  libxdp_strerror(err < 0 ? err : -err, buf, sizeof(buf));
  return buf;
}

struct MultiprogClose {
  void operator()(xdp_multiprog* mp) const { xdp_multiprog__close(mp); }
};
using Multiprog = std::unique_ptr<xdp_multiprog, MultiprogClose>;

// What is attached in XDP on the interface (nullptr: nothing, or only an
// offloaded program). libxdp returns NULL or an ERR_PTR for "none".
Multiprog multiprogOf(int ifindex) {
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(ifindex);
  if (!mp || libxdp_get_error(mp)) return nullptr;
  if (xdp_multiprog__is_legacy(mp) && !xdp_multiprog__main_prog(mp)) {
    xdp_multiprog__close(mp);
    return nullptr;
  }
  return Multiprog(mp);
}

bool isOurXdp(const xdp_program* p) {
  const char* name = p ? xdp_program__name(p) : nullptr;
  return name && std::strcmp(name, kXdpProgName) == 0;
}

// Our programs in the dispatcher (owned by mp). A legacy attachment (no
// dispatcher: libxdp fell back because the kernel lacks freplace) is
// reported through its main program.
std::vector<xdp_program*> ourXdpPrograms(xdp_multiprog* mp) {
  std::vector<xdp_program*> out;
  if (xdp_multiprog__is_legacy(mp)) {
    if (isOurXdp(xdp_multiprog__main_prog(mp))) out.push_back(xdp_multiprog__main_prog(mp));
    return out;
  }
  for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p;
       p = xdp_multiprog__next_prog(p, mp))
    if (isOurXdp(p)) out.push_back(p);
  return out;
}

XdpMode modeOf(const xdp_multiprog* mp) {
  return xdp_multiprog__attach_mode(mp) == XDP_MODE_SKB ? XdpMode::Generic : XdpMode::Native;
}

// Removes every svclb_xdp_lb from the interface; the dispatcher is rebuilt
// around the other programs (or removed with the last one).
Status detachOurXdp(int ifindex, const std::string& ifname) {
  Multiprog mp = multiprogOf(ifindex);
  if (!mp) return {};
  auto ours = ourXdpPrograms(mp.get());
  if (ours.empty()) return {};
  int err = xdp_multiprog__is_legacy(mp.get())
                ? xdp_multiprog__detach(mp.get())
                : xdp_program__detach_multi(ours.data(), ours.size(), ifindex, XDP_MODE_UNSPEC, 0);
  if (err)
    return Error{err < 0 ? -err : err,
                 fmt::format("detach {} from {}: {}", kXdpProgName, ifname, xdpStrerror(err))};
  return {};
}

struct ObjectClose {
  void operator()(bpf_object* o) const { bpf_object__close(o); }
};
using ObjectPtr = std::unique_ptr<bpf_object, ObjectClose>;

// libxdp loads an XDP program itself, as an freplace extension of its
// dispatcher, so the skeleton's (XDP-typed) svclb_xdp_lb cannot be handed
// over. This opens a second copy of the same embedded ELF whose maps are all
// the skeleton's by fd (pinned ones, and .data/.rodata/.bss so the config
// written after load is shared) and whose only program to load is
// svclb_xdp_lb.
Result<ObjectPtr> openXdpExtObject(::svclb_bpf* skel) {
  size_t size = 0;
  const void* elf = svclb_bpf__elf_bytes(&size);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = bpf_object__name(skel->obj));
  ObjectPtr obj(bpf_object__open_mem(elf, size, &opts));
  if (!obj) return Error::fromErrno(errno, "open the BPF object for libxdp");
  // Same ELF, same map order: pair them up, checking the names.
  bpf_map* mine = bpf_object__next_map(skel->obj, nullptr);
  for (bpf_map* m = bpf_object__next_map(obj.get(), nullptr); m;
       m = bpf_object__next_map(obj.get(), m)) {
    if (!mine || std::strcmp(bpf_map__name(m), bpf_map__name(mine)) != 0 || bpf_map__fd(mine) < 0)
      return Error{EINVAL, fmt::format("map {} of the BPF object for libxdp has no loaded twin",
                                       bpf_map__name(m))};
    // Without a pin path libbpf neither adopts nor pins by name (its
    // default root would be /sys/fs/bpf itself): the fd decides.
    bpf_map__set_pin_path(m, nullptr);
    if (int err = bpf_map__reuse_fd(m, bpf_map__fd(mine)); err)
      return Error::fromErrno(err,
                              fmt::format("share map {} with the XDP program", bpf_map__name(m)));
    mine = bpf_object__next_map(skel->obj, mine);
  }
  bpf_program* p = nullptr;
  while ((p = bpf_object__next_program(obj.get(), p)))
    bpf_program__set_autoload(p, std::strcmp(bpf_program__name(p), kXdpProgName) == 0);
  return obj;
}

// One attach of svclb_xdp_lb through libxdp in the given mode, from a fresh
// object (a failed attempt may leave its object loaded for another target).
Status attachXdpOnce(::svclb_bpf* skel, int ifindex, XdpMode mode) {
  auto obj = openXdpExtObject(skel);
  if (!obj) return obj.error();
  DECLARE_LIBXDP_OPTS(xdp_program_opts, xo, .obj = obj->get(), .prog_name = kXdpProgName);
  xdp_program* prog = xdp_program__create(&xo);
  if (!prog || libxdp_get_error(prog)) {
    int err = prog ? static_cast<int>(libxdp_get_error(prog)) : -errno;
    return Error{err < 0 ? -err : EINVAL,
                 "libxdp: program " + std::string(kXdpProgName) + ": " + xdpStrerror(err)};
  }
  int err = xdp_program__attach(prog, ifindex,
                                mode == XdpMode::Native ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
  // The dispatcher's pins under <bpffs>/xdp keep the program attached.
  xdp_program__close(prog);
  if (err) return Error{err < 0 ? -err : err, xdpStrerror(err)};
  return {};
}

// Degraded mode, only on an interface without any XDP program: the
// skeleton's own (XDP-typed) svclb_xdp_lb attached without a dispatcher,
// when libxdp's dispatcher refuses it. Other programs cannot join then.
Status attachXdpDirect(::svclb_bpf* skel, int ifindex, XdpMode mode) {
  const uint32_t flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
                         (mode == XdpMode::Native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
  if (int err = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.svclb_xdp_lb), flags, nullptr);
      err)
    return Error::fromErrno(err, "attach without the dispatcher");
  return {};
}

// Why libxdp's dispatcher would not take our program, in plain words.
std::string dispatcherRefusal(const std::string& messages, const std::string& fallback) {
  // Kernels since 6.13 (and 6.12.26) refuse an freplace program that
  // resizes packets (bpf_xdp_adjust_head/tail) in place of a function that
  // does not; libxdp before xdp-tools PR #509 (2025) has such a dispatcher.
  if (messages.find("changes packet data, while original does not") != std::string::npos)
    return "this kernel refuses packet-resizing programs inside the dispatcher of this libxdp "
           "version; a libxdp with the 2025 dispatcher fix (xdp-tools PR #509) lifts it";
  if (messages.find("Operation not permitted") != std::string::npos)
    return "this kernel refuses freplace programs (EPERM), which the dispatcher needs";
  return fallback.empty() ? "see the libbpf messages above" : fallback;
}

Status attachTcProg(const std::string& ifname, int progFd,
                    bpf_tc_attach_point where = BPF_TC_INGRESS) {
  int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error::fromErrno(errno, "interface " + ifname);
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return Error::fromErrno(err, "create clsact qdisc on " + ifname);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd, .flags = BPF_TC_F_REPLACE, .handle = kTcHandle,
              .priority = kTcPriority);
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    return Error::fromErrno(
        err,
        fmt::format("attach tc {} on {}", where == BPF_TC_EGRESS ? "egress" : "ingress", ifname));
  return {};
}

// Removes svclb's tc filters (ours by handle/priority AND program name) from
// both hooks of `ifindex`. Returns whether there was one; an error if one of
// ours stayed attached.
Result<bool> detachOurTc(int ifindex, const std::string& ifname) {
  bool any = false;
  for (bpf_tc_attach_point where : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = kTcHandle, .priority = kTcPriority);
    if (bpf_tc_query(&hook, &q) != 0) continue;
    if (progNameById(q.prog_id).rfind("svclb_", 0) != 0) continue;
    LIBBPF_OPTS(bpf_tc_opts, d, .handle = kTcHandle, .priority = kTcPriority);
    if (int err = bpf_tc_detach(&hook, &d); err)
      return Error::fromErrno(err,
                              fmt::format("detach svclb's tc {} program from {}",
                                          where == BPF_TC_EGRESS ? "egress" : "ingress", ifname));
    any = true;
  }
  return any;
}

const char* hookName(bool egress) { return egress ? "egress" : "ingress"; }

std::string tcxPinPath(const DataplaneConfig& cfg, int ifindex, const std::string& ifname,
                       bool egress) {
  return fmt::format("{}/{}-{}-{}", tcxDir(cfg), ifindex, ifname, hookName(egress));
}

// A pin under tcxDir, its name parsed (ifname may hold '-').
struct TcxPin {
  std::string path, name, ifname;
  int ifindex = 0;
  bool egress = false;
};

std::vector<TcxPin> tcxPins(const DataplaneConfig& cfg) {
  std::vector<TcxPin> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tcxDir(cfg), ec)) {
    TcxPin p;
    p.path = e.path().string();
    p.name = e.path().filename().string();
    const auto first = p.name.find('-'), last = p.name.rfind('-');
    if (first == std::string::npos || last <= first) continue;  // not ours
    const std::string hook = p.name.substr(last + 1);
    if (hook != "ingress" && hook != "egress") continue;
    try {
      p.ifindex = std::stoi(p.name.substr(0, first));
    } catch (const std::exception&) {
      continue;
    }
    p.ifname = p.name.substr(first + 1, last - first - 1);
    p.egress = hook == "egress";
    out.push_back(std::move(p));
  }
  return out;
}

// What the kernel says of a tcx link: ifindex 0 once its interface is gone
// (the link stays, detached, while a pin holds it).
struct TcxLinkInfo {
  uint32_t id = 0, progId = 0;
  int ifindex = 0;
  bool egress = false;
};

std::optional<TcxLinkInfo> tcxLinkInfo(int fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0 || info.type != kLinkTypeTcx)
    return std::nullopt;
  // The 6.1 header's union has no `tcx` member: it is {__u32 ifindex;
  // __u32 attach_type;} at the union's start.
  struct {
    uint32_t ifindex, attachType;
  } tcx;
  static_assert(sizeof(tcx) <= sizeof(info.raw_tracepoint));
  std::memcpy(&tcx, &info.raw_tracepoint, sizeof(tcx));
  return TcxLinkInfo{info.id, info.prog_id, static_cast<int>(tcx.ifindex),
                     tcx.attachType == static_cast<uint32_t>(kTcxEgress)};
}

// The link pinned at `path` if it is attached to `ifindex` on that hook
// (an fd to close), else -1.
int openLiveTcx(const std::string& path, int ifindex, bool egress) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return -1;
  auto info = tcxLinkInfo(fd);
  if (info && info->ifindex == ifindex && info->egress == egress) return fd;
  close(fd);
  return -1;
}

// Our program on one hook of `ifindex` as a pinned tcx link. A link of an
// earlier run (pinned under this ifindex, whatever the interface was called
// then) gets the program with bpf_link_update: no moment without one. Pins
// under this name whose link is on no interface any more (an interface of
// that name deleted; this one is another) and a second live link on the
// hook are removed.
Status attachTcx(const DataplaneConfig& cfg, const std::string& ifname, int ifindex, int progFd,
                 bool egress) {
  const std::string path = tcxPinPath(cfg, ifindex, ifname, egress);
  int live = -1;
  std::string livePath;
  for (const auto& pin : tcxPins(cfg)) {
    if (pin.egress != egress || (pin.ifindex != ifindex && pin.ifname != ifname)) continue;
    int fd = openLiveTcx(pin.path, ifindex, egress);
    if (fd >= 0 && live < 0) {
      live = fd;
      livePath = pin.path;
      continue;
    }
    if (fd >= 0) close(fd);
    if (unlink(pin.path.c_str()) != 0 && errno != ENOENT)
      return Error::fromErrno(errno, "remove the stale tcx link pin " + pin.path);
  }
  if (live >= 0) {
    int err = bpf_link_update(live, progFd, nullptr);
    if (!err && livePath != path) {  // the interface was renamed: the pin follows
      err = bpf_obj_pin(live, path.c_str());
      if (!err) unlink(livePath.c_str());
    }
    close(live);
    if (err)
      return Error::fromErrno(err, fmt::format("update svclb's tcx {} link on {} ({})",
                                               hookName(egress), ifname, livePath));
    return {};
  }
  std::error_code ec;
  fs::create_directories(tcxDir(cfg), ec);
  if (ec) return Error{ec.value(), fmt::format("create {}: {}", tcxDir(cfg), ec.message())};
  int fd = bpf_link_create(progFd, ifindex, egress ? kTcxEgress : kTcxIngress, nullptr);
  if (fd < 0)
    return Error::fromErrno(fd, fmt::format("attach tcx {} on {}", hookName(egress), ifname));
  int err = bpf_obj_pin(fd, path.c_str());
  close(fd);  // the pin holds the link; without one, closing detached it
  if (err) return Error::fromErrno(err, "pin tcx link " + path);
  return {};
}

// Removes the pins of svclb's tcx links on `ifindex` (unpinning the last
// reference detaches a link). Returns whether there was one.
Result<bool> detachOurTcx(const DataplaneConfig& cfg, int ifindex) {
  bool any = false;
  for (const auto& pin : tcxPins(cfg)) {
    if (pin.ifindex != ifindex) continue;
    if (unlink(pin.path.c_str()) != 0 && errno != ENOENT)
      return Error::fromErrno(errno, "remove tcx link pin " + pin.path);
    any = true;
  }
  return any;
}

// svclb's live tcx link on one hook of `ifindex`, if any.
std::optional<TcxLinkInfo> tcxOn(const DataplaneConfig& cfg, int ifindex, bool egress) {
  for (const auto& pin : tcxPins(cfg)) {
    if (pin.ifindex != ifindex || pin.egress != egress) continue;
    int fd = openLiveTcx(pin.path, ifindex, egress);
    if (fd < 0) continue;
    auto info = tcxLinkInfo(fd);
    close(fd);
    return info;
  }
  return std::nullopt;
}

// What is attached on one hook: "tcx" (a live pinned link), "legacy" (our
// cls_bpf filter) or "none"; the program id, the link id (tcx).
struct TcHookState {
  const char* attach = "none";
  uint32_t progId = 0, linkId = 0;
};

TcHookState tcHookState(const DataplaneConfig& cfg, int ifindex, bool egress) {
  if (auto l = tcxOn(cfg, ifindex, egress)) return {"tcx", l->progId, l->id};
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
              .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
  LIBBPF_OPTS(bpf_tc_opts, q, .handle = kTcHandle, .priority = kTcPriority);
  if (bpf_tc_query(&hook, &q) == 0 && q.prog_id) return {"legacy", q.prog_id, 0};
  return {};
}

// libxdp's bpffs dir: $LIBXDP_BPFFS (else /sys/fs/bpf) + /xdp.
std::string libxdpDir() {
  const char* env = getenv(XDP_BPFFS_ENVVAR);
  return std::string(env && *env ? env : "/sys/fs/bpf") + "/xdp";
}

// The kernel adds BPF_F_RDONLY_PROG to every devmap it creates (and refuses
// it at creation), so libbpf 1.1, comparing flags, refuses to adopt our own
// pinned devmap on restart. We adopt it here after checking what matters,
// and take the pin path away so libbpf neither compares nor re-pins.
// No pin yet: libbpf creates and pins it as usual.
Status adoptPinnedDevmap(bpf_map* m, const std::string& pin) {
  int fd = bpf_obj_get(pin.c_str());
  if (fd < 0) return {};
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  const bool same = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == bpf_map__type(m) &&
                    info.key_size == bpf_map__key_size(m) &&
                    info.value_size == bpf_map__value_size(m) &&
                    info.max_entries == bpf_map__max_entries(m);
  int err = same ? bpf_map__reuse_fd(m, fd) : 0;  // reuse_fd keeps a dup
  close(fd);
  if (!same)
    return Error{
        EINVAL,
        fmt::format("pinned map {} does not match this build (remove it with svclbd --uninstall)",
                    pin)};
  if (err) return Error::fromErrno(err, "adopt pinned map " + pin);
  bpf_map__set_pin_path(m, nullptr);
  return {};
}

uint64_t cgroupIdOf(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return 0;
  return st.st_ino;  // on cgroup2 the inode number is the cgroup id
}

}  // namespace

const char* xdpModeName(XdpMode m) { return m == XdpMode::Native ? "native" : "generic"; }

const char* externalDatapathName(ExternalDatapath d) {
  switch (d) {
    case ExternalDatapath::Xdp:
      return "xdp";
    case ExternalDatapath::Tc:
      return "tc";
    case ExternalDatapath::Auto:
      break;
  }
  return "auto";
}

const char* socketLbName(SocketLb m) {
  switch (m) {
    case SocketLb::Node:
      return "node";
    case SocketLb::None:
      return "none";
    case SocketLb::All:
      break;
  }
  return "all";
}

std::optional<SocketLb> parseSocketLb(const std::string& s) {
  if (s == "all") return SocketLb::All;
  if (s == "node") return SocketLb::Node;
  if (s == "none") return SocketLb::None;
  return std::nullopt;
}

const char* tcAttachName(TcAttach m) {
  switch (m) {
    case TcAttach::Tcx:
      return "tcx";
    case TcAttach::Legacy:
      return "legacy";
    case TcAttach::Auto:
      break;
  }
  return "auto";
}

std::optional<TcAttach> parseTcAttach(const std::string& s) {
  for (auto m : {TcAttach::Auto, TcAttach::Tcx, TcAttach::Legacy})
    if (s == tcAttachName(m)) return m;
  return std::nullopt;
}

std::optional<ExternalDatapath> parseExternalDatapath(const std::string& s) {
  for (auto d : {ExternalDatapath::Auto, ExternalDatapath::Xdp, ExternalDatapath::Tc})
    if (s == externalDatapathName(d)) return d;
  return std::nullopt;
}

namespace {

// The kernel driver of a NIC in this network namespace (ETHTOOL_GDRVINFO;
// /sys/class/net would show the namespace /sys was mounted in), "" if unknown.
std::string nicDriver(const std::string& ifname) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return {};
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  const int rc = ioctl(s, SIOCETHTOOL, &ifr);
  close(s);
  return rc == 0 ? std::string(info.driver) : std::string();
}

// The datapath a NIC gets, and why (shown by svcctl status).
std::pair<ExternalDatapath, std::string> chooseDatapath(ExternalDatapath wanted,
                                                        const std::string& ifname) {
  if (wanted == ExternalDatapath::Tc) return {wanted, "--external-datapath tc"};
  if (wanted == ExternalDatapath::Xdp) return {wanted, "--external-datapath xdp"};
  const std::string driver = nicDriver(ifname);
  if (driver == "veth")
    return {ExternalDatapath::Tc,
            "veth: XDP_TX/redirect out of it needs XDP on the peer, and XDP cannot see the "
            "checksum state of the skbs the peer hands over"};
  return {ExternalDatapath::Xdp, driver.empty() ? "driver unknown" : "driver " + driver};
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
  struct statfs sfs {};
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
  if (sockIter_) bpf_link__destroy(sockIter_);
  flowFilter_.reset();
  // Those programs outlive us: nobody will read their event ring.
  if (skel_) setMonitor(false);
  if (skel_) svclb_bpf__destroy(skel_);
}

Result<std::unique_ptr<Dataplane>> Dataplane::load(const DataplaneConfig& cfg) {
  libbpf_set_print(libbpfPrint);
  libxdp_set_print(libxdpPrint);
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
  s->rodata->cfg_sock_lb = cfg.socketLb == SocketLb::All ? SVCLB_SOCK_LB_ALL : SVCLB_SOCK_LB_NODE;
  s->rodata->cfg_tc_csum_helpers = cfg.testTcCsumHelpers ? 1 : 0;
  s->rodata->cfg_local_redirect = cfg.benchLocalRedirect ? 1 : 0;
  bpf_map__set_max_entries(s->maps.svc_v1, cfg.maxServiceEntries);
  bpf_map__set_max_entries(s->maps.backends_v1, cfg.maxBackends);
  const auto beStride = static_cast<uint32_t>(possibleCpus());
  s->rodata->cfg_be_stride = beStride;
  bpf_map__set_max_entries(s->maps.be_stats_v2, cfg.maxBackends * beStride);
  bpf_map__set_max_entries(s->maps.svc_stats_v2, cfg.maxSvcIds);
  bpf_map__set_max_entries(s->maps.ct_v2, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.ct_est_v2, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.maglev_v1, cfg.maxSvcIds);
  bpf_map__set_max_entries(s->maps.affinity_v1, cfg.maxAffinityEntries);
  bpf_map__set_max_entries(s->maps.svc6_v1, cfg.maxServiceEntries);
  bpf_map__set_max_entries(s->maps.backend6_v1, cfg.maxBackends);
  bpf_map__set_max_entries(s->maps.be_rev_v1, cfg.maxBackends);
  bpf_map__set_max_entries(s->maps.be_rev6_v1, cfg.maxBackends);
  bpf_map__set_max_entries(s->maps.ct6_v1, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.ct6_est_v1, cfg.maxCtEntries);
  bpf_map__set_max_entries(s->maps.affinity6_v1, cfg.maxAffinityEntries);
  if (cfg.pin)
    if (auto st = adoptPinnedDevmap(s->maps.tx_ports_v1, cfg.bpffs + "/" + SVCLB_MAP_TX_PORTS); !st)
      return st.error();
  if (!cfg.pin)
    for (bpf_map* m = bpf_object__next_map(s->obj, nullptr); m; m = bpf_object__next_map(s->obj, m))
      bpf_map__set_pin_path(m, nullptr);
  // An earlier build's pins without be_stats_v2 (its owners are written
  // below, before any program of this build runs).
  std::error_code pinEc;
  const bool freshBeSlots = !cfg.pin || !fs::exists(cfg.bpffs + "/" + SVCLB_MAP_BE_STATS, pinEc);
  if (int err = svclb_bpf__load(s); err != 0)
    return Error::fromErrno(err,
                            fmt::format("load BPF programs (pinned maps under {} that do not match "
                                        "this build or the --max-* sizes are refused)",
                                        cfg.bpffs));
  {
    auto m = BackendSlotsMapping::open(bpf_map__fd(s->maps.be_stats_v2), cfg.maxBackends, beStride);
    if (!m) return m.error();
    dp->beSlots_ = std::move(*m);
  }
  // Before the IPv6 halves below enter the running programs' pinned
  // arrays: from then on programs of this build run.
  if (freshBeSlots && cfg.pin)
    if (auto st = dp->adoptBackendSlots(); !st) return st.error();
  // lb_filter_v1 all ones until the Syncer's adopt() writes the bitmap of
  // what the maps hold: meanwhile every packet takes the full path. A
  // restart from a build without this map (a new, empty one) would
  // otherwise pass Service packets untranslated in between, from the moment
  // the IPv6 halves below enter the running programs' pinned arrays.
  {
    std::vector<uint32_t> words(2 * SVCLB_FILTER_WORDS);
    for (uint32_t i = 0; i < words.size(); ++i) words[i] = i;
    const std::vector<uint64_t> ones(words.size(), ~uint64_t{0});
    if (auto st = dp->lbFilter().updateBatch(words, ones); !st) return st.error();
  }
  // The entry programs' IPv6 halves (tail calls: bpf/lib/maps.h tail_progs).
  {
    const struct {
      bpf_map* map;
      bpf_program* prog;
    } halves[] = {{s->maps.tail_progs, s->progs.svclb_tc_pod_in6},
                  {s->maps.tail_ext6, s->progs.svclb_tc_ext_in6},
                  {s->maps.tail_xdp6, s->progs.svclb_xdp_lb6}};
    for (const auto& h : halves) {
      uint32_t slot = SVCLB_TAIL_V6;
      int fd = bpf_program__fd(h.prog);
      if (bpf_map_update_elem(bpf_map__fd(h.map), &slot, &fd, BPF_ANY) != 0)
        return Error::fromErrno(
            errno, fmt::format("install the IPv6 program {} ({})", bpf_program__name(h.prog),
                               bpf_map__name(h.map)));
    }
  }
  if (auto st = dp->setCtLifetimes(); !st) return st.error();
  if (auto st = dp->resolveTcAttach(); !st) return st.error();
  {
    Dataplane* d = dp.get();
    auto ff = FlowFilter::open(
        bpf_map__fd(s->maps.flow_filter_v1),
        {d->conntrack(), d->conntrackEst(), d->conntrack6(), d->conntrack6Est(), d->ctLife_.tcp,
         d->ctLife_.nontcp, d->ctLife_.closing, [d] { return d->jiffies(); }});
    if (!ff) return ff.error();
    dp->flowFilter_ = std::move(*ff);
  }
  if (cfg.pin) {
    std::error_code ec;
    for (const char* m : kRetiredMaps) std::filesystem::remove(cfg.bpffs + "/" + m, ec);
  }
  return dp;
}

// A new be_stats_v2 beside an earlier build's pinned backends: every live
// backend's owner (else the programs would take its flows' CT entries for
// stale ones) and the counts its be_stats_v1 held.
Status Dataplane::adoptBackendSlots() {
  auto slots = backendStats();
  std::optional<StatsMap> old;
  int oldFd = bpf_obj_get((cfg_.bpffs + "/be_stats_v1").c_str());
  if (oldFd >= 0) old.emplace(oldFd, "be_stats_v1");
  Status st;
  auto rd = backends().forEachBatch([&](const uint32_t& id, const backend_value& v) {
    if (!st || v.state == BE_STATE_EMPTY || id == 0) return;
    st = slots.own(id, v.svc_id);
    if (st && old) st = slots.add(id, old->lookup(id));
  });
  if (oldFd >= 0) close(oldFd);
  if (!rd) return Error::fromErrno(rd.error().code, "read backends map");
  return st;
}

Result<uint64_t> Dataplane::jiffies() const {
  uint8_t frame[64] = {};
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = sizeof(frame), .repeat = 1);
  if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.svclb_probe_jiffies), &o) != 0)
    return Error::fromErrno(errno, "run the jiffies probe");
  return static_cast<uint64_t>(skel_->bss->probe_jiffies);
}

Result<uint64_t> Dataplane::destroyUdpSockets(const std::vector<sock_destroy_key>& targets,
                                              const std::vector<sock_destroy6_key>& targets6) {
  if (targets.empty() && targets6.empty()) return uint64_t{0};
  if (!sockIter_) {
    sockIter_ = bpf_program__attach_iter(skel_->progs.svclb_sock_destroy_udp, nullptr);
    if (!sockIter_) {
      int err = errno;
      sockIter_ = nullptr;
      return Error::fromErrno(err, "attach the UDP socket iterator (svclb_sock_destroy_udp)");
    }
  }
  const int mapFd = bpf_map__fd(skel_->maps.sock_destroy_v1);
  const int mapFd6 = bpf_map__fd(skel_->maps.sock_destroy6_v1);
  const uint64_t before = skel_->bss->sock_destroyed;
  const size_t total = std::max(targets.size(), targets6.size());
  for (size_t at = 0; at < total; at += SVCLB_SOCK_DESTROY_ENTRIES) {
    const size_t end = std::min(targets.size(), at + SVCLB_SOCK_DESTROY_ENTRIES);
    const size_t end6 = std::min(targets6.size(), at + SVCLB_SOCK_DESTROY_ENTRIES);
    const uint32_t one = 1;
    Status st;
    for (size_t i = at; i < end && st; ++i)
      if (bpf_map_update_elem(mapFd, &targets[i], &one, BPF_ANY) != 0)
        st = Error::fromErrno(errno, "fill sock_destroy_v1");
    for (size_t i = at; i < end6 && st; ++i)
      if (bpf_map_update_elem(mapFd6, &targets6[i], &one, BPF_ANY) != 0)
        st = Error::fromErrno(errno, "fill sock_destroy6_v1");
    if (st) {
      // Reading the iterator runs the program over every UDP socket.
      int fd = bpf_iter_create(bpf_link__fd(sockIter_));
      if (fd < 0) {
        st = Error::fromErrno(errno, "create a UDP socket iterator");
      } else {
        char buf[256];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
        }
        if (n < 0) st = Error::fromErrno(errno, "run the UDP socket iterator");
        close(fd);
      }
    }
    for (size_t i = at; i < end; ++i) bpf_map_delete_elem(mapFd, &targets[i]);  // absent: fine
    for (size_t i = at; i < end6; ++i) bpf_map_delete_elem(mapFd6, &targets6[i]);
    if (!st) return st.error();
  }
  return skel_->bss->sock_destroyed - before;
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
  ctLife_ = {cachedHz, ticks(CT_LIFETIME_TCP_SECS, cachedHz),
             ticks(CT_LIFETIME_NONTCP_SECS, cachedHz), ticks(CT_LIFETIME_CLOSING_SECS, cachedHz)};
  skel_->data->cfg_ct_life_tcp = ctLife_.tcp;
  skel_->data->cfg_ct_life_nontcp = ctLife_.nontcp;
  skel_->data->cfg_ct_life_closing = ctLife_.closing;
  return {};
}

// tcx where the kernel has it: a tcx link of svclb_tc_pod_out asked for on
// ifindex 0 is refused with ENODEV by a kernel that knows tcx (the
// interface is looked up last), with EINVAL by one that does not (the
// attach type is unknown). Nothing is attached either way.
Status Dataplane::resolveTcAttach() {
  if (cfg_.tcAttach == TcAttach::Legacy) {
    tcMode_ = TcAttach::Legacy;
    tcReason_ = "--tc-attach legacy";
    return {};
  }
  int err = 0;
  // Test only (tests/e2e/restart.sh): the probe answers as a kernel
  // before 6.6 would.
  if (const char* e = std::getenv("SVCLB_TEST_NO_TCX"); e && std::string_view(e) == "1") {
    fmt::print(stderr, "svclbd: test knob SVCLB_TEST_NO_TCX=1: the tcx probe answers EINVAL\n");
    err = -EINVAL;
  } else {
    int fd =
        bpf_link_create(bpf_program__fd(skel_->progs.svclb_tc_pod_out), 0, kTcxIngress, nullptr);
    if (fd >= 0) close(fd);  // cannot happen (no interface 0); detached by the close
    err = fd >= 0 ? -ENODEV : fd;
  }
  if (err == -ENODEV) {
    tcMode_ = TcAttach::Tcx;
    tcReason_ = cfg_.tcAttach == TcAttach::Tcx ? "--tc-attach tcx" : "the kernel has tcx links";
    return {};
  }
  utsname u{};
  uname(&u);
  const std::string why =
      err == -EINVAL || err == -EOPNOTSUPP
          ? fmt::format(
                "this kernel ({}) has no tcx links (Linux 6.6 and later have them: "
                "a tcx link create was refused: {})",
                u.release, std::strerror(-err))
          : fmt::format("a tcx link create probe failed on this kernel ({}): {}", u.release,
                        std::strerror(-err));
  if (cfg_.tcAttach == TcAttach::Tcx)
    return Error{-err, "--tc-attach tcx: " + why +
                           "; --tc-attach auto or legacy attaches "
                           "through the legacy clsact/cls_bpf filters"};
  tcMode_ = TcAttach::Legacy;
  tcReason_ = "auto fell back to legacy: " + why;
  return {};
}

Status Dataplane::attachTcHook(const std::string& ifname, int ifindex, int progFd, bool egress) {
  if (tcMode_ == TcAttach::Tcx) return attachTcx(cfg_, ifname, ifindex, progFd, egress);
  return attachTcProg(ifname, progFd, egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
}

// After ours of this mode are attached: tcx links run before every legacy
// filter, so while both are there the link translates (an upgrade); a
// legacy filter is in place before a link goes (a downgrade).
Status Dataplane::removeOtherTcMode(const std::string& ifname, int ifindex) {
  if (tcMode_ == TcAttach::Tcx) {
    auto r = detachOurTc(ifindex, ifname);
    return r ? Status{} : Status{r.error()};
  }
  auto r = detachOurTcx(cfg_, ifindex);
  return r ? Status{} : Status{r.error()};
}

Status Dataplane::attachTc(const std::string& ifname) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error::fromErrno(errno, "interface " + ifname);
  if (auto st = attachTcHook(ifname, ifindex, bpf_program__fd(skel_->progs.svclb_tc_pod_in), false);
      !st)
    return st;
  // Egress: ICMP errors the node sends about translated packets (lib/icmp.h).
  if (auto st = attachTcHook(ifname, ifindex, bpf_program__fd(skel_->progs.svclb_tc_pod_out), true);
      !st)
    return st;
  if (auto st = removeOtherTcMode(ifname, ifindex); !st) return st;
  if (std::find(tcIfaces_.begin(), tcIfaces_.end(), ifname) == tcIfaces_.end())
    tcIfaces_.push_back(ifname);
  return {};
}

Status Dataplane::interfaceRemoved(const std::string& ifname) {
  const int now = static_cast<int>(if_nametoindex(ifname.c_str()));  // 0: none of that name
  Status result;
  for (const auto& pin : tcxPins(cfg_)) {
    if (pin.ifname != ifname || pin.ifindex == now) continue;
    if (unlink(pin.path.c_str()) != 0 && errno != ENOENT && result)
      result = Error::fromErrno(errno, "remove tcx link pin " + pin.path);
  }
  if (now == 0) std::erase(tcIfaces_, ifname);
  return result;
}

Status Dataplane::attachExternal(const std::string& ifname) {
  const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (ifindex == 0)
    return Error{
        ENODEV,
        fmt::format("external interface {}: no such interface in this network namespace", ifname)};
  if (auto st = ensureBpffs(libxdpDir()); !st) return st.error();
  // Refused before anything is attached: an XDP program that is not in a
  // libxdp dispatcher (and not ours) cannot share the interface.
  if (Multiprog mp = multiprogOf(ifindex); mp && xdp_multiprog__is_legacy(mp.get())) {
    const xdp_program* main = xdp_multiprog__main_prog(mp.get());
    if (!isOurXdp(main))
      return Error{
          EBUSY, fmt::format("{} already has XDP program {} (id {}) attached directly, not through "
                             "libxdp's multi-program dispatcher, so svclb cannot run beside it; "
                             "reload it with xdp-loader, or unload it",
                             ifname, xdp_program__name(main), xdp_program__id(main))};
  }
  // tc first: it is the slow path that translates whatever XDP passes up
  // untranslated, including everything while the dispatcher is rebuilt.
  if (auto st = attachTcHook(ifname, ifindex, bpf_program__fd(skel_->progs.svclb_tc_ext_in), false);
      !st)
    return st;
  if (auto st = removeOtherTcMode(ifname, ifindex); !st) return st;
  const uint32_t idx = static_cast<uint32_t>(ifindex);
  if (auto st = txPorts().update(idx, idx); !st) return st;

  // Our program of an earlier run goes first: libxdp adds a program to the
  // dispatcher, it cannot swap one, and two copies would both run.
  if (auto st = detachOurXdp(ifindex, ifname); !st) return st;
  auto [datapath, why] = chooseDatapath(cfg_.externalDatapath, ifname);
  auto record = [&](ExternalAttachment rec) {
    rec.datapath = datapath;
    rec.why = why;
    auto it = std::find_if(extIfaces_.begin(), extIfaces_.end(),
                           [&](const auto& e) { return e.ifname == ifname; });
    if (it == extIfaces_.end())
      extIfaces_.push_back(std::move(rec));
    else
      *it = std::move(rec);
  };
  if (datapath == ExternalDatapath::Tc) {  // svclb_tc_ext_in does it all
    if (nicXdp().lookup(idx)) {
      if (auto st = nicXdp().erase(idx); !st) return st;
    }
    ExternalAttachment rec;
    rec.ifname = ifname;
    rec.ifindex = ifindex;
    record(std::move(rec));
    return {};
  }
  // Marked before XDP runs: from then on tc sees packets XDP translated.
  if (auto st = nicXdp().update(idx, 1); !st) return st;
  // A dispatcher left with other programs fixes the mode; on an interface
  // without XDP we may also attach directly if the dispatcher fails.
  std::vector<XdpMode> modes = {XdpMode::Native, XdpMode::Generic};
  Multiprog others = multiprogOf(ifindex);
  if (others && xdp_multiprog__attach_mode(others.get()) != XDP_MODE_UNSPEC)
    modes = {modeOf(others.get())};
  std::string failures, messages, viaDispatcher;
  for (size_t i = 0; i < modes.size(); ++i) {
    gXdpCapture = &messages;
    Status st = attachXdpOnce(skel_, ifindex, modes[i]);
    bool direct = false;
    if (!st && !others) {
      viaDispatcher = st.error().message;
      Status d = attachXdpDirect(skel_, ifindex, modes[i]);
      direct = static_cast<bool>(d);
      if (!d)
        st = Error{d.error().code, st.error().message + "; " + d.error().message};
      else
        st = d;
    }
    gXdpCapture = nullptr;
    if (!st) {
      failures += fmt::format("{}{} mode: {}", failures.empty() ? "" : "; ", xdpModeName(modes[i]),
                              st.error().message);
      continue;
    }
    if (i > 0)
      fmt::print(stderr, "svclbd: {}: native XDP failed ({}); attached in generic mode\n", ifname,
                 failures);
    if (direct)
      fmt::print(stderr,
                 "svclbd: {}: WARNING: libxdp's dispatcher refused {} ({}); attached it directly "
                 "instead, so no other XDP program can share {}\n",
                 ifname, kXdpProgName, dispatcherRefusal(messages, viaDispatcher), ifname);
    else if (Multiprog mp = multiprogOf(ifindex); mp && xdp_multiprog__is_legacy(mp.get()))
      fmt::print(stderr,
                 "svclbd: {}: WARNING: libxdp could not load its dispatcher on this kernel; {} is "
                 "attached alone, so no other XDP program can share {}\n",
                 ifname, kXdpProgName, ifname);
    ExternalAttachment rec;
    rec.ifname = ifname;
    rec.ifindex = ifindex;
    rec.xdpMode = modes[i];
    record(std::move(rec));
    return {};
  }
  fputs(messages.c_str(), stderr);
  (void)nicXdp().erase(idx);  // no XDP after all; the attach error is what counts
  return Error{EINVAL,
               fmt::format("attach {} to {}: {}{}", kXdpProgName, ifname, failures,
                           others ? fmt::format(" ({})", dispatcherRefusal(messages, "")) : "")};
}

Status Dataplane::attachCgroup() {
  if (cfg_.socketLb == SocketLb::None) {
    // Pinned links of an earlier run with the hooks on: unpinned, so the
    // kernel detaches them (nothing else holds them).
    std::error_code ec;
    for (const auto& hook : kCgroupHooks) fs::remove(linksDir(cfg_) + "/" + hook.name, ec);
    fs::remove(linksDir(cfg_), ec);
    return {};
  }
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
      result =
          Error::fromErrno(errno, fmt::format("attach {} to cgroup {}", hook.name, cfg_.cgroup));
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

StaleRemoval Dataplane::removeStale(const std::function<bool(const std::string&)>& keep) {
  std::vector<std::pair<int, std::string>> others;
  if (struct if_nameindex* ifs = if_nameindex()) {
    for (auto* i = ifs; i->if_index; ++i)
      if (!keep(i->if_name)) others.emplace_back(static_cast<int>(i->if_index), i->if_name);
    if_freenameindex(ifs);
  }
  StaleRemoval out;
  // Every interface is tried, whatever failed on another one.
  for (const auto& [ifindex, name] : others) {
    auto step = [&]() -> Result<bool> {
      auto tc = detachOurTc(ifindex, name);
      if (!tc) return tc.error();
      auto tcx = detachOurTcx(cfg_, ifindex);
      if (!tcx) return tcx.error();
      Multiprog mp = multiprogOf(ifindex);
      const bool xdp = mp && !ourXdpPrograms(mp.get()).empty();
      if (xdp)
        if (auto st = detachOurXdp(ifindex, name); !st) return st.error();
      const uint32_t idx = static_cast<uint32_t>(ifindex);
      bool maps = false;
      if (txPorts().lookup(idx)) {
        if (auto st = txPorts().erase(idx); !st) return st.error();
        maps = true;
      }
      if (nicXdp().lookup(idx)) {
        if (auto st = nicXdp().erase(idx); !st) return st.error();
        maps = true;
      }
      return *tc || *tcx || xdp || maps;
    };
    if (auto r = step(); !r)
      out.failed.push_back({name, r.error().message});
    else if (*r)
      out.cleaned.push_back(name);
  }
  // Pinned tcx links whose interface is gone (deleted while no svclbd
  // watched): the kernel detached them, the pins go.
  for (const auto& pin : tcxPins(cfg_)) {
    char name[IF_NAMESIZE] = {};
    const bool exists = if_indextoname(static_cast<unsigned>(pin.ifindex), name) != nullptr;
    int fd = exists ? openLiveTcx(pin.path, pin.ifindex, pin.egress) : -1;
    if (fd >= 0) {
      close(fd);
      continue;  // a live link: its interface was dealt with above
    }
    if (unlink(pin.path.c_str()) != 0 && errno != ENOENT)
      out.failed.push_back(
          {pin.ifname, fmt::format("remove tcx link pin {}: {}", pin.path, std::strerror(errno))});
    else
      out.gonePins.push_back(pin.name);
  }
  return out;
}

Status Dataplane::uninstall(const DataplaneConfig& cfg) {
  libbpf_set_print(libbpfPrint);
  libxdp_set_print(libxdpPrint);
  struct if_nameindex* ifs = if_nameindex();
  Status result;
  for (auto* i = ifs; i && i->if_index; ++i)
    if (auto r = detachOurTc(static_cast<int>(i->if_index), i->if_name); !r && result)
      result = r.error();
  // XDP: ours out of every dispatcher, the other programs stay.
  for (auto* i = ifs; i && i->if_index; ++i)
    if (auto st = detachOurXdp(static_cast<int>(i->if_index), i->if_name); !st && result)
      result = st;
  if (ifs) if_freenameindex(ifs);
  // tcx: unpinning the last reference detaches a link.
  for (const auto& pin : tcxPins(cfg))
    if (unlink(pin.path.c_str()) != 0 && errno != ENOENT && result)
      result = Error::fromErrno(errno, "remove tcx link pin " + pin.path);
  if (int fd = bpf_obj_get((cfg.bpffs + "/" + SVCLB_MAP_TX_PORTS).c_str()); fd >= 0) {
    TxPortMap tx(fd, SVCLB_MAP_TX_PORTS);
    std::vector<uint32_t> keys;
    tx.forEach([&](const uint32_t& k, const uint32_t&) { keys.push_back(k); });
    for (uint32_t k : keys)
      if (auto st = tx.erase(k); !st && result) result = st;  // reported, the pins kept
    close(fd);
  }
  if (!result) return result;  // keep the pins: a second run can retry

  std::error_code ec;
  for (const auto& hook : kCgroupHooks) fs::remove(linksDir(cfg) + "/" + hook.name, ec);
  fs::remove(tcxDir(cfg), ec);
  fs::remove(linksDir(cfg), ec);
  for (const char* m : kPinnedMaps) fs::remove(cfg.bpffs + "/" + m, ec);
  for (const char* m : kRetiredMaps) fs::remove(cfg.bpffs + "/" + m, ec);
  fs::remove(cfg.bpffs, ec);
  if (ec && fs::exists(cfg.bpffs))
    return Error{ec.value(),
                 fmt::format("remove {}: {} (unknown files left in it?)", cfg.bpffs, ec.message())};
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
  return {bpf_map__fd(skel_->maps.svc_stats_v2), SVCLB_MAP_SVC_STATS};
}
AffinityMap Dataplane::affinity() const {
  return {bpf_map__fd(skel_->maps.affinity_v1), SVCLB_MAP_AFFINITY};
}
MaglevMap Dataplane::maglev() const { return MaglevMap(bpf_map__fd(skel_->maps.maglev_v1)); }
int Dataplane::maglevFd() const { return bpf_map__fd(skel_->maps.maglev_v1); }
int Dataplane::monitorRingFd() const { return bpf_map__fd(skel_->maps.mon_events); }
MonStateMap Dataplane::monitorState() const {
  return {bpf_map__fd(skel_->maps.mon_state), SVCLB_MAP_MON_STATE};
}
// .bss (zero-initialised) is mmapped like .data: the programs see the store
// at their next drop.
void Dataplane::setMonitor(bool on) {
  __atomic_store_n(&skel_->bss->cfg_monitor, on ? 1u : 0u, __ATOMIC_RELEASE);
}
Status Dataplane::setMonitorRate(uint32_t perSecond) {
  if (perSecond == 0 || perSecond > 1000000)
    return Error{EINVAL, fmt::format("monitor rate {}: expected 1 to 1000000 events per second "
                                     "per CPU",
                                     perSecond)};
  __atomic_store_n(&skel_->data->cfg_monitor_rate, perSecond, __ATOMIC_RELAXED);
  return {};
}
DropsMap Dataplane::drops() const { return {bpf_map__fd(skel_->maps.drops_v1), SVCLB_MAP_DROPS}; }
CtEventsMap Dataplane::ctEvents() const {
  return {bpf_map__fd(skel_->maps.ct_events_v1), SVCLB_MAP_CT_EVENTS};
}
SrcRangeMap Dataplane::srcRanges() const {
  return {bpf_map__fd(skel_->maps.src_ranges_v1), SVCLB_MAP_SRC_RANGES};
}
L2ArpMap Dataplane::l2Arp() const { return {bpf_map__fd(skel_->maps.l2_arp_v1), SVCLB_MAP_L2_ARP}; }
NicXdpMap Dataplane::nicXdp() const {
  return {bpf_map__fd(skel_->maps.nic_xdp_v1), SVCLB_MAP_NIC_XDP};
}

FilterMap Dataplane::lbFilter() const {
  return {bpf_map__fd(skel_->maps.lb_filter_v1), SVCLB_MAP_FILTER};
}
BeRevMap Dataplane::beRev() const { return {bpf_map__fd(skel_->maps.be_rev_v1), SVCLB_MAP_BE_REV}; }
BeRev6Map Dataplane::beRev6() const {
  return {bpf_map__fd(skel_->maps.be_rev6_v1), SVCLB_MAP_BE_REV6};
}

TxPortMap Dataplane::txPorts() const {
  return {bpf_map__fd(skel_->maps.tx_ports_v1), SVCLB_MAP_TX_PORTS};
}

Service6Map Dataplane::services6() const {
  return {bpf_map__fd(skel_->maps.svc6_v1), SVCLB_MAP_SERVICES6};
}
Backend6Map Dataplane::backends6() const {
  return {bpf_map__fd(skel_->maps.backend6_v1), SVCLB_MAP_BACKEND6};
}
Ct6Map Dataplane::conntrack6() const { return {bpf_map__fd(skel_->maps.ct6_v1), SVCLB_MAP_CT6}; }
Ct6Map Dataplane::conntrack6Est() const {
  return {bpf_map__fd(skel_->maps.ct6_est_v1), SVCLB_MAP_CT6_EST};
}
Affinity6Map Dataplane::affinity6() const {
  return {bpf_map__fd(skel_->maps.affinity6_v1), SVCLB_MAP_AFFINITY6};
}
SrcRange6Map Dataplane::srcRanges6() const {
  return {bpf_map__fd(skel_->maps.src_ranges6_v1), SVCLB_MAP_SRC_RANGES6};
}
FragMap Dataplane::frags() const { return {bpf_map__fd(skel_->maps.frag_v1), SVCLB_MAP_FRAG}; }
Frag6Map Dataplane::frags6() const { return {bpf_map__fd(skel_->maps.frag6_v1), SVCLB_MAP_FRAG6}; }
L2NdpMap Dataplane::l2Ndp() const { return {bpf_map__fd(skel_->maps.l2_ndp_v1), SVCLB_MAP_L2_NDP}; }

int Dataplane::tcProgFd() const { return bpf_program__fd(skel_->progs.svclb_tc_pod_in); }
int Dataplane::tcEgressProgFd() const { return bpf_program__fd(skel_->progs.svclb_tc_pod_out); }
int Dataplane::xdpProgFd() const { return bpf_program__fd(skel_->progs.svclb_xdp_lb); }
int Dataplane::tcExtProgFd() const { return bpf_program__fd(skel_->progs.svclb_tc_ext_in); }

Status Dataplane::setSnatPortRange(uint16_t min, uint16_t max) {
  if (min == 0 || min > max)
    return Error{EINVAL, fmt::format("invalid SNAT port range {}-{}", min, max)};
  // .data is mmapped: plain stores, read by the programs on the next packet.
  skel_->data->cfg_snat_port_min = min;
  skel_->data->cfg_snat_port_max = max;
  return {};
}

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
    const TcHookState in = tcHookState(cfg_, ifindex, false);
    const TcHookState eg = tcHookState(cfg_, ifindex, true);
    // Both hooks are attached in one mode; "none" only if neither is.
    const char* attach = std::strcmp(in.attach, "none") != 0 ? in.attach : eg.attach;
    out.push_back({name, ifindex, in.progId, eg.progId, attach, in.linkId, eg.linkId});
  }
  return out;
}

std::vector<ExternalAttachment> Dataplane::externalAttachments() const {
  std::vector<ExternalAttachment> out;
  for (ExternalAttachment e : extIfaces_) {
    int ifindex = static_cast<int>(if_nametoindex(e.ifname.c_str()));
    if (ifindex != 0) {  // else the interface is gone: ids stay 0
      e.ifindex = ifindex;
      const TcHookState tc = tcHookState(cfg_, ifindex, false);
      e.tcProgId = tc.progId;
      e.tcAttach = tc.attach;
      e.tcLinkId = tc.linkId;
      if (Multiprog mp = multiprogOf(ifindex)) {
        auto ours = ourXdpPrograms(mp.get());
        if (!ours.empty()) {
          e.xdpProgId = xdp_program__id(ours.front());
          e.xdpMode = modeOf(mp.get());
          e.xdpDispatcher = !xdp_multiprog__is_legacy(mp.get());
        }
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<CgroupLinkInfo> Dataplane::cgroupLinks() const {
  std::vector<CgroupLinkInfo> out;
  if (cfg_.cgroup.empty() || cfg_.socketLb == SocketLb::None) return out;
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
