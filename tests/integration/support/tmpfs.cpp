#include "tmpfs.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace ferry::testing {

namespace {

// Once per process, while it has one thread: a mount namespace of its own
// (inherited by the nodes it starts), whose mounts propagate nowhere, so
// that a tmpfs the test could not unmount (killed by a timeout) goes away
// with the last of its processes. If that is refused, mounts are made where
// the process is, and only the destructor unmounts them.
void OwnMountNamespace() {
  static const bool done = ::unshare(CLONE_NEWNS) == 0 &&
                           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  (void)done;
}

}  // namespace

Tmpfs::Tmpfs(uint64_t bytes) {
  OwnMountNamespace();
  if (!dir_.ok()) {
    error_ = "no directory to mount a tmpfs on";
    return;
  }
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
  if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    error_ = "cannot mount a tmpfs at " + dir_.path() + " (" + std::strerror(errno) +
             "): this test needs root or CAP_SYS_ADMIN";
    return;
  }
  mounted_ = true;
}

Tmpfs::~Tmpfs() {
  if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
}

uint64_t Tmpfs::FreeBytes() const {
  struct statvfs vfs;
  if (::statvfs(dir_.path().c_str(), &vfs) != 0) return 0;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

uint64_t Tmpfs::WriteFiller(std::string_view name, uint64_t bytes) const {
  const std::string path = dir_.File(name);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  const std::string chunk(64 * 1024, 'f');
  uint64_t written = 0;
  while (written < bytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - written));
    const ssize_t w = ::write(fd, chunk.data(), n);
    if (w <= 0) break;
    written += static_cast<uint64_t>(w);
  }
  ::close(fd);
  return written;
}

}  // namespace ferry::testing
