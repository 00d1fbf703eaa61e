// kubectl-compatible text layout: Go text/tabwriter column alignment (the
// engine under `kubectl get` tables and `kubectl describe`), and kubectl's
// AGE rules (apimachinery duration.HumanDuration).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace svclb::cli {

// Aligns '\t'-separated cells the way Go's text/tabwriter does (flags 0,
// pad char ' '): a column block is a run of consecutive lines that have a cell
// in that column followed by a tab; the last cell of a line is never padded.
// Widths count UTF-8 code points.
std::string tabwrite(const std::string& text, int minWidth, int padding);

// `kubectl get` table: tabwriter(minwidth 6, tabwidth 4, padding 3).
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void addRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }
  // indent is prepended to every output line (after alignment).
  // withHeader false: rows only, aligned among themselves (kubectl --no-headers).
  std::string render(const std::string& indent = "", bool withHeader = true) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// apimachinery's duration.HumanDuration: "5s", "3m12s", "4h", "2d", "3y45d" ...
std::string humanDuration(std::chrono::nanoseconds d);

// Parses an RFC 3339 timestamp ("2024-05-01T12:00:00Z", fractions and
// numeric offsets accepted). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s);

// kubectl's translateTimestampSince: "<unknown>" for a missing/bad timestamp.
std::string ageSince(const std::string& rfc3339, std::chrono::system_clock::time_point now);

}  // namespace svclb::cli
