// Process-wide logging: one line per event, "<UTC time> <LEVEL> <message>",
// to stderr or a file. Any thread may log; lines never interleave.
//
// The sink and level are process state set once by ferryd at start-up (and
// the level again on SIGHUP); everything else only reads them.
#pragma once

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::core {

enum class LogLevel : int { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

// Parses "error", "warn", "info", "debug", "trace".
bool ParseLogLevel(std::string_view text, LogLevel* level);
const char* LogLevelName(LogLevel level);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Sends log lines to `path` (appending), or to stderr when path is empty.
Status SetLogFile(const std::string& path);
bool LogEnabled(LogLevel level);

void Logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// "7099" as "7,099": counts in log lines a person reads.
std::string FormatCount(uint64_t n);

// Milliseconds of a monotonic clock (CLOCK_MONOTONIC), for LogLimiter.
uint64_t MonotonicMs();

// Keeps a warning that can repeat thousands of times a second (a refused
// connection, a timed-out socket) to one line per window, with a count of
// the rest. The first occurrence of a window is logged as it comes; the
// others are only counted, and the count is logged as its own line once the
// window is over, by Flush() or by the next occurrence, whichever comes
// first:
//
//   LogLimiter timeouts_{"connect timeouts", LogLevel::kInfo};
//   FERRY_LOG_LIMITED(timeouts_, "connection from %s did not ...", peer);
//   ...  // 7,099 more within 10 s, then from a periodic timer:
//   timeouts_.Flush();
//   -> INFO connection from 127.0.0.1:40000 did not ...
//   -> INFO connect timeouts: 7,099 more in the last 10 s
//
// Any thread (a mutex guards the counts). The clock is injected so that
// tests can step it.
class LogLimiter {
 public:
  using Clock = std::function<uint64_t()>;  // milliseconds, monotonic

  // `what` names the repeated event in the count line.
  explicit LogLimiter(std::string what, LogLevel level = LogLevel::kWarn,
                      std::chrono::milliseconds window = std::chrono::seconds(10),
                      Clock clock = MonotonicMs);
  LogLimiter(const LogLimiter&) = delete;
  LogLimiter& operator=(const LogLimiter&) = delete;

  LogLevel level() const { return level_; }
  // True if this occurrence is to be logged (the first of a window); false
  // if it was counted instead. Reports the count of an ended window first.
  bool Admit();
  // Logs the count of a window that has ended, if any occurrence was
  // suppressed in it. Call it now and then (a housekeeping timer).
  void Flush();
  // Occurrences counted and not yet reported.
  uint64_t suppressed() const;

 private:
  // REQUIRES: mu_ held. The clock, not earlier than the window's start.
  uint64_t Now() const;
  // REQUIRES: mu_ held. Logs and resets the count if the window is over;
  // true if a new window may start.
  bool EndWindow(uint64_t now);

  const std::string what_;
  const LogLevel level_;
  const uint64_t window_ms_;
  const Clock clock_;
  mutable std::mutex mu_;
  bool open_ = false;        // a window is running (guarded by mu_)
  uint64_t start_ms_ = 0;    // when it began (guarded by mu_)
  uint64_t suppressed_ = 0;  // occurrences in it not logged (guarded by mu_)
};

}  // namespace ferry::core

#define FERRY_LOG(level, ...)                                              \
  do {                                                                     \
    if (::ferry::core::LogEnabled(level)) ::ferry::core::Logf(level, __VA_ARGS__); \
  } while (0)
// Logs through `limiter` (a LogLimiter) at its level.
#define FERRY_LOG_LIMITED(limiter, ...)                                      \
  do {                                                                       \
    if (::ferry::core::LogEnabled((limiter).level()) && (limiter).Admit()) { \
      ::ferry::core::Logf((limiter).level(), __VA_ARGS__);                   \
    }                                                                        \
  } while (0)
#define FERRY_ERROR(...) FERRY_LOG(::ferry::core::LogLevel::kError, __VA_ARGS__)
#define FERRY_WARN(...) FERRY_LOG(::ferry::core::LogLevel::kWarn, __VA_ARGS__)
#define FERRY_INFO(...) FERRY_LOG(::ferry::core::LogLevel::kInfo, __VA_ARGS__)
#define FERRY_DEBUG(...) FERRY_LOG(::ferry::core::LogLevel::kDebug, __VA_ARGS__)
#define FERRY_TRACE(...) FERRY_LOG(::ferry::core::LogLevel::kTrace, __VA_ARGS__)
