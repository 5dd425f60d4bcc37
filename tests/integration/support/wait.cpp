#include "wait.h"

#include <algorithm>
#include <string>
#include <thread>

namespace ferry::testing {

::testing::AssertionResult WaitFor(const std::function<bool()>& predicate,
                                   std::chrono::milliseconds timeout, std::string_view what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::min(pause, Remaining(deadline)));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  // One last look: the condition may have come true during the final sleep.
  if (predicate()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "timed out after " << timeout.count() << " ms waiting for " << std::string(what);
}

std::chrono::milliseconds Remaining(std::chrono::steady_clock::time_point deadline) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return std::chrono::milliseconds(0);
  return std::chrono::ceil<std::chrono::milliseconds>(left);
}

}  // namespace ferry::testing
