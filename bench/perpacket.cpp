// svclb-bench-perpacket: ns/packet of every packet path of the XDP and tc
// programs, and of minimal reference programs, with BPF_PROG_TEST_RUN
// (repeat R, the kernel's `duration`), over 1 .. 1M installed services.
//
// How every iteration stays on its path (test_run re-runs a program on the
// SAME buffer without resetting it):
//  - "wrap" rows: bench/bpf/wrap.bpf.c restores the frame's first 64 bytes
//    before each iteration and tail-calls the program under test. New-flow
//    rows also give every iteration a new (saddr, sport) from a counter, so
//    each one really misses CT. Spread rows pick the service (or backend,
//    for replies) from a hash of the counter. The wrapper's own cost, in
//    the same mode against a bare XDP_PASS/TC_ACT_OK, is measured in the
//    same round and subtracted per round ("net").
//  - "pingpong" rows run the unmodified program directly: a second CT entry
//    for the translated tuple translates it back, so iteration 2 is again a
//    CT hit + DNAT (no wrapper at all).
// Path checks: every run's verdict, and for svclb the per-service counters
// (packets / flows / reply packets) or drop counters must move by exactly R.
//
// Services: the fixture services of tests/bpf (standardFrontends(); the
// hot key is tcp-web 10.96.0.10:80), the bench's affinity / Maglev / NodePort
// services, plus "fill" services 10.112.0.1+i:80/TCP -> 10.128.0.1+i:8080 up
// to N in all, written through the real planSync + Syncer (the daemon's
// path). N=1 means the fixed set alone.
//
// NodePort rows (issue 3): svclb_xdp_lb decides local vs remote backend with
// bpf_fib_lookup from the frame's ingress interface, so the tool first moves
// its thread into a private network namespace (unshare; the same "node" as
// tests/bpf/ext_test.cpp: nic0 192.168.77.2/24 in tx_ports_v1, neighbours
// 192.168.77.1 and .100, 10.244.1.0/24 via 192.168.77.1, a local pod
// 10.244.2.21 on pod0) and every XDP run carries xdp_md.ingress_ifindex =
// nic0 (a tail call keeps the ctx, so the wrapped program sees it too).
// Nothing is created in the namespace the tool was started in; the private
// one and its links vanish with the process. A remote new flow takes a SNAT
// port per (backend, node address) from 1024-65535: the remote service has
// kNpRemoteBackends backends, and the ports a run took are released after it
// (its forward entries name them), so every round starts with free ports.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "bench/bpf/bench_abi.h"
#include "bench_ref.skel.h"
#include "bench_wrap.skel.h"
#include "loader/dataplane.h"
#include "loader/syncer.h"
#include "tests/bpf/bpf_fixture.h"
#include "tests/testlib/node_netns.h"
#include "tests/testlib/packet.h"
#include "tests/testlib/packet6.h"

namespace svclb::bench {
namespace {

using bpftest::backend;
using bpftest::frontend;
using bpftest::kClient;
using bpftest::kVip;
using testlib::Bytes;
using testlib::ip4;
using testlib::PacketBuilder;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kFillVipBase = 0x0A700001;  // 10.112.0.1
constexpr uint32_t kFillBeBase = 0x0A800001;   // 10.128.0.1
constexpr uint32_t kVarySrcBase = 0x0AC80000;  // 10.200.0.0: new-flow sources
constexpr uint16_t kClientPort = 40000;
constexpr uint16_t kFillBePort = 8080;
const std::string kNotService = "10.96.0.99";
// IPv6 (issue 16): one hot v6 Service, written into the v6 maps directly.
const std::string kVip6 = "fd00:10:96::a";
const std::string kBe6 = "fd00:10:244:1::11";
const std::string kClient6 = "fd00:10:244:2::5";
const std::string kNotService6 = "fd00:10:96::99";
constexpr uint32_t kVarySrc6Base = 0x0AC80000;  // the v6 source's last word
const std::string kEmptyVip = "10.96.0.13";     // fixture "empty": no endpoints
const std::string kAffVip = "10.96.0.20";       // bench: ClientIP affinity, 2 backends
const std::string kMaglevVip = "10.96.0.21";    // bench: Maglev, 2 backends
// NodePort (SVC_F_EXTERNAL) on the node's address, see the file comment.
const std::string kNodeIp = "192.168.77.2";
const std::string kLanClient = "192.168.77.100";  // has a route and a neighbour
const std::string kNpLocalBe = "10.244.2.21";     // on pod0: a local backend
constexpr uint32_t kNpRemoteBeBase = 0x0AF40164;  // 10.244.1.100: via node1
constexpr uint16_t kNpLocalPort = 30080, kNpRemotePort = 30081, kNpBePort = 8080;
constexpr uint32_t kNpRemoteBackends = 32;
constexpr uint16_t kSnatPortMin = 1024, kSnatPortMax = 65535;
// Ports a remote new-flow run may take: 1/8 of them at most, so a new flow
// finds a free port at its first probe almost always (mean probes < 1.07).
constexpr uint32_t kSnatCapacity = kNpRemoteBackends * (kSnatPortMax - kSnatPortMin + 1u);
constexpr uint32_t kMaxNewFlowRepeat = kSnatCapacity / 8;

struct Options {
  std::vector<uint32_t> services = {1, 1000, 100000, 1000000};
  int repeat = 1000000;
  int newFlowRepeat = 200000;
  int reps = 5;
  uint32_t ctEntries = 4194304;
  std::string json;
  std::string only;  // --only: a regex over row ids; empty = every row
  bool verbose = false;
};

// ---- programs under test ----------------------------------------------------

enum class Target {
  SvclbXdp,
  SvclbTc,
  SvclbTcOut,
  RefXdpPass,
  RefXdpTx,
  RefCtHit,
  RefNewFlow,
  RefNewFlow2,
  RefTcOk,
  RefCtHit6,
  RefNewFlow6
};
bool isTc(Target t) {
  return t == Target::SvclbTc || t == Target::SvclbTcOut || t == Target::RefTcOk;
}

enum class Keys { Hot, Spread };
enum class Method { Wrap, PingPong, Direct };
// Which packet a row sends (built from the fixtures' PacketBuilder).
enum class Pkt {
  ToVipSyn,
  ToVipAck,
  Reply,
  NotService,
  NotServiceUdp,
  ToBackendAck,
  BackendReplyUntracked,
  ToEmptySyn,
  ToEmptyUdp,
  ToEmptyRst,
  ToAffSyn,
  ToMaglevSyn,
  ToFillVip,
  FillReply,
  NpLocalSyn,
  NpLocalAck,
  NpRemoteSyn,
  NpRemoteAck,
  NpRemoteReply,
  // IPv6 (issue 16): the hot v6 Service kVip6:80 -> kBe6:8080, 74-byte frames.
  ToVip6Syn,
  ToVip6Ack,
  Reply6,
  NotService6
};
// What must be true before a run.
enum class Prep { None, Established, PingPong };
// What the svclb counters must show after a run of R iterations.
enum class Check { None, Flows, Hits, Replies, Rejects, NoDrops };
// Whose counters a check reads.
enum class Svc { Hot, Empty, EmptyUdp, Aff, Maglev, NpLocal, NpRemote, Hot6 };

struct PathCase {
  std::string id;  // stable report key
  std::string what;
  Target target;
  Method method;
  Keys keys;
  Pkt pkt;
  uint32_t wrapMode;  // WRAP_* (Wrap method only)
  Prep prep;
  Check check;
  uint32_t expect;  // the verdict of the intended path
  bool newFlow;     // uses the (smaller) new-flow repeat count
  Svc svc = Svc::Hot;
};

// THE table: adding a path is one row. Floors (wrapper -> bare program in
// the same mode) are derived from the rows, see floorFor().
std::vector<PathCase> pathCases() {
  const uint32_t P = XDP_PASS, T = XDP_TX, OK = TC_ACT_OK, REDIR = TC_ACT_REDIRECT;
  // tc: a packet svclb leaves untouched (TC_ACT_UNSPEC: the next tcx program runs).
  const uint32_t UN = static_cast<uint32_t>(TC_ACT_UNSPEC);
  const uint32_t V = WRAP_VARY_SRC, SD = WRAP_SPREAD_DST, SS = WRAP_SPREAD_SRC, W6 = WRAP_IPV6;
  using enum Target;
  using enum Method;
  using enum Keys;
  using enum Pkt;
  std::vector<PathCase> c = {
      // svclb XDP
      {"xdp.clusterip_new_flow", "ClusterIP new flow (CT miss + svc lookup + LRU insert x2)",
       SvclbXdp, Wrap, Hot, ToVipSyn, V, Prep::None, Check::Flows, P, true},
      {"xdp.clusterip_ct_hit", "ClusterIP CT hit + DNAT", SvclbXdp, Wrap, Hot, ToVipAck, 0,
       Prep::Established, Check::Hits, P, false},
      {"xdp.clusterip_ct_hit_pingpong", "ClusterIP CT hit + DNAT, no wrapper", SvclbXdp, PingPong,
       Hot, ToVipAck, 0, Prep::PingPong, Check::Hits, P, false},
      {"xdp.reply_rnat", "reply reverse NAT (CT hit)", SvclbXdp, Wrap, Hot, Reply, 0,
       Prep::Established, Check::Replies, P, false},
      {"xdp.non_service_pass", "not a service: CT miss + svc miss + pass", SvclbXdp, Wrap, Hot,
       NotService, 0, Prep::None, Check::NoDrops, P, false},
      {"xdp.non_service_udp_pass",
       "not a service, UDP: CT miss + svc miss + reversed-tuple lookup (port-reuse takeover) + "
       "pass",
       SvclbXdp, Wrap, Hot, NotServiceUdp, 0, Prep::None, Check::NoDrops, P, false},
      {"xdp.no_endpoint_reject", "service without endpoints: TCP RST back (XDP_TX)", SvclbXdp, Wrap,
       Hot, ToEmptySyn, 0, Prep::None, Check::Rejects, T, false, Svc::Empty},
      {"xdp.no_endpoint_reject_udp",
       "service without endpoints: UDP -> ICMP port unreachable back (XDP_TX; includes the wrapper "
       "shrinking the frame back: 2 helper calls)",
       SvclbXdp, Wrap, Hot, ToEmptyUdp, WRAP_UNDO_ICMP, Prep::None, Check::Rejects, T, false,
       Svc::EmptyUdp},
      {"xdp.no_endpoint_rst_drop",
       "service without endpoints, a RST: dropped and counted (lb_exit)", SvclbXdp, Wrap, Hot,
       ToEmptyRst, 0, Prep::None, Check::None, XDP_DROP, false, Svc::Empty},
      {"xdp.affinity_new_flow", "ClientIP affinity: CT miss, affinity hit, LRU inserts", SvclbXdp,
       Wrap, Hot, ToAffSyn, V, Prep::None, Check::Flows, P, true, Svc::Aff},
      {"xdp.maglev_new_flow", "Maglev service: CT miss + Maglev ring lookup + LRU inserts",
       SvclbXdp, Wrap, Hot, ToMaglevSyn, V, Prep::None, Check::Flows, P, true, Svc::Maglev},
      {"xdp.nodeport_local_new_flow",
       "NodePort, local backend: CT miss + svc lookup + FIB lookup + LRU insert x2 + DNAT",
       SvclbXdp, Wrap, Hot, NpLocalSyn, V, Prep::None, Check::Flows, P, true, Svc::NpLocal},
      {"xdp.nodeport_local_ct_hit", "NodePort, local backend: CT hit + DNAT", SvclbXdp, Wrap, Hot,
       NpLocalAck, 0, Prep::Established, Check::Hits, P, false, Svc::NpLocal},
      {"xdp.nodeport_remote_new_flow",
       "NodePort, remote backend: + SNAT port + both-ends rewrite + MACs (XDP_TX)", SvclbXdp, Wrap,
       Hot, NpRemoteSyn, V, Prep::None, Check::Flows, T, true, Svc::NpRemote},
      {"xdp.nodeport_remote_ct_hit",
       "NodePort, remote backend: CT hit + FIB lookup + both-ends rewrite (XDP_TX)", SvclbXdp, Wrap,
       Hot, NpRemoteAck, 0, Prep::Established, Check::Hits, T, false, Svc::NpRemote},
      {"xdp.nodeport_remote_reply", "NodePort, remote backend's reply back to the client (XDP_TX)",
       SvclbXdp, Wrap, Hot, NpRemoteReply, 0, Prep::Established, Check::Replies, T, false,
       Svc::NpRemote},
      {"xdp.clusterip_new_flow", "", SvclbXdp, Wrap, Spread, ToFillVip, V | SD, Prep::None,
       Check::NoDrops, P, true},
      {"xdp.clusterip_ct_hit", "", SvclbXdp, Wrap, Spread, ToFillVip, SD, Prep::Established,
       Check::NoDrops, P, false},
      {"xdp.reply_rnat", "", SvclbXdp, Wrap, Spread, FillReply, SS, Prep::Established,
       Check::NoDrops, P, false},
      // svclb tc
      {"tc.clusterip_new_flow", "ClusterIP new flow (CT miss + svc lookup + LRU insert x2)",
       SvclbTc, Wrap, Hot, ToVipSyn, V, Prep::None, Check::Flows, OK, true},
      {"tc.clusterip_ct_hit", "ClusterIP CT hit + DNAT", SvclbTc, Wrap, Hot, ToVipAck, 0,
       Prep::Established, Check::Hits, OK, false},
      {"tc.clusterip_ct_hit_pingpong", "ClusterIP CT hit + DNAT, no wrapper", SvclbTc, PingPong,
       Hot, ToVipAck, 0, Prep::PingPong, Check::Hits, OK, false},
      {"tc.reply_rnat", "reply reverse NAT (CT hit)", SvclbTc, Wrap, Hot, Reply, 0,
       Prep::Established, Check::Replies, OK, false},
      {"tc.non_service_pass", "not a service: CT miss + svc miss + pass", SvclbTc, Wrap, Hot,
       NotService, 0, Prep::None, Check::NoDrops, UN, false},
      {"tc.non_service_udp_pass",
       "not a service, UDP: CT miss + svc miss + reversed-tuple lookup (port-reuse takeover) + "
       "pass",
       SvclbTc, Wrap, Hot, NotServiceUdp, 0, Prep::None, Check::NoDrops, UN, false},
      // What a pod's socket-balanced (or direct) flow shows the tc program:
      // segments to a backend's own address, and its untracked answers.
      {"tc.to_backend_pass", "a client's ACK straight to a backend (socket path): pass", SvclbTc,
       Wrap, Hot, ToBackendAck, 0, Prep::None, Check::NoDrops, UN, false},
      {"tc.backend_reply_untracked",
       "a backend's ACK to a client without a CT entry (socket path): CT miss + pass", SvclbTc,
       Wrap, Hot, BackendReplyUntracked, 0, Prep::None, Check::NoDrops, UN, false},
      {"tc.no_endpoint_reject", "service without endpoints: TCP RST back (redirect)", SvclbTc, Wrap,
       Hot, ToEmptySyn, 0, Prep::None, Check::Rejects, REDIR, false, Svc::Empty},
      {"tc.no_endpoint_rst_drop", "service without endpoints, a RST: dropped and counted (lb_exit)",
       SvclbTc, Wrap, Hot, ToEmptyRst, 0, Prep::None, Check::None, TC_ACT_SHOT, false, Svc::Empty},
      {"tc.affinity_new_flow", "ClientIP affinity: CT miss, affinity hit, LRU inserts", SvclbTc,
       Wrap, Hot, ToAffSyn, V, Prep::None, Check::Flows, OK, true, Svc::Aff},
      {"tc.maglev_new_flow", "Maglev service: CT miss + Maglev ring lookup + LRU inserts", SvclbTc,
       Wrap, Hot, ToMaglevSyn, V, Prep::None, Check::Flows, OK, true, Svc::Maglev},
      {"tc.clusterip_new_flow", "", SvclbTc, Wrap, Spread, ToFillVip, V | SD, Prep::None,
       Check::NoDrops, OK, true},
      {"tc.clusterip_ct_hit", "", SvclbTc, Wrap, Spread, ToFillVip, SD, Prep::Established,
       Check::NoDrops, OK, false},
      {"tc.reply_rnat", "", SvclbTc, Wrap, Spread, FillReply, SS, Prep::Established, Check::NoDrops,
       OK, false},
      // references (bench/bpf/ref.bpf.c)
      {"ref.xdp_pass", "XDP_PASS (loop floor), no wrapper", RefXdpPass, Direct, Hot, ToVipAck, 0,
       Prep::None, Check::None, P, false},
      {"ref.tc_ok", "tc: return OK (loop floor), no wrapper", RefTcOk, Direct, Hot, ToVipAck, 0,
       Prep::None, Check::None, OK, false},
      {"tc.pod_out_non_icmp", "pod egress program on a TCP packet (returns at once), no wrapper",
       SvclbTcOut, Direct, Hot, ToVipAck, 0, Prep::None, Check::None, UN, false},
      {"ref.xdp_tx", "parse + swap MACs + XDP_TX", RefXdpTx, Wrap, Hot, ToVipAck, 0, Prep::None,
       Check::None, T, false},
      {"ref.ct_hit", "bare CT hit + DNAT + XDP_TX", RefCtHit, Wrap, Hot, ToVipAck, 0,
       Prep::Established, Check::None, T, false},
      {"ref.ct_hit_pingpong", "bare CT hit + DNAT + XDP_TX, no wrapper", RefCtHit, PingPong, Hot,
       ToVipAck, 0, Prep::PingPong, Check::None, T, false},
      {"ref.new_flow", "bare CT miss + lookup + LRU insert + DNAT", RefNewFlow, Wrap, Hot, ToVipSyn,
       V, Prep::None, Check::None, T, true},
      {"ref.new_flow2", "same with the reply entry too (2 LRU inserts, as svclb)", RefNewFlow2,
       Wrap, Hot, ToVipSyn, V, Prep::None, Check::None, T, true},
      {"ref.ct_hit", "", RefCtHit, Wrap, Spread, ToFillVip, SD, Prep::Established, Check::None, T,
       false},
      {"ref.new_flow", "", RefNewFlow, Wrap, Spread, ToFillVip, V | SD, Prep::None, Check::None, T,
       true},
      // IPv6 (issue 16): the pod path (svclb_tc_pod_in tail-calls its v6
      // half) and bare v6 references, beside their v4 rows.
      {"tc6.clusterip_ct_hit", "IPv6 ClusterIP CT hit + DNAT", SvclbTc, Wrap, Hot, ToVip6Ack, W6,
       Prep::Established, Check::Hits, OK, false, Svc::Hot6},
      {"tc6.clusterip_new_flow", "IPv6 ClusterIP new flow (CT miss + svc lookup + LRU insert x2)",
       SvclbTc, Wrap, Hot, ToVip6Syn, W6 | V, Prep::None, Check::Flows, OK, true, Svc::Hot6},
      {"tc6.reply_rnat", "IPv6 reply reverse NAT (CT hit)", SvclbTc, Wrap, Hot, Reply6, W6,
       Prep::Established, Check::Replies, OK, false, Svc::Hot6},
      {"tc6.non_service_pass", "IPv6, not a service: CT miss + svc miss + pass", SvclbTc, Wrap, Hot,
       NotService6, W6, Prep::None, Check::NoDrops, UN, false, Svc::Hot6},
      // The node-NIC path: svclb_xdp_lb tail-calls svclb_xdp_lb6.
      {"xdp6.clusterip_ct_hit", "IPv6 CT hit + DNAT (XDP)", SvclbXdp, Wrap, Hot, ToVip6Ack, W6,
       Prep::Established, Check::Hits, P, false, Svc::Hot6},
      {"xdp6.clusterip_new_flow", "IPv6 new flow (XDP: CT miss + svc lookup + LRU insert x2)",
       SvclbXdp, Wrap, Hot, ToVip6Syn, W6 | V, Prep::None, Check::Flows, P, true, Svc::Hot6},
      {"xdp6.reply_rnat", "IPv6 reply reverse NAT (XDP, CT hit)", SvclbXdp, Wrap, Hot, Reply6, W6,
       Prep::Established, Check::Replies, P, false, Svc::Hot6},
      {"ref6.ct_hit", "bare IPv6 CT hit + DNAT + XDP_TX", RefCtHit6, Wrap, Hot, ToVip6Ack, W6,
       Prep::Established, Check::None, T, false},
      {"ref6.new_flow", "bare IPv6 CT miss + lookup + LRU insert + DNAT", RefNewFlow6, Wrap, Hot,
       ToVip6Syn, W6 | V, Prep::None, Check::None, T, true},
  };
  return c;
}

// Paths of later issues, listed in the report.
const std::vector<std::string> kNotYet = {};

const char* keysName(Keys k) { return k == Keys::Hot ? "hot" : "spread"; }
const char* methodName(Method m) {
  return m == Method::Wrap ? "wrap" : m == Method::PingPong ? "pingpong" : "direct";
}

// ---- environment ------------------------------------------------------------

struct Env {
  std::unique_ptr<Dataplane> dp;
  std::unique_ptr<Syncer> syncer;
  bench_wrap* wrap = nullptr;
  bench_ref* ref = nullptr;
  uint32_t n = 0, fill = 0;
  uint32_t hotSvcId = 0;
  std::map<Svc, uint32_t> svcIds;
  double loadSeconds = 0;
  // The hot flow's backend, known once it is established.
  uint32_t hotBeAddr = 0;  // host order
  uint16_t hotBePort = 0;
  // nic0 of the private namespace: every XDP run's ingress interface.
  uint32_t nic0 = 0;
  // The established remote NodePort flow: its backend and SNAT port.
  uint32_t npBeAddr = 0;  // host order
  uint16_t npSnatPort = 0;

  ~Env() {
    if (wrap) bench_wrap__destroy(wrap);
    if (ref) bench_ref__destroy(ref);
  }
};

[[noreturn]] void fail(const std::string& msg) {
  fmt::print(stderr, "svclb-bench-perpacket: {}\n", msg);
  std::exit(1);
}

// keys[i] -> vals[i] by BPF_MAP_UPDATE_BATCH (65,536 per call).
template <class K, class V>
void batchPut(int fd, const std::vector<K>& keys, const std::vector<V>& vals, const char* what) {
  for (size_t off = 0; off < keys.size(); off += 65536) {
    LIBBPF_OPTS(bpf_map_batch_opts, bo);
    auto cnt = static_cast<uint32_t>(std::min<size_t>(65536, keys.size() - off));
    if (bpf_map_update_batch(fd, keys.data() + off, vals.data() + off, &cnt, &bo))
      fail(fmt::format("{} batch update: {}", what, strerror(errno)));
  }
}

Bytes packet(const Env& e, Pkt p) {
  using testlib::kTcpAck;
  // 64-byte frames: 54 bytes of headers + 10 bytes of payload.
  switch (p) {
    case Pkt::ToVipSyn:
      return PacketBuilder::tcp(kClient, kClientPort, kVip, 80).payload(10).build();
    case Pkt::ToVipAck:
      return PacketBuilder::tcp(kClient, kClientPort, kVip, 80, kTcpAck).payload(10).build();
    case Pkt::Reply:
      return PacketBuilder::tcp(testlib::ip4str(e.hotBeAddr), e.hotBePort, kClient, kClientPort,
                                kTcpAck)
          .payload(10)
          .build();
    case Pkt::NotService:
      return PacketBuilder::tcp(kClient, kClientPort, kNotService, 80).payload(10).build();
    // 64 bytes (22-byte payload): every untracked non-Service datagram pays
    // the port-reuse check (one more CT lookup); a TCP ACK does not.
    case Pkt::NotServiceUdp:
      return PacketBuilder::udp(kClient, kClientPort, kNotService, 53).payload(22).build();
    // The standard fixtures' tls backend (never the ping-pong rows' hot
    // backend), from another client port than the established rows' (no
    // CT entry).
    case Pkt::ToBackendAck:
      return PacketBuilder::tcp(kClient, kClientPort + 7, "10.244.1.31", 443, kTcpAck)
          .payload(10)
          .build();
    case Pkt::BackendReplyUntracked:
      return PacketBuilder::tcp("10.244.1.31", 443, kClient, kClientPort + 7, kTcpAck)
          .payload(10)
          .build();
    // 54 bytes: a SYN without payload is answered by a RST of the same size,
    // so the frame keeps its geometry from one iteration to the next.
    case Pkt::ToEmptySyn:
      return PacketBuilder::tcp(kClient, kClientPort, kEmptyVip, 80).build();
    // 54 bytes (a 12-byte payload): the wrapper copies 54 header bytes.
    case Pkt::ToEmptyUdp:
      return PacketBuilder::udp(kClient, kClientPort, kEmptyVip, 53).payload(12).build();
    // A RST is never answered: the drop path (lb_exit, DROP_NO_BACKEND).
    case Pkt::ToEmptyRst:
      return PacketBuilder::tcp(kClient, kClientPort, kEmptyVip, 80, testlib::kTcpRst).build();
    case Pkt::ToAffSyn:
      return PacketBuilder::tcp(kClient, kClientPort, kAffVip, 80).payload(10).build();
    case Pkt::ToMaglevSyn:
      return PacketBuilder::tcp(kClient, kClientPort, kMaglevVip, 80).payload(10).build();
    case Pkt::ToFillVip:
      return PacketBuilder::tcp(kClient, kClientPort, testlib::ip4str(kFillVipBase), 80, kTcpAck)
          .payload(10)
          .build();
    case Pkt::FillReply:
      return PacketBuilder::tcp(testlib::ip4str(kFillBeBase), kFillBePort, kClient, kClientPort,
                                kTcpAck)
          .payload(10)
          .build();
    case Pkt::NpLocalSyn:
      return PacketBuilder::tcp(kLanClient, kClientPort, kNodeIp, kNpLocalPort).payload(10).build();
    case Pkt::NpLocalAck:
      return PacketBuilder::tcp(kLanClient, kClientPort, kNodeIp, kNpLocalPort, kTcpAck)
          .payload(10)
          .build();
    case Pkt::NpRemoteSyn:
      return PacketBuilder::tcp(kLanClient, kClientPort, kNodeIp, kNpRemotePort)
          .payload(10)
          .build();
    case Pkt::NpRemoteAck:
      return PacketBuilder::tcp(kLanClient, kClientPort, kNodeIp, kNpRemotePort, kTcpAck)
          .payload(10)
          .build();
    // The backend's answer to the node's SNAT port.
    case Pkt::ToVip6Syn:
    case Pkt::ToVip6Ack:
    case Pkt::Reply6:
    case Pkt::NotService6: {
      testlib::Frame6 f;
      f.src = p == Pkt::Reply6 ? kBe6 : kClient6;
      f.dst = p == Pkt::Reply6 ? kClient6 : p == Pkt::NotService6 ? kNotService6 : kVip6;
      f.sport = p == Pkt::Reply6 ? 8080 : kClientPort;
      f.dport = p == Pkt::Reply6 ? kClientPort : 80;
      // NotService6 is a SYN, as NotService: an untracked non-Service SYN
      // pays the tuple take-over check (ct_take_over_tuple).
      f.tcpFlags =
          p == Pkt::ToVip6Syn || p == Pkt::NotService6 ? testlib::kTcpSyn : testlib::kTcpAck;
      f.payload = 10;
      return f.build();
    }
    case Pkt::NpRemoteReply:
      return PacketBuilder::tcp(testlib::ip4str(e.npBeAddr), kNpBePort, kNodeIp, e.npSnatPort,
                                kTcpAck)
          .payload(10)
          .build();
  }
  return {};
}

int targetFd(const Env& e, Target t) {
  switch (t) {
    case Target::SvclbXdp:
      return e.dp->xdpProgFd();
    case Target::SvclbTc:
      return e.dp->tcProgFd();
    case Target::SvclbTcOut:
      return e.dp->tcEgressProgFd();
    case Target::RefXdpPass:
      return bpf_program__fd(e.ref->progs.ref_xdp_pass);
    case Target::RefXdpTx:
      return bpf_program__fd(e.ref->progs.ref_xdp_tx);
    case Target::RefCtHit:
      return bpf_program__fd(e.ref->progs.ref_ct_hit);
    case Target::RefNewFlow:
      return bpf_program__fd(e.ref->progs.ref_new_flow);
    case Target::RefNewFlow2:
      return bpf_program__fd(e.ref->progs.ref_new_flow2);
    case Target::RefTcOk:
      return bpf_program__fd(e.ref->progs.ref_tc_ok);
    case Target::RefCtHit6:
      return bpf_program__fd(e.ref->progs.ref6_ct_hit);
    case Target::RefNewFlow6:
      return bpf_program__fd(e.ref->progs.ref6_new_flow);
  }
  return -1;
}

struct Run {
  uint32_t duration = 0, retval = 0;
};

// `ingress` (XDP programs only, 0 = none): xdp_md.ingress_ifindex, which the
// NodePort paths' FIB lookups start from. The kernel resolves it once per
// run, outside the timed loop.
Run testRun(int fd, const Bytes& in, int repeat, uint32_t ingress = 0) {
  Bytes out(in.size() + 256);
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(in.size());
  ctx.ingress_ifindex = ingress;
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in.data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(out.size()), .repeat = repeat);
  if (ingress) {
    o.ctx_in = &ctx;
    o.ctx_size_in = sizeof(ctx);
  }
  if (bpf_prog_test_run_opts(fd, &o) != 0)
    fail(fmt::format("BPF_PROG_TEST_RUN: {}", strerror(errno)));
  return {o.duration, o.retval};
}

// An XDP run as on a node NIC (ingress nic0).
Run xdpRun(const Env& e, int fd, const Bytes& in, int repeat) {
  return testRun(fd, in, repeat, e.nic0);
}

// ---- the node's private network namespace -----------------------------------

// The "node" of tests/testlib/node_netns.h (the one tests/bpf/ext_test.cpp
// uses), in a network namespace of the calling thread's own.
using testlib::NodeNetns;

// Points the wrapper at `t` and configures it. Returns the wrapper's fd.
int setupWrap(Env& e, Target t, const Bytes& pkt, uint32_t mode, Keys keys, Pkt p) {
  int target = targetFd(e, t);
  uint32_t zero = 0;
  int map = bpf_map__fd(isTc(t) ? e.wrap->maps.wrap_tc_target : e.wrap->maps.wrap_xdp_target);
  if (bpf_map_update_elem(map, &zero, &target, BPF_ANY)) fail("prog array update failed");
  auto& cfg = e.wrap->bss->cfg;
  std::fill(std::begin(cfg.tmpl), std::end(cfg.tmpl), 0);
  std::copy_n(pkt.begin(), std::min<size_t>(pkt.size(), BENCH_WRAP_TMPL_SIZE), cfg.tmpl);
  cfg.mode = mode;
  cfg.spread_n = std::max<uint32_t>(e.fill, 1);
  cfg.spread_base = p == Pkt::FillReply ? kFillBeBase : kFillVipBase;
  cfg.src_base = (mode & WRAP_IPV6) ? kVarySrc6Base : kVarySrcBase;
  cfg.tmpl_len = static_cast<uint32_t>(pkt.size());
  (void)keys;
  return bpf_program__fd(isTc(t) ? e.wrap->progs.bench_wrap_tc : e.wrap->progs.bench_wrap_xdp);
}

// ---- loading ---------------------------------------------------------------

std::vector<Frontend> serviceSet(uint32_t fill) {
  auto fs = bpftest::standardFrontends();
  auto npLocal = frontend(kNodeIp, kNpLocalPort, bpftest::kTcp,
                          {backend(fmt::format("{}:{}", kNpLocalBe, kNpBePort))}, "np-local");
  npLocal.flags = SVC_F_EXTERNAL;
  fs.push_back(npLocal);
  std::vector<BackendSpec> remote;
  for (uint32_t i = 0; i < kNpRemoteBackends; ++i)
    remote.push_back(
        backend(fmt::format("{}:{}", testlib::ip4str(kNpRemoteBeBase + i), kNpBePort)));
  auto npRemote = frontend(kNodeIp, kNpRemotePort, bpftest::kTcp, std::move(remote), "np-remote");
  npRemote.flags = SVC_F_EXTERNAL;
  fs.push_back(npRemote);
  auto aff = frontend(kAffVip, 80, bpftest::kTcp,
                      {backend("10.244.1.51:8080"), backend("10.244.1.52:8080")}, "aff");
  aff.affinity = true;
  aff.affinityTimeout = 10800;
  fs.push_back(aff);
  auto mag = frontend(kMaglevVip, 80, bpftest::kTcp,
                      {backend("10.244.1.61:8080"), backend("10.244.1.62:8080")}, "maglev");
  mag.annotations[kLbAlgorithmAnnotation] = "maglev";
  fs.push_back(mag);
  fs.reserve(fs.size() + fill);
  for (uint32_t i = 0; i < fill; ++i) {
    Frontend f;
    f.key = FrontendKey{kFillVipBase + i, 80, bpftest::kTcp};
    f.ns = "bench";
    f.name = "fill";
    BackendSpec b;
    b.ip = kFillBeBase + i;
    b.port = kFillBePort;
    f.backends = {b};
    fs.push_back(std::move(f));
  }
  return fs;
}

// The services every N has (fixtures and bench services): N counts them.
size_t fixedCount() { return serviceSet(0).size(); }

void loadEnv(Env& e, uint32_t n, const Options& o, uint32_t nic0) {
  e.n = n;
  e.nic0 = nic0;
  e.fill = n > fixedCount() ? n - static_cast<uint32_t>(fixedCount()) : 0;
  DataplaneConfig cfg;
  cfg.pin = false;
  cfg.maxServiceEntries = 2 * e.fill + 1024;
  cfg.maxBackends = e.fill + 1024;
  cfg.maxSvcIds = e.fill + 1024;
  cfg.maxCtEntries = o.ctEntries;
  auto dp = Dataplane::load(cfg);
  if (!dp) fail("loading the dataplane: " + dp.error().message);
  e.dp = std::move(*dp);
  // nic0 is a node NIC (a devmap entry must name a device of this netns).
  if (auto st = e.dp->txPorts().update(nic0, nic0); !st) fail("tx_ports_v1: " + st.error().message);
  if (auto st = e.dp->setSnatPortRange(kSnatPortMin, kSnatPortMax); !st) fail(st.error().message);
  SyncOptions so;
  so.maxServiceEntries = cfg.maxServiceEntries;
  e.syncer = std::make_unique<Syncer>(*e.dp, so);
  // As the daemon starts: lb_filter_v1 (all ones from the load) written.
  if (auto st = e.syncer->adopt(); !st) fail("Syncer::adopt: " + st.error().message);
  // And flow_filter_v1 in use (its keeper's first rebuild), as svclbd runs.
  if (auto st = e.dp->flowFilter().rebuild(std::chrono::milliseconds(0)); !st)
    fail("flow_filter_v1: " + st.error().message);

  auto desired = serviceSet(e.fill);
  auto t0 = Clock::now();
  auto plan = e.syncer->plan(desired);
  if (!plan) fail("planSync: " + plan.error().message);
  auto st = e.syncer->apply(std::move(*plan));
  if (!st) fail("Syncer::apply: " + st.error().message);
  e.loadSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  auto id = [&](const std::string& vip, uint16_t port = 80, uint8_t proto = bpftest::kTcp) {
    return e.syncer->actual().frontends.at(FrontendKey{ip4(vip), port, proto}).svcId;
  };
  e.hotSvcId = id(kVip);
  e.svcIds = {{Svc::Hot, id(kVip)},
              {Svc::Empty, id(kEmptyVip)},
              {Svc::EmptyUdp, id(kEmptyVip, 53, bpftest::kUdp)},
              {Svc::Aff, id(kAffVip)},
              {Svc::Maglev, id(kMaglevVip)},
              {Svc::NpLocal, id(kNodeIp, kNpLocalPort)},
              {Svc::NpRemote, id(kNodeIp, kNpRemotePort)}};

  // The hot IPv6 Service, laid out as the daemon lays out a v6 frontend
  // (svc6_v1 master + slot, backends_v1 state/owner, backend6_v1 address),
  // on the last svc and backend ids (the Syncer hands out the lowest).
  {
    const uint32_t svcId6 = cfg.maxSvcIds - 1, beId6 = cfg.maxBackends - 1;
    svc6_key k{};
    std::memcpy(&k.vip, testlib::ip6(kVip6).data(), 16);
    k.port = htons(80);
    k.proto = bpftest::kTcp;
    svc_value m{};
    m.svc_id = svcId6;
    m.count = m.total = 1;
    svc_value slot{};
    slot.svc_id = svcId6;
    slot.backend_id = beId6;
    svc6_key sk = k;
    sk.slot = 1;
    backend_value b{};
    b.port = htons(8080);
    b.proto = bpftest::kTcp;
    b.state = BE_STATE_ACTIVE;
    b.svc_id = svcId6;
    backend6_value a{};
    std::memcpy(&a.addr, testlib::ip6(kBe6).data(), 16);
    if (!e.dp->services6().update(k, m) || !e.dp->services6().update(sk, slot) ||
        !e.dp->backendStats().own(beId6, svcId6) || !e.dp->backends().update(beId6, b) ||
        !e.dp->backends6().update(beId6, a) ||
        !setFilterBitInMap(e.dp->lbFilter(), LbFilter::ipv6(&k.vip, k.port, false)) ||
        !setFilterBitInMap(e.dp->lbFilter(), LbFilter::ipv6(&a.addr, b.port, true)))
      fail("writing the IPv6 Service");
    // Its backend's designated frontend (loader/be_rev.h): its flows take
    // one CT entry, as the Syncer's v4 ClusterIPs' do.
    be_rev6_key rk{};
    rk.addr = a.addr;
    rk.port = b.port;
    rk.proto = bpftest::kTcp;
    be_rev6_value rv{};
    rv.vip = k.vip;
    rv.port = k.port;
    rv.svc_id = svcId6;
    if (!e.dp->beRev6().update(rk, rv)) fail("writing the IPv6 Service's be_rev6_v1 entry");
    e.svcIds[Svc::Hot6] = svcId6;
  }

  // References: same service keys, same CT size; written by batch update.
  e.ref = bench_ref__open();
  if (!e.ref) fail("open ref object");
  bpf_map__set_max_entries(e.ref->maps.ref_svc, e.fill + 1024);
  bpf_map__set_max_entries(e.ref->maps.ref_ct, o.ctEntries);
  bpf_map__set_max_entries(e.ref->maps.ref_ct6, o.ctEntries);
  if (bench_ref__load(e.ref)) fail("load ref object");
  e.wrap = bench_wrap__open_and_load();
  if (!e.wrap) fail("load wrap object");

  struct RefVal {
    __be32 be_addr;
    __be16 be_port;
    uint16_t pad;
    uint32_t svc_id;
    uint32_t reserved[3];
  };
  static_assert(sizeof(RefVal) == sizeof(svc_value));
  std::vector<svc_key> keys;
  std::vector<RefVal> vals;
  keys.push_back(makeSvcKey(FrontendKey{ip4(kVip), 80, bpftest::kTcp}, 0));
  vals.push_back(RefVal{htonl(ip4("10.244.1.11")), htons(8080), 0, 1, {}});
  for (uint32_t i = 0; i < e.fill; ++i) {
    keys.push_back(makeSvcKey(FrontendKey{kFillVipBase + i, 80, bpftest::kTcp}, 0));
    vals.push_back(RefVal{htonl(kFillBeBase + i), htons(kFillBePort), 0, i + 2, {}});
  }
  batchPut(bpf_map__fd(e.ref->maps.ref_svc), keys, vals, "ref_svc");

  struct RefVal6 {
    v6addr be_addr;
    __be16 be_port;
    uint16_t pad;
    uint32_t svc_id;
  };
  svc6_key k6{};
  std::memcpy(&k6.vip, testlib::ip6(kVip6).data(), 16);
  k6.port = htons(80);
  k6.proto = bpftest::kTcp;
  RefVal6 v6{};
  std::memcpy(&v6.be_addr, testlib::ip6(kBe6).data(), 16);
  v6.be_port = htons(8080);
  v6.svc_id = 1;
  if (bpf_map_update_elem(bpf_map__fd(e.ref->maps.ref_svc6), &k6, &v6, BPF_ANY))
    fail("ref_svc6: " + std::string(strerror(errno)));
}

ct6_key ct6Key(const std::string& sa, uint16_t sp, const std::string& da, uint16_t dp) {
  ct6_key k{};
  std::memcpy(&k.saddr, testlib::ip6(sa).data(), 16);
  std::memcpy(&k.daddr, testlib::ip6(da).data(), 16);
  k.sport = htons(sp);
  k.dport = htons(dp);
  k.proto = bpftest::kTcp;
  return k;
}

ct_key ctKey(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp) {
  ct_key k{};
  k.saddr = htonl(sa);
  k.daddr = htonl(da);
  k.sport = htons(sp);
  k.dport = htons(dp);
  k.proto = bpftest::kTcp;
  return k;
}

// Fills both conntrack maps with new flows so every measured insert happens
// in a full LRU (steady state) rather than in an empty one. svclb's
// established map gets half its capacity of established flows (written
// directly; sources 10.210/16, never used by a row): a node's steady state,
// and the same at every N, so the spread rows' extra entries (N of them)
// change its occupancy little and the hot rows compare like with like.
void prefillCt(Env& e, const Options& o) {
  // 1.25 flows per entry: the LRU is full (every insert evicts) whether a
  // program writes one entry per flow (ref.new_flow) or two.
  const int iters = static_cast<int>(o.ctEntries + o.ctEntries / 4);
  Bytes syn = packet(e, Pkt::ToVipSyn);
  int fd = setupWrap(e, Target::SvclbXdp, syn, WRAP_VARY_SRC, Keys::Hot, Pkt::ToVipSyn);
  xdpRun(e, fd, syn, iters);
  fd = setupWrap(e, Target::RefNewFlow, syn, WRAP_VARY_SRC, Keys::Hot, Pkt::ToVipSyn);
  xdpRun(e, fd, syn, iters);
  // The IPv6 maps alike (svclb's pod program, the v6 reference).
  Bytes syn6 = packet(e, Pkt::ToVip6Syn);
  fd = setupWrap(e, Target::SvclbTc, syn6, WRAP_IPV6 | WRAP_VARY_SRC, Keys::Hot, Pkt::ToVip6Syn);
  testRun(fd, syn6, iters);
  fd =
      setupWrap(e, Target::RefNewFlow6, syn6, WRAP_IPV6 | WRAP_VARY_SRC, Keys::Hot, Pkt::ToVip6Syn);
  xdpRun(e, fd, syn6, iters);

  constexpr uint32_t kEstSrcBase = 0x0AD20000;  // 10.210.0.0
  const uint32_t est = o.ctEntries / 2;
  std::vector<ct_key> keys;
  std::vector<ct_value> vals;
  keys.reserve(65536);
  vals.reserve(65536);
  const int estFd = e.dp->conntrackEst().fd();
  for (uint32_t i = 0; i < est; ++i) {
    keys.push_back(ctKey(kEstSrcBase + (i >> 16), static_cast<uint16_t>(i), ip4(kVip), 80));
    ct_value v{};
    v.nat_addr = htonl(ip4("10.244.1.11"));
    v.nat_port = htons(8080);
    v.dir = CT_DIR_FORWARD;
    vals.push_back(v);
    if (keys.size() == 65536 || i + 1 == est) {
      batchPut(estFd, keys, vals, "ct_est_v2 prefill");
      keys.clear();
      vals.clear();
    }
  }
  // ct6_est_v1 alike (sources fd00:10:210::/96), so the v6 rows' lookups
  // meet a map as full as the v4 ones.
  std::vector<ct6_key> keys6;
  std::vector<ct6_value> vals6;
  keys6.reserve(65536);
  vals6.reserve(65536);
  const int est6Fd = e.dp->conntrack6Est().fd();
  for (uint32_t i = 0; i < est; ++i) {
    ct6_key k = ct6Key("fd00:10:210::", static_cast<uint16_t>(i), kVip6, 80);
    k.saddr.w[3] = htonl(i >> 16);
    keys6.push_back(k);
    ct6_value v{};
    std::memcpy(&v.nat_addr, testlib::ip6(kBe6).data(), 16);
    v.nat_port = htons(8080);
    v.dir = CT_DIR_FORWARD;
    vals6.push_back(v);
    if (keys6.size() == 65536 || i + 1 == est) {
      batchPut(est6Fd, keys6, vals6, "ct6_est_v1 prefill");
      keys6.clear();
      vals6.clear();
    }
  }
}

// A flow's entry wherever svclb keeps it: ct_est_v2 once the client ACKed
// (looked up first, as the program does), else ct_v2.
std::optional<ct_value> findCt(const Env& e, const ct_key& k) {
  if (auto v = e.dp->conntrackEst().lookup(k)) return v;
  return e.dp->conntrack().lookup(k);
}

// Establishes a NodePort flow from kLanClient with svclb's own program (an
// ACK: created on a miss, a CT hit and promoted after). For the remote one,
// also checks its reply entry and notes the backend and SNAT port the reply
// row answers from.
void establishNodePort(Env& e, bool remote) {
  const uint16_t port = remote ? kNpRemotePort : kNpLocalPort;
  const uint32_t verdict = remote ? XDP_TX : XDP_PASS;
  const Bytes ack = packet(e, remote ? Pkt::NpRemoteAck : Pkt::NpLocalAck);
  const ct_key fk = ctKey(ip4(kLanClient), kClientPort, ip4(kNodeIp), port);
  for (int attempt = 0; attempt < 10; ++attempt) {
    Run r = xdpRun(e, e.dp->xdpProgFd(), ack, 1);
    if (r.retval != verdict)
      fail(fmt::format("establishing the NodePort {} flow: verdict {} instead of {}",
                       remote ? "remote" : "local", r.retval, verdict));
    auto fwd = findCt(e, fk);
    if (!fwd || fwd->dir != CT_DIR_FORWARD) continue;  // evicted meanwhile: again
    if (!remote) return;
    if (!(fwd->flags & CT_F_SNAT)) fail("the remote NodePort flow is not source-NATed");
    ct_key rk{};
    rk.saddr = fwd->nat_addr;
    rk.daddr = fwd->snat_addr;
    rk.sport = fwd->nat_port;
    rk.dport = fwd->snat_port;
    rk.proto = bpftest::kTcp;
    auto rev = findCt(e, rk);
    if (!rev || rev->dir != CT_DIR_REPLY) continue;
    e.npBeAddr = ntohl(fwd->nat_addr);
    e.npSnatPort = ntohs(fwd->snat_port);
    return;
  }
  fail(fmt::format("establishing the NodePort {} flow: its CT entries keep disappearing",
                   remote ? "remote" : "local"));
}

// Releases the SNAT ports that the remote NodePort new flows of wrapper
// counters [c0, c1) took: their forward entries (the wrapper's sources, see
// wrap_prepare) name each port's reply entry. Both go. A forward entry the
// LRU already evicted leaves its port taken, which is rare and harmless.
void releaseSnatPorts(const Env& e, uint64_t c0, uint64_t c1) {
  const int fd = e.dp->conntrack().fd();
  for (uint64_t c = c0; c < c1; ++c) {
    const uint32_t k = static_cast<uint32_t>(c);
    ct_key fk =
        ctKey(kVarySrcBase + (k >> 16), static_cast<uint16_t>(k), ip4(kNodeIp), kNpRemotePort);
    ct_value v{};
    if (bpf_map_lookup_elem(fd, &fk, &v) != 0 || v.dir != CT_DIR_FORWARD || !(v.flags & CT_F_SNAT))
      continue;
    ct_key rk{};
    rk.saddr = v.nat_addr;
    rk.daddr = v.snat_addr;
    rk.sport = v.nat_port;
    rk.dport = v.snat_port;
    rk.proto = bpftest::kTcp;
    bpf_map_delete_elem(fd, &rk);
    bpf_map_delete_elem(fd, &fk);
  }
}

// Establishes (or refreshes) the flows the hit rows use. Runs before every
// round: new-flow rows push entries out of the LRU.
void establish(Env& e, bool spread) {
  const uint32_t client = ip4(kClient), vip = ip4(kVip);
  // svclb: its own program creates the entries (CT hit if still there).
  // In a full LRU an entry can be evicted right after it was written (the
  // common LRU list is shared by every CPU): try a few times.
  Bytes ack = packet(e, Pkt::ToVipAck);
  auto ct = e.dp->conntrack();
  std::optional<ct_value> fwd;
  for (int attempt = 0; attempt < 10 && !(fwd && fwd->dir == CT_DIR_FORWARD); ++attempt) {
    Run r = xdpRun(e, e.dp->xdpProgFd(), ack, 1);
    if (r.retval != XDP_PASS) fail("establishing the hot flow failed");
    fwd = findCt(e, ctKey(client, kClientPort, vip, 80));
  }
  if (!fwd || fwd->dir != CT_DIR_FORWARD) {
    // Still evicted: write the flow's two entries as the program would.
    const auto& fe = e.syncer->actual().frontends.at(FrontendKey{vip, 80, bpftest::kTcp});
    const auto& be = fe.backends.front();
    ct_value f{};
    f.nat_addr = be.value.addr;
    f.nat_port = be.value.port;
    f.dir = CT_DIR_FORWARD;
    f.backend_id = be.id;
    f.svc_id = fe.svcId;
    ct_value rv = f;
    rv.nat_addr = htonl(vip);
    rv.nat_port = htons(80);
    rv.dir = CT_DIR_REPLY;
    (void)ct.update(ctKey(ntohl(be.value.addr), ntohs(be.value.port), client, kClientPort), rv);
    (void)ct.update(ctKey(client, kClientPort, vip, 80), f);
    fwd = f;
  }
  e.hotBeAddr = ntohl(fwd->nat_addr);
  e.hotBePort = ntohs(fwd->nat_port);
  // Ping-pong: the translated tuple translates back to the VIP. An ACK of
  // an established flow: its entry lives in ct_est_v2 (in ct_v2 every hit
  // on it would also look in ct_est_v2 first and try to promote it).
  ct_value back = *fwd;
  back.nat_addr = htonl(vip);
  back.nat_port = htons(80);
  (void)e.dp->conntrackEst().update(ctKey(client, kClientPort, e.hotBeAddr, e.hotBePort), back);
  // No real flow has a CT key toward a backend, so lb_filter_v1 takes the
  // CT path for it only if the backend's {address, port} is also in the
  // frontend bitmap: set there for this trick (one bit: every other row's
  // packets see the same bitmaps as before).
  if (auto st = setFilterBitInMap(e.dp->lbFilter(),
                                  LbFilter::ipv4(htonl(e.hotBeAddr), htons(e.hotBePort), false));
      !st)
    fail("lb_filter_v1: " + st.error().message);
  establishNodePort(e, false);
  establishNodePort(e, true);

  // IPv6: svclb's pod program creates the hot v6 flow (an ACK), as above;
  // the reference's entry is written directly.
  {
    const Bytes ack6 = packet(e, Pkt::ToVip6Ack);
    const ct6_key fk = ct6Key(kClient6, kClientPort, kVip6, 80);
    bool ok = false;
    for (int attempt = 0; attempt < 10 && !ok; ++attempt) {
      Run r = testRun(e.dp->tcProgFd(), ack6, 1);
      if (r.retval != TC_ACT_OK) fail("establishing the hot IPv6 flow failed");
      auto f = e.dp->conntrack6Est().lookup(fk);
      if (!f) f = e.dp->conntrack6().lookup(fk);
      ok = f && f->dir == CT_DIR_FORWARD;
    }
    if (!ok) fail("establishing the hot IPv6 flow: its CT entries keep disappearing");
    ct6_value v6{};
    std::memcpy(&v6.nat_addr, testlib::ip6(kBe6).data(), 16);
    v6.nat_port = htons(8080);
    v6.dir = CT_DIR_FORWARD;
    ct6_key k6 = ct6Key(kClient6, kClientPort, kVip6, 80);
    bpf_map_update_elem(bpf_map__fd(e.ref->maps.ref_ct6), &k6, &v6, BPF_ANY);
  }

  // References: CT entries written directly.
  int rct = bpf_map__fd(e.ref->maps.ref_ct);
  ct_value v{};
  v.nat_addr = htonl(ip4("10.244.1.11"));
  v.nat_port = htons(8080);
  v.dir = CT_DIR_FORWARD;
  ct_key k = ctKey(client, kClientPort, vip, 80);
  bpf_map_update_elem(rct, &k, &v, BPF_ANY);
  ct_value vb = v;
  vb.nat_addr = htonl(vip);
  vb.nat_port = htons(80);
  k = ctKey(client, kClientPort, ip4("10.244.1.11"), 8080);
  bpf_map_update_elem(rct, &k, &vb, BPF_ANY);

  if (!spread || e.fill == 0) return;
  // svclb: two passes of its own program over every fill service in order
  // (ACKs): the first creates each flow in ct_v2, the second is its first
  // CT hit and promotes it to ct_est_v2, where an established flow lives.
  // With one pass every measured hit would be a promotion (two inserts).
  Bytes fillPkt = packet(e, Pkt::ToFillVip);
  for (int pass = 0; pass < 2; ++pass) {
    int fd = setupWrap(e, Target::SvclbXdp, fillPkt, WRAP_SPREAD_DST | WRAP_SEQ, Keys::Spread,
                       Pkt::ToFillVip);
    xdpRun(e, fd, fillPkt, static_cast<int>(e.fill));
  }
  // References: batch write.
  std::vector<ct_key> keys(e.fill);
  std::vector<ct_value> vals(e.fill, v);
  for (uint32_t i = 0; i < e.fill; ++i) {
    keys[i] = ctKey(client, kClientPort, kFillVipBase + i, 80);
    vals[i].nat_addr = htonl(kFillBeBase + i);
    vals[i].nat_port = htons(kFillBePort);
  }
  batchPut(rct, keys, vals, "ref_ct");
}

// ---- counters --------------------------------------------------------------

struct Snapshot {
  lb_stats hot{};     // of the row's service
  lb_stats hotKey{};  // of the hot key (spread rows must not touch it)
  uint64_t allDrops = 0;
};

Snapshot snapshot(const Env& e, Svc svc) {
  Snapshot s;
  s.hot = e.dp->frontendStats(e.svcIds.at(svc));
  s.hotKey = e.dp->frontendStats(e.hotSvcId);
  for (uint32_t r = 0; r < DROP_MAX; ++r) s.allDrops += sumDrops(e.dp->drops().lookup(r)).packets;
  return s;
}

// "" when the counters show R iterations on the intended path.
std::string checkPath(const PathCase& c, const Snapshot& a, const Snapshot& b, uint64_t r) {
  const uint64_t flows = b.hot.flows - a.hot.flows, pk = b.hot.packets - a.hot.packets;
  const uint64_t rp = b.hot.reply_packets - a.hot.reply_packets, drops = b.allDrops - a.allDrops;
  switch (c.check) {
    case Check::None:
      return "";
    case Check::Flows:
      if (flows != r || pk != r)
        return fmt::format("expected {} new flows, saw {} ({} packets)", r, flows, pk);
      break;
    case Check::Hits:
      if (pk != r || flows != 0)
        return fmt::format("expected {} CT hits, saw {} packets and {} new flows", r, pk, flows);
      break;
    case Check::Replies:
      if (rp != r) return fmt::format("expected {} reply packets, saw {}", r, rp);
      break;
    case Check::Rejects:
      if (b.hot.rejects - a.hot.rejects != r)
        return fmt::format("expected {} rejects, saw {}", r, b.hot.rejects - a.hot.rejects);
      break;
    case Check::NoDrops:
      break;
  }
  if (drops != 0) return fmt::format("{} unexpected drops", drops);
  return "";
}

// ---- measuring ---------------------------------------------------------------

struct Series {
  std::string id, what, prog, keys, method;
  uint32_t n = 0;
  std::vector<double> samples, net;
  std::string floorId;
  std::string error;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

nlohmann::json stat(const std::vector<double>& v) {
  if (v.empty()) return nullptr;
  return {{"min", *std::min_element(v.begin(), v.end())},
          {"median", median(v)},
          {"max", *std::max_element(v.begin(), v.end())},
          {"samples", v}};
}

// The floor row of a wrapped row: the wrapper in the same mode in front of a
// bare XDP_PASS / TC_ACT_OK.
std::string floorId(const PathCase& c) {
  return fmt::format("floor.{}.wrap{}{}{}", isTc(c.target) ? "tc" : "xdp",
                     (c.wrapMode & WRAP_IPV6) ? "6" : "",
                     (c.wrapMode & WRAP_VARY_SRC) ? "_vary_src" : "",
                     (c.wrapMode & (WRAP_SPREAD_DST | WRAP_SPREAD_SRC)) ? "_spread" : "");
}

std::vector<Series> measure(Env& e, const Options& o) {
  auto cases = pathCases();
  if (!o.only.empty()) {
    const std::regex only(o.only);
    std::erase_if(cases, [&](const PathCase& c) { return !std::regex_search(c.id, only); });
  }
  // Floors for every wrapper mode in use.
  std::map<std::string, PathCase> floors;
  for (const auto& c : cases) {
    if (c.method != Method::Wrap) continue;
    if (c.keys == Keys::Spread && e.fill == 0) continue;
    PathCase f = c;
    f.id = floorId(c);
    f.what = "re-run wrapper alone (in front of a bare pass)";
    f.target = isTc(c.target) ? Target::RefTcOk : Target::RefXdpPass;
    f.check = Check::None;
    f.expect = isTc(c.target) ? TC_ACT_OK : XDP_PASS;
    f.prep = Prep::None;
    floors.emplace(f.id + keysName(c.keys) + (f.newFlow ? "nf" : ""), f);
  }
  std::vector<PathCase> all;
  for (auto& [k, f] : floors) all.push_back(f);
  // Hit rows first, new-flow rows last in each round (they evict).
  std::stable_sort(cases.begin(), cases.end(),
                   [](const PathCase& a, const PathCase& b) { return a.newFlow < b.newFlow; });
  for (const auto& c : cases)
    if (!(c.keys == Keys::Spread && e.fill == 0)) all.push_back(c);

  std::vector<Series> out(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& c = all[i];
    out[i].id = c.id;
    out[i].what = c.what;
    out[i].prog = isTc(c.target) ? "tc" : "xdp";
    out[i].keys = keysName(c.keys);
    out[i].method = methodName(c.method);
    out[i].n = e.n;
    if (c.method == Method::Wrap && c.target != Target::RefXdpPass && c.target != Target::RefTcOk)
      out[i].floorId = floorId(c);
  }
  bool anySpread =
      std::any_of(all.begin(), all.end(), [](auto& c) { return c.keys == Keys::Spread; });

  for (int rep = 0; rep < o.reps; ++rep) {
    establish(e, anySpread);
    for (size_t i = 0; i < all.size(); ++i) {
      const auto& c = all[i];
      if (!out[i].error.empty()) continue;
      const int r = c.newFlow ? o.newFlowRepeat : o.repeat;
      Bytes pkt = packet(e, c.pkt);
      int fd;
      if (c.method == Method::Wrap) {
        fd = setupWrap(e, c.target, pkt, c.wrapMode, c.keys, c.pkt);
      } else {
        fd = targetFd(e, c.target);
      }
      Snapshot before = snapshot(e, c.svc);
      const uint64_t c0 = e.wrap->bss->counter;
      Run run = testRun(fd, pkt, r, isTc(c.target) ? 0 : e.nic0);
      Snapshot after = snapshot(e, c.svc);
      if (c.svc == Svc::NpRemote && c.newFlow) releaseSnatPorts(e, c0, e.wrap->bss->counter);
      if (run.retval != c.expect) {
        out[i].error = fmt::format("verdict {} instead of {}", run.retval, c.expect);
      } else if (c.target == Target::SvclbXdp || c.target == Target::SvclbTc) {
        // Spread rows do not touch the hot service at all.
        std::string err = checkPath(c, before, after, static_cast<uint64_t>(r));
        if (c.keys == Keys::Spread && after.hotKey.packets != before.hotKey.packets)
          err = "spread row touched the hot service";
        if (!err.empty()) out[i].error = err;
      }
      out[i].samples.push_back(run.duration);
      if (o.verbose)
        fmt::print(stderr, "  N={} {} {} {} rep {}: {} ns{}\n", e.n, c.id, keysName(c.keys),
                   methodName(c.method), rep, run.duration,
                   out[i].error.empty() ? "" : " ERROR " + out[i].error);
    }
  }
  // Net of the wrapper, per round.
  for (auto& s : out) {
    if (s.floorId.empty()) continue;
    for (auto& f : out) {
      if (f.id == s.floorId && f.keys == s.keys && f.samples.size() == s.samples.size()) {
        for (size_t k = 0; k < s.samples.size(); ++k) s.net.push_back(s.samples[k] - f.samples[k]);
        break;
      }
    }
  }
  return out;
}

std::string readFirstLine(const std::string& path, const std::string& prefix = "") {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (prefix.empty() || line.rfind(prefix, 0) == 0) return line;
  return "";
}

std::vector<uint32_t> parseList(const std::string& s) {
  std::vector<uint32_t> v;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t c = s.find(',', pos);
    std::string tok = s.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    uint32_t mult = 1;
    if (!tok.empty() && (tok.back() == 'k' || tok.back() == 'K')) mult = 1000, tok.pop_back();
    if (!tok.empty() && (tok.back() == 'm' || tok.back() == 'M')) mult = 1000000, tok.pop_back();
    v.push_back(static_cast<uint32_t>(std::stoul(tok)) * mult);
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return v;
}

void usage() {
  fmt::print(
      "usage: svclb-bench-perpacket [--services 1,1k,100k,1M] [--repeat N] [--new-flow-repeat N]\n"
      "                             [--reps N] [--ct-entries N] [--only REGEX] [--json FILE] [-v]\n"
      "  --only: measure only the rows whose id matches REGEX (their wrapper floors too)\n");
}

}  // namespace
}  // namespace svclb::bench

int main(int argc, char** argv) {
  using namespace svclb::bench;
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--services")
      o.services = parseList(next());
    else if (a == "--repeat")
      o.repeat = std::stoi(next());
    else if (a == "--new-flow-repeat")
      o.newFlowRepeat = std::stoi(next());
    else if (a == "--reps")
      o.reps = std::stoi(next());
    else if (a == "--ct-entries")
      o.ctEntries = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--json")
      o.json = next();
    else if (a == "--only")
      o.only = next();
    else if (a == "-v")
      o.verbose = true;
    else {
      usage();
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (geteuid() != 0) {
    fmt::print(stderr,
               "svclb-bench-perpacket: needs root (map creation, BPF_PROG_TEST_RUN); skipped\n");
    return 77;
  }
  if (o.repeat < 1 || o.newFlowRepeat < 1 || o.reps < 1 || o.ctEntries < 1024) {
    usage();
    return 2;
  }
  if (!o.only.empty()) {
    try {
      std::regex check(o.only);
    } catch (const std::regex_error& err) {
      fmt::print(stderr,
                 "svclb-bench-perpacket: --only '{}' is not a valid regular expression: {}\n",
                 o.only, err.what());
      return 2;
    }
  }
  if (static_cast<uint32_t>(o.newFlowRepeat) > kMaxNewFlowRepeat) {
    fmt::print(
        stderr,
        "svclb-bench-perpacket: --new-flow-repeat {} is above {}: a remote NodePort run would take "
        "more than 1/8 of the SNAT ports ({} backends x {} ports) and new flows would probe for "
        "free ones\n",
        o.newFlowRepeat, kMaxNewFlowRepeat, kNpRemoteBackends, kSnatPortMax - kSnatPortMin + 1);
    return 2;
  }
  libbpf_set_print([](enum libbpf_print_level l, const char* f, va_list ap) {
    return l == LIBBPF_WARN ? vfprintf(stderr, f, ap) : 0;
  });

  nlohmann::json j;
  utsname u{};
  uname(&u);
  j["tool"] = "svclb-bench-perpacket";
  j["kernel"] = std::string(u.release);
  j["host"] = std::string(u.nodename);
  auto cpu = readFirstLine("/proc/cpuinfo", "model name");
  j["cpu"] = cpu.substr(cpu.find(':') == std::string::npos ? 0 : cpu.find(':') + 2);
  j["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  j["config"] = {{"repeat", o.repeat},
                 {"new_flow_repeat", o.newFlowRepeat},
                 {"reps", o.reps},
                 {"ct_entries", o.ctEntries},
                 {"frame_bytes", 64},
                 {"services", o.services},
                 {"service_writes", "planSync + Syncer::apply (the daemon's path)"}};
  j["nodeport"] = {
      {"netns", "private (unshare): nic0 192.168.77.2/24 in tx_ports_v1, ingress of every XDP run"},
      {"local", fmt::format("{}:{} -> {}:{}", kNodeIp, kNpLocalPort, kNpLocalBe, kNpBePort)},
      {"remote",
       fmt::format("{}:{} -> {} backends {}+i:{} via 192.168.77.1", kNodeIp, kNpRemotePort,
                   kNpRemoteBackends, svclb::testlib::ip4str(kNpRemoteBeBase), kNpBePort)},
      {"snat_ports",
       fmt::format("{}-{}, released after every remote new-flow run", kSnatPortMin, kSnatPortMax)}};
  j["not_implemented"] = kNotYet;
  j["results"] = nlohmann::json::array();
  j["load"] = nlohmann::json::array();
  bool ok = true;

  // Before anything is loaded: the devmap and the FIB lookups need nic0.
  NodeNetns node;
  if (auto err = node.up(); !err.empty()) {
    node.down();
    fmt::print(stderr, "svclb-bench-perpacket: setting up the private network namespace: {}\n",
               err);
    return 1;
  }

  for (uint32_t n : o.services) {
    Env e;
    auto t0 = Clock::now();
    loadEnv(e, n, o, node.nic0());
    fmt::print(stderr, "N={}: {} services written by Syncer in {:.2f} s\n", n,
               e.fill + fixedCount(), e.loadSeconds);
    prefillCt(e, o);
    auto series = measure(e, o);
    j["load"].push_back(
        {{"n", n}, {"services", e.fill + fixedCount()}, {"syncer_seconds", e.loadSeconds}});
    fmt::print("N={:<8} {:<34} {:<6} {:<8} {:>7} {:>7} {:>7}  {:>7}\n", n, "path", "keys", "method",
               "min", "median", "max", "net med");
    for (const auto& s : series) {
      nlohmann::json r = {{"n", n},
                          {"id", s.id},
                          {"what", s.what},
                          {"prog", s.prog},
                          {"keys", s.keys},
                          {"method", s.method},
                          {"ns", stat(s.samples)},
                          {"path_ok", s.error.empty()}};
      if (!s.net.empty()) r["net_ns"] = stat(s.net), r["floor"] = s.floorId;
      if (!s.error.empty()) r["error"] = s.error, ok = false;
      j["results"].push_back(r);
      auto mm = std::minmax_element(s.samples.begin(), s.samples.end());
      fmt::print("N={:<8} {:<34} {:<6} {:<8} {:>7.0f} {:>7.0f} {:>7.0f}  {:>7}{}\n", n, s.id,
                 s.keys, s.method, *mm.first, median(s.samples), *mm.second,
                 s.net.empty() ? std::string("-") : fmt::format("{:.0f}", median(s.net)),
                 s.error.empty() ? "" : "  PATH ERROR: " + s.error);
    }
    fmt::print(stderr, "N={}: done in {:.1f} s\n", n,
               std::chrono::duration<double>(Clock::now() - t0).count());
  }
  node.down();
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << j.dump(1) << "\n";
    if (!f) {
      fmt::print(stderr, "svclb-bench-perpacket: cannot write {}\n", o.json);
      return 1;
    }
  }
  if (!ok)
    fmt::print(stderr,
               "svclb-bench-perpacket: some rows did not stay on their path (see PATH ERROR)\n");
  return ok ? 0 : 1;
}
