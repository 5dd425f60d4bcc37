// Child processes for integration tests: the ferryd under test, and command
// line tools such as mosquitto_pub and mosquitto_sub.
//
// A ChildProcess only ever signals and reaps the one PID it started, and kills
// it (SIGKILL) if it is still running when the ChildProcess goes away. The
// child is also asked to die with the thread that started it
// (PR_SET_PDEATHSIG), so a crashed or timed-out test leaves no process behind;
// start children from the test's main thread.
//
// Thread: the owning (test) thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "types.h"

namespace ferry::testing {

// How a child ended.
struct ExitStatus {
  bool exited = false;  // true: exited with `code`; false: killed by `signal`
  int code = -1;
  int signal = 0;

  bool Clean() const { return exited && code == 0; }
  // "exit code 3" or "killed by signal 9 (Killed)".
  std::string ToString() const;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH unless it has a '/'
  // Variables set in the child's environment, on top of the test's own.
  std::vector<std::pair<std::string, std::string>> env;
  // Inherited variables whose names start with one of these are removed
  // (before `env` is applied), so the test's own environment cannot leak in.
  std::vector<std::string> unset_env_prefixes;
  int stdin_fd = -1;   // becomes the child's fd 0; -1 means /dev/null
  int stdout_fd = -1;  // becomes the child's fd 1; -1 means /dev/null
  int stderr_fd = -1;  // becomes the child's fd 2; -1 means /dev/null
  // Soft and hard RLIMIT_NOFILE of the child; 0 keeps the test's own. If
  // the kernel refuses it (a hard limit above the test's own, without
  // privilege), Start() skips the running test (GTEST_SKIP) and fails: a
  // caller checks IsSkipped() before asserting on Start().
  uint64_t fd_limit = 0;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Forks and execs. Fails if a child is already running, or if the program
  // cannot be found or executed (the exec errno is reported).
  ::testing::AssertionResult Start(const SpawnOptions& options);

  // True while the child has not exited; reaps it without blocking if it has.
  bool Running();

  // Sends `signo` to the child if it is still running; false otherwise.
  bool Signal(int signo);

  // Waits up to `timeout` for the child to exit; nullopt if it is still running
  // then (or was never started).
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);

  // SIGKILL, then reap. No-op if the child is not running.
  void Kill();

  pid_t pid() const { return pid_; }
  // Set once the child has been reaped.
  const std::optional<ExitStatus>& exit_status() const { return exit_status_; }

 private:
  bool Reap(bool block);

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_status_;
};

// The outcome of a command run by RunCommand or RunningCommand::Wait.
struct CommandResult {
  ExitStatus status;
  bool timed_out = false;  // the command was killed at the deadline
  std::string out;         // everything it wrote to stdout
  std::string err;         // everything it wrote to stderr

  bool Succeeded() const { return !timed_out && status.Clean(); }
  // Status, stdout and stderr, for failure messages.
  std::string ToString() const;
};

// A command started in the background; its output is captured in memory and
// can be read while it runs.
class RunningCommand {
 public:
  RunningCommand();
  ~RunningCommand();
  RunningCommand(const RunningCommand&) = delete;
  RunningCommand& operator=(const RunningCommand&) = delete;

  ::testing::AssertionResult Start(const std::vector<std::string>& argv);
  // With `env` set on top of the test's environment (variables starting with
  // one of `unset_env_prefixes` removed first) and `input` as standard input.
  ::testing::AssertionResult Start(const std::vector<std::string>& argv,
                                   const std::vector<std::pair<std::string, std::string>>& env,
                                   const std::vector<std::string>& unset_env_prefixes,
                                   std::string_view input);

  std::string Stdout() const;
  std::string Stderr() const;

  // Waits until stdout contains `needle`. Fails early if the command exits
  // without printing it.
  ::testing::AssertionResult WaitForOutput(std::string_view needle,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);

  // Waits for the command to exit; at the deadline kills it and sets
  // timed_out.
  CommandResult Wait(std::chrono::milliseconds timeout = kDefaultTimeout);

  // SIGTERM, then SIGKILL if it has not exited within a second.
  CommandResult Terminate();

  bool Running() { return child_.Running(); }

 private:
  CommandResult Collect(bool timed_out);

  ChildProcess child_;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

// Runs `argv` to completion, killing it at `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = kDefaultTimeout);

// The same with an environment and standard input (see RunningCommand::Start).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         const std::vector<std::string>& unset_env_prefixes,
                         std::string_view input,
                         std::chrono::milliseconds timeout = kDefaultTimeout);

// Starts `argv` in the background. Returns nullptr (after recording a gtest
// failure) if it cannot be started.
std::unique_ptr<RunningCommand> StartCommand(const std::vector<std::string>& argv);

}  // namespace ferry::testing
