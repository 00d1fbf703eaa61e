// The ABI check: every struct of maps/svclb_abi.h as the C++ compiler lays
// it out must match the BTF of the compiled BPF object (the one embedded in
// the skeleton, i.e. what the daemon loads): size, field names, offsets and
// sizes. The maps' key/value sizes and names must match too. Opening the
// object needs no privileges; nothing is loaded.
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "maps/svclb_abi.h"
#include "svclb_bpf.skel.h"

namespace svclb::bpftest {
namespace {

struct Field {
  std::string name;
  size_t offset, size;
};

struct StructSpec {
  std::string name;
  size_t size;
  std::vector<Field> fields;  // every field, in declaration order
};

void PrintTo(const StructSpec& s, std::ostream* os) { *os << "struct " << s.name; }

#define SVCLB_FIELD(S, f) \
  Field { #f, offsetof(S, f), sizeof(std::declval <S>().f) }

std::vector<StructSpec> abiStructs() {
  return {
      {"svc_key",
       sizeof(svc_key),
       {SVCLB_FIELD(svc_key, vip), SVCLB_FIELD(svc_key, port), SVCLB_FIELD(svc_key, proto),
        SVCLB_FIELD(svc_key, scope), SVCLB_FIELD(svc_key, slot), SVCLB_FIELD(svc_key, pad)}},
      {"svc_value",
       sizeof(svc_value),
       {SVCLB_FIELD(svc_value, svc_id), SVCLB_FIELD(svc_value, backend_id),
        SVCLB_FIELD(svc_value, count), SVCLB_FIELD(svc_value, total), SVCLB_FIELD(svc_value, algo),
        SVCLB_FIELD(svc_value, flags), SVCLB_FIELD(svc_value, pad),
        SVCLB_FIELD(svc_value, affinity_timeout), SVCLB_FIELD(svc_value, maglev_size)}},
      {"backend_value",
       sizeof(backend_value),
       {SVCLB_FIELD(backend_value, addr), SVCLB_FIELD(backend_value, port),
        SVCLB_FIELD(backend_value, proto), SVCLB_FIELD(backend_value, state),
        SVCLB_FIELD(backend_value, svc_id), SVCLB_FIELD(backend_value, pad)}},
      {"frag_key",
       sizeof(frag_key),
       {SVCLB_FIELD(frag_key, saddr), SVCLB_FIELD(frag_key, daddr), SVCLB_FIELD(frag_key, id),
        SVCLB_FIELD(frag_key, proto), SVCLB_FIELD(frag_key, pad)}},
      {"frag_value",
       sizeof(frag_value),
       {SVCLB_FIELD(frag_value, sport), SVCLB_FIELD(frag_value, dport)}},
      {"ct_key",
       sizeof(ct_key),
       {SVCLB_FIELD(ct_key, saddr), SVCLB_FIELD(ct_key, daddr), SVCLB_FIELD(ct_key, sport),
        SVCLB_FIELD(ct_key, dport), SVCLB_FIELD(ct_key, proto), SVCLB_FIELD(ct_key, pad)}},
      {"ct_value",
       sizeof(ct_value),
       {SVCLB_FIELD(ct_value, nat_addr), SVCLB_FIELD(ct_value, nat_port),
        SVCLB_FIELD(ct_value, dir), SVCLB_FIELD(ct_value, flags), SVCLB_FIELD(ct_value, backend_id),
        SVCLB_FIELD(ct_value, svc_id), SVCLB_FIELD(ct_value, last_seen),
        SVCLB_FIELD(ct_value, snat_addr), SVCLB_FIELD(ct_value, snat_port),
        SVCLB_FIELD(ct_value, pad)}},
      {"src_range_key",
       sizeof(src_range_key),
       {SVCLB_FIELD(src_range_key, prefixlen), SVCLB_FIELD(src_range_key, svc_id),
        SVCLB_FIELD(src_range_key, addr)}},
      {"l2_arp_key",
       sizeof(l2_arp_key),
       {SVCLB_FIELD(l2_arp_key, addr), SVCLB_FIELD(l2_arp_key, ifindex)}},
      {"l2_arp_value",
       sizeof(l2_arp_value),
       {SVCLB_FIELD(l2_arp_value, mac), SVCLB_FIELD(l2_arp_value, pad)}},
      {"sock_rev_key",
       sizeof(sock_rev_key),
       {SVCLB_FIELD(sock_rev_key, cookie), SVCLB_FIELD(sock_rev_key, addr),
        SVCLB_FIELD(sock_rev_key, port), SVCLB_FIELD(sock_rev_key, pad)}},
      {"sock_flow",
       sizeof(sock_flow),
       {SVCLB_FIELD(sock_flow, svc_id), SVCLB_FIELD(sock_flow, backend_id),
        SVCLB_FIELD(sock_flow, addr), SVCLB_FIELD(sock_flow, port), SVCLB_FIELD(sock_flow, vport),
        SVCLB_FIELD(sock_flow, vip)}},
      {"sock_rev_value",
       sizeof(sock_rev_value),
       {SVCLB_FIELD(sock_rev_value, vip), SVCLB_FIELD(sock_rev_value, port),
        SVCLB_FIELD(sock_rev_value, pad)}},
      {"sock_destroy_key",
       sizeof(sock_destroy_key),
       {SVCLB_FIELD(sock_destroy_key, vip), SVCLB_FIELD(sock_destroy_key, addr),
        SVCLB_FIELD(sock_destroy_key, vport), SVCLB_FIELD(sock_destroy_key, port)}},
      {"sock_destroy6_key",
       sizeof(sock_destroy6_key),
       {SVCLB_FIELD(sock_destroy6_key, vip), SVCLB_FIELD(sock_destroy6_key, addr),
        SVCLB_FIELD(sock_destroy6_key, vport), SVCLB_FIELD(sock_destroy6_key, port)}},
      {"lb_stats",
       sizeof(lb_stats),
       {SVCLB_FIELD(lb_stats, packets), SVCLB_FIELD(lb_stats, bytes),
        SVCLB_FIELD(lb_stats, reply_packets), SVCLB_FIELD(lb_stats, reply_bytes),
        SVCLB_FIELD(lb_stats, flows), SVCLB_FIELD(lb_stats, rejects)}},
      {"be_slot",
       sizeof(be_slot),
       {SVCLB_FIELD(be_slot, svc_id), SVCLB_FIELD(be_slot, pad), SVCLB_FIELD(be_slot, s),
        SVCLB_FIELD(be_slot, pad2)}},
      {"affinity_key",
       sizeof(affinity_key),
       {SVCLB_FIELD(affinity_key, svc_id), SVCLB_FIELD(affinity_key, client)}},
      {"affinity_value",
       sizeof(affinity_value),
       {SVCLB_FIELD(affinity_value, backend_id), SVCLB_FIELD(affinity_value, pad),
        SVCLB_FIELD(affinity_value, last_used_ns)}},
      {"drop_stats",
       sizeof(drop_stats),
       {SVCLB_FIELD(drop_stats, packets), SVCLB_FIELD(drop_stats, bytes)}},
      {"mon_event",
       sizeof(mon_event),
       {SVCLB_FIELD(mon_event, ts_ns), SVCLB_FIELD(mon_event, type), SVCLB_FIELD(mon_event, reason),
        SVCLB_FIELD(mon_event, proto), SVCLB_FIELD(mon_event, hook), SVCLB_FIELD(mon_event, saddr),
        SVCLB_FIELD(mon_event, daddr), SVCLB_FIELD(mon_event, sport), SVCLB_FIELD(mon_event, dport),
        SVCLB_FIELD(mon_event, svc_id), SVCLB_FIELD(mon_event, ifindex)}},
      {"mon_state",
       sizeof(mon_state),
       {SVCLB_FIELD(mon_state, last_ns), SVCLB_FIELD(mon_state, tokens),
        SVCLB_FIELD(mon_state, rate_limited), SVCLB_FIELD(mon_state, ring_full)}},
      {"v6addr", sizeof(v6addr), {SVCLB_FIELD(v6addr, w)}},
      {"mon_event6",
       sizeof(mon_event6),
       {SVCLB_FIELD(mon_event6, ts_ns), SVCLB_FIELD(mon_event6, type),
        SVCLB_FIELD(mon_event6, reason), SVCLB_FIELD(mon_event6, proto),
        SVCLB_FIELD(mon_event6, hook), SVCLB_FIELD(mon_event6, svc_id),
        SVCLB_FIELD(mon_event6, saddr), SVCLB_FIELD(mon_event6, daddr),
        SVCLB_FIELD(mon_event6, sport), SVCLB_FIELD(mon_event6, dport),
        SVCLB_FIELD(mon_event6, ifindex)}},
      {"svc6_key",
       sizeof(svc6_key),
       {SVCLB_FIELD(svc6_key, vip), SVCLB_FIELD(svc6_key, port), SVCLB_FIELD(svc6_key, proto),
        SVCLB_FIELD(svc6_key, scope), SVCLB_FIELD(svc6_key, slot), SVCLB_FIELD(svc6_key, pad)}},
      {"backend6_value", sizeof(backend6_value), {SVCLB_FIELD(backend6_value, addr)}},
      {"affinity6_key",
       sizeof(affinity6_key),
       {SVCLB_FIELD(affinity6_key, svc_id), SVCLB_FIELD(affinity6_key, client)}},
      {"src_range6_key",
       sizeof(src_range6_key),
       {SVCLB_FIELD(src_range6_key, prefixlen), SVCLB_FIELD(src_range6_key, svc_id),
        SVCLB_FIELD(src_range6_key, addr)}},
      {"ct6_key",
       sizeof(ct6_key),
       {SVCLB_FIELD(ct6_key, saddr), SVCLB_FIELD(ct6_key, daddr), SVCLB_FIELD(ct6_key, sport),
        SVCLB_FIELD(ct6_key, dport), SVCLB_FIELD(ct6_key, proto), SVCLB_FIELD(ct6_key, pad)}},
      {"ct6_value",
       sizeof(ct6_value),
       {SVCLB_FIELD(ct6_value, nat_addr), SVCLB_FIELD(ct6_value, nat_port),
        SVCLB_FIELD(ct6_value, dir), SVCLB_FIELD(ct6_value, flags),
        SVCLB_FIELD(ct6_value, backend_id), SVCLB_FIELD(ct6_value, svc_id),
        SVCLB_FIELD(ct6_value, last_seen), SVCLB_FIELD(ct6_value, snat_addr),
        SVCLB_FIELD(ct6_value, snat_port), SVCLB_FIELD(ct6_value, pad)}},
      {"sock_rev6_key",
       sizeof(sock_rev6_key),
       {SVCLB_FIELD(sock_rev6_key, cookie), SVCLB_FIELD(sock_rev6_key, addr),
        SVCLB_FIELD(sock_rev6_key, port), SVCLB_FIELD(sock_rev6_key, pad),
        SVCLB_FIELD(sock_rev6_key, pad2)}},
      {"sock_rev6_value",
       sizeof(sock_rev6_value),
       {SVCLB_FIELD(sock_rev6_value, vip), SVCLB_FIELD(sock_rev6_value, port),
        SVCLB_FIELD(sock_rev6_value, pad)}},
      {"sock_flow6",
       sizeof(sock_flow6),
       {SVCLB_FIELD(sock_flow6, svc_id), SVCLB_FIELD(sock_flow6, backend_id),
        SVCLB_FIELD(sock_flow6, addr), SVCLB_FIELD(sock_flow6, port),
        SVCLB_FIELD(sock_flow6, vport), SVCLB_FIELD(sock_flow6, vip)}},
      {"l2_ndp_key",
       sizeof(l2_ndp_key),
       {SVCLB_FIELD(l2_ndp_key, addr), SVCLB_FIELD(l2_ndp_key, ifindex)}},
      {"be_rev_key",
       sizeof(be_rev_key),
       {SVCLB_FIELD(be_rev_key, addr), SVCLB_FIELD(be_rev_key, port),
        SVCLB_FIELD(be_rev_key, proto), SVCLB_FIELD(be_rev_key, pad)}},
      {"be_rev_value",
       sizeof(be_rev_value),
       {SVCLB_FIELD(be_rev_value, vip), SVCLB_FIELD(be_rev_value, port),
        SVCLB_FIELD(be_rev_value, pad), SVCLB_FIELD(be_rev_value, svc_id)}},
      {"be_rev6_key",
       sizeof(be_rev6_key),
       {SVCLB_FIELD(be_rev6_key, addr), SVCLB_FIELD(be_rev6_key, port),
        SVCLB_FIELD(be_rev6_key, proto), SVCLB_FIELD(be_rev6_key, pad)}},
      {"be_rev6_value",
       sizeof(be_rev6_value),
       {SVCLB_FIELD(be_rev6_value, vip), SVCLB_FIELD(be_rev6_value, port),
        SVCLB_FIELD(be_rev6_value, pad), SVCLB_FIELD(be_rev6_value, svc_id)}},
      {"frag6_key",
       sizeof(frag6_key),
       {SVCLB_FIELD(frag6_key, saddr), SVCLB_FIELD(frag6_key, daddr), SVCLB_FIELD(frag6_key, id),
        SVCLB_FIELD(frag6_key, proto), SVCLB_FIELD(frag6_key, pad)}},
  };
}

#undef SVCLB_FIELD

// The skeleton, opened (not loaded) once for the whole suite.
class AbiBtf : public ::testing::TestWithParam<StructSpec> {
 protected:
  static void SetUpTestSuite() { skel_ = svclb_bpf__open(); }
  static void TearDownTestSuite() {
    if (skel_) svclb_bpf__destroy(skel_);
    skel_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(skel_, nullptr) << "svclb_bpf__open failed: " << errno;
    btf_ = bpf_object__btf(skel_->obj);
    ASSERT_NE(btf_, nullptr) << "the BPF object carries no BTF";
  }
  static svclb_bpf* skel_;
  const btf* btf_ = nullptr;
};
svclb_bpf* AbiBtf::skel_ = nullptr;

TEST_P(AbiBtf, StructMatchesCompiledObject) {
  const StructSpec& want = GetParam();

  // The C++ list covers the whole struct: the ABI has no implicit padding,
  // so the fields' sizes add up to sizeof (a field missing from the list,
  // or padding the compiler inserted, shows here).
  size_t sum = 0;
  for (const auto& f : want.fields) sum += f.size;
  EXPECT_EQ(sum, want.size) << "fields listed here do not cover struct " << want.name
                            << " (missing field or implicit padding)";

  const __s32 id = btf__find_by_name_kind(btf_, want.name.c_str(), BTF_KIND_STRUCT);
  ASSERT_GT(id, 0) << "struct " << want.name << " not in the object's BTF";
  const btf_type* t = btf__type_by_id(btf_, id);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->size, want.size) << "sizeof(struct " << want.name << ") differs";

  const btf_member* m = btf_members(t);
  std::vector<std::string> seen;
  for (__u16 i = 0; i < btf_vlen(t); ++i, ++m) {
    const std::string name = btf__name_by_offset(btf_, m->name_off);
    seen.push_back(name);
    const Field* f = nullptr;
    for (const auto& cand : want.fields)
      if (cand.name == name) f = &cand;
    if (!f) {
      ADD_FAILURE() << want.name << "." << name << " is in the BPF object but not in the C++ list";
      continue;
    }
    const __u32 bitOff = btf_member_bit_offset(t, i);
    EXPECT_EQ(btf_member_bitfield_size(t, i), 0u) << want.name << "." << name << " is a bitfield";
    EXPECT_EQ(bitOff % 8, 0u) << want.name << "." << name;
    EXPECT_EQ(bitOff / 8, f->offset) << "offset of " << want.name << "." << name;
    EXPECT_EQ(btf__resolve_size(btf_, m->type), static_cast<__s64>(f->size))
        << "size of " << want.name << "." << name;
  }
  for (const auto& f : want.fields)
    EXPECT_NE(std::find(seen.begin(), seen.end(), f.name), seen.end())
        << want.name << "." << f.name << " is in C++ but not in the BPF object";
}

INSTANTIATE_TEST_SUITE_P(Abi, AbiBtf, ::testing::ValuesIn(abiStructs()),
                         [](const auto& info) { return info.param.name; });

// Every `struct x {` of the ABI header is in abiStructs(): a struct added
// to the header without being listed here fails.
TEST(AbiHeader, EveryStructIsChecked) {
  std::ifstream in(SVCLB_ABI_HEADER);
  ASSERT_TRUE(in) << "cannot read " << SVCLB_ABI_HEADER;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::regex def(R"(struct\s+(\w+)\s*\{)");
  std::vector<std::string> listed;
  for (const auto& spec : abiStructs()) listed.push_back(spec.name);
  size_t found = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), def); it != std::sregex_iterator();
       ++it, ++found) {
    const std::string name = (*it)[1];
    EXPECT_NE(std::find(listed.begin(), listed.end(), name), listed.end())
        << "struct " << name << " of svclb_abi.h is not checked against BTF";
  }
  EXPECT_EQ(found, listed.size()) << "abiStructs() lists a struct the header no longer has";
}

TEST(AbiMaps, KeyValueSizesAndNamesMatchAbiHeader) {
  svclb_bpf* s = svclb_bpf__open();
  ASSERT_NE(s, nullptr);
  struct Want {
    const bpf_map* map;
    const char* name;
    size_t key, value;
  };
  const Want wants[] = {
      {s->maps.svc_v1, SVCLB_MAP_SERVICES, sizeof(svc_key), sizeof(svc_value)},
      {s->maps.backends_v1, SVCLB_MAP_BACKENDS, sizeof(__u32), sizeof(backend_value)},
      {s->maps.ct_v2, SVCLB_MAP_CT, sizeof(ct_key), sizeof(ct_value)},
      {s->maps.svc_stats_v2, SVCLB_MAP_SVC_STATS, sizeof(__u32), sizeof(lb_stats)},
      {s->maps.be_stats_v2, SVCLB_MAP_BE_STATS, sizeof(__u32), sizeof(be_slot)},
      {s->maps.drops_v1, SVCLB_MAP_DROPS, sizeof(__u32), sizeof(drop_stats)},
      {s->maps.sock_rev_v1, SVCLB_MAP_SOCK_REV, sizeof(sock_rev_key), sizeof(sock_rev_value)},
      {s->maps.affinity_v1, SVCLB_MAP_AFFINITY, sizeof(affinity_key), sizeof(affinity_value)},
      // Array of maps: the value is an inner map fd (a __u32).
      {s->maps.maglev_v1, SVCLB_MAP_MAGLEV, sizeof(__u32), sizeof(__u32)},
      {s->maps.src_ranges_v1, SVCLB_MAP_SRC_RANGES, sizeof(src_range_key), sizeof(__u8)},
      {s->maps.l2_arp_v1, SVCLB_MAP_L2_ARP, sizeof(l2_arp_key), sizeof(l2_arp_value)},
      {s->maps.tx_ports_v1, SVCLB_MAP_TX_PORTS, sizeof(__u32), sizeof(__u32)},
      {s->maps.nic_xdp_v1, SVCLB_MAP_NIC_XDP, sizeof(__u32), sizeof(__u32)},
      {s->maps.ct_events_v1, SVCLB_MAP_CT_EVENTS, sizeof(__u32), sizeof(__u64)},
      {s->maps.sock_flow_v2, SVCLB_MAP_SOCK_FLOW, sizeof(int), sizeof(sock_flow)},
      {s->maps.sock_destroy_v1, SVCLB_MAP_SOCK_CLOSE, sizeof(sock_destroy_key), sizeof(__u32)},
      {s->maps.sock_destroy6_v1, SVCLB_MAP_SOCK_CLOSE6, sizeof(sock_destroy6_key), sizeof(__u32)},
      {s->maps.frag_v1, SVCLB_MAP_FRAG, sizeof(frag_key), sizeof(frag_value)},
      {s->maps.mon_state, SVCLB_MAP_MON_STATE, sizeof(__u32), sizeof(mon_state)},
      {s->maps.svc6_v1, SVCLB_MAP_SERVICES6, sizeof(svc6_key), sizeof(svc_value)},
      {s->maps.backend6_v1, SVCLB_MAP_BACKEND6, sizeof(__u32), sizeof(backend6_value)},
      {s->maps.ct6_v1, SVCLB_MAP_CT6, sizeof(ct6_key), sizeof(ct6_value)},
      {s->maps.ct6_est_v1, SVCLB_MAP_CT6_EST, sizeof(ct6_key), sizeof(ct6_value)},
      {s->maps.affinity6_v1, SVCLB_MAP_AFFINITY6, sizeof(affinity6_key), sizeof(affinity_value)},
      {s->maps.src_ranges6_v1, SVCLB_MAP_SRC_RANGES6, sizeof(src_range6_key), sizeof(__u8)},
      {s->maps.sock_rev6_v1, SVCLB_MAP_SOCK_REV6, sizeof(sock_rev6_key), sizeof(sock_rev6_value)},
      {s->maps.l2_ndp_v1, SVCLB_MAP_L2_NDP, sizeof(l2_ndp_key), sizeof(l2_arp_value)},
      {s->maps.frag6_v1, SVCLB_MAP_FRAG6, sizeof(frag6_key), sizeof(frag_value)},
      {s->maps.be_rev_v1, SVCLB_MAP_BE_REV, sizeof(be_rev_key), sizeof(be_rev_value)},
      {s->maps.be_rev6_v1, SVCLB_MAP_BE_REV6, sizeof(be_rev6_key), sizeof(be_rev6_value)},
      {s->maps.tail_progs, SVCLB_MAP_TAIL_PROGS, sizeof(__u32), sizeof(__u32)},
      {s->maps.tail_ext6, SVCLB_MAP_TAIL_EXT6, sizeof(__u32), sizeof(__u32)},
      {s->maps.tail_xdp6, SVCLB_MAP_TAIL_XDP6, sizeof(__u32), sizeof(__u32)},
      {s->maps.sock_flow6_v2, SVCLB_MAP_SOCK_FLOW6, sizeof(int), sizeof(sock_flow6)},
      {s->maps.lb_filter_v1, SVCLB_MAP_FILTER, sizeof(__u32), sizeof(__u64)},
      {s->maps.flow_filter_v1, SVCLB_MAP_FLOW_FILTER, sizeof(__u32), sizeof(__u64)},
  };
  for (const auto& w : wants) {
    SCOPED_TRACE(w.name);
    EXPECT_STREQ(bpf_map__name(w.map), w.name);
    EXPECT_EQ(bpf_map__key_size(w.map), w.key);
    EXPECT_EQ(bpf_map__value_size(w.map), w.value);
  }
  EXPECT_EQ(bpf_map__max_entries(s->maps.drops_v1), static_cast<__u32>(DROP_MAX));
  EXPECT_EQ(bpf_map__max_entries(s->maps.lb_filter_v1), static_cast<__u32>(2 * SVCLB_FILTER_WORDS));
  EXPECT_EQ(bpf_map__max_entries(s->maps.flow_filter_v1), static_cast<__u32>(SVCLB_FLOWF_ENTRIES));
  EXPECT_TRUE(bpf_map__map_flags(s->maps.flow_filter_v1) & BPF_F_MMAPABLE);
  EXPECT_EQ(bpf_map__max_entries(s->maps.ct_events_v1), static_cast<__u32>(CT_EV_MAX));
  EXPECT_EQ(bpf_map__max_entries(s->maps.frag_v1), static_cast<__u32>(SVCLB_FRAG_ENTRIES));
  EXPECT_EQ(bpf_map__max_entries(s->maps.frag6_v1), static_cast<__u32>(SVCLB_FRAG_ENTRIES));
  EXPECT_STREQ(bpf_map__name(s->maps.mon_events), SVCLB_MAP_MON_EVENTS);
  EXPECT_EQ(bpf_map__type(s->maps.mon_events), BPF_MAP_TYPE_RINGBUF);
  EXPECT_EQ(bpf_map__max_entries(s->maps.mon_events), static_cast<__u32>(MON_RING_BYTES));
  svclb_bpf__destroy(s);
}

}  // namespace
}  // namespace svclb::bpftest
