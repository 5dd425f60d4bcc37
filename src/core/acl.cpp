// Access control list of core/acl.h.
#include "core/acl.h"

#include <algorithm>

#include "core/config_internal.h"
#include "core/topic.h"

namespace ferry::core {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the first whitespace-separated word; `rest` is trimmed.
std::string_view FirstWord(std::string_view s, std::string_view* rest) {
  size_t end = 0;
  while (end < s.size() && !IsSpace(s[end])) ++end;
  *rest = Trim(s.substr(end));
  return s.substr(0, end);
}

// Cuts a trailing comment: '#' after whitespace, never at position 0 (where it
// is the filter "#" or the start of one).
std::string_view StripComment(std::string_view s) {
  for (size_t i = 1; i < s.size(); ++i) {
    if (s[i] == '#' && IsSpace(s[i - 1])) return Trim(s.substr(0, i));
  }
  return s;
}

std::vector<std::string_view> Levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool IsWildcard(std::string_view level) { return level == "+" || level == "#"; }

// A %u or %c value that keeps the pattern's shape: a plain, non-empty level.
bool SafeValue(const std::optional<std::string_view>& v) {
  return v && !v->empty() && v->find_first_of("+#/") == std::string_view::npos;
}

// Substitutes %u and %c in `pattern`. For a grant (`deny` false) an unsafe
// value makes the rule not apply: nullopt. For a deny rule an unsafe value
// widens its level to '+', or cuts the filter to '#' if the value holds a
// '/', so that the deny covers at least the literal substitution.
std::optional<std::string> Substitute(std::string_view pattern,
                                      const std::optional<std::string>& username,
                                      std::string_view client_id, bool deny) {
  std::optional<std::string_view> user;
  if (username) user = *username;
  std::string out;
  bool first = true;
  for (std::string_view level : Levels(pattern)) {
    std::string sub;
    bool unsafe = false, has_slash = false;
    for (size_t i = 0; i < level.size(); ++i) {
      if (level[i] != '%' || i + 1 == level.size()) {
        sub += level[i];
        continue;
      }
      std::optional<std::string_view> v = level[++i] == 'u' ? user : client_id;
      unsafe = unsafe || !SafeValue(v);
      has_slash = has_slash || (v && v->find('/') != std::string_view::npos);
      if (v) sub += *v;
    }
    if (unsafe && !deny) return std::nullopt;
    if (!first) out += '/';
    first = false;
    if (unsafe && has_slash) return out + "#";
    out += unsafe ? "+" : sub;
  }
  return out;
}

// Whether `filter` reaches the topic name or covers the topic filter
// `subject`; with `dollar_rule` false, first-level wildcards reach '$' topics.
bool Reaches(std::string_view filter, std::string_view subject, bool is_filter, bool dollar_rule) {
  if (is_filter) return FilterCovers(filter, subject, dollar_rule);
  if (!dollar_rule && subject.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#'))) {
    // Any first character but '$' will do: the filter's first level is a
    // wildcard, and the other levels are compared unchanged.
    std::string renamed(subject);
    renamed[0] = '_';
    return TopicMatches(filter, renamed);
  }
  return TopicMatches(filter, subject);
}

struct ParsedRule {
  uint8_t access = 3;
  std::string filter;
};

// The part of a `topic` or `pattern` line after the keyword; returns an
// error message, or empty on success.
std::string ParseRule(std::string_view rest, bool pattern, ParsedRule* rule) {
  static constexpr std::pair<std::string_view, uint8_t> kAccess[] = {
      {"read", 1}, {"write", 2}, {"readwrite", 3}, {"deny", 4}};
  std::string_view after;
  std::string_view word = FirstWord(rest, &after);
  for (const auto& [name, access] : kAccess) {
    if (word == name && !after.empty()) {
      rule->access = access;
      rest = after;
    }
  }
  std::string_view filter = StripComment(rest);
  if (filter.empty()) return "expected a topic filter";
  for (size_t i = 0; pattern && i < filter.size(); ++i) {
    if (filter[i] == '%' && (i + 1 == filter.size() || (filter[i + 1] != 'u' && filter[i + 1] != 'c'))) {
      return "unknown substitution '" + std::string(filter.substr(i, 2)) + "' (only %u and %c)";
    }
    if (filter[i] == '%') ++i;
  }
  if (Status s = ValidateTopicFilter(filter); !s.ok()) {
    return "invalid topic filter '" + std::string(filter) + "': " + s.message();
  }
  rule->filter = std::string(filter);
  return "";
}

}  // namespace

bool FilterCovers(std::string_view rule, std::string_view filter, bool dollar_rule) {
  std::vector<std::string_view> r = Levels(rule);
  std::vector<std::string_view> f = Levels(filter);
  if (dollar_rule && filter.starts_with('$') && IsWildcard(r[0])) return false;
  size_t i = 0;
  for (; i < r.size() && i < f.size(); ++i) {
    if (r[i] == "#") return true;
    if (f[i] == "#") return false;
    if (r[i] == "+") continue;
    if (f[i] == "+" || r[i] != f[i]) return false;
  }
  // "a/#" also matches "a", so a rule ending in "/#" covers its parent.
  if (i < r.size()) return i + 1 == r.size() && r[i] == "#";
  return i == f.size();
}

Result<Acl> Acl::Parse(std::string_view text, std::string_view name) {
  Acl acl;
  std::vector<Rule>* block = &acl.anonymous_;
  std::string errors;
  int lineno = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = std::min(text.find('\n', pos), text.size());
    std::string_view line = Trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++lineno;
    if (line.empty() || line.front() == '#') continue;
    std::string_view rest;
    std::string_view keyword = FirstWord(line, &rest);
    std::string error;
    if (keyword == "user") {
      std::string_view user = StripComment(rest);
      if (user.empty()) {
        error = "expected a username after 'user'";
      } else {
        block = &acl.users_[std::string(user)];
      }
    } else if (keyword == "topic" || keyword == "pattern") {
      ParsedRule r;
      error = ParseRule(rest, keyword == "pattern", &r);
      if (error.empty()) {
        (keyword == "topic" ? *block : acl.patterns_)
            .push_back(Rule{static_cast<Access>(r.access), std::move(r.filter)});
      }
    } else {
      error = "unknown keyword '" + std::string(keyword) + "' (expected topic, pattern or user)";
    }
    if (!error.empty()) {
      if (!errors.empty()) errors += '\n';
      errors += std::string(name) + ":" + std::to_string(lineno) + ": " + error;
    }
  }
  if (!errors.empty()) return Status::InvalidArgument(errors);
  return acl;
}

Result<Acl> Acl::Load(const std::string& path) {
  Result<std::string> text = internal::ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(text.value(), path);
}

Acl Acl::AllowAll() {
  Acl acl;
  acl.allow_all_ = true;
  return acl;
}

bool Acl::Allowed(const std::optional<std::string>& username, std::string_view client_id,
                  Access wanted, std::string_view subject, Subject kind) const {
  if (allow_all_) return true;
  bool is_filter = kind == Subject::kTopicFilter;
  bool granted = false;
  // Returns true if the rule denies; records a grant.
  auto apply = [&](Access access, std::string_view filter) {
    if (access == kDeny) return Reaches(filter, subject, is_filter, /*dollar_rule=*/false);
    if ((access & wanted) != 0 && Reaches(filter, subject, is_filter, /*dollar_rule=*/true)) {
      granted = true;
    }
    return false;
  };
  const std::vector<Rule>* block = &anonymous_;
  if (username) {
    auto it = users_.find(*username);
    block = it == users_.end() ? nullptr : &it->second;
  }
  for (size_t i = 0; block != nullptr && i < block->size(); ++i) {
    if (apply((*block)[i].access, (*block)[i].filter)) return false;
  }
  for (const Rule& p : patterns_) {
    std::optional<std::string> f = Substitute(p.filter, username, client_id, p.access == kDeny);
    if (f && apply(p.access, *f)) return false;
  }
  return granted;
}

bool Acl::CanPublish(const std::optional<std::string>& username, std::string_view client_id,
                     std::string_view topic) const {
  return Allowed(username, client_id, kWrite, topic, Subject::kTopicName);
}

bool Acl::CanReceive(const std::optional<std::string>& username, std::string_view client_id,
                     std::string_view topic) const {
  return Allowed(username, client_id, kRead, topic, Subject::kTopicName);
}

bool Acl::CanSubscribe(const std::optional<std::string>& username, std::string_view client_id,
                       std::string_view filter) const {
  Result<std::optional<SharedFilter>> shared = ParseSharedFilter(filter);
  if (!shared.ok()) return false;
  std::string_view f = shared.value() ? std::string_view(shared.value()->filter) : filter;
  return Allowed(username, client_id, kRead, f, Subject::kTopicFilter);
}

}  // namespace ferry::core
