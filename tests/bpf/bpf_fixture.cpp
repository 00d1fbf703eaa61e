#include "tests/bpf/bpf_fixture.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <algorithm>
#include <set>

namespace svclb::bpftest {

using testlib::ip4;

const char* progName(Prog p) { return p == Prog::Tc ? "Tc" : "Xdp"; }

uint32_t retvalOf(Prog p, Verdict v) {
  switch (v) {
    case Verdict::Pass:
      return p == Prog::Tc ? TC_ACT_OK : XDP_PASS;
    case Verdict::Drop:
      return p == Prog::Tc ? TC_ACT_SHOT : XDP_DROP;
    case Verdict::Reject:
      return p == Prog::Tc ? TC_ACT_REDIRECT : XDP_TX;
    case Verdict::Untouched:
      return p == Prog::Tc ? static_cast<uint32_t>(TC_ACT_UNSPEC) : static_cast<uint32_t>(XDP_PASS);
  }
  return ~0u;
}

std::string verdictName(Prog p, uint32_t r) {
  if (p == Prog::Tc) {
    if (r == TC_ACT_OK) return "TC_ACT_OK";
    if (r == TC_ACT_SHOT) return "TC_ACT_SHOT";
    if (r == TC_ACT_REDIRECT) return "TC_ACT_REDIRECT";
    if (r == static_cast<uint32_t>(TC_ACT_UNSPEC)) return "TC_ACT_UNSPEC";
  } else {
    if (r == XDP_PASS) return "XDP_PASS";
    if (r == XDP_DROP) return "XDP_DROP";
    if (r == XDP_TX) return "XDP_TX";
  }
  return "retval " + std::to_string(r);
}

Counters counters(const lb_stats& s) {
  return {s.packets, s.bytes, s.reply_packets, s.reply_bytes, s.flows, s.rejects};
}

void PrintTo(const Counters& c, std::ostream* os) {
  *os << "{packets " << c.packets << ", bytes " << c.bytes << ", reply_packets " << c.replyPackets
      << ", reply_bytes " << c.replyBytes << ", flows " << c.flows << "}";
}

RunResult testRun(int progFd, const Bytes& in) {
  RunResult r;
  // Room for any growth a program might make; XDP/tc here never grow.
  r.out.assign(in.size() + 256, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
  r.err = bpf_prog_test_run_opts(progFd, &opts);
  r.retval = opts.retval;
  r.out.resize(r.err == 0 ? opts.data_size_out : 0);
  return r;
}

namespace {
RunResult testRunCtx(int progFd, const Bytes& in, void* ctx, uint32_t ctxSize) {
  RunResult r;
  r.out.assign(in.size() + 256, 0);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(r.out.size()), .ctx_in = ctx,
              .ctx_size_in = ctxSize, .repeat = 1);
  r.err = bpf_prog_test_run_opts(progFd, &opts);
  r.retval = opts.retval;
  r.out.resize(r.err == 0 ? opts.data_size_out : 0);
  return r;
}
}  // namespace

RunResult testRunTc(int progFd, const Bytes& in, uint32_t ifindex) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  return testRunCtx(progFd, in, &ctx, sizeof(ctx));
}

RunResult testRunXdp(int progFd, const Bytes& in, uint32_t ifindex) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(in.size());
  ctx.ingress_ifindex = ifindex;
  return testRunCtx(progFd, in, &ctx, sizeof(ctx));
}

BackendSpec backend(const std::string& addrPort, EndpointState state, bool serving) {
  auto colon = addrPort.find(':');
  BackendSpec b;
  b.ip = ip4(addrPort.substr(0, colon));
  b.port = static_cast<uint16_t>(std::stoi(addrPort.substr(colon + 1)));
  b.state = state;
  b.serving = serving;
  return b;
}

Frontend frontend(const std::string& vip, uint16_t port, uint8_t proto,
                  std::vector<BackendSpec> backends, const std::string& name) {
  Frontend f;
  f.key = FrontendKey{ip4(vip), port, proto};
  f.ns = "default";
  f.name = name;
  std::sort(backends.begin(), backends.end(), [](const BackendSpec& a, const BackendSpec& b) {
    return std::pair(a.ip, a.port) < std::pair(b.ip, b.port);
  });
  f.backends = std::move(backends);
  return f;
}

std::vector<Frontend> standardFrontends() {
  return {
      frontend(kVip, 80, kTcp, {backend("10.244.1.11:8080"), backend("10.244.1.12:8080")},
               "tcp-web"),
      frontend(kVip, 53, kUdp, {backend("10.244.1.11:5353"), backend("10.244.1.12:5353")},
               "udp-dns"),
      frontend("10.96.0.11", 443, kTcp, {backend("10.244.1.31:443")}, "tls"),
      frontend("10.96.0.12", 53, kUdp, {backend("10.244.1.41:5353")}, "udp-one"),
      frontend("10.96.0.13", 80, kTcp, {}, "empty"),
      frontend("10.96.0.13", 53, kUdp, {}, "empty-udp"),
  };
}

DataplaneConfig BpfEnv::smallConfig() {
  DataplaneConfig cfg;
  cfg.pin = false;
  cfg.maxServiceEntries = 1024;
  cfg.maxBackends = 1024;
  cfg.maxSvcIds = 256;
  cfg.maxCtEntries = 4096;
  return cfg;
}

std::string BpfEnv::load(bool csumHelpers) {
  DataplaneConfig cfg = smallConfig();
  cfg.testTcCsumHelpers = csumHelpers;
  auto dp = Dataplane::load(cfg);
  if (!dp) return dp.error().message;
  dp_ = std::move(*dp);
  syncer_ = std::make_unique<Syncer>(*dp_);
  // As the daemon starts (Committer::restore): lb_filter_v1 is all ones
  // from the load until adopt() writes what the maps hold.
  if (auto st = syncer_->adopt(); !st) return st.error().message;
  // As the daemon runs (its FlowFilterKeeper): flow_filter_v1 valid from
  // the start, so every test's answers pass through its slots.
  if (auto st = dp_->flowFilter().rebuild(std::chrono::milliseconds(0)); !st)
    return st.error().message;
  return "";
}

::testing::AssertionResult BpfEnv::sync(const std::vector<Frontend>& desired) {
  auto plan = syncer_->plan(desired);
  if (!plan) return ::testing::AssertionFailure() << "planSync: " << plan.error().message;
  auto st = syncer_->apply(std::move(*plan));
  if (!st) return ::testing::AssertionFailure() << "apply: " << st.error().message;
  return ::testing::AssertionSuccess();
}

int BpfEnv::progFd(Prog p) const { return p == Prog::Tc ? dp_->tcProgFd() : dp_->xdpProgFd(); }

uint32_t BpfEnv::svcId(const FrontendKey& k) const {
  auto it = syncer_->actual().frontends.find(k);
  return it == syncer_->actual().frontends.end() ? 0 : it->second.svcId;
}

uint32_t BpfEnv::backendId(const FrontendKey& k, uint32_t addr, uint16_t port) const {
  auto it = syncer_->actual().frontends.find(k);
  if (it == syncer_->actual().frontends.end()) return 0;
  for (const auto& b : it->second.backends)
    if (b.value.addr == htonl(addr) && b.value.port == htons(port)) return b.id;
  return 0;
}

lb_stats BpfEnv::svcStats(const FrontendKey& k) const { return dp_->frontendStats(svcId(k)); }
lb_stats BpfEnv::backendStats(uint32_t id) const {
  return sumStats(dp_->backendStats().lookup(id));
}
drop_stats BpfEnv::drops(uint32_t reason) const { return sumDrops(dp_->drops().lookup(reason)); }
drop_stats BpfEnv::allDrops() const {
  drop_stats t{};
  for (uint32_t r = 0; r < DROP_MAX; ++r) {
    auto d = drops(r);
    t.packets += d.packets;
    t.bytes += d.bytes;
  }
  return t;
}
// Both CT maps: new flows and established TCP.
void BpfEnv::addFilterElem(LbFilter::Elem e) { ASSERT_TRUE(setFilterBitInMap(dp_->lbFilter(), e)); }

size_t BpfEnv::ctEntries() const { return dp_->conntrack().count() + dp_->conntrackEst().count(); }

void BpfEnv::pairsOnly() {
  SyncOptions o;
  o.singleEntryFlows = false;
  syncer_ = std::make_unique<Syncer>(*dp_, o);
  ASSERT_TRUE(syncer_->adopt().ok());
}

std::optional<be_rev_value> BpfEnv::beRev(uint32_t addr, uint16_t port, uint8_t proto) const {
  be_rev_key k{};
  k.addr = htonl(addr);
  k.port = htons(port);
  k.proto = proto;
  return dp_->beRev().lookup(k);
}

::testing::AssertionResult onlyNatFieldsChanged(const Bytes& in, const Bytes& out, bool dst) {
  if (in.size() != out.size())
    return ::testing::AssertionFailure() << "length changed: " << in.size() << " -> " << out.size();
  auto p = testlib::parseIpv4(out);
  if (!p) return ::testing::AssertionFailure() << "output is not a complete IPv4 frame";
  const auto o = testlib::natFieldOffsets(*p);
  std::set<size_t> allowed = {o.ipCheck, o.ipCheck + 1, o.l4Check, o.l4Check + 1};
  const size_t addr = dst ? o.daddr : o.saddr, port = dst ? o.dport : o.sport;
  for (size_t i = 0; i < 4; ++i) allowed.insert(addr + i);
  allowed.insert(port);
  allowed.insert(port + 1);
  for (size_t i = 0; i < in.size(); ++i)
    if (!allowed.count(i) && in[i] != out[i])
      return ::testing::AssertionFailure()
             << "byte " << i << " changed: " << int(in[i]) << " -> " << int(out[i]) << "\nin:\n"
             << testlib::hex(in) << "\nout:\n"
             << testlib::hex(out);
  if (!testlib::ipv4ChecksumOk(out))
    return ::testing::AssertionFailure() << "bad IPv4 header checksum\n" << testlib::hex(out);
  const bool inUdpZero = p->proto == kUdp && testlib::l4ChecksumField(in) == 0;
  if (inUdpZero && testlib::l4ChecksumField(out) != 0)
    return ::testing::AssertionFailure()
           << "UDP checksum 0 (none) became " << testlib::l4ChecksumField(out);
  if (!testlib::l4ChecksumOk(out, inUdpZero))
    return ::testing::AssertionFailure()
           << "bad L4 checksum " << testlib::l4ChecksumField(out) << "\n"
           << testlib::hex(out);
  return ::testing::AssertionSuccess();
}

std::string sanitize(const std::string& s) {
  std::string r;
  for (char c : s) r += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return r;
}

}  // namespace svclb::bpftest
