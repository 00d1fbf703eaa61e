// The loaded BPF object and its attachments: skeleton/fd/link ownership,
// pinning under the bpffs dir, tc, XDP (libxdp dispatcher) and cgroup
// attach/detach, uninstall.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "loader/flow_filter.h"
#include "maps/maps.h"

struct svclb_bpf;  // the generated skeleton

namespace svclb {

// Which programs forward a node NIC's node-facing flows. Auto: tc on a veth
// (XDP_TX / redirect frames out of a veth reach the peer only if the peer
// runs XDP itself, and XDP cannot see a CHECKSUM_PARTIAL skb's checksum
// state, which veth peers hand over), XDP on every other NIC.
enum class ExternalDatapath { Auto, Xdp, Tc };
const char* externalDatapathName(ExternalDatapath d);  // "auto" | "xdp" | "tc"
std::optional<ExternalDatapath> parseExternalDatapath(const std::string& s);

// Whose sockets the cgroup hooks balance (--socket-lb): every process in the
// cgroup whatever its network namespace (the node's and the pods'), the
// node's namespace only, or none (the hooks are not attached; pinned ones
// from an earlier run are removed).
enum class SocketLb { All, Node, None };
const char* socketLbName(SocketLb m);  // "all" | "node" | "none"
std::optional<SocketLb> parseSocketLb(const std::string& s);

// How svclb's tc programs are attached (--tc-attach): tcx links (Linux
// 6.6 and later; they run before every legacy tc filter and cost less per
// packet), the legacy clsact qdisc + cls_bpf direct-action filter, or auto:
// tcx where the kernel has it (probed once at load), else legacy.
enum class TcAttach { Auto, Tcx, Legacy };
const char* tcAttachName(TcAttach m);  // "auto" | "tcx" | "legacy"
std::optional<TcAttach> parseTcAttach(const std::string& s);

struct DataplaneConfig {
  std::string bpffs = "/sys/fs/bpf/svclb";
  std::string cgroup;        // cgroup2 dir for the socket hooks ("" = none)
  uint64_t netnsCookie = 0;  // the node's netns (0 = every socket is the node's)
  SocketLb socketLb = SocketLb::All;
  uint32_t maxServiceEntries = SVCLB_DEFAULT_SERVICES_ENTRIES;
  uint32_t maxBackends = SVCLB_DEFAULT_BACKENDS;
  uint32_t maxSvcIds = SVCLB_DEFAULT_SVC_IDS;
  uint32_t maxCtEntries = SVCLB_DEFAULT_CT_ENTRIES;
  uint32_t maxAffinityEntries = SVCLB_DEFAULT_AFFINITY_ENTRIES;
  bool pin = true;  // false: private maps (tests)
  // How node NICs (--external-iface) forward: see ExternalDatapath.
  ExternalDatapath externalDatapath = ExternalDatapath::Auto;
  // How the tc programs are attached (--tc-attach): see TcAttach.
  TcAttach tcAttach = TcAttach::Auto;
  // Test build only (tests/bpf/nat_test.cpp): every tc rewrite takes the
  // CHECKSUM_COMPLETE path. A load-time constant: never set by svclbd.
  bool testTcCsumHelpers = false;
  // Benchmark only (bench/compare/local_delivery.sh, via the environment):
  // node-facing flows to a local backend are redirected into its veth.
  bool benchLocalRedirect = false;
};

struct ProgramInfo {
  std::string name, type;
  uint32_t id = 0;
};

struct TcAttachment {
  std::string ifname;
  int ifindex = 0;
  uint32_t progId = 0;        // svclb_tc_pod_in on tc ingress
  uint32_t egressProgId = 0;  // svclb_tc_pod_out on tc egress (ICMP errors)
  // "tcx" (pinned links, ids below), "legacy" (cls_bpf filters) or "none".
  std::string attach = "none";
  uint32_t linkId = 0, egressLinkId = 0;  // tcx only
};

enum class XdpMode { Native, Generic };
const char* xdpModeName(XdpMode m);  // "native" | "generic"

// A node NIC: svclb_tc_ext_in on tc ingress and, on the XDP datapath,
// svclb_xdp_lb in libxdp's dispatcher. Program ids are queried from the
// kernel (0 = not attached).
struct ExternalAttachment {
  std::string ifname;
  int ifindex = 0;
  ExternalDatapath datapath = ExternalDatapath::Xdp;  // Xdp or Tc, as chosen
  std::string why;                                    // the reason for that choice
  XdpMode xdpMode = XdpMode::Native;
  uint32_t xdpProgId = 0, tcProgId = 0;
  std::string tcAttach = "none";  // svclb_tc_ext_in's: "tcx", "legacy" or "none"
  uint32_t tcLinkId = 0;          // tcx only
  // false: degraded, svclb_xdp_lb attached alone (libxdp could not use or
  // was refused its dispatcher), no other XDP program can share the NIC.
  bool xdpDispatcher = false;
};

struct CgroupLinkInfo {
  std::string attachType;
  uint32_t linkId = 0, progId = 0;
};

// What Dataplane::removeStale did: the interfaces it cleaned, and those
// where one of svclb's earlier programs or entries could not be removed
// ({interface, why}).
struct StaleRemoval {
  std::vector<std::string> cleaned;
  std::vector<std::pair<std::string, std::string>> failed;
  // Pinned tcx links of interfaces that no longer exist (their pin names,
  // <ifindex>-<ifname>-<hook>), unpinned.
  std::vector<std::string> gonePins;
};

// Conntrack lifetimes in CT ticks (jiffies >> CT_TICK_SHIFT), as the
// programs use them, and the kernel HZ they were derived from.
struct CtLifetimes {
  uint32_t hz = 0;
  uint32_t tcp = 0, nontcp = 0, closing = 0;
};

// tc filter identity used for every pod-facing interface.
constexpr uint32_t kTcHandle = 0x5c1b;
constexpr uint32_t kTcPriority = 0x5c1b;

class Dataplane {
 public:
  ~Dataplane();
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  // Opens the embedded object, sizes the maps, adopts pinned maps under
  // cfg.bpffs (creating and pinning the missing ones) and loads.
  static Result<std::unique_ptr<Dataplane>> load(const DataplaneConfig& cfg);

  // svclb_tc_pod_in on tc ingress and svclb_tc_pod_out on tc egress of a
  // pod-facing interface, as tcx links pinned under <bpffs>/links/tcx or
  // as legacy cls_bpf filters (tcAttachMode()); ours of an earlier run are
  // replaced atomically (a pinned link: bpf_link_update; a filter:
  // BPF_TC_F_REPLACE), and ours of the other mode are removed once the new
  // ones are in place. Idempotent.
  Status attachTc(const std::string& ifname);
  // The interface `ifname` went away (netlink RTM_DELLINK): the pins of
  // its tcx links, which the kernel detached, are removed, and status no
  // longer lists it. An interface of that name that exists again (another
  // ifindex) keeps its own.
  Status interfaceRemoved(const std::string& ifname);
  // A node NIC: svclb_tc_ext_in on tc ingress (replaced atomically), the
  // ifindex in tx_ports, and svclb_xdp_lb in libxdp's multi-program
  // dispatcher beside any other XDP programs, natively if the driver can,
  // else generic. Our XDP program from an earlier run (found by name) is
  // detached first: during that one dispatcher rebuild XDP passes packets
  // untranslated and the tc program translates them. Degraded: when the
  // dispatcher cannot be used and the NIC has no other XDP program,
  // svclb_xdp_lb is attached alone (a warning; xdpDispatcher false).
  // Refused, before anything is attached, if another program is attached
  // without the dispatcher. Idempotent.
  Status attachExternal(const std::string& ifname);
  // Once this daemon attached what it selects: svclb's programs that an
  // earlier svclbd attached to an interface this one does not select
  // (`keep(name)` false) are removed: its tc filters, its XDP program and
  // the interface's tx_ports and nic_xdp_v1 entries. Such a program would
  // run an older build's code against these maps unmanaged (and it sets no
  // flow_filter_v1 slots). Every interface is tried, whatever failed on
  // another.
  StaleRemoval removeStale(const std::function<bool(const std::string&)>& keep);
  // Socket hooks on cfg.cgroup, as links pinned under <bpffs>/links so they
  // outlive the daemon; an existing pinned link is updated to the new
  // program in place (no window without translation).
  Status attachCgroup();

  // Removes our tc filters, our pinned tcx links and our XDP program (other
  // programs in libxdp's dispatcher stay) from every interface of this
  // netns, clears tx_ports, removes the pinned cgroup links, the pinned maps
  // and the bpffs dir.
  // Safe to run twice.
  static Status uninstall(const DataplaneConfig& cfg);

  ServiceMap services() const;
  BackendMap backends() const;
  CtMap conntrack() const;     // new flows (UDP, TCP handshakes)
  CtMap conntrackEst() const;  // established TCP
  SockRevMap sockRev() const;
  AffinityMap affinity() const;
  MaglevMap maglev() const;
  int maglevFd() const;  // the outer ARRAY_OF_MAPS (svcctl trace reads its tables)
  StatsMap svcStats() const;
  // be_stats_v2: each backend's owner and counters (maps/maps.h).
  BackendSlots backendStats() const { return beSlots_->view(); }
  // A frontend's counts: svc_stats_v2 plus every backend it owns (svclb_abi.h
  // lb_stats; a scan of the backend ids: tests, fuzzing).
  lb_stats frontendStats(uint32_t svcId) const {
    lb_stats t = sumStats(svcStats().lookup(svcId));
    addStats(t, backendStats().sumOwnedBy(svcId));
    return t;
  }
  DropsMap drops() const;
  CtEventsMap ctEvents() const;
  SrcRangeMap srcRanges() const;
  L2ArpMap l2Arp() const;
  TxPortMap txPorts() const;
  NicXdpMap nicXdp() const;
  FilterMap lbFilter() const;  // lb_filter_v1 (loader/lb_filter.h keeps it)
  BeRevMap beRev() const;      // be_rev_v1 (loader/be_rev.h keeps it)
  BeRev6Map beRev6() const;    // be_rev6_v1
  FragMap frags() const;
  // flow_filter_v1, mapped (loader/flow_filter.h; its keeper rebuilds it).
  FlowFilter& flowFilter() const { return *flowFilter_; }
  // The IPv6 twins (maps/svclb_abi.h).
  Service6Map services6() const;
  Backend6Map backends6() const;
  Ct6Map conntrack6() const;
  Ct6Map conntrack6Est() const;
  Affinity6Map affinity6() const;
  SrcRange6Map srcRanges6() const;
  L2NdpMap l2Ndp() const;
  Frag6Map frags6() const;

  std::vector<ProgramInfo> programs() const;
  std::vector<TcAttachment> tcAttachments() const;              // queried from the kernel
  std::vector<ExternalAttachment> externalAttachments() const;  // likewise
  std::vector<CgroupLinkInfo> cgroupLinks() const;
  const DataplaneConfig& config() const { return cfg_; }
  // The tc attach mode in use (Tcx or Legacy: auto resolved at load) and
  // why (auto's fallback names what the kernel refused).
  TcAttach tcAttachMode() const { return tcMode_; }
  const std::string& tcAttachReason() const { return tcReason_; }

  const CtLifetimes& ctLifetimes() const { return ctLife_; }
  // The kernel's jiffies as the programs see them (runs a probe program).
  Result<uint64_t> jiffies() const;
  // "Now" in CT ticks, comparable with ct_value.last_seen.
  uint32_t nowTicks() const;

  // For BPF_PROG_TEST_RUN in tests and benchmarks.
  int tcProgFd() const;
  // svclb_tc_pod_out (pod interface egress: ICMP errors only).
  int tcEgressProgFd() const;
  int xdpProgFd() const;
  int tcExtProgFd() const;  // svclb_tc_ext_in
  // SNAT source port range (inclusive) in the programs' .data.
  Status setSnatPortRange(uint16_t min, uint16_t max);

  // Closes (bpf_sock_destroy) the connected UDP sockets of the calling
  // thread's network namespace that the socket hooks pointed at one of
  // `targets` (a frontend and a backend just removed from it): runs the
  // svclb_sock_destroy_udp iterator once per chunk of
  // SVCLB_SOCK_DESTROY_ENTRIES targets (IPv4 ones in sock_destroy_v1, IPv6
  // ones in sock_destroy6_v1). Returns how many were closed.
  Result<uint64_t> destroyUdpSockets(const std::vector<sock_destroy_key>& targets,
                                     const std::vector<sock_destroy6_key>& targets6 = {});
  // svcctl monitor (loader/monitor.h): the event ring (mon_events), the
  // per-CPU token buckets and losses (mon_state), and the programs' .data
  // switches: events are written only while `on`; at most `perSecond` per
  // CPU (0 is refused).
  int monitorRingFd() const;
  MonStateMap monitorState() const;
  void setMonitor(bool on);
  Status setMonitorRate(uint32_t perSecond);

 private:
  explicit Dataplane(DataplaneConfig cfg) : cfg_(std::move(cfg)) {}
  DataplaneConfig cfg_;
  ::svclb_bpf* skel_ = nullptr;
  Status setCtLifetimes();
  Status adoptBackendSlots();
  Status resolveTcAttach();
  // Our program `progFd` on one tc hook of `ifname` in tcMode_.
  Status attachTcHook(const std::string& ifname, int ifindex, int progFd, bool egress);
  // Our attachments of the mode not in use removed from `ifindex`.
  Status removeOtherTcMode(const std::string& ifname, int ifindex);
  TcAttach tcMode_ = TcAttach::Legacy;
  std::string tcReason_;
  std::vector<std::string> tcIfaces_;
  std::vector<ExternalAttachment> extIfaces_;  // as attached (mode obtained)
  CtLifetimes ctLife_;
  struct bpf_link* sockIter_ = nullptr;  // svclb_sock_destroy_udp, attached on first use
  std::unique_ptr<FlowFilter> flowFilter_;
  std::unique_ptr<BackendSlotsMapping> beSlots_;
};

// The network namespace cookie of the calling thread (SO_NETNS_COOKIE).
Result<uint64_t> currentNetnsCookie();
// The first cgroup2 mount point in /proc/self/mounts ("" if none).
std::string defaultCgroup2Path();
// Mounts bpffs at /sys/fs/bpf when nothing is mounted there.
Status ensureBpffs(const std::string& dir);

}  // namespace svclb
