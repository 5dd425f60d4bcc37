#include "cluster/session_wire.h"

#include <memory>

#include "cluster/forward.h"
#include "cluster/wire.h"

namespace ferry::cluster {
namespace {

constexpr uint8_t kNoLocal = 0x01;
constexpr uint8_t kRetainAsPublished = 0x02;
// kTakeoverSession's "found".
constexpr uint8_t kSessionFound = 1;
constexpr uint8_t kTakeoverRefused = 2;

// A u8 that must be 0 or 1.
bool ReadBool(FieldReader& r, bool& v, const char* what, Status& bad) {
  uint8_t b = 0;
  if (!r.U8(b, what)) return false;
  if (b > 1) {
    bad = Status::Corruption(std::string(what) + ": " + std::to_string(b) + " is not 0 or 1");
    return false;
  }
  v = b != 0;
  return true;
}

template <typename T>
Result<T> Finish(FieldReader& r, T value, const Status& bad) {
  if (!bad.ok()) return bad;
  if (!r.End()) return r.status();
  return value;
}

void WriteStoredMessage(FieldWriter& w, const core::StoredMessage& m) {
  w.U64(m.seq);
  w.U8(m.qos);
  w.U16(m.packet_id);
  w.U8(static_cast<uint8_t>(m.state));
  WriteMessageBody(w, *m.message);
}

Status ReadStoredMessage(FieldReader& r, core::StoredMessage& m) {
  uint8_t state = 0;
  r.U64(m.seq, "message seq");
  r.U8(m.qos, "message qos");
  r.U16(m.packet_id, "packet id");
  r.U8(state, "message state");
  if (!r.ok()) return r.status();
  if (m.qos > 2) return Status::Corruption("delivery QoS " + std::to_string(m.qos));
  if (state > 2) return Status::Corruption("message state " + std::to_string(state));
  m.state = static_cast<core::StoredMessageState>(state);
  auto msg = std::make_shared<core::Message>();
  if (Status st = ReadMessageBody(r, *msg); !st.ok()) return st;
  m.message = std::move(msg);
  return Status::Ok();
}

// Splits `items` into payloads of about `max_bytes`: each starts with
// `head(last)` and a u32 count.
template <typename Item, typename Head, typename Write>
std::vector<std::string> Chunk(std::span<const Item> items, size_t max_bytes, Head head,
                               Write write) {
  std::vector<std::string> out;
  size_t i = 0;
  do {
    std::string body;
    FieldWriter bw(body);
    uint32_t n = 0;
    while (i < items.size() && (n == 0 || body.size() < max_bytes)) {
      write(bw, items[i]);
      ++i;
      ++n;
    }
    std::string payload = head(i == items.size());
    FieldWriter w(payload);
    w.U32(n);
    payload += body;
    out.push_back(std::move(payload));
  } while (i < items.size());
  return out;
}

}  // namespace

std::string EncodeAdminCall(const AdminCallFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.U64(f.cursor);
  w.U32(f.max_rows);
  w.U16(static_cast<uint16_t>(f.words.size()));
  for (const std::string& word : f.words) w.Str(word);
  return out;
}

Result<AdminCallFrame> ParseAdminCall(std::span<const uint8_t> payload) {
  AdminCallFrame f;
  FieldReader r(payload);
  uint16_t n = 0;
  r.U64(f.req, "request");
  r.U64(f.cursor, "cursor");
  r.U32(f.max_rows, "max rows");
  r.U16(n, "word count");
  for (uint16_t i = 0; i < n && r.ok(); ++i) {
    std::string word;
    if (r.Str(word, "word")) f.words.push_back(std::move(word));
  }
  return Finish(r, std::move(f), Status::Ok());
}

std::string EncodeAdminReply(const AdminReplyFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.Str(f.error);
  w.Str(f.message.size() > 65535 ? f.message.substr(0, 65535) : f.message);
  w.Blob(f.json);
  w.U64(f.next);
  return out;
}

Result<AdminReplyFrame> ParseAdminReply(std::span<const uint8_t> payload) {
  AdminReplyFrame f;
  FieldReader r(payload);
  r.U64(f.req, "request");
  r.Str(f.error, "error");
  r.Str(f.message, "message");
  r.Blob(f.json, "json");
  r.U64(f.next, "next cursor");
  return Finish(r, std::move(f), Status::Ok());
}

std::string EncodeLock(const LockFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.Str(f.resource);
  return out;
}

Result<LockFrame> ParseLock(std::span<const uint8_t> payload) {
  LockFrame f;
  FieldReader r(payload);
  r.U64(f.req, "request");
  r.Str(f.resource, "resource");
  return Finish(r, std::move(f), Status::Ok());
}

std::string EncodeLockReply(const LockReplyFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.U8(f.granted ? 1 : 0);
  w.U64(f.token);
  w.Str(f.holder);
  return out;
}

Result<LockReplyFrame> ParseLockReply(std::span<const uint8_t> payload) {
  LockReplyFrame f;
  FieldReader r(payload);
  Status bad;
  r.U64(f.req, "request");
  ReadBool(r, f.granted, "granted", bad);
  r.U64(f.token, "token");
  r.Str(f.holder, "holder");
  return Finish(r, std::move(f), bad);
}

std::string EncodeUnlock(const std::string& resource) {
  std::string out;
  FieldWriter(out).Str(resource);
  return out;
}

Result<std::string> ParseUnlock(std::span<const uint8_t> payload) {
  std::string resource;
  FieldReader r(payload);
  r.Str(resource, "resource");
  return Finish(r, std::move(resource), Status::Ok());
}

std::string EncodeSessionQuery(const SessionQueryFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.Str(f.client_id);
  return out;
}

Result<SessionQueryFrame> ParseSessionQuery(std::span<const uint8_t> payload) {
  SessionQueryFrame f;
  FieldReader r(payload);
  r.U64(f.req, "request");
  r.Str(f.client_id, "client id");
  return Finish(r, std::move(f), Status::Ok());
}

std::string EncodeSessionQueryReply(const SessionQueryReplyFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.U8(f.found ? 1 : 0);
  w.U8(f.connected ? 1 : 0);
  w.U64(f.connected_at_ms);
  return out;
}

Result<SessionQueryReplyFrame> ParseSessionQueryReply(std::span<const uint8_t> payload) {
  SessionQueryReplyFrame f;
  FieldReader r(payload);
  Status bad;
  r.U64(f.req, "request");
  ReadBool(r, f.found, "found", bad) && ReadBool(r, f.connected, "connected", bad);
  r.U64(f.connected_at_ms, "connected at");
  return Finish(r, std::move(f), bad);
}

std::string EncodeTakeover(const TakeoverFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.Str(f.client_id);
  w.U8(f.clean_start ? 1 : 0);
  w.U64(f.token);
  return out;
}

Result<TakeoverFrame> ParseTakeover(std::span<const uint8_t> payload) {
  TakeoverFrame f;
  FieldReader r(payload);
  Status bad;
  r.U64(f.req, "request");
  r.Str(f.client_id, "client id");
  ReadBool(r, f.clean_start, "clean start", bad);
  r.U64(f.token, "token");
  return Finish(r, std::move(f), bad);
}

std::string EncodeTakeoverSession(const TakeoverSessionFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.U8(f.session ? kSessionFound : f.refused ? kTakeoverRefused : 0);
  if (!f.session) return out;
  const core::StoredSession& s = *f.session;
  w.Str(s.client_id);
  w.U32(s.expiry_interval_s);
  w.U64(s.disconnected_at_ms);
  w.U32(static_cast<uint32_t>(s.subscriptions.size()));
  for (const core::StoredSubscription& sub : s.subscriptions) {
    w.Str(sub.filter);
    w.U8(sub.qos);
    w.U8((sub.no_local ? kNoLocal : 0) | (sub.retain_as_published ? kRetainAsPublished : 0));
    w.U8(sub.retain_handling);
    w.U32(sub.subscription_id);
  }
  w.U32(static_cast<uint32_t>(s.qos2_inbound.size()));
  for (uint16_t id : s.qos2_inbound) w.U16(id);
  return out;
}

Result<TakeoverSessionFrame> ParseTakeoverSession(std::span<const uint8_t> payload) {
  TakeoverSessionFrame f;
  FieldReader r(payload);
  Status bad;
  uint8_t found = 0;
  r.U64(f.req, "request");
  if (r.U8(found, "found") && found > kTakeoverRefused) {
    bad = Status::Corruption("found: " + std::to_string(found) + " is not 0, 1 or 2");
  }
  f.refused = found == kTakeoverRefused;
  if (found != kSessionFound || !bad.ok()) return Finish(r, std::move(f), bad);
  core::StoredSession& s = f.session.emplace();
  uint32_t n = 0;
  r.Str(s.client_id, "client id");
  r.U32(s.expiry_interval_s, "expiry");
  r.U64(s.disconnected_at_ms, "disconnected at");
  r.U32(n, "subscription count");
  for (uint32_t i = 0; i < n && r.ok() && bad.ok(); ++i) {
    core::StoredSubscription sub;
    uint8_t flags = 0;
    r.Str(sub.filter, "filter");
    r.U8(sub.qos, "subscription qos");
    r.U8(flags, "subscription flags");
    r.U8(sub.retain_handling, "retain handling");
    r.U32(sub.subscription_id, "subscription id");
    if (!r.ok()) break;
    if (sub.qos > 2 || sub.retain_handling > 2 || (flags & ~(kNoLocal | kRetainAsPublished)) != 0 ||
        sub.filter.empty()) {
      bad = Status::Corruption("subscription '" + sub.filter + "': bad options");
      break;
    }
    sub.no_local = (flags & kNoLocal) != 0;
    sub.retain_as_published = (flags & kRetainAsPublished) != 0;
    s.subscriptions.push_back(std::move(sub));
  }
  r.U32(n, "QoS 2 id count");
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    uint16_t id = 0;
    if (r.U16(id, "QoS 2 id")) s.qos2_inbound.push_back(id);
  }
  if (s.client_id.empty() && bad.ok()) bad = Status::Corruption("empty client id");
  return Finish(r, std::move(f), bad);
}

std::vector<std::string> EncodeTakeoverMessages(uint64_t req, const std::string& client_id,
                                                uint8_t flags,
                                                std::span<const core::StoredMessage> messages,
                                                size_t max_bytes) {
  return Chunk(
      messages, max_bytes,
      [&](bool last) {
        std::string head;
        FieldWriter w(head);
        w.U64(req);
        w.Str(client_id);
        w.U8(static_cast<uint8_t>(flags | (last ? kMessagesLast : 0)));
        return head;
      },
      WriteStoredMessage);
}

Result<TakeoverMessagesFrame> ParseTakeoverMessages(std::span<const uint8_t> payload) {
  TakeoverMessagesFrame f;
  FieldReader r(payload);
  Status bad;
  uint32_t n = 0;
  r.U64(f.req, "request");
  r.Str(f.client_id, "client id");
  r.U8(f.flags, "flags");
  r.U32(n, "message count");
  if (r.ok() && (f.flags & ~(kMessagesLast | kMessagesHanded | kMessagesFinal)) != 0) {
    bad = Status::Corruption("reserved message flags");
  }
  for (uint32_t i = 0; i < n && r.ok() && bad.ok(); ++i) {
    core::StoredMessage m;
    if (Status st = ReadStoredMessage(r, m); !st.ok()) {
      if (r.ok()) bad = st;
      break;
    }
    f.messages.push_back(std::move(m));
  }
  return Finish(r, std::move(f), bad);
}

std::string EncodeTakeoverStep(const TakeoverStepFrame& f) {
  std::string out;
  FieldWriter w(out);
  w.U64(f.req);
  w.Str(f.client_id);
  w.U8(f.moved ? 1 : 0);
  return out;
}

Result<TakeoverStepFrame> ParseTakeoverStep(std::span<const uint8_t> payload) {
  TakeoverStepFrame f;
  FieldReader r(payload);
  Status bad;
  r.U64(f.req, "request");
  r.Str(f.client_id, "client id");
  ReadBool(r, f.moved, "moved", bad);
  return Finish(r, std::move(f), bad);
}

std::vector<std::string> EncodeSessionList(std::span<const core::SessionBrief> sessions,
                                           size_t max_bytes) {
  return Chunk(
      sessions, max_bytes, [](bool) { return std::string(); },
      [](FieldWriter& w, const core::SessionBrief& s) {
        w.Str(s.client_id);
        w.U8(s.connected ? 1 : 0);
        w.U64(s.connected_at_ms);
      });
}

Result<std::vector<core::SessionBrief>> ParseSessionList(std::span<const uint8_t> payload) {
  std::vector<core::SessionBrief> out;
  FieldReader r(payload);
  Status bad;
  uint32_t n = 0;
  r.U32(n, "session count");
  for (uint32_t i = 0; i < n && r.ok() && bad.ok(); ++i) {
    core::SessionBrief s;
    r.Str(s.client_id, "client id");
    ReadBool(r, s.connected, "connected", bad);
    r.U64(s.connected_at_ms, "connected at");
    if (r.ok() && bad.ok()) out.push_back(std::move(s));
  }
  return Finish(r, std::move(out), bad);
}

}  // namespace ferry::cluster
