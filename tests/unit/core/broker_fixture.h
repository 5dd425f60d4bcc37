// An in-process Broker for the unit tests of its seams: one worker, one
// loopback listener on a free port, no persistence, no $SYS. The test's
// thread runs the main loop (at TearDown, until the broker has shut down).
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "core/broker.h"
#include "core/loop.h"

namespace ferry::core {

class BrokerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.BindToCurrentThread();
    BrokerOptions o;
    o.workers = 1;
    o.persistence = false;
    o.sys_interval_ms = 0;
    ListenerOptions l;
    l.name = "a";
    l.host = "127.0.0.1";
    l.port = 0;  // any free port: tests run side by side
    o.listeners.push_back(l);
    auto created = Broker::Create(o);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    broker_ = std::move(created).value();
    Status st = broker_->Start(loop_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void TearDown() override {
    broker_->Shutdown([&] { loop_.Stop(); });
    loop_.Run();
  }
  // Publishes `m` and checks that it was answered at once (no subscriber
  // to wait for, no store).
  void Publish(MessagePtr m) {
    bool done = false;
    broker_->Publish(std::move(m), [&](ReasonCode) { done = true; });
    EXPECT_TRUE(done);
  }

  Loop loop_;  // outlives the broker, whose handles close on it
  std::unique_ptr<Broker> broker_;
};

}  // namespace ferry::core
