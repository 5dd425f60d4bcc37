// Status, Result<T> and MQTT reason codes.
//
// A Status is free when OK (no allocation) and otherwise carries a category, an
// MQTT v5 reason code and a message. On the MQTT path the reason code is the
// error: the decoder sets 0x81 Malformed Packet, the session logic 0x82
// Protocol Error, and the same value goes out in the CONNACK or DISCONNECT.
// Any thread may use these types; they hold no shared state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <optional>

namespace ferry {

// MQTT v5 reason codes (MQTT 5.0 section 2.4). v3.1.1 return codes are mapped
// from these where a packet is sent to a v3 client.
enum class ReasonCode : uint8_t {
  kSuccess = 0x00,
  kGrantedQos1 = 0x01,
  kGrantedQos2 = 0x02,
  kDisconnectWithWill = 0x04,
  kNoMatchingSubscribers = 0x10,
  kNoSubscriptionExisted = 0x11,
  kContinueAuthentication = 0x18,
  kReauthenticate = 0x19,
  kUnspecifiedError = 0x80,
  kMalformedPacket = 0x81,
  kProtocolError = 0x82,
  kImplementationSpecificError = 0x83,
  kUnsupportedProtocolVersion = 0x84,
  kClientIdentifierNotValid = 0x85,
  kBadUserNameOrPassword = 0x86,
  kNotAuthorized = 0x87,
  kServerUnavailable = 0x88,
  kServerBusy = 0x89,
  kBanned = 0x8A,
  kServerShuttingDown = 0x8B,
  kBadAuthenticationMethod = 0x8C,
  kKeepAliveTimeout = 0x8D,
  kSessionTakenOver = 0x8E,
  kTopicFilterInvalid = 0x8F,
  kTopicNameInvalid = 0x90,
  kPacketIdentifierInUse = 0x91,
  kPacketIdentifierNotFound = 0x92,
  kReceiveMaximumExceeded = 0x93,
  kTopicAliasInvalid = 0x94,
  kPacketTooLarge = 0x95,
  kMessageRateTooHigh = 0x96,
  kQuotaExceeded = 0x97,
  kAdministrativeAction = 0x98,
  kPayloadFormatInvalid = 0x99,
  kRetainNotSupported = 0x9A,
  kQosNotSupported = 0x9B,
  kUseAnotherServer = 0x9C,
  kServerMoved = 0x9D,
  kSharedSubscriptionsNotSupported = 0x9E,
  kConnectionRateExceeded = 0x9F,
  kMaximumConnectTime = 0xA0,
  kSubscriptionIdentifiersNotSupported = 0xA1,
  kWildcardSubscriptionsNotSupported = 0xA2,
};

// Short human name of a reason code, e.g. "malformed packet".
const char* ReasonCodeName(ReasonCode code);

class Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kProtocol,      // a peer broke the MQTT protocol; reason() says how
    kInvalidArgument,
    kNotFound,
    kIoError,
    kCorruption,
    kBusy,
    kUnavailable,
  };

  Status() = default;
  Status(const Status& other) { *this = other; }
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status Protocol(ReasonCode reason, std::string_view msg) {
    return Status(Code::kProtocol, reason, msg);
  }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, ReasonCode::kUnspecifiedError, msg);
  }
  static Status NotFound(std::string_view msg) {
    return Status(Code::kNotFound, ReasonCode::kUnspecifiedError, msg);
  }
  static Status IoError(std::string_view msg) {
    return Status(Code::kIoError, ReasonCode::kUnspecifiedError, msg);
  }
  // An I/O error because the disk (or a quota, or a size limit) is full. Its
  // reason is kQuotaExceeded, what a v5 publisher is answered with.
  static Status NoSpace(std::string_view msg) {
    return Status(Code::kIoError, ReasonCode::kQuotaExceeded, msg);
  }
  static Status Corruption(std::string_view msg) {
    return Status(Code::kCorruption, ReasonCode::kUnspecifiedError, msg);
  }
  static Status Busy(std::string_view msg) {
    return Status(Code::kBusy, ReasonCode::kServerBusy, msg);
  }
  static Status Unavailable(std::string_view msg) {
    return Status(Code::kUnavailable, ReasonCode::kServerUnavailable, msg);
  }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  // The MQTT reason code; kSuccess when ok().
  ReasonCode reason() const { return rep_ ? rep_->reason : ReasonCode::kSuccess; }
  const std::string& message() const;
  std::string ToString() const;

 private:
  struct Rep {
    Code code;
    ReasonCode reason;
    std::string message;
  };
  Status(Code code, ReasonCode reason, std::string_view msg)
      : rep_(std::make_unique<Rep>(Rep{code, reason, std::string(msg)})) {}
  std::unique_ptr<Rep> rep_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // REQUIRES: !status.ok().
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  // Builds the value in place, e.g. Result<Packet>(std::in_place,
  // std::in_place_type<Publish>), so that a large T is not moved.
  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args)
      : value_(std::in_place, std::forward<Args>(args)...) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ferry
