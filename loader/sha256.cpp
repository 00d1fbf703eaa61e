#include "loader/sha256.h"

#include <nettle/sha2.h>

namespace svclb {

Sha256Digest sha256(std::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), reinterpret_cast<const uint8_t*>(data.data()));
  Sha256Digest d;
  sha256_digest(&ctx, d.size(), d.data());
  return d;
}

std::string toHex(const Sha256Digest& d) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(2 * d.size());
  for (uint8_t b : d) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  return s;
}

}  // namespace svclb
