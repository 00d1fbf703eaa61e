// The API's request framing (docs/api.md): manifestRequest writes a
// JSON header line and the raw manifest; svclbd's readRequest reads it back.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/api.h"

namespace svclb::api {
namespace {

// Sends `bytes` on one end of a socket pair (then closes it unless `keepOpen`)
// and reads a request on the other.
std::string roundTrip(const std::string& bytes, nlohmann::json& req, bool keepOpen = false,
                      int timeoutMs = 2000) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread writer([&] {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = write(sv[0], bytes.data() + off, bytes.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    if (!keepOpen) close(sv[0]);
  });
  Status st = readRequest(sv[1], req, timeoutMs);
  std::string err = st ? "" : st.error().message;
  writer.join();
  if (keepOpen) close(sv[0]);
  close(sv[1]);
  return err;
}

TEST(ApiFraming, ManifestArrivesByteForByte) {
  // Newlines, quotes, backslashes, control bytes, UTF-8 and invalid UTF-8:
  // the manifest is never escaped, so nothing may change.
  std::string text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"web\\\\\"\n  # café\n";
  text += std::string("\x01\x7f\xff\xfe\n", 5);
  for (int i = 0; i < 20000; ++i) text += "# line " + std::to_string(i) + "\n";  // > one read
  nlohmann::json req;
  ASSERT_EQ(roundTrip(manifestRequest("apply", text, "dir/web.yaml", false) + "\n", req), "");
  EXPECT_EQ(req.value("op", ""), "apply");
  EXPECT_EQ(req.value("source", ""), "dir/web.yaml");
  EXPECT_EQ(req.value("strict", true), false);
  ASSERT_TRUE(req.contains("manifest"));
  EXPECT_EQ(req["manifest"].get<std::string>(), text);
  EXPECT_FALSE(req.contains("manifestBytes"));
}

TEST(ApiFraming, EmptyManifestAndPlainJsonLines) {
  nlohmann::json req;
  ASSERT_EQ(roundTrip(manifestRequest("delete", "", "-") + "\n", req), "");
  EXPECT_EQ(req["manifest"].get<std::string>(), "");
  EXPECT_EQ(req.value("strict", false), true);
  req = nullptr;
  ASSERT_EQ(roundTrip("{\"op\":\"status\"}\n", req), "");
  EXPECT_EQ(req, (nlohmann::json{{"op", "status"}}));
  req = nullptr;  // the manifest inside the JSON object (older clients)
  ASSERT_EQ(roundTrip("{\"op\":\"apply\",\"manifest\":\"a: b\\n\",\"source\":\"-\"}\n", req), "");
  EXPECT_EQ(req["manifest"].get<std::string>(), "a: b\n");
  req = nullptr;  // a last line without its newline, then EOF
  ASSERT_EQ(roundTrip("{\"op\":\"status\"}", req), "");
  EXPECT_EQ(req.value("op", ""), "status");
}

TEST(ApiFraming, BadRequestsGetAnError) {
  nlohmann::json req;
  EXPECT_EQ(roundTrip("[1,2]\n", req), "error: request is not a JSON object");
  EXPECT_EQ(roundTrip("{\"op\":\"apply\",\"manifestBytes\":\"ten\"}\nxx", req),
            "error: manifestBytes is not a byte count");
  EXPECT_EQ(roundTrip("{\"op\":\"apply\",\"manifestBytes\":100}\nshort", req),
            "error: incomplete request (the connection closed)");
  EXPECT_EQ(
      roundTrip("{\"op\":\"apply\",\"manifestBytes\":100}\nshort", req, /*keepOpen=*/true, 300),
      "error: incomplete request (nothing more for 1 s)");
  const std::string tooBig = roundTrip("{\"op\":\"apply\",\"manifestBytes\":999999999999}\n", req);
  EXPECT_NE(tooBig.find("larger than svclbd's limit of 16 MiB"), std::string::npos) << tooBig;
  EXPECT_EQ(roundTrip("", req), "error: incomplete request (the connection closed)");
}

}  // namespace
}  // namespace svclb::api
