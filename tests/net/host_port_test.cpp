// parseHostPort (loader/servers.h): --metrics-addr in the user's words; a
// bad port is an error, never an exception out of the daemon's start-up.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "loader/servers.h"

namespace svclb {
namespace {

TEST(HostPort, Parses) {
  auto a = parseHostPort("127.0.0.1:9810", "--metrics-addr");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(ntohs(a->sin_port), 9810);
  EXPECT_EQ(ntohl(a->sin_addr.s_addr), 0x7f000001u);
  auto any = parseHostPort("0.0.0.0:0", "--metrics-addr");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(ntohs(any->sin_port), 0);
}

TEST(HostPort, BadInputIsAnErrorInTheUsersWords) {
  const struct {
    const char* in;
    const char* want;
  } cases[] = {
      {"127.0.0.1", "--metrics-addr 127.0.0.1: expected HOST:PORT"},
      {"127.0.0.1:abc", "--metrics-addr 127.0.0.1:abc: the port must be a number from 0 to 65535"},
      {"127.0.0.1:", "--metrics-addr 127.0.0.1:: the port must be a number from 0 to 65535"},
      {"127.0.0.1:70000",
       "--metrics-addr 127.0.0.1:70000: the port must be a number from 0 to 65535"},
      {"127.0.0.1:99999999999999999999",
       "--metrics-addr 127.0.0.1:99999999999999999999: the port must be a number from 0 to 65535"},
      {"127.0.0.1:-1", "--metrics-addr 127.0.0.1:-1: the port must be a number from 0 to 65535"},
      {"localhost:9810", "--metrics-addr localhost:9810: not an IPv4 address"},
  };
  for (const auto& c : cases) {
    auto r = parseHostPort(c.in, "--metrics-addr");
    ASSERT_FALSE(r.ok()) << c.in;
    EXPECT_EQ(r.error().message, c.want);
  }
}

TEST(HostPort, NumericGroupOutOfRangeIsNoSuchGroup) {
  auto g = resolveGroup("99999999999999999999");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().message, "--socket-group 99999999999999999999: no such group");
}

}  // namespace
}  // namespace svclb
