#include "subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "wait.h"

extern char** environ;

namespace ferry::testing {
namespace {

// Finds `program` the way execvp would, but in the parent: the child of a
// multi-threaded process may only make async-signal-safe calls before exec.
std::string ResolveProgram(const std::string& program) {
  if (program.find('/') != std::string::npos) return program;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return "";
    dirs.remove_prefix(colon + 1);
  }
}

std::vector<std::string> BuildEnv(const SpawnOptions& options) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view var(*e);
    const std::string_view name = var.substr(0, var.find('='));
    const bool unset = std::any_of(
        options.unset_env_prefixes.begin(), options.unset_env_prefixes.end(),
        [&](const std::string& prefix) { return name.substr(0, prefix.size()) == prefix; });
    const bool overridden =
        std::any_of(options.env.begin(), options.env.end(),
                    [&](const auto& kv) { return std::string_view(kv.first) == name; });
    if (!unset && !overridden) env.emplace_back(var);
  }
  for (const auto& [name, value] : options.env) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct ChildFds {
  int in;
  int out;
  int err;
  int exec_error;     // write end of a CLOEXEC pipe; gets a ChildError if exec fails
  uint64_t fd_limit;  // RLIMIT_NOFILE to set; 0 = inherit
};

// What the child reports on exec_error before it gives up.
struct ChildError {
  enum Step : int { kSetup, kFdLimit, kExec } step;
  int error;  // errno
};

[[noreturn]] void FailChild(int fd, ChildError::Step step) {
  const ChildError report{step, errno};
  (void)!write(fd, &report, sizeof(report));
  _exit(127);
}

// Runs in the forked child: only async-signal-safe calls from here to exec.
[[noreturn]] void ExecChild(const char* path, char* const* argv, char* const* envp, ChildFds fds,
                            pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, nullptr);
  }
  // Lift the sources above 2 first, so that dup2 onto 0..2 cannot clobber one.
  const int in = fcntl(fds.in, F_DUPFD_CLOEXEC, 10);
  const int out = fcntl(fds.out, F_DUPFD_CLOEXEC, 10);
  const int err = fcntl(fds.err, F_DUPFD_CLOEXEC, 10);
  if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
    FailChild(fds.exec_error, ChildError::kSetup);
  }
  // Sockets and files the test holds (Paho, libmosquitto) must not leak in.
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    const long max_fd = std::min(sysconf(_SC_OPEN_MAX), 65536L);
    for (int fd = 3; fd < max_fd; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  if (fds.fd_limit != 0) {
    const rlimit rl{static_cast<rlim_t>(fds.fd_limit), static_cast<rlim_t>(fds.fd_limit)};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) FailChild(fds.exec_error, ChildError::kFdLimit);
  }
  execve(path, argv, envp);
  FailChild(fds.exec_error, ChildError::kExec);
}

std::string ReadAll(int fd) {
  std::string data;
  if (fd < 0) return data;
  char buf[4096];
  off_t offset = 0;
  while (true) {
    const ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return data;
}

std::string Join(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (exited) return "exit code " + std::to_string(code);
  if (signal == 0) return "unknown exit status";
  const char* name = strsignal(signal);
  return "killed by signal " + std::to_string(signal) + " (" + (name ? name : "?") + ")";
}

ChildProcess::~ChildProcess() { Kill(); }

::testing::AssertionResult ChildProcess::Start(const SpawnOptions& options) {
  if (Running()) return ::testing::AssertionFailure() << "pid " << pid_ << " is still running";
  if (options.argv.empty()) return ::testing::AssertionFailure() << "empty argv";
  const std::string path = ResolveProgram(options.argv[0]);
  if (path.empty()) {
    return ::testing::AssertionFailure() << "'" << options.argv[0] << "' not found in PATH";
  }
  std::vector<std::string> argv_s = options.argv;
  std::vector<std::string> env_s = BuildEnv(options);
  std::vector<char*> argv = CStrings(argv_s);
  std::vector<char*> envp = CStrings(env_s);

  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int exec_pipe[2];
  if (devnull < 0 || pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    if (devnull >= 0) close(devnull);
    return ::testing::AssertionFailure() << "spawn setup failed: " << std::strerror(e);
  }
  const ChildFds fds{options.stdin_fd >= 0 ? options.stdin_fd : devnull, options.stdout_fd >= 0 ? options.stdout_fd : devnull,
                     options.stderr_fd >= 0 ? options.stderr_fd : devnull, exec_pipe[1],
                     options.fd_limit};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(path.c_str(), argv.data(), envp.data(), fds, parent);
  const int fork_errno = errno;
  close(exec_pipe[1]);
  close(devnull);
  if (pid < 0) {
    close(exec_pipe[0]);
    return ::testing::AssertionFailure() << "fork failed: " << std::strerror(fork_errno);
  }
  ChildError report{};
  ssize_t n;
  do {
    n = read(exec_pipe[0], &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  pid_ = pid;
  exit_status_.reset();
  if (n != static_cast<ssize_t>(sizeof(report))) return ::testing::AssertionSuccess();
  Reap(/*block=*/true);
  if (report.step == ChildError::kFdLimit) {
    // Not the test's fault: a hard limit above its own needs privilege.
    const std::string why = "the kernel refuses RLIMIT_NOFILE " + std::to_string(options.fd_limit) +
                            " for " + path + ": " + std::strerror(report.error);
    [&why] { GTEST_SKIP() << why; }();
    return ::testing::AssertionFailure() << why << " (test skipped)";
  }
  return ::testing::AssertionFailure()
         << "cannot run " << path << ": " << std::strerror(report.error);
}

bool ChildProcess::Running() { return pid_ > 0 && !exit_status_ && !Reap(/*block=*/false); }

bool ChildProcess::Signal(int signo) { return Running() && kill(pid_, signo) == 0; }

std::optional<ExitStatus> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  WaitFor([this] { return !Running(); }, timeout, "child exit");
  return exit_status_;
}

void ChildProcess::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  Reap(/*block=*/true);
}

bool ChildProcess::Reap(bool block) {
  if (exit_status_) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  ExitStatus s;
  if (r == pid_ && WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (r == pid_ && WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  exit_status_ = s;
  return true;
}

std::string CommandResult::ToString() const {
  std::string s = timed_out ? "timed out and was killed" : status.ToString();
  s += "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  return s;
}

RunningCommand::RunningCommand() = default;

RunningCommand::~RunningCommand() {
  child_.Kill();
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

::testing::AssertionResult RunningCommand::Start(const std::vector<std::string>& argv) {
  return Start(argv, {}, {}, {});
}

::testing::AssertionResult RunningCommand::Start(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env,
    const std::vector<std::string>& unset_env_prefixes, std::string_view input) {
  if (out_fd_ >= 0) return ::testing::AssertionFailure() << "command already started";
  out_fd_ = memfd_create("ferry-cmd-stdout", MFD_CLOEXEC);
  err_fd_ = memfd_create("ferry-cmd-stderr", MFD_CLOEXEC);
  if (out_fd_ < 0 || err_fd_ < 0) {
    return ::testing::AssertionFailure() << "memfd_create failed: " << std::strerror(errno);
  }
  SpawnOptions options;
  options.argv = argv;
  options.env = env;
  options.unset_env_prefixes = unset_env_prefixes;
  options.stdout_fd = out_fd_;
  options.stderr_fd = err_fd_;
  int in_fd = -1;
  if (!input.empty()) {
    in_fd = memfd_create("ferry-cmd-stdin", MFD_CLOEXEC);
    if (in_fd < 0 || write(in_fd, input.data(), input.size()) != static_cast<ssize_t>(input.size()) ||
        lseek(in_fd, 0, SEEK_SET) != 0) {
      if (in_fd >= 0) close(in_fd);
      return ::testing::AssertionFailure() << "cannot prepare stdin: " << std::strerror(errno);
    }
    options.stdin_fd = in_fd;
  }
  auto started = child_.Start(options);
  if (in_fd >= 0) close(in_fd);
  if (!started) {
    return ::testing::AssertionFailure() << Join(argv) << ": " << started.message();
  }
  return ::testing::AssertionSuccess();
}

std::string RunningCommand::Stdout() const { return ReadAll(out_fd_); }

std::string RunningCommand::Stderr() const { return ReadAll(err_fd_); }

::testing::AssertionResult RunningCommand::WaitForOutput(std::string_view needle,
                                                         std::chrono::milliseconds timeout) {
  bool exited = false;
  WaitFor(
      [&] {
        if (Stdout().find(needle) != std::string::npos) return true;
        exited = !child_.Running();
        return exited;
      },
      timeout, "output");
  if (Stdout().find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "'" << std::string(needle) << "' not printed "
         << (exited ? "before the command exited"
                    : "within " + std::to_string(timeout.count()) + " ms")
         << "\n--- stdout ---\n"
         << Stdout() << "\n--- stderr ---\n"
         << Stderr();
}

CommandResult RunningCommand::Wait(std::chrono::milliseconds timeout) {
  if (child_.Wait(timeout)) return Collect(false);
  child_.Kill();
  return Collect(true);
}

CommandResult RunningCommand::Terminate() {
  child_.Signal(SIGTERM);
  if (!child_.Wait(std::chrono::seconds(1))) child_.Kill();
  return Collect(false);
}

CommandResult RunningCommand::Collect(bool timed_out) {
  CommandResult r;
  r.status = child_.exit_status().value_or(ExitStatus{});
  r.timed_out = timed_out;
  r.out = Stdout();
  r.err = Stderr();
  return r;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  return RunCommand(argv, {}, {}, {}, timeout);
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         const std::vector<std::string>& unset_env_prefixes,
                         std::string_view input, std::chrono::milliseconds timeout) {
  RunningCommand command;
  if (auto started = command.Start(argv, env, unset_env_prefixes, input); !started) {
    CommandResult r;
    r.status.exited = true;
    r.status.code = 127;
    r.err = started.message();
    return r;
  }
  return command.Wait(timeout);
}

std::unique_ptr<RunningCommand> StartCommand(const std::vector<std::string>& argv) {
  auto command = std::make_unique<RunningCommand>();
  if (auto started = command->Start(argv); !started) {
    ADD_FAILURE() << started.message();
    return nullptr;
  }
  return command;
}

}  // namespace ferry::testing
