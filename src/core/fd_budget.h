// How many MQTT connections the process's descriptor limit allows.
//
// Every connection is a descriptor, and so is everything else the node
// opens while it runs: admin API connections (the health check), the
// store's files, bridge links and queue segments, a log file reopened. A
// node that lets clients take the last descriptor fails at all of those, and
// at the hand-over of a socket between workers, which needs a dup() of it.
// So the node admits MQTT connections only up to
//
//   connections = limit - in_use - reserved
//
// where `limit` is RLIMIT_NOFILE (ferryd raises the soft limit to the hard
// one at start-up), `in_use` what is open once the listeners are bound and
// the workers run, and `reserved` is [node] reserved_fds. Worked example: a
// hard limit of 20,000, 41 descriptors open at start-up and the default
// reserve of 128 leave room for 19,831 connections; the 19,832nd client is
// refused (its socket closed at accept, counted as reason fd_limit).
//
// Pure functions except RaiseFdLimit and CountOpenFds, which ask the kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/broker_options.h"

namespace ferry::core {

// RLIMIT_NOFILE is RLIM_INFINITY, or cannot be read: no limit to budget.
inline constexpr uint64_t kNoFdLimit = UINT64_MAX;

struct FdBudget {
  uint64_t limit = 0;     // RLIMIT_NOFILE in force, or kNoFdLimit
  uint64_t in_use = 0;    // open at start-up
  uint64_t reserved = 0;  // [node] reserved_fds

  // MQTT connections that fit; 0 if none does.
  uint64_t connections() const { return limit > in_use + reserved ? limit - in_use - reserved : 0; }
};

// Raises the soft RLIMIT_NOFILE to the hard limit (systemd and most shells
// start services at a soft 1024 for select()'s sake; ferryd uses epoll) and
// returns the soft limit in force afterwards: kNoFdLimit if there is none,
// or if getrlimit fails (a budget of 0 would refuse every client).
uint64_t RaiseFdLimit();

// Descriptors open in this process (the entries of /proc/self/fd), or 0 if
// it cannot tell.
uint64_t CountOpenFds();

// What the start-up log warns about: listeners with max_connections 0 (no
// limit of their own), and limits that add up to more than the budget
// allows. Empty if there is nothing to say (always without a limit).
std::vector<std::string> FdBudgetWarnings(const FdBudget& budget,
                                          const std::vector<ListenerOptions>& listeners);

}  // namespace ferry::core
