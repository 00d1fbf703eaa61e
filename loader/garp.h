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

// Unsolicited Neighbor Advertisement: the IPv6 counterpart (RFC 4861
// 7.2.6), as MetalLB's ndpClient.Gratuitous (internal/layer2/ndp.go) and on
// the same schedule (kGarpRepeatInterval/kGarpRepeatFor): one NA per
// announcement, to the all-nodes group ff02::1 (Ethernet 33:33:00:00:00:01),
// Solicited clear, Override set (neighbours replace a cached MAC), target
// the announced address, a Target Link-Layer Address option with the NIC's
// MAC, hop limit 255 (receivers drop NDP with any other, 7.1.2). The IPv6
// source is the announced address itself, as Linux's ndisc_send_unsol_na
// writes it for an address of its own (MetalLB's socket puts the NIC's
// link-local address there; both are valid, 4.4).
//
// Sent through AF_PACKET, like the gratuitous ARP, rather than an ICMPv6
// raw socket: the address is not configured on the NIC, and a raw socket
// could not use it as the source (the kernel would pick the link-local
// one, and needs one: nothing is sent from a NIC with IPv6 disabled or
// before its link-local address passes DAD); one socket type and one
// privilege (CAP_NET_RAW) serve both families; the frame is built whole
// (checksum included) by a pure function the tests check.
constexpr size_t kUnsolicitedNaFrameSize = 86;  // Ethernet 14 + IPv6 40 + NA 24 + TLLA 8

std::array<uint8_t, kUnsolicitedNaFrameSize> unsolicitedNaFrame(
    const std::array<uint8_t, 6>& mac, const std::array<uint8_t, 16>& addr);

// Sends one unsolicited NA for `addr` (network byte order, as in
// l2_ndp_key.addr) out of `ifname`. A multicast or unspecified `addr` is
// refused (EINVAL). Needs CAP_NET_RAW.
Status sendUnsolicitedNa(const std::string& ifname, const std::array<uint8_t, 16>& addr);

}  // namespace svclb
