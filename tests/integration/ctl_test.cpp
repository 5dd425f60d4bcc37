// ferryctl against a real ferryd over its admin socket: every node command,
// in human and --json form, and the error paths (node down, bad arguments,
// unknown ids, permission on the socket, hostile socket clients).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <set>
#include <string>

#include "support/connect_helpers.h"
#include "support/ctl.h"
#include "support/mqtt_wire.h"
#include "support/node_process.h"
#include "support/paho_client.h"
#include "support/raw_client.h"
#include "support/temp_dir.h"
#include "support/wait.h"

namespace ferry::testing {
namespace {

class Ctl : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.Start()); }
  void TearDown() override {
    if (!HasFatalFailure() && node_.Running()) {
      EXPECT_TRUE(node_.Stop());
    }
  }

  CommandResult Run(const std::vector<std::string>& args) { return Ferryctl(node_, args); }

  // Runs `args --json`, expects success and returns the parsed output.
  Json RunJson(std::vector<std::string> args) {
    args.push_back("--json");
    CommandResult r = Run(args);
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
    std::optional<Json> j = ParseJson(r.out);
    EXPECT_TRUE(j.has_value()) << r.out;
    return j.value_or(Json());
  }

  // Expects exit code `code`, nothing on stdout, and `message` in the first
  // line of stderr.
  void ExpectError(const std::vector<std::string>& args, int code, const std::string& message) {
    CommandResult r = Run(args);
    EXPECT_EQ(r.status.code, code) << r.ToString();
    EXPECT_TRUE(r.out.empty()) << r.ToString();
    EXPECT_EQ(r.err.rfind("ferryctl: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.substr(0, r.err.find('\n')).find(message), std::string::npos) << r.err;
  }

  static std::set<std::string> ClientIds(const Json& rows) {
    std::set<std::string> ids;
    for (const Json& row : rows) ids.insert(row["client_id"].get<std::string>());
    return ids;
  }

  NodeProcess node_;
};

// ---------------------------------------------------------------- status

TEST_F(Ctl, StatusSaysTheNodeIsStarted) {
  CommandResult r = Run({"status"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_TRUE(std::regex_match(
      r.out, std::regex("Node 'test@127\\.0\\.0\\.1' is started\nferry [0-9.]+ is running\n")))
      << r.out;
  Json j = RunJson({"status"});
  EXPECT_EQ(j["node"], "test@127.0.0.1");
  EXPECT_EQ(j["status"], "started");
  EXPECT_EQ(j["accepting_connections"], true);
}

TEST_F(Ctl, StatusFailsWhenTheNodeIsDown) {
  ASSERT_TRUE(node_.Stop());
  CommandResult r = Run({"status"});
  EXPECT_EQ(r.status.code, 3) << r.ToString();
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.err, "ferryctl: node 'test@127.0.0.1' is not running (cannot connect to " +
                       node_.admin_socket() + ": No such file or directory)\n");
}

// A node killed with SIGKILL leaves its socket file behind: ferryctl says
// the node is down, and the next start replaces the stale file.
TEST_F(Ctl, StaleSocketAfterSigkill) {
  node_.Kill();
  struct stat st{};
  ASSERT_EQ(stat(node_.admin_socket().c_str(), &st), 0);
  CommandResult r = Run({"status"});
  EXPECT_EQ(r.status.code, 3) << r.ToString();
  EXPECT_NE(r.err.find("is not running"), std::string::npos) << r.err;
  ASSERT_TRUE(node_.Start());
  EXPECT_TRUE(Run({"status"}).Succeeded());
}

TEST_F(Ctl, FindsTheNodeThroughEnvironmentOverrides) {
  // No -c: FERRY_CONFIG names the file, and an override moves the socket.
  ASSERT_TRUE(node_.Stop());
  const std::string socket = node_.dir() + "/alt.sock";
  node_.config().Set("admin", "socket", socket);
  ASSERT_TRUE(node_.Start());
  CommandResult r = FerryctlRaw({"status"}, {{"FERRY_CONFIG", node_.config_path()}});
  EXPECT_TRUE(r.Succeeded()) << r.ToString();
  r = FerryctlRaw({"status"}, {{"FERRY_CONFIG", node_.config_path()},
                               {"FERRY_ADMIN__SOCKET", node_.dir() + "/other.sock"}});
  EXPECT_EQ(r.status.code, 3) << r.ToString();
  EXPECT_TRUE(FerryctlRaw({"--socket", socket, "status"}).Succeeded());
}

// ---------------------------------------------------------------- broker

TEST_F(Ctl, BrokerShowsVersionUptimeAndWorkers) {
  CommandResult r = Run({"broker"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_NE(r.out.find("node       : test@127.0.0.1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("workers    : 2\n"), std::string::npos) << r.out;
  Json j = RunJson({"broker"});
  EXPECT_EQ(j["workers"], 2);
  EXPECT_TRUE(j["uptime_s"].is_number_unsigned());
  EXPECT_TRUE(j["version"].is_string());
}

TEST_F(Ctl, BrokerStatsKeepTheirMaxima) {
  auto a = std::make_unique<PahoClient>(node_.port(), "stats-a", MqttVersion::kV5);
  PahoClient b(node_.port(), "stats-b", MqttVersion::kV311);
  ASSERT_TRUE(a->Connect());
  ASSERT_TRUE(b.Connect());
  ASSERT_TRUE(a->Subscribe("s/+", 1));
  ASSERT_TRUE(b.Subscribe("s/+", 1));
  ASSERT_TRUE(b.Subscribe("t/#", 0));
  ASSERT_TRUE(b.Publish("r/1", "kept", 1, /*retain=*/true));
  Json j = RunJson({"broker", "stats"});
  EXPECT_EQ(j["connections"], (Json{{"count", 2}, {"max", 2}}));
  EXPECT_EQ(j["sessions"], (Json{{"count", 2}, {"max", 2}}));
  EXPECT_EQ(j["subscriptions"], (Json{{"count", 3}, {"max", 3}}));
  EXPECT_EQ(j["routes"], (Json{{"count", 2}, {"max", 2}}));
  EXPECT_EQ(j["retained"], (Json{{"count", 1}, {"max", 1}}));

  ASSERT_TRUE(a->Disconnect());
  a.reset();
  ASSERT_TRUE(WaitFor([&] { return RunJson({"broker", "stats"})["connections"]["count"] == 1; },
                      kDefaultTimeout, "one connection left"));
  j = RunJson({"broker", "stats"});
  EXPECT_EQ(j["connections"], (Json{{"count", 1}, {"max", 2}}));
  EXPECT_EQ(j["subscriptions"], (Json{{"count", 2}, {"max", 3}}));
  CommandResult r = Run({"broker", "stats"});
  ASSERT_TRUE(r.Succeeded());
  // Keys are padded to the longest one, whichever that is.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("connections/count +: 1\n"
                                                  "connections/max +: 2\n")))
      << r.out;
}

TEST_F(Ctl, BrokerMetricsCountPerQosAndDrops) {
  PahoClient sub(node_.port(), "metrics-sub", MqttVersion::kV5);
  PahoClient pub(node_.port(), "metrics-pub", MqttVersion::kV5);
  ASSERT_TRUE(sub.Connect());
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(sub.Subscribe("m/#", 2));
  for (int qos = 0; qos <= 2; ++qos) {
    ASSERT_TRUE(pub.Publish("m/" + std::to_string(qos), "x", qos));
    ASSERT_TRUE(sub.Receive().has_value());
  }
  ASSERT_TRUE(pub.Publish("nobody/listens", "x", 1));
  Json j = RunJson({"broker", "metrics"});
  EXPECT_EQ(j["messages"]["received"], 4);
  EXPECT_EQ(j["messages"]["received_qos0"], 1);
  EXPECT_EQ(j["messages"]["received_qos1"], 2);
  EXPECT_EQ(j["messages"]["received_qos2"], 1);
  EXPECT_EQ(j["messages"]["sent_qos0"], 1);
  EXPECT_EQ(j["messages"]["sent_qos1"], 1);
  EXPECT_EQ(j["messages"]["sent_qos2"], 1);
  EXPECT_EQ(j["dropped"]["no_subscribers"], 1);
  EXPECT_GT(j["bytes"]["received"].get<uint64_t>(), 0u);
  CommandResult r = Run({"broker", "metrics"});
  EXPECT_NE(r.out.find("messages/received_qos1 : 2\n"), std::string::npos) << r.out;
}

// ---------------------------------------------------------------- clients

TEST_F(Ctl, ClientsListFiltersAndLimits) {
  PahoConnectOptions alice;
  alice.username = "alice";
  PahoClient c1(node_.port(), "list-1", MqttVersion::kV5);
  PahoClient c2(node_.port(), "list-2", MqttVersion::kV311);
  ASSERT_TRUE(c1.Connect(alice));
  ASSERT_TRUE(c2.Connect());
  {
    // An offline persistent session is a client too.
    PahoClient offline(node_.port(), "list-3", MqttVersion::kV311);
    PahoConnectOptions keep;
    keep.clean_start = false;
    ASSERT_TRUE(offline.Connect(keep));
    ASSERT_TRUE(offline.Disconnect());
  }
  EXPECT_EQ(ClientIds(RunJson({"clients", "list"})),
            (std::set<std::string>{"list-1", "list-2", "list-3"}));
  EXPECT_EQ(ClientIds(RunJson({"clients", "list", "--connected"})),
            (std::set<std::string>{"list-1", "list-2"}));
  Json by_user = RunJson({"clients", "list", "--username", "alice"});
  ASSERT_EQ(by_user.size(), 1u);
  EXPECT_EQ(by_user[0]["client_id"], "list-1");
  EXPECT_EQ(by_user[0]["protocol"], "5.0");
  EXPECT_EQ(RunJson({"clients", "list", "--limit", "2"}).size(), 2u);

  CommandResult r = Run({"clients", "list", "--username=alice"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_TRUE(std::regex_search(r.out, std::regex("^CLIENT ID +USERNAME +CONNECTED +PEER")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nlist-1 +alice +yes +127\\.0\\.0\\.1:")))
      << r.out;
  ExpectError({"clients", "list", "--limit", "x"}, 2, "--limit: expected an integer");
}

// More clients and subscriptions than fit a page, on both workers: every one
// is listed once, whatever the limit (257 makes the second page one row).
TEST_F(Ctl, ListingsPageThroughManyClients) {
  constexpr int kClients = 700;  // pages hold 256 rows
  for (int i = 0; i < kClients; ++i) {
    RawClient raw;
    ASSERT_TRUE(raw.Connect(node_.port()));
    wire::ConnectFields f;
    f.client_id = "many-" + std::to_string(i);
    f.clean_start = false;  // the session outlives the connection
    ASSERT_TRUE(raw.MqttConnect(f));
    ASSERT_TRUE(raw.Send(wire::Subscribe(MqttVersion::kV311, 1, {{"many/" + std::to_string(i), 1}})));
    ASSERT_TRUE(raw.ReadPacket().has_value()) << raw.error();
    ASSERT_TRUE(raw.Send(wire::Disconnect(MqttVersion::kV311)));
    ASSERT_TRUE(raw.IsClosed());
  }
  Json all = RunJson({"clients", "list"});
  ASSERT_EQ(all.size(), static_cast<size_t>(kClients));
  EXPECT_EQ(ClientIds(all).size(), static_cast<size_t>(kClients));
  for (const char* limit : {"1", "256", "257", "300"}) {
    EXPECT_EQ(RunJson({"clients", "list", "--limit", limit}).size(), std::stoul(limit));
    EXPECT_EQ(RunJson({"subscriptions", "list", "--limit", limit}).size(), std::stoul(limit));
    EXPECT_EQ(RunJson({"routes", "list", "--limit", limit}).size(), std::stoul(limit));
  }
  Json subs = RunJson({"subscriptions", "list"});
  ASSERT_EQ(subs.size(), static_cast<size_t>(kClients));
  EXPECT_EQ(ClientIds(subs).size(), static_cast<size_t>(kClients));
  EXPECT_EQ(RunJson({"routes", "list"}).size(), static_cast<size_t>(kClients));
  CommandResult human = Run({"clients", "list"});
  ASSERT_TRUE(human.Succeeded()) << human.err;
  EXPECT_EQ(std::count(human.out.begin(), human.out.end(), '\n'), kClients + 1);
}

TEST_F(Ctl, ClientsShowDescribesOneClient) {
  PahoClient c(node_.port(), "show-me", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect());
  ASSERT_TRUE(c.Subscribe("a/b", 1));
  Json j = RunJson({"clients", "show", "show-me"});
  EXPECT_EQ(j["client_id"], "show-me");
  EXPECT_EQ(j["connected"], true);
  ASSERT_EQ(j["subscription_list"].size(), 1u);
  EXPECT_EQ(j["subscription_list"][0]["filter"], "a/b");
  EXPECT_EQ(j["subscription_list"][0]["qos"], 1);
  CommandResult r = Run({"clients", "show", "show-me"});
  EXPECT_NE(r.out.find("client_id        : show-me\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("subscription_list:\n"), std::string::npos) << r.out;
  ExpectError({"clients", "show", "nobody"}, 4, "no client 'nobody'");
}

TEST_F(Ctl, ClientsKickSendsV5AdministrativeAction) {
  RawClient raw;
  ASSERT_TRUE(raw.Connect(node_.port()));
  wire::ConnectFields f;
  f.version = MqttVersion::kV5;
  f.client_id = "kick-me";
  ASSERT_TRUE(raw.MqttConnect(f));
  CommandResult r = Run({"clients", "kick", "kick-me"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "Client 'kick-me' kicked on " + node_.name() + "\n");
  std::optional<Bytes> packet = raw.ReadPacket();
  ASSERT_TRUE(packet.has_value()) << raw.error();
  EXPECT_EQ(wire::ParseDisconnect(*packet), 0x98) << wire::Hex(*packet);
  EXPECT_TRUE(raw.IsClosed());
  // A clean session ends with its connection.
  EXPECT_TRUE(RunJson({"clients", "list"}).empty());
  ExpectError({"clients", "kick", "kick-me"}, 4, "no client 'kick-me'");
  EXPECT_TRUE(node_.WaitForLog("kicked by an administrator"));
}

TEST_F(Ctl, ClientsKickOfAnOfflineSessionIsRefused) {
  PahoClient c(node_.port(), "offline", MqttVersion::kV311);
  PahoConnectOptions keep;
  keep.clean_start = false;
  ASSERT_TRUE(c.Connect(keep));
  ASSERT_TRUE(c.Disconnect());
  ExpectError({"clients", "kick", "offline"}, 4, "client 'offline' is not connected");
  EXPECT_EQ(RunJson({"clients", "list"}).size(), 1u);  // the session is still there
  // Issue 9: it says that nothing was done, and how to discard the session.
  CommandResult r = Run({"clients", "kick", "offline"});
  EXPECT_NE(r.err.find("nothing was done; its session is kept offline (to discard it: clients "
                       "kick offline --session)"),
            std::string::npos)
      << r.ToString();
}

// Issue 9: --session ends an offline session: it is gone from the listing
// and from the store, and the client finds no session when it comes back.
TEST_F(Ctl, ClientsKickSessionDiscardsAnOfflineSession) {
  PahoClient c(node_.port(), "gone", MqttVersion::kV311);
  PahoConnectOptions keep;
  keep.clean_start = false;
  ASSERT_TRUE(c.Connect(keep));
  ASSERT_TRUE(c.Subscribe("gone/#", 1));
  ASSERT_TRUE(c.Disconnect());
  CommandResult r = Run({"clients", "kick", "gone", "--session"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "Session of client 'gone' (offline) discarded on " + node_.name() + "\n");
  EXPECT_TRUE(RunJson({"clients", "list"}).empty());
  EXPECT_TRUE(RunJson({"subscriptions", "list"}).empty());
  ExpectError({"clients", "kick", "gone", "--session"}, 4, "no client 'gone'");
  ASSERT_TRUE(node_.Restart());  // not in the store either
  EXPECT_TRUE(RunJson({"clients", "list"}).empty());
}

TEST_F(Ctl, ClientsKickSessionDisconnectsAndDiscardsAConnectedOne) {
  wire::ConnectFields kept;
  kept.version = MqttVersion::kV5;
  kept.client_id = "kept";
  kept.clean_start = false;
  kept.properties = {0x11, 0x00, 0x00, 0x0E, 0x10};  // session expiry interval 3600 s
  RawClient raw;
  ASSERT_TRUE(RawConnect(raw, node_.port(), kept));
  Json j = RunJson({"clients", "kick", "kept", "--session"});
  EXPECT_EQ(j, (Json{{"client_id", "kept"},
                     {"kicked", true},
                     {"session_discarded", true},
                     {"node", node_.name()}}));
  EXPECT_TRUE(DisconnectedWith(raw, 0x98));
  EXPECT_TRUE(RunJson({"clients", "list"}).empty());  // a plain kick would keep it
}

// ---------------------------------------------------------------- subscriptions

TEST_F(Ctl, SubscriptionsAddBehavesLikeTheClientsOwn) {
  PahoClient pub(node_.port(), "sa-pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("news/kept", "retained", 1, /*retain=*/true));
  PahoClient c(node_.port(), "sa-sub", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect());
  Json added = RunJson({"subscriptions", "add", "sa-sub", "news/#", "1"});
  EXPECT_EQ(added["new"], true);
  // A retained message follows a new subscription, as after a SUBSCRIBE.
  std::optional<ReceivedMessage> m = c.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->topic, "news/kept");
  EXPECT_TRUE(m->retained);
  ASSERT_TRUE(pub.Publish("news/today", "hello", 1));
  m = c.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "hello");
  EXPECT_EQ(m->qos, 1);

  Json shown = RunJson({"subscriptions", "show", "sa-sub"});
  ASSERT_EQ(shown["subscriptions"].size(), 1u);
  EXPECT_EQ(shown["subscriptions"][0]["filter"], "news/#");
  Json listed = RunJson({"subscriptions", "list"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["client_id"], "sa-sub");
  CommandResult human = Run({"subscriptions", "list"});
  EXPECT_TRUE(std::regex_search(human.out, std::regex("\nsa-sub +news/# +1\n"))) << human.out;

  CommandResult del = Run({"subscriptions", "del", "sa-sub", "news/#"});
  ASSERT_TRUE(del.Succeeded()) << del.ToString();
  ASSERT_TRUE(pub.Publish("news/later", "gone", 1));
  EXPECT_FALSE(c.Receive(std::chrono::milliseconds(300)).has_value());
  ExpectError({"subscriptions", "del", "sa-sub", "news/#"}, 4, "has no subscription 'news/#'");
}

TEST_F(Ctl, SubscriptionsAddRefusesBadArguments) {
  PahoClient c(node_.port(), "sa-bad", MqttVersion::kV5);
  ASSERT_TRUE(c.Connect());
  ExpectError({"subscriptions", "add", "sa-bad", "a/b", "3"}, 2, "QOS must be 0, 1 or 2");
  CommandResult r = Run({"subscriptions", "add", "sa-bad", "a/b", "3"});
  EXPECT_NE(r.err.find("\nusage: ferryctl subscriptions add ID FILTER QOS\n"), std::string::npos)
      << r.err;
  ExpectError({"subscriptions", "add", "sa-bad", "a/#/b", "1"}, 2, "bad topic filter 'a/#/b'");
  ExpectError({"subscriptions", "add", "nobody", "a/b", "1"}, 4, "no client 'nobody'");
  ExpectError({"subscriptions", "add", "sa-bad", "a/b"}, 2, "subscriptions add: missing QOS");
  ExpectError({"subscriptions", "show", "nobody"}, 4, "no client 'nobody'");
}

// A subscription added to a persistent session is stored with it.
TEST_F(Ctl, SubscriptionAddedToAPersistentSessionSurvivesARestart) {
  PahoConnectOptions keep;
  keep.clean_start = false;
  {
    PahoClient c(node_.port(), "sa-keep", MqttVersion::kV311);
    ASSERT_TRUE(c.Connect(keep));
    ASSERT_TRUE(c.Disconnect());
  }
  ASSERT_TRUE(Run({"subscriptions", "add", "sa-keep", "kept/+", "1"}).Succeeded());
  ASSERT_TRUE(node_.Restart());
  Json shown = RunJson({"subscriptions", "show", "sa-keep"});
  ASSERT_EQ(shown["subscriptions"].size(), 1u);
  EXPECT_EQ(shown["subscriptions"][0]["filter"], "kept/+");
  PahoClient pub(node_.port(), "sa-keep-pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("kept/1", "while offline", 1));
  PahoClient c(node_.port(), "sa-keep", MqttVersion::kV311);
  ASSERT_TRUE(c.Connect(keep));
  std::optional<ReceivedMessage> m = c.Receive();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->payload, "while offline");
}

// ---------------------------------------------------------------- routes

TEST_F(Ctl, RoutesListAndShow) {
  PahoClient a(node_.port(), "route-a", MqttVersion::kV5);
  PahoClient b(node_.port(), "route-b", MqttVersion::kV5);
  ASSERT_TRUE(a.Connect());
  ASSERT_TRUE(b.Connect());
  ASSERT_TRUE(a.Subscribe("sensors/+", 1));
  ASSERT_TRUE(b.Subscribe("sensors/+", 0));
  ASSERT_TRUE(b.Subscribe("sensors/room1", 2));
  ASSERT_TRUE(b.Subscribe("$share/g/jobs", 1));
  Json routes = RunJson({"routes", "list"});
  ASSERT_EQ(routes.size(), 3u) << routes.dump();
  EXPECT_EQ(routes[0], (Json{{"topic", "$share/g/jobs"}, {"node", "test@127.0.0.1"}, {"subscribers", 1}}));
  EXPECT_EQ(routes[1]["topic"], "sensors/+");
  EXPECT_EQ(routes[1]["subscribers"], 2);
  EXPECT_EQ(routes[2]["topic"], "sensors/room1");
  EXPECT_EQ(RunJson({"routes", "list", "--limit", "1"}).size(), 1u);
  CommandResult human = Run({"routes", "list"});
  EXPECT_TRUE(std::regex_search(human.out, std::regex("\nsensors/\\+ +test@127\\.0\\.0\\.1 +2\n")))
      << human.out;

  Json shown = RunJson({"routes", "show", "sensors/room1"});
  ASSERT_EQ(shown["subscribers"].size(), 2u);
  ExpectError({"routes", "show", "nowhere"}, 4, "no route for 'nowhere'");
  ExpectError({"routes", "show", "sensors/#"}, 2, "bad topic name");
}

// ---------------------------------------------------------------- retained

TEST_F(Ctl, RetainedListShowAndClean) {
  PahoClient pub(node_.port(), "ret-pub", MqttVersion::kV311);
  ASSERT_TRUE(pub.Connect());
  ASSERT_TRUE(pub.Publish("r/1", "one", 1, true));
  ASSERT_TRUE(pub.Publish("r/2", std::string("\x00\xff", 2), 0, true));
  ASSERT_TRUE(pub.Publish("other/x", "x", 1, true));
  ASSERT_TRUE(WaitFor([&] { return RunJson({"retained", "list"}).size() == 3; }, kDefaultTimeout,
                      "three retained messages"));
  Json r_only = RunJson({"retained", "list", "r/#"});
  ASSERT_EQ(r_only.size(), 2u);
  EXPECT_EQ(r_only[0]["topic"], "r/1");
  EXPECT_EQ(r_only[0]["size"], 3);
  CommandResult human = Run({"retained", "list"});
  EXPECT_TRUE(std::regex_search(human.out, std::regex("^TOPIC +QOS +SIZE +RECEIVED\n")))
      << human.out;

  Json one = RunJson({"retained", "show", "r/1"});
  EXPECT_EQ(one["payload"], "one");
  EXPECT_EQ(one["encoding"], "utf-8");
  Json binary = RunJson({"retained", "show", "r/2"});
  EXPECT_EQ(binary["payload"], "AP8=");
  EXPECT_EQ(binary["encoding"], "base64");
  ExpectError({"retained", "show", "r/3"}, 4, "no retained message on 'r/3'");
  ExpectError({"retained", "list", "r/#/x"}, 2, "bad topic filter");

  CommandResult cleaned = Run({"retained", "clean", "r/#"});
  ASSERT_TRUE(cleaned.Succeeded()) << cleaned.ToString();
  EXPECT_EQ(cleaned.out, "2 retained messages deleted\n");
  EXPECT_EQ(RunJson({"retained", "list"}).size(), 1u);
  // Gone from disk too: not back after a restart.
  ASSERT_TRUE(node_.Restart());
  EXPECT_EQ(RunJson({"retained", "list"}).size(), 1u);
  EXPECT_EQ(RunJson({"retained", "clean"})["deleted"], 1);
  EXPECT_TRUE(RunJson({"retained", "list"}).empty());
}

// ---------------------------------------------------------------- listeners

TEST_F(Ctl, ListenersStopStartAndRestart) {
  const uint16_t port = node_.port();
  Json listeners = RunJson({"listeners"});
  ASSERT_EQ(listeners.size(), 1u);
  EXPECT_EQ(listeners[0]["id"], "tcp.default");
  EXPECT_EQ(listeners[0]["bind"], "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(listeners[0]["running"], true);
  PahoClient stays(port, "stays", MqttVersion::kV5);
  ASSERT_TRUE(stays.Connect());
  CommandResult human = Run({"listeners"});
  EXPECT_TRUE(std::regex_search(
      human.out, std::regex("^ID +TYPE +BIND +PROXY +CONNECTIONS +MAX +RATE +RUNNING\n"
                            "tcp\\.default +tcp +127\\.0\\.0\\.1:[0-9]+ +no +1 +0 +0 +yes\n")))
      << human.out;

  CommandResult stopped = Run({"listeners", "stop", "tcp.default"});
  ASSERT_TRUE(stopped.Succeeded()) << stopped.ToString();
  EXPECT_EQ(stopped.out, "Listener tcp.default stopped\n");
  RawClient refused;
  EXPECT_FALSE(refused.Connect(port, std::chrono::milliseconds(500)));
  EXPECT_TRUE(stays.IsConnected());  // connected clients stay
  EXPECT_EQ(RunJson({"listeners"})[0]["running"], false);
  ExpectError({"listeners", "stop", "tcp.default"}, 2, "is not running");

  ASSERT_TRUE(Run({"listeners", "start", "tcp.default"}).Succeeded());
  PahoClient again(port, "again", MqttVersion::kV311);  // the same port
  EXPECT_TRUE(again.Connect());
  ExpectError({"listeners", "start", "tcp.default"}, 2, "is already running");
  CommandResult restarted = Run({"listeners", "restart", "tcp.default"});
  EXPECT_EQ(restarted.out, "Listener tcp.default restarted\n") << restarted.ToString();
  PahoClient third(port, "third", MqttVersion::kV311);
  EXPECT_TRUE(third.Connect());
  ExpectError({"listeners", "stop", "tcp.nope"}, 4, "no listener 'tcp.nope'");
}

// ---------------------------------------------------------------- log, reload

TEST_F(Ctl, LogLevelShowsAndSets) {
  CommandResult r = Run({"log", "level"});
  EXPECT_EQ(r.out, "debug\n") << r.ToString();
  r = Run({"log", "level", "warn"});
  EXPECT_EQ(r.out, "warn\n") << r.ToString();
  EXPECT_EQ(RunJson({"log", "level"})["level"], "warn");
  ExpectError({"log", "level", "loud"}, 2, "LEVEL must be error, warn, info, debug or trace");
}

TEST_F(Ctl, ReloadRereadsTheConfigAndKeepsItOnErrors) {
  ASSERT_TRUE(Run({"log", "level", "error"}).Succeeded());
  CommandResult r = Run({"reload"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(r.out, "Reloaded " + node_.config_path() + "\n");
  EXPECT_EQ(RunJson({"log", "level"})["level"], "debug");  // back to the file's level

  // A misspelt key in the file's [mqtt] section (a second [mqtt] header
  // would be a syntax error, which ferryctl reports before asking the node).
  std::string conf = ReadFileOrEmpty(node_.config_path());
  ASSERT_NE(conf.find("[mqtt]\n"), std::string::npos) << conf;
  conf.replace(conf.find("[mqtt]\n"), 7, "[mqtt]\nmax_inflite = 3\n");
  ASSERT_TRUE(WriteFile(node_.config_path(), conf));
  r = Run({"reload"});
  EXPECT_EQ(r.status.code, 1) << r.ToString();
  EXPECT_NE(r.err.find("keeping the running config"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(Run({"status"}).Succeeded());
}

// ---------------------------------------------------------------- passwd

TEST_F(Ctl, PasswdWritesAnEntryTheNodeAccepts) {
  const std::string file = node_.dir() + "/passwd";
  CommandResult r = FerryctlRaw({"passwd", file, "carol"}, {}, "s3cret\n");
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  EXPECT_EQ(ReadFileOrEmpty(file).rfind("carol:$7$", 0), 0u);
  ASSERT_TRUE(node_.Stop());
  node_.config().Set("mqtt", "password_file", file);
  node_.config().Set("mqtt", "allow_anonymous", "false");
  ASSERT_TRUE(node_.Start());
  PahoConnectOptions good;
  good.username = "carol";
  good.password = "s3cret";
  PahoClient c(node_.port(), "carol-1", MqttVersion::kV311);
  EXPECT_TRUE(c.Connect(good));
  PahoConnectOptions bad = good;
  bad.password = "wrong";
  PahoClient d(node_.port(), "carol-2", MqttVersion::kV311);
  EXPECT_FALSE(d.Connect(bad));

  r = FerryctlRaw({"passwd", file});
  EXPECT_EQ(r.status.code, 2) << r.ToString();
  EXPECT_NE(r.err.find("usage: ferryctl passwd FILE USER"), std::string::npos) << r.err;
  r = FerryctlRaw({"passwd", file, "bad:name"}, {}, "x\n");
  EXPECT_EQ(r.status.code, 1) << r.ToString();
  r = FerryctlRaw({"passwd", file, "dave"});  // no password on stdin
  EXPECT_EQ(r.status.code, 1) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: no password given\n");
}

// ---------------------------------------------------------------- help, usage

TEST_F(Ctl, HelpListsTheNodesCommands) {
  CommandResult r = Run({"help"});
  ASSERT_TRUE(r.Succeeded()) << r.ToString();
  for (const char* line : {"  clients kick ID", "  subscriptions add ID FILTER QOS",
                           "  retained list [FILTER]", "  listeners stop ID", "  reload",
                           "  log level [LEVEL]", "  passwd FILE USER"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
  r = Run({"help", "clients", "list"});
  EXPECT_NE(r.out.find("usage: ferryctl clients list [--limit N] [--username U] [--connected]"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(Run({"clients", "list", "--help"}).out, r.out);
  Json j = RunJson({"help"});
  EXPECT_GT(j["commands"].size(), 20u);
}

TEST_F(Ctl, BadArgumentsPrintUsage) {
  CommandResult r = Run({"clients"});
  EXPECT_EQ(r.status.code, 2) << r.ToString();
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "ferryctl: unknown command 'clients'; see 'ferryctl help'");
  EXPECT_NE(r.err.find("usage: ferryctl clients kick ID [--session] [--local]\n"),
            std::string::npos)
      << r.err;
  ExpectError({"frobnicate"}, 2, "unknown command 'frobnicate'");
  ExpectError({"clients", "show", "a", "b"}, 2, "unexpected argument 'b'");
  ExpectError({"clients", "list", "--nope"}, 2, "unknown option --nope");
  r = FerryctlRaw({});
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("no command given"), std::string::npos);
  r = FerryctlRaw({"--socket"});
  EXPECT_EQ(r.status.code, 2);
  r = FerryctlRaw({"-c", "/nonexistent.conf", "status"});
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("/nonexistent.conf: cannot open"), std::string::npos) << r.err;
}

// etc/bash_completion.d/ferryctl asks the node for its commands and ids.
TEST_F(Ctl, BashCompletionAsksTheNode) {
  PahoClient c(node_.port(), "complete-me", MqttVersion::kV311);
  ASSERT_TRUE(c.Connect());
  const std::string bin_dir = FerryctlBinary().substr(0, FerryctlBinary().rfind('/'));
  auto complete = [&](const std::string& line) {
    // COMP_WORDS from `line`, plus an empty word to complete when it ends in
    // a space; prints the candidates one per line.
    const std::string script =
        "source " FERRY_SOURCE_DIR "/etc/bash_completion.d/ferryctl\n"
        "read -ra COMP_WORDS <<< \"$1\"\n"
        "[[ $1 == *' ' ]] && COMP_WORDS+=('')\n"
        "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
        "_ferryctl\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
    CommandResult r = RunCommand({"bash", "-c", script, "_", line},
                                 {{"PATH", bin_dir + ":" + std::getenv("PATH")}}, {"FERRY_"}, {});
    EXPECT_TRUE(r.Succeeded()) << r.ToString();
    return r.out;
  };
  const std::string conf = "ferryctl -c " + node_.config_path() + " ";
  EXPECT_EQ(complete(conf + "clients "), "kick\nlist\nshow\n");
  EXPECT_EQ(complete(conf + "clients kick "), "complete-me\n");
  EXPECT_EQ(complete(conf + "listeners stop "), "tcp.default\n");
  EXPECT_EQ(complete(conf + "broker s"), "stats\n");
  EXPECT_NE(complete(conf).find("subscriptions\n"), std::string::npos);
}

// ---------------------------------------------------------------- the socket

// The socket is the node's only guard: mode 0600, owned by the node's user.
// As root we would pass any mode, so ferryctl is also run as 'nobody' (when
// this machine lets us switch users, and nobody can run the binary).
TEST_F(Ctl, SocketIsOnlyForTheNodesUser) {
  struct stat st{};
  ASSERT_EQ(stat(node_.admin_socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());

  CommandResult probe = RunCommand({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    FerryctlBinary(), "--version"});
  if (geteuid() != 0 || !probe.Succeeded()) {
    std::cerr << "note: cannot run ferryctl as another user here (" << probe.ToString()
              << "); checked the mode bits only\n";
    return;
  }
  // Let 'nobody' reach the socket file, so that only its mode stands in the way.
  ASSERT_EQ(chmod(node_.dir().c_str(), 0755), 0);
  ASSERT_EQ(chmod(node_.data_dir().c_str(), 0755), 0);
  CommandResult r = RunCommand({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                FerryctlBinary(), "--socket", node_.admin_socket(), "status"});
  EXPECT_EQ(r.status.code, 5) << r.ToString();
  EXPECT_EQ(r.err, "ferryctl: permission denied on admin socket " + node_.admin_socket() +
                       " (run ferryctl as the user that runs the node, or as root)\n");
}

TEST_F(Ctl, HostileSocketClientsGetAClearErrorAndTheNodeStaysUp) {
  bool closed = false;
  std::string reply = SocketExchange(node_.admin_socket(), "garbage\n", &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(reply.find(R"("kind":"bad_request","message":"request is not a JSON object")"),
            std::string::npos)
      << reply;
  reply = SocketExchange(node_.admin_socket(), R"({"v":9,"argv":["status"]})" "\n", &closed);
  EXPECT_NE(reply.find(R"("kind":"bad_version")"), std::string::npos) << reply;
  reply = SocketExchange(node_.admin_socket(), std::string(70 * 1024, 'x'), &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(reply.find(R"("kind":"too_large")"), std::string::npos) << reply;
  reply = SocketExchange(node_.admin_socket(), std::string("\0\x01\xff\n", 4), &closed);
  EXPECT_NE(reply.find(R"("kind":"bad_request")"), std::string::npos) << reply;
  reply = SocketExchange(node_.admin_socket(), R"({"v":1,"argv":["status"]})" "\n", &closed);
  EXPECT_NE(reply.find(R"("type":"value")"), std::string::npos) << reply;
  EXPECT_TRUE(Run({"status"}).Succeeded());
}

class CtlIdle : public Ctl {
 protected:
  void SetUp() override {
    node_.config().Set("admin", "idle_timeout", "300ms");
    Ctl::SetUp();
  }
};

// A client that connects and says nothing is closed after idle_timeout.
TEST_F(CtlIdle, SilentClientIsClosed) {
  bool closed = false;
  std::string reply = SocketExchange(node_.admin_socket(), "", &closed);
  EXPECT_TRUE(closed);
  EXPECT_NE(reply.find(R"("kind":"timeout")"), std::string::npos) << reply;
  reply = SocketExchange(node_.admin_socket(), R"({"v":1,"argv":[)", &closed);
  EXPECT_TRUE(closed);
  EXPECT_TRUE(Run({"status"}).Succeeded());
}

}  // namespace
}  // namespace ferry::testing
