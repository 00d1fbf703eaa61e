// Label selectors as kubectl's -l/--selector takes them (the grammar of
// k8s.io/apimachinery/pkg/labels.Parse): comma-separated requirements
//   key  !key  key=v  key==v  key!=v  key in (v1,v2)  key notin (v1,v2)
//   key>N  key<N
// all of which must hold. svclbd returns every object of a kind; svcctl
// filters them, so a selector never reaches the daemon.
#pragma once

#include <string>
#include <vector>

#include "cli/format.h"
#include "common/result.h"

namespace svclb::cli {

class Selector {
 public:
  // An empty string selects everything. Errors name the offending part.
  static Result<Selector> parse(const std::string& text);
  // True if the object's metadata.labels satisfy every requirement.
  bool matches(const Json& object) const;
  bool empty() const { return reqs_.empty(); }

 private:
  enum class Op { Exists, NotExists, Equals, NotEquals, In, NotIn, Gt, Lt };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;  // Gt/Lt: one integer
  };
  std::vector<Requirement> reqs_;
};

}  // namespace svclb::cli
