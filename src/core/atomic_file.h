// Files that are replaced whole: the password file, a bridge's state, the
// cluster's member set. Any thread; blocking I/O, so not on a loop thread
// except at start-up.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::core {

// Writes `text` to a temporary file beside `path` with `mode`, syncs it and
// renames it over `path`: a crash leaves the old file or the new one, never
// half of one. IoError naming `path` and the cause otherwise.
Status WriteFileAtomically(const std::string& path, std::string_view text, mode_t mode = 0644);

}  // namespace ferry::core
