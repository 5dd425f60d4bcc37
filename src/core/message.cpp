#include "core/message.h"

#include <sys/time.h>

#include <algorithm>

namespace ferry::core {

uint64_t UnixNowUs() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
}

uint64_t UnixNowMs() { return UnixNowUs() / 1000; }

void TakeMessageProperties(Properties&& from, Message& m) {
  m.props.payload_format_indicator = from.payload_format_indicator;
  m.props.content_type = std::move(from.content_type);
  m.props.response_topic = std::move(from.response_topic);
  m.props.correlation_data = std::move(from.correlation_data);
  m.props.user_properties = std::move(from.user_properties);
  if (from.message_expiry_interval) {
    m.expiry_at_ms = m.received_at_ms + uint64_t{*from.message_expiry_interval} * 1000;
  }
  // A message forwarded by another node says which nodes it passed through;
  // Route drops it if this node is among them.
  if (!m.props.user_properties.empty()) m.path = NodePathOf(m.props);
}

std::vector<std::string> ParseNodePath(std::string_view value) {
  std::vector<std::string> path;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    if (comma > pos) path.emplace_back(value.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return path;
}

std::string FormatNodePath(const std::vector<std::string>& path) {
  std::string out;
  for (const std::string& node : path) {
    if (!out.empty()) out += ',';
    out += node;
  }
  return out;
}

std::vector<std::string> NodePathOf(const Properties& props) {
  for (auto it = props.user_properties.rbegin(); it != props.user_properties.rend(); ++it) {
    if (it->first == kNodePathProperty) return ParseNodePath(it->second);
  }
  return {};
}

void SetNodePath(Properties& props, const std::vector<std::string>& path) {
  std::erase_if(props.user_properties,
                [](const auto& kv) { return kv.first == kNodePathProperty; });
  if (!path.empty()) {
    props.user_properties.emplace_back(std::string(kNodePathProperty), FormatNodePath(path));
  }
}

}  // namespace ferry::core
