// Summary formatting and the /proc parsers behind the CPU and RSS figures.
#include "bench/summary.h"

#include <gtest/gtest.h>

#include <string>

#include "bench/proc_stats.h"

namespace ferry::bench {
namespace {

TEST(BenchSummary, RatesUseTheirOwnWindows) {
  Summary s;
  s.connected = 100;
  s.connect_s = 0.5;
  s.sent = 1000;
  s.publish_s = 2;
  s.received = 300;
  s.first_recv_s = 1;
  s.last_recv_s = 4;
  EXPECT_DOUBLE_EQ(s.ConnectRate(), 200);
  EXPECT_DOUBLE_EQ(s.SendRate(), 500);
  EXPECT_DOUBLE_EQ(s.RecvRate(), 100);
}

TEST(BenchSummary, RatesOfNothingAreZero) {
  Summary s;
  EXPECT_EQ(s.ConnectRate(), 0);
  EXPECT_EQ(s.SendRate(), 0);
  EXPECT_EQ(s.RecvRate(), 0);
}

TEST(BenchSummary, JsonHasEveryFieldAndMarksUnmeasuredLatency) {
  Summary s;
  s.mode = "pubsub";
  s.clients = 100;
  s.elapsed_s = 2;
  s.bench_cpu_s = 1;
  std::string j = FormatJson(s);
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_NE(j.find("\"mode\":\"pubsub\""), std::string::npos);
  EXPECT_NE(j.find("\"clients\":100,"), std::string::npos);
  EXPECT_NE(j.find("\"latency_p99_ns\":-1,"), std::string::npos);
  EXPECT_NE(j.find("\"bench_cpu_pct\":50.0,"), std::string::npos);
  EXPECT_NE(j.find("\"broker_cpu_pct\":-1.0,"), std::string::npos);
  EXPECT_EQ(j.find(",,"), std::string::npos);
}

TEST(BenchSummary, JsonCarriesLatencyPercentiles) {
  Summary s;
  s.mode = "sub";
  for (int i = 1; i <= 100; ++i) s.latency.Record(static_cast<uint64_t>(i));
  std::string j = FormatJson(s);
  EXPECT_NE(j.find("\"latency_p50_ns\":50,"), std::string::npos) << j;
  EXPECT_NE(j.find("\"latency_max_ns\":100,"), std::string::npos) << j;
}

TEST(BenchSummary, TextNamesTheFigures) {
  Summary s;
  s.mode = "pubsub";
  s.sent = 10;
  s.received = 10;
  s.expected = 10;
  s.lost = 0;
  s.latency.Record(1500000);
  std::string t = FormatText(s);
  EXPECT_NE(t.find("sent"), std::string::npos);
  EXPECT_NE(t.find("expected 10"), std::string::npos);
  EXPECT_NE(t.find("lost 0"), std::string::npos);
  EXPECT_NE(t.find("p99"), std::string::npos);
}

TEST(BenchProcStats, ParsesUserAndSystemTicks) {
  // A command name with spaces and a ')' inside must not shift the fields.
  const char* stat =
      "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
  auto t = ParseProcStat(stat);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->user, 250u);
  EXPECT_EQ(t->system, 75u);
}

TEST(BenchProcStats, RejectsTruncatedStat) {
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3").has_value());
  EXPECT_FALSE(ParseProcStat("no parenthesis here").has_value());
}

TEST(BenchProcStats, ParsesVmRss) {
  const char* status = "Name:\tferryd\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
  EXPECT_EQ(ParseVmRss(status), 2048u * 1024);
  EXPECT_FALSE(ParseVmRss("Name:\tx\n").has_value());
}

TEST(BenchProcStats, ReadsItsOwnProcess) {
  EXPECT_TRUE(ProcessCpuSeconds(getpid()).has_value());
  auto rss = ProcessRssBytes(getpid());
  ASSERT_TRUE(rss.has_value());
  EXPECT_GT(*rss, 0u);
}

}  // namespace
}  // namespace ferry::bench
