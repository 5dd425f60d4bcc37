// Bounded polling for conditions that become true eventually (a route that
// replicates, a client that reconnects, a line that appears in a log), in the
// spirit of wait_for_condition in redis tests/support/test.tcl. Never an
// unbounded loop and never a fixed sleep in a test.
//
// Thread: any; the predicate runs on the calling thread.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string_view>

namespace ferry::testing {

// Calls `predicate` until it returns true or `timeout` passes, sleeping
// between calls (1 ms at first, growing to 50 ms). The predicate is always
// called at least once, and once more after the deadline has passed.
// Returns success, or a failure saying "timed out after N ms waiting for
// <what>". Use as EXPECT_TRUE(WaitFor(...)) or `if (!WaitFor(...))`.
::testing::AssertionResult WaitFor(const std::function<bool()>& predicate,
                                   std::chrono::milliseconds timeout, std::string_view what);

// Milliseconds left until `deadline`, never negative.
std::chrono::milliseconds Remaining(std::chrono::steady_clock::time_point deadline);

}  // namespace ferry::testing
