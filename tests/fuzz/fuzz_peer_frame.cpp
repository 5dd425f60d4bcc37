// libFuzzer target: bytes from a cluster peer, as a node's cluster port reads
// them. The input is parsed as a stream of frames (with a small payload limit,
// so the oversized path is reached), and the frames drive both sides of the
// handshake: a responder (what an unauthenticated peer talks to) and an
// initiator that has sent its HELLO. Nothing may crash, leak or read out of
// bounds; every REFUSE a side writes must parse as a frame again. Each payload
// is also read as a route update, which must survive a round trip and apply
// to a route table without breaking it, and as the control messages of
// membership (a member set, a join request and reply) and as a forwarded
// message and its acknowledgement, and as the frames of locks and of
// sessions moving between nodes (session_wire.h), which must survive a round
// trip too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/cluster_messages.h"
#include "cluster/forward.h"
#include "cluster/handshake.h"
#include "cluster/membership.h"
#include "cluster/remote_routes.h"
#include "cluster/session_wire.h"
#include "cluster/wire.h"

namespace {

using ferry::cluster::FrameView;
using ferry::cluster::Handshake;
using ferry::cluster::LocalIdentity;
using ferry::cluster::ParseFrame;
using ferry::cluster::RemoteRoutes;

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_peer_frame: %s\n", what);
  std::abort();
}

LocalIdentity Identity(const char* node) {
  LocalIdentity id;
  id.cluster = "ferry";
  id.node = node;
  id.cookie = "fuzz-cookie";
  id.incarnation = 42;
  return id;
}

// Every byte a handshake wrote must be whole frames.
void CheckOutput(const std::string& out) {
  std::span<const uint8_t> in(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  while (!in.empty()) {
    auto f = ParseFrame(in);
    if (!f.ok() || !f.value()) Fail("a handshake wrote bytes that are not a whole frame");
    in = in.subspan(f.value()->size());
  }
}

// Parses `payload` with `parse`; what parses must encode to what parses to
// the same again.
template <typename Parse, typename Encode>
void RoundTrip(std::span<const uint8_t> payload, Parse parse, Encode encode, const char* what) {
  auto first = parse(payload);
  if (!first.ok()) return;
  const std::string bytes = encode(*first);
  auto second = parse(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (!second.ok() || encode(*second) != bytes) Fail(what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  Handshake responder = Handshake::Accept(
      Identity("b@127.0.0.1"), [](std::string_view node) { return node == "removed@127.0.0.1"; });
  Handshake initiator = Handshake::Initiate(Identity("a@127.0.0.1"), "b@127.0.0.1", "control");
  CheckOutput(initiator.output());
  RemoteRoutes routes;
  while (!in.empty()) {
    auto f = ParseFrame(in, 4096);
    if (!f.ok() || !f.value()) break;
    const FrameView& frame = *f.value();
    auto update = ferry::cluster::ParseRouteUpdate(frame.payload);
    if (update.ok()) {
      const std::string again = ferry::cluster::EncodeRouteUpdate(*update);
      auto reparsed = ferry::cluster::ParseRouteUpdate(
          std::span(reinterpret_cast<const uint8_t*>(again.data()), again.size()));
      if (!reparsed.ok() || !(*reparsed == *update)) Fail("route update round trip changed it");
      ferry::cluster::RouteChanges changes;
      routes.Apply(*update, changes);
    }
    RoundTrip(
        frame.payload, ferry::cluster::ParseForward,
        [](const ferry::cluster::ForwardFrame& f) {
          return ferry::cluster::EncodeForwardHead(f.seq, f.plain, f.groups) +
                 ferry::cluster::EncodeForwardBody(f.message);
        },
        "forwarded message round trip changed it");
    RoundTrip(frame.payload, ferry::cluster::ParseForwardAcks, ferry::cluster::EncodeForwardAcks,
              "forward acknowledgement round trip changed it");
    RoundTrip(frame.payload, ferry::cluster::ParseJoinRequest, ferry::cluster::EncodeJoinRequest,
              "join request round trip changed it");
    RoundTrip(frame.payload, ferry::cluster::ParseJoinReply, ferry::cluster::EncodeJoinReply,
              "join reply round trip changed it");
    RoundTrip(
        frame.payload, [](auto p) { return ferry::cluster::Membership::Decode(p); },
        [](const ferry::cluster::Membership& m) { return m.Encode(); },
        "member set round trip changed it");
    namespace c = ferry::cluster;
    RoundTrip(frame.payload, c::ParseLock, c::EncodeLock, "lock round trip changed it");
    RoundTrip(frame.payload, c::ParseLockReply, c::EncodeLockReply,
              "lock reply round trip changed it");
    RoundTrip(frame.payload, c::ParseUnlock, c::EncodeUnlock, "unlock round trip changed it");
    RoundTrip(frame.payload, c::ParseSessionQuery, c::EncodeSessionQuery,
              "session query round trip changed it");
    RoundTrip(frame.payload, c::ParseSessionQueryReply, c::EncodeSessionQueryReply,
              "session query reply round trip changed it");
    RoundTrip(frame.payload, c::ParseTakeover, c::EncodeTakeover,
              "takeover round trip changed it");
    RoundTrip(frame.payload, c::ParseTakeoverSession, c::EncodeTakeoverSession,
              "session round trip changed it");
    RoundTrip(
        frame.payload, c::ParseTakeoverMessages,
        [](const c::TakeoverMessagesFrame& m) {
          return c::EncodeTakeoverMessages(m.req, m.client_id, m.flags, m.messages, SIZE_MAX)
              .front();
        },
        "session messages round trip changed it");
    RoundTrip(frame.payload, c::ParseTakeoverStep, c::EncodeTakeoverStep,
              "takeover step round trip changed it");
    RoundTrip(
        frame.payload, c::ParseSessionList,
        [](const std::vector<ferry::core::SessionBrief>& l) {
          return c::EncodeSessionList(l, SIZE_MAX).front();
        },
        "session list round trip changed it");
    responder.OnFrame(frame);
    initiator.OnFrame(frame);
    CheckOutput(responder.output());
    CheckOutput(initiator.output());
    responder.output().clear();
    initiator.output().clear();
    in = in.subspan(frame.size());
  }
  ferry::cluster::RouteChanges changes;
  routes.Purge("a@127.0.0.1", changes);
  return 0;
}
