// The framing of svclbd's API requests (docs/api.md), both sides of it: a
// JSON header line, and for a request that carries a manifest, the raw
// manifest bytes after it. Nothing escapes or parses a manifest as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace svclb::api {

// Largest request svclbd reads (header line, or manifest bytes).
constexpr size_t kMaxRequest = 16 << 20;

// {"op":OP,"source":SOURCE,"strict":STRICT,"manifestBytes":N}\n then the N
// bytes of `text` as they are. `nameSpace` (svcctl -n), when not empty, adds
// "namespace": the objects' namespace (kubectl's rule: one that names
// another is refused).
// `missingOk` (delete): objects that do not exist are named in the reply's
// "notFound", the others deleted. `dryRun` changes nothing; with
// `clientDryRun` (svcctl --dry-run=client) it adds "clientDryRun": the reply
// leaves out the API's warnings on a write (kubectl's client dry run sends none).
std::string manifestRequest(const std::string& op, const std::string& text,
                            const std::string& source, bool strict = true,
                            const std::string& nameSpace = "", bool missingOk = false,
                            bool dryRun = false, bool clientDryRun = false);
// One request for several manifests ({source, text} each), applied as one
// (all-or-nothing): the header adds "parts": [{"source": S, "bytes": N}...]
// and the texts follow one after the other.
std::string manifestsRequest(const std::string& op,
                             const std::vector<std::pair<std::string, std::string>>& parts,
                             bool strict, const std::string& nameSpace = "", bool dryRun = false,
                             bool clientDryRun = false);

// Reads one request from `fd`: a JSON object on one line (or ended by EOF);
// if it has "manifestBytes": N, exactly N bytes follow the newline and come
// back as the string "manifest" (a "manifest" inside the object, as older
// clients sent it, is taken as is). Waits at most timeoutMs for each read.
// The error's message is the answer for the client, in its words.
Status readRequest(int fd, nlohmann::json& req, int timeoutMs);

}  // namespace svclb::api
