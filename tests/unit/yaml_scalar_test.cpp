// The one copy of YAML 1.1's plain scalar rules (common/yaml.h): what svcctl
// -o yaml quotes is checked against the std::regex patterns cli/output.cpp
// used before (kept here as the reference), on the words and numbers they
// name and on random strings built from their characters.
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "common/yaml.h"

namespace svclb {
namespace {

bool regexResolvesToNonString(const std::string& s) {
  static const std::regex kSpecial(
      "^(~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|"
      "ON|off|Off|OFF)$");
  static const std::regex kNumber(
      "^[-+]?(0b[01_]+|0x[0-9a-fA-F_]+|0[0-7_]+|(0|[1-9][0-9_]*)|"
      "(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?|"
      "[0-9][0-9_]*(:[0-5]?[0-9])+(\\.[0-9_]*)?|\\.(inf|Inf|INF))$|^\\.(nan|NaN|NAN)$");
  static const std::regex kTimestamp("^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \\t].*)?$");
  return std::regex_match(s, kSpecial) || std::regex_match(s, kNumber) ||
         std::regex_match(s, kTimestamp);
}

// "0o17" is the one form the old patterns missed: the reader (and go-yaml)
// take it as the int 15, so it is quoted now.
bool isNewOctal(const std::string& s) {
  static const std::regex kOctal("^[-+]?0o[0-7_]+$");
  return std::regex_match(s, kOctal);
}

void expectSame(const std::string& s) {
  EXPECT_EQ(yaml::plainResolvesToNonString(s), regexResolvesToNonString(s) || isNewOctal(s))
      << '"' << s << '"';
}

TEST(YamlScalar, QuotedExactlyAsTheRegexesSaid) {
  for (const char* s : {"~",
                        "null",
                        "Null",
                        "NULL",
                        "nulL",
                        "y",
                        "Y",
                        "n",
                        "N",
                        "yes",
                        "Yes",
                        "YES",
                        "yEs",
                        "no",
                        "NO",
                        "true",
                        "True",
                        "TRUE",
                        "tRUE",
                        "false",
                        "on",
                        "On",
                        "ON",
                        "off",
                        "Off",
                        "OFF",
                        "0",
                        "-0",
                        "+7",
                        "12",
                        "1_000",
                        "0x1F",
                        "0x",
                        "0x_",
                        "-0xAf",
                        "017",
                        "08",
                        "0o17",
                        "0o",
                        "0b101",
                        "0b",
                        "-0b1_0",
                        "1.5",
                        ".5",
                        "1.",
                        "1e3",
                        "1.5e-3",
                        "1e",
                        "e3",
                        ".",
                        "-.",
                        ".inf",
                        "-.Inf",
                        "+.INF",
                        ".nan",
                        ".NaN",
                        "-.nan",
                        "1:20",
                        "190:20:30.15",
                        "1:60",
                        "1:5:",
                        "2024-05-01",
                        "2024-5-1",
                        "2024-05-01T12:00:00Z",
                        "2024-05-01 x",
                        "2024-05-01x",
                        "202-05-01",
                        "10.0.0.1",
                        "v1",
                        "web",
                        "x:y",
                        "-",
                        "+",
                        "_1",
                        "1_"})
    expectSame(s);
}

TEST(YamlScalar, RandomStringsAgree) {
  const std::string alphabet = "0123456789_.:-+eExXoObBaAfFnNiIT t";
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    std::string s;
    const size_t len = 1 + rng() % 12;
    for (size_t k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    expectSame(s);
  }
}

TEST(YamlScalar, ResolvedValues) {
  EXPECT_TRUE(yaml::resolvePlain("").is_null());
  EXPECT_TRUE(yaml::resolvePlain("~").is_null());
  EXPECT_EQ(yaml::resolvePlain("yes"), true);
  EXPECT_EQ(yaml::resolvePlain("Off"), false);
  EXPECT_EQ(yaml::resolvePlain("y"), "y");  // only quoted on output
  EXPECT_EQ(yaml::resolvePlain("0x1F"), 31);
  EXPECT_EQ(yaml::resolvePlain("017"), 15);
  EXPECT_EQ(yaml::resolvePlain("0o17"), 15);
  EXPECT_EQ(yaml::resolvePlain("-1_000"), -1000);
  EXPECT_EQ(yaml::resolvePlain("08"), 8.0);
  EXPECT_EQ(yaml::resolvePlain("1.5e3"), 1500.0);
  EXPECT_EQ(yaml::resolvePlain("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(yaml::resolvePlain("2024-05-01"), "2024-05-01");
  EXPECT_EQ(yaml::resolvePlain("99999999999999999999"), "99999999999999999999");  // > uint64
}

}  // namespace
}  // namespace svclb
