// Password file: usernames and password hashes, in the format of
// mosquitto_passwd, so that a mosquitto password file works unchanged.
//
//   # comment lines and blank lines are ignored
//   alice:$7$101$BR81YEnk0kQJyoCy$FT5q7BeL...Ag0A==
//   bob:$6$c2FsdHNhbHQ=$3q2+7w...==
//
// `$7$<iterations>$<salt>$<hash>` is PBKDF2-HMAC-SHA512 with a 64-byte hash,
// salt and hash in base64 (mosquitto_passwd's default since 2.0).
// `$6$<salt>$<hash>` is SHA-512(password || salt), what mosquitto 1.6 and
// earlier wrote; it is read so that old files keep working, never written.
//
// mosquitto_passwd uses 101 PBKDF2 iterations; SetPassword uses 10000 by
// default, which costs an attacker with a stolen file 100 times more per guess
// and costs the broker about 15 ms of CPU per CONNECT with a password.
//
// Thread-safety: a PasswordFile is immutable once loaded; any thread may call
// its const methods. SetPassword and DeleteUser rewrite the file on disk and
// must not race each other on one path (ferryctl is their only caller).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace ferry::core {

class PasswordFile {
 public:
  // Errors: IoError if the file cannot be read; InvalidArgument naming every
  // bad line as "path:line: message", joined by '\n' (a line that is not
  // `username:hash`, an unknown hash scheme, bad base64, a wrong hash length,
  // a repeated username).
  static Result<PasswordFile> Load(const std::string& path);
  // The same for text in memory; `name` stands for the path in errors.
  static Result<PasswordFile> Parse(std::string_view text, std::string_view name);

  // True if `username` is listed and `password` hashes to its entry. The
  // final comparison is constant-time, and an unknown username costs the same
  // PBKDF2 work as a known one, so timing reveals neither which usernames
  // exist nor how much of a hash matched. CPU-bound, about 1.5 ms per
  // thousand iterations of the entry (15 ms at 10000): call it from the
  // thread pool, not from a loop thread.
  bool Check(std::string_view username, std::string_view password) const;
  bool Contains(std::string_view username) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    bool pbkdf2 = true;  // $7$; false for $6$
    int iterations = 0;
    std::string salt;  // raw bytes
    std::string hash;  // raw bytes, 64
  };
  std::unordered_map<std::string, Entry> entries_;
};

// Adds `username` to the file at `path`, or replaces its password, keeping
// every other line (comments included) as it was. Creates the file with mode
// 0600 if missing; an existing file keeps its mode. Writes a temporary file
// beside it and renames it over `path`, so readers see the old or the new
// file, never half of one. Errors: InvalidArgument for an empty username, one
// containing ':' or control characters, one starting with '#' or whitespace,
// or iterations outside 1..10000000; IoError from the file system.
Status SetPassword(const std::string& path, std::string_view username,
                   std::string_view password, int iterations = 10000);

// Removes `username` from the file, atomically as above. Errors: NotFound if
// the user is not in the file; IoError from the file system.
Status DeleteUser(const std::string& path, std::string_view username);

}  // namespace ferry::core
