// kubectl's JSONPath templates (-o jsonpath=..., -o custom-columns=...), the
// subset of k8s.io/client-go/util/jsonpath that kubectl users write:
//   text outside braces, printed as it is
//   {.a.b} {$.a} {@.a}       fields (a key with dots: {.a.b\.c} or {['b.c']})
//   {..name}                  recursive descent
//   {.a[0]} {.a[-1]} {.a[1:3]} {.a[::2]} {.a[*]} {.a.*}
//   {.a[?(@.k=="v")]}         filters: == != < > <= >= on strings/numbers/bools;
//                             {.a[?(@.k)]} = the key exists
//   {range .items[*]}...{end} {"\t"} {'\n'}
// Several results of one expression are joined by a space; objects and lists
// are printed as compact JSON; a missing key prints nothing (kubectl's
// --allow-missing-template-keys default).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/format.h"
#include "common/result.h"

namespace svclb::cli {

class JsonPath {
 public:
  static Result<JsonPath> parse(const std::string& tmpl);
  // The template applied to `data`; an error (an index out of range) names why.
  Result<std::string> execute(const Json& data) const;
  // The results of the template's expressions, as values (--sort-by) or
  // each as text (custom-columns).
  Result<std::vector<Json>> results(const Json& data) const;
  Result<std::vector<std::string>> values(const Json& data) const;

  struct Node;  // parsed template (jsonpath.cpp)

 private:
  std::shared_ptr<const std::vector<Node>> nodes_;
};

}  // namespace svclb::cli
