#include "cli/jsonpath.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <functional>

namespace svclb::cli {

namespace {

struct Step;
using Path = std::vector<Step>;

struct Step {
  enum Kind { Field, Wildcard, Recursive, Slice, Indexes, Filter } kind;
  explicit Step(Kind k, std::vector<std::string> ks = {}) : kind(k), keys(std::move(ks)) {}
  std::vector<std::string> keys;  // Field: one key, or a union ['a','b']
  // Slice [start:end:step] ([n] is start n, end n+1 derived, as client-go)
  int64_t start = 0, end = 0, step = 1;
  bool hasStart = false, hasEnd = false, endDerived = false;
  std::vector<int64_t> indexes;  // Indexes: [1,3]
  // Filter [?(left op right)]; op "" = left exists
  std::shared_ptr<Path> left, right;
  std::string op;
  Json literal;  // right side when it is not a path
};

using Nodes = std::vector<JsonPath::Node>;

}  // namespace

struct JsonPath::Node {
  enum Kind { Text, Expr, Range } kind;
  explicit Node(Kind k, std::string t = {}) : kind(k), text(std::move(t)) {}
  std::string text;
  Path path;
  Nodes children;  // Range: up to its {end}
};

namespace {

Error parseError(const std::string& tmpl, const std::string& why) {
  return Error{EINVAL, fmt::format("error parsing jsonpath {}, {}", tmpl, why)};
}

// Go's strconv.Unquote for the escapes templates use.
std::optional<std::string> unquote(const std::string& s) {
  if (s.size() < 2 || (s.front() != '"' && s.front() != '\'') || s.back() != s.front())
    return std::nullopt;
  std::string out;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i + 1 > s.size() - 1) return std::nullopt;
    switch (s[i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
        out += '"';
        break;
      case '\'':
        out += '\'';
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<int64_t> toInt(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// The first position from `from` where `stop(c)` holds for a character
// outside single or double quotes (a backslash escapes inside them); npos if
// none.
template <class Stop>
size_t scanUnquoted(const std::string& s, size_t from, Stop stop) {
  char quote = 0;
  for (size_t i = from; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (stop(c)) {
      return i;
    }
  }
  return std::string::npos;
}

// The end of a bracket or parenthesis group opened at `open`.
size_t closing(const std::string& s, size_t open) {
  int depth = 0;
  return scanUnquoted(s, open, [&](char c) {
    if (c == '[' || c == '(') ++depth;
    return (c == ']' || c == ')') && --depth == 0;
  });
}

Result<Path> parsePath(const std::string& expr, const std::string& tmpl);

Result<Step> parseFilter(const std::string& inner, const std::string& tmpl) {
  Step st{Step::Filter};
  // The operator: outside quotes, the first of the comparison signs.
  const size_t opAt =
      scanUnquoted(inner, 0, [](char c) { return c == '=' || c == '!' || c == '<' || c == '>'; });
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(' '));
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
  };
  std::string lhs = trim(inner.substr(0, opAt)), rhs;
  if (opAt != std::string::npos) {
    size_t len = (opAt + 1 < inner.size() && inner[opAt + 1] == '=') ? 2 : 1;
    st.op = inner.substr(opAt, len);
    if (st.op == "=" || st.op == "!")
      return parseError(tmpl, fmt::format("unrecognized filter operator {}", st.op));
    rhs = trim(inner.substr(opAt + len));
  }
  auto left = parsePath(lhs, tmpl);
  if (!left) return left.error();
  st.left = std::make_shared<Path>(std::move(*left));
  if (st.op.empty()) return st;
  if (auto q = unquote(rhs)) {
    st.literal = *q;
  } else if (rhs == "true" || rhs == "false") {
    st.literal = rhs == "true";
  } else if (!rhs.empty() && (rhs[0] == '@' || rhs[0] == '$')) {
    auto right = parsePath(rhs, tmpl);
    if (!right) return right.error();
    st.right = std::make_shared<Path>(std::move(*right));
  } else {
    Json n = Json::parse(rhs, nullptr, false);
    if (n.is_discarded() || !n.is_number())
      return parseError(tmpl, fmt::format("unrecognized value in filter: {}", rhs));
    st.literal = n;
  }
  return st;
}

Result<Step> parseBracket(const std::string& in, const std::string& tmpl) {
  std::string s = in;
  s.erase(0, s.find_first_not_of(' '));
  s.erase(s.find_last_not_of(' ') + 1);
  if (s == "*") return Step{Step::Wildcard};
  if (s.size() >= 3 && s[0] == '?' && s[1] == '(' && s.back() == ')')
    return parseFilter(s.substr(2, s.size() - 3), tmpl);
  if (!s.empty() && (s[0] == '\'' || s[0] == '"')) {
    Step st{Step::Field};
    size_t pos = 0;
    while (pos < s.size()) {
      size_t end = s.find(s[pos], pos + 1);
      if (end == std::string::npos) return parseError(tmpl, "unclosed quote");
      auto key = unquote(s.substr(pos, end - pos + 1));
      if (!key) return parseError(tmpl, "bad quoted key");
      st.keys.push_back(*key);
      pos = s.find_first_not_of(' ', end + 1);
      if (pos == std::string::npos) break;
      if (s[pos] != ',') return parseError(tmpl, "expected ',' between quoted keys");
      pos = s.find_first_not_of(' ', pos + 1);
      if (pos == std::string::npos || (s[pos] != '\'' && s[pos] != '"'))
        return parseError(tmpl, "expected a quoted key");
    }
    return st;
  }
  if (s.find(':') != std::string::npos) {
    Step st{Step::Slice};
    std::vector<std::string> parts;
    size_t pos = 0;
    while (true) {
      size_t c = s.find(':', pos);
      parts.push_back(s.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    if (parts.size() > 3) return parseError(tmpl, "invalid array index " + s);
    auto num = [&](const std::string& p, int64_t& v, bool& has) {
      if (p.find_first_not_of(' ') == std::string::npos) return true;
      auto n = toInt(p);
      if (!n) return false;
      v = *n;
      has = true;
      return true;
    };
    bool hasStep = false;
    if (!num(parts[0], st.start, st.hasStart) || !num(parts[1], st.end, st.hasEnd) ||
        (parts.size() == 3 && !num(parts[2], st.step, hasStep)))
      return parseError(tmpl, "invalid array index " + s);
    if (hasStep && st.step <= 0) return parseError(tmpl, "step must be > 0");
    return st;
  }
  if (s.find(',') != std::string::npos) {
    Step st{Step::Indexes};
    size_t pos = 0;
    while (true) {
      size_t c = s.find(',', pos);
      auto n = toInt(s.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
      if (!n) return parseError(tmpl, "invalid array index " + s);
      st.indexes.push_back(*n);
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    return st;
  }
  auto n = toInt(s);
  if (!n) return parseError(tmpl, "invalid array index " + s);
  Step st{Step::Slice};
  st.start = *n;
  st.hasStart = st.hasEnd = st.endDerived = true;
  st.end = *n + 1;
  return st;
}

Result<Path> parsePath(const std::string& expr, const std::string& tmpl) {
  Path path;
  size_t i = 0;
  if (i < expr.size() && (expr[i] == '$' || expr[i] == '@')) ++i;
  while (i < expr.size()) {
    char c = expr[i];
    if (c == '.') {
      ++i;
      if (i < expr.size() && expr[i] == '.') {
        path.push_back(Step{Step::Recursive});
        ++i;
      }
      std::string name;
      while (i < expr.size() && expr[i] != '.' && expr[i] != '[') {
        if (expr[i] == '\\' && i + 1 < expr.size()) ++i;
        name += expr[i++];
      }
      if (name == "*")
        path.push_back(Step{Step::Wildcard});
      else if (!name.empty())
        path.push_back(Step{Step::Field, {name}});
    } else if (c == '[') {
      size_t end = closing(expr, i);
      if (end == std::string::npos) return parseError(tmpl, "unclosed array expect ]");
      auto st = parseBracket(expr.substr(i + 1, end - i - 1), tmpl);
      if (!st) return st.error();
      path.push_back(std::move(*st));
      i = end + 1;
    } else {
      return parseError(tmpl, fmt::format("unrecognized character in action: {}", expr.substr(i)));
    }
  }
  return path;
}

// client-go's template.Equal/Less over the JSON scalar kinds.
Result<bool> compare(const Json& a, const std::string& op, const Json& b) {
  int cmp;
  if (a.is_number() && b.is_number()) {
    double x = a.get<double>(), y = b.get<double>();
    cmp = x < y ? -1 : x > y ? 1 : 0;
  } else if (a.is_string() && b.is_string()) {
    cmp = a.get<std::string>().compare(b.get<std::string>());
  } else if (a.is_boolean() && b.is_boolean() && (op == "==" || op == "!=")) {
    cmp = a == b ? 0 : 1;
  } else {
    return Error{EINVAL, "incompatible types for comparison"};
  }
  if (op == "==") return cmp == 0;
  if (op == "!=") return cmp != 0;
  if (op == "<") return cmp < 0;
  if (op == ">") return cmp > 0;
  if (op == "<=") return cmp <= 0;
  return cmp >= 0;
}

using Values = std::vector<const Json*>;

Result<Values> eval(const Path& path, const Values& input) {
  Values cur = input;
  for (const auto& st : path) {
    Values next;
    for (const Json* v : cur) {
      switch (st.kind) {
        case Step::Field:
          if (v->is_object())
            for (const auto& k : st.keys)
              if (auto it = v->find(k); it != v->end()) next.push_back(&*it);
          break;
        case Step::Wildcard:
          if (v->is_structured())
            for (const auto& child : *v) next.push_back(&child);
          break;
        case Step::Recursive: {
          std::function<void(const Json*)> walk = [&](const Json* j) {
            if (!j->is_structured() || j->empty()) return;
            next.push_back(j);
            for (const auto& child : *j) walk(&child);
          };
          walk(v);
          break;
        }
        case Step::Slice:
        case Step::Indexes: {
          if (v->is_null()) break;
          if (!v->is_array())
            return Error{EINVAL, fmt::format("{} is not array or slice", v->dump())};
          const auto len = static_cast<int64_t>(v->size());
          if (st.kind == Step::Indexes) {
            for (int64_t n : st.indexes) {
              int64_t k = n < 0 ? n + len : n;
              if (k < 0 || k >= len)
                return Error{EINVAL,
                             fmt::format("array index out of bounds: index {}, length {}", n, len)};
              next.push_back(&(*v)[static_cast<size_t>(k)]);
            }
            break;
          }
          int64_t a = st.hasStart ? st.start : 0, b = st.hasEnd ? st.end : len;
          if (a < 0) a += len;
          if (b < 0 || (b == 0 && st.endDerived)) b += len;
          if (a == b) break;
          if (a >= len || a < 0)
            return Error{EINVAL,
                         fmt::format("array index out of bounds: index {}, length {}", a, len)};
          if (b > len || b < 0)
            return Error{EINVAL,
                         fmt::format("array index out of bounds: index {}, length {}", b - 1, len)};
          if (a > b)
            return Error{EINVAL,
                         fmt::format("starting index {} is greater than ending index {}", a, b)};
          for (int64_t k = a; k < b; k += st.step) next.push_back(&(*v)[static_cast<size_t>(k)]);
          break;
        }
        case Step::Filter: {
          if (!v->is_array())
            return Error{EINVAL,
                         fmt::format("{} is not array or slice and cannot be filtered", v->dump())};
          for (const auto& elem : *v) {
            auto lefts = eval(*st.left, {&elem});
            if (st.op.empty()) {
              if (lefts && !lefts->empty()) next.push_back(&elem);
              continue;
            }
            if (!lefts) return lefts.error();
            if (lefts->empty()) continue;
            if (lefts->size() > 1) return Error{EINVAL, "can only compare one element at a time"};
            const Json* right = &st.literal;
            Values rights;
            if (st.right) {
              auto r = eval(*st.right, {&elem});
              if (!r) return r.error();
              rights = std::move(*r);
              if (rights.empty()) continue;
              if (rights.size() > 1) return Error{EINVAL, "can only compare one element at a time"};
              right = rights[0];
            }
            auto pass = compare(*(*lefts)[0], st.op, *right);
            if (!pass) return pass.error();
            if (*pass) next.push_back(&elem);
          }
          break;
        }
      }
    }
    cur = std::move(next);
  }
  return cur;
}

std::string text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "<nil>";
  return v.dump();
}

Result<Nodes> parseNodes(const std::string& tmpl, size_t& pos, bool inRange) {
  Nodes nodes;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find('{', pos);
    if (open != pos) {
      nodes.emplace_back(JsonPath::Node::Text, tmpl.substr(pos, open - pos));
      if (open == std::string::npos) break;
    }
    // The action's end: the first '}' outside quotes.
    const size_t close = scanUnquoted(tmpl, open + 1, [](char c) { return c == '}'; });
    if (close == std::string::npos) return parseError(tmpl, "unclosed action");
    std::string action = tmpl.substr(open + 1, close - open - 1);
    action.erase(0, action.find_first_not_of(' '));
    action.erase(action.find_last_not_of(' ') + 1);
    pos = close + 1;
    if (action == "end") {
      if (!inRange) return parseError(tmpl, "not in range, nothing to end");
      return nodes;
    }
    if (action.rfind("range ", 0) == 0) {
      auto path =
          parsePath(action.substr(6).erase(0, action.substr(6).find_first_not_of(' ')), tmpl);
      if (!path) return path.error();
      auto children = parseNodes(tmpl, pos, true);
      if (!children) return children.error();
      JsonPath::Node n{JsonPath::Node::Range};
      n.path = std::move(*path);
      n.children = std::move(*children);
      nodes.push_back(std::move(n));
      continue;
    }
    if (!action.empty() && (action[0] == '"' || action[0] == '\'')) {
      auto lit = unquote(action);
      if (!lit) return parseError(tmpl, "bad string literal " + action);
      nodes.emplace_back(JsonPath::Node::Text, *lit);
      continue;
    }
    if (action.empty() ||
        (action[0] != '.' && action[0] != '$' && action[0] != '@' && action[0] != '['))
      return parseError(tmpl, fmt::format("unrecognized identifier {}", action));
    auto path = parsePath(action, tmpl);
    if (!path) return path.error();
    JsonPath::Node n{JsonPath::Node::Expr};
    n.path = std::move(*path);
    nodes.push_back(std::move(n));
  }
  if (inRange) return parseError(tmpl, "range without {end}");
  return nodes;
}

Status run(const Nodes& nodes, const Json& cur, std::string& out) {
  for (const auto& n : nodes) {
    if (n.kind == JsonPath::Node::Text) {
      out += n.text;
      continue;
    }
    auto results = eval(n.path, {&cur});
    if (!results) return results.error();
    if (n.kind == JsonPath::Node::Range) {
      for (const Json* r : *results)
        if (auto st = run(n.children, *r, out); !st) return st;
      continue;
    }
    for (size_t i = 0; i < results->size(); ++i) {
      if (i) out += ' ';
      out += text(*(*results)[i]);
    }
  }
  return {};
}

}  // namespace

Result<JsonPath> JsonPath::parse(const std::string& tmpl) {
  size_t pos = 0;
  auto nodes = parseNodes(tmpl, pos, false);
  if (!nodes) return nodes.error();
  JsonPath jp;
  jp.nodes_ = std::make_shared<const Nodes>(std::move(*nodes));
  return jp;
}

Result<std::string> JsonPath::execute(const Json& data) const {
  std::string out;
  if (auto st = run(*nodes_, data, out); !st) return st.error();
  return out;
}

Result<std::vector<Json>> JsonPath::results(const Json& data) const {
  std::vector<Json> out;
  for (const auto& n : *nodes_) {
    if (n.kind != Node::Expr) continue;
    auto results = eval(n.path, {&data});
    if (!results) return results.error();
    for (const Json* r : *results) out.push_back(*r);
  }
  return out;
}

Result<std::vector<std::string>> JsonPath::values(const Json& data) const {
  auto found = results(data);
  if (!found) return found.error();
  std::vector<std::string> out;
  for (const Json& r : *found) out.push_back(text(r));
  return out;
}

}  // namespace svclb::cli
