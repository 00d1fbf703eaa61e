// libFuzzer target over the manifest path of svcctl apply: bytes ->
// parseManifests -> validate -> JSON round trip -> Store::apply ->
// frontends() -> persistence round trip. Built and run by
// run_manifest_fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined).
//
// Besides "no crash, no sanitizer report, no hang", it checks the model's
// own promises on every input:
//   - an object that validates survives toJson/fromJson unchanged;
//   - Store::apply is all-or-nothing: on error the store is unchanged;
//   - a store survives its own JSON (what svclbd persists and reloads) with
//     the same frontends.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "model/model.h"

namespace {

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "manifest_fuzz: invariant broken: %s\n%s\n", what, detail.c_str());
  std::abort();
}

svclb::Store baseline() {
  svclb::Store st;
  auto objs = svclb::parseManifests(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}, {name: dns, port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: default}
subsets: [{addresses: [{ip: 10.244.1.11}], ports: [{name: http, port: 8080}, {name: dns, port: 53, protocol: UDP}]}]
)",
                                    "baseline.yaml");
  if (!objs.ok() || !st.apply(*objs).ok()) broken("baseline manifest", "");
  return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto objs = svclb::parseManifests(text, "fuzz.yaml");
  if (!objs.ok()) {
    if (objs.error().message.empty()) broken("parse error without a message", text);
    return 0;
  }
  bool allValid = true;
  for (const auto& o : *objs) {
    svclb::Status st = svclb::validate(o);
    if (!st.ok()) {
      if (st.error().message.empty()) broken("validation error without a message", text);
      allValid = false;
      continue;
    }
    auto j = svclb::toJson(o);
    auto back = svclb::fromJson(j);
    if (!back.ok())
      broken("a valid object does not survive fromJson(toJson())",
             back.error().message + "\n" + j.dump(2));
    if (!(*back == o))
      broken("toJson/fromJson changed a valid object",
             j.dump(2) + "\nvs\n" + svclb::toJson(*back).dump(2));
  }
  (void)allValid;

  svclb::Store store = baseline();
  const auto before = store.toJson();
  auto r = store.apply(*objs);
  if (!r.ok()) {
    if (r.error().message.empty()) broken("apply error without a message", text);
    if (store.toJson() != before) broken("a failed apply changed the store", r.error().message);
    return 0;
  }
  const auto fronts = store.frontends();
  const auto saved = store.toJson();
  auto reloaded = svclb::Store::fromJson(saved);
  if (!reloaded.ok())
    broken("the store does not reload from its own JSON",
           reloaded.error().message + "\n" + saved.dump(2));
  if (reloaded->toJson() != saved)
    broken("store JSON is not stable across a reload", saved.dump(2));
  if (reloaded->frontends() != fronts) broken("frontends changed across a reload", saved.dump(2));
  // Deleting everything that was applied leaves the baseline's objects.
  (void)store.removeAll(*objs);
  return 0;
}
