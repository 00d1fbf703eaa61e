#include "common/api.h"

#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

namespace svclb::api {

namespace {

Error tooLarge() {
  return Error{EMSGSIZE, fmt::format("error: the request is larger than svclbd's limit of {} MiB; "
                                     "split the manifest into smaller files",
                                     kMaxRequest >> 20)};
}

Result<nlohmann::json> parseHeader(const char* begin, const char* end) {
  auto req = nlohmann::json::parse(begin, end, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded() || !req.is_object())
    return Error{EPROTO, "error: request is not a JSON object"};
  return req;
}

}  // namespace

std::string manifestRequest(const std::string& op, const std::string& text,
                            const std::string& source, bool strict, const std::string& nameSpace,
                            bool missingOk, bool dryRun, bool clientDryRun) {
  nlohmann::json head{{"op", op}, {"source", source}, {"strict", strict}};
  if (!nameSpace.empty()) head["namespace"] = nameSpace;
  if (missingOk) head["missingOk"] = true;
  if (dryRun) head["dryRun"] = true;
  if (dryRun && clientDryRun) head["clientDryRun"] = true;
  head["manifestBytes"] = text.size();
  std::string req = head.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  req.reserve(req.size() + 1 + text.size());
  req += '\n';
  req += text;
  return req;
}

std::string manifestsRequest(const std::string& op,
                             const std::vector<std::pair<std::string, std::string>>& parts,
                             bool strict, const std::string& nameSpace, bool dryRun,
                             bool clientDryRun) {
  nlohmann::json head{{"op", op},
                      {"source", parts.empty() ? "-" : parts.front().first},
                      {"strict", strict},
                      {"parts", nlohmann::json::array()}};
  if (!nameSpace.empty()) head["namespace"] = nameSpace;
  if (dryRun) head["dryRun"] = true;
  if (dryRun && clientDryRun) head["clientDryRun"] = true;
  size_t total = 0;
  for (const auto& [source, text] : parts) {
    head["parts"].push_back({{"source", source}, {"bytes", text.size()}});
    total += text.size();
  }
  head["manifestBytes"] = total;
  std::string req = head.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  req.reserve(req.size() + 1 + total);
  req += '\n';
  for (const auto& part : parts) req += part.second;
  return req;
}

Status readRequest(int fd, nlohmann::json& req, int timeoutMs) {
  std::string in;
  size_t lineEnd = std::string::npos, want = 0;
  bool framed = false;
  char buf[65536];
  while (lineEnd == std::string::npos || in.size() < lineEnd + 1 + want) {
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, timeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return Error{ETIMEDOUT, fmt::format("error: incomplete request (nothing more for {} s)",
                                          (timeoutMs + 999) / 1000)};
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (lineEnd == std::string::npos && !in.empty()) {  // a last line without its newline
        lineEnd = in.size();
        break;
      }
      return Error{EPIPE, "error: incomplete request (the connection closed)"};
    }
    const size_t before = in.size();
    in.append(buf, static_cast<size_t>(n));
    if (lineEnd != std::string::npos) continue;
    // Only the bytes just read are searched: searching the whole buffer
    // after every read is quadratic in the request size.
    const void* nl = std::memchr(in.data() + before, '\n', static_cast<size_t>(n));
    if (!nl) {
      if (in.size() > kMaxRequest) return tooLarge();
      continue;
    }
    lineEnd = static_cast<size_t>(static_cast<const char*>(nl) - in.data());
    auto h = parseHeader(in.data(), in.data() + lineEnd);
    if (!h) return h.error();
    req = std::move(*h);
    if (auto m = req.find("manifestBytes"); m != req.end()) {
      if (!m->is_number_unsigned())
        return Error{EPROTO, "error: manifestBytes is not a byte count"};
      want = m->get<size_t>();
      if (want > kMaxRequest) return tooLarge();
      framed = true;
      in.reserve(lineEnd + 1 + want);
    }
  }
  if (!framed) {
    if (req.is_null()) {
      auto h = parseHeader(in.data(), in.data() + lineEnd);
      if (!h) return h.error();
      req = std::move(*h);
    }
    return {};
  }
  req.erase("manifestBytes");
  req["manifest"] = in.substr(lineEnd + 1, want);
  return {};
}

}  // namespace svclb::api
