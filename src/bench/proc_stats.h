// CPU time and resident memory of a process, from /proc: ferry-bench reports
// its own CPU beside the broker's, so a reader can tell whether the load
// generator was the bottleneck.
//
// The parsers are pure (they take the file's text); the readers open
// /proc/PID/stat and /proc/PID/status. Any thread may call them.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace ferry::bench {

struct CpuTicks {
  uint64_t user = 0;    // clock ticks (sysconf(_SC_CLK_TCK))
  uint64_t system = 0;
};

// Fields 14 and 15 (utime, stime) of /proc/PID/stat. The command name in
// field 2 may hold spaces and parentheses, so fields are counted from the
// last ')'.
inline std::optional<CpuTicks> ParseProcStat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::istringstream in{std::string(text.substr(close + 1))};
  std::string field;
  CpuTicks t;
  // After ')': field 3 (state) is the first; utime is field 14.
  for (int n = 3; n <= 15; ++n) {
    if (!(in >> field)) return std::nullopt;
    if (n == 14 || n == 15) {
      char* end = nullptr;
      uint64_t v = std::strtoull(field.c_str(), &end, 10);
      if (end == field.c_str() || *end != '\0') return std::nullopt;
      (n == 14 ? t.user : t.system) = v;
    }
  }
  return t;
}

// VmRSS of /proc/PID/status, in bytes.
inline std::optional<uint64_t> ParseVmRss(std::string_view text) {
  size_t at = text.find("VmRSS:");
  if (at == std::string_view::npos) return std::nullopt;
  std::istringstream in{std::string(text.substr(at + 6))};
  uint64_t kb = 0;
  std::string unit;
  if (!(in >> kb >> unit) || unit != "kB") return std::nullopt;
  return kb * 1024;
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Seconds of CPU (user + system) the process has used; nullopt if it is gone.
inline std::optional<double> ProcessCpuSeconds(int pid) {
  auto t = ParseProcStat(ReadWholeFile("/proc/" + std::to_string(pid) + "/stat"));
  if (!t) return std::nullopt;
  return static_cast<double>(t->user + t->system) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

inline std::optional<uint64_t> ProcessRssBytes(int pid) {
  return ParseVmRss(ReadWholeFile("/proc/" + std::to_string(pid) + "/status"));
}

}  // namespace ferry::bench
