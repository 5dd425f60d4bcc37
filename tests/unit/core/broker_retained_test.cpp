// The retained seams of Broker a cluster replicates through: WatchRetained
// (a snapshot, then every set and delete except the observer owner's own
// and $SYS), StoreRetained (kept without delivery, last writer wins) and
// ClearRetained. An in-process broker with one loopback listener and no
// persistence.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker_fixture.h"
#include "core/broker.h"

namespace ferry::core {
namespace {

class Recorder : public RetainedObserver {
 public:
  void OnRetained(const MessagePtr& m) override {
    std::lock_guard lock(mu_);
    seen_.push_back(m->topic + "=" + m->payload);
  }
  std::vector<std::string> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

MessagePtr Retained(const std::string& topic, const std::string& payload,
                    uint64_t received_at_ms = 1, const std::string& injected_by = "") {
  auto m = std::make_shared<Message>();
  m->topic = topic;
  m->payload = payload;
  m->retain = true;
  m->received_at_ms = received_at_ms;
  m->injected_by = injected_by;
  return m;
}

class BrokerRetainedTest : public BrokerFixture {
 protected:
  std::vector<std::string> Snapshot() {
    std::vector<std::string> out;
    for (const MessagePtr& m : broker_->WatchRetained("owner", recorder_)) {
      out.push_back(m->topic + "=" + m->payload);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::shared_ptr<Recorder> recorder_ = std::make_shared<Recorder>();
};

TEST_F(BrokerRetainedTest, TheObserverHearsEverySetAndDeleteButItsOwnersAndSys) {
  Publish(Retained("before", "x"));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"before=x"}));
  Publish(Retained("a", "1"));
  Publish(Retained("b", "2", 1, "owner"));  // the owner's own: not told back
  Publish(Retained("b", "3", 1, "$bridge:up"));
  Publish(Retained("a", ""));  // a delete
  Publish(Retained("$SYS/x", "y"));
  EXPECT_EQ(recorder_->seen(), (std::vector<std::string>{"a=1", "b=3", "a="}));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"b=3", "before=x"}));
  broker_->WatchRetained("owner", nullptr);
  Publish(Retained("c", "4"));
  EXPECT_EQ(recorder_->seen().size(), 3u);
}

TEST_F(BrokerRetainedTest, StoredRetainedMessagesFollowTheLastWriterAndAreNotTold) {
  broker_->WatchRetained("owner", recorder_);
  broker_->StoreRetained(Retained("t", "new", 200));
  broker_->StoreRetained(Retained("t", "old", 100));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"t=new"}));
  broker_->StoreRetained(Retained("t", "", 300));
  EXPECT_TRUE(Snapshot().empty());
  EXPECT_TRUE(recorder_->seen().empty());  // replication does not echo
}

TEST_F(BrokerRetainedTest, OnTheSameMillisecondEveryNodeKeepsTheSameOne) {
  // Two nodes that set one topic on the same millisecond each get the
  // other's: both must end with the same message, and a set beats a delete.
  broker_->StoreRetained(Retained("t", "x", 500));
  broker_->StoreRetained(Retained("t", "y", 500));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"t=y"}));
  broker_->StoreRetained(Retained("t", "x", 500));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"t=y"}));
  broker_->StoreRetained(Retained("t", "", 500));
  EXPECT_EQ(Snapshot(), (std::vector<std::string>{"t=y"}));
  EXPECT_EQ(broker_->AllRetained().size(), 1u);
}

TEST_F(BrokerRetainedTest, ClearRetainedDropsAllButSys) {
  Publish(Retained("a", "1"));
  Publish(Retained("b/c", "2"));
  Publish(Retained("$SYS/x", "y"));
  EXPECT_EQ(broker_->ClearRetained(), 2u);
  EXPECT_TRUE(Snapshot().empty());
  EXPECT_EQ(broker_->ClearRetained(), 0u);
}

}  // namespace
}  // namespace ferry::core
