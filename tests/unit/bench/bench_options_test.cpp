// ferry-bench command line parsing.
#include "bench/options.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace ferry::bench {
namespace {

Result<Options> Parse(std::vector<std::string> args) {
  std::vector<const char*> argv = {"ferry-bench"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

::testing::AssertionResult FailsWith(std::vector<std::string> args, const std::string& text) {
  auto r = Parse(args);
  if (r.ok()) return ::testing::AssertionFailure() << "accepted";
  if (r.status().message().find(text) == std::string::npos) {
    return ::testing::AssertionFailure() << "message: " << r.status().message();
  }
  return ::testing::AssertionSuccess();
}

TEST(BenchOptions, EmqttBenchStyleFlags) {
  auto r = Parse({"pub", "-h", "10.0.0.1", "-p", "1884", "-c", "35000", "-n", "5", "-i", "2",
                  "-I", "10", "-t", "bench/%i", "-s", "256", "-q", "1", "-L", "1000", "-k", "60",
                  "-u", "user", "-P", "secret", "-V", "4"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->mode, Mode::kPub);
  EXPECT_EQ(r->host, "10.0.0.1");
  EXPECT_EQ(r->port, 1884);
  EXPECT_EQ(r->clients, 35000u);
  EXPECT_EQ(r->start_index, 5u);
  EXPECT_EQ(r->connect_interval_ms, 2u);
  EXPECT_EQ(r->message_interval_us, 10000u);
  EXPECT_EQ(r->topic, "bench/%i");
  EXPECT_EQ(r->payload_size, 256u);
  EXPECT_EQ(r->qos, 1);
  EXPECT_EQ(r->limit, 1000u);
  EXPECT_EQ(r->keepalive_s, 60u);
  EXPECT_EQ(r->username, "user");
  EXPECT_EQ(r->password, "secret");
  EXPECT_EQ(r->version, 4);
}

TEST(BenchOptions, MessageIntervalTakesFractionsOfAMillisecond) {
  auto r = Parse({"pub", "-t", "x", "-I", "0.1"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->message_interval_us, 100u);
  r = Parse({"pub", "-t", "x", "-I", "0"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->message_interval_us, 0u);
  for (const char* bad : {"0.0001", "-1", "1e9", "x", ""}) {
    EXPECT_FALSE(Parse({"pub", "-t", "x", "-I", bad}).ok()) << bad;
  }
}

TEST(BenchOptions, LongFormsWithEquals) {
  auto r = Parse({"sub", "--topic=a/#", "--qos=2", "--ifaddr=127.0.0.2,127.0.0.3", "--json"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->mode, Mode::kSub);
  EXPECT_EQ(r->topic, "a/#");
  EXPECT_EQ(r->qos, 2);
  EXPECT_EQ(r->ifaddrs, (std::vector<std::string>{"127.0.0.2", "127.0.0.3"}));
  EXPECT_TRUE(r->json);
}

TEST(BenchOptions, DefaultsFollowEmqttBench) {
  auto r = Parse({"conn"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->clients, 200u);
  EXPECT_EQ(r->connect_interval_ms, 10u);
  EXPECT_EQ(r->message_interval_us, 1000000u);
  EXPECT_EQ(r->version, 5);
  EXPECT_EQ(r->port, 1883);
  EXPECT_TRUE(r->clean);
  EXPECT_NE(r->client_id.find("%i"), std::string::npos);
}

TEST(BenchOptions, PubSubDefaultsSubscriptionToThePublishTopic) {
  auto r = Parse({"pubsub", "-t", "x/y", "-q", "1"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->sub_topic, "x/y");
  EXPECT_EQ(r->sub_qos, 1);
  EXPECT_EQ(r->sub_port, 0);  // subscribers on -p
  r = Parse({"pubsub", "-t", "x/y", "-p", "1884", "--sub-port", "1885"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->sub_port, 1885);
  EXPECT_FALSE(Parse({"pubsub", "-t", "x/y", "--sub-port", "0"}).ok());
}

TEST(BenchOptions, PersistentV5SessionGetsAnExpiry) {
  auto r = Parse({"sub", "-t", "a", "-C", "false"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->clean);
  EXPECT_GT(r->session_expiry_s, 0u);
}

TEST(BenchOptions, TlsFlagsTurnTlsOn) {
  auto r = Parse({"conn", "--cafile", "ca.pem", "--cert", "c.pem", "--key", "k.pem"});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->tls);
  EXPECT_EQ(r->cafile, "ca.pem");
  auto insecure = Parse({"conn", "--insecure"});
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE(insecure->tls);
  EXPECT_TRUE(insecure->insecure);
}

TEST(BenchOptions, Rejections) {
  EXPECT_TRUE(FailsWith({}, "missing mode"));
  EXPECT_TRUE(FailsWith({"flood"}, "unknown mode"));
  EXPECT_TRUE(FailsWith({"pub"}, "a topic is required"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-q", "3"}, "-q"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-p", "0"}, "-p"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-c", "many"}, "expected a number"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-V", "6"}, "-V"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "--bogus", "1"}, "unknown flag"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-c"}, "needs a value"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-C", "maybe"}, "true or false"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "-d", "-1"}, "seconds"));
  EXPECT_TRUE(FailsWith({"pub", "-t", "a", "--window", "10"}, "only for pubsub"));
  EXPECT_TRUE(FailsWith({"sub", "-t", "a", "--exit-after-subscribe"}, "-C false"));
  EXPECT_TRUE(FailsWith({"conn", "--key", "k.pem"}, "needs --cert"));
}

TEST(BenchOptions, HelpIsReportedAsSuch) {
  auto r = Parse({"pub", "--help"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "help");
  EXPECT_NE(std::string(Usage()).find("--ifaddr"), std::string::npos);
}

// Every flag tokens in the usage text, e.g. "-c" and "--count" from
// "  -c, --count N   clients (200)".
std::set<std::string> FlagsInUsage() {
  std::set<std::string> out;
  const std::string text = Usage();
  for (size_t i = 0; i < text.size(); ++i) {
    bool starts = text[i] == '-' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n' ||
                                     text[i - 1] == ',' || text[i - 1] == '(');
    if (!starts) continue;
    size_t end = i;
    while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) ||
                                 text[end] == '-' || text[end] == '_')) {
      ++end;
    }
    if (end > i + 1 && std::isalpha(static_cast<unsigned char>(text[i + 1 + (text[i + 1] == '-')]))) {
      out.insert(text.substr(i, end - i));
    }
    i = end;
  }
  return out;
}

TEST(BenchOptions, UsageDocumentsEveryFlagAndNoOther) {
  std::set<std::string> known;
  for (std::string_view f : kValueFlags) known.insert(std::string(f));
  for (std::string_view f : kSwitches) known.insert(std::string(f));
  known.insert("--help");
  const std::set<std::string> documented = FlagsInUsage();
  for (const std::string& f : known) EXPECT_TRUE(documented.count(f)) << f << " is not in Usage()";
  for (const std::string& f : documented) EXPECT_TRUE(known.count(f)) << f << " in Usage() is no flag";
}

TEST(BenchOptions, EveryListedFlagIsAccepted) {
  for (std::string_view f : kSwitches) {
    auto r = Parse({"pubsub", "-t", "a", std::string(f)});
    if (f == "--exit-after-subscribe") r = Parse({"sub", "-t", "a", "-C", "false", std::string(f)});
    EXPECT_TRUE(r.ok()) << f << ": " << r.status().message();
  }
  for (std::string_view f : kValueFlags) {
    auto r = Parse({"pubsub", "-t", "a", std::string(f), "1"});
    // A value of 1 is valid for every flag taking a number; the others only
    // must not be unknown.
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().find("unknown flag"), std::string::npos) << f;
    }
  }
}

}  // namespace
}  // namespace ferry::bench
