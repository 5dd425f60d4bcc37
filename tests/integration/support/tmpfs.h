// A small tmpfs that a disk-full test mounts itself (mount(2) needs root or
// CAP_SYS_ADMIN), so that a node's data_dir can fill up for real without
// touching any other file system. A test that cannot mount one skips,
// saying why:
//
//   Tmpfs disk(8 << 20);
//   if (!disk.mounted()) GTEST_SKIP() << disk.error();
//   node.config().Set("node", "data_dir", disk.File("data"));
//
// The first Tmpfs moves the test process into a mount namespace of its own
// (the nodes it starts inherit it), so that a test killed before its
// destructor ran leaves no mount behind on the machine.
//
// Thread: the test's thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "temp_dir.h"

namespace ferry::testing {

class Tmpfs {
 public:
  // Mounts a tmpfs of `bytes` on a fresh directory.
  explicit Tmpfs(uint64_t bytes);
  // Unmounts it (lazily, so that a process still using it does not block
  // the test), then removes the directory.
  ~Tmpfs();
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  // Why it could not be mounted.
  const std::string& error() const { return error_; }
  const std::string& path() const { return dir_.path(); }
  std::string File(std::string_view name) const { return dir_.File(name); }

  // Bytes still free (statvfs f_bavail).
  uint64_t FreeBytes() const;
  // Writes a file of `bytes` (or as much as fits); returns what was written.
  uint64_t WriteFiller(std::string_view name, uint64_t bytes) const;

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace ferry::testing
