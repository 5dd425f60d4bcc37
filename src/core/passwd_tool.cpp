#include "core/passwd_tool.h"

#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "core/auth.h"

namespace ferry::core {

namespace {

// From a terminal: asks twice with echo off. Otherwise: the first line of
// standard input, so that scripts can pipe a password in.
bool ReadPassword(const char* program, std::string* out) {
  if (!isatty(STDIN_FILENO)) return static_cast<bool>(std::getline(std::cin, *out));
  termios old{};
  tcgetattr(STDIN_FILENO, &old);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  std::string again;
  std::fputs("Password: ", stderr);
  bool ok = static_cast<bool>(std::getline(std::cin, *out));
  std::fputs("\nReenter password: ", stderr);
  ok = ok && static_cast<bool>(std::getline(std::cin, again));
  std::fputs("\n", stderr);
  tcsetattr(STDIN_FILENO, TCSANOW, &old);
  if (ok && *out != again) {
    std::fprintf(stderr, "%s: passwords do not match\n", program);
    return false;
  }
  return ok;
}

}  // namespace

int RunPasswdCommand(const char* program, const std::string& file, const std::string& user) {
  std::string password;
  if (!ReadPassword(program, &password)) {
    if (password.empty()) std::fprintf(stderr, "%s: no password given\n", program);
    return 1;
  }
  if (password.empty()) {
    std::fprintf(stderr, "%s: no password given\n", program);
    return 1;
  }
  Status st = SetPassword(file, user, password);
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, st.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace ferry::core
