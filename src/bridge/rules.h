// Bridge topic rules: which topic filters a bridge forwards upstream or pulls
// down, at which QoS, and how topics are renamed on the way.
//
// A rule is a topic filter plus two prefixes, as in mosquitto's
// `topic PATTERN DIRECTION QOS LOCAL_PREFIX REMOTE_PREFIX`:
//
//   forward (out):  local filter  = local_prefix  + filter
//                   remote topic  = remote_prefix + (local topic minus local_prefix)
//   subscribe (in): remote filter = remote_prefix + filter
//                   local topic   = local_prefix  + (remote topic minus remote_prefix)
//
// Worked example: forward rule `sensor/# 1 remote_prefix=site/edge1/` on
// node edge1. A local publish on "sensor/t1" matches the local filter
// "sensor/#" and goes upstream as "site/edge1/sensor/t1" at QoS
// min(published QoS, 1). A subscribe rule `cmd/# 2 remote_prefix=site/edge1/`
// subscribes upstream to "site/edge1/cmd/#"; an upstream message on
// "site/edge1/cmd/reboot" is published locally as "cmd/reboot".
//
// Rule text (config keys `forward` and `subscribe`, ferryctl): rules separated
// by ',', each `FILTER [QOS] [remote_prefix=P] [local_prefix=L]` separated by
// spaces; QOS defaults to 1; the prefixes default to the bridge's
// `remote_prefix` and `local_prefix`. "${node}" anywhere in a filter or prefix
// is replaced by the node's name. A filter cannot hold spaces or commas.
//
// Pure functions and value types; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ferry::bridge {

struct TopicRule {
  std::string filter;  // ${node} expanded; relative to the prefixes
  uint8_t qos = 1;     // forward: cap on the forwarded QoS; subscribe: subscription QoS
  std::string local_prefix;
  std::string remote_prefix;

  std::string LocalFilter() const { return local_prefix + filter; }
  std::string RemoteFilter() const { return remote_prefix + filter; }

  // Forward direction: the upstream topic for `local_topic`. Empty if the
  // result is not a valid topic name (e.g. both prefixes empty and the
  // topic was only the local prefix).
  // REQUIRES: local_topic matches LocalFilter().
  std::string ToRemote(std::string_view local_topic) const;
  // Subscribe direction: the local topic for `remote_topic`, or nullopt if
  // `remote_topic` does not match RemoteFilter() or maps to an invalid name.
  std::optional<std::string> ToLocal(std::string_view remote_topic) const;

  // The rule as rule text (the inverse of ParseRules for one rule), with the
  // prefixes written out only where they differ from the defaults given.
  std::string ToText(std::string_view default_local_prefix,
                     std::string_view default_remote_prefix) const;

  bool operator==(const TopicRule&) const = default;
};

struct RuleDefaults {
  std::string local_prefix;
  std::string remote_prefix;
  std::string node_name;  // for ${node}
};

// Replaces every "${node}" in `text` by `node_name`.
std::string ExpandNode(std::string_view text, std::string_view node_name);

// Parses rule text (see the top of this file). Errors: InvalidArgument
// naming the offending rule: an empty rule, a bad QoS, an unknown option, an
// invalid topic filter once prefixed, a prefix holding a wildcard.
ferry::Result<std::vector<TopicRule>> ParseRules(std::string_view text,
                                                 const RuleDefaults& defaults);

// Checks one rule (as ParseRules does for each).
ferry::Status ValidateRule(const TopicRule& rule);

// One upstream publication of a forwarded message.
struct ForwardTarget {
  std::string remote_topic;
  uint8_t qos = 0;  // already capped by the rules (not yet by the message's QoS)
};

// The upstream topics a message on `local_topic` goes to, given the forward
// rules that matched (by index into `rules`): one target per distinct remote
// topic, at the highest QoS cap of the rules that map to it, in the order of
// the first rule naming it. Rules mapping to an invalid topic are skipped.
std::vector<ForwardTarget> ForwardTargets(const std::vector<TopicRule>& rules,
                                          const std::vector<size_t>& matched,
                                          std::string_view local_topic);

// The first subscribe rule whose remote filter matches `remote_topic`, or
// nullptr.
const TopicRule* SubscribeRuleFor(const std::vector<TopicRule>& rules,
                                  std::string_view remote_topic);

}  // namespace ferry::bridge
