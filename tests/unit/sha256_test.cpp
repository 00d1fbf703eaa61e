// loader/sha256.h against the FIPS 180-4 example vectors (NIST's "SHA-256
// examples": "abc", the two-block 448-bit message, one million 'a') and the
// empty string, plus lengths around the padding boundary (sha256sum as the
// oracle). The hash is Nettle's: this checks how svclb calls it.
#include "loader/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace svclb {
namespace {

std::string hex(std::string_view s) { return toHex(sha256(s)); }

TEST(Sha256, EmptyString) {
  EXPECT_EQ(hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
  EXPECT_EQ(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, TwoBlockMessages) {
  EXPECT_EQ(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                "klmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256, OneMillionA) {
  const std::string a(1000000, 'a');
  const std::string want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  EXPECT_EQ(hex(a), want);
}

// 55 bytes pad within one block, 56..63 need a second, 64 is a full block.
TEST(Sha256, LengthsAroundThePaddingBoundary) {
  const struct {
    size_t n;
    const char* want;
  } cases[] = {
      {55, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
      {56, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
      {63, "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
      {64, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
      {65, "9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633ad565aed7e9"},
  };
  for (const auto& c : cases) {
    const std::string msg(c.n, 'x');
    EXPECT_EQ(hex(msg), c.want) << c.n << " bytes";
  }
}

}  // namespace
}  // namespace svclb
