// Gratuitous ARP: after this node takes over a LoadBalancer IP (layer-2
// mode), tell the segment's switches and neighbours that the IP now lives at
// this NIC's MAC, instead of waiting for their ARP caches to expire.
//
// Follows MetalLB (internal/layer2/arp.go, arpResponder.Gratuitous): each
// announcement is two broadcast frames, an ARP request and then an ARP reply,
// both with sender IP = target IP = the announced IP, sender MAC = the NIC's
// MAC and target MAC ff:ff:ff:ff:ff:ff. Some hosts only update their cache on
// one of the two operations, hence both. MetalLB repeats the announcement
// right away and then every 1.1 s for 5 s (announcer.go, spamLoop); that
// schedule is the caller's, see kGarpRepeatInterval/kGarpRepeatFor.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace svclb {

constexpr auto kGarpRepeatInterval = std::chrono::milliseconds(1100);
constexpr auto kGarpRepeatFor = std::chrono::seconds(5);

constexpr uint16_t kArpOpRequest = 1;
constexpr uint16_t kArpOpReply = 2;
// Ethernet header (14) + ARP for IPv4 over Ethernet (28), zero-padded to the
// 60-byte minimum frame (without FCS), as mdlayher/ethernet marshals it.
constexpr size_t kGarpFrameSize = 60;

Result<std::array<uint8_t, 6>> interfaceMac(const std::string& ifname);
Result<int> interfaceIndex(const std::string& ifname);

// The gratuitous ARP frame for `ip` (host byte order) with ARP operation `op`.
std::array<uint8_t, kGarpFrameSize> gratuitousArpFrame(const std::array<uint8_t, 6>& mac,
                                                       uint32_t ip, uint16_t op);

// Broadcasts one announcement (request, then reply) for `ip` (host byte
// order) out of `ifname` through an AF_PACKET socket. Needs CAP_NET_RAW.
Status sendGratuitousArp(const std::string& ifname, uint32_t ip);

}  // namespace svclb
