#include "common/yaml.h"

#include <yaml.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <memory>
#include <unordered_map>
#include <vector>

namespace svclb::yaml {

using nlohmann::json;

namespace {

// ---- go-yaml's plain scalar patterns, matched by hand ----------------------
// (std::regex made reading a 10,000-Service manifest several times slower.)
//   dec    [-+]?(0|[1-9][0-9_]*)
//   hex    [-+]?0x[0-9a-fA-F_]+
//   oct    [-+]?0o?[0-7_]+
//   float  [-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?
//   bin    [-+]?0b[01_]+                           (written quoted only)
//   base60 [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?   (written quoted only)
bool isDigit(char c) { return c >= '0' && c <= '9'; }
size_t skipSign(std::string_view s) { return !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0; }

bool matchDec(std::string_view s) {
  size_t i = skipSign(s);
  if (i >= s.size()) return false;
  if (s[i] == '0') return i + 1 == s.size();
  if (s[i] < '1' || s[i] > '9') return false;
  for (++i; i < s.size(); ++i)
    if (!isDigit(s[i]) && s[i] != '_') return false;
  return true;
}

bool matchHex(std::string_view s) {
  size_t i = skipSign(s);
  if (s.size() < i + 3 || s[i] != '0' || s[i + 1] != 'x') return false;
  for (i += 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i])) && s[i] != '_') return false;
  return true;
}

bool matchOct(std::string_view s) {
  size_t i = skipSign(s);
  if (i >= s.size() || s[i] != '0') return false;
  ++i;
  if (i < s.size() && s[i] == 'o') ++i;
  if (i >= s.size()) return false;
  for (; i < s.size(); ++i)
    if ((s[i] < '0' || s[i] > '7') && s[i] != '_') return false;
  return true;
}

bool matchFloat(std::string_view s) {
  size_t i = skipSign(s);
  const size_t n = s.size();
  if (i >= n) return false;
  if (s[i] == '.') {
    ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  } else {
    if (!isDigit(s[i])) return false;
    for (++i; i < n && (isDigit(s[i]) || s[i] == '_');) ++i;
    if (i < n && s[i] == '.')
      for (++i; i < n && (isDigit(s[i]) || s[i] == '_');) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '-' || s[i] == '+')) ++i;
    if (i >= n || !isDigit(s[i])) return false;
    while (i < n && isDigit(s[i])) ++i;
  }
  return i == n;
}

bool matchBin(std::string_view s) {
  size_t i = skipSign(s);
  if (s.size() < i + 3 || s[i] != '0' || s[i + 1] != 'b') return false;
  for (i += 2; i < s.size(); ++i)
    if (s[i] != '0' && s[i] != '1' && s[i] != '_') return false;
  return true;
}

bool matchBase60(std::string_view s) {
  size_t i = skipSign(s);
  const size_t n = s.size();
  if (i >= n || !isDigit(s[i])) return false;
  while (i < n && (isDigit(s[i]) || s[i] == '_')) ++i;
  int groups = 0;
  while (i < n && s[i] == ':') {
    ++i;
    size_t d = 0;
    while (i + d < n && isDigit(s[i + d]) && d < 2) ++d;
    if (d == 0 || (d == 2 && s[i] > '5')) return false;
    i += d;
    ++groups;
  }
  if (groups == 0) return false;
  if (i < n && s[i] == '.')
    for (++i; i < n && (isDigit(s[i]) || s[i] == '_');) ++i;
  return i == n;
}

// [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \t].*)?
bool matchTimestamp(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t lo, size_t hi) {
    size_t d = 0;
    while (i < s.size() && d < hi && isDigit(s[i])) ++i, ++d;
    return d >= lo;
  };
  if (!digits(4, 4) || i >= s.size() || s[i++] != '-' || !digits(1, 2) || i >= s.size() ||
      s[i++] != '-' || !digits(1, 2))
    return false;
  return i == s.size() || s[i] == 'T' || s[i] == 't' || s[i] == ' ' || s[i] == '\t';
}

bool isNullWord(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}
bool isTrueWord(std::string_view s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes" || s == "YES" ||
         s == "on" || s == "On" || s == "ON";
}
bool isFalseWord(std::string_view s) {
  return s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "No" || s == "NO" ||
         s == "off" || s == "Off" || s == "OFF";
}

}  // namespace

json resolvePlain(std::string_view s) {
  if (isNullWord(s)) return nullptr;
  if (isTrueWord(s)) return true;
  if (isFalseWord(s)) return false;
  if (s.size() > 64) return std::string(s);
  auto clean = [](std::string_view in) {
    std::string v(in);
    v.erase(std::remove(v.begin(), v.end(), '_'), v.end());
    return v;
  };
  try {
    // The matchers read `s` itself; only a number is copied (most scalars
    // are names and addresses).
    const int base = matchDec(s) ? 10 : matchHex(s) ? 16 : matchOct(s) ? 8 : 0;
    if (base != 0) {
      std::string digits = clean(s);
      bool neg = false;
      if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
        neg = digits[0] == '-';
        digits.erase(0, 1);
      }
      if (base == 16) {
        digits.erase(0, 2);
      } else if (base == 8) {
        digits.erase(0, digits.size() > 1 && digits[1] == 'o' ? 2 : 1);
        if (digits.empty()) digits = "0";
      }
      unsigned long long v = std::stoull(digits, nullptr, base);
      if (v <= static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
        return neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
      return std::stod(clean(s));  // too large for an int: a number, as in Go
    }
    if (matchFloat(s)) return std::stod(clean(s));
    if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf")
      return std::numeric_limits<double>::infinity();
    if (s == "-.inf" || s == "-.Inf" || s == "-.INF")
      return -std::numeric_limits<double>::infinity();
  } catch (const std::exception&) {
    // out of range etc.: keep the text
  }
  return std::string(s);
}

bool plainResolvesToNonString(std::string_view s) {
  if (isNullWord(s) || isTrueWord(s) || isFalseWord(s)) return true;
  if (s == "y" || s == "Y" || s == "n" || s == "N") return true;
  if (matchDec(s) || matchHex(s) || matchOct(s) || matchFloat(s) || matchBin(s) || matchBase60(s) ||
      matchTimestamp(s))
    return true;
  const std::string_view unsignedPart = s.substr(skipSign(s));
  if (unsignedPart == ".inf" || unsignedPart == ".Inf" || unsignedPart == ".INF") return true;
  return s == ".nan" || s == ".NaN" || s == ".NAN";
}

// ---- Reading: libyaml's events -> JSON --------------------------------------

namespace {

constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";

std::string_view scalarText(const yaml_event_t& e) {
  return {reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length};
}

// What a scalar node is as a value: quoted, block and !!str (or "!")
// scalars are strings; plain ones and those with any other tag resolve.
json scalarValue(const yaml_event_t& e) {
  const std::string_view text = scalarText(e);
  if (e.data.scalar.tag) {
    const std::string_view tag(reinterpret_cast<const char*>(e.data.scalar.tag));
    if (tag == kStrTag || tag == "!") return std::string(text);
    return resolvePlain(text);
  }
  if (e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) return resolvePlain(text);
  return std::string(text);
}

// A mapping key: its text; a plain null (~, null, empty) is "null".
std::string scalarKey(const yaml_event_t& e) {
  const std::string_view text = scalarText(e);
  if (!e.data.scalar.tag && e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && isNullWord(text))
    return "null";
  return std::string(text);
}

std::string goQuote(std::string_view s) { return json(std::string(s)).dump(); }

// go-yaml's parser.fail(): a scanner error's line is 1-based, a parser
// error's is the 0-based line libyaml reports. Where go-yaml names no line
// (its line 0) svclb says line 1, as it always has: every syntax error names
// a line. Reader errors (bad bytes) have no line, as in go-yaml.
std::string libyamlError(const yaml_parser_t& p) {
  int line = 0;
  if (p.problem_mark.line != 0) {
    line = static_cast<int>(p.problem_mark.line);
    if (p.error == YAML_SCANNER_ERROR) ++line;
  } else if (p.context_mark.line != 0) {
    line = static_cast<int>(p.context_mark.line);
  }
  if (line == 0 && (p.error == YAML_SCANNER_ERROR || p.error == YAML_PARSER_ERROR)) line = 1;
  std::string where = line != 0 ? "line " + std::to_string(line) + ": " : "";
  return where + (p.problem ? p.problem : "unknown problem parsing YAML content");
}

struct Anchored {
  json value;
  std::optional<std::string> key;  // a scalar's text as a mapping key
};

class Reader {
 public:
  explicit Reader(std::string_view text) {
    yaml_parser_initialize(&parser_);
    yaml_parser_set_input_string(&parser_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Reader() { yaml_parser_delete(&parser_); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::optional<std::string> run(const TakeDocument& take) {
    // The first key error; reading goes on (without building) so that a
    // later syntax error is the one reported.
    std::optional<std::string> keyError;
    for (;;) {
      yaml_event_t e;
      if (!yaml_parser_parse(&parser_, &e)) return libyamlError(parser_);
      std::unique_ptr<yaml_event_t, decltype(&yaml_event_delete)> guard(&e, yaml_event_delete);
      if (e.type == YAML_STREAM_END_EVENT) return keyError;
      if (keyError) continue;
      if (auto err = step(e, take)) {
        if (err->rfind("unknown anchor", 0) == 0) return err;  // go-yaml's parser fails here
        keyError = std::move(err);
      }
    }
  }

 private:
  struct Frame {
    json* node;
    bool isMap;
    bool wantKey = true;   // a mapping's next scalar is a key
    json* slot = nullptr;  // where a mapping's pending value goes
    std::string anchor;
  };

  // The place the next node goes: the document, the end of a sequence or
  // the value of the pending key. Null with `err` set when the node is a
  // mapping key that is not a scalar.
  json* place(const yaml_event_t& e, std::optional<std::string>& err) {
    if (stack_.empty()) return &doc_;
    Frame& f = stack_.back();
    if (!f.isMap) {
      f.node->push_back(nullptr);
      return &f.node->back();
    }
    if (f.wantKey) {
      err = "line " + std::to_string(e.start_mark.line + 1) + ": invalid map key: only scalar keys";
      return nullptr;
    }
    f.wantKey = true;
    return f.slot;
  }

  // A key for the top mapping; error when it is already set.
  std::optional<std::string> key(std::string k, const yaml_event_t& e) {
    Frame& f = stack_.back();
    auto [it, inserted] = f.node->emplace(std::move(k), nullptr);
    if (!inserted)
      return "line " + std::to_string(e.start_mark.line + 1) + ": key " + goQuote(it.key()) +
             " already set in map";
    f.slot = &it.value();
    f.wantKey = false;
    return std::nullopt;
  }

  bool atKey() const { return !stack_.empty() && stack_.back().isMap && stack_.back().wantKey; }

  std::optional<std::string> step(const yaml_event_t& e, const TakeDocument& take) {
    std::optional<std::string> err;
    switch (e.type) {
      case YAML_DOCUMENT_START_EVENT:
        doc_ = nullptr;
        anchors_.clear();
        inDocument_ = true;
        break;
      case YAML_DOCUMENT_END_EVENT:
        inDocument_ = false;
        take(std::move(doc_));
        doc_ = nullptr;
        break;
      case YAML_ALIAS_EVENT: {
        const std::string name(reinterpret_cast<const char*>(e.data.alias.anchor));
        auto a = anchors_.find(name);
        if (a == anchors_.end()) return "unknown anchor '" + name + "' referenced";
        if (atKey()) {
          if (!a->second.key)
            return "line " + std::to_string(e.start_mark.line + 1) +
                   ": invalid map key: only scalar keys";
          return key(*a->second.key, e);
        }
        json* to = place(e, err);
        if (!to) return err;
        *to = a->second.value;
        break;
      }
      case YAML_SCALAR_EVENT: {
        if (atKey()) {
          std::string k = scalarKey(e);
          if (e.data.scalar.anchor)
            anchors_[reinterpret_cast<const char*>(e.data.scalar.anchor)] = {scalarValue(e), k};
          return key(std::move(k), e);
        }
        json* to = place(e, err);
        if (!to) return err;
        *to = scalarValue(e);
        if (e.data.scalar.anchor)
          anchors_[reinterpret_cast<const char*>(e.data.scalar.anchor)] = {*to, scalarKey(e)};
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        const bool isMap = e.type == YAML_MAPPING_START_EVENT;
        json* to = place(e, err);
        if (!to) return err;
        *to = isMap ? json::object() : json::array();
        const auto* anchor = isMap ? e.data.mapping_start.anchor : e.data.sequence_start.anchor;
        stack_.push_back({to, isMap, true, nullptr,
                          anchor ? reinterpret_cast<const char*>(anchor) : std::string()});
        break;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        Frame f = std::move(stack_.back());
        stack_.pop_back();
        if (!f.anchor.empty()) anchors_[f.anchor] = {*f.node, std::nullopt};
        break;
      }
      default:
        break;
    }
    return std::nullopt;
  }

  yaml_parser_t parser_;
  json doc_;
  bool inDocument_ = false;
  std::vector<Frame> stack_;
  std::unordered_map<std::string, Anchored> anchors_;
};

}  // namespace

std::optional<std::string> readYaml(std::string_view text, const TakeDocument& take) {
  Reader r(text);
  return r.run(take);
}

}  // namespace svclb::yaml
