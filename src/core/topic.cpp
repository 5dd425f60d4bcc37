#include "core/topic.h"

#include <cstddef>

namespace ferry::core {
namespace {

constexpr size_t kMaxTopicBytes = 65535;  // [MQTT-4.7.3-3]
constexpr std::string_view kSharePrefix = "$share/";
constexpr std::string_view kQueuePrefix = "$queue/";
constexpr std::string_view kQueueGroup = "$queue";

Status FilterInvalid(std::string_view why) {
  return Status::Protocol(ReasonCode::kTopicFilterInvalid, why);
}

Status NameInvalid(std::string_view why) {
  return Status::Protocol(ReasonCode::kTopicNameInvalid, why);
}

// Returns the level that starts at *pos and moves *pos to the start of the
// next level, or to npos after the last one. "a//b" has levels "a", "", "b";
// "a/" has "a" and "".
std::string_view NextLevel(std::string_view s, size_t* pos) {
  const size_t start = *pos;
  const size_t slash = s.find('/', start);
  if (slash == std::string_view::npos) {
    *pos = std::string_view::npos;
    return s.substr(start);
  }
  *pos = slash + 1;
  return s.substr(start, slash - start);
}

}  // namespace

Status ValidateTopicName(std::string_view name) {
  if (name.empty()) return NameInvalid("topic name is empty");  // [MQTT-4.7.3-1]
  if (name.size() > kMaxTopicBytes) return NameInvalid("topic name is longer than 65535 bytes");
  // [MQTT-3.3.2-2] no wildcards in a topic name; [MQTT-4.7.3-2] no U+0000.
  // The codec already refuses U+0000 in any MQTT string; names that reach us
  // by another road (config, admin requests) are checked here too.
  for (char c : name) {
    if (c == '+' || c == '#') return NameInvalid("topic name contains a wildcard");
    if (c == '\0') return NameInvalid("topic name contains U+0000");
  }
  return Status::Ok();
}

Status ValidateTopicFilter(std::string_view filter) {
  if (filter.empty()) return FilterInvalid("topic filter is empty");  // [MQTT-4.7.3-1]
  if (filter.size() > kMaxTopicBytes) {
    return FilterInvalid("topic filter is longer than 65535 bytes");
  }
  size_t pos = 0;
  while (pos != std::string_view::npos) {
    const std::string_view level = NextLevel(filter, &pos);
    if (level == "#") {
      // [MQTT-4.7.1-1] '#' is the last character of the filter.
      if (pos != std::string_view::npos) return FilterInvalid("'#' is not the last level");
      break;
    }
    if (level == "+") continue;
    for (char c : level) {
      if (c == '#') return FilterInvalid("'#' does not occupy a whole level");  // [MQTT-4.7.1-1]
      if (c == '+') return FilterInvalid("'+' does not occupy a whole level");  // [MQTT-4.7.1-2]
      if (c == '\0') return FilterInvalid("topic filter contains U+0000");      // [MQTT-4.7.3-2]
    }
  }
  return Status::Ok();
}

bool TopicMatches(std::string_view filter, std::string_view name) {
  // [MQTT-4.7.2-1] A filter starting with a wildcard does not match a topic
  // name starting with '$' ($SYS/...), so "#" is not a way to read them.
  if (!name.empty() && name.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  size_t filter_pos = 0;
  size_t name_pos = 0;
  while (filter_pos != std::string_view::npos) {
    const std::string_view flevel = NextLevel(filter, &filter_pos);
    // '#' matches the remaining levels, including none: "a/#" matches "a"
    // (MQTT 5.0 section 4.7.1.2).
    if (flevel == "#") return true;
    if (name_pos == std::string_view::npos) return false;  // the name ran out first
    const std::string_view nlevel = NextLevel(name, &name_pos);
    if (flevel != "+" && flevel != nlevel) return false;
  }
  return name_pos == std::string_view::npos;
}

bool HasWildcard(std::string_view filter) {
  return filter.find_first_of("+#") != std::string_view::npos;
}

Result<std::optional<SharedFilter>> ParseSharedFilter(std::string_view filter) {
  if (filter.starts_with(kQueuePrefix)) {
    const std::string_view rest = filter.substr(kQueuePrefix.size());
    if (Status s = ValidateTopicFilter(rest); !s.ok()) return s;
    return std::optional<SharedFilter>(SharedFilter{std::string(kQueueGroup), std::string(rest)});
  }
  if (!filter.starts_with(kSharePrefix)) return std::optional<SharedFilter>();

  const std::string_view rest = filter.substr(kSharePrefix.size());
  const size_t slash = rest.find('/');
  const std::string_view group = rest.substr(0, slash);
  // [MQTT-4.8.2-1] the ShareName is at least one character long.
  if (group.empty()) return FilterInvalid("shared subscription has an empty share name");
  // [MQTT-4.8.2-2] the ShareName holds no '+' or '#' and is followed by '/'
  // and a topic filter.
  if (group.find_first_of("+#") != std::string_view::npos) {
    return FilterInvalid("share name contains a wildcard");
  }
  if (slash == std::string_view::npos) {
    return FilterInvalid("shared subscription has no topic filter after the share name");
  }
  const std::string_view inner = rest.substr(slash + 1);
  if (Status s = ValidateTopicFilter(inner); !s.ok()) return s;
  return std::optional<SharedFilter>(SharedFilter{std::string(group), std::string(inner)});
}

}  // namespace ferry::core
