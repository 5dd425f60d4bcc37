#include "core/admin.h"

#include <algorithm>
#include <charconv>

#include "core/loop.h"

namespace ferry::core {

namespace {

struct ArgSpec {
  std::string name;
  bool optional = false;
  bool repeated = false;
};

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string_view::npos) j = s.size();
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool IsPathWord(std::string_view w) {
  return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool IsArgName(std::string_view w) {
  return !w.empty() && w.front() >= 'A' && w.front() <= 'Z' &&
         std::all_of(w.begin(), w.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
         });
}

Result<std::vector<ArgSpec>> ParseArgSpecs(std::string_view usage) {
  std::vector<ArgSpec> specs;
  for (std::string_view w : SplitWords(usage)) {
    ArgSpec spec;
    if (w.size() >= 2 && w.front() == '[' && w.back() == ']') {
      spec.optional = true;
      w = w.substr(1, w.size() - 2);
    }
    if (w.ends_with("...")) {
      spec.repeated = true;
      w.remove_suffix(3);
    }
    if (!IsArgName(w)) {
      return Status::InvalidArgument("bad argument name '" + std::string(w) + "' in usage '" +
                                     std::string(usage) + "'");
    }
    if (!specs.empty() && specs.back().repeated) {
      return Status::InvalidArgument("only the last argument may repeat in '" +
                                     std::string(usage) + "'");
    }
    if (!specs.empty() && specs.back().optional && !spec.optional) {
      return Status::InvalidArgument("a required argument follows an optional one in '" +
                                     std::string(usage) + "'");
    }
    spec.name = std::string(w);
    specs.push_back(std::move(spec));
  }
  return specs;
}

// Wraps `fn` so that it runs on `loop`'s thread, whichever thread calls it.
template <typename T>
std::function<void(T)> OnLoop(Loop& loop, std::function<void(T)> fn) {
  return [&loop, fn = std::move(fn)](T value) mutable {
    if (loop.IsLoopThread()) {
      fn(std::move(value));
      return;
    }
    loop.Post([fn, value = std::move(value)]() mutable { fn(std::move(value)); });
  };
}

std::string Indent(std::string_view left, size_t width) {
  std::string s(left);
  if (s.size() < width) s.append(width - s.size(), ' ');
  else s += "  ";
  return s;
}

}  // namespace

struct AdminRegistry::Entry {
  AdminCommand command;
  std::vector<std::string> path;
  std::vector<ArgSpec> args;
};

// ---------------------------------------------------------------- request

const std::string& AdminRequest::Arg(std::string_view name) const {
  static const std::string kEmpty;
  auto it = args.find(std::string(name));
  return it == args.end() ? kEmpty : it->second;
}

bool AdminRequest::HasArg(std::string_view name) const { return args.contains(std::string(name)); }

bool AdminRequest::HasOption(std::string_view name) const {
  return options.contains(std::string(name));
}

std::optional<std::string> AdminRequest::Option(std::string_view name) const {
  auto it = options.find(std::string(name));
  if (it == options.end()) return std::nullopt;
  return it->second;
}

Result<uint64_t> AdminRequest::UintOption(std::string_view name, uint64_t fallback,
                                          uint64_t max) const {
  std::optional<std::string> v = Option(name);
  if (!v) return fallback;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || ptr != v->data() + v->size() || n > max) {
    return Status::InvalidArgument("--" + std::string(name) + ": expected an integer in 0.." +
                                   std::to_string(max) + ", got '" + *v + "'");
  }
  return n;
}

// ---------------------------------------------------------------- result

AdminResult AdminResult::Value(Json value, std::string text) {
  AdminResult r;
  r.value_ = std::move(value);
  r.text_ = std::move(text);
  return r;
}

AdminResult AdminResult::List(std::vector<AdminColumn> columns, AdminPageSource source) {
  AdminResult r;
  r.columns_ = std::move(columns);
  r.source_ = std::move(source);
  return r;
}

AdminResult AdminResult::Error(Status status, std::string usage) {
  FERRY_DCHECK(!status.ok());
  AdminResult r;
  r.status_ = std::move(status);
  r.usage_ = std::move(usage);
  return r;
}

const char* AdminErrorKind(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return "ok";
    case Status::Code::kInvalidArgument:
      return "bad_argument";
    case Status::Code::kNotFound:
      return "not_found";
    case Status::Code::kUnavailable:
    case Status::Code::kBusy:
      return "unavailable";
    default:
      return "internal";
  }
}

// ---------------------------------------------------------------- registry

AdminRegistry::AdminRegistry(Loop& main_loop) : loop_(main_loop) {
  AdminCommand help;
  help.path = "help";
  help.args = "[COMMAND...]";
  help.summary = "list the commands, or describe the ones starting with COMMAND";
  help.handler = [this](const AdminRequest& req, AdminDone done) {
    Json list = Json::array();
    std::string text;
    std::vector<const AdminCommand*> matched;
    for (const AdminCommand* c : Commands()) {
      std::vector<std::string> path = SplitWords(c->path);
      if (req.rest.size() <= path.size() && std::equal(req.rest.begin(), req.rest.end(),
                                                       path.begin())) {
        matched.push_back(c);
      }
    }
    if (matched.empty()) {
      std::string what;
      for (const auto& w : req.rest) what += (what.empty() ? "" : " ") + w;
      return done(AdminResult::Error(Status::NotFound("no command '" + what + "'")));
    }
    const bool detailed = !req.rest.empty();
    if (!detailed) text = "Commands (ferryctl help COMMAND for details):\n";
    for (const AdminCommand* c : matched) {
      Json opts = Json::array();
      for (const AdminOption& o : c->options) {
        opts.push_back({{"name", o.name}, {"value", o.value_name}, {"help", o.help}});
      }
      list.push_back({{"command", c->path},
                      {"usage", Usage(*c)},
                      {"summary", c->summary},
                      {"access", c->access == AdminAccess::kWrite ? "write" : "read"},
                      {"options", std::move(opts)},
                      {"help", c->help}});
      if (!detailed) {
        text += Indent("  " + c->path + (c->args.empty() ? "" : " " + c->args), 42) +
                c->summary + "\n";
        continue;
      }
      if (text.size() > 0) text += "\n";
      text += "usage: ferryctl " + Usage(*c) + "\n  " + c->summary + "\n";
      for (const AdminOption& o : c->options) {
        std::string left = "    --" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
        text += Indent(left, 28) + o.help + "\n";
      }
      if (!c->help.empty()) text += "\n" + c->help + (c->help.ends_with('\n') ? "" : "\n");
    }
    done(AdminResult::Value(Json{{"commands", std::move(list)}}, std::move(text)));
  };
  Status st = Register(std::move(help));
  FERRY_DCHECK(st.ok());
  (void)st;
}

AdminRegistry::~AdminRegistry() = default;

Status AdminRegistry::Register(AdminCommand command) {
  auto entry = std::make_unique<Entry>();
  entry->path = SplitWords(command.path);
  if (entry->path.empty() ||
      !std::all_of(entry->path.begin(), entry->path.end(), IsPathWord)) {
    return Status::InvalidArgument("bad command path '" + command.path + "'");
  }
  if (!command.handler) {
    return Status::InvalidArgument("command '" + command.path + "' has no handler");
  }
  auto specs = ParseArgSpecs(command.args);
  if (!specs.ok()) return specs.status();
  entry->args = std::move(specs).value();
  for (size_t i = 0; i < command.options.size(); ++i) {
    const std::string& name = command.options[i].name;
    if (!IsPathWord(name)) {
      return Status::InvalidArgument("command '" + command.path + "': bad option name '" + name +
                                     "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (command.options[j].name == name) {
        return Status::InvalidArgument("command '" + command.path + "': option --" + name +
                                       " declared twice");
      }
    }
  }
  for (const auto& other : entries_) {
    size_t n = std::min(other->path.size(), entry->path.size());
    const Entry& shorter = other->path.size() <= entry->path.size() ? *other : *entry;
    if (std::equal(entry->path.begin(), entry->path.begin() + static_cast<ptrdiff_t>(n),
                   other->path.begin()) &&
        (other->path.size() == entry->path.size() || !shorter.args.empty())) {
      return Status::InvalidArgument("command '" + command.path + "' clashes with '" +
                                     other->command.path + "'");
    }
  }
  // Normalise the path's spacing so that it can be compared as a string.
  command.path.clear();
  for (const auto& w : entry->path) command.path += (command.path.empty() ? "" : " ") + w;
  entry->command = std::move(command);
  entries_.push_back(std::move(entry));
  return Status::Ok();
}

const AdminRegistry::Entry* AdminRegistry::Match(const std::vector<std::string>& words) const {
  const Entry* best = nullptr;
  for (const auto& e : entries_) {
    if (e->path.size() <= words.size() &&
        std::equal(e->path.begin(), e->path.end(), words.begin()) &&
        (best == nullptr || e->path.size() > best->path.size())) {
      best = e.get();
    }
  }
  return best;
}

std::string AdminRegistry::UsageFor(const std::vector<std::string>& words) const {
  if (const Entry* e = Match(words)) return Usage(e->command);
  // Commands sharing the first word make a better hint than the full list.
  std::string hint;
  for (const AdminCommand* c : Commands()) {
    if (!words.empty() && SplitWords(c->path)[0] == words[0]) {
      hint += (hint.empty() ? "" : "\n") + Usage(*c);
    }
  }
  return hint;
}

Result<AdminRegistry::Call> AdminRegistry::Parse(const std::vector<std::string>& words) const {
  const Entry* found = Match(words);
  if (found == nullptr) {
    if (words.empty()) return Status::InvalidArgument("no command given; see 'ferryctl help'");
    std::string what;
    for (size_t i = 0; i < words.size() && i < 3; ++i) what += (i ? " " : "") + words[i];
    return Status::InvalidArgument("unknown command '" + what + "'; see 'ferryctl help'");
  }
  const AdminCommand& cmd = found->command;
  Call call;
  call.command = &cmd;
  call.request.command = cmd.path;
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = found->path.size(); i < words.size(); ++i) {
    const std::string& w = words[i];
    if (options_done || !w.starts_with("--")) {
      positional.push_back(w);
      continue;
    }
    if (w == "--") {
      options_done = true;
      continue;
    }
    std::string name = w.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto opt = std::find_if(cmd.options.begin(), cmd.options.end(),
                            [&](const AdminOption& o) { return o.name == name; });
    if (opt == cmd.options.end()) {
      return Status::InvalidArgument(cmd.path + ": unknown option --" + name);
    }
    if (opt->value_name.empty()) {
      if (value) return Status::InvalidArgument(cmd.path + ": --" + name + " takes no value");
      value = "";
    } else if (!value) {
      if (i + 1 >= words.size()) {
        return Status::InvalidArgument(cmd.path + ": --" + name + " needs a value (" +
                                       opt->value_name + ")");
      }
      value = words[++i];
    }
    call.request.options[name] = *value;
  }
  size_t required = 0;
  for (const ArgSpec& s : found->args) required += s.optional ? 0 : 1;
  const bool repeated = !found->args.empty() && found->args.back().repeated;
  if (positional.size() < required) {
    return Status::InvalidArgument(cmd.path + ": missing " + found->args[positional.size()].name);
  }
  if (!repeated && positional.size() > found->args.size()) {
    return Status::InvalidArgument(cmd.path + ": unexpected argument '" +
                                   positional[found->args.size()] + "'");
  }
  for (size_t i = 0; i < positional.size(); ++i) {
    const ArgSpec& spec = found->args[std::min(i, found->args.size() - 1)];
    if (spec.repeated) {
      call.request.rest.push_back(positional[i]);
      if (call.request.HasArg(spec.name)) continue;
    }
    call.request.args[spec.name] = positional[i];
  }
  return call;
}

void AdminRegistry::Run(const Call& call, AdminDone done) {
  FERRY_DCHECK(loop_.IsLoopThread());
  std::string usage = Usage(*call.command);
  Loop& loop = loop_;
  AdminDone on_loop = OnLoop<AdminResult>(
      loop, [&loop, usage, done = std::move(done)](AdminResult r) {
        if (!r.ok() && r.status().code() == Status::Code::kInvalidArgument &&
            r.usage().empty()) {
          r.set_usage(usage);
        }
        if (r.is_list()) {
          auto inner = std::make_shared<AdminPageSource>(std::move(r.source()));
          r.source() = [&loop, inner](size_t max_rows, AdminPageDone page_done) {
            (*inner)(std::max<size_t>(max_rows, 1), OnLoop(loop, std::move(page_done)));
          };
        }
        done(std::move(r));
      });
  call.command->handler(call.request, std::move(on_loop));
}

void AdminRegistry::Dispatch(const std::vector<std::string>& words, AdminDone done) {
  auto call = Parse(words);
  if (!call.ok()) {
    done(AdminResult::Error(call.status(), UsageFor(words)));
    return;
  }
  Run(call.value(), std::move(done));
}

std::vector<const AdminCommand*> AdminRegistry::Commands() const {
  std::vector<const AdminCommand*> out;
  for (const auto& e : entries_) out.push_back(&e->command);
  std::sort(out.begin(), out.end(),
            [](const AdminCommand* a, const AdminCommand* b) { return a->path < b->path; });
  return out;
}

std::string AdminRegistry::Usage(const AdminCommand& command) {
  std::string s = command.path;
  if (!command.args.empty()) s += " " + command.args;
  for (const AdminOption& o : command.options) {
    s += " [--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name) + "]";
  }
  return s;
}

}  // namespace ferry::core
