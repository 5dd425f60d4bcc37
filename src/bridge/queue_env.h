// The file operations the bridge queue needs, behind a small interface so
// that unit tests can make them fail (a full disk, an I/O error) the way
// google/leveldb's Env lets its tests do (SpecialEnv in db/db_test.cc).
//
// QueueEnv::Default() is the real file system (POSIX calls). Every call
// blocks on disk: only the queue's storage thread makes them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::bridge {

// An open file, read at any offset and appended to. Not thread-safe.
class QueueFile {
 public:
  virtual ~QueueFile() = default;
  // Appends all of `data` at the end. On error the file may hold part of
  // it; the caller truncates back. A full disk is Status::NoSpace.
  virtual ferry::Status Append(std::string_view data) = 0;
  // Overwrites `data` at `offset`, within the file's size: on most file
  // systems that needs no new space, so it works on a full disk.
  virtual ferry::Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // Reads up to `n` bytes at `offset` into `out` (resized to what was read;
  // fewer bytes only at the end of the file).
  virtual ferry::Status ReadAt(uint64_t offset, size_t n, std::string* out) = 0;
  virtual ferry::Status Truncate(uint64_t size) = 0;
  // fdatasync.
  virtual ferry::Status Sync() = 0;
  virtual uint64_t Size() const = 0;
};

class QueueEnv {
 public:
  virtual ~QueueEnv() = default;

  // The process-wide real file system. Never null; not owned by the caller.
  static QueueEnv* Default();

  // Creates `dir` and its missing parents (mode 0750).
  virtual ferry::Status CreateDirs(const std::string& dir) = 0;
  // Names (not paths) of the entries of `dir`, unsorted.
  virtual ferry::Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Opens `path` for reading and appending, creating it if `create`.
  virtual ferry::Result<std::unique_ptr<QueueFile>> Open(const std::string& path, bool create) = 0;
  virtual ferry::Status Remove(const std::string& path) = 0;
  // fsync of a directory, so that created and removed names are durable.
  virtual ferry::Status SyncDir(const std::string& dir) = 0;
  // Size of the file system holding `dir`, in bytes; 0 if unknown.
  virtual uint64_t FileSystemBytes(const std::string& dir) {
    (void)dir;
    return 0;
  }
};

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace ferry::bridge
