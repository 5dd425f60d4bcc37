#include "bridge/rules.h"

#include <algorithm>

#include "core/topic.h"

namespace ferry::bridge {

namespace {

using ferry::Result;
using ferry::Status;

constexpr std::string_view kNodePlaceholder = "${node}";

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = text.find(sep, pos);
    out.push_back(text.substr(pos, next == std::string_view::npos ? std::string_view::npos
                                                                  : next - pos));
    if (next == std::string_view::npos) return out;
    pos = next + 1;
  }
}

std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::string_view w : Split(text, ' ')) {
    // Tabs count as spaces too.
    for (std::string_view t : Split(w, '\t')) {
      if (!t.empty()) out.push_back(t);
    }
  }
  return out;
}

Status CheckPrefix(std::string_view prefix, std::string_view what) {
  if (prefix.find_first_of("+#") != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(prefix) +
                                   "' holds a wildcard");
  }
  return Status::Ok();
}

}  // namespace

std::string ExpandNode(std::string_view text, std::string_view node_name) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = text.find(kNodePlaceholder, pos);
    if (at == std::string_view::npos) {
      out.append(text.substr(pos));
      return out;
    }
    out.append(text.substr(pos, at - pos));
    out.append(node_name);
    pos = at + kNodePlaceholder.size();
  }
}

std::string TopicRule::ToRemote(std::string_view local_topic) const {
  std::string_view rest = local_topic;
  if (rest.starts_with(local_prefix)) rest.remove_prefix(local_prefix.size());
  std::string out = remote_prefix;
  out.append(rest);
  if (!core::ValidateTopicName(out).ok()) return {};
  return out;
}

std::optional<std::string> TopicRule::ToLocal(std::string_view remote_topic) const {
  if (!remote_topic.starts_with(remote_prefix)) return std::nullopt;
  if (!core::TopicMatches(RemoteFilter(), remote_topic)) return std::nullopt;
  std::string out = local_prefix;
  out.append(remote_topic.substr(remote_prefix.size()));
  if (!core::ValidateTopicName(out).ok()) return std::nullopt;
  return out;
}

std::string TopicRule::ToText(std::string_view default_local_prefix,
                              std::string_view default_remote_prefix) const {
  std::string out = filter + " " + std::to_string(qos);
  if (remote_prefix != default_remote_prefix) out += " remote_prefix=" + remote_prefix;
  if (local_prefix != default_local_prefix) out += " local_prefix=" + local_prefix;
  return out;
}

Status ValidateRule(const TopicRule& rule) {
  if (Status st = CheckPrefix(rule.local_prefix, "local_prefix"); !st.ok()) return st;
  if (Status st = CheckPrefix(rule.remote_prefix, "remote_prefix"); !st.ok()) return st;
  if (rule.qos > 2) return Status::InvalidArgument("QoS must be 0, 1 or 2");
  for (const std::string& f : {rule.LocalFilter(), rule.RemoteFilter()}) {
    auto shared = core::ParseSharedFilter(f);
    if (!shared.ok() || shared.value().has_value()) {
      return Status::InvalidArgument("'" + f + "' is a shared subscription");
    }
    if (Status st = core::ValidateTopicFilter(f); !st.ok()) {
      return Status::InvalidArgument("'" + f + "' is not a valid topic filter");
    }
  }
  return Status::Ok();
}

Result<std::vector<TopicRule>> ParseRules(std::string_view text, const RuleDefaults& defaults) {
  std::vector<TopicRule> rules;
  if (text.find(',') == std::string_view::npos && Words(text).empty()) return rules;
  for (std::string_view item : Split(text, ',')) {
    std::vector<std::string_view> words = Words(item);
    if (words.empty()) {
      return Status::InvalidArgument("empty rule in '" + std::string(text) + "'");
    }
    TopicRule rule;
    rule.filter = ExpandNode(words[0], defaults.node_name);
    rule.local_prefix = ExpandNode(defaults.local_prefix, defaults.node_name);
    rule.remote_prefix = ExpandNode(defaults.remote_prefix, defaults.node_name);
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (i == 1 && w.size() == 1 && w[0] >= '0' && w[0] <= '9') {
        if (w[0] > '2') {
          return Status::InvalidArgument("rule '" + std::string(item) +
                                         "': QoS must be 0, 1 or 2, got " + std::string(w));
        }
        rule.qos = static_cast<uint8_t>(w[0] - '0');
      } else if (w.starts_with("remote_prefix=")) {
        rule.remote_prefix = ExpandNode(w.substr(14), defaults.node_name);
      } else if (w.starts_with("local_prefix=")) {
        rule.local_prefix = ExpandNode(w.substr(13), defaults.node_name);
      } else {
        return Status::InvalidArgument("rule '" + std::string(item) + "': unexpected '" +
                                       std::string(w) +
                                       "' (expected QOS, remote_prefix=P or local_prefix=L)");
      }
    }
    if (Status st = ValidateRule(rule); !st.ok()) {
      return Status::InvalidArgument("rule '" + std::string(item) + "': " + st.message());
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

std::vector<ForwardTarget> ForwardTargets(const std::vector<TopicRule>& rules,
                                          const std::vector<size_t>& matched,
                                          std::string_view local_topic) {
  std::vector<ForwardTarget> out;
  for (size_t index : matched) {
    if (index >= rules.size()) continue;
    const TopicRule& rule = rules[index];
    std::string remote = rule.ToRemote(local_topic);
    if (remote.empty()) continue;
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const ForwardTarget& t) { return t.remote_topic == remote; });
    if (same != out.end()) {
      same->qos = std::max(same->qos, rule.qos);
    } else {
      out.push_back(ForwardTarget{std::move(remote), rule.qos});
    }
  }
  return out;
}

const TopicRule* SubscribeRuleFor(const std::vector<TopicRule>& rules,
                                  std::string_view remote_topic) {
  for (const TopicRule& rule : rules) {
    if (remote_topic.starts_with(rule.remote_prefix) &&
        core::TopicMatches(rule.RemoteFilter(), remote_topic)) {
      return &rule;
    }
  }
  return nullptr;
}

}  // namespace ferry::bridge
