// The frames cluster peers exchange over their links, and the fields inside.
//
// A frame is an 8-byte header and a payload:
//
//   0        4      5       6         8
//   +--------+------+-------+---------+-----------------+
//   | length | type | flags | channel | payload (length) |
//   +--------+------+-------+---------+-----------------+
//
// `length` is the payload's size (u32, big endian), bounded by the reader's
// maximum so that a peer cannot make a node buffer more than it allows.
// `flags` bit 0 marks a frame a receiver may skip when it does not know its
// type (so that a rolling upgrade can add types); the other bits are reserved
// and must be 0. `channel` (u16) separates streams that share a link.
//
// Inside a payload, fields follow each other without tags: integers big
// endian, strings and byte strings with a u16 length. FieldReader checks
// every length against what is left and fails once, for good, on the first
// field that does not fit.
//
// Everything here is sans-I/O and thread-compatible: any thread may use its
// own instances.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::cluster {

inline constexpr size_t kFrameHeaderSize = 8;
// Default bound on a frame's payload: a large batch of route deltas fits,
// a hostile length does not.
inline constexpr uint32_t kDefaultMaxPayload = 16u << 20;
inline constexpr uint8_t kFlagSkippable = 0x01;

// Frame types. The handshake's are in handshake.h's order of use.
enum class FrameType : uint8_t {
  kHello = 0x01,         // initiator: who it is, who it wants, its nonce
  kHelloAck = 0x02,      // responder: who it is, its nonce, its proof of the cookie
  kAuth = 0x03,          // initiator: its proof of the cookie
  kWelcome = 0x04,       // responder: the link is up
  kRefuse = 0x05,        // either side: why the link is refused, then the close
  kPing = 0x10,          // heartbeat: a u64 the peer echoes
  kPong = 0x11,          // the echo of a kPing's payload
  kClose = 0x12,         // the sender closes the link on purpose: a reason string
  kRoutes = 0x20,        // an origin's routes: snapshot or delta (remote_routes.h)
  kRoutesWanted = 0x21,  // no payload: the receiver sends its route snapshot again
  kMembers = 0x30,       // the sender's member set (Membership::Encode)
  kJoin = 0x31,          // a node asks to join (cluster_messages.h)
  kJoinReply = 0x32,     // accepted (with the new member set), redirected or refused
  kLeave = 0x33,         // the sender leaves the cluster: a reason string
  kForceLeave = 0x34,    // a node removed by force-leave: its name
  kForward = 0x40,       // a message for the receiver's subscribers (forward.h)
  kForwardAck = 0x41,    // forwards the receiver routed: their seqs (forward.h)
  kRetained = 0x42,      // a retained message set or deleted: a kForward with seq 0
  kStats = 0x50,         // the sender's own figures (u64 sessions), every second; skippable
  // Locks and sessions across nodes (session_wire.h).
  kLock = 0x60,               // grant me a lock on a resource
  kLockReply = 0x61,          // granted or not, with the token and holder
  kUnlock = 0x62,             // the sender lets go of a lock
  kSessionQuery = 0x63,       // do you hold the session of a client id?
  kSessionQueryReply = 0x64,  // whether it does, connected or not, since when
  kTakeover = 0x65,           // give me that session (or end it: clean start)
  kTakeoverSession = 0x66,    // the session, without its messages
  kTakeoverMessages = 0x67,   // its messages, in chunks
  kTakeoverEnd = 0x68,        // the client is connected here: hand over the rest
  kTakeoverDone = 0x69,       // the session is stored here: delete your copy
  kSessionList = 0x6A,        // the sender's sessions, when a control link comes up
  kAdminCall = 0x70,          // run an admin command about clients here
  kAdminReply = 0x71,         // its result
};

// A whole frame, its payload borrowed from the buffer it was parsed from.
struct FrameView {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint16_t channel = 0;
  std::span<const uint8_t> payload;

  bool skippable() const { return (flags & kFlagSkippable) != 0; }
  size_t size() const { return kFrameHeaderSize + payload.size(); }
};

// Parses the frame at the start of `in`. Returns nullopt while `in` holds
// less than a whole frame; a Corruption status for a length above
// `max_payload` or reserved flag bits set (the link is then closed).
Result<std::optional<FrameView>> ParseFrame(std::span<const uint8_t> in,
                                            uint32_t max_payload = kDefaultMaxPayload);

// Appends a frame with `payload` to `out`.
// REQUIRES: payload.size() fits in a u32.
void AppendFrame(std::string& out, FrameType type, std::string_view payload, uint16_t channel = 0,
                 uint8_t flags = 0);
// The same with a payload in two parts, `head` then `body` (a forwarded
// message's sequence number before the body shared by every peer).
void AppendFrame(std::string& out, FrameType type, std::string_view head, std::string_view body,
                 uint16_t channel, uint8_t flags);

// Appends fields to a payload.
class FieldWriter {
 public:
  explicit FieldWriter(std::string& out) : out_(out) {}
  void U8(uint8_t v);
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  // u16 length, then the bytes. REQUIRES: s.size() <= 65535.
  void Str(std::string_view s);
  // u32 length, then the bytes (a message payload). REQUIRES: fits in a u32.
  void Blob(std::string_view s);
  // The bytes alone: a field of a size both sides know.
  void Fixed(std::span<const uint8_t> bytes);

 private:
  std::string& out_;
};

// Reads fields from a payload. After the first failure every read fails and
// leaves its output unchanged; status() says which field did not fit.
class FieldReader {
 public:
  explicit FieldReader(std::span<const uint8_t> in) : in_(in) {}
  bool U8(uint8_t& v, const char* what);
  bool U16(uint16_t& v, const char* what);
  bool U32(uint32_t& v, const char* what);
  bool U64(uint64_t& v, const char* what);
  bool Str(std::string& s, const char* what);
  bool Blob(std::string& s, const char* what);
  bool Fixed(std::span<uint8_t> out, const char* what);
  // Succeeds if every byte was read; a payload with trailing bytes is as
  // malformed as a short one.
  bool End();

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

 private:
  bool Take(size_t n, const char* what, std::span<const uint8_t>& out);

  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  Status status_;
};

}  // namespace ferry::cluster
