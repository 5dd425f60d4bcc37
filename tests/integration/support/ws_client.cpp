#include "ws_client.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>

namespace ferry::testing {
namespace {

constexpr char kKey[] = "x3JJHMbDL1EzLkh9GBhXDw==";  // RFC 6455 section 4.2.1's example
constexpr uint8_t kMask[4] = {0x12, 0x34, 0x56, 0x78};

std::string ExpectedAccept() {
  std::string in = std::string(kKey) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char b64[32];
  int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

// The length of a whole MQTT packet at the start of `b`, if it is all there.
std::optional<size_t> WholePacket(const Bytes& b) {
  uint32_t length = 0;
  for (size_t i = 1; i < b.size() && i <= 4; ++i) {
    length |= static_cast<uint32_t>(b[i] & 0x7f) << (7 * (i - 1));
    if ((b[i] & 0x80) == 0) {
      if (b.size() >= i + 1 + length) return i + 1 + length;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> ReadHttpHead(RawClient& raw, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string head;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<Bytes> b = raw.Recv(1, std::max(left, std::chrono::milliseconds(0)));
    if (!b) return std::nullopt;
    head += static_cast<char>((*b)[0]);
  }
  return head;
}

::testing::AssertionResult WsClient::Connect(uint16_t port, const std::string& path,
                                             const std::string& protocol, const Bytes& preamble) {
  if (auto ok = raw_.Connect(port); !ok) return ok;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: " + std::string(kKey) +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (!protocol.empty()) req += "Sec-WebSocket-Protocol: " + protocol + "\r\n";
  req += "\r\n";
  Bytes bytes = preamble;
  bytes.insert(bytes.end(), req.begin(), req.end());
  if (auto ok = raw_.Send(bytes); !ok) return ok;
  std::optional<std::string> head = ReadHttpHead(raw_);
  if (!head) return ::testing::AssertionFailure() << "no HTTP response: " << raw_.error();
  response_ = *head;
  if (response_.rfind("HTTP/1.1 101 ", 0) != 0) {
    return ::testing::AssertionFailure() << "upgrade refused: " << response_;
  }
  if (response_.find("Sec-WebSocket-Accept: " + ExpectedAccept() + "\r\n") == std::string::npos) {
    return ::testing::AssertionFailure() << "wrong Sec-WebSocket-Accept: " << response_;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult WsClient::SendFrame(uint8_t opcode, const Bytes& payload, bool fin) {
  Bytes f;
  f.push_back(static_cast<uint8_t>((fin ? 0x80 : 0) | opcode));
  const size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<uint8_t>(0x80 | n));
  } else if (n < 65536) {
    f.insert(f.end(), {0xFE, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
  } else {
    f.push_back(0xFF);
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<uint8_t>(n >> shift));
  }
  f.insert(f.end(), kMask, kMask + 4);
  for (size_t i = 0; i < n; ++i) f.push_back(payload[i] ^ kMask[i % 4]);
  return raw_.Send(f);
}

::testing::AssertionResult WsClient::SendMqtt(const Bytes& bytes, size_t chunk) {
  size_t pos = 0;
  do {
    const size_t n = std::min(chunk, bytes.size() - pos);
    Bytes part(bytes.begin() + static_cast<long>(pos), bytes.begin() + static_cast<long>(pos + n));
    const bool last = pos + n == bytes.size();
    if (auto ok = SendFrame(pos == 0 ? 0x2 : 0x0, part, last); !ok) return ok;
    pos += n;
  } while (pos < bytes.size());
  return ::testing::AssertionSuccess();
}

std::optional<WsClient::Frame> WsClient::ReadFrame(std::chrono::milliseconds timeout) {
  std::optional<Bytes> h = raw_.Recv(2, timeout);
  if (!h) return std::nullopt;
  Frame f;
  f.fin = ((*h)[0] & 0x80) != 0;
  f.opcode = (*h)[0] & 0x0F;
  if (((*h)[1] & 0x80) != 0) return std::nullopt;  // a server never masks
  uint64_t n = (*h)[1] & 0x7F;
  if (n >= 126) {
    std::optional<Bytes> ext = raw_.Recv(n == 126 ? 2 : 8, timeout);
    if (!ext) return std::nullopt;
    n = 0;
    for (uint8_t b : *ext) n = n << 8 | b;
  }
  if (n > 0) {
    std::optional<Bytes> payload = raw_.Recv(static_cast<size_t>(n), timeout);
    if (!payload) return std::nullopt;
    f.payload = std::move(*payload);
  }
  return f;
}

std::optional<Bytes> WsClient::ReadPacket(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (std::optional<size_t> n = WholePacket(pending_)) {
      Bytes packet(pending_.begin(), pending_.begin() + static_cast<long>(*n));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(*n));
      return packet;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<Frame> f = ReadFrame(std::max(left, std::chrono::milliseconds(0)));
    if (!f) return std::nullopt;
    if (f->opcode >= 0x8) {
      last_control_ = f;
      return std::nullopt;
    }
    pending_.insert(pending_.end(), f->payload.begin(), f->payload.end());
  }
}

}  // namespace ferry::testing
