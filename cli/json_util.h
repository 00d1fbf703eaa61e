// Tolerant accessors: the daemon's objects may omit any optional field, and a
// missing field must render as kubectl renders an unset one, never throw.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace svclb::cli {

inline const nlohmann::json& nullJson() {
  static const nlohmann::json kNull;
  return kNull;
}

// j[path0][path1]... or null when any step is missing / not an object.
inline const nlohmann::json& at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return nullJson();
    auto it = cur->find(key);
    if (it == cur->end()) return nullJson();
    cur = &*it;
  }
  return *cur;
}

// String value; numbers are printed; anything else yields `def`.
inline std::string str(const nlohmann::json& j, const std::string& def = "") {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<long long>());
  if (j.is_number()) return j.dump();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return def;
}

inline long long num(const nlohmann::json& j, long long def = 0) {
  if (j.is_number()) return j.get<long long>();
  return def;
}

inline std::vector<std::string> strings(const nlohmann::json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

inline std::string join(const std::vector<std::string>& v, const std::string& sep) {
  return fmt::format("{}", fmt::join(v, sep));
}

// net.JoinHostPort: brackets around IPv6 literals.
inline std::string joinHostPort(const std::string& host, const std::string& port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

}  // namespace svclb::cli
