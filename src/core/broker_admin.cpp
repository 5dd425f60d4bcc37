// The node's own admin commands (Broker::RegisterAdminCommands) and its
// Prometheus metrics. Commands that concern clients run on the worker that
// owns the client (Hash(client id) % workers) and answer from there; listings
// walk the workers one page at a time (core/worker_admin.h).
#include <algorithm>
#include <cctype>

#include "core/admin.h"
#include "core/base64.h"
#include "core/broker.h"
#include "core/broker_internal.h"
#include "core/log.h"
#include "core/topic.h"
#include "core/version.h"
#include "core/worker_admin.h"

// Commands are written with designated initializers, leaving out the fields
// they do not need; g++ 12 warns about exactly that (GCC bug 96868).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ferry::core {

namespace {

constexpr uint64_t kNoLimit = UINT64_MAX;

// Pages through every worker in turn. `page` runs on the worker's loop and
// returns up to `max` rows after the cursor, setting *exhausted when that
// worker has no more. A page that one worker cannot fill goes on to the
// next, so a short listing arrives as one page (and one table). Stops after
// `limit` rows.
using WorkerPageFn =
    std::function<Json(Worker&, WorkerAdmin::Cursor&, size_t max, bool* exhausted)>;

struct WorkerListing {
  BrokerContext& ctx;
  WorkerPageFn page;
  size_t worker = 0;
  WorkerAdmin::Cursor cursor;
  uint64_t remaining;

  // Fills `p` up to `max` rows from the current worker onwards, then
  // answers. Runs on the current worker's loop.
  static void Fill(std::shared_ptr<WorkerListing> self, size_t max, AdminPage p,
                   AdminPageDone done) {
    if (self->worker >= self->ctx.workers.size() || p.rows.size() >= max) {
      p.last = self->worker >= self->ctx.workers.size() || self->remaining == 0;
      return done(std::move(p));
    }
    Worker& w = *self->ctx.workers[self->worker];
    w.loop().Post([self, &w, max, p = std::move(p), done = std::move(done)]() mutable {
      bool exhausted = false;
      Json rows = self->page(w, self->cursor, max - p.rows.size(), &exhausted);
      self->remaining -= rows.size();
      for (Json& row : rows) p.rows.push_back(std::move(row));
      if (exhausted) {
        ++self->worker;
        self->cursor = {};
      }
      if (self->remaining == 0) self->worker = self->ctx.workers.size();
      Fill(self, max, std::move(p), std::move(done));
    });
  }
};

AdminPageSource AcrossWorkers(BrokerContext& ctx, uint64_t limit, WorkerPageFn page) {
  auto listing = std::make_shared<WorkerListing>(WorkerListing{ctx, std::move(page), 0, {}, limit});
  return [listing](size_t max_rows, AdminPageDone done) {
    size_t max = static_cast<size_t>(std::min<uint64_t>(max_rows, listing->remaining));
    if (max == 0) listing->worker = listing->ctx.workers.size();
    WorkerListing::Fill(listing, max, AdminPage{}, std::move(done));
  };
}

// One page holding every row of `rows`.
AdminPageSource OnePage(Json rows) {
  return [rows = std::move(rows)](size_t, AdminPageDone done) {
    AdminPage p;
    p.rows = rows;
    done(std::move(p));
  };
}

// Runs `fn` on the worker that owns `client_id` and answers with its result.
void OnOwner(BrokerContext& ctx, const std::string& client_id, AdminDone done,
             std::function<AdminResult(Worker&)> fn) {
  Worker& w = *ctx.workers[ctx.OwnerOf(client_id)];
  w.loop().Post([&w, done = std::move(done), fn = std::move(fn)] { done(fn(w)); });
}

// ---- the other nodes' clients (RemoteClientDirectory)

// Asks nodes[i..] one at a time to run `words`, and answers with the first
// value; `missing` (what this node said) if none has it. Any thread.
void AskNodes(std::shared_ptr<RemoteClientDirectory> dir, std::vector<std::string> nodes,
              size_t i, std::vector<std::string> words, Status missing,
              std::function<void(Result<Json>)> done) {
  if (i >= nodes.size()) return done(missing);
  const std::string node = nodes[i];
  dir->Call(node, words,
            [dir, nodes = std::move(nodes), i, words, missing = std::move(missing),
             done = std::move(done), node](Result<std::string> r) mutable {
              if (r.ok()) {
                Json j = Json::parse(r.value(), nullptr, false);
                if (!j.is_discarded()) return done(std::move(j));
              } else if (r.status().code() != Status::Code::kNotFound) {
                // Not known there because the node did not answer: say so.
                missing = Status::NotFound(missing.message() + " (" + node + ": " +
                                           r.status().message() + ")");
              }
              AskNodes(std::move(dir), std::move(nodes), i + 1, std::move(words),
                       std::move(missing), std::move(done));
            });
}

// Runs `fn` for client `id` here; if this node has no such client, and the
// command was not given --local, the same command on the other nodes.
void HereOrElsewhere(BrokerContext& ctx, const AdminRequest& req, const std::string& id,
                     std::vector<std::string> words, AdminDone done,
                     std::function<AdminResult(Worker&)> fn,
                     std::function<AdminResult(Json)> remote) {
  std::shared_ptr<RemoteClientDirectory> dir = req.HasOption("local") ? nullptr : ctx.RemoteClients();
  if (!dir) return OnOwner(ctx, id, std::move(done), std::move(fn));
  words.push_back("--local");
  OnOwner(ctx, id,
          [dir, words = std::move(words), done, remote = std::move(remote)](AdminResult r) mutable {
            if (r.ok() || r.status().code() != Status::Code::kNotFound) return done(std::move(r));
            AskNodes(dir, dir->Nodes(), 0, std::move(words),
                     Status::NotFound(r.status().message() + " on any node"),
                     [done, remote = std::move(remote)](Result<Json> j) {
                       done(j.ok() ? remote(std::move(j).value()) : AdminResult::Error(j.status()));
                     });
          },
          std::move(fn));
}

// After this node's listing `local`, each other node's `words`, one page
// at a time, each row tagged with its node; `limit` rows in all.
AdminPageSource AcrossNodes(std::string self, AdminPageSource local,
                            std::shared_ptr<RemoteClientDirectory> dir,
                            std::vector<std::string> words, uint64_t limit) {
  struct State {
    std::string self;
    AdminPageSource local;
    uint64_t remaining = 0;
    bool local_done = false;
    std::shared_ptr<RemoteClientDirectory> dir;
    std::vector<std::string> words;
    std::vector<std::string> nodes;
    size_t node = 0;
    uint64_t cursor = 0;
  };
  auto st = std::make_shared<State>();
  st->self = std::move(self);
  st->local = std::move(local);
  st->dir = std::move(dir);
  st->words = std::move(words);
  st->nodes = st->dir->Nodes();
  st->remaining = limit;
  return [st](size_t max_rows, AdminPageDone done) {
    if (!st->local_done) {
      return st->local(max_rows, [st, done](Result<AdminPage> p) {
        if (!p.ok()) return done(p.status());
        for (Json& row : p.value().rows) row["node"] = st->self;
        st->remaining -= std::min<uint64_t>(st->remaining, p.value().rows.size());
        if (p.value().last || st->remaining == 0) {
          st->local_done = true;
          p.value().last = st->nodes.empty() || st->remaining == 0;
        }
        done(std::move(p));
      });
    }
    const std::string node = st->nodes[st->node];
    max_rows = static_cast<size_t>(std::min<uint64_t>(max_rows, st->remaining));
    st->dir->List(node, st->words, st->cursor, max_rows,
                  [st, done, node](Result<RemoteClientDirectory::Page> r) {
                    AdminPage page;
                    if (r.ok()) {
                      Json rows = Json::parse(r.value().rows, nullptr, false);
                      if (rows.is_array()) {
                        for (Json& row : rows) {
                          if (st->remaining == 0) break;
                          row["node"] = node;
                          page.rows.push_back(std::move(row));
                          --st->remaining;
                        }
                      }
                      st->cursor = r.value().next;
                    } else {
                      // A node that does not answer is passed over, and says so.
                      page.rows.push_back(
                          Json{{"client_id", nullptr}, {"node", node},
                               {"error", r.status().message()}});
                      st->cursor = 0;
                    }
                    if (st->cursor == 0) ++st->node;
                    page.last = st->node >= st->nodes.size() || st->remaining == 0;
                    done(std::move(page));
                  });
  };
}

AdminResult FromJson(Result<Json> r) {
  return r.ok() ? AdminResult::Value(std::move(r).value()) : AdminResult::Error(r.status());
}

std::string Duration(uint64_t s) {
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d ";
  if (s >= 3600) out += std::to_string(s / 3600 % 24) + "h ";
  if (s >= 60) out += std::to_string(s / 60 % 60) + "m ";
  return out + std::to_string(s % 60) + "s";
}

Json Gauge(uint64_t count, uint64_t max) { return Json{{"count", count}, {"max", max}}; }

// Messages dropped, by the reason `broker metrics` and /metrics name.
std::vector<std::pair<const char*, uint64_t>> DropsByReason(const Metrics& m) {
  return {{"queue_full", m.dropped_queue_full.load()},
          {"slow_client", m.dropped_slow_client.load()},
          {"queue_wait", m.dropped_queue_wait.load()},
          {"expired", m.dropped_expired.load()},
          {"too_large", m.dropped_too_large.load()},
          {"not_authorized", m.dropped_not_authorized.load()},
          {"no_subscribers", m.dropped_no_subscribers.load()},
          {"loop", m.dropped_loop.load()}};
}

// Bytes of incomplete packets held by every worker's connections now.
uint64_t PartialPacketBytes(const BrokerContext& ctx) {
  uint64_t sum = 0;
  for (const auto& w : ctx.workers) sum += w->partial_bytes();
  return sum;
}

// A route of another node as `routes list` and `routes show` print it; a
// plain route's subscribers there are not known here (null).
Json RemoteRouteJson(const RemoteRouteDirectory::Row& r) {
  Json subscribers = nullptr;
  if (r.shared_members > 0) subscribers = r.shared_members;
  return Json{{"topic", r.filter}, {"node", r.node}, {"subscribers", std::move(subscribers)}};
}

// Where `routes list` stands: this node's routes first, then the others'.
struct RoutesCursor {
  std::string after;
  uint64_t remaining = 0;
  bool remote = false;  // this node's routes are listed; the others' follow
  std::string after_node;
};

// The next page of other nodes' routes after the cursor, which moves on.
void RemoteRoutesPage(BrokerContext& ctx, std::shared_ptr<RoutesCursor> cursor, size_t max,
                      AdminPageDone done) {
  ctx.remote_routes->List(
      cursor->after, cursor->after_node, max,
      [cursor, max, done = std::move(done)](std::vector<RemoteRouteDirectory::Row> rows) {
        AdminPage p;
        for (const auto& r : rows) p.rows.push_back(RemoteRouteJson(r));
        if (!rows.empty()) {
          cursor->after = rows.back().filter;
          cursor->after_node = rows.back().node;
        }
        cursor->remaining -= rows.size();
        p.last = rows.size() < max || cursor->remaining == 0;
        done(std::move(p));
      });
}

// A retained message's payload as text when it is UTF-8, else base64.
Json Payload(const std::string& payload) {
  if (IsValidMqttUtf8(payload)) return Json{{"payload", payload}, {"encoding", "utf-8"}};
  return Json{{"payload", Base64Encode(payload)}, {"encoding", "base64"}};
}

Json RetainedRow(const Message& m) {
  return Json{{"topic", m.topic},
              {"qos", m.qos},
              {"size", m.payload.size()},
              {"received_at", IsoTime(m.received_at_ms)},
              {"expires_at", m.expiry_at_ms != 0 ? Json(IsoTime(m.expiry_at_ms)) : Json(nullptr)}};
}

Result<uint8_t> ParseQos(const std::string& text) {
  if (text == "0" || text == "1" || text == "2") return static_cast<uint8_t>(text[0] - '0');
  return Status::InvalidArgument("QOS must be 0, 1 or 2, got '" + text + "'");
}

// Whether listener `l` can refuse a connection for `why`: a series that
// must stay 0 is left out of /metrics.
bool CanRefuse(const ListenerStatus& l, Refusal why) {
  switch (why) {
    case Refusal::kMaxConnections:
    case Refusal::kFdLimit:
      return true;
    case Refusal::kProxyHeader:
      return l.proxy_protocol;
    case Refusal::kTlsHandshake:
      return l.type == "ssl" || l.type == "wss";
    case Refusal::kWebSocketUpgrade:
      return l.type == "ws" || l.type == "wss";
  }
  return false;
}

Status CheckFilter(const std::string& filter) {
  if (Status st = ValidateTopicFilter(filter); !st.ok()) {
    return Status::InvalidArgument("bad topic filter '" + filter + "': " + st.message());
  }
  return Status::Ok();
}

}  // namespace

Status Broker::RegisterAdminCommands(AdminRegistry& registry) {
  BrokerContext& ctx = *ctx_;
  std::vector<AdminCommand> commands;
  auto add = [&](AdminCommand c) { commands.push_back(std::move(c)); };
  const AdminOption limit{"limit", "N", "list at most N rows"};

  add({.path = "status",
       .summary = "whether the node is running, and its version",
       .handler = [this](const AdminRequest&, AdminDone done) {
         const std::string& node = node_name();
         std::string text = "Node '" + node + "' is started\nferry " FERRY_VERSION " is running\n";
         std::string why;
         const bool accepting = AcceptingConnections(&why);
         Json status{{"node", node},
                     {"status", "started"},
                     {"version", FERRY_VERSION},
                     {"accepting_connections", accepting}};
         if (!accepting) {
           status["reason"] = why;
           text += "not accepting MQTT connections: " + why + "\n";
         }
         std::string store_why;
         status["store_writable"] = StoreWritable(&store_why);
         if (!store_why.empty()) {
           status["store_error"] = store_why;
           text += store_why + "\n";
         }
         done(AdminResult::Value(std::move(status), std::move(text)));
       }});

  add({.path = "broker",
       .summary = "version, uptime, node name and workers",
       .handler = [&ctx](const AdminRequest&, AdminDone done) {
         uint64_t up = (UnixNowMs() - ctx.started_unix_ms) / 1000;
         done(AdminResult::Value(Json{{"node", ctx.options.node_name},
                                      {"version", FERRY_VERSION},
                                      {"sysdescr", "ferry MQTT broker"},
                                      {"started_at", IsoTime(ctx.started_unix_ms)},
                                      {"uptime", Duration(up)},
                                      {"uptime_s", up},
                                      {"workers", ctx.workers.size()}}));
       }});

  add({.path = "broker stats",
       .summary = "connections, sessions, subscriptions, routes, retained: count and max",
       .help = "max is the high-water mark since the node started.",
       .handler = [&ctx](const AdminRequest&, AdminDone done) {
         const Metrics& m = ctx.metrics;
         const Router& r = ctx.router;
         done(AdminResult::Value(Json{
             {"connections", Gauge(m.clients_connected.load(), m.clients_connected_max.load())},
             {"sessions", Gauge(m.sessions.load(), m.sessions_max.load())},
             {"subscriptions", Gauge(r.subscription_count(), r.subscription_count_max())},
             {"routes", Gauge(r.route_count(), r.route_count_max())},
             {"retained", Gauge(r.retained_count(), r.retained_count_max())},
             // What the limits on one client's share of the node refused.
             {"slow_subscribers",
              {{"messages_dropped", m.dropped_queue_wait.load()},
               {"disconnected", m.slow_subscribers_disconnected.load()}}},
             {"partial_packets",
              {{"bytes", PartialPacketBytes(ctx)}, {"refused", m.partial_packet_refusals.load()}}},
             {"subscriptions_refused", m.subscriptions_refused.load()}}));
       }});

  add({.path = "broker metrics",
       .summary = "messages and bytes in and out, drops by reason, counts per QoS",
       .handler = [&ctx](const AdminRequest&, AdminDone done) {
         const Metrics& m = ctx.metrics;
         Json messages{{"received", m.publish_received.load()},
                       {"sent", m.publish_sent.load()},
                       {"dropped", m.dropped_total()}};
         for (int q = 0; q < 3; ++q) {
           messages["received_qos" + std::to_string(q)] = m.publish_received_qos[q].load();
         }
         for (int q = 0; q < 3; ++q) {
           messages["sent_qos" + std::to_string(q)] = m.publish_sent_qos[q].load();
         }
         Json dropped = Json::object();
         for (const auto& [reason, v] : DropsByReason(m)) dropped[reason] = v;
         done(AdminResult::Value(Json{
             {"messages", std::move(messages)},
             {"dropped", std::move(dropped)},
             {"bytes", {{"received", m.bytes_received.load()}, {"sent", m.bytes_sent.load()}}},
             {"packets",
              {{"received", m.messages_received.load()}, {"sent", m.messages_sent.load()}}},
             {"connections", {{"accepted", m.connections_total.load()}}},
             {"protocol_errors", m.protocol_errors.load()}}));
       }});

  const AdminOption local_only{"local", "", "this node only, not the other nodes of its cluster"};
  add({.path = "clients list",
       .options = {limit,
                   {"username", "U", "only clients that logged in as U"},
                   {"connected", "", "only clients connected now (not offline sessions)"},
                   {"cluster", "", "every node's clients, this node's first (column NODE)"}},
       .summary = "clients and their sessions, connected or not",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         auto n = req.UintOption("limit", kNoLimit, kNoLimit);
         if (!n.ok()) return done(AdminResult::Error(n.status()));
         WorkerAdmin::ClientFilter filter;
         filter.username = req.Option("username");
         filter.connected_only = req.HasOption("connected");
         std::vector<AdminColumn> columns = {{"client_id", "CLIENT ID"},
                                             {"username", "USERNAME"},
                                             {"connected", "CONNECTED"},
                                             {"peer", "PEER"},
                                             {"listener", "LISTENER"},
                                             {"protocol", "PROTOCOL"},
                                             {"subscriptions", "SUBS"},
                                             {"queued", "QUEUED"}};
         AdminPageSource local =
             AcrossWorkers(ctx, n.value(),
                           [filter](Worker& w, WorkerAdmin::Cursor& c, size_t max, bool* ex) {
                             return WorkerAdmin::ClientRows(w, c, max, filter, ex);
                           });
         std::shared_ptr<RemoteClientDirectory> dir = ctx.RemoteClients();
         if (!req.HasOption("cluster") || !dir) {
           return done(AdminResult::List(std::move(columns), std::move(local)));
         }
         // The same listing on each other node, with the same filters.
         std::vector<std::string> words = {"clients", "list"};
         if (filter.username) words.insert(words.end(), {"--username", *filter.username});
         if (filter.connected_only) words.push_back("--connected");
         columns.insert(columns.begin() + 1, AdminColumn{"node", "NODE"});
         done(AdminResult::List(std::move(columns),
                                AcrossNodes(ctx.options.node_name, std::move(local), std::move(dir),
                                            std::move(words), n.value())));
       }});

  add({.path = "clients show",
       .args = "ID",
       .options = {local_only},
       .summary = "one client in detail, with its subscriptions and the node it is on",
       .help = "A client that is not on this node is looked for on the other nodes of its "
               "cluster.",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         std::string id = req.Arg("ID");
         const std::string node = ctx.options.node_name;
         HereOrElsewhere(
             ctx, req, id, {"clients", "show", id}, std::move(done),
             [id, node](Worker& w) {
               Result<Json> r = WorkerAdmin::ClientDetail(w, id);
               if (r.ok()) r.value()["node"] = node;
               return FromJson(std::move(r));
             },
             [](Json j) { return AdminResult::Value(std::move(j)); });
       }});

  add({.path = "clients kick",
       .args = "ID",
       .options = {{"session", "",
                    "also discard the session (subscriptions, queued messages), connected or "
                    "offline"},
                   local_only},
       .summary = "disconnect a client (v5 clients get DISCONNECT 0x98, administrative action)",
       .help = "Without --session a persistent session stays for the client to resume, and a "
               "client that is not connected is an error (exit status 4): nothing is done. "
               "With --session the session ends too, whether the client is connected or not.",
       .access = AdminAccess::kWrite,
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         std::string id = req.Arg("ID");
         const std::string node = ctx.options.node_name;
         const bool session = req.HasOption("session");
         // The answer names the node, in its text too.
         auto result = [](Json j) {
           const std::string id = j.value("client_id", "");
           const std::string on = " on " + j.value("node", "");
           std::string text;
           if (!j.value("session_discarded", false)) {
             text = "Client '" + id + "' kicked" + on + "\n";
           } else if (j.value("kicked", false)) {
             text = "Client '" + id + "' kicked" + on + ", its session discarded\n";
           } else {
             text = "Session of client '" + id + "' (offline) discarded" + on + "\n";
           }
           return AdminResult::Value(std::move(j), std::move(text));
         };
         std::vector<std::string> words = {"clients", "kick", id};
         if (session) words.push_back("--session");
         HereOrElsewhere(
             ctx, req, id, std::move(words), std::move(done),
             [id, node, session, result](Worker& w) {
               if (session) {
                 Result<bool> connected = WorkerAdmin::DiscardSession(w, id);
                 if (!connected.ok()) return AdminResult::Error(connected.status());
                 return result(Json{{"client_id", id},
                                    {"kicked", connected.value()},
                                    {"session_discarded", true},
                                    {"node", node}});
               }
               Status st = WorkerAdmin::Kick(w, id);
               if (!st.ok()) return AdminResult::Error(st);
               return result(Json{{"client_id", id}, {"kicked", true}, {"node", node}});
             },
             result);
       }});

  add({.path = "subscriptions list",
       .options = {limit},
       .summary = "every subscription of every session",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         auto n = req.UintOption("limit", kNoLimit, kNoLimit);
         if (!n.ok()) return done(AdminResult::Error(n.status()));
         done(AdminResult::List(
             {{"client_id", "CLIENT ID"}, {"filter", "TOPIC FILTER"}, {"qos", "QOS"}},
             AcrossWorkers(ctx, n.value(), &WorkerAdmin::SubscriptionRows)));
       }});

  add({.path = "subscriptions show",
       .args = "ID",
       .summary = "the subscriptions of one client",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         std::string id = req.Arg("ID");
         OnOwner(ctx, id, std::move(done),
                 [id](Worker& w) { return FromJson(WorkerAdmin::SubscriptionsOf(w, id)); });
       }});

  add({.path = "subscriptions add",
       .args = "ID FILTER QOS",
       .summary = "subscribe a client's session to FILTER, as its own SUBSCRIBE would",
       .help = "The subscription is kept with the session (on disk if the session is persistent)\n"
               "and retained messages matching FILTER are sent to the client.",
       .access = AdminAccess::kWrite,
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         auto qos = ParseQos(req.Arg("QOS"));
         if (!qos.ok()) return done(AdminResult::Error(qos.status()));
         std::string id = req.Arg("ID"), filter = req.Arg("FILTER");
         OnOwner(ctx, id, std::move(done), [id, filter, q = qos.value()](Worker& w) {
           return FromJson(WorkerAdmin::AddSubscription(w, id, filter, q));
         });
       }});

  add({.path = "subscriptions del",
       .args = "ID FILTER",
       .summary = "remove one subscription of a client's session",
       .access = AdminAccess::kWrite,
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         std::string id = req.Arg("ID"), filter = req.Arg("FILTER");
         OnOwner(ctx, id, std::move(done), [id, filter](Worker& w) {
           Status st = WorkerAdmin::DeleteSubscription(w, id, filter);
           if (!st.ok()) return AdminResult::Error(st);
           return AdminResult::Value(Json{{"client_id", id}, {"filter", filter}, {"deleted", true}});
         });
       }});

  add({.path = "routes list",
       .options = {limit},
       .summary = "topic filters with subscribers on this node, then those of the other "
                  "nodes of its cluster",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         auto n = req.UintOption("limit", kNoLimit, kNoLimit);
         if (!n.ok()) return done(AdminResult::Error(n.status()));
         auto state = std::make_shared<RoutesCursor>();
         state->remaining = n.value();
         done(AdminResult::List(
             {{"topic", "TOPIC FILTER"}, {"node", "NODE"}, {"subscribers", "SUBSCRIBERS"}},
             [&ctx, state](size_t max_rows, AdminPageDone page_done) {
               size_t max = static_cast<size_t>(std::min<uint64_t>(max_rows, state->remaining));
               if (state->remote) {
                 // The cluster stopped meanwhile: nothing more to list.
                 if (!ctx.remote_routes) return page_done(AdminPage{});
                 return RemoteRoutesPage(ctx, state, max, std::move(page_done));
               }
               AdminPage p;
               for (auto& r : ctx.router.Routes(state->after, max)) {
                 p.rows.push_back(Json{{"topic", r.filter},
                                       {"node", ctx.options.node_name},
                                       {"subscribers", r.subscribers}});
                 state->after = r.filter;
               }
               state->remaining -= p.rows.size();
               p.last = p.rows.size() < max || state->remaining == 0;
               if (p.last && state->remaining > 0 && ctx.remote_routes) {
                 state->remote = true;
                 state->after.clear();
                 p.last = false;
               }
               page_done(std::move(p));
             }));
       }});

  add({.path = "routes show",
       .args = "TOPIC",
       .summary = "where a PUBLISH to topic name TOPIC goes: the subscribers it matches here "
                  "and the other nodes it is forwarded to",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         const std::string& topic = req.Arg("TOPIC");
         if (Status st = ValidateTopicName(topic); !st.ok()) {
           return done(AdminResult::Error(
               Status::InvalidArgument("bad topic name '" + topic + "': " + st.message())));
         }
         std::vector<RouteTarget> targets;
         ctx.router.Match(topic, "", targets);
         Json subs = Json::array();
         for (const RouteTarget& t : targets) {
           subs.push_back(Json{{"client_id", t.client_id}, {"qos", t.qos}});
         }
         Json shown{{"topic", topic}, {"node", ctx.options.node_name}, {"subscribers", subs}};
         if (!ctx.remote_routes) {
           if (targets.empty()) {
             return done(AdminResult::Error(Status::NotFound("no route for '" + topic + "'")));
           }
           return done(AdminResult::Value(std::move(shown)));
         }
         ctx.remote_routes->Matching(
             topic, [done, topic, shown = std::move(shown)](
                        std::vector<RemoteRouteDirectory::Row> rows) mutable {
               if (rows.empty() && shown["subscribers"].empty()) {
                 return done(AdminResult::Error(Status::NotFound("no route for '" + topic + "'")));
               }
               Json nodes = Json::array();
               for (const auto& r : rows) nodes.push_back(RemoteRouteJson(r));
               shown["nodes"] = std::move(nodes);
               done(AdminResult::Value(std::move(shown)));
             });
       }});

  add({.path = "retained list",
       .args = "[FILTER]",
       .options = {limit},
       .summary = "retained messages (all of them, or those matching FILTER)",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         auto n = req.UintOption("limit", kNoLimit, kNoLimit);
         if (!n.ok()) return done(AdminResult::Error(n.status()));
         std::vector<MessagePtr> all;
         if (req.HasArg("FILTER")) {
           if (Status st = CheckFilter(req.Arg("FILTER")); !st.ok()) {
             return done(AdminResult::Error(st));
           }
           all = ctx.router.MatchRetained(req.Arg("FILTER"), UnixNowMs());
         } else {
           all = ctx.router.AllRetained();
         }
         // A snapshot of pointers to messages the router already holds; rows
         // are built one page at a time.
         std::sort(all.begin(), all.end(),
                   [](const MessagePtr& a, const MessagePtr& b) { return a->topic < b->topic; });
         if (all.size() > n.value()) all.resize(n.value());
         auto snapshot = std::make_shared<std::vector<MessagePtr>>(std::move(all));
         auto next = std::make_shared<size_t>(0);
         done(AdminResult::List(
             {{"topic", "TOPIC"}, {"qos", "QOS"}, {"size", "SIZE"}, {"received_at", "RECEIVED"}},
             [snapshot, next](size_t max, AdminPageDone page_done) {
               AdminPage p;
               for (; *next < snapshot->size() && p.rows.size() < max; ++*next) {
                 p.rows.push_back(RetainedRow(*(*snapshot)[*next]));
               }
               p.last = *next >= snapshot->size();
               page_done(std::move(p));
             }));
       }});

  add({.path = "retained show",
       .args = "TOPIC",
       .summary = "one retained message, with its payload",
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         const std::string& topic = req.Arg("TOPIC");
         if (Status st = ValidateTopicName(topic); !st.ok()) {
           return done(AdminResult::Error(
               Status::InvalidArgument("bad topic name '" + topic + "': " + st.message())));
         }
         for (const MessagePtr& m : ctx.router.MatchRetained(topic, UnixNowMs())) {
           if (m->topic != topic) continue;
           Json row = RetainedRow(*m);
           row.update(Payload(m->payload));
           return done(AdminResult::Value(std::move(row)));
         }
         done(AdminResult::Error(Status::NotFound("no retained message on '" + topic + "'")));
       }});

  add({.path = "retained clean",
       .args = "[FILTER]",
       .summary = "delete retained messages (all of them, or those matching FILTER)",
       .access = AdminAccess::kWrite,
       .handler = [&ctx](const AdminRequest& req, AdminDone done) {
         std::vector<MessagePtr> doomed;
         if (req.HasArg("FILTER")) {
           if (Status st = CheckFilter(req.Arg("FILTER")); !st.ok()) {
             return done(AdminResult::Error(st));
           }
           doomed = ctx.router.MatchRetained(req.Arg("FILTER"), UINT64_MAX);
         } else {
           doomed = ctx.router.AllRetained();
         }
         // Deleted on a cluster's other nodes too, as a publish would.
         ctx.DeleteRetained(doomed, true);
         FERRY_INFO("%zu retained messages deleted by an administrator", doomed.size());
         done(AdminResult::Value(Json{{"deleted", doomed.size()}},
                                 std::to_string(doomed.size()) + " retained messages deleted\n"));
       }});

  add({.path = "listeners",
       .summary = "listeners: type, address, PROXY protocol, connections, limits, running",
       .help = "MAX is max_connections and RATE max_connection_rate (new connections per\n"
               "second); 0 = unlimited.",
       .handler = [this](const AdminRequest&, AdminDone done) {
         Json rows = Json::array();
         for (const ListenerStatus& l : ListenerStatuses()) {
           bool v6 = l.bound.host.find(':') != std::string::npos;
           rows.push_back(Json{{"id", l.bound.id},
                               {"type", l.type},
                               {"bind", (v6 ? "[" + l.bound.host + "]" : l.bound.host) + ":" +
                                            std::to_string(l.bound.port)},
                               {"proxy_protocol", l.proxy_protocol},
                               {"connections", l.connections},
                               {"max_connections", l.max_connections},
                               {"max_connection_rate", l.max_connection_rate},
                               {"running", l.running}});
         }
         done(AdminResult::List({{"id", "ID"},
                                 {"type", "TYPE"},
                                 {"bind", "BIND"},
                                 {"proxy_protocol", "PROXY"},
                                 {"connections", "CONNECTIONS"},
                                 {"max_connections", "MAX"},
                                 {"max_connection_rate", "RATE"},
                                 {"running", "RUNNING"}},
                                OnePage(std::move(rows))));
       }});

  auto listener_action = [this](std::string verb) {
    return [this, verb](const AdminRequest& req, AdminDone done) {
      const std::string& id = req.Arg("ID");
      Status st;
      if (verb == "stop" || verb == "restart") st = StopListener(id);
      if (verb == "restart" && !st.ok() && st.code() == Status::Code::kInvalidArgument) {
        st = Status::Ok();  // restarting a stopped listener starts it
      }
      if (st.ok() && verb != "stop") st = StartListener(id);
      if (!st.ok()) return done(AdminResult::Error(st));
      std::string past = verb == "stop" ? "stopped" : verb + "ed";
      done(AdminResult::Value(Json{{"id", id}, {verb == "stop" ? "stopped" : "running", true}},
                              "Listener " + id + " " + past + "\n"));
    };
  };
  add({.path = "listeners stop",
       .args = "ID",
       .summary = "stop accepting connections on a listener (connected clients stay)",
       .access = AdminAccess::kWrite,
       .handler = listener_action("stop")});
  add({.path = "listeners start",
       .args = "ID",
       .summary = "accept connections on a stopped listener again, on the same address",
       .access = AdminAccess::kWrite,
       .handler = listener_action("start")});
  add({.path = "listeners restart",
       .args = "ID",
       .summary = "stop and start a listener",
       .access = AdminAccess::kWrite,
       .handler = listener_action("restart")});

  add({.path = "log level",
       .args = "[LEVEL]",
       .summary = "show the log level, or set it: error, warn, info, debug, trace",
       .help = "A level set here lasts until the node restarts or reloads its config.",
       .access = AdminAccess::kWrite,
       .handler = [](const AdminRequest& req, AdminDone done) {
         if (req.HasArg("LEVEL")) {
           LogLevel level;
           if (!ParseLogLevel(req.Arg("LEVEL"), &level)) {
             return done(AdminResult::Error(Status::InvalidArgument(
                 "LEVEL must be error, warn, info, debug or trace, got '" + req.Arg("LEVEL") +
                 "'")));
           }
           SetLogLevel(level);
           FERRY_INFO("log level set to %s by an administrator", LogLevelName(level));
         }
         // As the config spells it: "info", not the log line's "INFO".
         std::string name = LogLevelName(GetLogLevel());
         for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
         done(AdminResult::Value(Json{{"level", name}}, name + "\n"));
       }});

  for (AdminCommand& c : commands) {
    if (Status st = registry.Register(std::move(c)); !st.ok()) return st;
  }
  return Status::Ok();
}

std::string Broker::PrometheusMetrics() const {
  const Metrics& m = ctx_->metrics;
  const Router& r = ctx_->router;
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto value = [&](const char* name, const std::string& labels, uint64_t v) {
    out += name;
    if (!labels.empty()) out += "{" + labels + "}";
    // Piece by piece: " " + std::to_string(v) trips GCC 12's false -Wrestrict.
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  auto one = [&](const char* name, const char* type, const char* help, uint64_t v) {
    metric(name, type, help);
    value(name, "", v);
  };
  // Label values escape backslash, double quote and newline.
  std::string node;
  for (char c : ctx_->options.node_name) {
    if (c == '\\' || c == '"') node += '\\';
    node += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  metric("ferry_info", "gauge", "Node name and version; always 1.");
  out += "ferry_info{node=\"" + node + "\",version=\"" FERRY_VERSION "\"} 1\n";
  one("ferry_uptime_seconds", "gauge", "Seconds since the node started.",
      (UnixNowMs() - ctx_->started_unix_ms) / 1000);
  one("ferry_workers", "gauge", "I/O worker threads.", ctx_->workers.size());
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    one(name, "gauge", help, static_cast<uint64_t>(std::max<int64_t>(v, 0)));
  };
  gauge("ferry_connections", "Clients connected now.", m.clients_connected.load());
  gauge("ferry_connections_max", "Most clients connected at once since start.",
        m.clients_connected_max.load());
  gauge("ferry_sessions", "Sessions, connected or not.", m.sessions.load());
  gauge("ferry_sessions_max", "Most sessions at once since start.", m.sessions_max.load());
  one("ferry_subscriptions", "gauge", "Subscriptions.", r.subscription_count());
  one("ferry_subscriptions_max", "gauge", "Most subscriptions at once since start.",
      r.subscription_count_max());
  one("ferry_routes", "gauge", "Distinct topic filters with subscribers.", r.route_count());
  one("ferry_routes_max", "gauge", "Most routes at once since start.", r.route_count_max());
  one("ferry_retained_messages", "gauge", "Retained messages.", r.retained_count());
  one("ferry_retained_messages_max", "gauge", "Most retained messages at once since start.",
      r.retained_count_max());
  one("ferry_connections_accepted_total", "counter", "Connections accepted.",
      m.connections_total.load());
  metric("ferry_messages_received_total", "counter", "PUBLISH packets received, by QoS.");
  for (int q = 0; q < 3; ++q) {
    value("ferry_messages_received_total", "qos=\"" + std::to_string(q) + "\"",
          m.publish_received_qos[q].load());
  }
  metric("ferry_messages_sent_total", "counter", "PUBLISH packets sent, by QoS.");
  for (int q = 0; q < 3; ++q) {
    value("ferry_messages_sent_total", "qos=\"" + std::to_string(q) + "\"",
          m.publish_sent_qos[q].load());
  }
  metric("ferry_messages_dropped_total", "counter", "Messages dropped, by reason.");
  for (const auto& [reason, v] : DropsByReason(m)) {
    value("ferry_messages_dropped_total", std::string("reason=\"") + reason + "\"", v);
  }
  one("ferry_packets_received_total", "counter", "MQTT packets received.",
      m.messages_received.load());
  one("ferry_packets_sent_total", "counter", "MQTT packets sent.", m.messages_sent.load());
  one("ferry_bytes_received_total", "counter", "Bytes received from clients.",
      m.bytes_received.load());
  one("ferry_bytes_sent_total", "counter", "Bytes sent to clients.", m.bytes_sent.load());
  one("ferry_protocol_errors_total", "counter", "Connections closed for a protocol error.",
      m.protocol_errors.load());
  one("ferry_slow_subscribers_disconnected_total", "counter",
      "Subscribers disconnected for holding their publishers longer than max_queue_wait.",
      m.slow_subscribers_disconnected.load());
  one("ferry_partial_packet_bytes", "gauge",
      "Bytes of incomplete packets held for all connections (max_partial_packet_memory "
      "per worker).",
      PartialPacketBytes(*ctx_));
  one("ferry_partial_packet_refusals_total", "counter",
      "Connections closed because their worker held max_partial_packet_memory.",
      m.partial_packet_refusals.load());
  one("ferry_subscriptions_refused_total", "counter",
      "Topic filters refused past max_subscriptions_per_client.", m.subscriptions_refused.load());
  // Per listener; ids are [a-z]+ "." [A-Za-z0-9_-]+, nothing to escape.
  const std::vector<ListenerStatus> listeners = ListenerStatuses();
  auto per_listener = [&](const char* name, const char* type, const char* help, auto get) {
    metric(name, type, help);
    for (const ListenerStatus& l : listeners) {
      value(name, "listener=\"" + l.bound.id + "\"", get(l));
    }
  };
  auto counters = [&](const ListenerStatus& l) -> const ListenerCounters& {
    return ctx_->listener_counters.find(l.bound.id)->second;
  };
  per_listener("ferry_listener_connections", "gauge", "Open connections per listener.",
               [](const ListenerStatus& l) -> uint64_t { return l.connections; });
  per_listener("ferry_listener_up", "gauge", "1 while the listener accepts connections.",
               [](const ListenerStatus& l) -> uint64_t { return l.running ? 1 : 0; });
  per_listener("ferry_listener_connections_accepted_total", "counter",
               "Connections accepted per listener (within max_connections).",
               [&](const ListenerStatus& l) { return counters(l).accepted.load(); });
  metric("ferry_listener_connections_refused_total", "counter",
         "Connections closed before CONNECT, per listener and reason: max_connections "
         "and fd_limit (closed at accept, not counted as accepted), proxy_header, tls_handshake, "
         "websocket_upgrade (each where the listener can refuse for it).");
  for (const ListenerStatus& l : listeners) {
    for (size_t r = 0; r < kRefusalCount; ++r) {
      const auto reason = static_cast<Refusal>(r);
      if (!CanRefuse(l, reason)) continue;
      value("ferry_listener_connections_refused_total",
            "listener=\"" + l.bound.id + "\",reason=\"" + RefusalName(reason) + "\"",
            counters(l).refused_for(reason));
    }
  }
  per_listener("ferry_listener_connections_rate_limited_total", "counter",
               "Connections that waited in the accept queue because the listener's "
               "max_connection_rate was reached.",
               [&](const ListenerStatus& l) { return counters(l).rate_limited.load(); });
  out += StorePrometheusMetrics();
  return out;
}

}  // namespace ferry::core
