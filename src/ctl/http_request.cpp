#include "ctl/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ferry::ctl {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string HttpRequest::Header(std::string_view name) const {
  auto it = headers.find(Lower(name));
  return it == headers.end() ? "" : it->second;
}

HttpRequestParser::State HttpRequestParser::Fail(int status, std::string why) {
  state_ = State::kError;
  error_status_ = status;
  error_ = std::move(why);
  return state_;
}

HttpRequestParser::State HttpRequestParser::Feed(std::string_view data) {
  if (state_ != State::kIncomplete) return state_;
  buffer_.append(data);
  if (head_end_ == std::string::npos) {
    size_t end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (buffer_.size() > max_bytes_) return Fail(431, "request head too large");
      return state_;
    }
    head_end_ = end + 4;
    if (head_end_ > max_bytes_) return Fail(431, "request head too large");
    if (ParseHead(std::string_view(buffer_).substr(0, end)) == State::kError) return state_;
  }
  if (buffer_.size() >= head_end_ + body_bytes_) state_ = State::kComplete;
  return state_;
}

HttpRequestParser::State HttpRequestParser::ParseHead(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  std::string_view rest = eol == std::string_view::npos ? "" : head.substr(eol + 2);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Fail(400, "malformed request line");
  }
  request_.method = std::string(line.substr(0, sp1));
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Fail(505, "HTTP version not supported");
  if (request_.method.empty() ||
      !std::all_of(request_.method.begin(), request_.method.end(),
                   [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return Fail(400, "malformed method");
  }
  if (target.empty() || target.front() != '/') return Fail(400, "request target must be a path");
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) {
      auto seg = PercentDecode(path.substr(i, j - i));
      if (!seg) return Fail(400, "bad percent-encoding in path");
      request_.path.push_back(std::move(*seg));
    }
    i = j + 1;
  }
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    size_t k = 0;
    while (k <= query.size()) {
      size_t amp = query.find('&', k);
      if (amp == std::string_view::npos) amp = query.size();
      std::string_view param = query.substr(k, amp - k);
      if (!param.empty()) {
        size_t eq = param.find('=');
        auto name = PercentDecode(param.substr(0, eq));
        std::optional<std::string> value;
        if (eq != std::string_view::npos) {
          value = PercentDecode(param.substr(eq + 1));
          if (!value) return Fail(400, "bad percent-encoding in query");
        }
        if (!name || name->empty()) return Fail(400, "bad query parameter");
        request_.query.emplace_back(std::move(*name), std::move(value));
      }
      k = amp + 1;
    }
  }
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? "" : rest.substr(e + 2);
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0 || h.front() == ' ' || h.front() == '\t') {
      return Fail(400, "malformed header line");
    }
    request_.headers[Lower(Trim(h.substr(0, colon)))] = std::string(Trim(h.substr(colon + 1)));
  }
  if (!request_.Header("transfer-encoding").empty()) {
    return Fail(501, "chunked request bodies are not supported");
  }
  std::string length = request_.Header("content-length");
  if (!length.empty()) {
    auto [ptr, ec] = std::from_chars(length.data(), length.data() + length.size(), body_bytes_);
    if (ec != std::errc() || ptr != length.data() + length.size()) {
      return Fail(400, "bad Content-Length");
    }
    if (body_bytes_ > max_bytes_ || head_end_ + body_bytes_ > max_bytes_) {
      return Fail(413, "request body too large");
    }
  }
  return state_;
}

}  // namespace ferry::ctl
