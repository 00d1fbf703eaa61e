// SHA-256 (FIPS 180-4), for MetalLB's layer-2 election (loader/external.h):
// the announcing node is the one whose sha256(nodeName + "#" + ip) sorts
// first. None of the libraries svclb links provides a hash, and a digest of
// a few dozen bytes per Service does not justify OpenSSL.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace svclb {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental: update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  void update(std::string_view data);
  Sha256Digest digest();

 private:
  void block(const uint8_t* p);  // compresses one 64-byte block into h_

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t bufLen_ = 0;
  uint64_t totalBytes_ = 0;
};

Sha256Digest sha256(std::string_view data);

// Lower-case hex, 64 characters (what sha256sum prints).
std::string toHex(const Sha256Digest& d);

}  // namespace svclb
