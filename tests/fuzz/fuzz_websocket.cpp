// libFuzzer target for the WebSocket upgrade parser and frame reader.
//
// The input is used twice: as an upgrade request (the parser must give a
// decision no longer than the input, and a 101 answer only with a
// Sec-WebSocket-Accept), and as a stream of client frames, fed whole and
// then split at a point the input chooses: both feedings must give the same
// payload bytes, the same answers and the same outcome.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/websocket.h"

namespace {

using ferry::core::ParseUpgradeRequest;
using ferry::core::UpgradeResult;
using ferry::core::WebSocketReader;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_websocket: %s\n", what);
  std::abort();
}

struct Outcome {
  std::string data, reply;
  bool ok = true;
  bool closed = false;
};

Outcome Feed(std::string_view a, std::string_view b) {
  WebSocketReader r;
  Outcome o;
  o.ok = r.Feed(a, &o.data, &o.reply).ok();
  if (o.ok) o.ok = r.Feed(b, &o.data, &o.reply).ok();
  o.closed = r.closed();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);

  UpgradeResult u = ParseUpgradeRequest(in, "/mqtt");
  if (u.consumed > size) Fail("upgrade consumed more than the input");
  if (u.kind == UpgradeResult::Kind::kAccept &&
      u.response.find("Sec-WebSocket-Accept: ") == std::string::npos) {
    Fail("101 without Sec-WebSocket-Accept");
  }
  if (u.kind == UpgradeResult::Kind::kReject && u.error.empty()) Fail("refusal without a reason");

  const size_t split = size == 0 ? 0 : data[0] % (size + 1);
  Outcome whole = Feed(in, {});
  Outcome parts = Feed(in.substr(0, split), in.substr(split));
  if (whole.ok != parts.ok || whole.data != parts.data || whole.reply != parts.reply ||
      whole.closed != parts.closed) {
    Fail("splitting the input changed the result");
  }
  return 0;
}
