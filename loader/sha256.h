// SHA-256 for MetalLB's layer-2 election (loader/external.h): the
// announcing node is the one whose sha256(nodeName + "#" + ip) sorts first.
// Nettle's (Debian nettle-dev) under a small interface.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace svclb {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);

// Lower-case hex, 64 characters (what sha256sum prints).
std::string toHex(const Sha256Digest& d);

}  // namespace svclb
