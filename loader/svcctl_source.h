// svcctl as a StateSource (loader/state_source.h): an apply or delete
// request of the API socket (docs/api.md) becomes one change of the sink.
// Request-driven: nothing runs between requests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loader/state_source.h"

namespace svclb {

struct ChangeReply {
  Outcomes results;
  // The API server's warnings on each result's object ("Warning: ..."
  // lines, printed before its line as kubectl does): empty, or one entry
  // per result.
  std::vector<std::vector<std::string>> warnings;
  // Objects of kinds svclb does not handle, left out of a non-strict
  // request: one "Warning: skipped ..." line each.
  std::vector<std::string> skipped;
  // A delete -f's objects that did not exist (NotFound lines): the others
  // were deleted.
  std::vector<std::string> notFound;
};

class SvcctlSource final : public StateSource {
 public:
  std::string_view name() const override { return "svcctl"; }
  Status start(StateSink& sink) override {
    sink_ = &sink;
    return {};
  }
  void stop() override { sink_ = nullptr; }
  // Another source owns the state (svclbd --source=kubernetes): every apply
  // and delete is answered with `why`, nothing is parsed or changed.
  void refuse(std::string why) { refusal_ = std::move(why); }

  // {"op":"apply"|"delete"|"patch", ...}: parses the manifest (or the named
  // object, or applies the patch to it) and hands the change to the sink. Errors are the reply's,
  // in kubectl's words; a malformed request is an error, never an exception.
  Result<ChangeReply> handle(const nlohmann::json& req);

 private:
  StateSink* sink_ = nullptr;
  std::string refusal_;
};

// The reply to a successful apply or delete (docs/api.md):
// {"ok":true,"results":[{"action":..,"kind":..,"name":..,"namespace":..,"warnings":[..]}],
//  "skipped":[..]} ("warnings" and "skipped" only when not empty), as the wire bytes.
std::string changeReplyText(const ChangeReply& r);

}  // namespace svclb
