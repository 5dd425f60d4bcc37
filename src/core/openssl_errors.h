// OpenSSL's error queue as text, for logs and Status messages.
//
// Any thread: OpenSSL's error queue is per thread.
#pragma once

#include <string>

namespace ferry::core {

// The errors OpenSSL queued on this thread, oldest first, joined by "; ";
// empties the queue. "unknown OpenSSL error" if it was empty.
std::string OpenSslErrors();

}  // namespace ferry::core
