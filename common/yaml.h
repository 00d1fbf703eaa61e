// YAML for svclb, read with libyaml (Debian libyaml-dev) as kubectl reads
// it: go-yaml, which kubectl uses, is a port of libyaml, so a syntax error
// has go-yaml's words and line. Also the one copy of YAML 1.1's plain
// scalar rules, used both to read (readYaml) and to write (svcctl -o yaml
// quotes what a reader would not take back as the same string).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace svclb::yaml {

// ---- Plain (unquoted) scalars, as go-yaml v2 resolves them -----------------

// The value a plain scalar stands for: null (~, null, empty), booleans
// (incl. yes/no/on/off), ints (decimal, 0x, 0o and legacy leading-0 octal,
// `_` separators), floats, .inf; anything else (and a number too long or too
// large to convert) is the string itself.
nlohmann::json resolvePlain(std::string_view s);

// True when a reader would not take `s`, written plain, back as the same
// string: whatever resolvePlain makes a non-string, and what go-yaml's
// encoder also quotes (y/n, 0b binary, base-60 numbers, .nan, timestamps).
bool plainResolvesToNonString(std::string_view s);

// ---- Reading ---------------------------------------------------------------

// One document per call, converted to JSON as sigs.k8s.io/yaml does for
// kubectl (scalars resolved by resolvePlain; quoted, block and !!str-tagged
// scalars stay strings; an empty document is null). `take` runs while the
// text is being read, so a caller can decode and drop each document at once.
using TakeDocument = std::function<void(nlohmann::json&&)>;

// Reads every document of `text`. On failure returns go-yaml's message
// after its "yaml: " prefix, e.g. "line 5: mapping values are not allowed
// in this context" (documents before the error may have been taken). A
// syntax error anywhere in the text comes before a duplicate or non-scalar
// key, which comes before the documents' own content (as when the whole
// text was read first).
std::optional<std::string> readYaml(std::string_view text, const TakeDocument& take);

}  // namespace svclb::yaml
