#include "cli/table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <sstream>

namespace svclb::cli {
namespace {

size_t displayWidth(const std::string& s) {
  // Code points, as Go's tabwriter counts runes.
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

using Line = std::vector<std::string>;

class TabWriter {
 public:
  TabWriter(std::vector<Line> lines, int minWidth, int padding)
      : lines_(std::move(lines)), minWidth_(minWidth), padding_(padding) {}

  std::string run() {
    format(0, lines_.size());
    return out_;
  }

 private:
  // Mirrors text/tabwriter's recursive Writer.format.
  void format(size_t line0, size_t line1) {
    size_t column = widths_.size();
    for (size_t cur = line0; cur < line1; ++cur) {
      if (column + 1 >= lines_[cur].size()) continue;
      writeLines(line0, cur);
      line0 = cur;
      size_t width = static_cast<size_t>(minWidth_);
      for (; cur < line1; ++cur) {
        const Line& line = lines_[cur];
        if (column + 1 >= line.size()) break;
        width = std::max(width, displayWidth(line[column]) + padding_);
      }
      widths_.push_back(width);
      format(line0, cur);
      widths_.pop_back();
      // `cur` (if any) has no cell in this column, so skipping it is safe.
      line0 = cur;
    }
    writeLines(line0, line1);
  }

  void writeLines(size_t line0, size_t line1) {
    for (size_t i = line0; i < line1; ++i) {
      const Line& line = lines_[i];
      for (size_t j = 0; j < line.size(); ++j) {
        out_ += line[j];
        if (j < widths_.size()) {
          size_t w = displayWidth(line[j]);
          if (widths_[j] > w) out_.append(widths_[j] - w, ' ');
        }
      }
      out_ += '\n';
    }
  }

  std::vector<Line> lines_;
  int minWidth_;
  int padding_;
  std::vector<size_t> widths_;
  std::string out_;
};

std::vector<Line> splitCells(const std::string& text) {
  std::vector<Line> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    Line cells;
    size_t c = 0;
    while (true) {
      size_t tab = line.find('\t', c);
      if (tab == std::string::npos) {
        cells.push_back(line.substr(c));
        break;
      }
      cells.push_back(line.substr(c, tab - c));
      c = tab + 1;
    }
    lines.push_back(std::move(cells));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

}  // namespace

std::string tabwrite(const std::string& text, int minWidth, int padding) {
  std::string out = TabWriter(splitCells(text), minWidth, padding).run();
  // splitCells drops nothing, so a text without a final newline gains one.
  if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
  return out;
}

std::string Table::render(const std::string& indent, bool withHeader) const {
  std::string text;
  auto add = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) text += '\t';
      text += cells[i];
    }
    text += '\n';
  };
  if (withHeader) add(header_);
  for (const auto& r : rows_) add(r);
  std::string aligned = tabwrite(text, 6, 3);
  std::string out;
  std::istringstream in(aligned);
  for (std::string line; std::getline(in, line);) {
    // Rows ending in empty cells would otherwise carry padding to the margin.
    line.erase(line.find_last_not_of(' ') + 1);
    out += indent + line + '\n';
  }
  return out;
}

std::string humanDuration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  // Go's int(d.Seconds()) truncates toward zero; up to 1s in the future is
  // tolerated as clock skew.
  long long seconds = duration_cast<std::chrono::seconds>(d).count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return fmt::format("{}s", seconds);
  long long minutes = duration_cast<std::chrono::minutes>(d).count();
  if (minutes < 10) {
    long long s = seconds % 60;
    if (s == 0) return fmt::format("{}m", minutes);
    return fmt::format("{}m{}s", minutes, s);
  }
  if (minutes < 60 * 3) return fmt::format("{}m", minutes);
  long long hours = duration_cast<std::chrono::hours>(d).count();
  if (hours < 8) {
    long long m = minutes % 60;
    if (m == 0) return fmt::format("{}h", hours);
    return fmt::format("{}h{}m", hours, m);
  }
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) {
    long long h = hours % 24;
    if (h == 0) return fmt::format("{}d", hours / 24);
    return fmt::format("{}d{}h", hours / 24, h);
  }
  if (hours < 24 * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    if (dy == 0) return fmt::format("{}y", hours / 24 / 365);
    return fmt::format("{}y{}d", hours / 24 / 365, dy);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s) {
  int year, mon, day, hour, min, sec, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &year, &mon, &day, &hour, &min,
                  &sec, &consumed) != 6 ||
      consumed == 0)
    return std::nullopt;
  std::string rest = s.substr(static_cast<size_t>(consumed));
  long long nanos = 0;
  if (!rest.empty() && rest[0] == '.') {
    size_t i = 1;
    long long scale = 100000000;
    while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i]))) {
      nanos += (rest[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == 1) return std::nullopt;
    rest = rest.substr(i);
  }
  long long offset = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh, om;
    if (std::sscanf(rest.c_str() + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (oh * 3600LL + om * 60LL) * (rest[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  auto tp = std::chrono::system_clock::from_time_t(t - offset);
  return tp + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                  std::chrono::nanoseconds(nanos));
}

std::string ageSince(const std::string& rfc3339, std::chrono::system_clock::time_point now) {
  auto t = parseRfc3339(rfc3339);
  if (!t) return "<unknown>";
  return humanDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(now - *t));
}

}  // namespace svclb::cli
