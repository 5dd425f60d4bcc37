#include "node_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <iostream>

#include "wait.h"

#ifndef FERRY_BINARY
#error "FERRY_BINARY must name the ferryd binary under test"
#endif

namespace ferry::testing {
namespace {

constexpr std::string_view kReadyMarker = " ready node=";
// A failure dump shows at most this much of the log (its end).
constexpr size_t kMaxLogDump = 256 * 1024;

std::string Tail(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  return "[... " + std::to_string(text.size() - max) + " bytes cut ...]\n" +
         text.substr(text.size() - max);
}

std::optional<Endpoint> ParseHostPort(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  Endpoint ep;
  std::string_view host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  ep.host = std::string(host);
  const std::string_view port = s.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), ep.port);
  if (ec != std::errc() || end != port.data() + port.size() || ep.port == 0) return std::nullopt;
  return ep;
}

}  // namespace

std::string FerryBinary() { return FERRY_BINARY; }

NodeProcess::NodeProcess(NodeOptions options) : options_(std::move(options)) {
  config_.Set("node", "name", options_.name);
  config_.Set("node", "data_dir", data_dir());
  config_.Set("node", "workers", "2");
  config_.Set("log", "level", "debug");
  config_.Set("listener.tcp.default", "bind", "127.0.0.1:0");
  config_.Set("mqtt", "allow_anonymous", "true");
  config_.Set("sys", "interval", "0");
  config_.Set("admin", "http_bind", "127.0.0.1:0");
  if (auto merged = config_.Merge(options_.extra_config); !merged) {
    config_error_ = merged.message();
  }
  for (const auto& [section, key, value] : options_.overrides) config_.Set(section, key, value);
}

NodeProcess::~NodeProcess() {
  if (started_ && !expected_exit_ && !child_.Running() && child_.exit_status()) {
    ADD_FAILURE() << "ferryd (" << options_.name
                  << ") exited on its own: " << child_.exit_status()->ToString();
  }
  Kill();
  if (!::testing::Test::HasFailure() || !dir_.ok()) return;
  const std::string log = Log();
  if (reported_begin_ == 0 && reported_end_ == log.size()) return;
  std::cerr << "---- ferryd log of " << options_.name << " (" << log_path() << ") ----\n"
            << Tail(log, kMaxLogDump) << "\n---- end of ferryd log ----\n";
}

::testing::AssertionResult NodeProcess::Start() {
  if (!dir_.ok()) return ::testing::AssertionFailure() << "no test directory";
  if (!config_error_.empty()) {
    return ::testing::AssertionFailure() << "bad extra_config: " << config_error_;
  }
  if (Running()) return ::testing::AssertionFailure() << "ferryd is already running";
  if (mkdir(data_dir().c_str(), 0700) != 0 && errno != EEXIST) {
    return ::testing::AssertionFailure() << "mkdir " << data_dir() << ": " << std::strerror(errno);
  }
  if (!WriteFile(config_path(), config_.Render())) {
    return ::testing::AssertionFailure() << "cannot write " << config_path();
  }
  const int log_fd = open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return ::testing::AssertionFailure() << "open " << log_path() << ": " << std::strerror(errno);
  }
  struct stat st;
  log_offset_ = fstat(log_fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  endpoints_.clear();

  SpawnOptions spawn;
  spawn.argv = options_.wrapper;
  spawn.argv.insert(spawn.argv.end(), {FerryBinary(), "-c", config_path()});
  spawn.argv.insert(spawn.argv.end(), options_.args.begin(), options_.args.end());
  spawn.env = options_.env;
  spawn.unset_env_prefixes = {"FERRY_"};
  spawn.stdout_fd = log_fd;
  spawn.stderr_fd = log_fd;
  spawn.fd_limit = options_.fd_limit;
  auto started = child_.Start(spawn);
  close(log_fd);
  if (!started) return started;
  started_ = true;
  expected_exit_ = false;
  return WaitReady();
}

::testing::AssertionResult NodeProcess::WaitReady() {
  std::string ready_line;
  bool exited = false;
  WaitFor(
      [&] {
        const std::string log = LogSinceStart();
        const auto marker = log.find(kReadyMarker);
        if (marker != std::string::npos) {
          const auto begin = log.rfind('\n', marker);
          const auto end = log.find('\n', marker);
          // Only a whole line: ferryd may be in the middle of writing it.
          if (end != std::string::npos) {
            const size_t from = begin == std::string::npos ? 0 : begin + 1;
            ready_line = log.substr(from, end - from);
            return true;
          }
        }
        exited = !child_.Running();
        return exited;
      },
      options_.ready_timeout, "the ready line");
  if (!ready_line.empty()) return ParseReadyLine(ready_line);
  expected_exit_ = true;  // reported here
  if (exited) {
    return FailWithLog("ferryd exited (" + child_.exit_status()->ToString() +
                       ") before logging its ready line");
  }
  child_.Kill();
  return FailWithLog("ferryd logged no ready line within " +
                     std::to_string(options_.ready_timeout.count()) + " ms; killed it");
}

::testing::AssertionResult NodeProcess::ParseReadyLine(std::string_view line) {
  std::string_view rest = line.substr(line.find(kReadyMarker) + kReadyMarker.size());
  bool first = true;  // the node name
  while (!rest.empty()) {
    const auto space = rest.find(' ');
    const std::string_view token = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    if (token.empty() || std::exchange(first, false)) continue;
    const auto eq = token.find('=');
    if (eq == std::string_view::npos) continue;
    const std::optional<Endpoint> ep = ParseHostPort(token.substr(eq + 1));
    if (!ep) return FailWithLog("bad listener token '" + std::string(token) + "' in ready line");
    endpoints_[std::string(token.substr(0, eq))] = *ep;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NodeProcess::Stop() {
  if (!Running()) {
    if (!started_) return ::testing::AssertionFailure() << "ferryd was never started";
    if (expected_exit_) return ::testing::AssertionSuccess();
    expected_exit_ = true;  // reported here; the destructor need not again
    return FailWithLog("ferryd had already exited on its own (" + exit_status()->ToString() + ")");
  }
  expected_exit_ = true;
  child_.Signal(SIGTERM);
  const std::optional<ExitStatus> status = child_.Wait(options_.stop_timeout);
  if (!status) {
    child_.Kill();
    return FailWithLog("ferryd did not exit within " +
                       std::to_string(options_.stop_timeout.count()) + " ms of SIGTERM; killed it");
  }
  if (!status->Clean()) {
    return FailWithLog("ferryd ended with " + status->ToString() + " on SIGTERM");
  }
  return ::testing::AssertionSuccess();
}

void NodeProcess::Kill() {
  if (!child_.Running()) return;
  expected_exit_ = true;
  child_.Kill();
}

::testing::AssertionResult NodeProcess::Restart(Ports ports) {
  if (Running()) {
    if (auto stopped = Stop(); !stopped) return stopped;
  }
  if (ports == Ports::kSame) PinPorts();
  return Start();
}

void NodeProcess::PinPorts() {
  for (const auto& [name, ep] : endpoints_) {
    const std::string host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
    const std::string bind = host + ":" + std::to_string(ep.port);
    if (name == "admin.http") {
      config_.Set("admin", "http_bind", bind);
    } else {
      config_.Set("listener." + name, "bind", bind);
    }
  }
}

bool NodeProcess::Signal(int signo) { return child_.Signal(signo); }

bool NodeProcess::Running() { return child_.Running(); }

uint16_t NodeProcess::port(std::string_view listener) const {
  const auto it = endpoints_.find(std::string(listener));
  if (it != endpoints_.end()) return it->second.port;
  ADD_FAILURE() << "ferryd's ready line named no listener '" << std::string(listener) << "'";
  return 0;
}

std::string NodeProcess::Log() const { return ReadFileOrEmpty(log_path()); }

std::string NodeProcess::LogSinceStart() const {
  const std::string log = Log();
  return log_offset_ < log.size() ? log.substr(log_offset_) : "";
}

::testing::AssertionResult NodeProcess::WaitForLog(std::string_view needle,
                                                   std::chrono::milliseconds timeout) const {
  if (WaitFor([&] { return LogSinceStart().find(needle) != std::string::npos; }, timeout,
              "'" + std::string(needle) + "' in ferryd's log")) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "'" << std::string(needle) << "' not in ferryd's log within " << timeout.count()
         << " ms (" << log_path() << ")";
}

::testing::AssertionResult NodeProcess::FailWithLog(std::string_view what) {
  const std::string log = Log();
  reported_begin_ = std::min(log_offset_, log.size());
  reported_end_ = log.size();
  return ::testing::AssertionFailure()
         << what << "\n---- ferryd log since start (" << log_path() << ") ----\n"
         << Tail(log.substr(reported_begin_), kMaxLogDump) << "---- end of ferryd log ----";
}

}  // namespace ferry::testing
