#include "mosq_client.h"

#include <mosquitto.h>

#include <utility>

namespace ferry::testing {
namespace {

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

::testing::AssertionResult MosqFailure(const std::string& what, int rc) {
  return ::testing::AssertionFailure() << "libmosquitto " << what << ": " << mosquitto_strerror(rc);
}

}  // namespace

MosqClient::MosqClient(uint16_t port, std::string client_id, MqttVersion version)
    : port_(port), client_id_(std::move(client_id)), version_(version) {}

MosqClient::~MosqClient() {
  StopLoop();
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

template <typename Pred>
bool MosqClient::WaitLocked(std::chrono::milliseconds timeout, Pred done) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return done(); });
}

::testing::AssertionResult MosqClient::Connect(const MosqConnectOptions& options) {
  InitLibraryOnce();
  StopLoop();
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
  mosq_ = mosquitto_new(client_id_.c_str(), options.clean_start, this);
  if (mosq_ == nullptr) return ::testing::AssertionFailure() << "mosquitto_new failed";
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION,
                       version_ == MqttVersion::kV5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(mosq_, &MosqClient::OnConnect);
  mosquitto_disconnect_callback_set(mosq_, &MosqClient::OnDisconnect);
  mosquitto_publish_callback_set(mosq_, &MosqClient::OnPublish);
  mosquitto_subscribe_callback_set(mosq_, &MosqClient::OnSubscribe);
  mosquitto_message_callback_set(mosq_, &MosqClient::OnMessage);
  if (options.username) {
    const char* password = options.password ? options.password->c_str() : nullptr;
    if (int rc = mosquitto_username_pw_set(mosq_, options.username->c_str(), password)) {
      return MosqFailure("username_pw_set", rc);
    }
  }
  if (options.will) {
    const ReceivedMessage& w = *options.will;
    if (int rc = mosquitto_will_set(mosq_, w.topic.c_str(), static_cast<int>(w.payload.size()),
                                    w.payload.data(), w.qos, w.retained)) {
      return MosqFailure("will_set", rc);
    }
  }
  if (options.tls) {
    const TlsClientFiles& t = *options.tls;
    if (int rc = mosquitto_tls_set(mosq_, t.cafile.c_str(), nullptr,
                                   t.certfile.empty() ? nullptr : t.certfile.c_str(),
                                   t.keyfile.empty() ? nullptr : t.keyfile.c_str(), nullptr)) {
      return MosqFailure("tls_set", rc);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    connack_rc_.reset();
  }
  if (int rc = mosquitto_connect_bind(mosq_, options.host.c_str(), port_, options.keepalive_s,
                                      options.bind_address.empty() ? nullptr
                                                                   : options.bind_address.c_str())) {
    return MosqFailure("connect to " + options.host + ":" + std::to_string(port_), rc);
  }
  if (int rc = mosquitto_loop_start(mosq_)) return MosqFailure("loop_start", rc);
  loop_running_ = true;
  if (!WaitLocked(options.timeout, [this] { return connack_rc_.has_value(); })) {
    return ::testing::AssertionFailure()
           << "libmosquitto: no CONNACK within " << options.timeout.count() << " ms";
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (*connack_rc_ != 0) {
    const char* reason = version_ == MqttVersion::kV5 ? mosquitto_reason_string(*connack_rc_)
                                                      : mosquitto_connack_string(*connack_rc_);
    return ::testing::AssertionFailure()
           << "libmosquitto: connection refused, code " << *connack_rc_ << ": " << reason;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult MosqClient::Subscribe(const std::string& filter, int qos,
                                                 std::chrono::milliseconds timeout) {
  if (mosq_ == nullptr) return ::testing::AssertionFailure() << "not connected";
  int mid = 0;
  if (int rc = mosquitto_subscribe(mosq_, &mid, filter.c_str(), qos)) {
    return MosqFailure("subscribe " + filter, rc);
  }
  if (!WaitLocked(timeout, [&] { return subacks_.count(mid) != 0; })) {
    return ::testing::AssertionFailure() << "libmosquitto: no SUBACK for " << filter;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int granted : subacks_[mid]) {
    if (granted >= 0x80) {
      return ::testing::AssertionFailure()
             << "subscribe " << filter << " refused, code " << granted;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult MosqClient::Publish(const std::string& topic, const std::string& payload,
                                               int qos, bool retain,
                                               std::chrono::milliseconds timeout) {
  if (mosq_ == nullptr) return ::testing::AssertionFailure() << "not connected";
  int mid = 0;
  if (int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()),
                                 payload.data(), qos, retain)) {
    return MosqFailure("publish to " + topic, rc);
  }
  if (!WaitLocked(timeout, [&] { return completed_publishes_.count(mid) != 0; })) {
    return ::testing::AssertionFailure() << "libmosquitto: publish to " << topic
                                         << " not complete within " << timeout.count() << " ms";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult MosqClient::Disconnect() {
  if (mosq_ == nullptr) return ::testing::AssertionFailure() << "not connected";
  const int rc = mosquitto_disconnect(mosq_);
  StopLoop();
  if (rc != MOSQ_ERR_SUCCESS) return MosqFailure("disconnect", rc);
  return ::testing::AssertionSuccess();
}

void MosqClient::StopLoop() {
  if (!loop_running_) return;
  // The network thread leaves its loop once a disconnect has been requested.
  mosquitto_disconnect(mosq_);
  mosquitto_loop_stop(mosq_, false);
  loop_running_ = false;
}

std::optional<ReceivedMessage> MosqClient::Receive(std::chrono::milliseconds timeout) {
  return messages_.Pop(timeout);
}

bool MosqClient::IsConnected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connected_;
}

::testing::AssertionResult MosqClient::WaitDisconnected(std::chrono::milliseconds timeout) {
  if (WaitLocked(timeout, [this] { return !connected_; })) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << client_id_ << " still connected after " << timeout.count() << " ms";
}

void MosqClient::OnConnect(struct mosquitto*, void* self, int rc) {
  auto* c = static_cast<MosqClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    c->connack_rc_ = rc;
    c->connected_ = rc == 0;
  }
  c->cv_.notify_all();
}

void MosqClient::OnDisconnect(struct mosquitto*, void* self, int) {
  auto* c = static_cast<MosqClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    c->connected_ = false;
  }
  c->cv_.notify_all();
}

void MosqClient::OnPublish(struct mosquitto*, void* self, int mid) {
  auto* c = static_cast<MosqClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    c->completed_publishes_.insert(mid);
  }
  c->cv_.notify_all();
}

void MosqClient::OnSubscribe(struct mosquitto*, void* self, int mid, int count,
                             const int* granted) {
  auto* c = static_cast<MosqClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    c->subacks_[mid].assign(granted, granted + count);
  }
  c->cv_.notify_all();
}

void MosqClient::OnMessage(struct mosquitto*, void* self, const struct mosquitto_message* msg) {
  auto* c = static_cast<MosqClient*>(self);
  std::string payload;
  if (msg->payloadlen > 0) {
    payload.assign(static_cast<const char*>(msg->payload), static_cast<size_t>(msg->payloadlen));
  }
  c->messages_.Push(ReceivedMessage{msg->topic, std::move(payload), msg->qos, msg->retain});
}

}  // namespace ferry::testing
