// Value parsers, ConfigErrors and SectionReader of core/config.h.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <limits>

#include "core/config.h"

namespace ferry::core {

namespace {

using std::chrono::milliseconds;

// Built piece by piece: "'" + std::string(s) trips a false -Wrestrict in
// GCC 12 at -O2/-O3.
std::string Quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "64KB" into the number 64 and the unit "kb" (lowercased, without
// spaces). False if there are no leading digits or the number overflows.
bool SplitNumber(std::string_view text, uint64_t* number, std::string* unit) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, *number);
  if (ec != std::errc() || ptr == begin) return false;
  std::string_view rest(ptr, static_cast<size_t>(end - ptr));
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  *unit = Lower(rest);
  return true;
}

std::string FormatDuration(milliseconds d) {
  static constexpr struct {
    int64_t ms;
    const char* suffix;
  } kUnits[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  int64_t ms = d.count();
  for (const auto& u : kUnits) {
    if (ms != 0 && ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
  }
  return ms == 0 ? "0s" : std::to_string(ms) + "ms";
}

bool IsHostnameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

Status CheckHost(std::string_view host, bool bracketed) {
  std::string h(host);
  if (bracketed) {
    in6_addr a6;
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) return Status::InvalidArgument("bad IPv6 address");
    return Status::Ok();
  }
  if (host.empty()) return Status::InvalidArgument("empty host");
  if (host.find(':') != std::string_view::npos) {
    return Status::InvalidArgument("an IPv6 address must be written in brackets");
  }
  if (!std::all_of(host.begin(), host.end(), IsHostnameChar)) {
    return Status::InvalidArgument("bad character in host");
  }
  bool numeric = std::all_of(host.begin(), host.end(),
                             [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
  in_addr a4;
  if (numeric && inet_pton(AF_INET, h.c_str(), &a4) != 1) {
    return Status::InvalidArgument("bad IPv4 address");
  }
  return Status::Ok();
}

}  // namespace

Result<bool> ParseBool(std::string_view text) {
  std::string v = Lower(text);
  if (v == "true" || v == "on" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "off" || v == "no" || v == "0") return false;
  return Status::InvalidArgument("expected a boolean (true/false, on/off, yes/no, 1/0), got " +
                                 Quoted(text));
}

Result<int64_t> ParseInteger(std::string_view text, int64_t min, int64_t max) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty() || v < min ||
      v > max) {
    return Status::InvalidArgument("expected an integer in " + std::to_string(min) + ".." +
                                   std::to_string(max) + ", got " + Quoted(text));
  }
  return v;
}

Result<uint64_t> ParseSize(std::string_view text, uint64_t min, uint64_t max) {
  auto fail = [&] {
    return Status::InvalidArgument("expected a size in " + std::to_string(min) + ".." +
                                   std::to_string(max) + " bytes (e.g. 1048576, 64KB, 1MB), got " +
                                   Quoted(text));
  };
  uint64_t n = 0;
  std::string unit;
  if (!SplitNumber(text, &n, &unit)) return fail();
  uint64_t factor = 0;
  if (unit.empty() || unit == "b") factor = 1;
  if (unit == "k" || unit == "kb" || unit == "kib") factor = uint64_t{1} << 10;
  if (unit == "m" || unit == "mb" || unit == "mib") factor = uint64_t{1} << 20;
  if (unit == "g" || unit == "gb" || unit == "gib") factor = uint64_t{1} << 30;
  if (factor == 0 || n > std::numeric_limits<uint64_t>::max() / factor) return fail();
  uint64_t v = n * factor;
  if (v < min || v > max) return fail();
  return v;
}

Result<milliseconds> ParseDuration(std::string_view text, milliseconds min, milliseconds max) {
  auto fail = [&] {
    return Status::InvalidArgument("expected a duration in " + FormatDuration(min) + ".." +
                                   FormatDuration(max) + " (e.g. 500ms, 10s, 2m, 1h), got " +
                                   Quoted(text));
  };
  uint64_t n = 0;
  std::string unit;
  if (!SplitNumber(text, &n, &unit)) return fail();
  int64_t factor = 0;
  if (unit == "ms") factor = 1;
  if (unit.empty() || unit == "s") factor = 1000;
  if (unit == "m") factor = 60000;
  if (unit == "h") factor = 3600000;
  if (unit == "d") factor = 86400000;
  if (factor == 0 || n > static_cast<uint64_t>(INT64_MAX / factor)) return fail();
  milliseconds v(static_cast<int64_t>(n) * factor);
  if (v < min || v > max) return fail();
  return v;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Status::InvalidArgument("expected host:port (e.g. 0.0.0.0:1883, [::1]:1883), got " +
                                   Quoted(text) + ": " + std::string(why));
  };
  size_t colon;
  HostPort out;
  bool bracketed = text.starts_with('[');
  if (bracketed) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') return fail("missing ':port'");
    colon = close + 1;
    out.host = std::string(text.substr(1, close - 1));
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("missing ':port'");
    out.host = std::string(text.substr(0, colon));
  }
  if (Status s = CheckHost(out.host, bracketed); !s.ok()) return fail(s.message());
  std::string_view port = text.substr(colon + 1);
  uint32_t p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p > 65535) {
    return fail("port must be a number in 0..65535");
  }
  out.port = static_cast<uint16_t>(p);
  return out;
}

// ---------------------------------------------------------------- errors

void ConfigErrors::Add(std::string_view origin, int line, std::string_view message) {
  errors_.push_back(Error{line, std::string(origin) + ": " + std::string(message)});
}

Status ConfigErrors::ToStatus() const {
  if (errors_.empty()) return Status::Ok();
  std::vector<Error> sorted = errors_;
  auto key = [](const Error& e) { return e.line > 0 ? e.line : INT_MAX; };
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](const Error& a, const Error& b) { return key(a) < key(b); });
  std::string text;
  for (const auto& e : sorted) {
    if (!text.empty()) text += '\n';
    text += e.text;
  }
  return Status::InvalidArgument(text);
}

// ---------------------------------------------------------------- reader

SectionReader::SectionReader(const RawSection* section, std::string_view name,
                             ConfigErrors& errors)
    : section_(section), name_(name), errors_(errors) {}

const ConfigValue* SectionReader::Lookup(std::string_view key) {
  if (std::find(known_keys_.begin(), known_keys_.end(), key) == known_keys_.end()) {
    known_keys_.emplace_back(key);
  }
  return section_ ? section_->Find(key) : nullptr;
}

void SectionReader::Invalid(std::string_view key, const ConfigValue& value, const Status& why) {
  errors_.Add(value.origin, value.line,
              "[" + name_ + "] " + std::string(key) + ": " + why.message());
}

bool SectionReader::String(std::string_view key, std::string* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  *out = v->value;
  return true;
}

bool SectionReader::List(std::string_view key, std::vector<std::string>* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  out->clear();
  const std::string& text = v->value;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string_view item = std::string_view(text).substr(pos, comma - pos);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
      item.remove_prefix(1);
    }
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) {
      item.remove_suffix(1);
    }
    if (!item.empty()) out->emplace_back(item);
    pos = comma + 1;
  }
  return true;
}

bool SectionReader::Bool(std::string_view key, bool* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  Result<bool> r = ParseBool(v->value);
  if (!r.ok()) {
    Invalid(key, *v, r.status());
    return false;
  }
  *out = r.value();
  return true;
}

bool SectionReader::Int64(std::string_view key, int64_t min, int64_t max, int64_t* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  Result<int64_t> r = ParseInteger(v->value, min, max);
  if (!r.ok()) {
    Invalid(key, *v, r.status());
    return false;
  }
  *out = r.value();
  return true;
}

bool SectionReader::Size(std::string_view key, uint64_t min, uint64_t max, uint64_t* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  Result<uint64_t> r = ParseSize(v->value, min, max);
  if (!r.ok()) {
    Invalid(key, *v, r.status());
    return false;
  }
  *out = r.value();
  return true;
}

bool SectionReader::Duration(std::string_view key, milliseconds min, milliseconds max,
                             milliseconds* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  Result<milliseconds> r = ParseDuration(v->value, min, max);
  if (!r.ok()) {
    Invalid(key, *v, r.status());
    return false;
  }
  *out = r.value();
  return true;
}

bool SectionReader::Seconds(std::string_view key, std::chrono::seconds min,
                            std::chrono::seconds max, std::chrono::seconds* out) {
  milliseconds ms{};
  if (!Duration(key, min, max, &ms)) return false;
  if (ms.count() % 1000 != 0) {
    Invalid(key, *Lookup(key),
            Status::InvalidArgument("expected whole seconds, got " + Quoted(Lookup(key)->value)));
    return false;
  }
  *out = std::chrono::duration_cast<std::chrono::seconds>(ms);
  return true;
}

bool SectionReader::HostPortValue(std::string_view key, HostPort* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  Result<HostPort> r = ParseHostPort(v->value);
  if (!r.ok()) {
    Invalid(key, *v, r.status());
    return false;
  }
  *out = std::move(r).value();
  return true;
}

bool SectionReader::Choice(std::string_view key, std::span<const std::string_view> choices,
                           size_t* out) {
  const ConfigValue* v = Lookup(key);
  if (v == nullptr) return false;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i] == v->value) {
      *out = i;
      return true;
    }
  }
  std::string list;
  for (std::string_view c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  Invalid(key, *v, Status::InvalidArgument("expected one of " + list + ", got " + Quoted(v->value)));
  return false;
}

void SectionReader::Require(std::string_view key, std::string_view fallback_origin) {
  if (Lookup(key) != nullptr) return;
  std::string msg = "[" + name_ + "] missing required key '" + std::string(key) + "'";
  if (section_ != nullptr) {
    errors_.Add(section_->origin, section_->line, msg);
  } else {
    errors_.Add(fallback_origin, 0, msg);
  }
}

void SectionReader::Error(std::string_view key, std::string_view message) {
  std::string msg = "[" + name_ + "] " + std::string(message);
  if (const ConfigValue* v = Lookup(key)) {
    errors_.Add(v->origin, v->line, msg);
  } else if (section_ != nullptr) {
    errors_.Add(section_->origin, section_->line, msg);
  } else {
    errors_.Add(name_, 0, msg);
  }
}

void SectionReader::ReportUnknownKeys() {
  if (section_ == nullptr) return;
  for (const auto& [k, v] : section_->entries) {
    if (std::find(known_keys_.begin(), known_keys_.end(), k) == known_keys_.end()) {
      errors_.Add(v.origin, v.line, "[" + name_ + "] unknown key '" + k + "'");
    }
  }
}

}  // namespace ferry::core
