#include "core/websocket.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <span>
#include <vector>

#include "core/base64.h"

#include "core/packet.h"

namespace ferry::core {

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view kSubprotocols[] = {"mqtt", "mqttv3.1"};

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The comma-separated tokens of a header value such as "keep-alive, Upgrade".
std::vector<std::string_view> Tokens(std::string_view value) {
  std::vector<std::string_view> out;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view t = Trim(value.substr(0, comma));
    if (!t.empty()) out.push_back(t);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

bool HasToken(std::string_view value, std::string_view token) {
  auto t = Tokens(value);
  return std::any_of(t.begin(), t.end(), [&](std::string_view x) { return EqualsNoCase(x, token); });
}

UpgradeResult Reject(int status, std::string_view error, size_t consumed,
                     std::string_view extra_header = {}) {
  static constexpr struct {
    int status;
    const char* text;
  } kReasons[] = {{400, "Bad Request"},
                  {404, "Not Found"},
                  {405, "Method Not Allowed"},
                  {426, "Upgrade Required"}};
  const char* reason = "Bad Request";
  for (const auto& r : kReasons) {
    if (r.status == status) reason = r.text;
  }
  UpgradeResult r;
  r.kind = UpgradeResult::Kind::kReject;
  r.consumed = consumed;
  r.error = std::string(error);
  r.response = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  r.response += extra_header;
  r.response += "Connection: close\r\nContent-Length: 0\r\n\r\n";
  return r;
}

// Bytes an HTTP request head may hold: visible ASCII, space, tab, CR, LF.
bool IsHeadByte(unsigned char c) { return (c >= 0x20 && c < 0x7F) || c == '\t' || c == '\r' || c == '\n'; }

struct Request {
  std::string_view method, target, version;
  std::string upgrade, connection, key, ws_version, protocols;
};

// Splits the head (without its blank line) into the request line and the
// headers this handshake needs. False if a line is malformed.
bool ParseHead(std::string_view head, Request* req) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return false;
  }
  req->method = line.substr(0, sp1);
  req->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  req->version = line.substr(sp2 + 1);
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view h = rest.substr(0, end);
    rest = end == std::string_view::npos ? "" : rest.substr(end + 2);
    size_t colon = h.find(':');
    if (colon == 0 || colon == std::string_view::npos || h.front() == ' ' || h.front() == '\t') {
      return false;
    }
    std::string_view name = h.substr(0, colon), value = Trim(h.substr(colon + 1));
    // Repeated list headers join with commas (RFC 9110 section 5.3).
    auto add = [&](std::string* to) {
      if (!to->empty()) *to += ",";
      *to += value;
    };
    if (EqualsNoCase(name, "Upgrade")) add(&req->upgrade);
    else if (EqualsNoCase(name, "Connection")) add(&req->connection);
    else if (EqualsNoCase(name, "Sec-WebSocket-Key")) add(&req->key);
    else if (EqualsNoCase(name, "Sec-WebSocket-Version")) add(&req->ws_version);
    else if (EqualsNoCase(name, "Sec-WebSocket-Protocol")) add(&req->protocols);
  }
  return true;
}

// A Sec-WebSocket-Key is the base64 of 16 bytes: 22 characters and "==".
bool IsValidKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

}  // namespace

std::string WebSocketAcceptKey(std::string_view key) {
  std::string input(key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

UpgradeResult ParseUpgradeRequest(std::string_view in, std::string_view path) {
  size_t limit = std::min(in.size(), kMaxUpgradeRequest);
  // Only the head is HTTP: frames may follow it in the same read.
  const size_t end = in.substr(0, limit).find("\r\n\r\n");
  const size_t head_end = end == std::string_view::npos ? limit : end;
  for (size_t i = 0; i < head_end; ++i) {
    if (!IsHeadByte(static_cast<unsigned char>(in[i]))) {
      return Reject(400, "not an HTTP request (binary data)", head_end);
    }
  }
  // Anything but a method name before the first space is not HTTP: fail
  // now instead of waiting for a blank line that will never come.
  size_t sp = in.substr(0, limit).find(' ');
  std::string_view method = in.substr(0, std::min(sp, limit));
  if (!std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }) ||
      (sp == std::string_view::npos && limit > 16)) {
    return Reject(400, "not an HTTP request", limit);
  }
  if (end == std::string_view::npos) {
    if (in.size() >= kMaxUpgradeRequest) return Reject(400, "request head too long", limit);
    return UpgradeResult{};
  }
  const size_t consumed = end + 4;
  Request req;
  if (!ParseHead(in.substr(0, end), &req)) return Reject(400, "malformed HTTP request", consumed);
  if (req.version != "HTTP/1.1") return Reject(400, "not HTTP/1.1", consumed);
  if (req.method != "GET") return Reject(405, "method is not GET", consumed);
  std::string_view target = req.target.substr(0, req.target.find('?'));
  if (target != path) return Reject(404, "path is not " + std::string(path), consumed);
  if (!HasToken(req.upgrade, "websocket") || !HasToken(req.connection, "upgrade")) {
    return Reject(400, "not a WebSocket upgrade", consumed);
  }
  if (Trim(req.ws_version) != "13") {
    return Reject(426, "WebSocket version is not 13", consumed, "Sec-WebSocket-Version: 13\r\n");
  }
  if (!IsValidKey(Trim(req.key))) return Reject(400, "bad Sec-WebSocket-Key", consumed);
  std::string protocol;
  if (!req.protocols.empty()) {
    // The first of the client's choices that MQTT defines [MQTT-6.0.0-4].
    for (std::string_view offered : Tokens(req.protocols)) {
      for (std::string_view known : kSubprotocols) {
        if (protocol.empty() && EqualsNoCase(offered, known)) protocol = std::string(known);
      }
    }
    if (protocol.empty()) return Reject(400, "no MQTT subprotocol offered", consumed);
  }
  UpgradeResult r;
  r.kind = UpgradeResult::Kind::kAccept;
  r.consumed = consumed;
  r.protocol = protocol;
  r.response =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " + WebSocketAcceptKey(Trim(req.key)) + "\r\n";
  if (!protocol.empty()) r.response += "Sec-WebSocket-Protocol: " + protocol + "\r\n";
  r.response += "\r\n";
  return r;
}

void AppendWebSocketFrame(uint8_t opcode, std::string_view payload, std::string* out) {
  out->push_back(static_cast<char>(0x80 | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    out->push_back(static_cast<char>(n));
  } else if (n < 65536) {
    out->push_back(126);
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(127);
    for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(n >> shift));
  }
  out->append(payload);
}

size_t WebSocketWriter::FramePackets(std::string_view in, std::string* out) {
  size_t used = 0;
  while (used < in.size()) {
    const std::string_view rest = in.substr(used);
    auto header = ParseFixedHeader(
        std::span(reinterpret_cast<const uint8_t*>(rest.data()), rest.size()), UINT32_MAX);
    if (!header.ok()) {
      // Not an MQTT fixed header (ferryd's encoder never writes one): no
      // packet boundary can be found, so the bytes go out as they are.
      AppendWebSocketFrame(kWsBinary, rest, out);
      return in.size();
    }
    if (!header.value() || header.value()->total_length() > rest.size()) break;
    const size_t n = header.value()->total_length();
    AppendWebSocketFrame(kWsBinary, rest.substr(0, n), out);
    used += n;
  }
  return used;
}

void WebSocketWriter::Write(std::string_view in, std::string* out) {
  if (pending_.empty()) {
    const size_t used = FramePackets(in, out);
    pending_.assign(in.substr(used));
    return;
  }
  pending_.append(in);
  const size_t used = FramePackets(pending_, out);
  pending_.erase(0, used);
}

void AppendWebSocketClose(uint16_t code, std::string* out) {
  const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  AppendWebSocketFrame(kWsClose, std::string_view(payload, 2), out);
}

Status WebSocketReader::Fail(uint16_t code, std::string_view why, std::string* reply) {
  AppendWebSocketClose(code, reply);
  state_ = State::kDone;
  close_code_ = code;
  return Status::Protocol(ReasonCode::kProtocolError, "WebSocket: " + std::string(why));
}

Status WebSocketReader::CheckHeader(std::string* reply) {
  fin_ = (header_[0] & 0x80) != 0;
  opcode_ = header_[0] & 0x0F;
  if ((header_[0] & 0x70) != 0) return Fail(kWsCloseProtocolError, "reserved bit set", reply);
  if ((header_[1] & 0x80) == 0) return Fail(kWsCloseProtocolError, "client frame not masked", reply);
  const uint8_t len7 = header_[1] & 0x7F;
  const bool control = (opcode_ & 0x08) != 0;
  switch (opcode_) {
    case kWsText:
      return Fail(kWsCloseUnsupportedData, "text frame (MQTT needs binary frames)", reply);
    case kWsBinary:
      if (in_message_) return Fail(kWsCloseProtocolError, "new message inside a fragmented one", reply);
      break;
    case kWsContinuation:
      if (!in_message_) return Fail(kWsCloseProtocolError, "continuation without a message", reply);
      break;
    case kWsClose:
    case kWsPing:
    case kWsPong:
      break;
    default:
      return Fail(kWsCloseProtocolError, "reserved opcode", reply);
  }
  if (control && (!fin_ || len7 > 125)) {
    return Fail(kWsCloseProtocolError, "control frame fragmented or longer than 125 bytes", reply);
  }
  header_need_ = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
  return Status::Ok();
}

Status WebSocketReader::EndControlFrame(std::string* reply) {
  if (opcode_ == kWsPing) {
    AppendWebSocketFrame(kWsPong, control_, reply);
  } else if (opcode_ == kWsClose) {
    if (control_.size() == 1) return Fail(kWsCloseProtocolError, "close frame of 1 byte", reply);
    if (control_.size() >= 2) {
      const auto code = static_cast<uint16_t>(static_cast<uint8_t>(control_[0]) << 8 |
                                              static_cast<uint8_t>(control_[1]));
      const bool valid = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
                         (code >= 3000 && code <= 4999);
      if (!valid) return Fail(kWsCloseProtocolError, "invalid close code", reply);
      AppendWebSocketClose(code, reply);  // echo it [RFC 6455 5.5.1]
      close_code_ = code;
    } else {
      AppendWebSocketFrame(kWsClose, {}, reply);
    }
    closed_ = true;
    state_ = State::kDone;
  }
  control_.clear();
  return Status::Ok();
}

Status WebSocketReader::Feed(std::string_view in, std::string* data, std::string* reply) {
  size_t pos = 0;
  while (pos < in.size() && state_ != State::kDone) {
    if (state_ == State::kHeader) {
      while (header_len_ < header_need_ && pos < in.size()) {
        header_[header_len_++] = static_cast<uint8_t>(in[pos++]);
        if (header_len_ == 2) {
          if (Status st = CheckHeader(reply); !st.ok()) return st;
        }
      }
      if (header_len_ < header_need_) break;
      const uint8_t len7 = header_[1] & 0x7F;
      uint64_t len = len7;
      size_t at = 2;
      if (len7 >= 126) {
        const size_t bytes = len7 == 126 ? 2 : 8;
        len = 0;
        for (size_t i = 0; i < bytes; ++i) len = len << 8 | header_[at++];
        if (len >> 63) return Fail(kWsCloseProtocolError, "64-bit length with the top bit set", reply);
      }
      std::copy(header_ + at, header_ + at + 4, mask_);
      remaining_ = len;
      mask_pos_ = 0;
      header_len_ = 0;
      header_need_ = 2;
      if (opcode_ == kWsBinary || opcode_ == kWsContinuation) in_message_ = !fin_;
      state_ = State::kPayload;
    }
    const bool control = (opcode_ & 0x08) != 0;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - pos));
    std::string* to = control ? &control_ : data;
    const size_t start = to->size();
    to->append(in.substr(pos, n));
    for (size_t i = 0; i < n; ++i) {
      (*to)[start + i] = static_cast<char>((*to)[start + i] ^ mask_[(mask_pos_ + i) & 3]);
    }
    mask_pos_ += n;
    remaining_ -= n;
    pos += n;
    if (remaining_ == 0) {
      state_ = State::kHeader;
      if (control) {
        if (Status st = EndControlFrame(reply); !st.ok()) return st;
      }
    }
  }
  return Status::Ok();
}

}  // namespace ferry::core
