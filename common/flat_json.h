// A fast path for svclbd's request lines (docs/api.md): one JSON object
// whose values are plain strings, true, false or null — what svcctl sends,
// e.g. {"op":"apply","manifest":"<6 MB of YAML>","source":"svc.yaml"}.
// nlohmann::json::parse took ~40 ms for such a line (it copies every
// character into its error-reporting token buffer); this takes a few.
// Anything else — numbers, nested values, \u escapes, bytes >= 0x80 (UTF-8
// is left to nlohmann to validate), control characters, trailing text —
// returns nullopt and the caller parses with nlohmann::json::parse. Where it
// answers, the answer is what nlohmann would give (duplicate keys: the last
// wins), as tests/unit/flat_json_test.cpp checks.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace svclb {

namespace flat_json_detail {

inline void skipSpace(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
}

// s[i] == '"' on entry; on success i is past the closing quote.
inline bool readString(std::string_view s, size_t& i, std::string& out) {
  ++i;
  for (;;) {
    const size_t start = i;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++i;
    }
    out.append(s.data() + start, i - start);
    if (i >= s.size()) return false;
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      ++i;
      return true;
    }
    if (c != '\\' || i + 1 >= s.size()) return false;
    switch (s[i + 1]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      default:
        return false;  // \uXXXX and anything invalid
    }
    i += 2;
  }
}

}  // namespace flat_json_detail

inline std::optional<nlohmann::json> parseFlatJsonObject(std::string_view s) {
  using namespace flat_json_detail;
  nlohmann::json obj = nlohmann::json::object();
  size_t i = 0;
  skipSpace(s, i);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  skipSpace(s, i);
  if (i < s.size() && s[i] == '}') {
    ++i;
  } else {
    for (;;) {
      skipSpace(s, i);
      std::string key;
      if (i >= s.size() || s[i] != '"' || !readString(s, i, key)) return std::nullopt;
      skipSpace(s, i);
      if (i >= s.size() || s[i] != ':') return std::nullopt;
      ++i;
      skipSpace(s, i);
      if (i >= s.size()) return std::nullopt;
      nlohmann::json value;
      if (s[i] == '"') {
        std::string v;
        if (!readString(s, i, v)) return std::nullopt;
        value = std::move(v);
      } else if (s.substr(i, 4) == "true") {
        value = true;
        i += 4;
      } else if (s.substr(i, 5) == "false") {
        value = false;
        i += 5;
      } else if (s.substr(i, 4) == "null") {
        i += 4;
      } else {
        return std::nullopt;
      }
      obj[std::move(key)] = std::move(value);
      skipSpace(s, i);
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      if (i < s.size() && s[i] == '}') {
        ++i;
        break;
      }
      return std::nullopt;
    }
  }
  skipSpace(s, i);
  if (i != s.size()) return std::nullopt;
  return obj;
}

}  // namespace svclb
