#include "core/log.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <sys/time.h>

namespace ferry::core {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_mu;
FILE* g_file = nullptr;  // guarded by g_mu; nullptr means stderr

const char* const kNames[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  static const std::pair<std::string_view, LogLevel> kLevels[] = {
      {"error", LogLevel::kError}, {"warn", LogLevel::kWarn},   {"warning", LogLevel::kWarn},
      {"info", LogLevel::kInfo},   {"debug", LogLevel::kDebug}, {"trace", LogLevel::kTrace}};
  for (const auto& [name, value] : kLevels) {
    if (name == text) {
      *level = value;
      return true;
    }
  }
  return false;
}

const char* LogLevelName(LogLevel level) { return kNames[static_cast<int>(level)]; }

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

Status SetLogFile(const std::string& path) {
  FILE* f = nullptr;
  if (!path.empty()) {
    f = std::fopen(path.c_str(), "a");
    if (f == nullptr) {
      return Status::IoError("cannot open log file '" + path + "': " + std::strerror(errno));
    }
    std::setvbuf(f, nullptr, _IOLBF, 0);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = f;
  return Status::Ok();
}

void Logf(LogLevel level, const char* fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  timeval tv;
  gettimeofday(&tv, nullptr);
  tm utc;
  gmtime_r(&tv.tv_sec, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(tv.tv_usec / 1000));
  std::lock_guard<std::mutex> lock(g_mu);
  FILE* out = g_file != nullptr ? g_file : stderr;
  std::fprintf(out, "%s %s %s\n", stamp, kNames[static_cast<int>(level)], msg);
  std::fflush(out);
}

std::string FormatCount(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

uint64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

LogLimiter::LogLimiter(std::string what, LogLevel level, std::chrono::milliseconds window,
                       Clock clock)
    : what_(std::move(what)),
      level_(level),
      window_ms_(static_cast<uint64_t>(window.count())),
      clock_(std::move(clock)) {}

uint64_t LogLimiter::Now() const {
  // Read under mu_, so no other thread opens a window after the reading;
  // and never before the window's start, which could wrap `now - start_ms_`
  // around, whatever the injected clock does.
  return std::max(clock_(), start_ms_);
}

bool LogLimiter::EndWindow(uint64_t now) {
  if (open_ && now - start_ms_ < window_ms_) return false;
  if (suppressed_ > 0) {
    // To the nearest second: a window of 10 s flushed by a timer a few
    // hundred milliseconds after its end reads "in the last 10 s".
    const uint64_t seconds = (now - start_ms_ + 500) / 1000;
    if (LogEnabled(level_)) {
      Logf(level_, "%s: %s more in the last %llu s", what_.c_str(),
           FormatCount(suppressed_).c_str(), static_cast<unsigned long long>(seconds));
    }
    suppressed_ = 0;
  }
  open_ = false;
  return true;
}

bool LogLimiter::Admit() {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t now = Now();
  if (EndWindow(now)) {
    open_ = true;
    start_ms_ = now;
    return true;
  }
  ++suppressed_;
  return false;
}

void LogLimiter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (suppressed_ > 0) EndWindow(Now());
}

uint64_t LogLimiter::suppressed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return suppressed_;
}

}  // namespace ferry::core
