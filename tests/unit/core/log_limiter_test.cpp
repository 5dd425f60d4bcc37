// LogLimiter: one line per window and a count of the rest (issue 9, point 8).
// The clock is a variable the test steps; the log goes to a file the test
// reads back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/log.h"

namespace ferry::core {
namespace {

class LogLimiterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-log-limiter-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
    level_ = GetLogLevel();
    SetLogLevel(LogLevel::kInfo);
    ASSERT_TRUE(SetLogFile(path_).ok());
  }
  void TearDown() override {
    (void)SetLogFile("");
    SetLogLevel(level_);
    std::remove(path_.c_str());
  }

  // The messages logged so far (without time and level).
  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      size_t level_end = line.find(' ', line.find(' ') + 1);
      out.push_back(line.substr(level_end + 1));
    }
    return out;
  }

  LogLimiter::Clock Clock() {
    return [this] { return now_ms_; };
  }

  uint64_t now_ms_ = 1000;
  std::string path_;
  LogLevel level_ = LogLevel::kInfo;
};

TEST_F(LogLimiterTest, FirstOfAWindowIsLoggedTheRestCounted) {
  LogLimiter limiter("timeouts", LogLevel::kInfo, std::chrono::seconds(10), Clock());
  for (int i = 0; i < 7100; ++i) {
    FERRY_LOG_LIMITED(limiter, "socket %d timed out", i);
    now_ms_ += 1;  // 7.1 s: all in one window
  }
  EXPECT_EQ(Lines(), std::vector<std::string>{"socket 0 timed out"});
  EXPECT_EQ(limiter.suppressed(), 7099u);
  limiter.Flush();  // the window is not over yet
  EXPECT_EQ(Lines().size(), 1u);
  now_ms_ = 1000 + 10000;
  limiter.Flush();
  EXPECT_EQ(Lines(), (std::vector<std::string>{"socket 0 timed out",
                                               "timeouts: 7,099 more in the last 10 s"}));
  EXPECT_EQ(limiter.suppressed(), 0u);
  limiter.Flush();  // reported once
  EXPECT_EQ(Lines().size(), 2u);
}

TEST_F(LogLimiterTest, NextOccurrenceAfterTheWindowReportsTheCountFirst) {
  LogLimiter limiter("refusals", LogLevel::kWarn, std::chrono::seconds(10), Clock());
  FERRY_LOG_LIMITED(limiter, "refused %d", 1);
  FERRY_LOG_LIMITED(limiter, "refused %d", 2);
  FERRY_LOG_LIMITED(limiter, "refused %d", 3);
  now_ms_ += 25000;
  FERRY_LOG_LIMITED(limiter, "refused %d", 4);
  EXPECT_EQ(Lines(), (std::vector<std::string>{"refused 1", "refusals: 2 more in the last 25 s",
                                               "refused 4"}));
}

TEST_F(LogLimiterTest, OccurrencesFarApartAreAllLogged) {
  LogLimiter limiter("x", LogLevel::kWarn, std::chrono::seconds(10), Clock());
  for (int i = 0; i < 3; ++i) {
    FERRY_LOG_LIMITED(limiter, "event %d", i);
    now_ms_ += 10000;
    limiter.Flush();
  }
  EXPECT_EQ(Lines(), (std::vector<std::string>{"event 0", "event 1", "event 2"}));
}

// A thread that read the clock just before another opened the window sees
// a "now" before the window's start: that is within the window, not (by
// unsigned wrap-around) long after it.
TEST_F(LogLimiterTest, AClockBehindTheWindowStartIsWithinTheWindow) {
  LogLimiter limiter("refusals", LogLevel::kWarn, std::chrono::seconds(10), Clock());
  FERRY_LOG_LIMITED(limiter, "refused %d", 1);
  now_ms_ -= 5;
  FERRY_LOG_LIMITED(limiter, "refused %d", 2);
  limiter.Flush();
  EXPECT_EQ(Lines(), std::vector<std::string>{"refused 1"});
  EXPECT_EQ(limiter.suppressed(), 1u);
  now_ms_ += 5 + 10000;
  limiter.Flush();
  EXPECT_EQ(Lines(), (std::vector<std::string>{"refused 1", "refusals: 1 more in the last 10 s"}));
}

TEST_F(LogLimiterTest, ALevelBelowTheLogLevelLogsNothing) {
  LogLimiter limiter("x", LogLevel::kDebug, std::chrono::seconds(10), Clock());
  for (int i = 0; i < 5; ++i) FERRY_LOG_LIMITED(limiter, "event %d", i);
  now_ms_ += 10000;
  limiter.Flush();
  EXPECT_TRUE(Lines().empty());
}

TEST(FormatCount, GroupsThousands) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000), "1,000");
  EXPECT_EQ(FormatCount(7099), "7,099");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
}

}  // namespace
}  // namespace ferry::core
