#include "paho_client.h"

#include <mqtt/async_client.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace ferry::testing {
namespace {

constexpr int kMaxBufferedPublishes = 65535;

int PahoVersion(MqttVersion v) { return v == MqttVersion::kV5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1; }

::testing::AssertionResult Failure(const std::string& what, const std::exception& e) {
  return ::testing::AssertionFailure() << "Paho " << what << ": " << e.what();
}

// Waits for a Paho token; Paho's wait_for throws if the operation failed.
::testing::AssertionResult Await(const mqtt::token_ptr& token, const std::string& what,
                                 std::chrono::milliseconds timeout) {
  if (!token->wait_for(timeout)) {
    return ::testing::AssertionFailure()
           << "Paho " << what << ": no answer within " << timeout.count() << " ms";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

PahoClient::PahoClient(uint16_t port, std::string client_id, MqttVersion version)
    : PahoClient("tcp://127.0.0.1:" + std::to_string(port), std::move(client_id), version) {}

PahoClient::PahoClient(std::string uri, std::string client_id, MqttVersion version)
    : uri_(std::move(uri)), client_id_(std::move(client_id)), version_(version) {}

PahoClient::~PahoClient() {
  if (IsConnected()) Disconnect(std::chrono::seconds(1));
  client_.reset();
}

::testing::AssertionResult PahoClient::EnsureClient() {
  if (client_) return ::testing::AssertionSuccess();
  try {
    mqtt::create_options create(PahoVersion(version_));
    // Paho refuses a publish while 100 (its default) are queued to be sent,
    // connected or not; PublishBurst queues more.
    create.set_max_buffered_messages(kMaxBufferedPublishes);
    client_ = std::make_unique<mqtt::async_client>(uri_, client_id_, create, nullptr);
    client_->set_message_callback([this](mqtt::const_message_ptr msg) {
      messages_.Push(
          ReceivedMessage{msg->get_topic(), msg->to_string(), msg->get_qos(), msg->is_retained()});
    });
    client_->set_connection_lost_handler([this](const std::string& cause) {
      OnConnectionLost(cause.empty() ? "connection lost" : cause);
    });
    client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode rc) {
      OnConnectionLost("DISCONNECT from broker, reason code " + std::to_string(rc));
    });
  } catch (const std::exception& e) {
    client_.reset();
    return Failure("create client", e);
  }
  return ::testing::AssertionSuccess();
}

void PahoClient::OnConnectionLost(const std::string& cause) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost_ = true;
    lost_cause_ = cause;
  }
  lost_cv_.notify_all();
}

::testing::AssertionResult PahoClient::Connect(const PahoConnectOptions& options) {
  if (auto created = EnsureClient(); !created) return created;
  try {
    mqtt::connect_options opts;
    opts.set_mqtt_version(PahoVersion(version_));
    // Paho rejects cleansession with v5 and cleanstart with 3.1.1.
    opts.set_clean_session(version_ != MqttVersion::kV5 && options.clean_start);
    opts.set_clean_start(version_ == MqttVersion::kV5 && options.clean_start);
    opts.set_keep_alive_interval(options.keepalive);
    opts.set_connect_timeout(std::max(std::chrono::seconds(1),
                                      std::chrono::ceil<std::chrono::seconds>(options.timeout)));
    if (options.username) opts.set_user_name(*options.username);
    if (options.tls) {
      mqtt::ssl_options ssl;
      ssl.set_trust_store(options.tls->cafile);
      if (!options.tls->certfile.empty()) ssl.set_key_store(options.tls->certfile);
      if (!options.tls->keyfile.empty()) ssl.set_private_key(options.tls->keyfile);
      ssl.set_enable_server_cert_auth(true);
      ssl.set_verify(true);
      opts.set_ssl(ssl);
    }
    if (options.password) opts.set_password(*options.password);
    if (options.will) {
      const ReceivedMessage& w = *options.will;
      opts.set_will(
          mqtt::will_options(w.topic, w.payload.data(), w.payload.size(), w.qos, w.retained));
    }
    if (version_ == MqttVersion::kV5 && options.session_expiry_s) {
      opts.set_properties(mqtt::properties{
          {mqtt::property::SESSION_EXPIRY_INTERVAL, static_cast<int>(*options.session_expiry_s)}});
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      lost_ = false;
      lost_cause_.clear();
    }
    mqtt::token_ptr token = client_->connect(opts);
    if (auto done = Await(token, "connect", options.timeout); !done) return done;
    session_present_ = token->get_connect_response().is_session_present();
  } catch (const std::exception& e) {
    return Failure("connect", e);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PahoClient::Subscribe(const std::string& filter, int qos,
                                                 std::chrono::milliseconds timeout) {
  if (!client_) return ::testing::AssertionFailure() << "not connected";
  try {
    mqtt::token_ptr token = client_->subscribe(filter, qos);
    if (auto done = Await(token, "subscribe " + filter, timeout); !done) return done;
    if (version_ == MqttVersion::kV5) {
      const mqtt::subscribe_response response = token->get_subscribe_response();
      for (mqtt::ReasonCode rc : response.get_reason_codes()) {
        if (rc >= 0x80) {
          return ::testing::AssertionFailure()
                 << "subscribe " << filter << " refused, reason code " << static_cast<int>(rc);
        }
      }
    }
  } catch (const std::exception& e) {
    return Failure("subscribe " + filter, e);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PahoClient::Unsubscribe(const std::string& filter,
                                                   std::chrono::milliseconds timeout) {
  if (!client_) return ::testing::AssertionFailure() << "not connected";
  try {
    return Await(client_->unsubscribe(filter), "unsubscribe " + filter, timeout);
  } catch (const std::exception& e) {
    return Failure("unsubscribe " + filter, e);
  }
}

::testing::AssertionResult PahoClient::Publish(const std::string& topic, const std::string& payload,
                                               int qos, bool retain,
                                               std::chrono::milliseconds timeout) {
  if (!client_) return ::testing::AssertionFailure() << "not connected";
  try {
    return Await(client_->publish(topic, payload.data(), payload.size(), qos, retain),
                 "publish to " + topic, timeout);
  } catch (const std::exception& e) {
    return Failure("publish to " + topic, e);
  }
}

::testing::AssertionResult PahoClient::PublishBurst(const std::string& topic, int count, int qos,
                                                    std::chrono::milliseconds timeout) {
  if (!client_) return ::testing::AssertionFailure() << "not connected";
  try {
    std::vector<mqtt::delivery_token_ptr> tokens;
    tokens.reserve(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      const std::string payload = std::to_string(i);
      tokens.push_back(client_->publish(topic, payload.data(), payload.size(), qos, false));
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (int i = 0; i < count; ++i) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const std::string what =
          "publish " + std::to_string(i) + " of " + std::to_string(count) + " to " + topic;
      if (auto done = Await(tokens[static_cast<size_t>(i)], what,
                            std::max(left, std::chrono::milliseconds(0)));
          !done) {
        return done;
      }
    }
  } catch (const std::exception& e) {
    return Failure("publish burst to " + topic, e);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PahoClient::Disconnect(std::chrono::milliseconds timeout) {
  if (!client_) return ::testing::AssertionFailure() << "not connected";
  try {
    return Await(client_->disconnect(), "disconnect", timeout);
  } catch (const std::exception& e) {
    return Failure("disconnect", e);
  }
}

std::optional<ReceivedMessage> PahoClient::Receive(std::chrono::milliseconds timeout) {
  return messages_.Pop(timeout);
}

bool PahoClient::IsConnected() const {
  try {
    return client_ && client_->is_connected();
  } catch (const std::exception&) {
    return false;
  }
}

::testing::AssertionResult PahoClient::WaitConnectionLost(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (lost_cv_.wait_for(lock, timeout, [this] { return lost_; })) {
    return ::testing::AssertionSuccess() << lost_cause_;
  }
  return ::testing::AssertionFailure()
         << client_id_ << " still connected after " << timeout.count() << " ms";
}

}  // namespace ferry::testing
