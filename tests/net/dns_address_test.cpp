// The cluster DNS address on lo (loader/dns_address.h), in a namespace of
// its own: svclbd's IPv6 address carries its IFA_PROTO (IPv6 addresses have
// no labels) and is found again by that alone, replaced by another
// --cluster-dns, removed by none; an address someone else put on lo is
// never taken for it nor removed. IPv4: the lo:svclb-dns label, beside it.
#include "loader/dns_address.h"

#include <cstdlib>

#include "model/model.h"
#include "tests/net/netns_util.h"

namespace svclb {
namespace {

Ip6 v6(const char* s) {
  Ip6 a{};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.data()), 1) << s;
  return a;
}

bool onLo(const char* addr) {
  const std::string cmd = std::string("ip -6 addr show dev lo | grep -q 'inet6 ") + addr + "/128'";
  return std::system(cmd.c_str()) == 0;
}

TEST(DnsAddress, IPv6AddressIsMarkedFoundReplacedAndRemoved) {
  nettest::inFreshNetns([] {
    // Someone else's address on lo: not ours.
    ASSERT_EQ(std::system("ip -6 addr add fd00:10:96::77/128 dev lo nodad"), 0);
    EXPECT_TRUE(dnsAddresses6().empty());

    ASSERT_TRUE(ensureDnsAddress(0x0a60000a, v6("fd00:10:96::a")));
    EXPECT_EQ(dnsAddresses6(), std::vector<Ip6>{v6("fd00:10:96::a")});
    EXPECT_EQ(dnsAddresses(), std::vector<uint32_t>{0x0a60000a});
    EXPECT_TRUE(onLo("fd00:10:96::a"));
    // Idempotent.
    ASSERT_TRUE(ensureDnsAddress(0x0a60000a, v6("fd00:10:96::a")));
    EXPECT_EQ(dnsAddresses6().size(), 1u);

    // Another --cluster-dns: the old one goes, the foreign one stays.
    ASSERT_TRUE(ensureDnsAddress(0, v6("fd00:10:96::35")));
    EXPECT_EQ(dnsAddresses6(), std::vector<Ip6>{v6("fd00:10:96::35")});
    EXPECT_TRUE(dnsAddresses().empty());
    EXPECT_FALSE(onLo("fd00:10:96::a"));
    EXPECT_TRUE(onLo("fd00:10:96::77"));

    // none (and --uninstall): ours removed, the foreign one kept.
    ASSERT_TRUE(ensureDnsAddress(0));
    EXPECT_TRUE(dnsAddresses6().empty());
    EXPECT_FALSE(onLo("fd00:10:96::35"));
    EXPECT_TRUE(onLo("fd00:10:96::77"));
  });
}

}  // namespace
}  // namespace svclb
