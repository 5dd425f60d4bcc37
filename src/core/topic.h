// Topic names, topic filters and matching (MQTT 5.0 section 4.7).
//
// A *topic name* is what a PUBLISH carries; a *topic filter* is what a
// SUBSCRIBE carries and may hold the wildcards '+' and '#'. They are validated
// separately. Strings given here are already well-formed MQTT UTF-8 (the codec
// checks that); these functions check the topic rules on top.
// Stateless; any thread may call them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace ferry::core {

// OK, or 0x90 Topic Name Invalid: empty [MQTT-4.7.3-1], or containing '+' or
// '#' [MQTT-3.3.2-2], or longer than 65535 bytes.
Status ValidateTopicName(std::string_view name);

// OK, or 0x8F Topic Filter Invalid: empty [MQTT-4.7.3-1]; '#' not alone in the
// last level [MQTT-4.7.1-1]; '+' not alone in its level [MQTT-4.7.1-2]. For a
// shared subscription pass the filter part only (see ParseSharedFilter).
Status ValidateTopicFilter(std::string_view filter);

// True if `filter` matches `name`. Wildcards at the first level do not match
// topic names starting with '$' [MQTT-4.7.2-1]. "a/#" matches "a" (the '#'
// includes the parent level).
bool TopicMatches(std::string_view filter, std::string_view name);

// True if the filter has a '+' or '#'.
bool HasWildcard(std::string_view filter);

// A shared subscription: "$share/<group>/<filter>" or "$queue/<filter>"
// (group "$queue").
struct SharedFilter {
  std::string group;
  std::string filter;
};

// std::nullopt if `filter` is not a shared subscription. A shared form with an
// empty or wildcard group, or no filter after the group, yields a Status 0x8F.
Result<std::optional<SharedFilter>> ParseSharedFilter(std::string_view filter);

}  // namespace ferry::core
