#include "cli/selector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "cli/json_util.h"

namespace svclb::cli {
namespace {

// A label name part or value: at most 63 of [A-Za-z0-9-_.], alphanumeric at
// both ends (an empty value is allowed by the caller).
bool validName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// prefix/name with a DNS-subdomain prefix (lower case, dots), or name.
bool validKey(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return validName(key);
  const std::string prefix = key.substr(0, slash), name = key.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 253) return false;
  for (char c : prefix)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return validName(name);
}

struct Lexer {
  const std::string& s;
  size_t pos = 0;
  enum Kind { End, Ident, Comma, Open, Close, Eq, DoubleEq, NotEq, Bang, In, NotIn, Gt, Lt };
  struct Token {
    Kind kind;
    std::string text;
  };
  Token next() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
    if (pos >= s.size()) return {End, ""};
    const char c = s[pos];
    auto two = [&](const char* t) { return s.compare(pos, 2, t) == 0; };
    if (two("==")) return pos += 2, Token{DoubleEq, "=="};
    if (two("!=")) return pos += 2, Token{NotEq, "!="};
    static constexpr std::pair<char, Kind> kSingle[] = {
        {',', Comma}, {'(', Open}, {')', Close}, {'=', Eq}, {'!', Bang}, {'>', Gt}, {'<', Lt}};
    for (const auto& [ch, kind] : kSingle)
      if (c == ch) return ++pos, Token{kind, std::string(1, c)};
    size_t start = pos;
    while (pos < s.size() && !std::isspace(static_cast<unsigned char>(s[pos])) &&
           std::string_view(",()=!<>").find(s[pos]) == std::string_view::npos)
      ++pos;
    std::string word = s.substr(start, pos - start);
    if (word == "in") return {In, word};
    if (word == "notin") return {NotIn, word};
    return {Ident, word};
  }
  Token peek() {
    size_t save = pos;
    Token t = next();
    pos = save;
    return t;
  }
};

}  // namespace

Result<Selector> Selector::parse(const std::string& text) {
  Selector sel;
  Lexer lx{text};
  auto fail = [&](const std::string& why) {
    return Error{EINVAL, fmt::format("unable to parse the selector \"{}\": {}", text, why)};
  };
  auto badKey = [&](const std::string& key) {
    return fail(fmt::format(
        "invalid label key \"{}\": a label key is a name of at most 63 alphanumeric characters, "
        "'-', '_' or '.', starting and ending with an alphanumeric one, optionally prefixed by a "
        "DNS subdomain and '/'",
        key));
  };
  auto badValue = [&](const std::string& v) {
    return fail(fmt::format(
        "invalid label value \"{}\": at most 63 alphanumeric characters, '-', '_' or '.', "
        "starting and ending with an alphanumeric one",
        v));
  };
  if (lx.peek().kind == Lexer::End) return sel;
  while (true) {
    Requirement r;
    Lexer::Token t = lx.next();
    if (t.kind == Lexer::Bang) {
      t = lx.next();
      if (t.kind != Lexer::Ident)
        return fail(fmt::format("found '{}', expected: identifier after '!'", t.text));
      if (!validKey(t.text)) return badKey(t.text);
      r = {t.text, Op::NotExists, {}};
    } else if (t.kind == Lexer::Ident) {
      if (!validKey(t.text)) return badKey(t.text);
      r.key = t.text;
      Lexer::Token op = lx.peek();
      switch (op.kind) {
        case Lexer::End:
        case Lexer::Comma:
          r.op = Op::Exists;
          break;
        case Lexer::Eq:
        case Lexer::DoubleEq:
        case Lexer::NotEq: {
          lx.next();
          r.op = op.kind == Lexer::NotEq ? Op::NotEquals : Op::Equals;
          Lexer::Token v = lx.peek();
          if (v.kind == Lexer::Ident) {
            lx.next();
            if (!validName(v.text)) return badValue(v.text);
            r.values.push_back(v.text);
          } else if (v.kind == Lexer::End || v.kind == Lexer::Comma) {
            r.values.push_back("");  // key= selects an empty value
          } else {
            return fail(fmt::format("found '{}', expected: a value after '{}'", v.text, op.text));
          }
          break;
        }
        case Lexer::In:
        case Lexer::NotIn: {
          lx.next();
          r.op = op.kind == Lexer::In ? Op::In : Op::NotIn;
          if (Lexer::Token o = lx.next(); o.kind != Lexer::Open)
            return fail(fmt::format("found '{}', expected: '('", o.text));
          while (true) {
            Lexer::Token v = lx.next();
            if (v.kind == Lexer::Ident) {
              if (!validName(v.text)) return badValue(v.text);
              r.values.push_back(v.text);
              v = lx.next();
            } else if (v.kind == Lexer::Comma || v.kind == Lexer::Close) {
              r.values.push_back("");
            } else {
              return fail(fmt::format("found '{}', expected: ',', ')' or a value", v.text));
            }
            if (v.kind == Lexer::Close) break;
            if (v.kind != Lexer::Comma)
              return fail(fmt::format("found '{}', expected: ',' or ')'", v.text));
          }
          break;
        }
        case Lexer::Gt:
        case Lexer::Lt: {
          lx.next();
          r.op = op.kind == Lexer::Gt ? Op::Gt : Op::Lt;
          Lexer::Token v = lx.next();
          int64_t n = 0;
          auto [p, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
          if (v.kind != Lexer::Ident || ec != std::errc() || p != v.text.data() + v.text.size())
            return fail(
                fmt::format("for '{}', the value must be an integer, found '{}'", op.text, v.text));
          r.values.push_back(v.text);
          break;
        }
        default:
          return fail(
              fmt::format("found '{}', expected: '=', '!=', '==', 'in', 'notin', '<', '>' "
                          "or ','",
                          op.text));
      }
    } else {
      return fail(fmt::format("found '{}', expected: '!' or an identifier", t.text));
    }
    sel.reqs_.push_back(std::move(r));
    Lexer::Token sep = lx.next();
    if (sep.kind == Lexer::End) break;
    if (sep.kind != Lexer::Comma) return fail(fmt::format("found '{}', expected: ','", sep.text));
  }
  return sel;
}

bool Selector::matches(const Json& object) const {
  const Json& labels = at(object, {"metadata", "labels"});
  for (const auto& r : reqs_) {
    const bool has = labels.is_object() && labels.contains(r.key) && labels[r.key].is_string();
    const std::string value = has ? labels[r.key].get<std::string>() : "";
    auto inValues = [&] {
      return std::find(r.values.begin(), r.values.end(), value) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case Op::Exists:
        ok = has;
        break;
      case Op::NotExists:
        ok = !has;
        break;
      case Op::Equals:
      case Op::In:
        ok = has && inValues();
        break;
      case Op::NotEquals:
      case Op::NotIn:
        ok = !has || !inValues();
        break;
      case Op::Gt:
      case Op::Lt: {
        int64_t have = 0, want = std::stoll(r.values[0]);
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), have);
        ok = has && ec == std::errc() && p == value.data() + value.size() &&
             (r.op == Op::Gt ? have > want : have < want);
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace svclb::cli
