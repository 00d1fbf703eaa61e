// svclb-mappoll's probe (bench/mappoll_probe.h) against maps faked in memory
// and written op by op in the order planSync emits: it must see an added
// endpoint exactly when the write that makes it reachable (the master) is
// done, never earlier, and a removed one as gone at the same point.
#include "bench/mappoll_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <variant>
#include <vector>

#include "loader/reconcile.h"
#include "tests/unit/fake_maps.h"

namespace svclb {
namespace {

constexpr uint8_t kUdp = 17;

uint32_t ip(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return ntohl(a.s_addr);
}

struct ProbeMaps : fakes::FakeMaps {
  bool probe(const char* vip, uint16_t vport, const char* addr, uint16_t port) const {
    mappoll::SvcLookup s = [&](const svc_key& k, svc_value& v) {
      auto it = svc.find(k);
      if (it == svc.end()) return false;
      v = it->second;
      return true;
    };
    mappoll::BackendLookup b = [&](uint32_t id, backend_value& v) {
      auto it = backends.find(id);
      if (it == backends.end()) return false;
      v = it->second;
      return true;
    };
    return mappoll::reachable(s, b, htonl(ip(vip)), htons(vport), kUdp, htonl(ip(addr)),
                              htons(port));
  }
};

Frontend frontend(int endpoints) {
  Frontend f;
  f.key = {ip("10.96.39.16"), 53, kUdp};
  f.ns = "bench";
  f.name = "s9999";
  f.portName = "dns";
  for (int i = 0; i < endpoints; ++i) {
    BackendSpec b;
    b.ip = ip("10.251.0.11") + static_cast<uint32_t>(i);
    b.port = 5353;
    f.backends.push_back(b);
  }
  return f;
}

bool isMaster(const MapOp& op) {
  const auto* put = std::get_if<mapop::PutSvc>(&op);
  return put && put->key.slot == 0;
}

TEST(MappollProbe, SeesAnAddedEndpointOnlyOnceItsMasterIsWritten) {
  ProbeMaps maps;
  ActualState actual;
  actual.svcIds = IdPool(1024);
  actual.backendIds = IdPool(1024);
  // The Service with 10 endpoints, written in full.
  auto first = planSync(actual, {frontend(10)});
  ASSERT_TRUE(first.ok());
  for (const auto& op : first->ops) maps.apply(op);
  std::move(*first).mergeInto(actual);
  EXPECT_TRUE(maps.probe("10.96.39.16", 53, "10.251.0.11", 5353));
  EXPECT_FALSE(maps.probe("10.96.39.16", 53, "10.251.0.21", 5353));

  // An 11th endpoint (10.251.0.21): unseen until the master write, seen
  // from then on.
  auto add = planSync(actual, {frontend(11)});
  ASSERT_TRUE(add.ok());
  bool masterDone = false, sawBackendEntry = false;
  for (const auto& op : add->ops) {
    maps.apply(op);
    if (std::holds_alternative<mapop::PutBackend>(op)) sawBackendEntry = true;
    masterDone = masterDone || isMaster(op);
    EXPECT_EQ(maps.probe("10.96.39.16", 53, "10.251.0.21", 5353), masterDone);
  }
  EXPECT_TRUE(sawBackendEntry);
  EXPECT_TRUE(masterDone);
  std::move(*add).mergeInto(actual);

  // Other frontend, other port or other address: not reachable.
  EXPECT_FALSE(maps.probe("10.96.39.17", 53, "10.251.0.21", 5353));
  EXPECT_FALSE(maps.probe("10.96.39.16", 54, "10.251.0.21", 5353));
  EXPECT_FALSE(maps.probe("10.96.39.16", 53, "10.251.0.21", 5354));

  // And removed again: gone as soon as the master stops counting it.
  auto remove = planSync(actual, {frontend(10)});
  ASSERT_TRUE(remove.ok());
  masterDone = false;
  for (const auto& op : remove->ops) {
    maps.apply(op);
    masterDone = masterDone || isMaster(op);
    EXPECT_EQ(maps.probe("10.96.39.16", 53, "10.251.0.21", 5353), !masterDone);
  }
  EXPECT_TRUE(masterDone);
  EXPECT_TRUE(maps.probe("10.96.39.16", 53, "10.251.0.12", 5353));
}

TEST(MappollProbe, IgnoresTerminatingAndForeignBackends) {
  ProbeMaps maps;
  svc_key k{};
  k.vip = htonl(ip("10.96.0.1"));
  k.port = htons(53);
  k.proto = kUdp;
  svc_value master{};
  master.svc_id = 7;
  master.count = 1;
  master.total = 2;
  maps.svc[k] = master;
  k.slot = 1;
  svc_value s1{};
  s1.svc_id = 7;
  s1.backend_id = 3;
  maps.svc[k] = s1;
  k.slot = 2;  // a terminating slot beyond count
  svc_value s2{};
  s2.svc_id = 7;
  s2.backend_id = 4;
  maps.svc[k] = s2;
  backend_value b{};
  b.addr = htonl(ip("10.1.0.1"));
  b.port = htons(80);
  b.proto = kUdp;
  b.state = BE_STATE_ACTIVE;
  b.svc_id = 8;  // owned by another frontend (a stale slot)
  maps.backends[3] = b;
  b.addr = htonl(ip("10.1.0.2"));
  b.svc_id = 7;
  b.state = BE_STATE_TERMINATING;
  maps.backends[4] = b;
  EXPECT_FALSE(maps.probe("10.96.0.1", 53, "10.1.0.1", 80));
  EXPECT_FALSE(maps.probe("10.96.0.1", 53, "10.1.0.2", 80));
  maps.backends[3].svc_id = 7;
  EXPECT_TRUE(maps.probe("10.96.0.1", 53, "10.1.0.1", 80));
}

}  // namespace
}  // namespace svclb
