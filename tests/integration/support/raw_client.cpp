#include "raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "wait.h"

namespace ferry::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Waits until `fd` has `events` or `deadline` passes. Returns false on
// timeout; sets *err on a poll error.
bool PollUntil(int fd, short events, Clock::time_point deadline, std::string* err) {
  while (true) {
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(Remaining(deadline).count()));
    if (r > 0) return true;
    if (r == 0) {
      *err = "timed out";
      return false;
    }
    if (errno != EINTR) {
      *err = std::string("poll: ") + std::strerror(errno);
      return false;
    }
  }
}

}  // namespace

RawClient::~RawClient() { Close(); }

void RawClient::Adopt(int fd) {
  Close();
  fd_ = fd;
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

::testing::AssertionResult RawClient::Connect(uint16_t port, std::chrono::milliseconds timeout) {
  Close();
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) return ::testing::AssertionFailure() << "socket: " << std::strerror(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto deadline = Clock::now() + timeout;
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      const int e = errno;
      Close();
      return ::testing::AssertionFailure()
             << "connect 127.0.0.1:" << port << ": " << std::strerror(e);
    }
    std::string err;
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    if (!PollUntil(fd_, POLLOUT, deadline, &err) ||
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0 || so_error != 0) {
      Close();
      return ::testing::AssertionFailure() << "connect 127.0.0.1:" << port << ": "
                                           << (so_error != 0 ? std::strerror(so_error) : err);
    }
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult RawClient::Send(const Bytes& bytes) {
  if (fd_ < 0) return ::testing::AssertionFailure() << "not connected";
  size_t sent = 0;
  const auto deadline = Clock::now() + kDefaultTimeout;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!PollUntil(fd_, POLLOUT, deadline, &error_)) {
        return ::testing::AssertionFailure()
               << "send: " << error_ << " after " << sent << " of " << bytes.size() << " bytes";
      }
    } else {
      error_ = std::string("send: ") + std::strerror(errno);
      return ::testing::AssertionFailure()
             << error_ << " after " << sent << " of " << bytes.size() << " bytes";
    }
  }
  return ::testing::AssertionSuccess();
}

bool RawClient::ReadInto(Bytes* out, size_t n, Clock::time_point deadline) {
  if (fd_ < 0) {
    error_ = "not connected";
    return false;
  }
  const size_t want = out->size() + n;
  while (out->size() < want) {
    uint8_t buf[4096];
    const ssize_t r = recv(fd_, buf, std::min(sizeof(buf), want - out->size()), 0);
    if (r > 0) {
      out->insert(out->end(), buf, buf + r);
    } else if (r == 0) {
      error_ = "connection closed by peer";
      return false;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!PollUntil(fd_, POLLIN, deadline, &error_)) return false;
    } else {
      error_ = std::string("recv: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

std::optional<Bytes> RawClient::Recv(size_t n, std::chrono::milliseconds timeout) {
  Bytes out;
  if (ReadInto(&out, n, Clock::now() + timeout)) return out;
  error_ += " (" + std::to_string(out.size()) + " of " + std::to_string(n) +
            " bytes read: " + wire::Hex(out) + ")";
  return std::nullopt;
}

std::optional<Bytes> RawClient::ReadPacket(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Bytes out;
  bool ok = ReadInto(&out, 1, deadline);  // first byte of the fixed header
  uint32_t length = 0;
  for (int i = 0; ok; ++i) {
    if (i == 4) {
      error_ = "remaining length longer than 4 bytes";
      ok = false;
      break;
    }
    ok = ReadInto(&out, 1, deadline);
    if (!ok) break;
    length |= static_cast<uint32_t>(out.back() & 0x7f) << (7 * i);
    if ((out.back() & 0x80) == 0) break;
  }
  if (ok) ok = ReadInto(&out, length, deadline);
  if (ok) return out;
  error_ += " (partial packet: " + wire::Hex(out) + ")";
  return std::nullopt;
}

bool RawClient::IsClosed(std::chrono::milliseconds timeout) {
  if (fd_ < 0) return true;
  const auto deadline = Clock::now() + timeout;
  while (true) {
    uint8_t buf[4096];
    const ssize_t r = recv(fd_, buf, sizeof(buf), 0);
    if (r == 0) return true;
    if (r < 0) {
      if (errno == ECONNRESET || errno == EPIPE) return true;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        error_ = std::string("recv: ") + std::strerror(errno);
        return false;
      }
      if (!PollUntil(fd_, POLLIN, deadline, &error_)) return false;
    } else if (Clock::now() >= deadline) {
      error_ = "still open, and sending";
      return false;
    }
  }
}

::testing::AssertionResult RawClient::MqttConnect(const wire::ConnectFields& fields,
                                                  std::chrono::milliseconds timeout) {
  if (auto sent = Send(wire::Connect(fields)); !sent) return sent;
  const std::optional<Bytes> raw = ReadPacket(timeout);
  if (!raw) return ::testing::AssertionFailure() << "no CONNACK: " << error_;
  const std::optional<wire::Connack> connack = wire::ParseConnack(*raw);
  if (!connack) return ::testing::AssertionFailure() << "not a CONNACK: " << wire::Hex(*raw);
  if (connack->code != 0) {
    return ::testing::AssertionFailure()
           << "CONNACK code 0x" << std::hex << static_cast<int>(connack->code);
  }
  return ::testing::AssertionSuccess();
}

void RawClient::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

void RawClient::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace ferry::testing
