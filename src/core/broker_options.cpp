#include "core/broker_options.h"

#include "core/config.h"

namespace ferry::core {

BrokerOptions BrokerOptionsFromConfig(const Config& config) {
  BrokerOptions o;
  o.node_name = config.node.name;
  o.data_dir = config.node.data_dir;
  o.workers = config.node.workers;
  o.reserved_fds = config.node.reserved_fds;
  for (const ListenerConfig& l : config.listeners) {
    ListenerOptions lo;
    lo.type = l.type;
    lo.name = l.name;
    lo.host = l.host;
    lo.port = l.port;
    lo.max_connections = l.max_connections;
    lo.max_connection_rate = l.max_connection_rate;
    lo.proxy_protocol = l.proxy_protocol;
    lo.ws_path = l.path;
    lo.tls = l.tls;
    lo.origin = l.origin;
    o.listeners.push_back(std::move(lo));
  }
  const MqttConfig& m = config.mqtt;
  o.allow_anonymous = m.allow_anonymous;
  o.password_file = m.password_file;
  o.acl_file = m.acl_file;
  o.max_packet_size = m.max_packet_size;
  o.max_connect_packet_size = m.max_connect_packet_size;
  o.max_keepalive_s = m.max_keepalive.count() == 0 || m.max_keepalive.count() > 65535
                          ? 65535
                          : static_cast<uint16_t>(m.max_keepalive.count());
  o.connect_timeout_ms = static_cast<uint32_t>(m.connect_timeout.count());
  o.receive_maximum = m.receive_maximum;
  o.max_inflight = m.max_inflight;
  o.max_queued_messages = m.max_queued_messages;
  o.queue_qos0 = m.queue_qos0;
  o.max_session_expiry_s = static_cast<uint32_t>(m.max_session_expiry_interval.count());
  o.topic_alias_maximum = m.topic_alias_maximum;
  o.retain_available = m.retain_available;
  o.wildcard_subscription_available = m.wildcard_subscription_available;
  o.shared_subscription_available = m.shared_subscription_available;
  o.subscription_identifier_available = m.subscription_identifier_available;
  o.max_qos = m.max_qos;
  o.max_output_buffer = m.max_output_buffer;
  o.max_queue_wait_ms = static_cast<uint32_t>(m.max_queue_wait.count());
  o.queue_wait_action = m.queue_wait_action;
  o.max_partial_packet_memory = m.max_partial_packet_memory;
  o.max_subscriptions_per_client = m.max_subscriptions_per_client;
  o.max_client_id_length = m.max_client_id_length;
  o.allow_zero_length_clientid = m.allow_zero_length_clientid;
  o.persistence = m.persistence;
  o.store_reserve = m.store_reserve;
  o.sys_interval_ms = static_cast<uint32_t>(config.sys.interval.count());
  return o;
}

}  // namespace ferry::core
