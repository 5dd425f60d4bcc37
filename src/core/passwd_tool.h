// The `passwd FILE USER` command that `ferryd --passwd` and `ferryctl passwd`
// share: reads a password from the terminal (twice, without echo) or from
// standard input, and adds or replaces USER's entry in FILE (SetPassword in
// core/auth.h). Runs on the calling thread; blocks on the terminal.
#pragma once

#include <string>

namespace ferry::core {

// Returns the process exit code: 0 on success; 1 after printing one line
// "<program>: reason" on stderr (no password given, passwords differ, a bad
// username, a file that cannot be written).
int RunPasswdCommand(const char* program, const std::string& file, const std::string& user);

}  // namespace ferry::core
