// Process-wide logging: one line per event, "<UTC time> <LEVEL> <message>",
// to stderr or a file. Any thread may log; lines never interleave.
//
// The sink and level are process state set once by ferryd at start-up (and
// the level again on SIGHUP); everything else only reads them.
#pragma once

#include <cstdarg>
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

}  // namespace ferry::core

#define FERRY_LOG(level, ...)                                              \
  do {                                                                     \
    if (::ferry::core::LogEnabled(level)) ::ferry::core::Logf(level, __VA_ARGS__); \
  } while (0)
#define FERRY_ERROR(...) FERRY_LOG(::ferry::core::LogLevel::kError, __VA_ARGS__)
#define FERRY_WARN(...) FERRY_LOG(::ferry::core::LogLevel::kWarn, __VA_ARGS__)
#define FERRY_INFO(...) FERRY_LOG(::ferry::core::LogLevel::kInfo, __VA_ARGS__)
#define FERRY_DEBUG(...) FERRY_LOG(::ferry::core::LogLevel::kDebug, __VA_ARGS__)
#define FERRY_TRACE(...) FERRY_LOG(::ferry::core::LogLevel::kTrace, __VA_ARGS__)
