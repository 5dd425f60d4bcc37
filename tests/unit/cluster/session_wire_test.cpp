// The frames of locks and of sessions moving between nodes: round trips,
// chunking, and the fields a peer may get wrong.
#include "cluster/session_wire.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ferry::cluster {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

core::StoredMessage Stored(uint64_t seq, std::string payload, uint8_t qos = 1,
                           uint16_t packet_id = 0,
                           core::StoredMessageState state = core::StoredMessageState::kQueued) {
  auto m = std::make_shared<core::Message>();
  m->topic = "t/" + std::to_string(seq);
  m->payload = std::move(payload);
  m->qos = qos;
  m->received_at_ms = 1'800'000'000'000 + seq;
  m->origin_client = "pub";
  m->props.user_properties = {{"k", "v"}};
  return core::StoredMessage{seq, qos, packet_id, state, std::move(m)};
}

TEST(SessionWire, LocksAndQueriesRoundTrip) {
  auto lock = ParseLock(Bytes(EncodeLock(LockFrame{7, "client:c1"})));
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ(lock->req, 7u);
  EXPECT_EQ(lock->resource, "client:c1");
  auto reply = ParseLockReply(Bytes(EncodeLockReply(LockReplyFrame{7, true, 99, "b@h"})));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->granted);
  EXPECT_EQ(reply->token, 99u);
  EXPECT_EQ(reply->holder, "b@h");
  auto q = ParseSessionQueryReply(
      Bytes(EncodeSessionQueryReply(SessionQueryReplyFrame{3, true, false, 12345})));
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->found);
  EXPECT_FALSE(q->connected);
  EXPECT_EQ(q->connected_at_ms, 12345u);
  auto t = ParseTakeover(Bytes(EncodeTakeover(TakeoverFrame{4, "c1", true, 77})));
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->clean_start);
  EXPECT_EQ(t->token, 77u);
}

TEST(SessionWire, ASessionAndItsMessagesRoundTrip) {
  core::StoredSession s;
  s.client_id = "c1";
  s.expiry_interval_s = 3600;
  s.disconnected_at_ms = 1'800'000'000'000;
  s.subscriptions = {{"a/#", 1, true, false, 0, 0}, {"$share/g/b", 2, false, true, 2, 9}};
  s.qos2_inbound = {4, 9};
  auto parsed = ParseTakeoverSession(Bytes(EncodeTakeoverSession(TakeoverSessionFrame{5, s})));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->session.has_value());
  EXPECT_EQ(parsed->session->client_id, "c1");
  EXPECT_EQ(parsed->session->expiry_interval_s, 3600u);
  EXPECT_EQ(parsed->session->subscriptions, s.subscriptions);
  EXPECT_EQ(parsed->session->qos2_inbound, s.qos2_inbound);

  auto none = ParseTakeoverSession(Bytes(EncodeTakeoverSession(TakeoverSessionFrame{5, {}})));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->session.has_value());
  EXPECT_FALSE(none->refused);
  auto refused =
      ParseTakeoverSession(Bytes(EncodeTakeoverSession(TakeoverSessionFrame{5, {}, true})));
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->session.has_value());
  EXPECT_TRUE(refused->refused);
  std::string three = EncodeTakeoverSession(TakeoverSessionFrame{5, {}});
  three.back() = 3;
  EXPECT_FALSE(ParseTakeoverSession(Bytes(three)).ok());

  std::vector<core::StoredMessage> messages = {
      Stored(1, "inflight", 2, 10, core::StoredMessageState::kReleased), Stored(2, "queued")};
  auto frames = EncodeTakeoverMessages(5, "c1", kMessagesHanded, messages, 1 << 20);
  ASSERT_EQ(frames.size(), 1u);
  auto m = ParseTakeoverMessages(Bytes(frames[0]));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->flags, kMessagesHanded | kMessagesLast);
  ASSERT_EQ(m->messages.size(), 2u);
  EXPECT_EQ(m->messages[0].seq, 1u);
  EXPECT_EQ(m->messages[0].packet_id, 10u);
  EXPECT_EQ(m->messages[0].state, core::StoredMessageState::kReleased);
  EXPECT_EQ(m->messages[0].message->payload, "inflight");
  EXPECT_EQ(m->messages[1].message->topic, "t/2");
  EXPECT_EQ(m->messages[1].message->received_at_ms, 1'800'000'000'002u);
  EXPECT_EQ(m->messages[1].message->props.user_properties.size(), 1u);
}

TEST(SessionWire, ManyMessagesGoInChunksAndTheLastSaysSo) {
  std::vector<core::StoredMessage> messages;
  for (uint64_t i = 1; i <= 100; ++i) messages.push_back(Stored(i, std::string(100, 'x')));
  auto frames = EncodeTakeoverMessages(1, "c1", 0, messages, 1000);
  ASSERT_GT(frames.size(), 5u);
  size_t total = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto m = ParseTakeoverMessages(Bytes(frames[i]));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ((m->flags & kMessagesLast) != 0, i + 1 == frames.size());
    for (const auto& msg : m->messages) EXPECT_EQ(msg.seq, ++total);
  }
  EXPECT_EQ(total, 100u);
  // Nothing to send is one empty last frame.
  auto empty = EncodeTakeoverMessages(1, "c1", kMessagesHanded | kMessagesFinal, {}, 1000);
  ASSERT_EQ(empty.size(), 1u);
  auto m = ParseTakeoverMessages(Bytes(empty[0]));
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->messages.empty());
  EXPECT_EQ(m->flags, kMessagesHanded | kMessagesFinal | kMessagesLast);
}

TEST(SessionWire, SessionListsRoundTrip) {
  std::vector<core::SessionBrief> all = {{"c1", true, 5}, {"c2", false, 0}};
  auto frames = EncodeSessionList(all, 1 << 20);
  ASSERT_EQ(frames.size(), 1u);
  auto parsed = ParseSessionList(Bytes(frames[0]));
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].client_id, "c1");
  EXPECT_TRUE((*parsed)[0].connected);
  EXPECT_EQ((*parsed)[0].connected_at_ms, 5u);
  EXPECT_FALSE((*parsed)[1].connected);
}

TEST(SessionWire, WhatAPeerGetsWrongIsRefusedWithTheField) {
  // Every truncation of a valid frame fails and names a field.
  std::vector<core::StoredMessage> one = {Stored(1, "p")};
  const std::string full = EncodeTakeoverMessages(1, "c1", 0, one, 1 << 20)[0];
  for (size_t n = 0; n < full.size(); ++n) {
    auto m = ParseTakeoverMessages(Bytes(full.substr(0, n)));
    EXPECT_FALSE(m.ok()) << "truncated at " << n;
  }
  EXPECT_FALSE(ParseTakeoverMessages(Bytes(full + "x")).ok()) << "trailing bytes";
  // A message state beyond kReleased, a reserved flag, a bool that is 2.
  std::string bad_state = full;
  bad_state[8 + 2 + 2 + 1 + 4 + 8 + 1 + 2] = 3;
  auto st = ParseTakeoverMessages(Bytes(bad_state));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().message(), "message state 3");
  std::string bad_flags = full;
  bad_flags[8 + 2 + 2] = 0x08;
  EXPECT_FALSE(ParseTakeoverMessages(Bytes(bad_flags)).ok());
  std::string reply = EncodeLockReply(LockReplyFrame{1, true, 2, "h"});
  reply[8] = 2;
  auto r = ParseLockReply(Bytes(reply));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "granted: 2 is not 0 or 1");
  // A session without a client id.
  core::StoredSession empty_id;
  auto s = ParseTakeoverSession(Bytes(EncodeTakeoverSession(TakeoverSessionFrame{1, empty_id})));
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace ferry::cluster
