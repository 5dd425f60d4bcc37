#include "core/fd_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include "core/log.h"

namespace ferry::core {

uint64_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return kNoFdLimit;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur == RLIM_INFINITY ? kNoFdLimit : static_cast<uint64_t>(rl.rlim_cur);
}

uint64_t CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  uint64_t n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n > 0 ? n - 1 : 0;  // less the directory's own descriptor
}

std::vector<std::string> FdBudgetWarnings(const FdBudget& budget,
                                          const std::vector<ListenerOptions>& listeners) {
  std::vector<std::string> out;
  if (budget.limit == kNoFdLimit) return out;
  const std::string figures = "the descriptor limit (RLIMIT_NOFILE " + FormatCount(budget.limit) +
                              ", " + FormatCount(budget.in_use) +
                              " open at start-up, reserved_fds " + FormatCount(budget.reserved) +
                              ") allows " + FormatCount(budget.connections()) + " MQTT connections";
  const std::string advice =
      "; clients beyond that are refused (reason fd_limit). Raise LimitNOFILE (ulimit -n) or "
      "set max_connections";
  std::string unlimited;
  uint64_t sum = 0;
  for (const ListenerOptions& l : listeners) {
    if (l.max_connections == 0) {
      unlimited += (unlimited.empty() ? "" : ", ") + l.type + "." + l.name;
    }
    sum += l.max_connections;
  }
  if (!unlimited.empty()) {
    out.push_back("listener(s) " + unlimited + " have max_connections = 0 (no limit): " + figures +
                  advice);
  } else if (sum > budget.connections()) {
    out.push_back("the listeners' max_connections add up to " + FormatCount(sum) + ", more than " +
                  figures + advice);
  }
  if (budget.connections() == 0) {
    out.push_back("no MQTT connection fits in the descriptor limit: every client is refused");
  }
  return out;
}

}  // namespace ferry::core
