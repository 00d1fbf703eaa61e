// svclbd's Unix-socket JSON client (docs/api.md): one request line out, one
// response line back, then the daemon closes.
#pragma once

#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace svclb::cli {

inline constexpr const char* kDefaultSocket = "/run/svclb/svclbd.sock";

// --socket default: $SVCLB_SOCKET, else /run/svclb/svclbd.sock.
std::string defaultSocketPath();

// Error::code of an "ok": false answer: the daemon was reached and refused.
// Any other code means svclbd could not be talked to at all, so a command
// with several requests stops at the first such error.
inline constexpr int kDaemonRefused = EREMOTEIO;

// Sends `request` and returns the parsed response. Every Error::message is
// ready to print as is: client-side failures read "error: ...", and a daemon
// answer with "ok": false yields the daemon's own "error" text unchanged.
Result<nlohmann::json> callDaemon(const std::string& socketPath, const nlohmann::json& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30));
// The same with the request already serialized: one JSON object (no
// newline), or a manifestRequest.
Result<nlohmann::json> callDaemonLine(const std::string& socketPath, std::string line,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A streaming request ({"op":"monitor"}): sends `request`, reads the first
// answer line into `first` (checked as callDaemon checks its answer) and
// returns the connected socket (non-blocking), from which the daemon's
// further lines are read until either side closes. The caller closes it.
Result<int> openStream(const std::string& socketPath, const nlohmann::json& request,
                       nlohmann::json& first,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace svclb::cli
