// Broker::AcceptingConnections, what /api/v1/health answers: true only while
// the node is started, not shutting down, and has an MQTT listener running;
// otherwise the reason. An in-process broker with one loopback listener (the
// listener is what is under test) and no persistence.
#include <gtest/gtest.h>

#include <string>

#include "core/broker.h"
#include "core/loop.h"

namespace ferry::core {
namespace {

BrokerOptions TwoListeners() {
  BrokerOptions o;
  o.workers = 1;
  o.persistence = false;
  o.sys_interval_ms = 0;
  for (const char* name : {"a", "b"}) {
    ListenerOptions l;
    l.name = name;
    l.host = "127.0.0.1";
    l.port = 0;
    o.listeners.push_back(l);
  }
  return o;
}

TEST(BrokerHealth, AcceptingOnlyWhileStartedWithAListenerRunning) {
  Loop loop;  // outlives the broker, whose handles close on it
  loop.BindToCurrentThread();
  auto created = Broker::Create(TwoListeners());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Broker& broker = **created;
  std::string why;
  EXPECT_FALSE(broker.AcceptingConnections(&why));
  EXPECT_EQ(why, "the node has not started");

  ASSERT_TRUE(broker.Start(loop).ok());
  EXPECT_TRUE(broker.AcceptingConnections(&why));
  ASSERT_TRUE(broker.StopListener("tcp.a").ok());
  EXPECT_TRUE(broker.AcceptingConnections());  // tcp.b still runs
  ASSERT_TRUE(broker.StopListener("tcp.b").ok());
  EXPECT_FALSE(broker.AcceptingConnections(&why));
  EXPECT_EQ(why, "no MQTT listener is running (stopped: tcp.a, tcp.b)");
  ASSERT_TRUE(broker.StartListener("tcp.b").ok());
  EXPECT_TRUE(broker.AcceptingConnections());

  bool done = false;
  broker.Shutdown([&] {
    done = true;
    loop.Stop();
  });
  EXPECT_FALSE(broker.AcceptingConnections(&why));
  EXPECT_EQ(why, "the node is shutting down");
  loop.Run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(broker.AcceptingConnections());
}

}  // namespace
}  // namespace ferry::core
