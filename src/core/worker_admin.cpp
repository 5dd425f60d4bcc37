#include "core/worker_admin.h"

#include <algorithm>
#include <ctime>
#include <set>

#include "core/broker_internal.h"
#include "core/log.h"
#include "core/topic.h"

namespace ferry::core {

namespace {

const char* ProtocolName(ProtocolVersion v) {
  switch (v) {
    case ProtocolVersion::kV31:
      return "3.1";
    case ProtocolVersion::kV311:
      return "3.1.1";
    case ProtocolVersion::kV5:
      return "5.0";
  }
  return "?";
}

Json OrNull(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

Json ClientRow(const Session& s) {
  const Connection* c = s.connection();
  Json r;
  r["client_id"] = s.client_id_;
  r["username"] = OrNull(s.username_);
  r["connected"] = c != nullptr;
  r["peer"] = c ? Json(c->peer()) : Json(nullptr);
  r["listener"] = c ? Json(c->listener()) : Json(nullptr);
  r["protocol"] = c ? Json(ProtocolName(c->version_)) : Json(nullptr);
  r["keepalive_s"] = c ? Json(c->keepalive_s_) : Json(nullptr);
  r["clean_start"] = c ? Json(c->clean_start_) : Json(nullptr);
  r["persistent"] = s.persistent_;
  // 4294967295 is "never expires" (a 3.1.1 persistent session).
  r["session_expiry_s"] = s.expiry_interval_s_;
  r["subscriptions"] = s.subscriptions_.size();
  r["inflight"] = s.InflightCount();
  r["queued"] = s.queue_.size();
  r["disconnected_at"] = s.disconnected_at_ms_ != 0 ? Json(IsoTime(s.disconnected_at_ms_))
                                                    : Json(nullptr);
  return r;
}

Json SubscriptionRow(const std::string& client_id, const std::string& filter,
                     const SubscriptionOptions& o) {
  return Json{{"client_id", client_id},
              {"filter", filter},
              {"qos", o.qos},
              {"no_local", o.no_local},
              {"retain_as_published", o.retain_as_published},
              {"retain_handling", o.retain_handling},
              {"subscription_id", o.subscription_id}};
}

// The session of `client_id` on this node, if it is its client's: not one
// handing itself over to another node (session_transfer.cpp), which is shown
// and acted on where it goes.
Session* FindHere(Worker& w, std::string_view client_id) {
  Session* s = w.FindSession(client_id);
  return s != nullptr && !s->MovingAway() ? s : nullptr;
}

// Up to `max` sessions of `w` that `keep` accepts, in client-id order,
// starting after `after` (or at it, if `include_after`). *exhausted: the
// walk reached the last session.
template <typename Keep>
std::vector<Session*> NextSessions(Worker& w, const std::set<std::string_view>& ids,
                                   std::string_view after, bool include_after, size_t max,
                                   Keep keep, bool* exhausted) {
  std::vector<Session*> picked;
  auto it = include_after ? ids.lower_bound(after) : ids.upper_bound(after);
  for (; it != ids.end() && picked.size() < max; ++it) {
    Session* s = FindHere(w, *it);
    if (s != nullptr && keep(*s)) picked.push_back(s);
  }
  *exhausted = it == ids.end();
  return picked;
}

}  // namespace

std::string IsoTime(uint64_t unix_ms) {
  if (unix_ms == 0) return "";
  time_t t = static_cast<time_t>(unix_ms / 1000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

Json WorkerAdmin::ClientRows(Worker& w, Cursor& cursor, size_t max, const ClientFilter& filter,
                             bool* exhausted) {
  FERRY_DCHECK(w.loop().IsLoopThread());
  auto keep = [&](const Session& s) {
    if (filter.connected_only && s.connection() == nullptr) return false;
    if (filter.username && s.username_ != filter.username) return false;
    return true;
  };
  Json rows = Json::array();
  for (Session* s :
       NextSessions(w, w.session_ids_, cursor.client_id, false, max, keep, exhausted)) {
    rows.push_back(ClientRow(*s));
    cursor.client_id = s->client_id_;
  }
  return rows;
}

Result<Json> WorkerAdmin::ClientDetail(Worker& w, const std::string& client_id) {
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  Json r = ClientRow(*s);
  const Connection* c = s->connection();
  r["will"] = c != nullptr && c->will_ != nullptr;
  r["pending_will"] = s->pending_will_ != nullptr;
  Json subs = Json::array();
  for (const auto& [filter, o] : s->subscriptions_) subs.push_back(SubscriptionRow(client_id, filter, o));
  r["subscription_list"] = std::move(subs);
  return r;
}

Status WorkerAdmin::Kick(Worker& w, const std::string& client_id) {
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  Connection* c = s->connection();
  if (c == nullptr) {
    return Status::NotFound("client '" + client_id +
                            "' is not connected: nothing was done; its session is kept offline "
                            "(to discard it: clients kick " + client_id + " --session)");
  }
  FERRY_INFO("%s: kicked by an administrator", c->Describe().c_str());
  w.DisconnectClient(*c, ReasonCode::kAdministrativeAction, "kicked by an administrator");
  return Status::Ok();
}

Result<bool> WorkerAdmin::DiscardSession(Worker& w, const std::string& client_id) {
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  const bool connected = s->connection() != nullptr;
  if (connected) {
    if (Status st = Kick(w, client_id); !st.ok()) return st;
    s = w.FindSession(client_id);  // a session without expiry ended with its connection
    if (s == nullptr) return connected;
  }
  FERRY_INFO("session '%s' discarded by an administrator", client_id.c_str());
  // The session ends now, so a will waiting out its delay goes now
  // [MQTT-3.1.3-9], as when the session expires.
  if (s->pending_will_) w.PublishWill(*s->pending_will_, s->client_id_);
  w.DropSession(*s);
  return connected;
}

Json WorkerAdmin::SubscriptionRows(Worker& w, Cursor& cursor, size_t max, bool* exhausted) {
  FERRY_DCHECK(w.loop().IsLoopThread());
  // Every session picked yields a row, so each call makes progress: the
  // cursor's own client only if it has filters left after cursor.filter.
  auto keep = [&](const Session& s) {
    if (s.subscriptions_.empty()) return false;
    if (s.client_id_ == cursor.client_id) {
      return s.subscriptions_.upper_bound(cursor.filter) != s.subscriptions_.end();
    }
    return true;
  };
  bool walked_all = false;
  std::vector<Session*> sessions = NextSessions(w, w.session_ids_, cursor.client_id,
                                                !cursor.filter.empty(), max, keep, &walked_all);
  Json rows = Json::array();
  bool full = false;
  for (Session* s : sessions) {
    auto it = s->client_id_ == cursor.client_id ? s->subscriptions_.upper_bound(cursor.filter)
                                                : s->subscriptions_.begin();
    for (; it != s->subscriptions_.end(); ++it) {
      if (rows.size() >= max) {
        full = true;
        break;
      }
      rows.push_back(SubscriptionRow(s->client_id_, it->first, it->second));
      cursor.client_id = s->client_id_;
      cursor.filter = it->first;
    }
    if (full) break;
  }
  *exhausted = walked_all && !full;
  return rows;
}

Result<Json> WorkerAdmin::SubscriptionsOf(Worker& w, const std::string& client_id) {
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  Json subs = Json::array();
  for (const auto& [filter, o] : s->subscriptions_) subs.push_back(SubscriptionRow(client_id, filter, o));
  return Json{{"client_id", client_id}, {"subscriptions", std::move(subs)}};
}

Result<Json> WorkerAdmin::AddSubscription(Worker& w, const std::string& client_id,
                                          const std::string& filter, uint8_t qos) {
  const BrokerOptions& opt = w.ctx().options;
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  auto shared = ParseSharedFilter(filter);
  if (!shared.ok()) return Status::InvalidArgument("bad topic filter '" + filter + "': " + shared.status().message());
  std::string_view plain = shared.value() ? std::string_view(shared.value()->filter) : filter;
  if (Status st = ValidateTopicFilter(plain); !st.ok()) {
    return Status::InvalidArgument("bad topic filter '" + filter + "': " + st.message());
  }
  if (shared.value() && !opt.shared_subscription_available) {
    return Status::InvalidArgument("shared subscriptions are turned off ([mqtt] shared_subscription_available)");
  }
  if (!opt.wildcard_subscription_available && HasWildcard(plain)) {
    return Status::InvalidArgument("wildcard subscriptions are turned off ([mqtt] wildcard_subscription_available)");
  }
  SubscriptionOptions o;
  o.qos = std::min(qos, opt.max_qos);
  o.worker = w.index();
  bool is_new = w.AddSubscription(*s, filter, o);
  FERRY_INFO("client '%s': subscribed to '%s' (QoS %u) by an administrator", client_id.c_str(),
             filter.c_str(), o.qos);
  // Like a SUBSCRIBE with retain handling 0: retained messages follow,
  // except for a shared subscription (MQTT 5.0 section 4.8.2).
  if (!shared.value() && opt.retain_available) w.SendRetained(*s, filter, o);
  return Json{{"client_id", client_id}, {"filter", filter}, {"qos", o.qos}, {"new", is_new}};
}

Status WorkerAdmin::DeleteSubscription(Worker& w, const std::string& client_id,
                                       const std::string& filter) {
  Session* s = FindHere(w, client_id);
  if (s == nullptr) return Status::NotFound("no client '" + client_id + "'");
  if (!w.RemoveSubscription(*s, filter)) {
    return Status::NotFound("client '" + client_id + "' has no subscription '" + filter + "'");
  }
  FERRY_INFO("client '%s': unsubscribed from '%s' by an administrator", client_id.c_str(),
             filter.c_str());
  return Status::Ok();
}

}  // namespace ferry::core
