// The payloads of the frames that move sessions between nodes and lock
// resources (cluster_sessions.cpp). Fields as in wire.h; every parse treats
// its bytes as untrusted and fails with Corruption naming the field.
//
//   kLock              u64 req, str resource            (req 0: a renewal)
//   kLockReply         u64 req, u8 granted, u64 token, str holder
//   kUnlock            str resource
//   kSessionQuery      u64 req, str client id
//   kSessionQueryReply u64 req, u8 found, u8 connected, u64 connected_at_ms
//   kTakeover          u64 req, str client id, u8 clean_start, u64 token
//   kTakeoverSession   u64 req, u8 found (0 no session, 1 found, 2 refused: the
//                      request's fencing token was older than one served);
//                      if found: str client id, u32 expiry,
//                      u64 disconnected_at_ms, u32 n x subscription
//                      (str filter, u8 qos, u8 flags 0x01 no local 0x02 retain
//                      as published, u8 retain handling, u32 subscription id),
//                      u32 n x u16 QoS 2 packet id received
//   kTakeoverMessages  u64 req, str client id, u8 flags (0x01 last chunk of a
//                      batch, 0x02 handed over after the export, 0x04 the
//                      final hand-off), u32 n x message (u64 seq, u8 qos,
//                      u16 packet id, u8 state 0..2, then the message body of
//                      forward.h)
//   kTakeoverEnd       u64 req, str client id
//   kTakeoverDone      u64 req, str client id, u8 moved
//   kSessionList       u32 n x (str client id, u8 connected, u64 connected_at_ms)
//   kAdminCall         u64 req, u64 cursor, u32 max rows (0: a command with a
//                      value; else a page of a listing, `cursor` 0 starting
//                      it), u16 n x str word
//   kAdminReply        u64 req, str error kind ("" when it succeeded:
//                      core::AdminErrorKind), str message, blob JSON (the
//                      value, or a page's rows), u64 next cursor (0: the last
//                      page)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/broker.h"
#include "core/durable_store.h"
#include "core/status.h"

namespace ferry::cluster {

struct LockFrame {
  uint64_t req = 0;
  std::string resource;
};
struct LockReplyFrame {
  uint64_t req = 0;
  bool granted = false;
  uint64_t token = 0;
  std::string holder;
};
struct SessionQueryFrame {
  uint64_t req = 0;
  std::string client_id;
};
struct SessionQueryReplyFrame {
  uint64_t req = 0;
  bool found = false;
  bool connected = false;
  uint64_t connected_at_ms = 0;
};
struct TakeoverFrame {
  uint64_t req = 0;
  std::string client_id;
  bool clean_start = false;
  uint64_t token = 0;
};
// kTakeoverSession: the session without its messages (they follow).
struct TakeoverSessionFrame {
  uint64_t req = 0;
  std::optional<core::StoredSession> session;
  bool refused = false;  // without a session: the request's token was too old
};
inline constexpr uint8_t kMessagesLast = 0x01;
inline constexpr uint8_t kMessagesHanded = 0x02;
inline constexpr uint8_t kMessagesFinal = 0x04;
struct TakeoverMessagesFrame {
  uint64_t req = 0;
  std::string client_id;
  uint8_t flags = 0;
  std::vector<core::StoredMessage> messages;
};
// kTakeoverEnd (moved unused) and kTakeoverDone.
struct TakeoverStepFrame {
  uint64_t req = 0;
  std::string client_id;
  bool moved = false;
};

struct AdminCallFrame {
  uint64_t req = 0;
  uint64_t cursor = 0;
  uint32_t max_rows = 0;
  std::vector<std::string> words;
};
struct AdminReplyFrame {
  uint64_t req = 0;
  std::string error;  // "" for success
  std::string message;
  std::string json;
  uint64_t next = 0;
};

std::string EncodeAdminCall(const AdminCallFrame& f);
Result<AdminCallFrame> ParseAdminCall(std::span<const uint8_t> payload);
std::string EncodeAdminReply(const AdminReplyFrame& f);
Result<AdminReplyFrame> ParseAdminReply(std::span<const uint8_t> payload);

std::string EncodeLock(const LockFrame& f);
Result<LockFrame> ParseLock(std::span<const uint8_t> payload);
std::string EncodeLockReply(const LockReplyFrame& f);
Result<LockReplyFrame> ParseLockReply(std::span<const uint8_t> payload);
std::string EncodeUnlock(const std::string& resource);
Result<std::string> ParseUnlock(std::span<const uint8_t> payload);
std::string EncodeSessionQuery(const SessionQueryFrame& f);
Result<SessionQueryFrame> ParseSessionQuery(std::span<const uint8_t> payload);
std::string EncodeSessionQueryReply(const SessionQueryReplyFrame& f);
Result<SessionQueryReplyFrame> ParseSessionQueryReply(std::span<const uint8_t> payload);
std::string EncodeTakeover(const TakeoverFrame& f);
Result<TakeoverFrame> ParseTakeover(std::span<const uint8_t> payload);
// REQUIRES: the session's messages are left out (they go in
// kTakeoverMessages); they are ignored if present.
std::string EncodeTakeoverSession(const TakeoverSessionFrame& f);
Result<TakeoverSessionFrame> ParseTakeoverSession(std::span<const uint8_t> payload);
// `messages` in frames of at most about `max_bytes` each (at least one
// message per frame, and one empty frame when there is none); the last
// carries kMessagesLast with `flags`.
std::vector<std::string> EncodeTakeoverMessages(uint64_t req, const std::string& client_id,
                                                uint8_t flags,
                                                std::span<const core::StoredMessage> messages,
                                                size_t max_bytes);
Result<TakeoverMessagesFrame> ParseTakeoverMessages(std::span<const uint8_t> payload);
std::string EncodeTakeoverStep(const TakeoverStepFrame& f);
Result<TakeoverStepFrame> ParseTakeoverStep(std::span<const uint8_t> payload);
// Sessions in frames of at most about `max_bytes` each (one empty frame
// when there is none).
std::vector<std::string> EncodeSessionList(std::span<const core::SessionBrief> sessions,
                                           size_t max_bytes);
Result<std::vector<core::SessionBrief>> ParseSessionList(std::span<const uint8_t> payload);

}  // namespace ferry::cluster
