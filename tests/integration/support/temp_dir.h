// A fresh private directory for one test's files (config, data dir, logs),
// made with mkdtemp under $TMPDIR (or /tmp) and removed when the owner goes,
// unless the test failed or FERRYTEST_KEEP_TMP=1 is set, in which case it
// is kept for inspection and its path is printed.
//
// Names stay short on purpose: ferryd puts its admin Unix socket in the data
// directory, and a Unix socket path is limited to 107 bytes.
//
// Thread: the owning (test) thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry::testing {

class TempDir {
 public:
  // Creates the directory; on failure records a gtest failure and leaves
  // path() empty.
  TempDir();
  ~TempDir();

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Path of `name` inside the directory.
  std::string File(std::string_view name) const;

 private:
  void Remove();

  std::string path_;
};

// Reads a whole file; returns "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// Writes `contents` to `path`, replacing it. Returns false on any error.
bool WriteFile(const std::string& path, std::string_view contents);

}  // namespace ferry::testing
