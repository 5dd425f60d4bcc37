// DurableStore: every mutation's round trip through a reopen, load-time
// expiry, lifecycle and concurrent producers. Faults are in
// durable_store_fault_test.cpp.

#include "core/durable_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "durable_store_fixture.h"

namespace ferry::core::store_test {
namespace {

TEST_F(DurableStoreTest, EveryPutSurvivesReopen) {
  DurableStore& store = Open();
  auto msg = std::make_shared<Message>(*MakeMessage("a/b", std::string("p\0q", 3), kNow + 60'000));
  msg->props = RichProperties();
  store.PutSession("c1", 3600, kNow - 10);
  store.PutSubscription("c1", {"a/#", 2, true, true, 1, 42});
  store.PutSubscription("c1", {"$share/g/x", 1, false, false, 2, 0});
  store.PutMessage("c1", {7, 2, 99, StoredMessageState::kReleased, msg});
  store.PutQos2Inbound("c1", 5);
  store.PutQos2Inbound("c1", 3);
  store.PutRetained(msg);
  ASSERT_TRUE(SyncNow(store).ok());

  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  const StoredSession& s = state.sessions[0];
  EXPECT_EQ(s.client_id, "c1");
  EXPECT_EQ(s.expiry_interval_s, 3600u);
  EXPECT_EQ(s.disconnected_at_ms, kNow - 10);
  ASSERT_EQ(s.subscriptions.size(), 2u);
  EXPECT_EQ(s.subscriptions[0], (StoredSubscription{"$share/g/x", 1, false, false, 2, 0}));
  EXPECT_EQ(s.subscriptions[1], (StoredSubscription{"a/#", 2, true, true, 1, 42}));
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_EQ(s.messages[0].seq, 7u);
  EXPECT_EQ(s.messages[0].qos, 2);
  EXPECT_EQ(s.messages[0].packet_id, 99);
  EXPECT_EQ(s.messages[0].state, StoredMessageState::kReleased);
  ExpectSameMessage(*s.messages[0].message, *msg);
  EXPECT_EQ(s.qos2_inbound, (std::vector<uint16_t>{3, 5}));
  ASSERT_EQ(state.retained.size(), 1u);
  ExpectSameMessage(*state.retained[0], *msg);
  EXPECT_TRUE(state.retained[0]->retain);
  EXPECT_EQ(state.skipped_rows, 0u);
}

TEST_F(DurableStoreTest, MessagesLoadInSeqOrder) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  for (uint64_t seq : {5ull, 1ull, 1ull << 63, 3ull, ~0ull}) {
    store.PutMessage("c", Queued(seq, MakeMessage("t", std::to_string(seq))));
  }
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{1, 3, 5, 1ull << 63, ~0ull}));
}

TEST_F(DurableStoreTest, PutsUpsertByKey) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  store.PutSession("c", 120, 9);
  store.PutSubscription("c", {"t/+", 0, false, false, 0, 1});
  store.PutSubscription("c", {"t/+", 2, false, false, 0, 7});
  store.PutMessage("c", Queued(1, MakeMessage("t/1", "old")));
  store.PutMessage("c", Queued(1, MakeMessage("t/1", "new")));
  store.PutRetained(MakeMessage("r", "old"));
  store.PutRetained(MakeMessage("r", "new"));
  store.PutQos2Inbound("c", 4);
  store.PutQos2Inbound("c", 4);
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  const StoredSession& s = state.sessions[0];
  EXPECT_EQ(s.expiry_interval_s, 120u);
  EXPECT_EQ(s.disconnected_at_ms, 9u);
  ASSERT_EQ(s.subscriptions.size(), 1u);
  EXPECT_EQ(s.subscriptions[0].qos, 2);
  EXPECT_EQ(s.subscriptions[0].subscription_id, 7u);
  ASSERT_EQ(s.messages.size(), 1u);
  EXPECT_EQ(s.messages[0].message->payload, "new");
  EXPECT_EQ(s.qos2_inbound, (std::vector<uint16_t>{4}));
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->payload, "new");
}

TEST_F(DurableStoreTest, UpdateAndDeletesApply) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  for (uint64_t seq = 1; seq <= 3; ++seq) store.PutMessage("c", Queued(seq, MakeMessage("t", "x")));
  store.UpdateMessage("c", 2, StoredMessageState::kSent, 17);
  store.UpdateMessage("c", 99, StoredMessageState::kSent, 18);  // no such message: no-op
  store.DeleteMessage("c", 3);
  store.PutSubscription("c", {"keep", 1, false, false, 0, 0});
  store.PutSubscription("c", {"drop", 1, false, false, 0, 0});
  store.DeleteSubscription("c", "drop");
  store.PutQos2Inbound("c", 1);
  store.PutQos2Inbound("c", 2);
  store.DeleteQos2Inbound("c", 1);
  store.PutRetained(MakeMessage("keep", "k"));
  store.PutRetained(MakeMessage("drop", "d"));
  store.DeleteRetained("drop");
  ASSERT_TRUE(SyncNow(store).ok());

  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  const StoredSession& s = state.sessions[0];
  ASSERT_EQ(Seqs(s), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(s.messages[0].state, StoredMessageState::kQueued);
  EXPECT_EQ(s.messages[1].state, StoredMessageState::kSent);
  EXPECT_EQ(s.messages[1].packet_id, 17);
  ASSERT_EQ(s.subscriptions.size(), 1u);
  EXPECT_EQ(s.subscriptions[0].filter, "keep");
  EXPECT_EQ(s.qos2_inbound, (std::vector<uint16_t>{2}));
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->topic, "keep");
}

TEST_F(DurableStoreTest, DeleteSessionCascadesToItsRowsOnly) {
  DurableStore& store = Open();
  for (std::string id : {"gone", "kept"}) {
    store.PutSession(id, 60, 0);
    store.PutSubscription(id, {"t", 1, false, false, 0, 0});
    store.PutMessage(id, Queued(1, MakeMessage("t", "x")));
    store.PutQos2Inbound(id, 9);
  }
  store.DeleteSession("gone");
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "kept");
  EXPECT_EQ(state.sessions[0].subscriptions.size(), 1u);
  EXPECT_EQ(state.sessions[0].messages.size(), 1u);
  EXPECT_EQ(state.sessions[0].qos2_inbound.size(), 1u);
  // Nothing of "gone" is left to come back with a new session of that id.
  store_.reset();
  DurableStore& again = Open();
  again.PutSession("gone", 60, 0);
  ASSERT_TRUE(SyncNow(again).ok());
  state = Reload();
  ASSERT_EQ(state.sessions.size(), 2u);
  EXPECT_TRUE(state.sessions[0].messages.empty());
  EXPECT_TRUE(state.sessions[0].subscriptions.empty());
  EXPECT_TRUE(state.sessions[0].qos2_inbound.empty());
}

TEST_F(DurableStoreTest, MutationsApplyInSubmissionOrder) {
  DurableStore& store = Open();
  store.PutSession("back", 60, 0);
  store.DeleteSession("back");
  store.PutSession("back", 61, 0);
  store.PutSession("deleted", 60, 0);
  store.DeleteSession("deleted");
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(state.sessions[0].client_id, "back");
  EXPECT_EQ(state.sessions[0].expiry_interval_s, 61u);
}

// [MQTT-3.3.2-5]: an expired message not yet sent is deleted; one whose
// delivery has started stays so the handshake can finish.
TEST_F(DurableStoreTest, ExpiredQueuedMessagesAreDroppedAtLoadAndDeleted) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  store.PutMessage("c", Queued(1, MakeMessage("t", "expired", kNow - 1)));
  store.PutMessage("c",
                   {2, 1, 8, StoredMessageState::kSent, MakeMessage("t", "inflight", kNow - 1)});
  store.PutMessage("c", Queued(3, MakeMessage("t", "never", 0)));
  store.PutMessage("c", Queued(4, MakeMessage("t", "later", kNow + 1)));
  store.PutMessage("c", Queued(5, MakeMessage("t", "now", kNow)));
  store.PutRetained(MakeMessage("r/expired", "x", kNow - 1));
  store.PutRetained(MakeMessage("r/live", "x", kNow + 1));
  ASSERT_TRUE(SyncNow(store).ok());

  StoredState state = Reload(kNow);
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{2, 3, 4}));
  ASSERT_EQ(state.retained.size(), 1u);
  EXPECT_EQ(state.retained[0]->topic, "r/live");
  // Deleted from disk, not only filtered: an earlier clock does not revive them.
  state = Reload(0);
  EXPECT_EQ(Seqs(state.sessions[0]), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(state.retained.size(), 1u);
}

TEST_F(DurableStoreTest, RowsOfClientsWithoutSessionAreDiscarded) {
  DurableStore& store = Open();
  store.PutSubscription("ghost", {"t", 0, false, false, 0, 0});
  store.PutMessage("ghost", Queued(1, MakeMessage("t", "x")));
  store.PutQos2Inbound("ghost", 1);
  ASSERT_TRUE(SyncNow(store).ok());
  StoredState state = Reload();
  EXPECT_TRUE(state.sessions.empty());
  EXPECT_EQ(state.skipped_rows, 0u);
  store_.reset();
  Open().PutSession("ghost", 1, 0);
  ASSERT_TRUE(SyncNow(*store_).ok());
  state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  EXPECT_TRUE(state.sessions[0].messages.empty());
}

TEST_F(DurableStoreTest, QueueingSharesThePayloadInsteadOfCopyingIt) {
  Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
  ASSERT_TRUE(r.ok());
  MessagePtr m = MakeMessage("t", std::string(1 << 20, 'p'));
  r.value()->PutRetained(m);
  r.value()->PutMessage("c", Queued(1, m));
  EXPECT_EQ(m.use_count(), 3);  // not started: both ops are still queued
}

TEST_F(DurableStoreTest, StopWithoutStartCommitsWhatWasQueued) {
  {
    Result<std::unique_ptr<DurableStore>> r = DurableStore::Open(Options());
    ASSERT_TRUE(r.ok());
    r.value()->PutSession("c", 60, 0);
    r.value()->Stop();
    r.value()->Stop();  // idempotent
    EXPECT_EQ(r.value()->stats().ops, 1u);
  }
  EXPECT_EQ(Reload().sessions.size(), 1u);
}

TEST_F(DurableStoreTest, AfterStopSyncReportsUnavailableAndMutationsAreDropped) {
  DurableStore& store = Open();
  store.Stop();
  Status got = Status::Ok();
  store.Sync([&got](const Status& s) { got = s; });
  EXPECT_EQ(got.code(), Status::Code::kUnavailable);
  store.PutSession("late", 1, 0);
  EXPECT_EQ(store.stats().dropped_ops, 1u);
  EXPECT_TRUE(Warned("after Stop()"));
}

TEST_F(DurableStoreTest, LoadAllAfterStartIsRefused) {
  DurableStore& store = Open();
  Result<StoredState> state = store.LoadAll(kNow);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(DurableStoreTest, ConcurrentProducersAreAllCommitted) {
  DurableStore& store = Open();
  store.PutSession("c", 60, 0);
  std::vector<std::thread> producers;
  for (uint64_t t = 0; t < 4; ++t) {
    producers.emplace_back([&store, t] {
      for (uint64_t i = 0; i < 250; ++i) {
        store.PutMessage("c", Queued(t * 1000 + i, MakeMessage("t", "x")));
      }
    });
  }
  for (std::thread& p : producers) p.join();
  ASSERT_TRUE(SyncNow(store).ok());
  DurableStoreStats stats = store.stats();
  EXPECT_EQ(stats.ops, 1001u);
  EXPECT_EQ(stats.pending_ops, 0u);
  EXPECT_GE(stats.commits, 1u);
  EXPECT_LE(stats.commits, stats.ops);
  StoredState state = Reload();
  ASSERT_EQ(state.sessions.size(), 1u);
  std::vector<uint64_t> seqs = Seqs(state.sessions[0]);
  ASSERT_EQ(seqs.size(), 1000u);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
}

// A child process commits, has Sync confirm it, and is SIGKILLed without
// Stop(): everything confirmed must be there when the file is reopened.
}  // namespace
}  // namespace ferry::core::store_test
