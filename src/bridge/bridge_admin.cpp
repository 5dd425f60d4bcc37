// The `bridges ...` admin commands (ferryctl, HTTP API), the runtime
// operations behind them, and the per-bridge Prometheus metrics.
//
// Handlers run on the main loop (core/admin.h); each hands its work to the
// bridge thread as one operation (bridge_set_impl.h) and answers from there.
#include <algorithm>
#include <cctype>

#include "bridge/bridge_set_impl.h"
#include "core/admin.h"
#include "core/log.h"

// Commands are written with designated initializers, leaving out the fields
// they do not need; g++ 12 warns about exactly that (GCC bug 96868).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ferry::bridge {

namespace {

using core::AdminCommand;
using core::AdminDone;
using core::AdminOption;
using core::AdminRequest;
using core::AdminResult;
using core::Json;
using ferry::Result;
using ferry::Status;

// A bridge name made from a TARGET: every character a name cannot hold
// becomes '_' ("ferry2@127.0.0.1:2883" -> "ferry2_127_0_0_1_2883").
std::string NameFor(const UpstreamAddress& target) {
  std::string name = target.ToString();
  if (name.starts_with("mqtts://")) name = "tls_" + name.substr(8);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  return name.substr(0, 64);
}

bool SameEndpoint(const UpstreamAddress& a, const UpstreamAddress& b) {
  return a.host == b.host && a.port == b.port && a.tls == b.tls;
}

std::string IsoTime(uint64_t unix_ms) {
  if (unix_ms == 0) return "";
  time_t s = static_cast<time_t>(unix_ms / 1000);
  tm t;
  gmtime_r(&s, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

Json StatsJson(const BridgeStats& s) {
  return Json{{"name", s.name},
              {"state", s.state},
              {"address", s.address},
              {"upstream_node", s.upstream_node},
              {"origin", s.origin},
              {"scope", s.scope},
              {"runs_on", s.runs_on},
              {"draining", s.draining},
              {"held", s.held},
              {"forward", s.forward},
              {"subscribe", s.subscribe},
              {"queued", s.queued},
              {"queued_bytes", s.queued_bytes},
              {"inflight", s.inflight},
              {"sent", s.sent},
              {"received", s.received},
              {"dropped", s.dropped},
              {"dropped_by",
               {{"overflow", s.dropped_overflow},
                {"expired", s.dropped_expired},
                {"loop", s.dropped_loop},
                {"rejected", s.dropped_rejected},
                {"other", s.dropped_other}}},
              {"connects", s.connects},
              {"connected_since", IsoTime(s.connected_since_ms)},
              {"last_error", s.last_error}};
}

// The filter part of a rule text ("sensor/# 1 remote_prefix=x/").
std::string FilterOf(const std::string& rule_text) { return rule_text.substr(0, rule_text.find(' ')); }

// One line per rule, in the seed's format, with the bridge's state after it:
//   bridge: ferry1@127.0.0.1/sensor/#-->ferry2@127.0.0.1:2883  (connected, ...)
std::string ListText(const std::vector<BridgeStats>& all, const std::string& node) {
  std::string out;
  for (const BridgeStats& s : all) {
    std::string state = "name " + s.name + ", " + s.state;
    if (!s.held.empty()) state += " (" + s.held + " by ferryctl)";
    if (s.scope == "cluster") {
      state += s.runs_on.empty() ? ", scope cluster, runs on no node"
                                 : ", scope cluster, runs on " + s.runs_on;
      if (s.draining) state += ", sending this node's queue";
    }
    if (!s.address.empty()) state += (s.state == "connected" ? " to " : ", address ") + s.address;
    state += ", queued " + std::to_string(s.queued) + ", inflight " + std::to_string(s.inflight) +
             ", sent " + std::to_string(s.sent) + ", received " + std::to_string(s.received) +
             ", dropped " + std::to_string(s.dropped);
    if (!s.last_error.empty()) state += ", last error: " + s.last_error;
    for (const std::string& f : s.forward) {
      out += "bridge: " + node + "/" + FilterOf(f) + "-->" + s.address + "  (" + state + ")\n";
    }
    for (const std::string& f : s.subscribe) {
      out += "bridge: " + node + "/" + FilterOf(f) + "<--" + s.address + "  (" + state + ")\n";
    }
    if (s.forward.empty() && s.subscribe.empty()) {
      out += "bridge: " + node + " (no rules)-->" + s.address + "  (" + state + ")\n";
    }
  }
  if (all.empty()) out = "no bridges\n";
  return out;
}

std::string ShowText(const BridgeStats& s) {
  std::string out;
  auto line = [&](const std::string& k, const std::string& v) {
    out += k + std::string(k.size() < 18 ? 18 - k.size() : 1, ' ') + ": " + v + "\n";
  };
  auto join = [](const std::vector<std::string>& v) {
    std::string r;
    for (const auto& x : v) r += (r.empty() ? "" : ", ") + x;
    return r.empty() ? std::string("-") : r;
  };
  line("name", s.name);
  line("state", s.held.empty() ? s.state : s.state + " (" + s.held + " by ferryctl, kept across restarts)");
  line("scope", s.scope);
  line("runs on", s.runs_on.empty() ? "-" : s.runs_on);
  if (s.draining) line("draining", "sending what is left in this node's queue");
  line("address", s.address);
  line("upstream node", s.upstream_node.empty() ? "-" : s.upstream_node);
  line("defined in", s.origin);
  line("forward", join(s.forward));
  line("subscribe", join(s.subscribe));
  line("queued", std::to_string(s.queued) + " messages, " + std::to_string(s.queued_bytes) +
                     " bytes on disk");
  line("inflight", std::to_string(s.inflight));
  line("sent", std::to_string(s.sent));
  line("received", std::to_string(s.received));
  line("dropped", std::to_string(s.dropped) + " (overflow " + std::to_string(s.dropped_overflow) +
                      ", expired " + std::to_string(s.dropped_expired) + ", loop " +
                      std::to_string(s.dropped_loop) + ", rejected " +
                      std::to_string(s.dropped_rejected) + ", other " +
                      std::to_string(s.dropped_other) + ")");
  line("connects", std::to_string(s.connects));
  line("connected since", s.connected_since_ms ? IsoTime(s.connected_since_ms) : "-");
  line("last error", s.last_error.empty() ? "-" : s.last_error);
  return out;
}

Result<uint8_t> QosOption(const AdminRequest& req) {
  auto q = req.UintOption("qos", 1, 2);
  if (!q.ok()) return Status::InvalidArgument("--qos must be 0, 1 or 2");
  return static_cast<uint8_t>(q.value());
}

// A rule from FILTER and the --qos, --remote-prefix, --local-prefix options.
Result<TopicRule> RuleFrom(const AdminRequest& req, const std::string& filter,
                           const std::string& node) {
  auto qos = QosOption(req);
  if (!qos.ok()) return qos.status();
  TopicRule rule;
  rule.filter = ExpandNode(filter, node);
  rule.qos = qos.value();
  rule.remote_prefix = ExpandNode(req.Option("remote-prefix").value_or(""), node);
  rule.local_prefix = ExpandNode(req.Option("local-prefix").value_or(""), node);
  if (rule.filter.find_first_of(" ,") != std::string::npos) {
    return Status::InvalidArgument("a filter cannot hold spaces or commas: '" + filter + "'");
  }
  if (Status s = ValidateRule(rule); !s.ok()) return Status::InvalidArgument(s.message());
  return rule;
}

const AdminOption kLocalOnly{"local", "", "this node only, not the other nodes of its cluster"};

const std::vector<AdminOption> kRuleOptions = {
    {"qos", "Q", "QoS: forward: the cap on the forwarded QoS; subscribe: the subscription's (default 1)"},
    {"remote-prefix", "P", "prefix of the topic upstream (default none)"},
    {"local-prefix", "L", "prefix of the topic on this node (default none)"}};

}  // namespace

// ---------------------------------------------------------------- operations

void BridgeSet::Impl::StartNamed(const std::string& name, Done done) {
  BridgeLink* link = Find(name);
  if (link == nullptr) return done(Status::NotFound("no bridge '" + name + "'"));
  if (stopping_) return done(Status::Unavailable("the node is shutting down"));
  StartLink(*link);
  SetAdminState(name, /*started=*/true, std::move(done));
}

void BridgeSet::Impl::StopNamed(const std::string& name, Done done) {
  BridgeLink* link = Find(name);
  if (link == nullptr) return done(Status::NotFound("no bridge '" + name + "'"));
  StopLink(*link);
  SetAdminState(name, /*started=*/false, std::move(done));
}

void BridgeSet::Impl::StartAdHoc(AdHoc request, std::function<void(Result<std::string>)> done) {
  const std::string name = request.name.empty() ? NameFor(request.target) : request.name;
  if (!IsBridgeName(name)) {
    return done(Status::InvalidArgument("bad bridge name '" + name +
                                        "' (letters, digits, '_' and '-', at most 64)"));
  }
  if (BridgeLink* link = Find(name)) {
    const auto& addresses = link->config().addresses;
    if (std::none_of(addresses.begin(), addresses.end(),
                     [&](const UpstreamAddress& a) { return SameEndpoint(a, request.target); })) {
      return done(Status::InvalidArgument("bridge '" + name + "' goes to " +
                                          addresses.front().ToString() + ", not " +
                                          request.target.ToString()));
    }
    std::vector<TopicRule> forward = link->config().forward;
    std::erase_if(forward, [&](const TopicRule& r) { return r.filter == request.rule.filter; });
    forward.push_back(request.rule);
    link->SetRules(std::move(forward), link->config().subscribe);
    link->set_runtime();
    StartLink(*link);
    return PersistRuntime([done, name](Status s) {
      done(s.ok() ? Result<std::string>(name) : Result<std::string>(s));
    });
  }
  BridgeConfig c;
  c.name = name;
  c.origin = "runtime";
  c.addresses = {request.target};
  c.forward = {request.rule};
  c.clientid = name + "." + ctx_.node_name;
  c.notification_topic = "$SYS/brokers/" + ctx_.node_name + "/bridges/" + name + "/state";
  Replace(name, std::move(c), /*runtime=*/true, /*start=*/true, [this, done, name](Status s) {
    if (!s.ok()) return done(s);
    FERRY_INFO("bridge %s: created by ferryctl", name.c_str());
    PersistRuntime([done, name](Status st) {
      done(st.ok() ? Result<std::string>(name) : Result<std::string>(st));
    });
  });
}

void BridgeSet::Impl::StopAdHoc(const UpstreamAddress& target, const std::string& filter,
                                std::function<void(Result<std::string>)> done) {
  for (auto& [name, link] : links_) {
    const BridgeConfig& c = link->config();
    if (std::none_of(c.addresses.begin(), c.addresses.end(),
                     [&](const UpstreamAddress& a) { return SameEndpoint(a, target); })) {
      continue;
    }
    std::vector<TopicRule> forward = c.forward;
    size_t before = forward.size();
    std::erase_if(forward, [&](const TopicRule& r) {
      return r.filter == filter || r.LocalFilter() == filter;
    });
    if (forward.size() == before) continue;
    const std::string bridge = name;
    link->set_runtime();
    if (forward.empty() && c.subscribe.empty()) {
      // Nothing left to do: the bridge goes (its queue stays on disk, and a
      // bridge of the same name picks it up).
      FERRY_INFO("bridge %s: last rule removed, bridge removed", bridge.c_str());
      Replace(bridge, std::nullopt, true, false, [this, done, bridge](Status s) {
        if (!s.ok()) return done(s);
        PersistRuntime([done, bridge](Status st) {
          done(st.ok() ? Result<std::string>(bridge) : Result<std::string>(st));
        });
      });
      return;
    }
    link->SetRules(std::move(forward), c.subscribe);
    return PersistRuntime([done, bridge](Status s) {
      done(s.ok() ? Result<std::string>(bridge) : Result<std::string>(s));
    });
  }
  done(Status::NotFound("no bridge forwards '" + filter + "' to " + target.ToString()));
}

void BridgeSet::Impl::ChangeRule(const std::string& name, bool forward, bool add, TopicRule rule,
                                 Done done) {
  BridgeLink* link = Find(name);
  if (link == nullptr) return done(Status::NotFound("no bridge '" + name + "'"));
  std::vector<TopicRule> fwd = link->config().forward;
  std::vector<TopicRule> sub = link->config().subscribe;
  std::vector<TopicRule>& rules = forward ? fwd : sub;
  const size_t before = rules.size();
  std::erase_if(rules, [&](const TopicRule& r) {
    return r.filter == rule.filter ||
           (!add && (forward ? r.LocalFilter() : r.RemoteFilter()) == rule.filter);
  });
  if (add) {
    rules.push_back(rule);
  } else if (rules.size() == before) {
    return done(Status::NotFound("bridge '" + name + "' has no " +
                                 (forward ? "forward" : "subscribe") + " rule '" + rule.filter +
                                 "'"));
  }
  link->SetRules(std::move(fwd), std::move(sub));
  link->set_runtime();
  PersistRuntime(std::move(done));
}

// ---------------------------------------------------------------- commands

Status BridgeSet::RegisterAdminCommands(core::AdminRegistry& registry) {
  Impl* impl = impl_.get();
  const std::string node = impl->ctx_.node_name;
  // Runs `op` on the bridge thread as one operation; it answers `done`.
  auto on_bridges = [impl](std::function<void(std::function<void()> finished)> op) {
    impl->loop_.Post([impl, op = std::move(op)]() mutable { impl->RunOp(std::move(op)); });
  };
  std::vector<AdminCommand> commands;

  commands.push_back(
      {.path = "bridges list",
       .summary = "every bridge: its rules, state, address, queue and counters",
       .handler = [this, node](const AdminRequest&, AdminDone done) {
         std::vector<BridgeStats> all = Stats();
         Json rows = Json::array();
         for (const BridgeStats& s : all) rows.push_back(StatsJson(s));
         done(AdminResult::Value(Json{{"node", node}, {"bridges", std::move(rows)}},
                                 ListText(all, node)));
       }});

  commands.push_back(
      {.path = "bridges show",
       .args = "NAME",
       .summary = "one bridge in detail",
       .handler = [this](const AdminRequest& req, AdminDone done) {
         for (const BridgeStats& s : Stats()) {
           if (s.name == req.Arg("NAME")) return done(AdminResult::Value(StatsJson(s), ShowText(s)));
         }
         done(AdminResult::Error(Status::NotFound("no bridge '" + req.Arg("NAME") + "'")));
       }});

  // `bridges start` and `bridges stop`: TARGET alone names a bridge; with
  // FILTER, TARGET is an upstream and FILTER a forward rule to it.
  auto start_stop = [impl, on_bridges, node](bool start) {
    return [impl, on_bridges, node, start](const AdminRequest& req, AdminDone done) {
      const std::string target = req.Arg("TARGET");
      const std::string verb = start ? "started" : "stopped";
      auto answer = [done, verb](std::function<void()> finished) {
        return [done, verb, finished](Result<std::string> r) {
          Json j{{verb, true}};
          if (r.ok() && !r.value().empty()) j["name"] = r.value();
          done(r.ok() ? AdminResult::Value(std::move(j), "bridge is " + verb + ".\n")
                      : AdminResult::Error(r.status()));
          finished();
        };
      };
      if (!req.HasArg("FILTER")) {
        // A bridge of scope cluster is started or stopped on every node.
        const bool everywhere = !req.HasOption("local");
        return on_bridges([impl, target, start, everywhere, done, verb](
                              std::function<void()> finished) {
          auto named = [impl, target, start, everywhere, done, verb, finished](Status s) {
            BridgeLink* link = impl->Find(target);
            if (!s.ok() || !everywhere || link == nullptr || !impl->Placed(*link)) {
              done(s.ok() ? AdminResult::Value(Json{{verb, true}}, "bridge is " + verb + ".\n")
                          : AdminResult::Error(s));
              return finished();
            }
            impl->placement_->OnPeers(
                {"bridges", start ? "start" : "stop", target, "--local"},
                [done, verb](std::vector<std::string> failed) {
                  Json j{{verb, true}, {"failed_on", failed}};
                  std::string text = "bridge is " + verb + " on every node of the cluster.\n";
                  if (!failed.empty()) {
                    text = "bridge is " + verb + " here, but not on:\n";
                    for (const std::string& f : failed) text += "  " + f + "\n";
                  }
                  done(AdminResult::Value(std::move(j), text));
                });
            finished();
          };
          start ? impl->StartNamed(target, named) : impl->StopNamed(target, named);
        });
      }
      auto address = ParseUpstreamAddress(target);
      if (!address.ok()) {
        return done(AdminResult::Error(Status::InvalidArgument("TARGET: " + address.status().message())));
      }
      if (!start) {
        return on_bridges([impl, address = address.value(), filter = req.Arg("FILTER"),
                           answer](std::function<void()> finished) {
          impl->StopAdHoc(address, filter, answer(finished));
        });
      }
      auto rule = RuleFrom(req, req.Arg("FILTER"), node);
      if (!rule.ok()) return done(AdminResult::Error(rule.status()));
      Impl::AdHoc request{address.value(), rule.value(), req.Option("name").value_or("")};
      on_bridges([impl, request, answer](std::function<void()> finished) {
        impl->StartAdHoc(request, answer(finished));
      });
    };
  };

  commands.push_back(
      {.path = "bridges start",
       .args = "TARGET [FILTER]",
       .options = {kRuleOptions[0], kRuleOptions[1], kRuleOptions[2],
                   {"name", "N", "name of the bridge to create (default: from TARGET)"},
                   kLocalOnly},
       .summary = "start bridge TARGET, or forward FILTER to TARGET (name@host:port)",
       .help = "With one argument, TARGET is the name of a configured bridge, which starts\n"
               "(one of scope cluster: on every node, unless --local; it runs on one).\n"
               "With FILTER, TARGET is the upstream (node@host:port, host:port,\n"
               "mqtt://host[:port] or mqtts://host[:port]): local messages matching\n"
               "FILTER are forwarded there, by a bridge created for TARGET if there is\n"
               "none yet. Such bridges are kept in data_dir/bridges.conf.",
       .access = core::AdminAccess::kWrite,
       .handler = start_stop(true)});

  commands.push_back(
      {.path = "bridges stop",
       .args = "TARGET [FILTER]",
       .options = {kLocalOnly},
       .summary = "stop bridge TARGET, or stop forwarding FILTER to TARGET",
       .help = "With one argument, TARGET names a bridge, which stops (its queue stays;\n"
               "one of scope cluster stops on every node, unless --local).\n"
               "With FILTER, the rule forwarding FILTER to TARGET goes; a bridge left\n"
               "without rules is removed.",
       .access = core::AdminAccess::kWrite,
       .handler = start_stop(false)});

  for (bool forward : {true, false}) {
    const std::string noun = forward ? "forward" : "subscription";
    commands.push_back(
        {.path = forward ? "bridges forwards" : "bridges subscriptions",
         .args = "NAME",
         .summary = forward ? "the forward rules of bridge NAME (local -> upstream)"
                            : "the subscribe rules of bridge NAME (upstream -> local)",
         .handler = [impl, forward](const AdminRequest& req, AdminDone done) {
           std::vector<TopicRule> rules;
           bool found = false;
           {
             std::lock_guard lock(impl->links_mu_);
             auto it = impl->links_.find(req.Arg("NAME"));
             if (it != impl->links_.end()) {
               found = true;
               rules = it->second->Rules(forward);
             }
           }
           if (!found) return done(AdminResult::Error(Status::NotFound("no bridge '" + req.Arg("NAME") + "'")));
           Json rows = Json::array();
           for (const TopicRule& r : rules) {
             rows.push_back(Json{{"filter", r.filter},
                                 {"qos", r.qos},
                                 {"local", r.LocalFilter()},
                                 {"remote", r.RemoteFilter()},
                                 {"local_prefix", r.local_prefix},
                                 {"remote_prefix", r.remote_prefix}});
           }
           done(AdminResult::List({{"filter", "FILTER"},
                                   {"qos", "QOS"},
                                   {"local", "LOCAL"},
                                   {"remote", "UPSTREAM"}},
                                  [rows](size_t, core::AdminPageDone page_done) {
                                    core::AdminPage p;
                                    p.rows = rows;
                                    page_done(std::move(p));
                                  }));
         }});
    for (bool add : {true, false}) {
      AdminCommand c;
      c.path = std::string("bridges ") + (add ? "add-" : "del-") + noun;
      c.args = "NAME FILTER";
      if (add) c.options = kRuleOptions;
      c.summary = std::string(add ? "add (or change) a " : "remove a ") + noun +
                  " rule of bridge NAME" + (add ? "" : "");
      c.access = core::AdminAccess::kWrite;
      c.handler = [impl, on_bridges, node, forward, add, noun](const AdminRequest& req,
                                                               AdminDone done) {
        TopicRule rule;
        if (add) {
          auto r = RuleFrom(req, req.Arg("FILTER"), node);
          if (!r.ok()) return done(AdminResult::Error(r.status()));
          rule = r.value();
        } else {
          rule.filter = ExpandNode(req.Arg("FILTER"), node);
        }
        const std::string name = req.Arg("NAME");
        on_bridges([impl, name, forward, add, rule, noun, done](std::function<void()> finished) {
          impl->ChangeRule(name, forward, add, rule, [=](Status s) {
            done(s.ok() ? AdminResult::Value(Json{{"bridge", name}, {noun, rule.filter},
                                                  {add ? "added" : "removed", true}},
                                             std::string(add ? "added " : "removed ") + noun +
                                                 " '" + rule.filter + "' of bridge " + name + "\n")
                        : AdminResult::Error(s));
            finished();
          });
        });
      };
      commands.push_back(std::move(c));
    }
  }

  for (AdminCommand& c : commands) {
    if (Status s = registry.Register(std::move(c)); !s.ok()) return s;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- metrics

std::string BridgePrometheusMetrics(const std::vector<BridgeStats>& stats) {
  std::string out;
  auto label = [](const std::string& name) {
    std::string v;
    for (char c : name) {
      if (c == '\\' || c == '"') v += '\\';
      v += c;
    }
    return "bridge=\"" + v + "\"";
  };
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (const BridgeStats& s : stats) {
      out += std::string(name) + "{" + label(s.name) + "} " + std::to_string(value(s)) + "\n";
    }
  };
  family("ferry_bridge_up", "gauge", "1 while the bridge is connected to its upstream.",
         [](const BridgeStats& s) { return s.state == "connected" ? 1 : 0; });
  family("ferry_bridge_queued_messages", "gauge", "Messages queued, not yet acknowledged upstream.",
         [](const BridgeStats& s) { return s.queued; });
  family("ferry_bridge_queue_bytes", "gauge", "Size of the bridge's queue on disk.",
         [](const BridgeStats& s) { return s.queued_bytes; });
  family("ferry_bridge_inflight_messages", "gauge", "Messages sent upstream, not yet acknowledged.",
         [](const BridgeStats& s) { return s.inflight; });
  family("ferry_bridge_messages_sent_total", "counter", "PUBLISH packets sent upstream.",
         [](const BridgeStats& s) { return s.sent; });
  family("ferry_bridge_messages_received_total", "counter",
         "Messages pulled down from the upstream and published here.",
         [](const BridgeStats& s) { return s.received; });
  family("ferry_bridge_connects_total", "counter", "Connections made to the upstream.",
         [](const BridgeStats& s) { return s.connects; });
  out += "# HELP ferry_bridge_messages_dropped_total Messages dropped by the bridge, by reason.\n"
         "# TYPE ferry_bridge_messages_dropped_total counter\n";
  for (const BridgeStats& s : stats) {
    const std::pair<const char*, uint64_t> reasons[] = {{"overflow", s.dropped_overflow},
                                                        {"expired", s.dropped_expired},
                                                        {"loop", s.dropped_loop},
                                                        {"rejected", s.dropped_rejected},
                                                        {"other", s.dropped_other}};
    for (const auto& [reason, v] : reasons) {
      out += "ferry_bridge_messages_dropped_total{" + label(s.name) + ",reason=\"" + reason +
             "\"} " + std::to_string(v) + "\n";
    }
  }
  return out;
}

}  // namespace ferry::bridge
