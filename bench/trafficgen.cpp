// svclb-trafficgen: a packet generator that needs no pktgen module.
//
// The xdp-trafficgen technique: a tiny XDP program (bench/bpf/
// trafficgen.bpf.c) that rewrites the source port from a counter and
// returns XDP_REDIRECT to the egress interface, run by BPF_PROG_TEST_RUN
// with BPF_F_TEST_XDP_LIVE_FRAMES and repeat=N on a template frame: every
// run is one frame really transmitted (ndo_xdp_xmit). One thread per CPU.
//
// Safety: refuses to run in the root network namespace; bounded in count
// AND time (hard limits below). The forwarded rate is what the receiver
// counts; this tool reports what it sent.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bpf/bench_abi.h"
#include "bench/netns_guard.h"
#include "bench_tgen.skel.h"
#include "tests/testlib/packet.h"

namespace {

using Clock = std::chrono::steady_clock;
using svclb::testlib::PacketBuilder;

constexpr uint64_t kMaxCount = 2'000'000'000ULL;
constexpr double kMaxSeconds = 600;
// Exit status when the kernel refuses live frames (ctest's "skipped").
constexpr int kLiveFramesRefused = 77;

struct Options {
  std::string dev, src = "10.250.0.2", dst, dstMac, proto = "udp";
  uint16_t dport = 80, sportBase = 10000;
  uint32_t flows = 1;
  bool newFlow = false;
  unsigned size = 64, threads = 1;
  double seconds = 5;
  uint64_t count = 100'000'000;
  bool json = false;
  bool afPacket = false;  // AF_PACKET sendmmsg instead of XDP live frames
};

[[noreturn]] void die(const std::string& m) {
  fmt::print(stderr, "svclb-trafficgen: {}\n", m);
  std::exit(1);
}

bool parseMac(const std::string& s, uint8_t mac[6]) {
  unsigned v[6];
  if (sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
    return false;
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
  return true;
}

void usage() {
  fmt::print(
      "usage: svclb-trafficgen --dev IF --dst IP --dst-mac MAC [--dport P] [--src IP]\n"
      "         [--proto udp|tcp] [--size BYTES] [--flows N | --new-flow] [--sport-base P]\n"
      "         [--threads N] [--duration S] [--count N] [--json] [--af-packet]\n"
      "Sends UDP (checksum 0) or TCP SYN frames out of IF (must be in a non-root netns)\n"
      "until COUNT frames or S seconds, whichever first (max {} s). Exits 77 when the\n"
      "kernel refuses XDP live frames (then --af-packet works).\n",
      kMaxSeconds);
}

// --af-packet: the same frames through an AF_PACKET socket (sendmmsg, 64
// per call, qdisc bypass), as the yardstick's generators: the node path
// then runs in the sender's softirq like traffic from a pod. Varies the
// source port (and for new-flow the low source address byte) in user
// space, fixing the checksums from scratch.
void fixIpCsum(uint8_t* f) {
  f[24] = f[25] = 0;
  uint32_t s = 0;
  for (int i = 14; i < 34; i += 2) s += (f[i] << 8) | f[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  uint16_t c = static_cast<uint16_t>(~s);
  f[24] = c >> 8;
  f[25] = c & 0xff;
}

int afPacketRun(const Options& o, int ifindex, const std::vector<uint8_t>& frame, unsigned ncpu) {
  std::atomic<uint64_t> sent{0};
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.seconds));
  // Exactly --count frames in all: thread t sends its share, the first
  // count % threads threads one more.
  auto share = [&](unsigned t) { return o.count / o.threads + (t < o.count % o.threads ? 1 : 0); };
  std::atomic<uint32_t> counter{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < o.threads; ++t) {
    ts.emplace_back([&, t] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(t % ncpu, &set);
      sched_setaffinity(0, sizeof(set), &set);
      int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
      if (s < 0) die("AF_PACKET socket (needs root)");
      int one = 1;
      setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
      sockaddr_ll sll{};
      sll.sll_family = AF_PACKET;
      sll.sll_ifindex = ifindex;
      sll.sll_halen = 6;
      std::memcpy(sll.sll_addr, frame.data(), 6);
      constexpr int kBatch = 64;
      std::vector<std::vector<uint8_t>> bufs(kBatch, frame);
      std::vector<iovec> iov(kBatch);
      std::vector<mmsghdr> msgs(kBatch);
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_name = &sll;
        msgs[i].msg_hdr.msg_namelen = sizeof(sll);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      uint64_t mine = 0;
      const uint64_t quota = share(t);
      while (mine < quota && Clock::now() < deadline) {
        const int batch = static_cast<int>(std::min<uint64_t>(kBatch, quota - mine));
        for (int i = 0; i < batch; ++i) {
          uint8_t* f = bufs[i].data();
          uint32_t c = o.newFlow ? counter.fetch_add(1, std::memory_order_relaxed)
                                 : (t * 7919 + static_cast<uint32_t>(mine) + i) % o.flows;
          uint16_t port = static_cast<uint16_t>(o.sportBase + (c & 0xffff));
          f[34] = port >> 8;
          f[35] = port & 0xff;
          if (o.newFlow) {
            f[29] = static_cast<uint8_t>(c >> 16);
            fixIpCsum(f);
          }
        }
        int n = sendmmsg(s, msgs.data(), static_cast<unsigned>(batch), 0);
        if (n > 0)
          mine += static_cast<uint64_t>(n);
        else if (errno != ENOBUFS && errno != EAGAIN)
          die(fmt::format("sendmmsg: {}", strerror(errno)));
      }
      close(s);
      sent += mine;
    });
  }
  for (auto& th : ts) th.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double pps = sent / secs;
  if (o.json)
    fmt::print(
        "{{\"sent\": {}, \"seconds\": {:.3f}, \"pps\": {:.0f}, \"threads\": {}, \"flows\": {}, "
        "\"new_flow\": {}, \"size\": {}, \"mode\": \"af_packet\"}}\n",
        sent.load(), secs, pps, o.threads, o.newFlow ? 0 : o.flows, o.newFlow, o.size);
  else
    fmt::print("sent {} frames in {:.3f} s: {:.0f} pps (AF_PACKET, {} threads)\n", sent.load(),
               secs, pps, o.threads);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(), std::exit(2);
      return argv[++i];
    };
    if (a == "--dev")
      o.dev = next();
    else if (a == "--dst")
      o.dst = next();
    else if (a == "--dst-mac")
      o.dstMac = next();
    else if (a == "--src")
      o.src = next();
    else if (a == "--dport")
      o.dport = static_cast<uint16_t>(std::stoul(next()));
    else if (a == "--sport-base")
      o.sportBase = static_cast<uint16_t>(std::stoul(next()));
    else if (a == "--proto")
      o.proto = next();
    else if (a == "--size")
      o.size = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--flows")
      o.flows = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--new-flow")
      o.newFlow = true;
    else if (a == "--threads")
      o.threads = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--duration")
      o.seconds = std::stod(next());
    else if (a == "--count")
      o.count = std::stoull(next());
    else if (a == "--json")
      o.json = true;
    else if (a == "--af-packet")
      o.afPacket = true;
    else {
      usage();
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (o.dev.empty() || o.dst.empty() || o.dstMac.empty()) usage(), std::exit(2);
  if (o.proto != "udp" && o.proto != "tcp") die("--proto must be udp or tcp");
  if (o.seconds <= 0 || o.seconds > kMaxSeconds)
    die(fmt::format("--duration must be in (0, {}]", kMaxSeconds));
  if (o.count == 0 || o.count > kMaxCount)
    die(fmt::format("--count must be in [1, {}]", kMaxCount));
  if (o.size < 64 || o.size > 1500) die("--size must be 64..1500");
  if (o.flows == 0 || o.flows > 65535) die("--flows must be 1..65535");
  unsigned ncpu = std::thread::hardware_concurrency();
  if (o.threads == 0 || o.threads > ncpu) die(fmt::format("--threads must be 1..{}", ncpu));

  // HARD RULE: traffic stays inside namespaces we created.
  if (std::string why; !svclb::bench::inCreatedNetns(&why))
    die("refusing to send: " + why + " (run it with nsenter --net=/run/netns/NS)");

  int ifindex = static_cast<int>(if_nametoindex(o.dev.c_str()));
  if (!ifindex) die(fmt::format("no interface {} in this network namespace", o.dev));
  uint8_t srcMac[6], dstMac[6];
  if (!parseMac(o.dstMac, dstMac)) die("bad --dst-mac");
  {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", o.dev.c_str());
    if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) != 0) die("cannot read the MAC of " + o.dev);
    std::memcpy(srcMac, ifr.ifr_hwaddr.sa_data, 6);
    close(s);
  }

  // Template frame (PacketBuilder of tests/testlib).
  const size_t hdr = o.proto == "udp" ? 42 : 54;
  PacketBuilder b = o.proto == "udp" ? PacketBuilder::udp(o.src, o.sportBase, o.dst, o.dport)
                                     : PacketBuilder::tcp(o.src, o.sportBase, o.dst, o.dport,
                                                          svclb::testlib::kTcpSyn);
  b.payload(o.size - hdr, 0);
  if (o.proto == "udp") b.udpChecksumZero();
  auto frame = b.build();
  std::memcpy(frame.data(), dstMac, 6);
  std::memcpy(frame.data() + 6, srcMac, 6);

  if (o.afPacket) {
    if (o.proto != "udp") die("--af-packet sends UDP only");
    return afPacketRun(o, ifindex, frame, ncpu);
  }

  libbpf_set_print([](enum libbpf_print_level l, const char* f, va_list ap) {
    return l == LIBBPF_WARN ? vfprintf(stderr, f, ap) : 0;
  });
  bench_tgen* skel = bench_tgen__open();
  if (!skel) die("open the generator program");
  skel->bss->cfg.ifindex = static_cast<__u32>(ifindex);
  skel->bss->cfg.flows = o.flows;
  skel->bss->cfg.sport_base = o.sportBase;
  skel->bss->cfg.l4_off = 34;
  skel->bss->cfg.new_flow = o.newFlow ? 1 : 0;
  std::memcpy(skel->bss->cfg.tmpl, frame.data(), BENCH_TMPL_SIZE);
  if (bench_tgen__load(skel)) die("load the generator program (needs root and BPF)");
  const int fd = bpf_program__fd(skel->progs.tgen_xdp);

  std::atomic<uint64_t> sent{0};
  std::atomic<bool> failed{false};
  std::string failMsg;
  bool refused = false;  // the kernel refused the first live run: no live frames here
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.seconds));
  const uint64_t perThread = o.count / o.threads;
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < o.threads; ++t) {
    ts.emplace_back([&, t] {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(t % ncpu, &set);
      sched_setaffinity(0, sizeof(set), &set);
      uint64_t mine = 0, chunk = 16384;
      xdp_md ctx{};
      ctx.ingress_ifindex = static_cast<__u32>(ifindex);
      ctx.data_end = static_cast<__u32>(frame.size());  // the kernel checks it
      while (mine < perThread && Clock::now() < deadline) {
        uint64_t n = std::min<uint64_t>(chunk, perThread - mine);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                    .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
                    .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(n),
                    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
        auto c0 = Clock::now();
        if (bpf_prog_test_run_opts(fd, &opts) != 0) {
          if (!failed.exchange(true)) {
            refused = (errno == EPERM || errno == EOPNOTSUPP || errno == 524 /* ENOTSUPP */) &&
                      sent.load() == 0 && mine == 0;
            failMsg = fmt::format("BPF_PROG_TEST_RUN (live frames): {}", strerror(errno));
          }
          return;
        }
        mine += n;
        // Aim at ~20 ms per call so the deadline is kept.
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - c0).count();
        if (ms < 10 && chunk < (1u << 22))
          chunk *= 2;
        else if (ms > 40 && chunk > 1024)
          chunk /= 2;
      }
      sent += mine;
    });
  }
  for (auto& th : ts) th.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  bench_tgen__destroy(skel);
  if (failed && refused) {
    // Seen on a kernel whose sandbox refuses it (EPERM) while plain
    // BPF_PROG_TEST_RUN works: callers fall back to --af-packet or skip.
    fmt::print(stderr,
               "svclb-trafficgen: this kernel refuses XDP live frames ({}); --af-packet "
               "sends through an AF_PACKET socket instead\n",
               failMsg);
    return kLiveFramesRefused;
  }
  if (failed) die(failMsg);
  double pps = sent / secs;
  if (o.json)
    fmt::print(
        "{{\"sent\": {}, \"seconds\": {:.3f}, \"pps\": {:.0f}, \"threads\": {}, \"flows\": {}, "
        "\"new_flow\": {}, \"size\": {}}}\n",
        sent.load(), secs, pps, o.threads, o.newFlow ? 0 : o.flows, o.newFlow, o.size);
  else
    fmt::print("sent {} frames in {:.3f} s: {:.0f} pps ({} threads, {})\n", sent.load(), secs, pps,
               o.threads, o.newFlow ? "new flow per packet" : fmt::format("{} flows", o.flows));
  return 0;
}
