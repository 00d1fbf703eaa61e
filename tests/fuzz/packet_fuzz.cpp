// packet_fuzz: random and mutated frames through the THREE packet programs
// (tc svclb_tc_pod_in on a pod's veth, XDP svclb_xdp_lb and tc
// svclb_tc_ext_in on a node NIC) with BPF_PROG_TEST_RUN, against populated
// maps written by the daemon's own path (Dataplane + Syncer).
//
// Every frame is checked against a reference model of the documented packet
// path (docs/architecture.md, "The packet path"): an independent parser of
// the acceptance rules plus lb4_decide's decision, fed by the CT entry the
// kernel holds for the frame's 5-tuple just before the run, and an
// independent model of the routes of the private network namespace the
// fuzzer runs in (see tests/testlib/node_netns.h). Invariants:
//   - the verdict is one the entry may return (tc OK/SHOT/REDIRECT, XDP
//     PASS/DROP/TX/REDIRECT) and the one the model expects;
//   - a frame the model does not translate leaves byte-identical with PASS;
//   - a DNATed frame: only the NAT fields changed, its destination is a
//     backend of the frontend it was sent to (the CT entry's backend for an
//     established flow), never a VIP, and both CT entries exist afterwards;
//   - a reverse-NATed frame: its source is the VIP:port from the CT entry;
//   - node-facing frontends (NodePort, LoadBalancer IP, externalIP) with a
//     backend on another node: a source-NATed frame has the node's address
//     and a port of the SNAT range as source (a port no live flow to that
//     backend holds), a backend of the frontend as destination, TTL - 1 and
//     the FIB's MACs where the program forwards it itself (XDP_TX, tc
//     redirect); its reply goes to the original client:port from the
//     frontend's address:port; no SNAT port free = a counted drop;
//   - loadBalancerSourceRanges, externalTrafficPolicy Local without local
//     endpoints: counted drops; ARP requests for an announced address are
//     answered (XDP_TX, or a redirect from tc), every other ARP frame is untouched;
//   - IP fragments (issue 17): a first fragment is any packet (and the
//     model records its ports, as frag_v1 does); a later fragment of a
//     recorded datagram gets its flow's translation in its IP header only
//     (every other byte untouched) and never makes a flow; one of an
//     unrecorded datagram passes untouched and is counted
//     (CT_EV_FRAG_NO_FIRST);
//   - checksums that were valid on input are valid on output (a UDP
//     checksum of 0 stays 0);
//   - a drop is expected by the model and counted under its reason;
//   - the per-service/per-backend/drop counters equal the model's tally
//     (checked every --check-every frames and at the end).
// The same frame runs through all three programs back to back (random
// order); the later runs hit the CT entry the first created, so all must
// agree on the backend.
//
// The FIB lookups need routes and neighbours: the fuzzer moves its (only)
// thread into a private network namespace (unshare) holding a "node":
//   nic0  192.168.77.2/24, a node NIC (in tx_ports_v1); permanent
//         neighbours 192.168.77.1 (node1) and the external clients
//         192.168.77.96-111; 10.244.1.0/24 via 192.168.77.1 (pods of
//         node1); 10.244.3.0/24 via 192.168.77.3 (no neighbour: XDP hands
//         such flows to tc, which uses bpf_redirect_neigh)
//   pod0  a local pod's veth: 10.244.2.21/32 dev pod0
// Nothing touches the namespace the fuzzer was started in; the private one
// disappears with the process.
//
//   packet_fuzz --packets N --seed S [--check-every K] [--max-failures M]
//               [--artifacts DIR] [--quiet] [--record FILE] [--corrupt-at N]
//   packet_fuzz --replay FILE
//
// Replay (issue 18). A seed alone does not reproduce a run: the kernel's
// random choices (backend, SNAT port) and LRU evictions differ, so the flows
// the generator answers differ. So the fuzzer runs pinned to one CPU and
// keeps, since its last counter check (--check-every frames): a snapshot of
// the CT and affinity maps with the CT tick and CLOCK_MONOTONIC at that
// point, then every frame (bytes, category, the CT tick it saw, the order of
// the three programs), every map write the fuzzer itself made (expired SNAT
// flows, --corrupt-at), each run's verdict and output, and the CT entries a
// new flow created. On its first violation it writes that window to
// --record FILE (default $TMPDIR/packet_fuzz-SEED-PID.replay) and says so.
// --replay FILE loads the same frontends, pins the same CPU, restores the
// snapshot with its ages kept (last_seen and affinity times moved to the
// replay's clock), runs the frames in order with the same checks, waiting
// for the CT tick to advance where the recording's did, and puts the
// recorded CT entries in place where the kernel chose another backend or
// SNAT port for a new flow. It reports where the outputs differ from the
// recording and exits 0 only if the recorded violation reproduced (same
// packet, program and message). LRU eviction order is the one thing it
// cannot restore from user space: a divergence it causes is reported.
// Exit status 0 = no violation. Needs root (netns, map creation,
// BPF_PROG_TEST_RUN).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "loader/dataplane.h"
#include "loader/syncer.h"
#include "model/model.h"
#include "tests/testlib/node_netns.h"
#include "tests/testlib/packet.h"

namespace svclb::fuzz {
namespace {

using testlib::Bytes;
using testlib::ip4;
using testlib::ip4str;
using testlib::PacketBuilder;

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;
constexpr size_t kEth = 14;

// ---- options ------------------------------------------------------------------

struct Options {
  uint64_t packets = 200000;
  uint64_t seed = 1;
  uint64_t checkEvery = 10000;
  int maxFailures = 10;
  uint32_t ctEntries = 4096;
  std::string artifacts;
  bool quiet = false;
  std::string record;      // where the first failure's recording goes ("" = $TMPDIR)
  std::string replay;      // a recording to run again
  uint64_t corruptAt = 0;  // test of the replay: corrupt some REPLY entries before this frame
};

bool parseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (!(v = next())) {
      fmt::print(stderr, "packet_fuzz: {} needs a value\n", a);
      return false;
    }
    if (a == "--packets")
      o.packets = std::stoull(v);
    else if (a == "--seed")
      o.seed = std::stoull(v);
    else if (a == "--check-every")
      o.checkEvery = std::max<uint64_t>(1, std::stoull(v));
    else if (a == "--max-failures")
      o.maxFailures = std::stoi(v);
    else if (a == "--ct-entries")
      o.ctEntries = static_cast<uint32_t>(std::stoul(v));
    else if (a == "--artifacts")
      o.artifacts = v;
    else if (a == "--record")
      o.record = v;
    else if (a == "--replay")
      o.replay = v;
    else if (a == "--corrupt-at")
      o.corruptAt = std::stoull(v);
    else {
      fmt::print(stderr, "packet_fuzz: unknown option {}\n", a);
      return false;
    }
  }
  return true;
}

// ---- byte helpers ---------------------------------------------------------------

uint16_t get16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}
uint32_t get32(const Bytes& b, size_t off) {
  return (static_cast<uint32_t>(get16(b, off)) << 16) | get16(b, off + 2);
}
void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t off, uint32_t v) {
  put16(b, off, static_cast<uint16_t>(v >> 16));
  put16(b, off + 2, static_cast<uint16_t>(v));
}

// ---- the reference parser (independent of bpf/lib/parse.h) ----------------------
// The documented acceptance rules: untagged Ethernet/IPv4, version 4,
// IHL >= 5, TCP or UDP, tot_len >= IHL + 8 and within the frame; TCP:
// tot_len >= IHL + 20 and data offset >= 5. IP options are fine; checksums
// are not the program's business (the stack verifies them). A first
// fragment (MF, offset 0) is any packet; a later one (offset != 0) only
// needs tot_len > IHL within the frame, and has no ports of its own
// (`later`: the Fuzzer's fragment table gives them, bpf/lib/frag.h).
struct Ref {
  size_t l3 = kEth, l4 = 0, csumOff = 0;
  uint16_t totLen = 0;
  uint8_t proto = 0;
  uint32_t saddr = 0, daddr = 0;  // host order
  uint16_t sport = 0, dport = 0;  // host order
  uint16_t ipId = 0;
  bool first = false, later = false;  // a first / later IP fragment
};

// An IPv6 fragment of a TCP/UDP datagram as parse_ipv6 (bpf/lib/parse.h)
// takes it: a first fragment parsed whole, or a later one parsed up to its
// fragment header. The fuzzer has no IPv6 Service, so such frames pass
// untouched; what it models is frag6_v1 (bpf/lib/frag.h): every first
// fragment records {saddr, daddr, identification, protocol}, a later one
// without its first is counted (fragment_without_first, shared with IPv4).
struct Frag6 {
  std::string key;  // saddr, daddr, identification, protocol
  bool later = false;
};
std::optional<Frag6> frag6Parse(const Bytes& f) {
  if (f.size() < kEth + 40 || get16(f, 12) != 0x86dd || (f[kEth] >> 4) != 6) return std::nullopt;
  const size_t payload = get16(f, kEth + 4);
  if (payload == 0 || payload + kEth + 40 > f.size()) return std::nullopt;
  uint8_t nh = f[kEth + 6];
  size_t off = kEth + 40;
  std::optional<Frag6> fr;
  auto keyOf = [&](size_t fh, uint8_t proto) {
    std::string k(f.begin() + kEth + 8, f.begin() + kEth + 40);
    k.append(f.begin() + static_cast<long>(fh + 4), f.begin() + static_cast<long>(fh + 8));
    k.push_back(static_cast<char>(proto));
    return k;
  };
  for (int i = 0; i < 4; ++i) {
    if (nh == kTcp || nh == kUdp) break;
    if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51) return std::nullopt;
    if (off + 8 > f.size()) return std::nullopt;
    size_t len;
    if (nh == 44) {
      const uint16_t fo = get16(f, off + 2);
      if (fo & 0xfff9) {
        if (f[off] != kTcp && f[off] != kUdp) return std::nullopt;
        if (fo & 0xfff8) return Frag6{keyOf(off, f[off]), true};
        fr = Frag6{keyOf(off, f[off]), false};
      }
      len = 8;
    } else if (nh == 51) {
      len = (static_cast<size_t>(f[off + 1]) + 2) * 4;
    } else {
      len = (static_cast<size_t>(f[off + 1]) + 1) * 8;
    }
    nh = f[off];
    off += len;
    if (off > kEth + 242) return std::nullopt;  // PARSE6_MAX_HDR (256 from the frame's start)
  }
  if (!fr || (nh != kTcp && nh != kUdp)) return std::nullopt;
  const size_t end = kEth + 40 + payload;
  if (off + 8 > end) return std::nullopt;
  if (nh == kTcp) {
    if (off + 20 > end || off + 20 > f.size() || (f[off + 12] >> 4) < 5) return std::nullopt;
  } else if (off + 8 > f.size()) {
    return std::nullopt;
  }
  return fr;
}

std::optional<Ref> refParse(const Bytes& f) {
  if (f.size() < kEth + 20 || get16(f, 12) != 0x0800) return std::nullopt;
  Ref r;
  const uint8_t vihl = f[kEth];
  if ((vihl >> 4) != 4 || (vihl & 0x0f) < 5) return std::nullopt;
  r.proto = f[kEth + 9];
  if (r.proto != kTcp && r.proto != kUdp) return std::nullopt;
  const size_t ihl = (vihl & 0x0f) * 4u;
  r.totLen = get16(f, kEth + 2);
  const uint16_t frag = get16(f, kEth + 6);
  r.ipId = get16(f, kEth + 4);
  r.first = (frag & 0x3fff) == 0x2000;  // MF, offset 0
  if (frag & 0x1fff) {                  // offset != 0
    if (r.totLen <= ihl || kEth + r.totLen > f.size()) return std::nullopt;
    r.later = true;
    r.l4 = kEth + ihl;
    r.saddr = get32(f, kEth + 12);
    r.daddr = get32(f, kEth + 16);
    return r;
  }
  if (r.totLen < ihl + 8 || kEth + r.totLen > f.size()) return std::nullopt;
  r.l4 = kEth + ihl;
  if (r.proto == kTcp) {
    if (r.totLen < ihl + 20) return std::nullopt;
    if ((f[r.l4 + 12] >> 4) < 5) return std::nullopt;
    r.csumOff = r.l4 + 16;
  } else {
    r.csumOff = r.l4 + 6;
  }
  r.saddr = get32(f, kEth + 12);
  r.daddr = get32(f, kEth + 16);
  r.sport = get16(f, r.l4);
  r.dport = get16(f, r.l4 + 2);
  return r;
}

// Checksum state of a frame the reference parser accepts.
bool ipCsumOk(const Bytes& f, const Ref& r) {
  return testlib::inetChecksum(&f[r.l3], r.l4 - r.l3) == 0;
}
bool l4CsumOk(const Bytes& f, const Ref& r) {
  const uint16_t l4len = static_cast<uint16_t>(r.totLen - (r.l4 - r.l3));
  uint32_t s =
      (r.saddr >> 16) + (r.saddr & 0xffff) + (r.daddr >> 16) + (r.daddr & 0xffff) + r.proto + l4len;
  return testlib::inetChecksum(&f[r.l4], l4len, s) == 0;
}
// Recomputes the IPv4 header and TCP/UDP checksums when the headers are
// readable (used to make a mutated frame "valid except for the mutation").
void fixChecksums(Bytes& f) {
  if (f.size() < kEth + 20 || get16(f, 12) != 0x0800 || (f[kEth] >> 4) != 4) return;
  const size_t ihl = (f[kEth] & 0x0f) * 4u;
  if (ihl < 20 || kEth + ihl > f.size()) return;
  put16(f, kEth + 10, 0);
  put16(f, kEth + 10, testlib::inetChecksum(&f[kEth], ihl));
  const uint8_t proto = f[kEth + 9];
  const uint16_t tot = get16(f, kEth + 2);
  if ((proto != kTcp && proto != kUdp) || tot < ihl + (proto == kTcp ? 20 : 8) ||
      kEth + tot > f.size())
    return;
  const size_t l4 = kEth + ihl, co = l4 + (proto == kTcp ? 16 : 6);
  if (proto == kUdp && get16(f, co) == 0) return;  // keep "no checksum"
  const uint16_t l4len = static_cast<uint16_t>(tot - ihl);
  const uint32_t sa = get32(f, kEth + 12), da = get32(f, kEth + 16);
  put16(f, co, 0);
  uint16_t c = testlib::inetChecksum(
      &f[l4], l4len, (sa >> 16) + (sa & 0xffff) + (da >> 16) + (da & 0xffff) + proto + l4len);
  if (proto == kUdp && c == 0) c = 0xffff;
  put16(f, co, c);
}

// ---- the services --------------------------------------------------------------

BackendSpec be(const std::string& ip, uint16_t port) {
  BackendSpec b;
  b.ip = ip4(ip);
  b.port = port;
  return b;
}
Frontend fe(const std::string& vip, uint16_t port, uint8_t proto, std::vector<BackendSpec> bes,
            const std::string& name, const std::string& algo = "", bool affinity = false) {
  Frontend f;
  f.key = FrontendKey{ip4(vip), port, proto};
  f.ns = "default";
  f.name = name;
  std::sort(bes.begin(), bes.end(), [](const auto& a, const auto& b) {
    return std::pair(a.ip, a.port) < std::pair(b.ip, b.port);
  });
  f.backends = std::move(bes);
  if (!algo.empty()) f.annotations[kLbAlgorithmAnnotation] = algo;
  f.affinity = affinity;
  f.affinityTimeout = affinity ? 10800 : 0;
  return f;
}

// Several VIPs and ports, TCP and UDP, random and Maglev selection, one
// with ClientIP affinity, a backend address:port shared by two frontends, a
// same-port frontend (no port rewrite), one without endpoints (its new
// flows are rejected: TCP RST / ICMP port unreachable) and one with the local
// pod 10.244.2.21 among its backends (that pod reaching it may land on
// itself: hairpin).
std::vector<Frontend> clusterFrontends() {
  return {
      fe("10.96.0.10", 80, kTcp,
         {be("10.244.1.11", 8080), be("10.244.1.12", 8080), be("10.244.1.13", 8080)}, "web",
         "maglev"),
      fe("10.96.0.10", 53, kUdp, {be("10.244.1.11", 5353), be("10.244.1.12", 5353)}, "dns"),
      fe("10.96.0.11", 443, kTcp, {be("10.244.1.31", 443)}, "tls"),
      fe("10.96.0.12", 53, kUdp, {be("10.244.1.41", 5353)}, "dns-one"),
      fe("10.96.0.13", 80, kTcp, {}, "empty"),
      fe("10.96.0.14", 9000, kUdp, {be("10.244.1.11", 5353), be("10.244.1.42", 5353)}, "shared", "",
         true),
      fe("10.96.0.15", 80, kTcp, {be("10.244.2.21", 8080), be("10.244.1.11", 8080)}, "self"),
  };
}

// ---- the node (private netns) and its routes -------------------------------------

using Mac = std::array<uint8_t, 6>;
const uint32_t kNodeIp = ip4("192.168.77.2");
const Mac kNic0Mac = {0x02, 0x77, 0, 0, 0, 0x02}, kNode1Mac = {0x02, 0x77, 0, 0, 0, 0x01};
const Mac kPod0Mac = {0x02, 0x44, 0, 0, 0, 0x01}, kPodMac = {0x02, 0x44, 0, 0, 0, 0x21};
const uint32_t kExtClient0 = ip4("192.168.77.96");  // 16 clients with a neighbour entry
constexpr uint32_t kExtClients = 16;
Mac clientMac(uint32_t ip) { return {0x02, 0x77, 0, 0, 1, static_cast<uint8_t>(ip & 0xff)}; }
const uint32_t kLbIp = ip4("192.168.77.200"), kExternalIp = ip4("192.168.77.50");
// Small on purpose: ports run out (a counted drop) and are freed again by
// LRU churn; the model checks every candidate port of a new flow.
constexpr uint16_t kSnatMin = 61000, kSnatMax = 61031;
constexpr uint64_t kSnatExpireEvery = 1000;  // frames

// The private namespace (tests/testlib/node_netns.h) plus a permanent
// neighbour for each external client. unshare() moves the calling thread
// only: the fuzzer is single-threaded.
std::string nodeNetnsUp(testlib::NodeNetns& ns) {
  std::vector<std::string> extra;
  for (uint32_t i = 0; i < kExtClients; ++i)
    extra.push_back(
        fmt::format("ip neigh replace {} lladdr 02:77:00:00:01:{:02x} nud permanent dev nic0",
                    ip4str(kExtClient0 + i), (kExtClient0 + i) & 0xff));
  return ns.up(extra);
}

// bpf_fib_lookup's answer for a destination, restated from the routes above.
enum class FibRc { Success, NoNeigh, NotForwarded };
struct FibAnswer {
  FibRc rc = FibRc::NotForwarded;
  bool viaNic0 = false;  // out of the node NIC (a tx port); else pod0
  Mac dmac{}, smac{};
};
// Whether the kernel routes the LAN's network address (192.168.77.0) as an
// on-link unicast host. Older kernels install a broadcast route for it; 6.18
// installs none, so a flow from a client at .0 has its replies forwarded
// (no neighbour: bpf_redirect_neigh). Asked of the kernel at setup
// (`ip route get` in the fuzzer's namespace), never assumed: assuming
// "broadcast" made 10M-frame runs fail now and then (issue 18).
bool gNetworkAddrUnicast = false;

FibAnswer fibModel(uint32_t dst) {
  FibAnswer f;
  if ((dst >> 8) == (ip4("192.168.77.0") >> 8)) {
    const uint32_t h = dst & 0xff;
    if (dst == kNodeIp || h == 255 || (h == 0 && !gNetworkAddrUnicast))
      return f;  // local / broadcast
    f.viaNic0 = true, f.smac = kNic0Mac;
    if (dst == ip4("192.168.77.1"))
      f.rc = FibRc::Success, f.dmac = kNode1Mac;
    else if (dst - kExtClient0 < kExtClients)
      f.rc = FibRc::Success, f.dmac = clientMac(dst);
    else
      f.rc = FibRc::NoNeigh;
    return f;
  }
  if ((dst >> 8) == (ip4("10.244.1.0") >> 8)) return {FibRc::Success, true, kNode1Mac, kNic0Mac};
  if ((dst >> 8) == (ip4("10.244.3.0") >> 8)) return {FibRc::NoNeigh, true, {}, kNic0Mac};
  if (dst == ip4("10.244.2.21")) return {FibRc::Success, false, kPodMac, kPod0Mac};
  return f;  // no route (or a local one)
}

Frontend ext(uint32_t vip, uint16_t port, uint8_t proto, std::vector<BackendSpec> bes,
             const std::string& name, uint8_t flags, const std::string& algo = "") {
  Frontend f = fe(ip4str(vip), port, proto, std::move(bes), name, algo);
  f.flags = flags;
  return f;
}

// Node-facing frontends: NodePorts on the node address with backends on
// another node (SNAT, XDP_TX), here (DNAT only) and behind a next hop
// without neighbour entry (XDP passes, tc redirects with
// bpf_redirect_neigh); a LoadBalancer IP (announced by ARP) with
// loadBalancerSourceRanges; an externalIP with externalTrafficPolicy Local;
// Local without local endpoints (drop); and one without any endpoint
// (reject).
std::vector<Frontend> externalFrontends() {
  Frontend lb = ext(kLbIp, 80, kTcp, {be("10.244.1.13", 80), be("10.244.2.21", 80)}, "lb",
                    SVC_F_EXTERNAL | SVC_F_SRC_RANGES);
  lb.sourceRanges = {{ip4("192.168.77.96"), 29}, {ip4("192.168.77.110"), 32}};
  return {
      ext(kNodeIp, 30080, kTcp,
          {be("10.244.1.11", 8080), be("10.244.1.12", 8080), be("10.244.2.21", 8080)}, "np-web",
          SVC_F_EXTERNAL),
      ext(kNodeIp, 30053, kUdp, {be("10.244.1.11", 5353), be("10.244.3.11", 5353)}, "np-dns",
          SVC_F_EXTERNAL, "maglev"),
      lb,
      ext(kExternalIp, 53, kUdp, {be("10.244.2.21", 53)}, "eip-local",
          SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY),
      ext(kNodeIp, 30081, kTcp, {}, "np-local-none",
          SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY | SVC_F_NO_LOCAL_EPS),
      ext(kNodeIp, 30082, kUdp, {}, "np-empty", SVC_F_EXTERNAL),
  };
}

std::vector<Frontend> fuzzFrontends() {
  auto f = clusterFrontends();
  for (auto& e : externalFrontends()) f.push_back(std::move(e));
  return f;
}

bool inRanges(uint32_t addr, const std::vector<SourceRange>& rs) {
  for (const auto& r : rs) {
    const uint32_t mask = r.prefix == 0 ? 0 : ~0u << (32 - r.prefix);
    if ((addr & mask) == r.addr) return true;
  }
  return false;
}

// ---- the model -----------------------------------------------------------------

enum class Prog { Pod = 0, Xdp = 1, TcExt = 2 };
const char* kProgNames[] = {"svclb_tc_pod_in", "svclb_xdp_lb", "svclb_tc_ext_in"};
constexpr uint32_t kXdpRedirect = 4;

// Reject: a new flow to a Service without endpoints is answered (issue 4):
// TCP RST / ICMP port unreachable sent back (tc redirect, XDP_TX).
// Arp: an ARP request for an announced address, answered (XDP_TX / redirect).
enum class Expect { Identical, Dnat, Rnat, Drop, Reject, Arp };

// How a translated frame must leave, given the backend it went to (a new
// flow may get any of several, each with its own way out).
struct Outcome {
  Expect kind = Expect::Dnat;  // Dnat, Rnat, Drop, or Identical (XDP: no neighbour, tc's job)
  uint32_t verdict = 0;        // Dnat / Rnat / Identical
  uint32_t dropReason = 0;     // Drop
  uint32_t addr = 0;           // Dnat: new destination; Rnat: new source
  uint16_t port = 0;
  bool snat = false;      // both ends rewritten (CT_F_SNAT)
  bool hairpin = false;   // CT_F_HAIRPIN: a pod's flow to itself, sent back into the pod
  bool single = false;    // new flow: one CT entry (CT_F_SINGLE, the backend's designated frontend)
  uint32_t snatAddr = 0;  // Dnat: new source (the node); Rnat: new destination (the client)
  uint16_t snatPort = 0;  // 0 for a new flow: any of freePorts
  std::vector<uint16_t> freePorts;  // new SNAT flow: ports no live flow to this backend holds
  bool portsMayRunOut = false;      // new SNAT flow: SNAT_PORT_PROBES consecutive ports are taken
  uint32_t dropAfterCt = 0;         // new SNAT flow: dropped (TTL) after its CT entries were made
  bool ttlDec = false;
  std::optional<std::pair<Mac, Mac>> macs;  // the FIB's (destination, source) MACs
};

struct Prediction {
  Expect kind = Expect::Identical;
  // Dnat / Rnat: backend id -> how the frame leaves; exact for a CT hit.
  std::map<uint32_t, Outcome> alts;
  bool newFlow = false;
  uint32_t svcId = 0;
  uint32_t dropReason = 0;
  std::optional<Ref> ref;
  Bytes arpReply;  // Arp: the exact answer
  // The CT entry hit lost its other half (rebuilt: CT_EV_RELINKED), or that
  // half's key belongs to another flow (the entry dropped: CT_EV_ORPHANED).
  bool relink = false, orphan = false;
  // A later fragment whose first the programs never recorded: untouched,
  // counted (CT_EV_FRAG_NO_FIRST).
  bool fragNoFirst = false;
};

// What a run turned out to be, for the tally.
struct Resolved {
  Expect kind = Expect::Identical;
  uint32_t backendId = 0;
  uint32_t dropReason = 0;
  bool snat = false;
};

struct Flow {  // a translated client -> service flow, for replies
  uint32_t client, vip, backend;
  uint16_t cport, vport, bport;
  uint8_t proto;
  bool snat;          // the backend sees the node's address ...
  uint16_t snatPort;  // ... and this port
};

const char* kCategoryNames[] = {
    "valid_forward", "established_forward",
    "valid_reply",   "mutated_forward",
    "mutated_reply", "truncated",
    "bad_ihl",       "bad_tot_len",
    "ip_options",    "fragment",
    "ipv6_ext",      "vlan",
    "bad_tcp_doff",  "icmp_error",
    "random_bytes",  "random_ipv4",
    "arp",           "non_service",
    "udp_csum_zero", "padded",
    "arp_announced",
};
constexpr int kCategories = sizeof(kCategoryNames) / sizeof(kCategoryNames[0]);

struct CategoryStats {
  uint64_t frames = 0, dnat = 0, rnat = 0, snat = 0, drop = 0, reject = 0, identical = 0, arp = 0,
           kernelRejected = 0;
};

Mac macAt(const Bytes& f, size_t off);

class Fuzzer {
 public:
  Fuzzer(const Options& o) : opt_(o), rng_(o.seed) {}

  bool setup();
  int run();
  int replay();

 private:
  // generation
  uint32_t rnd(uint32_t n) { return static_cast<uint32_t>(rng_() % n); }
  bool coin(uint32_t pct) { return rnd(100) < pct; }
  Bytes randomBytes(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng_());
    return b;
  }
  uint32_t randomClient() { return ip4("10.244.2.0") + 1 + rnd(250); }
  // External clients: mostly the 16 with a neighbour entry (some inside the
  // LoadBalancer's source ranges, some outside), sometimes one without.
  uint32_t randomExtClient() {
    // Mostly clients with a neighbour entry; some without; now and then the
    // LAN's network and broadcast addresses (a routing corner: see fibModel).
    if (coin(1)) return coin(50) ? ip4("192.168.77.0") : ip4("192.168.77.255");
    return coin(90) ? kExtClient0 + rnd(kExtClients) : ip4("192.168.77.120") + rnd(20);
  }
  uint32_t clientFor(const Frontend& f) {
    return f.flags & SVC_F_EXTERNAL ? randomExtClient() : randomClient();
  }
  uint16_t randomPort() { return static_cast<uint16_t>(1024 + rnd(64000)); }
  const Frontend& randomFrontend() { return frontends_[rnd(frontends_.size())]; }
  Bytes l4Frame(uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport);
  Bytes validForward(int& cat);
  Bytes validReply();
  void mutateOneField(Bytes& f);
  Bytes icmpError();
  Bytes ipv6Ext();
  Bytes arpAnnounced();
  Bytes generate(int& cat);

  // model
  std::optional<ct_value> ctLookup(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp,
                                   uint8_t proto);
  // The entry lb4_decide would use for this packet: ct_est_v2 then ct_v2 for
  // TCP, ct_v2 for UDP, skipping entries past their lifetime and closing
  // entries met by a bare SYN (a new connection reusing the tuple).
  std::optional<ct_value> ctFind(const Ref& r, const Bytes& in, bool* est = nullptr);
  // The single-entry flow `r` (a backend's answer) belongs to, with the
  // backend's designation: ct_single_reply's rules.
  std::optional<std::pair<ct_value, be_rev_value>> singleReply(const Ref& r, const Bytes& in);
  // The key of the other entry of the flow whose entry `v` has key `k`.
  static ct_key pairKey(const ct_value& v, const ct_key& k);
  bool ctAlive(const ct_value& v, uint8_t proto);
  Prediction predict(const Bytes& in, Prog prog);
  void leave(Outcome& o, Prog prog, uint8_t ttl, bool external, bool ctHit);
  static void hairpinMacs(Outcome& o, Prog prog, const Bytes& in);
  void snatPorts(Outcome& o, uint8_t proto);
  bool backendValid(uint32_t id, uint32_t svcId);
  // checks one run; returns "" or a description of the violation
  std::string check(Prog prog, const Bytes& in, const Bytes& out, int err, uint32_t retval,
                    const Prediction& p, Resolved& res);
  std::string checkLaterFragment(const Bytes& in, const Bytes& out, const Ref& r,
                                 const Outcome& oc);
  std::string checkOutcome(Prog prog, const Bytes& in, const Bytes& out, uint32_t retval,
                           const Prediction& p, const Outcome& o);
  void tally(const Prediction& p, const Resolved& res, const Bytes& in);
  std::string checkCounters();
  void expireSnatFlows();
  void fail(uint64_t idx, int cat, const char* prog, const Bytes& in, const Bytes& out,
            const std::string& why);

  // recording and replay (see the header comment)
  struct Read {  // a CT entry the model read before a run: the state the run depends on
    bool est = false;
    ct_key k{};
    std::optional<ct_value> v;
  };
  std::optional<ct_value> ctRead(bool est, const ct_key& k);
  std::vector<Read>* reads_ = nullptr;  // set while predicting a recorded run
  uint32_t shift_ = 0;                  // replay: its CT tick minus the recording's
  // A recorded entry on the replay's clock. A run can straddle a tick
  // boundary (the frame's tick is read before it): an entry the kernel
  // stamped one tick later than the frame's tick would be in the replay's
  // future, which the datapath's age arithmetic reads as long dead.
  ct_value onReplayClock(ct_value v) const {
    v.last_seen += shift_;
    if (static_cast<int32_t>(v.last_seen - now_) > 0) v.last_seen = now_;
    return v;
  }
  struct RunRec {
    int err = 0;
    uint32_t retval = 0;
    Bytes out;
    bool created = false;  // a new flow: the CT entries it made
    ct_key fk{}, rk{};
    ct_value fv{}, rv{};
    bool haveAff = false;
    affinity_key ak{};
    affinity_value av{};
    std::vector<Read> reads;
  };
  struct Event {
    enum Kind { Frame, Erase, Write } kind = Frame;
    uint64_t idx = 0;
    int cat = 0;
    uint32_t tick = 0;
    std::array<int, 3> order{};
    Bytes in;
    std::vector<RunRec> runs;
    std::vector<std::pair<ct_key, ct_value>> entries;  // Erase (keys) / Write, in both CT maps
  };
  struct Snapshot {
    uint64_t idx = 0;
    uint32_t tick = 0;
    uint64_t monoNs = 0;
    std::vector<std::pair<ct_key, ct_value>> ct, est;
    std::vector<std::pair<affinity_key, affinity_value>> aff;
    std::vector<std::pair<frag_key, frag_value>> frags;    // frag_v1
    std::vector<std::pair<frag6_key, frag_value>> frags6;  // frag6_v1
  };
  void runFrame(int cat, const Bytes& in, const std::array<int, 3>& order, Event* rec,
                const Event* replayed);
  void takeSnapshot(uint64_t nextIdx);
  void writeRecording(const std::string& what);
  void corruptReplies();
  void eraseBoth(const std::vector<std::pair<ct_key, ct_value>>& keys);
  Snapshot snap_;
  std::vector<Event> journal_;
  bool recordWritten_ = false, recordPending_ = false;
  std::string firstViolation_;  // "packet N program P: why"
  int cpu_ = -1;
  // The model of frag_v1 (bpf/lib/frag.h): {saddr, daddr, IP id, proto} of
  // every first fragment a program parsed -> its ports. A recording's
  // snapshot holds both this and frag_v1 (a later fragment in the window
  // may belong to a first fragment before it).
  using FragKey = std::tuple<uint32_t, uint32_t, uint16_t, uint8_t>;
  static FragKey fragKey(const Ref& r) { return {r.saddr, r.daddr, r.ipId, r.proto}; }
  std::map<FragKey, std::pair<uint16_t, uint16_t>> frags_, snapModelFrags_;
  std::set<std::string> frags6_, snapModelFrags6_;  // frag6_v1's keys (frag6Parse)
  Bytes lastFirstFrag_;  // generator: the last first fragment made (category "fragment")
  uint64_t corrected_ = 0, diverged_ = 0, clockAhead_ = 0, evictionsAligned_ = 0, valuesDiffer_ = 0;

  Options opt_;
  std::mt19937_64 rng_;
  testlib::NodeNetns netns_;
  std::unique_ptr<Dataplane> dp_;
  std::unique_ptr<Syncer> syncer_;
  std::vector<Frontend> frontends_;
  std::map<FrontendKey, const Frontend*> specs_;  // the desired state, for the model
  std::map<FrontendKey, const ActualFrontend*> actual_;
  std::map<uint32_t, backend_value> backends_;  // id -> value, as written
  std::deque<Flow> flows_;
  std::vector<Flow> snatFlows_;  // new source-NATed flows since the last expireSnatFlows()
  uint64_t expiredSnatFlows_ = 0;
  // expected counters
  std::map<uint32_t, lb_stats> expSvc_, expBe_;
  std::array<drop_stats, DROP_MAX> expDrops_{};
  uint64_t dnats_ = 0, rnats_ = 0, drops_ = 0, rejects_ = 0, identical_ = 0, runs_ = 0;
  uint64_t snatDnats_ = 0, snatRnats_ = 0, arps_ = 0, noNeighPasses_ = 0, newSnatFlows_ = 0;
  uint64_t portChecks_ = 0;  // candidate SNAT ports looked up by the model
  std::array<CategoryStats, kCategories> cats_{};
  uint32_t now_ = 0;  // CT ticks, read before each frame
  int failures_ = 0;
  std::array<uint64_t, CT_EV_MAX> expCtEvents_{};
  uint64_t idx_ = 0;
  double runSeconds_ = 0;
};

bool Fuzzer::setup() {
  if (std::string err = nodeNetnsUp(netns_); !err.empty()) {
    fmt::print(stderr, "packet_fuzz: setting up the private network namespace: {}\n", err);
    return false;
  }
  {
    // Inside the private namespace now (children inherit it).
    FILE* r = popen("ip -o route get 192.168.77.0 2>&1", "r");
    std::string route;
    char buf[256];
    while (r && fgets(buf, sizeof(buf), r)) route += buf;
    const int rc = r ? pclose(r) : -1;
    if (rc != 0 || route.find("192.168.77.0") == std::string::npos) {
      fmt::print(stderr, "packet_fuzz: ip route get 192.168.77.0 failed: {}\n", route);
      return false;
    }
    gNetworkAddrUnicast = route.find("broadcast") == std::string::npos;
  }
  DataplaneConfig cfg;
  cfg.pin = false;
  cfg.maxServiceEntries = 1024;
  cfg.maxBackends = 1024;
  cfg.maxSvcIds = 256;
  cfg.maxCtEntries = opt_.ctEntries;
  auto dp = Dataplane::load(cfg);
  if (!dp) {
    fmt::print(stderr, "packet_fuzz: loading the dataplane: {}\n", dp.error().message);
    return false;
  }
  dp_ = std::move(*dp);
  l2_arp_key ak{htonl(kLbIp), netns_.nic0()};
  l2_arp_value av{};
  std::copy(kNic0Mac.begin(), kNic0Mac.end(), av.mac);
  if (!dp_->txPorts().update(netns_.nic0(), netns_.nic0()) ||
      !dp_->setSnatPortRange(kSnatMin, kSnatMax) || !dp_->l2Arp().update(ak, av)) {
    fmt::print(stderr, "packet_fuzz: writing tx_ports / the SNAT range / l2_arp failed\n");
    return false;
  }
  syncer_ = std::make_unique<Syncer>(*dp_);
  if (auto st = syncer_->adopt(); !st) {  // as the daemon starts: lb_filter_v1 written
    fmt::print(stderr, "packet_fuzz: adopt: {}\n", st.error().message);
    return false;
  }
  frontends_ = fuzzFrontends();
  for (const auto& f : frontends_) specs_[f.key] = &f;
  auto plan = syncer_->plan(frontends_);
  if (!plan) {
    fmt::print(stderr, "packet_fuzz: planSync: {}\n", plan.error().message);
    return false;
  }
  if (auto st = syncer_->apply(std::move(*plan)); !st) {
    fmt::print(stderr, "packet_fuzz: sync: {}\n", st.error().message);
    return false;
  }
  for (const auto& [k, af] : syncer_->actual().frontends) {
    actual_[k] = &af;
    for (const auto& b : af.backends) backends_[b.id] = b.value;
  }
  if (actual_.size() != frontends_.size()) {
    fmt::print(stderr, "packet_fuzz: {} frontends written, {} wanted\n", actual_.size(),
               frontends_.size());
    return false;
  }
  return true;
}

Bytes Fuzzer::l4Frame(uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
  auto b = proto == kTcp ? PacketBuilder::tcp(
                               ip4str(src), sport, ip4str(dst), dport,
                               coin(30) ? testlib::kTcpSyn
                                        : static_cast<uint8_t>(testlib::kTcpAck | testlib::kTcpPsh))
                         : PacketBuilder::udp(ip4str(src), sport, ip4str(dst), dport);
  if (coin(50)) b.payload(rnd(200), static_cast<uint8_t>(rng_()));
  b.ipId(static_cast<uint16_t>(rng_()));
  b.ttl(static_cast<uint8_t>(1 + rnd(255)));
  return b.build();
}

// A well-formed client -> VIP frame: a new flow, or one of a known flow.
// Node-facing frontends get external clients (192.168.77.0/24).
Bytes Fuzzer::validForward(int& cat) {
  if (!flows_.empty() && coin(40)) {
    const Flow& f = flows_[rnd(flows_.size())];
    cat = 1;
    return l4Frame(f.proto, f.client, f.cport, f.vip, f.vport);
  }
  const Frontend& fr = randomFrontend();
  // Now and then a backend reaches its own ClusterIP Service (hairpin when
  // it lands on itself).
  const uint32_t client = !(fr.flags & SVC_F_EXTERNAL) && !fr.backends.empty() && coin(10)
                              ? fr.backends[rnd(fr.backends.size())].ip
                              : clientFor(fr);
  return l4Frame(fr.key.proto, client, randomPort(), fr.key.vip, fr.key.port);
}

// backend -> client of a flow seen translated (to the node's SNAT port for a
// source-NATed one), or, sometimes, of none.
Bytes Fuzzer::validReply() {
  if (flows_.empty() || coin(10)) {
    const Frontend& fr = randomFrontend();
    if (fr.backends.empty())
      return l4Frame(kTcp, ip4("10.244.1.11"), 8080, clientFor(fr), randomPort());
    const auto& b = fr.backends[rnd(fr.backends.size())];
    if (fr.flags & SVC_F_EXTERNAL && coin(50))
      return l4Frame(fr.key.proto, b.ip, b.port, kNodeIp,
                     static_cast<uint16_t>(kSnatMin + rnd(kSnatMax - kSnatMin + 1)));
    return l4Frame(fr.key.proto, b.ip, b.port, clientFor(fr), randomPort());
  }
  const Flow& f = flows_[rnd(flows_.size())];
  if (f.snat) return l4Frame(f.proto, f.backend, f.bport, kNodeIp, f.snatPort);
  return l4Frame(f.proto, f.backend, f.bport, f.client, f.cport);
}

// An ARP request for the announced LoadBalancer IP (sometimes one field
// changed: op, hardware/protocol type or sizes, target, a gratuitous one,
// or cut short).
Bytes Fuzzer::arpAnnounced() {
  Bytes f = PacketBuilder::arpRequest(ip4str(randomExtClient()), ip4str(kLbIp)).build();
  if (coin(30)) {
    switch (rnd(7)) {
      case 0:
        put16(f, kEth + 6, static_cast<uint16_t>(coin(50) ? 2 : rng_()));
        break;  // op
      case 1:
        put16(f, kEth + 0, static_cast<uint16_t>(rng_()));
        break;  // htype
      case 2:
        put16(f, kEth + 2, coin(50) ? 0x86dd : static_cast<uint16_t>(rng_()));
        break;  // ptype
      case 3:
        f[kEth + 4 + rnd(2)] = static_cast<uint8_t>(rng_());
        break;  // hlen / plen
      case 4:
        put32(f, kEth + 24, coin(50) ? kNodeIp : kLbIp + 1);
        break;  // target
      case 5:
        put32(f, kEth + 14, kLbIp);
        break;  // gratuitous
      default:
        f.resize(kEth + rnd(28));
        break;
    }
  } else if (coin(20)) {
    auto pad = randomBytes(1 + rnd(18));  // Ethernet padding
    f.insert(f.end(), pad.begin(), pad.end());
  }
  return f;
}

// Changes ONE field of a frame (Ethernet, IPv4 or L4 header, the length, or
// one random byte); half of the time the checksums are then made valid again
// so the mutation itself is what the program sees.
void Fuzzer::mutateOneField(Bytes& f) {
  const size_t ihl = f.size() > kEth ? (f[kEth] & 0x0f) * 4u : 20;
  const size_t l4 = kEth + std::max<size_t>(ihl, 20);
  auto set8 = [&](size_t off, uint8_t v) {
    if (off < f.size()) f[off] = v;
  };
  auto set16 = [&](size_t off, uint16_t v) {
    if (off + 1 < f.size()) put16(f, off, v);
  };
  const uint16_t r16 = static_cast<uint16_t>(rng_());
  switch (rnd(20)) {
    case 0: {
      const uint16_t t[] = {0x86dd, 0x8100, 0x88a8, 0x0806, 0x0000, r16};
      set16(12, t[rnd(6)]);
      break;
    }
    case 1:
      set8(kEth, static_cast<uint8_t>(rng_()));
      break;  // version/IHL
    case 2:
      set8(kEth + 1, static_cast<uint8_t>(rng_()));
      break;  // TOS
    case 3:
      set16(kEth + 2, coin(50) ? r16 : static_cast<uint16_t>(get16(f, kEth + 2) + rnd(9) - 4));
      break;
    case 4:
      set16(kEth + 4, r16);
      break;  // id
    case 5: {
      const uint16_t v[] = {0x2000, 0x0001, 0x1fff, 0x4000, 0x0000, r16};
      set16(kEth + 6, v[rnd(6)]);
      break;
    }
    case 6:
      set8(kEth + 8, static_cast<uint8_t>(rng_()));
      break;  // TTL
    case 7: {
      const uint8_t p[] = {kTcp, kUdp, kIcmp, 0, 41, 132, 255};
      set8(kEth + 9, p[rnd(7)]);
      break;
    }
    case 8:
      set16(kEth + 10, r16);
      break;  // IP checksum
    case 9:
      set16(kEth + 12 + 2 * rnd(2), r16);
      break;  // saddr half
    case 10:
      set16(kEth + 16 + 2 * rnd(2), r16);
      break;  // daddr half
    case 11:
      set16(l4, coin(50) ? r16 : static_cast<uint16_t>(get16(f, l4) ^ 1));
      break;  // sport
    case 12:
      set16(l4 + 2, coin(50) ? r16 : static_cast<uint16_t>(get16(f, l4 + 2) ^ 1));
      break;
    case 13:
      set8(l4 + 12, static_cast<uint8_t>(rng_()));
      break;  // TCP doff / UDP csum hi
    case 14:
      set16(l4 + (f.size() > kEth + 9 && f[kEth + 9] == kTcp ? 16 : 6), coin(30) ? 0 : r16);
      break;
    case 15:
      set16(l4 + 4, r16);
      break;  // UDP length / seq
    case 16:
      f.resize(rnd(static_cast<uint32_t>(f.size())));
      break;  // truncate
    case 17: {
      auto pad = randomBytes(1 + rnd(64));
      f.insert(f.end(), pad.begin(), pad.end());
      break;
    }
    case 18:
      if (!f.empty()) f[rnd(f.size())] ^= static_cast<uint8_t>(1u << rnd(8));
      break;
    default:
      if (!f.empty()) f[rnd(f.size())] = static_cast<uint8_t>(rng_());
      break;
  }
  if (coin(50)) fixChecksums(f);
}

// ICMP error (dest unreachable / time exceeded) quoting a service flow: the
// client's packet to the VIP, or a reply from the VIP, or a backend's. The
// quote is of a flow with no CT entry (its reversed tuple is looked up, as
// bpf/lib/icmp.h does, and another client port taken): such errors pass
// untouched, which the model checks. Errors of tracked flows are translated;
// their tables are tests/bpf/icmp_test.cpp.
Bytes Fuzzer::icmpError() {
  const Frontend& fr = randomFrontend();
  const uint32_t client = randomClient();
  uint16_t cport = randomPort();
  Bytes inner;
  uint32_t outerSrc, outerDst;
  const int kind = static_cast<int>(rnd(3));
  for (int tries = 0; tries < 16; ++tries, cport = randomPort()) {
    const uint32_t b = fr.backends.empty() ? ip4("10.244.1.11") : fr.backends[0].ip;
    const uint16_t bp = fr.backends.empty() ? 8080 : fr.backends[0].port;
    ct_key k{};  // the quote reversed
    k.proto = fr.key.proto;
    if (kind == 0)
      k.saddr = htonl(fr.key.vip), k.daddr = htonl(client), k.sport = htons(fr.key.port),
      k.dport = htons(cport);
    else
      k.saddr = htonl(client), k.daddr = htonl(kind == 1 ? fr.key.vip : b), k.sport = htons(cport),
      k.dport = htons(kind == 1 ? fr.key.port : bp);
    if (!ctRead(true, k) && !ctRead(false, k)) break;
  }
  switch (kind) {
    case 0:  // the client's packet to the VIP bounced back to the client
      inner = l4Frame(fr.key.proto, client, cport, fr.key.vip, fr.key.port);
      outerSrc = ip4("10.244.0.1"), outerDst = client;
      break;
    case 1:  // the client says the VIP's reply was unreachable: sent TO the VIP
      inner = l4Frame(fr.key.proto, fr.key.vip, fr.key.port, client, cport);
      outerSrc = client, outerDst = fr.key.vip;
      break;
    default: {  // a backend's reply quoted, sent to the backend
      uint32_t b = fr.backends.empty() ? ip4("10.244.1.11") : fr.backends[0].ip;
      uint16_t bp = fr.backends.empty() ? 8080 : fr.backends[0].port;
      inner = l4Frame(fr.key.proto, b, bp, client, cport);
      outerSrc = client, outerDst = b;
    }
  }
  Bytes quote(inner.begin() + kEth, inner.begin() + std::min(inner.size(), kEth + 20 + 8));
  Bytes f = PacketBuilder::icmpEcho(ip4str(outerSrc), ip4str(outerDst)).payload(quote).build();
  const size_t icmp = kEth + 20;
  f[icmp] = coin(70) ? 3 : 11;
  f[icmp + 1] = static_cast<uint8_t>(rnd(16));
  put32(f, icmp + 4, 0);
  put16(f, icmp + 2, 0);
  put16(f, icmp + 2, testlib::inetChecksum(&f[icmp], f.size() - icmp));
  return f;
}

// IPv6 with a chain of extension headers before TCP/UDP to a service port
// (sometimes to the IPv4-mapped VIP).
Bytes Fuzzer::ipv6Ext() {
  const Frontend& fr = randomFrontend();
  Bytes f = PacketBuilder::ipv6Tcp(randomPort(), fr.key.port).build();
  const size_t l3 = kEth;
  if (coin(50)) {  // ::ffff:VIP
    std::memset(&f[l3 + 24], 0, 16);
    f[l3 + 34] = 0xff, f[l3 + 35] = 0xff;
    put32(f, l3 + 36, fr.key.vip);
  }
  Bytes l4(f.begin() + l3 + 40, f.end());
  Bytes ext;
  const uint8_t kinds[] = {0, 43, 44, 60};
  uint8_t first = f[l3 + 6];
  int n = 1 + rnd(3);
  std::vector<uint8_t> chain;
  for (int i = 0; i < n; ++i) chain.push_back(kinds[rnd(4)]);
  for (int i = 0; i < n; ++i) {
    Bytes h(8, 0);
    h[0] = i + 1 < n ? chain[i + 1] : (fr.key.proto == kUdp && coin(50) ? kUdp : kTcp);
    if (chain[i] == 44)
      put16(h, 2, coin(50) ? 0x0001 : static_cast<uint16_t>(rng_() & 0xfff9));
    else
      h[2] = 1, h[3] = 4;  // PadN
    ext.insert(ext.end(), h.begin(), h.end());
  }
  (void)first;
  f.resize(l3 + 40);
  f[l3 + 6] = chain[0];
  f.insert(f.end(), ext.begin(), ext.end());
  f.insert(f.end(), l4.begin(), l4.end());
  put16(f, l3 + 4, static_cast<uint16_t>(ext.size() + l4.size()));
  return f;
}

Bytes Fuzzer::generate(int& cat) {
  const uint32_t r = rnd(1000);
  Bytes f;
  if (r < 200) {
    cat = 0;
    f = validForward(cat);
  } else if (r < 330) {
    cat = 2;
    f = validReply();
  } else if (r < 480) {
    cat = 3;
    int ignored;
    f = validForward(ignored);
    mutateOneField(f);
  } else if (r < 580) {
    cat = 4;
    f = validReply();
    mutateOneField(f);
  } else if (r < 610) {
    cat = 5;
    int ignored;
    f = validForward(ignored);
    f.resize(rnd(static_cast<uint32_t>(f.size())));
  } else if (r < 640) {
    cat = 6;
    const Frontend& fr = randomFrontend();
    auto b = fr.key.proto == kTcp ? PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port)
                                  : PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port);
    f = b.payload(rnd(60))
            .ihlOverride(static_cast<uint8_t>(coin(60) ? rnd(5) : 6 + rnd(10)))
            .build();
  } else if (r < 670) {
    cat = 7;
    const Frontend& fr = randomFrontend();
    auto b = fr.key.proto == kTcp ? PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port)
                                  : PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port);
    const uint16_t pl = static_cast<uint16_t>(rnd(40));
    const uint16_t real = static_cast<uint16_t>(20 + (fr.key.proto == kTcp ? 20 : 8) + pl);
    const uint16_t vals[] = {0,
                             19,
                             20,
                             27,
                             28,
                             39,
                             static_cast<uint16_t>(real - 1),
                             static_cast<uint16_t>(real + 1),
                             static_cast<uint16_t>(real + 100),
                             0xffff,
                             static_cast<uint16_t>(rng_())};
    f = b.payload(pl).totLenOverride(vals[rnd(11)]).build();
  } else if (r < 710) {
    cat = 8;
    const Frontend& fr = randomFrontend();
    auto b = fr.key.proto == kTcp ? PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port)
                                  : PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port);
    f = b.ipOptions(4 * (1 + rnd(10))).payload(rnd(100)).build();
  } else if (r < 740) {
    cat = 9;
    const Frontend& fr = randomFrontend();
    auto b = fr.key.proto == kTcp ? PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port)
                                  : PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port);
    const bool mf = coin(50);
    const auto off = static_cast<uint16_t>(mf && coin(50) ? 0 : 1 + rnd(0x1ffe));
    if (off != 0 && !lastFirstFrag_.empty() && coin(50)) {
      // A later piece of the last first fragment's datagram (same
      // addresses, IP id and protocol): translated like its first.
      f = lastFirstFrag_;
      put16(f, kEth + 6, static_cast<uint16_t>(off | (mf ? 0x2000 : 0)));
      const size_t ihl = (f[kEth] & 0x0f) * 4u;
      put16(f, kEth + 10, 0);
      put16(f, kEth + 10, testlib::inetChecksum(&f[kEth], ihl));
    } else {
      f = b.payload(8 + rnd(100))
              .ipId(coin(50) ? static_cast<uint16_t>(0x1234) : static_cast<uint16_t>(rng_()))
              .fragment(off, mf)
              .build();
      if (off == 0) lastFirstFrag_ = f;
    }
  } else if (r < 770) {
    cat = 10;
    f = ipv6Ext();
  } else if (r < 800) {
    cat = 11;
    const Frontend& fr = randomFrontend();
    auto b = fr.key.proto == kTcp ? PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port)
                                  : PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(),
                                                       ip4str(fr.key.vip), fr.key.port);
    f = b.vlan(static_cast<uint16_t>(rnd(4096))).payload(rnd(40)).build();
    if (coin(30)) {  // QinQ: an 802.1ad outer tag in front
      Bytes tag = {0x88, 0xa8, 0x00, static_cast<uint8_t>(rnd(255))};
      f.insert(f.begin() + 12, tag.begin(), tag.end());
    }
  } else if (r < 830) {
    cat = 12;
    const Frontend& fr = randomFrontend();
    f = PacketBuilder::tcp(ip4str(clientFor(fr)), randomPort(), ip4str(fr.key.vip), 80)
            .payload(rnd(80))
            .tcpDoff(static_cast<uint8_t>(coin(60) ? rnd(5) : 5 + rnd(11)))
            .build();
  } else if (r < 860) {
    cat = 13;
    f = icmpError();
  } else if (r < 890) {
    cat = 14;
    f = randomBytes(rnd(160));
  } else if (r < 920) {
    cat = 15;  // plausible Ethernet/IPv4 prefix, random rest
    f = randomBytes(kEth + rnd(120));
    if (f.size() > kEth + 10) {
      put16(f, 12, 0x0800);
      f[kEth] = static_cast<uint8_t>(0x40 | (coin(80) ? 5 : rnd(16)));
      put16(f, kEth + 6, 0);
      f[kEth + 9] = coin(50) ? kTcp : kUdp;
      if (coin(70) && f.size() >= kEth + 20)
        put16(f, kEth + 2, static_cast<uint16_t>(f.size() - kEth));
      if (coin(50) && f.size() >= kEth + 20) put32(f, kEth + 16, randomFrontend().key.vip);
    }
  } else if (r < 925) {
    cat = 16;
    f = PacketBuilder::arpRequest(ip4str(randomClient()), "10.96.0.10").build();
  } else if (r < 935) {
    cat = 20;
    f = arpAnnounced();
  } else if (r < 965) {
    cat = 17;  // TCP/UDP to a VIP on a port that is no service, or to a pod
    const Frontend& fr = randomFrontend();
    if (!flows_.empty() && coin(30)) {
      // A direct flow on a known flow's tuple (client port reused toward
      // the backend's own address): its SYN or datagram takes the tuple over.
      const Flow& fl = flows_[rnd(flows_.size())];
      f = l4Frame(fl.proto, fl.client, fl.cport, fl.backend, fl.bport);
    } else if (coin(50)) {
      f = l4Frame(fr.key.proto == kTcp ? kUdp : kTcp, clientFor(fr), randomPort(), fr.key.vip,
                  fr.key.port);
    } else {
      f = l4Frame(coin(50) ? kTcp : kUdp, randomClient(), randomPort(), ip4("10.244.1.11"), 8080);
    }
  } else if (r < 985) {
    cat = 18;
    // the ClusterIP "dns" or the NodePort "np-dns" (SNAT keeps checksum 0)
    const Frontend& fr = *specs_.at(coin(50) ? FrontendKey{ip4("10.96.0.10"), 53, kUdp}
                                             : FrontendKey{kNodeIp, 30053, kUdp});
    f = PacketBuilder::udp(ip4str(clientFor(fr)), randomPort(), ip4str(fr.key.vip), fr.key.port)
            .payload(rnd(64))
            .udpChecksumZero()
            .build();
  } else {
    cat = 19;  // Ethernet padding past tot_len
    int ignored;
    f = validForward(ignored);
    auto pad = randomBytes(1 + rnd(46));
    f.insert(f.end(), pad.begin(), pad.end());
  }
  return f;
}

// now is read once per frame: an entry a program made during this frame
// may be a tick younger than that (age 0, not "4 billion ticks old").
uint32_t ctAge(uint32_t now, const ct_value& v) {
  return static_cast<int32_t>(now - v.last_seen) < 0 ? 0 : now - v.last_seen;
}

ct_key Fuzzer::pairKey(const ct_value& v, const ct_key& k) {
  // FORWARD (client -> VIP): the backend answers the client, or the node's
  // SNAT address:port. REPLY (backend -> client or node): the client's
  // packet to the VIP.
  const bool snat = v.flags & CT_F_SNAT;
  ct_key p{};
  p.proto = k.proto;
  if (v.dir == CT_DIR_FORWARD) {
    p.saddr = v.nat_addr, p.sport = v.nat_port;
    p.daddr = snat ? v.snat_addr : k.saddr, p.dport = snat ? v.snat_port : k.sport;
  } else {
    p.daddr = v.nat_addr, p.dport = v.nat_port;
    p.saddr = snat ? v.snat_addr : k.daddr, p.sport = snat ? v.snat_port : k.dport;
  }
  return p;
}

std::optional<ct_value> Fuzzer::ctFind(const Ref& r, const Bytes& in, bool* est) {
  ct_key k{};
  k.saddr = htonl(r.saddr);
  k.daddr = htonl(r.daddr);
  k.sport = htons(r.sport);
  k.dport = htons(r.dport);
  k.proto = r.proto;
  const uint32_t now = now_;  // the programs' clock (CT ticks), read by predict()
  const uint8_t flags = r.proto == kTcp && !r.later ? in[r.l4 + 13] : 0;
  // A SYN (bare, or a SYN-ACK) never uses a closing flow's entry: it opens
  // a new connection on that tuple.
  const bool syn = (flags & testlib::kTcpSyn) != 0;
  auto usable = [&](const ct_value& v) {
    const auto& lt = dp_->ctLifetimes();
    const uint32_t life = (v.flags & CT_F_CLOSING) ? lt.closing
                          : r.proto == kTcp        ? lt.tcp
                                                   : lt.nontcp;
    return ctAge(now, v) <= life && !((v.flags & CT_F_CLOSING) && syn);
  };
  if (est) *est = false;
  if (r.proto == kTcp)
    if (auto e = ctRead(true, k); e && usable(*e)) {
      if (est) *est = true;
      return e;
    }
  if (auto ct = ctRead(false, k); ct && usable(*ct)) return ct;
  return std::nullopt;
}

std::optional<std::pair<ct_value, be_rev_value>> Fuzzer::singleReply(const Ref& r,
                                                                     const Bytes& in) {
  be_rev_key bk{};
  bk.addr = htonl(r.saddr), bk.port = htons(r.sport), bk.proto = r.proto;
  auto des = dp_->beRev().lookup(bk);
  if (!des) return std::nullopt;
  ct_key k{};
  k.saddr = htonl(r.daddr), k.sport = htons(r.dport);  // the client
  k.daddr = des->vip, k.dport = des->port, k.proto = r.proto;
  auto mine = [&](const std::optional<ct_value>& v) {
    return v && v->dir == CT_DIR_FORWARD && (v->flags & CT_F_SINGLE) && v->nat_addr == bk.addr &&
           v->nat_port == bk.port && v->svc_id == des->svc_id;
  };
  std::optional<ct_value> e;
  if (r.proto == kTcp && !mine(e = ctRead(true, k))) e.reset();
  if (!e && !mine(e = ctRead(false, k))) e.reset();
  const uint8_t flags = r.proto == kTcp && !r.later ? in[r.l4 + 13] : 0;
  if (!e || !ctAlive(*e, r.proto) || ((e->flags & CT_F_CLOSING) && (flags & testlib::kTcpSyn)) ||
      !backendValid(e->backend_id, e->svc_id))
    return std::nullopt;
  return std::make_pair(*e, *des);
}

std::optional<ct_value> Fuzzer::ctRead(bool est, const ct_key& k) {
  auto v = est ? dp_->conntrackEst().lookup(k) : dp_->conntrack().lookup(k);
  if (reads_) reads_->push_back({est, k, v});
  return v;
}

std::optional<ct_value> Fuzzer::ctLookup(uint32_t sa, uint16_t sp, uint32_t da, uint16_t dp,
                                         uint8_t proto) {
  ct_key k{};
  k.saddr = htonl(sa);
  k.daddr = htonl(da);
  k.sport = htons(sp);
  k.dport = htons(dp);
  k.proto = proto;
  // TCP flows move to the established map once the client ACKs; the
  // program looks there first for TCP, as this oracle does.
  if (proto == IPPROTO_TCP)
    if (auto est = ctRead(true, k)) return est;
  return ctRead(false, k);
}

bool Fuzzer::backendValid(uint32_t id, uint32_t svcId) {
  auto it = backends_.find(id);
  return it != backends_.end() && it->second.state != BE_STATE_EMPTY && it->second.svc_id == svcId;
}

bool Fuzzer::ctAlive(const ct_value& v, uint8_t proto) {
  const auto& lt = dp_->ctLifetimes();
  const uint32_t life = (v.flags & CT_F_CLOSING) ? lt.closing : proto == kTcp ? lt.tcp : lt.nontcp;
  return ctAge(now_, v) <= life;
}

// The SNAT ports a new flow to backend o.addr:o.port may get: those whose
// reply tuple (backend -> node:port) no live flow holds, in either CT map.
// The program probes SNAT_PORT_PROBES consecutive ports from a random
// start: it may give up (a counted drop) only if that many in a row are
// taken.
void Fuzzer::snatPorts(Outcome& o, uint8_t proto) {
  constexpr uint32_t n = kSnatMax - kSnatMin + 1;
  std::array<bool, n> taken{};
  for (uint32_t i = 0; i < n; ++i) {
    ct_key k{};
    k.saddr = htonl(o.addr);
    k.daddr = htonl(kNodeIp);
    k.sport = htons(o.port);
    k.dport = htons(static_cast<uint16_t>(kSnatMin + i));
    k.proto = proto;
    auto est = ctRead(true, k);
    auto ct = est && ctAlive(*est, proto) ? est : ctRead(false, k);
    taken[i] = ct && ctAlive(*ct, proto);
    if (!taken[i]) o.freePorts.push_back(static_cast<uint16_t>(kSnatMin + i));
    portChecks_++;
  }
  for (uint32_t start = 0; start < n && !o.portsMayRunOut; ++start) {
    bool all = true;
    for (uint32_t i = 0; i < SNAT_PORT_PROBES && all; ++i) all = taken[(start + i) % n];
    o.portsMayRunOut = all;
  }
}

// How a translated frame leaves `prog` (bpf/lib/forward.h: lb4_snat_forward,
// lb4_forward_reply, lb4_xmit): the verdict, TTL - 1 and the FIB's MACs
// where the program forwards the frame itself, or a drop (TTL, no route).
// `external`: the flow came in through a node-facing frontend
// (CT_F_EXTERNAL); `ctHit`: no route was looked up by the decision yet.
void Fuzzer::leave(Outcome& o, Prog prog, uint8_t ttl, bool external, bool ctHit) {
  const uint32_t pass = prog == Prog::Xdp ? XDP_PASS : TC_ACT_OK;
  auto drop = [&](uint32_t reason) { o.kind = Expect::Drop, o.dropReason = reason; };
  if (!o.snat) {
    o.verdict = pass;
    // An answer to a node-facing flow without source NAT (bpf/lib/
    // handle_fam.h): XDP leaves it to tc untouched; the pod side (a local
    // backend's reply to an external client) and tc on a node NIC (a remote
    // backend's reply to a pod of this node) forward it themselves, as its
    // new source may be the node's own address.
    if (o.kind == Expect::Rnat && external && prog == Prog::Xdp) {
      o.kind = Expect::Identical;
      return;
    }
    if (o.kind == Expect::Rnat && external) {
      if (ttl <= 1) return drop(DROP_TTL);
      const FibAnswer f = fibModel(o.snatAddr);  // the client (the frame's destination)
      if (f.rc == FibRc::Success) o.macs = std::pair(f.dmac, f.smac);
      // Forwarded here: TTL - 1; else the stack routes it (and decrements).
      if (f.rc != FibRc::NotForwarded) o.verdict = TC_ACT_REDIRECT, o.ttlDec = true;
    }
    return;
  }
  const uint32_t to = o.kind == Expect::Dnat ? o.addr : o.snatAddr;
  const FibAnswer f = fibModel(to);
  switch (prog) {
    case Prog::Xdp:
      if (ctHit && f.rc == FibRc::NoNeigh) {  // untouched: tc resolves the neighbour
        o.kind = Expect::Identical, o.verdict = XDP_PASS;
        return;
      }
      if (f.rc != FibRc::Success) return drop(DROP_FIB);
      if (ttl <= 1) return drop(DROP_TTL);
      o.ttlDec = true, o.macs = std::pair(f.dmac, f.smac);
      o.verdict = f.viaNic0 ? static_cast<uint32_t>(XDP_TX) : kXdpRedirect;
      return;
    case Prog::TcExt:
      if (ttl <= 1) return drop(DROP_TTL);
      if (f.rc == FibRc::NotForwarded) return drop(DROP_FIB);
      o.ttlDec = true, o.verdict = TC_ACT_REDIRECT;
      if (f.rc == FibRc::Success) o.macs = std::pair(f.dmac, f.smac);
      return;
    case Prog::Pod:  // rewritten; the stack routes it, or back into the pod (hairpin)
      if (ttl <= 1) return drop(DROP_TTL);
      o.verdict = o.hairpin ? static_cast<uint32_t>(TC_ACT_REDIRECT) : TC_ACT_OK;
      return;
  }
}

// A hairpin frame leaves by the interface it came in on, to the pod that sent
// it: MACs swapped.
void Fuzzer::hairpinMacs(Outcome& o, Prog prog, const Bytes& in) {
  if (o.hairpin && prog == Prog::Pod && o.kind != Expect::Drop)
    o.macs = std::pair(macAt(in, 6), macAt(in, 0));
}

// lb4_decide, restated: CT first (REPLY -> reverse NAT; FORWARD with a live
// backend -> DNAT to it), else the service master (source ranges, Local
// without local endpoints, reject without endpoints, SNAT toward a backend
// routed out of the node NIC), else untouched. Then how the frame leaves.
Prediction Fuzzer::predict(const Bytes& in, Prog prog) {
  Prediction p;
  p.ref = refParse(in);
  if (!p.ref && in.size() >= kEth && get16(in, 12) == 0x86dd) {
    if (auto f6 = frag6Parse(in)) {
      if (!f6->later)
        frags6_.insert(f6->key);
      else
        p.fragNoFirst = !frags6_.count(f6->key);
    }
    return p;
  }
  if (!p.ref) {
    // A node NIC's program (XDP, or tc where it runs alone) answers an ARP
    // request for an announced address on this NIC.
    if (prog == Prog::Pod || in.size() < kEth + 28 || get16(in, 12) != 0x0806) return p;
    const uint32_t spa = get32(in, kEth + 14), tpa = get32(in, kEth + 24);
    if (get16(in, kEth) != 1 || get16(in, kEth + 2) != 0x0800 || in[kEth + 4] != 6 ||
        in[kEth + 5] != 4 || get16(in, kEth + 6) != 1 || spa == tpa || tpa != kLbIp)
      return p;
    p.kind = Expect::Arp;
    Bytes& o = p.arpReply;
    o = in;
    std::copy(in.begin() + 6, in.begin() + 12, o.begin());              // to the asker
    std::copy(kNic0Mac.begin(), kNic0Mac.end(), o.begin() + 6);         // from us
    put16(o, kEth + 6, 2);                                              // reply
    std::copy(kNic0Mac.begin(), kNic0Mac.end(), o.begin() + kEth + 8);  // sender MAC
    put32(o, kEth + 14, tpa);                                           // sender IP
    std::copy(in.begin() + kEth + 8, in.begin() + kEth + 14, o.begin() + kEth + 18);  // target MAC
    put32(o, kEth + 24, spa);                                                         // target IP
    return p;
  }
  if (p.ref->later) {
    auto it = frags_.find(fragKey(*p.ref));
    if (it == frags_.end()) {
      p.fragNoFirst = true;
      p.ref.reset();
      return p;
    }
    p.ref->sport = it->second.first;
    p.ref->dport = it->second.second;
  }
  const Ref& r = *p.ref;
  const uint8_t ttl = in[kEth + 8];
  // A backend's answer to a single-entry flow: that flow's FORWARD entry,
  // keyed on the client and the backend's designated frontend (be_rev_v1).
  if (auto single = singleReply(r, in)) {
    const auto& [e, des] = *single;
    Outcome o;
    o.kind = Expect::Rnat;
    o.addr = ntohl(des.vip);
    o.port = ntohs(des.port);
    o.snatAddr = r.daddr;
    leave(o, prog, ttl, false, true);
    hairpinMacs(o, prog, in);
    p.kind = Expect::Rnat;
    p.svcId = e.svc_id;
    p.alts[e.backend_id] = o;
    return p;
  }
  bool inEst = false;
  auto ct = ctFind(r, in, &inEst);
  // A FORWARD entry whose backend left the Service is ignored (balanced
  // anew). Any other hit also looks at the flow's other entry, in the same
  // map: missing -> rebuilt; owned by another flow -> this entry dropped
  // and the packet is untracked.
  if (ct && ct->dir == CT_DIR_FORWARD && !backendValid(ct->backend_id, ct->svc_id)) ct.reset();
  if (ct && !(ct->flags & CT_F_SINGLE)) {  // a single entry has no other half
    ct_key k{};
    k.saddr = htonl(r.saddr), k.daddr = htonl(r.daddr);
    k.sport = htons(r.sport), k.dport = htons(r.dport), k.proto = r.proto;
    const ct_key pk = pairKey(*ct, k);
    auto other = ctRead(inEst, pk);
    if (!other && r.proto == kTcp)
      other = ctRead(!inEst, pk);  // never rebuilt over the other map's
    if (!other) {
      p.relink = true;
    } else {
      const ct_key back = pairKey(*other, pk);
      if (other->dir == ct->dir || back.saddr != k.saddr || back.daddr != k.daddr ||
          back.sport != k.sport || back.dport != k.dport) {
        p.orphan = true;
        ct.reset();
      }
    }
  }
  auto fromCt = [&](Expect kind) {
    Outcome o;
    o.kind = kind;
    o.addr = ntohl(ct->nat_addr);
    o.port = ntohs(ct->nat_port);
    o.snat = ct->flags & CT_F_SNAT;
    o.snatAddr = kind == Expect::Rnat && !o.snat ? r.daddr : ntohl(ct->snat_addr);
    o.snatPort = ntohs(ct->snat_port);
    o.hairpin = ct->flags & CT_F_HAIRPIN;
    leave(o, prog, ttl, (ct->flags & CT_F_EXTERNAL) != 0, true);
    hairpinMacs(o, prog, in);
    p.kind = kind;
    p.svcId = ct->svc_id;
    p.alts[ct->backend_id] = o;
    return p;
  };
  if (ct && ct->dir == CT_DIR_REPLY) return fromCt(Expect::Rnat);
  if (ct) return fromCt(Expect::Dnat);
  if (r.later) return p;  // a later fragment never makes a flow
  auto it = actual_.find(FrontendKey{r.daddr, r.dport, r.proto});
  if (it == actual_.end()) return p;
  const ActualFrontend& af = *it->second;
  const Frontend& spec = *specs_.at(it->first);
  p.svcId = af.svcId;
  if ((spec.flags & SVC_F_SRC_RANGES) && !inRanges(r.saddr, spec.sourceRanges)) {
    p.kind = Expect::Drop;
    p.dropReason = DROP_SOURCE_RANGE;
    return p;
  }
  if ((spec.flags & SVC_F_NO_LOCAL_EPS) && spec.backends.empty()) {
    p.kind = Expect::Drop;
    p.dropReason = DROP_NO_LOCAL_EP;
    return p;
  }
  if (spec.backends.empty()) {
    // Rejected when the reply can be built from an IHL-5 header; a RST is
    // never answered; anything else is a counted drop.
    const bool rst = r.proto == kTcp && (in[r.l4 + 13] & testlib::kTcpRst);
    if (r.l4 != kEth + 20) {
      p.kind = Expect::Drop;
      p.dropReason = DROP_REJECT_FAILED;
    } else if (rst) {
      p.kind = Expect::Drop;
      p.dropReason = DROP_NO_BACKEND;
    } else {
      p.kind = Expect::Reject;
    }
    return p;
  }
  p.kind = Expect::Dnat;
  p.newFlow = true;
  // From a node NIC, a node-facing frontend (not Local) source-NATs a flow
  // whose backend is routed out of the node NIC; XDP leaves one without a
  // neighbour entry to tc, untouched and without CT entries.
  const bool mayNat =
      prog != Prog::Pod && (spec.flags & (SVC_F_EXTERNAL | SVC_F_LOCAL_ONLY)) == SVC_F_EXTERNAL;
  for (const auto& b : af.backends) {
    if (b.value.state == BE_STATE_EMPTY) continue;
    Outcome o;
    o.addr = ntohl(b.value.addr);
    o.port = ntohs(b.value.port);
    const FibAnswer f = fibModel(o.addr);
    if (mayNat && f.viaNic0 && f.rc != FibRc::NotForwarded) {
      if (f.rc == FibRc::NoNeigh && prog == Prog::Xdp) {
        o.kind = Expect::Identical, o.verdict = XDP_PASS;
      } else {
        o.snat = true, o.snatAddr = kNodeIp;
        snatPorts(o, r.proto);
        leave(o, prog, ttl, true, false);
      }
    } else if (prog == Prog::Pod && o.addr == r.saddr) {
      // Hairpin: a pod got itself as the backend. Source-NATed to the
      // node's address toward the pod (the FIB's answer: pod0 has none of
      // its own, so nic0's) and sent back into the pod.
      o.snat = o.hairpin = true, o.snatAddr = kNodeIp;
      snatPorts(o, r.proto);
      leave(o, prog, ttl, (spec.flags & SVC_F_EXTERNAL) != 0, false);
      hairpinMacs(o, prog, in);
    } else {
      leave(o, prog, ttl, (spec.flags & SVC_F_EXTERNAL) != 0, false);
      // One CT entry when this frontend is the backend's designated one.
      be_rev_key bk{};
      bk.addr = b.value.addr, bk.port = b.value.port, bk.proto = r.proto;
      auto des = dp_->beRev().lookup(bk);
      o.single = !(spec.flags & SVC_F_EXTERNAL) && des && des->svc_id == af.svcId;
    }
    p.alts[b.id] = o;
  }
  return p;
}

bool isVip(uint32_t addr, const std::vector<Frontend>& fs) {
  for (const auto& f : fs)
    if (f.key.vip == addr) return true;
  return false;
}

// A reject: TCP RST or ICMP port unreachable from the VIP:port back to the
// client, complete with valid checksums.
std::string checkReject(const Bytes& in, const Bytes& out, const Ref& r) {
  if (out.size() < kEth + 20 || get16(out, 12) != 0x0800 || out[kEth] != 0x45)
    return "reject is not an Ethernet/IPv4 (IHL 5) frame";
  if (!std::equal(out.begin(), out.begin() + 6, in.begin() + 6) ||
      !std::equal(out.begin() + 6, out.begin() + 12, in.begin()))
    return "reject does not swap the MAC addresses";
  if (testlib::inetChecksum(&out[kEth], 20) != 0) return "reject: bad IPv4 header checksum";
  if (get32(out, kEth + 12) != r.daddr || get32(out, kEth + 16) != r.saddr)
    return "reject does not go from the VIP back to the client";
  const uint16_t tot = get16(out, kEth + 2);
  if (kEth + tot > out.size()) return "reject: tot_len past the frame";
  const size_t l4 = kEth + 20;
  if (r.proto == kTcp) {
    if (out[kEth + 9] != kTcp || tot != 40) return "reject of TCP is not a 40-byte TCP segment";
    Ref o{};
    o.l4 = l4, o.totLen = tot, o.proto = kTcp, o.saddr = r.daddr, o.daddr = r.saddr;
    if (!l4CsumOk(out, o)) return "RST: bad TCP checksum";
    if (get16(out, l4) != r.dport || get16(out, l4 + 2) != r.sport) return "RST: wrong ports";
    if (!(out[l4 + 13] & testlib::kTcpRst)) return "RST: no RST flag";
    return "";
  }
  if (out[kEth + 9] != kIcmp || tot != 20 + 8 + 28)
    return "reject of UDP is not a 56-byte ICMP message";
  if (out[l4] != 3 || out[l4 + 1] != 3) return "ICMP reject is not port unreachable";
  if (testlib::inetChecksum(&out[l4], tot - 20) != 0) return "ICMP reject: bad checksum";
  if (!std::equal(out.begin() + l4 + 8, out.begin() + l4 + 8 + 28, in.begin() + kEth))
    return "ICMP reject does not quote the original IP header + 8 bytes";
  return "";
}

Mac macAt(const Bytes& f, size_t off) {
  Mac m{};
  std::copy(f.begin() + off, f.begin() + off + 6, m.begin());
  return m;
}
std::string macStr(const Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4],
                     m[5]);
}

std::string Fuzzer::check(Prog prog, const Bytes& in, const Bytes& out, int err, uint32_t retval,
                          const Prediction& p, Resolved& res) {
  const bool tc = prog != Prog::Xdp;
  res.kind = p.kind;
  res.dropReason = p.dropReason;
  if (err != 0) {
    // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header,
    // and (tc only) IPv4/IPv6 frames shorter than the fixed IP header: such
    // frames cannot reach a tc hook. Nothing else may fail to run.
    if (err == -EINVAL && in.size() < kEth) return "";
    if (err == -EINVAL && tc && in.size() >= kEth &&
        ((get16(in, 12) == 0x0800 && in.size() < kEth + 20) ||
         (get16(in, 12) == 0x86dd && in.size() < kEth + 40)))
      return "";
    return fmt::format("BPF_PROG_TEST_RUN failed: {}", strerror(-err));
  }
  const uint32_t pass = tc ? TC_ACT_OK : XDP_PASS, drop = tc ? TC_ACT_SHOT : XDP_DROP;
  const uint32_t bounce = tc ? TC_ACT_REDIRECT : XDP_TX;
  // tc: a frame left untouched gets TC_ACT_UNSPEC (the next tcx program or
  // legacy filter runs), a translated one TC_ACT_OK; XDP: XDP_PASS for both.
  const uint32_t untouched =
      tc ? static_cast<uint32_t>(TC_ACT_UNSPEC) : static_cast<uint32_t>(XDP_PASS);
  if (retval != pass && retval != untouched && retval != drop && retval != bounce &&
      !(!tc && retval == kXdpRedirect))
    return fmt::format("verdict {} is not pass, untouched, drop, {}", retval,
                       tc ? "redirect" : "tx or redirect");
  switch (p.kind) {
    case Expect::Drop:
      if (retval != drop)
        return fmt::format("expected a drop (reason {}), got verdict {}",
                           dropReasonName(p.dropReason), retval);
      return "";
    case Expect::Reject:
      if (retval != bounce) return fmt::format("expected a reject, got verdict {}", retval);
      return checkReject(in, out, *p.ref);
    case Expect::Arp:
      if (retval != bounce)
        return fmt::format("ARP request for an announced address: verdict {}, not {}", retval,
                           tc ? "redirect" : "XDP_TX");
      if (out != p.arpReply) return "ARP answer differs from the expected reply";
      return "";
    case Expect::Identical:
      if (retval == bounce || retval == kXdpRedirect)
        return "sent out a frame that is not for a service";
      if (retval == drop) return "dropped a frame the model passes";
      if (out != in) return "frame that is not for a service was modified";
      if (retval != untouched)
        return fmt::format("frame left untouched with verdict {}, not {}", retval, untouched);
      return "";
    default:
      break;
  }
  const Ref& r = *p.ref;
  if (retval == drop) {
    // Which drops the alternatives allow. A new source-NATed flow with TTL
    // <= 1 is dropped after its CT entries were made, port exhaustion
    // before: the CT tells the two apart.
    std::set<uint32_t> reasons;
    for (const auto& [id, o] : p.alts) {
      if (o.kind == Expect::Drop) reasons.insert(o.dropReason);
      if (o.portsMayRunOut) reasons.insert(DROP_SNAT_PORTS);
    }
    if (reasons.empty()) return "dropped a frame the model translates";
    res.kind = Expect::Drop;
    res.dropReason = *reasons.begin();
    if (reasons.size() > 1) {
      if (!reasons.count(DROP_SNAT_PORTS) || !p.newFlow) return "model: ambiguous drop reasons";
      res.dropReason = ctFind(r, in) ? DROP_TTL : DROP_SNAT_PORTS;
      if (!reasons.count(res.dropReason)) return "model: drop reason not among the alternatives";
    }
    return "";
  }
  if (retval == untouched && out == in) {
    for (const auto& [id, o] : p.alts)
      if (o.kind == Expect::Identical) {
        res.kind = Expect::Identical;
        if (p.newFlow && ctFind(r, in))
          return "XDP passed a new flow to tc untouched but made CT entries";
        return "";
      }
    return "frame of a service flow passed untouched";
  }
  const Outcome* o = nullptr;
  auto t = refParse(out);
  if (!t) return "translated frame no longer parses";
  for (const auto& [id, alt] : p.alts) {
    if (alt.kind != p.kind) continue;
    if (p.kind == Expect::Rnat || (alt.addr == t->daddr && (r.later || alt.port == t->dport))) {
      o = &alt;
      res.backendId = id;
    }
  }
  if (!o)
    return fmt::format("{} to {}:{}, not a backend the model allows (service {}{})",
                       p.kind == Expect::Dnat ? "DNAT" : "reverse NAT", ip4str(t->daddr), t->dport,
                       p.svcId, p.newFlow ? ", new flow" : ", CT hit");
  res.snat = o->snat;
  return checkOutcome(prog, in, out, retval, p, *o);
}

// A translated frame against the outcome the model expects for its backend.
std::string Fuzzer::checkOutcome(Prog prog, const Bytes& in, const Bytes& out, uint32_t retval,
                                 const Prediction& p, const Outcome& oc) {
  const Ref& r = *p.ref;
  if (retval != oc.verdict)
    return fmt::format("verdict {}, expected {} ({}{})", retval, oc.verdict,
                       oc.snat ? "source-NATed" : "translated",
                       oc.ttlDec ? ", forwarded by the program" : "");
  if (out.size() != in.size()) return fmt::format("length changed {} -> {}", in.size(), out.size());
  const bool dnat = oc.kind == Expect::Dnat;
  const bool src = !dnat || oc.snat, dst = dnat || oc.snat;
  if (r.later) return checkLaterFragment(in, out, r, oc);
  for (size_t i = 0; i < in.size(); ++i) {
    const bool allowed =
        (src && i >= r.l3 + 12 && i < r.l3 + 16) || (dst && i >= r.l3 + 16 && i < r.l3 + 20) ||
        (src && (i == r.l4 || i == r.l4 + 1)) || (dst && (i == r.l4 + 2 || i == r.l4 + 3)) ||
        i == r.l3 + 10 || i == r.l3 + 11 || i == r.csumOff || i == r.csumOff + 1 ||
        (oc.ttlDec && i == r.l3 + 8) || (oc.macs && i < 12);
    if (!allowed && in[i] != out[i]) return fmt::format("byte {} changed (not a NAT field)", i);
  }
  auto o = refParse(out);
  if (!o) return "translated frame no longer parses";
  if (oc.ttlDec && out[r.l3 + 8] != static_cast<uint8_t>(in[r.l3 + 8] - 1))
    return fmt::format("TTL {} -> {}, not decremented by one", in[r.l3 + 8], out[r.l3 + 8]);
  if (oc.macs && (macAt(out, 0) != oc.macs->first || macAt(out, 6) != oc.macs->second))
    return fmt::format("MACs {} -> {}, the FIB says {} -> {}", macStr(macAt(out, 6)),
                       macStr(macAt(out, 0)), macStr(oc.macs->second), macStr(oc.macs->first));
  if (ipCsumOk(in, r) && !ipCsumOk(out, *o)) return "IPv4 header checksum broken by the rewrite";
  const bool udpNone = r.proto == kUdp && get16(in, r.csumOff) == 0;
  if (udpNone) {
    if (get16(out, o->csumOff) != 0) return "UDP checksum 0 (none) became non-zero";
  } else if (l4CsumOk(in, r) && !l4CsumOk(out, *o)) {
    return "L4 checksum broken by the rewrite";
  }
  if (r.proto == kUdp && !udpNone && get16(out, o->csumOff) == 0)
    return "UDP checksum rewritten to 0 (means none)";
  if (dnat) {
    if (isVip(o->daddr, frontends_)) return "DNAT destination is a VIP";
    if (oc.snat) {
      if (o->saddr != kNodeIp)
        return fmt::format("SNAT source {} is not the node's address", ip4str(o->saddr));
      if (o->sport < kSnatMin || o->sport > kSnatMax)
        return fmt::format("SNAT port {} outside {}-{}", o->sport, kSnatMin, kSnatMax);
      if (oc.snatPort != 0 && o->sport != oc.snatPort)
        return fmt::format("SNAT port {}, the CT entry says {}", o->sport, oc.snatPort);
      if (oc.snatPort == 0 &&
          std::find(oc.freePorts.begin(), oc.freePorts.end(), o->sport) == oc.freePorts.end())
        return fmt::format("SNAT port {} collides: a live flow to {}:{} holds it", o->sport,
                           ip4str(o->daddr), o->dport);
    } else if (o->saddr != r.saddr || o->sport != r.sport) {
      return "DNAT changed the source";
    }
    // Both CT entries of the flow exist and agree (the REPLY entry is keyed
    // on the backend's answer to the client, or to node:port with SNAT); a
    // single-entry flow has its FORWARD entry only.
    auto fwd = ctLookup(r.saddr, r.sport, r.daddr, r.dport, r.proto);
    auto rev = ctLookup(o->daddr, o->dport, o->saddr, o->sport, r.proto);
    if (!fwd || fwd->dir != CT_DIR_FORWARD || ntohl(fwd->nat_addr) != o->daddr ||
        ntohs(fwd->nat_port) != o->dport || !!(fwd->flags & CT_F_SNAT) != oc.snat ||
        (oc.snat && (ntohl(fwd->snat_addr) != o->saddr || ntohs(fwd->snat_port) != o->sport)))
      return "no matching FORWARD CT entry after DNAT";
    if (p.newFlow && !!(fwd->flags & CT_F_SINGLE) != oc.single)
      return oc.single ? "a new flow of its backend's designated frontend took two CT entries"
                       : "a new flow took a single CT entry but is not its backend's designated "
                         "frontend's";
    if (fwd->flags & CT_F_SINGLE) return "";
    // Every DNAT leaves both entries of the flow (an evicted REPLY entry is
    // rebuilt by the FORWARD hit).
    if (!rev || rev->dir != CT_DIR_REPLY || ntohl(rev->nat_addr) != r.daddr ||
        ntohs(rev->nat_port) != r.dport ||
        (oc.snat && (!(rev->flags & CT_F_SNAT) || ntohl(rev->snat_addr) != r.saddr ||
                     ntohs(rev->snat_port) != r.sport)))
      return p.newFlow
                 ? "no matching REPLY CT entry after DNAT of a new flow"
                 : "no matching REPLY CT entry after DNAT of a tracked flow (half-evicted flow)";
  } else {
    // ...and every reverse NAT leaves the FORWARD entry of its flow.
    const uint32_t client = oc.snat ? oc.snatAddr : r.daddr;
    const uint16_t cport = oc.snat ? oc.snatPort : r.dport;
    auto fwd = ctLookup(client, cport, oc.addr, oc.port, r.proto);
    if (!fwd || fwd->dir != CT_DIR_FORWARD || ntohl(fwd->nat_addr) != r.saddr ||
        ntohs(fwd->nat_port) != r.sport)
      return "no matching FORWARD CT entry after reverse NAT (half-evicted flow)";
    if (o->saddr != oc.addr || o->sport != oc.port)
      return fmt::format("reverse NAT source {}:{}, CT says {}:{}", ip4str(o->saddr), o->sport,
                         ip4str(oc.addr), oc.port);
    if (!actual_.count(FrontendKey{o->saddr, o->sport, r.proto}))
      return "reverse NAT source is not a service VIP:port";
    if (oc.snat) {
      if (o->daddr != oc.snatAddr || o->dport != oc.snatPort)
        return fmt::format("reply of a source-NATed flow goes to {}:{}, not to its client {}:{}",
                           ip4str(o->daddr), o->dport, ip4str(oc.snatAddr), oc.snatPort);
    } else if (o->daddr != r.daddr || o->dport != r.dport) {
      return "reverse NAT changed the destination";
    }
  }
  (void)prog;
  return "";
}

// A later fragment's translation: its IP header only (addresses, checksum,
// TTL when forwarded, MACs), everything after it untouched, the addresses
// those of its flow.
std::string Fuzzer::checkLaterFragment(const Bytes& in, const Bytes& out, const Ref& r,
                                       const Outcome& oc) {
  const bool dnat = oc.kind == Expect::Dnat;
  for (size_t i = 0; i < in.size(); ++i) {
    const bool allowed = (i >= r.l3 + 12 && i < r.l3 + 20) || i == r.l3 + 10 || i == r.l3 + 11 ||
                         (oc.ttlDec && i == r.l3 + 8) || (oc.macs && i < 12);
    if (!allowed && in[i] != out[i])
      return fmt::format("byte {} of a later fragment changed (not an IP address field)", i);
  }
  if (oc.ttlDec && out[r.l3 + 8] != static_cast<uint8_t>(in[r.l3 + 8] - 1))
    return "later fragment: TTL not decremented by one";
  if (oc.macs && (macAt(out, 0) != oc.macs->first || macAt(out, 6) != oc.macs->second))
    return "later fragment: MACs differ from the FIB's";
  if (ipCsumOk(in, r) && !ipCsumOk(out, r)) return "later fragment: IPv4 header checksum broken";
  const uint32_t sa = get32(out, r.l3 + 12), da = get32(out, r.l3 + 16);
  uint32_t wantSa = r.saddr, wantDa = r.daddr;
  if (dnat) {
    wantDa = oc.addr;
    if (oc.snat) wantSa = oc.snatAddr;
  } else {
    wantSa = oc.addr;
    if (oc.snat) wantDa = oc.snatAddr;
  }
  if (sa != wantSa || da != wantDa)
    return fmt::format("later fragment {} -> {}, its flow says {} -> {}", ip4str(sa), ip4str(da),
                       ip4str(wantSa), ip4str(wantDa));
  return "";
}

void Fuzzer::tally(const Prediction& p, const Resolved& res, const Bytes& in) {
  expCtEvents_[CT_EV_FRAG_NO_FIRST] += p.fragNoFirst;
  expCtEvents_[CT_EV_RELINKED] += p.relink;
  expCtEvents_[CT_EV_ORPHANED] += p.orphan;
  switch (res.kind) {
    case Expect::Identical:
      ++identical_;
      if (p.kind == Expect::Dnat) ++noNeighPasses_;
      break;
    case Expect::Arp:
      ++arps_;
      break;
    case Expect::Drop:
      ++drops_;
      expDrops_[res.dropReason].packets++;
      expDrops_[res.dropReason].bytes += in.size();
      break;
    case Expect::Dnat:
      ++dnats_;
      snatDnats_ += res.snat;
      newSnatFlows_ += res.snat && p.newFlow;
      for (auto* s : {&expSvc_[p.svcId], &expBe_[res.backendId]}) {
        s->packets++;
        s->bytes += p.ref->totLen;
        s->flows += p.newFlow;
      }
      break;
    case Expect::Rnat:
      ++rnats_;
      snatRnats_ += res.snat;
      for (auto* s : {&expSvc_[p.svcId], &expBe_[res.backendId]}) {
        s->reply_packets++;
        s->reply_bytes += p.ref->totLen;
      }
      break;
    case Expect::Reject:
      ++rejects_;
      expSvc_[p.svcId].rejects++;
      break;
  }
}

bool sameStats(const lb_stats& a, const lb_stats& b) {
  return a.packets == b.packets && a.bytes == b.bytes && a.reply_packets == b.reply_packets &&
         a.reply_bytes == b.reply_bytes && a.flows == b.flows && a.rejects == b.rejects;
}
std::string str(const lb_stats& s) {
  return fmt::format(
      "{{packets {}, bytes {}, reply_packets {}, reply_bytes {}, flows {}, rejects {}}}", s.packets,
      s.bytes, s.reply_packets, s.reply_bytes, s.flows, s.rejects);
}

// Compares every counter with the model's tally.
std::string Fuzzer::checkCounters() {
  std::string bad;
  lb_stats sum{};
  for (const auto& [k, af] : actual_) {
    lb_stats got = dp_->frontendStats(af->svcId);
    lb_stats want = expSvc_[af->svcId];
    sum.packets += got.packets;
    sum.reply_packets += got.reply_packets;
    if (!sameStats(got, want))
      bad += fmt::format("  service {}:{}/{} (id {}): counted {}, model {}\n", ip4str(k.vip),
                         k.port, k.proto, af->svcId, str(got), str(want));
  }
  if (sum.packets != dnats_ || sum.reply_packets != rnats_)
    bad += fmt::format(
        "  sum over services: packets {} reply_packets {}; observed DNAT {} reverse NAT {}\n",
        sum.packets, sum.reply_packets, dnats_, rnats_);
  for (const auto& [id, v] : backends_) {
    lb_stats got = sumStats(dp_->backendStats().lookup(id));
    lb_stats want = expBe_[id];
    if (!sameStats(got, want))
      bad += fmt::format("  backend {}:{} (id {}): counted {}, model {}\n", ip4str(ntohl(v.addr)),
                         ntohs(v.port), id, str(got), str(want));
  }
  for (uint32_t ev = 0; ev < CT_EV_MAX; ++ev) {
    const uint64_t got = sumCounts(dp_->ctEvents().lookup(ev));
    if (got != expCtEvents_[ev])
      bad += fmt::format("  conntrack event {} ({}): counted {}, model {}\n", ev,
                         ctEventName(ev) ? ctEventName(ev) : "-", got, expCtEvents_[ev]);
  }
  for (uint32_t reason = 0; reason < DROP_MAX; ++reason) {
    drop_stats got = sumDrops(dp_->drops().lookup(reason));
    if (got.packets != expDrops_[reason].packets || got.bytes != expDrops_[reason].bytes)
      bad += fmt::format("  drops[{}] ({}): counted {} packets/{} bytes, model {}/{}\n", reason,
                         dropReasonName(reason), got.packets, got.bytes, expDrops_[reason].packets,
                         expDrops_[reason].bytes);
  }
  return bad;
}

void Fuzzer::fail(uint64_t idx, int cat, const char* prog, const Bytes& in, const Bytes& out,
                  const std::string& why) {
  ++failures_;
  if (firstViolation_.empty()) {
    firstViolation_ = fmt::format("packet {} program {}: {}", idx, prog, why);
    recordPending_ = true;
  }
  if (failures_ > opt_.maxFailures) return;
  fmt::print(stderr,
             "VIOLATION #{} packet {} (seed {}, category {}, program {}): {}\n  in  ({} "
             "bytes):\n{}\n  out ({} bytes):\n{}\n",
             failures_, idx, opt_.seed, kCategoryNames[cat], prog, why, in.size(), testlib::hex(in),
             out.size(), testlib::hex(out));
  if (!opt_.artifacts.empty()) {
    std::filesystem::create_directories(opt_.artifacts);
    std::ofstream(fmt::format("{}/violation-{}-{}.bin", opt_.artifacts, opt_.seed, idx),
                  std::ios::binary)
        .write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  }
}

void Fuzzer::eraseBoth(const std::vector<std::pair<ct_key, ct_value>>& keys) {
  for (const auto& [k, v] : keys)
    for (CtMap m : {dp_->conntrack(), dp_->conntrackEst()}) (void)m.erase(k);
}

void Fuzzer::expireSnatFlows() {
  Event ev;
  ev.kind = Event::Erase;
  ev.idx = idx_;
  for (const Flow& f : snatFlows_) {
    ct_key fk{}, rk{};
    fk.saddr = htonl(f.client), fk.daddr = htonl(f.vip), fk.sport = htons(f.cport),
    fk.dport = htons(f.vport);
    rk.saddr = htonl(f.backend), rk.daddr = htonl(kNodeIp), rk.sport = htons(f.bport),
    rk.dport = htons(f.snatPort);
    fk.proto = rk.proto = f.proto;
    ev.entries.push_back({fk, {}});
    ev.entries.push_back({rk, {}});
  }
  eraseBoth(ev.entries);
  journal_.push_back(std::move(ev));
  expiredSnatFlows_ += snatFlows_.size();
  snatFlows_.clear();
}

std::string hexOf(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<const uint8_t*>(p)[i];
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}
template <class T>
std::string hexOf(const T& v) {
  return hexOf(&v, sizeof(v));
}
std::string hexOf(const Bytes& b) { return hexOf(b.data(), b.size()); }
Bytes bytesOf(const std::string& h) {
  Bytes b(h.size() / 2);
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<uint8_t>(std::stoi(h.substr(2 * i, 2), nullptr, 16));
  return b;
}
template <class T>
T structOf(const std::string& h) {
  T v{};
  Bytes b = bytesOf(h);
  if (b.size() == sizeof(T)) std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

// Runs one frame through the three programs in `order`, predicting and
// checking each run. `rec`: what happened goes there. `replayed`: the
// recording of this frame (replay: new flows are made to match it).
void Fuzzer::runFrame(int cat, const Bytes& in, const std::array<int, 3>& order, Event* rec,
                      const Event* replayed) {
  const int fds[3] = {dp_->tcProgFd(), dp_->xdpProgFd(), dp_->tcExtProgFd()};
  Bytes out;
  cats_[cat].frames++;
  std::optional<std::pair<uint32_t, uint16_t>> translatedTo;
  for (size_t ri = 0; ri < order.size(); ++ri) {
    const int pi = order[ri];
    const Prog prog = static_cast<Prog>(pi);
    const char* name = kProgNames[pi];
    const RunRec* want = replayed && ri < replayed->runs.size() ? &replayed->runs[ri] : nullptr;
    if (want && diverged_ == 0) {
      // LRU evictions differ between runs: an entry this run depends on
      // (one the model reads) that the recording had and the replay lost,
      // or the other way round, is made present or absent as recorded. An
      // entry present in both keeps the replay's value: a difference there
      // comes from the history the replay is reproducing. Once an output
      // differs (another build, another behaviour) the histories differ
      // for real and the recording's state is no longer imposed.
      std::set<std::pair<bool, std::string>> done;
      for (const Read& r : want->reads) {
        if (!done.insert({r.est, hexOf(r.k)}).second) continue;
        CtMap m = r.est ? dp_->conntrackEst() : dp_->conntrack();
        const auto cur = m.lookup(r.k);
        const bool here = cur.has_value();
        if (r.v && here && std::memcmp(&*cur, &*r.v, sizeof(ct_value)) != 0) {
          ct_value want2 = onReplayClock(*r.v);
          if (std::memcmp(&*cur, &want2, sizeof(ct_value)) != 0 && ++valuesDiffer_ <= 5)
            fmt::print(stderr,
                       "replay: packet {} before {}: CT entry {} is {}, the recording had {}\n",
                       idx_, name, hexOf(r.k), hexOf(*cur), hexOf(want2));
        }
        if (r.v && !here) {
          (void)m.update(r.k, onReplayClock(*r.v));
          ++evictionsAligned_;
        } else if (!r.v && here) {
          (void)m.erase(r.k);
          ++evictionsAligned_;
        }
      }
    }
    std::vector<Read> reads;
    reads_ = rec ? &reads : nullptr;
    Prediction p = predict(in, prog);
    reads_ = nullptr;
    out.assign(in.size() + 256, 0);
    // The pod side runs on pod0, the node-NIC programs on nic0 (their FIB
    // lookups and XDP_TX depend on it).
    __sk_buff skb{};
    xdp_md xdp{};
    skb.ifindex = prog == Prog::Pod ? netns_.pod0() : netns_.nic0();
    xdp.data_end = static_cast<uint32_t>(in.size());
    xdp.ingress_ifindex = netns_.nic0();
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(in.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .repeat = 1);
    if (prog == Prog::Xdp) {
      opts.ctx_in = &xdp;
      opts.ctx_size_in = sizeof(xdp);
    } else {
      opts.ctx_in = &skb;
      opts.ctx_size_in = sizeof(skb);
    }
    const auto r0 = std::chrono::steady_clock::now();
    int err = bpf_prog_test_run_opts(fds[pi], &opts);
    runSeconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
    ++runs_;
    out.resize(err == 0 ? opts.data_size_out : 0);
    RunRec rr;
    rr.err = err;
    rr.retval = opts.retval;
    rr.out = out;
    rr.reads = std::move(reads);
    // The flow this run created, from its FORWARD entry (a run can create
    // one and still drop the frame, e.g. for its TTL).
    std::optional<ct_value> madeFwd;
    ct_key fk{};
    bool tallied = false;
    if (p.newFlow && p.ref && (rec || (want && want->created))) {
      fk.saddr = htonl(p.ref->saddr), fk.daddr = htonl(p.ref->daddr);
      fk.sport = htons(p.ref->sport), fk.dport = htons(p.ref->dport), fk.proto = p.ref->proto;
      madeFwd = dp_->conntrack().lookup(fk);
      if (madeFwd && madeFwd->dir != CT_DIR_FORWARD) madeFwd.reset();
    }
    if (rec && madeFwd) {
      rr.fk = fk;
      rr.fv = *madeFwd;
      rr.rk = pairKey(*madeFwd, fk);
      if (madeFwd->flags & CT_F_SINGLE) {
        rr.created = true;  // its one entry (rk/rv unused)
      } else if (auto rv = dp_->conntrack().lookup(rr.rk)) {
        rr.created = true;
        rr.rv = *rv;
      }
      rr.ak = {p.svcId, htonl(p.ref->saddr)};
      if (auto av = dp_->affinity().lookup(rr.ak)) {
        rr.haveAff = true;
        rr.av = *av;
        rr.av.last_used_ns -= snap_.monoNs;  // relative to the snapshot
      }
    }
    auto sameFlow = [](const ct_value& a, const ct_value& b) {
      ct_value x = a, y = b;
      x.last_seen = y.last_seen = 0;
      return std::memcmp(&x, &y, sizeof(x)) == 0;
    };
    if (want && want->created && p.newFlow && !(madeFwd && sameFlow(*madeFwd, want->fv))) {
      // The kernel chose another backend or SNAT port than in the recording:
      // the model's counters follow what the kernel did (it counted it);
      // then its entries are replaced by the recorded ones, and so is the
      // output this run is checked with.
      Resolved kres;
      if (std::string why = check(prog, in, out, err, opts.retval, p, kres); why.empty()) {
        tally(p, kres, in);
        tallied = true;
      } else if (++diverged_ <= 5) {
        fmt::print(stderr, "replay: packet {} program {}: the kernel's own choice failed: {}\n",
                   idx_, name, why);
      }
      if (madeFwd && !(madeFwd->flags & CT_F_SINGLE))
        (void)dp_->conntrack().erase(pairKey(*madeFwd, fk));
      (void)dp_->conntrack().erase(want->fk);
      if (!(want->fv.flags & CT_F_SINGLE))
        (void)dp_->conntrack().update(want->rk, onReplayClock(want->rv));
      (void)dp_->conntrack().update(want->fk, onReplayClock(want->fv));
      if (want->haveAff) {
        affinity_value av = want->av;
        av.last_used_ns += snap_.monoNs;  // the replay's clock offset (see replay())
        (void)dp_->affinity().update(want->ak, av);
      }
      err = want->err;
      opts.retval = want->retval;
      out = want->out;
      ++corrected_;
    } else if (want && (err != want->err || opts.retval != want->retval || out != want->out)) {
      if (++diverged_ <= 5)
        fmt::print(
            stderr,
            "replay: packet {} program {}: output differs from the recording (verdict {} vs {})\n",
            idx_, name, opts.retval, want->retval);
    }
    // Every program that parsed a first fragment recorded its ports.
    if (err == 0 && p.ref && p.ref->first) frags_[fragKey(*p.ref)] = {p.ref->sport, p.ref->dport};
    Resolved res;
    if (err != 0) {
      cats_[cat].kernelRejected++;
      if (std::string why = check(prog, in, out, err, opts.retval, p, res); !why.empty())
        fail(idx_, cat, name, in, out, why);
      if (rec) rec->runs.push_back(std::move(rr));
      continue;
    }
    if (std::string why = check(prog, in, out, err, opts.retval, p, res); !why.empty()) {
      fail(idx_, cat, name, in, out, why);
      if (rec) rec->runs.push_back(std::move(rr));
      continue;
    }
    if (!tallied) tally(p, res, in);
    switch (res.kind) {
      case Expect::Dnat:
        cats_[cat].dnat++;
        cats_[cat].snat += res.snat;
        break;
      case Expect::Rnat:
        cats_[cat].rnat++;
        cats_[cat].snat += res.snat;
        break;
      case Expect::Drop:
        cats_[cat].drop++;
        break;
      case Expect::Reject:
        cats_[cat].reject++;
        break;
      case Expect::Identical:
        cats_[cat].identical++;
        break;
      case Expect::Arp:
        cats_[cat].arp++;
        break;
    }
    if (res.kind == Expect::Dnat) {
      // All programs must pick the same backend for the same frame.
      auto o = refParse(out);
      std::pair<uint32_t, uint16_t> to{o->daddr, o->dport};
      // (A new flow may go elsewhere: a SYN+FIN frame marks the entry
      // the first run made as closing, and the third run balances anew.)
      if (translatedTo && !p.newFlow && *translatedTo != to)
        fail(idx_, cat, name, in, out, "two programs translated the same frame differently");
      translatedTo = to;
      if (p.newFlow) {
        if (flows_.size() >= 4096) flows_.pop_front();
        flows_.push_back({p.ref->saddr, p.ref->daddr, o->daddr, p.ref->sport, p.ref->dport,
                          o->dport, p.ref->proto, res.snat, o->sport});
        if (res.snat) snatFlows_.push_back(flows_.back());
      }
    }
    if (rec) rec->runs.push_back(std::move(rr));
  }
}

uint64_t monoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

void Fuzzer::takeSnapshot(uint64_t nextIdx) {
  snap_ = {};
  snap_.idx = nextIdx;
  snap_.tick = dp_->nowTicks();
  snap_.monoNs = monoNs();
  dp_->conntrack().forEach(
      [&](const ct_key& k, const ct_value& v) { snap_.ct.emplace_back(k, v); });
  dp_->conntrackEst().forEach(
      [&](const ct_key& k, const ct_value& v) { snap_.est.emplace_back(k, v); });
  dp_->affinity().forEach(
      [&](const affinity_key& k, const affinity_value& v) { snap_.aff.emplace_back(k, v); });
  dp_->frags().forEach(
      [&](const frag_key& k, const frag_value& v) { snap_.frags.emplace_back(k, v); });
  snapModelFrags_ = frags_;
  snapModelFrags6_ = frags6_;
  dp_->frags6().forEach(
      [&](const frag6_key& k, const frag_value& v) { snap_.frags6.emplace_back(k, v); });
  journal_.clear();
}

// --corrupt-at: a state a datapath bug could leave (the REPLY entries of the
// latest flows name the wrong service port; a single-entry flow's FORWARD
// entry the wrong backend port), written as the fuzzer's own
// map writes so a replay makes them too.
void Fuzzer::corruptReplies() {
  Event ev;
  ev.kind = Event::Write;
  ev.idx = idx_;
  size_t n = 0;
  for (auto it = flows_.rbegin(); it != flows_.rend() && n < 64; ++it) {
    ct_key rk{};
    rk.saddr = htonl(it->backend), rk.sport = htons(it->bport), rk.proto = it->proto;
    rk.daddr = htonl(it->snat ? kNodeIp : it->client);
    rk.dport = htons(it->snat ? it->snatPort : it->cport);
    auto v = dp_->conntrack().lookup(rk);
    if (!v || v->dir != CT_DIR_REPLY) {
      // A single-entry flow: its FORWARD entry names a wrong backend port.
      ct_key fk{};
      fk.saddr = htonl(it->client), fk.sport = htons(it->cport), fk.proto = it->proto;
      fk.daddr = htonl(it->vip), fk.dport = htons(it->vport);
      v = dp_->conntrack().lookup(fk);
      if (!v || !(v->flags & CT_F_SINGLE)) continue;
      rk = fk;
    }
    v->nat_port = htons(static_cast<uint16_t>(ntohs(v->nat_port) ^ 1));
    ev.entries.push_back({rk, *v});
    ++n;
  }
  for (const auto& [k, v] : ev.entries) (void)dp_->conntrack().update(k, v);
  fmt::print(stderr,
             "packet_fuzz: --corrupt-at {}: the CT entries of {} flows now name a wrong port\n",
             idx_, ev.entries.size());
  journal_.push_back(std::move(ev));
}

void Fuzzer::writeRecording(const std::string& what) {
  if (recordWritten_ || !opt_.replay.empty()) return;
  recordWritten_ = true;
  using nlohmann::json;
  json j;
  j["format"] = "svclb-packet-fuzz-replay/1";
  j["seed"] = opt_.seed;
  j["ctEntries"] = opt_.ctEntries;
  j["cpu"] = cpu_;
  j["networkAddrUnicast"] = gNetworkAddrUnicast;
  j["violation"] = what;
  json sj;
  sj["idx"] = snap_.idx;
  sj["tick"] = snap_.tick;
  auto pairs = [](const auto& v) {
    json a = json::array();
    for (const auto& [k, x] : v) a.push_back({hexOf(k), hexOf(x)});
    return a;
  };
  sj["ct"] = pairs(snap_.ct);
  sj["est"] = pairs(snap_.est);
  json aff = json::array();
  for (const auto& [k, v] : snap_.aff) {
    affinity_value rel = v;
    rel.last_used_ns -= snap_.monoNs;  // relative to the snapshot
    aff.push_back({hexOf(k), hexOf(rel)});
  }
  sj["affinity"] = aff;
  sj["frag"] = pairs(snap_.frags);
  json mf = json::array();
  for (const auto& [k, ports] : snapModelFrags_)
    mf.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), ports.first,
                  ports.second});
  sj["modelFrags"] = mf;
  sj["frag6"] = pairs(snap_.frags6);
  json mf6 = json::array();
  for (const auto& k : snapModelFrags6_) mf6.push_back(hexOf(k.data(), k.size()));
  sj["modelFrags6"] = mf6;
  j["snapshot"] = sj;
  json evs = json::array();
  for (const auto& e : journal_) {
    json ej;
    ej["kind"] = e.kind == Event::Frame ? "frame" : e.kind == Event::Erase ? "erase" : "write";
    ej["idx"] = e.idx;
    if (e.kind == Event::Frame) {
      ej["cat"] = e.cat;
      ej["tick"] = e.tick;
      ej["order"] = e.order;
      ej["in"] = hexOf(e.in);
      json runs = json::array();
      for (const auto& r : e.runs) {
        json rj = {{"err", r.err}, {"retval", r.retval}, {"out", hexOf(r.out)}};
        json reads = json::array();
        for (const Read& x : r.reads)
          reads.push_back({x.est ? 1 : 0, hexOf(x.k), x.v ? hexOf(*x.v) : std::string()});
        rj["reads"] = reads;
        if (r.created) {
          rj["ct"] = {hexOf(r.fk), hexOf(r.fv), hexOf(r.rk), hexOf(r.rv)};
          if (r.haveAff) rj["affinity"] = {hexOf(r.ak), hexOf(r.av)};
        }
        runs.push_back(rj);
      }
      ej["runs"] = runs;
    } else {
      ej["entries"] = pairs(e.entries);
    }
    evs.push_back(ej);
  }
  j["events"] = evs;
  std::string path = opt_.record;
  if (path.empty()) {
    const char* tmp = getenv("TMPDIR");
    path =
        fmt::format("{}/packet_fuzz-{}-{}.replay", tmp && *tmp ? tmp : "/tmp", opt_.seed, getpid());
  }
  std::ofstream f(path);
  f << j.dump() << '\n';
  if (!f) {
    fmt::print(stderr, "packet_fuzz: writing the recording to {} failed\n", path);
    return;
  }
  fmt::print(
      stderr,
      "packet_fuzz: recorded packets {}..{} (CPU {}); reproduce with: packet_fuzz --replay {}\n",
      snap_.idx, idx_, cpu_, path);
}

// One CPU for the whole run: BPF_PROG_TEST_RUN runs on the calling CPU, and
// the LRU maps keep per-CPU lists.
int pinCpu(int cpu) {
  if (cpu < 0) cpu = sched_getcpu();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) return -1;
  return cpu;
}

int Fuzzer::run() {
  cpu_ = pinCpu(-1);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t lastCheck = 0;
  takeSnapshot(0);
  for (idx_ = 0; idx_ < opt_.packets && failures_ < opt_.maxFailures; ++idx_) {
    if (opt_.corruptAt && idx_ == opt_.corruptAt) corruptReplies();
    Event ev;
    ev.idx = idx_;
    ev.in = generate(ev.cat);
    ev.order = {0, 1, 2};
    std::shuffle(ev.order.begin(), ev.order.end(), rng_);
    now_ = dp_->nowTicks();  // once per frame: a tick is ~1 s, lifetimes are >= 10 s
    ev.tick = now_;
    runFrame(ev.cat, ev.in, ev.order, &ev, nullptr);
    journal_.push_back(std::move(ev));
    if (recordPending_) {
      writeRecording(firstViolation_);
      recordPending_ = false;
    }
    // Source-NATed flows end now and then (their lifetime would pass in a
    // real node; here the programs' own SNAT probes keep the entries
    // fresh in the LRU): their ports become free for new flows again.
    if ((idx_ + 1) % kSnatExpireEvery == 0) expireSnatFlows();
    if (idx_ + 1 - lastCheck >= opt_.checkEvery || idx_ + 1 == opt_.packets) {
      lastCheck = idx_ + 1;
      if (std::string bad = checkCounters(); !bad.empty()) {
        ++failures_;
        fmt::print(stderr,
                   "VIOLATION counters after packet {} (seed {}; rerun with --check-every 1 to "
                   "pinpoint):\n{}",
                   idx_, opt_.seed, bad);
        if (firstViolation_.empty())
          firstViolation_ = fmt::format("counters after packet {}", idx_);
        writeRecording(firstViolation_);
        break;
      }
      takeSnapshot(idx_ + 1);
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (!opt_.quiet) {
    fmt::print("{:<20} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>5} {:>7}\n", "category",
               "frames", "dnat", "rnat", "snat", "drop", "reject", "identical", "arp", "einval");
    for (int c = 0; c < kCategories; ++c)
      fmt::print("{:<20} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>5} {:>7}\n",
                 kCategoryNames[c], cats_[c].frames, cats_[c].dnat, cats_[c].rnat, cats_[c].snat,
                 cats_[c].drop, cats_[c].reject, cats_[c].identical, cats_[c].arp,
                 cats_[c].kernelRejected);
  }
  fmt::print(
      "packet_fuzz: seed {}: {} frames, {} program runs ({} DNAT, {} reverse NAT, {} rejects, {} "
      "drops, "
      "{} untouched); CT entries at the end {} of {}\n",
      opt_.seed, idx_, runs_, dnats_, rnats_, rejects_, drops_, identical_,
      dp_->conntrack().count() + dp_->conntrackEst().count(), opt_.ctEntries);
  fmt::print(
      "packet_fuzz: node NIC: {} source-NATed forward ({} new flows, {} candidate SNAT ports "
      "checked), "
      "{} source-NATed replies, {} passed to tc (no neighbour), {} ARP answers, {} SNAT flows "
      "expired; drops: "
      "{} source range, {} no local endpoint, {} no SNAT port, {} TTL, {} FIB\n",
      snatDnats_, newSnatFlows_, portChecks_, snatRnats_, noNeighPasses_, arps_, expiredSnatFlows_,
      expDrops_[DROP_SOURCE_RANGE].packets, expDrops_[DROP_NO_LOCAL_EP].packets,
      expDrops_[DROP_SNAT_PORTS].packets, expDrops_[DROP_TTL].packets, expDrops_[DROP_FIB].packets);
  fmt::print(
      "packet_fuzz: conntrack: {} half-evicted flows rebuilt (relinked), {} orphaned entries "
      "dropped\n",
      expCtEvents_[CT_EV_RELINKED], expCtEvents_[CT_EV_ORPHANED]);
  fmt::print(
      "packet_fuzz: {:.1f} s wall, {:.0f} frames/s end to end (model + checks), {:.0f} test_run "
      "calls/s "
      "({:.2f} us per call), CPU {}\n",
      wall, idx_ / wall, runs_ / runSeconds_, 1e6 * runSeconds_ / std::max<uint64_t>(runs_, 1),
      cpu_);
  // A run that never translated, reversed or dropped proves nothing.
  if (idx_ >= 2000 && (dnats_ == 0 || rnats_ == 0 || drops_ == 0 || rejects_ == 0)) {
    fmt::print(stderr, "packet_fuzz: coverage: no DNAT, reverse NAT, reject or drop seen\n");
    ++failures_;
  }
  if (idx_ >= 20000 &&
      (newSnatFlows_ == 0 || snatRnats_ == 0 || noNeighPasses_ == 0 || arps_ == 0 ||
       expDrops_[DROP_SOURCE_RANGE].packets == 0 || expDrops_[DROP_NO_LOCAL_EP].packets == 0)) {
    fmt::print(stderr,
               "packet_fuzz: coverage: a node-NIC path was never taken (see the counts above)\n");
    ++failures_;
  }
  if (failures_) {
    fmt::print(stderr, "packet_fuzz: FAILED: {} violation(s) (seed {})\n", failures_, opt_.seed);
    return 1;
  }
  fmt::print("packet_fuzz: OK, every invariant held\n");
  return 0;
}

int Fuzzer::replay() {
  using nlohmann::json;
  json j;
  try {
    std::ifstream f(opt_.replay);
    if (!f) {
      fmt::print(stderr, "packet_fuzz: cannot read {}\n", opt_.replay);
      return 2;
    }
    j = json::parse(f);
    if (j.at("format") != "svclb-packet-fuzz-replay/1") {
      fmt::print(stderr, "packet_fuzz: {} is not a packet_fuzz recording\n", opt_.replay);
      return 2;
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "packet_fuzz: {}: {}\n", opt_.replay, e.what());
    return 2;
  }
  const std::string recorded = j.at("violation");
  opt_.seed = j.at("seed");
  if (j.at("networkAddrUnicast").get<bool>() != gNetworkAddrUnicast)
    fmt::print(stderr,
               "replay: note: this kernel routes 192.168.77.0 differently from the recording's\n");
  cpu_ = pinCpu(j.at("cpu").get<int>());
  if (cpu_ < 0) {
    fmt::print(stderr, "replay: cannot pin CPU {} as recorded; using this one\n",
               j.at("cpu").get<int>());
    cpu_ = pinCpu(-1);
  }
  const json& sj = j.at("snapshot");
  const uint32_t t0 = sj.at("tick");
  // Start just after a tick boundary: the most room before the recording's
  // next tick (bounded: a tick is ~1 s).
  const uint32_t start = dp_->nowTicks();
  for (int i = 0; i < 3000 && dp_->nowTicks() == start; ++i) usleep(1000);
  const uint32_t r0 = dp_->nowTicks();
  shift_ = r0 - t0;
  snap_ = {};
  snap_.monoNs = monoNs();
  for (const auto& [name, map] :
       {std::pair{"ct", dp_->conntrack()}, std::pair{"est", dp_->conntrackEst()}})
    for (const auto& e : sj.at(name)) {
      ct_value v = structOf<ct_value>(e[1]);
      v.last_seen += shift_;
      CtMap m = map;
      (void)m.update(structOf<ct_key>(e[0]), v);
    }
  for (const auto& e : sj.at("affinity")) {
    affinity_value v = structOf<affinity_value>(e[1]);
    v.last_used_ns += snap_.monoNs;
    (void)dp_->affinity().update(structOf<affinity_key>(e[0]), v);
  }
  for (const auto& e : sj.at("frag"))
    (void)dp_->frags().update(structOf<frag_key>(e[0]), structOf<frag_value>(e[1]));
  for (const auto& e : sj.at("frag6"))
    (void)dp_->frags6().update(structOf<frag6_key>(e[0]), structOf<frag_value>(e[1]));
  frags6_.clear();
  for (const auto& e : sj.at("modelFrags6")) {
    const Bytes b = bytesOf(e.get<std::string>());
    frags6_.insert(std::string(b.begin(), b.end()));
  }
  frags_.clear();
  for (const auto& e : sj.at("modelFrags"))
    frags_[{e[0].get<uint32_t>(), e[1].get<uint32_t>(), e[2].get<uint16_t>(),
            e[3].get<uint8_t>()}] = {e[4].get<uint16_t>(), e[5].get<uint16_t>()};
  uint64_t frames = 0;
  for (const auto& ej : j.at("events")) {
    idx_ = ej.at("idx");
    if (ej.at("kind") != "frame") {
      std::vector<std::pair<ct_key, ct_value>> es;
      for (const auto& e : ej.at("entries"))
        es.push_back({structOf<ct_key>(e[0]), structOf<ct_value>(e[1])});
      if (ej.at("kind") == "erase")
        eraseBoth(es);
      else
        for (const auto& [k, v] : es) (void)dp_->conntrack().update(k, v);
      continue;
    }
    Event ev;
    ev.idx = idx_;
    ev.cat = ej.at("cat");
    ev.tick = ej.at("tick");
    ev.order = ej.at("order");
    ev.in = bytesOf(ej.at("in"));
    for (const auto& rj : ej.at("runs")) {
      RunRec r;
      r.err = rj.at("err");
      r.retval = rj.at("retval");
      r.out = bytesOf(rj.at("out"));
      for (const auto& x : rj.at("reads")) {
        Read rd;
        rd.est = x[0].get<int>() != 0;
        rd.k = structOf<ct_key>(x[1]);
        if (!x[2].get<std::string>().empty()) rd.v = structOf<ct_value>(x[2]);
        r.reads.push_back(std::move(rd));
      }
      if (rj.contains("ct")) {
        r.created = true;
        r.fk = structOf<ct_key>(rj["ct"][0]);
        r.fv = structOf<ct_value>(rj["ct"][1]);
        r.rk = structOf<ct_key>(rj["ct"][2]);
        r.rv = structOf<ct_value>(rj["ct"][3]);
        if (rj.contains("affinity")) {
          r.haveAff = true;
          r.ak = structOf<affinity_key>(rj["affinity"][0]);
          r.av = structOf<affinity_value>(rj["affinity"][1]);
        }
      }
      ev.runs.push_back(std::move(r));
    }
    // The recording's clock: wait until the CT tick reaches the one this
    // frame saw (bounded: the window spans a few ticks at most).
    const uint32_t target = ev.tick + shift_;
    for (int i = 0; i < 5000 && static_cast<int32_t>(dp_->nowTicks() - target) < 0; ++i)
      usleep(1000);
    now_ = dp_->nowTicks();
    if (now_ != target) ++clockAhead_;
    runFrame(ev.cat, ev.in, ev.order, nullptr, &ev);
    ++frames;
  }
  // Counters are compared only if no packet failed (a failed run is not
  // tallied by the model, so they differ after one).
  if (firstViolation_.empty())
    if (const std::string counters = checkCounters(); !counters.empty()) {
      fmt::print(stderr, "VIOLATION counters after packet {}:\n{}", idx_, counters);
      firstViolation_ = fmt::format("counters after packet {}", idx_);
    }
  fmt::print(
      "replay: {} frames (packets {}..{}, seed {}, CPU {}), {} new flows put on the recorded "
      "backend/port, "
      "{} CT entries made present/absent as the recording's LRU left them, {} CT entries whose "
      "value "
      "differed, {} runs whose output differed from the recording, {} frames where the clock was "
      "past the "
      "recorded tick\n",
      frames, sj.at("idx").get<uint64_t>(), idx_, opt_.seed, cpu_, corrected_, evictionsAligned_,
      valuesDiffer_, diverged_, clockAhead_);
  fmt::print("replay: recorded violation: {}\n", recorded);
  fmt::print("replay: replayed violation: {}\n",
             firstViolation_.empty() ? "none" : firstViolation_);
  if (!firstViolation_.empty() && firstViolation_ == recorded) {
    fmt::print("replay: reproduced exactly\n");
    return 0;
  }
  fmt::print("replay: NOT reproduced\n");
  return 1;
}

}  // namespace
}  // namespace svclb::fuzz

int main(int argc, char** argv) {
  svclb::fuzz::Options o;
  if (!svclb::fuzz::parseArgs(argc, argv, o)) return 2;
  if (geteuid() != 0) {
    fmt::print(stderr, "packet_fuzz: needs root (netns, map creation, BPF_PROG_TEST_RUN)\n");
    return 2;
  }
  svclb::fuzz::Fuzzer f(o);
  if (!f.setup()) return 2;
  return o.replay.empty() ? f.run() : f.replay();
}
