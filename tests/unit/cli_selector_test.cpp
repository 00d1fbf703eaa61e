// svcctl's label selectors (cli/selector.h): kubectl's -l grammar and
// matching, cases after k8s.io/apimachinery/pkg/labels' selector tests.
#include <gtest/gtest.h>

#include "cli/selector.h"

namespace svclb::cli {
namespace {

Json withLabels(const Json& labels) {
  return Json{{"metadata", {{"name", "x"}, {"labels", labels}}}};
}

struct Case {
  const char* selector;
  Json labels;
  bool match;
};

TEST(CliSelector, MatchesAsKubectl) {
  const Json web = {{"app", "web"}, {"tier", "front"}, {"gen", "3"}};
  const Case cases[] = {
      {"", web, true},
      {"", Json(), true},
      {"app=web", web, true},
      {"app==web", web, true},
      {"app = web", web, true},
      {"app=api", web, false},
      {"app!=api", web, true},
      {"app!=web", web, false},
      {"missing!=x", web, true},  // != holds where the key is absent
      {"app", web, true},
      {"missing", web, false},
      {"!missing", web, true},
      {"!app", web, false},
      {"app in (api,web)", web, true},
      {"app in (api)", web, false},
      {"app notin (api)", web, true},
      {"app notin (web,api)", web, false},
      {"missing notin (a)", web, true},
      {"missing in (a)", web, false},
      {"app=web,tier=front", web, true},
      {"app=web,tier=back", web, false},
      {"app in (web), !missing, tier", web, true},
      {"gen>2", web, true},
      {"gen>3", web, false},
      {"gen<4", web, true},
      {"app>1", web, false},  // not an integer label: no match
      {"empty=", Json{{"empty", ""}}, true},
      {"empty=", web, false},
      {"example.com/role=edge", Json{{"example.com/role", "edge"}}, true},
      {"app=web", Json(), false},
      {"app!=web", Json(), true},
  };
  for (const auto& c : cases) {
    auto sel = Selector::parse(c.selector);
    ASSERT_TRUE(sel.ok()) << c.selector << ": " << sel.error().message;
    EXPECT_EQ(sel->matches(withLabels(c.labels)), c.match) << c.selector << " on " << c.labels;
  }
}

TEST(CliSelector, RefusesWhatKubectlRefuses) {
  const std::pair<const char*, const char*> bad[] = {
      {"a b", "found 'b'"},
      {"app in web", "expected: '('"},
      {"app in (web", "found ''"},
      {"app=web,", "found ''"},
      {",app", "found ','"},
      {"app=fr*nt", "invalid label value \"fr*nt\""},
      {"-app=web", "invalid label key \"-app\""},
      {"Example.com/x=y", "invalid label key"},
      {"gen>x", "must be an integer"},
      {"!", "expected: identifier after '!'"},
      {"app==", ""},  // empty value: valid (selects app="")
  };
  for (const auto& [text, why] : bad) {
    auto sel = Selector::parse(text);
    if (std::string(why).empty()) {
      EXPECT_TRUE(sel.ok()) << text;
      continue;
    }
    ASSERT_FALSE(sel.ok()) << text;
    EXPECT_NE(sel.error().message.find(std::string("the selector \"") + text + "\""),
              std::string::npos)
        << sel.error().message;
    EXPECT_NE(sel.error().message.find(why), std::string::npos)
        << text << ": " << sel.error().message;
  }
}

}  // namespace
}  // namespace svclb::cli
