// The raw layer of core/config.h: INI text and environment overrides into a
// RawConfig.
//
// inih does the key/value splitting, trimming and inline comments. The
// system inih is built without INI_HANDLER_LINENO, so we feed it through our
// own line reader, which counts lines and also takes over what inih would
// otherwise do silently or only report once:
//  * section headers are tracked here (inih truncates names to 50 bytes), and
//    inih is handed an empty line in their place;
//  * leading whitespace is stripped, so an indented key is never glued to
//    the previous value as a multi-line continuation;
//  * malformed and over-long lines are reported here with their number (inih
//    returns only the first bad line, and splits long lines in two).
#include <ini.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/config.h"
#include "core/config_internal.h"

namespace ferry::core {

const ConfigValue* RawSection::Find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

const RawSection* RawConfig::FindSection(std::string_view name) const {
  for (const auto& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const ConfigValue* RawConfig::Find(std::string_view section, std::string_view key) const {
  const RawSection* s = FindSection(section);
  return s ? s->Find(key) : nullptr;
}

std::vector<const RawSection*> RawConfig::SectionsWithPrefix(std::string_view prefix) const {
  std::vector<const RawSection*> out;
  for (const auto& s : sections_) {
    if (s.name.starts_with(prefix)) out.push_back(&s);
  }
  return out;
}

RawSection& RawConfig::AddSection(std::string_view name, std::string_view origin, int line) {
  for (auto& s : sections_) {
    if (s.name == name) return s;
  }
  sections_.push_back(RawSection{std::string(name), std::string(origin), line, {}});
  return sections_.back();
}

void RawConfig::Set(std::string_view section, std::string_view key, ConfigValue value) {
  RawSection& s = AddSection(section, value.origin, value.line);
  for (auto& [k, v] : s.entries) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  s.entries.emplace_back(std::string(key), std::move(value));
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

struct ParseState {
  std::string_view text;
  size_t pos = 0;
  std::string name;
  int line = 0;
  std::string section;  // current section, as tracked by Reader()
  bool skip_section = false;  // a rejected duplicate: its keys are ignored
  RawConfig raw;
  ConfigErrors* errors;

  std::string Origin(int at) const { return name + ":" + std::to_string(at); }
  void Fail(std::string_view message) {
    errors->Add(Origin(line), line, message);
  }
};

// Handles a "[section]" line; returns false if it is malformed.
bool ReadSectionHeader(ParseState& st, std::string_view line) {
  size_t close = line.find(']');
  if (close == std::string_view::npos) {
    st.Fail("expected ']' to close the section name");
    return false;
  }
  std::string_view rest = Trim(line.substr(close + 1));
  if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
    st.Fail("unexpected text after ']'");
    return false;
  }
  std::string_view name = Trim(line.substr(1, close - 1));
  if (name.empty()) {
    st.Fail("empty section name");
    return false;
  }
  st.section = std::string(name);
  // A second [name] would silently merge into the first, so that a key
  // meant for one listener or bridge could change another: refuse it.
  if (const RawSection* first = st.raw.FindSection(name)) {
    st.Fail("duplicate section [" + std::string(name) + "] (first at line " +
            std::to_string(first->line) + ")");
    st.skip_section = true;
    return false;
  }
  st.skip_section = false;
  st.raw.AddSection(name, st.Origin(st.line), st.line);
  return true;
}

// Hands inih one line at a time (fgets contract: at most num-1 bytes,
// NUL-terminated), replacing every line it handles itself with "\n".
char* Reader(char* str, int num, void* stream) {
  auto& st = *static_cast<ParseState*>(stream);
  if (st.pos >= st.text.size()) return nullptr;
  size_t end = st.text.find('\n', st.pos);
  if (end == std::string_view::npos) end = st.text.size();
  std::string_view line = st.text.substr(st.pos, end - st.pos);
  st.pos = end + 1;
  ++st.line;
  if (st.line == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line = Trim(line);

  std::string_view handed = "";
  if (line.find('\0') != std::string_view::npos) {
    st.Fail("line contains a NUL byte");
  } else if (line.empty() || line.front() == '#' || line.front() == ';') {
    // Comment or blank.
  } else if (line.front() == '[') {
    ReadSectionHeader(st, line);
  } else if (line.find_first_of("=:") == std::string_view::npos) {
    st.Fail("expected '[section]', 'key = value' or a comment");
  } else if (num < 2 || line.size() > static_cast<size_t>(num) - 2) {
    st.Fail("line longer than " + std::to_string(num - 2) + " characters");
  } else if (st.section.empty()) {
    st.Fail("key outside any section");
  } else if (!st.skip_section) {
    handed = line;
  }
  std::memcpy(str, handed.data(), handed.size());
  str[handed.size()] = '\n';
  str[handed.size() + 1] = '\0';
  return str;
}

std::string_view Unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return v.substr(1, v.size() - 2);
  return v;
}

int Handler(void* user, const char* /*inih_section*/, const char* key, const char* value) {
  auto& st = *static_cast<ParseState*>(user);
  std::string_view k = key ? key : "";
  if (k.empty()) {
    st.Fail("missing key before '='");
    return 1;
  }
  if (const ConfigValue* prev = st.raw.Find(st.section, k)) {
    st.Fail("[" + st.section + "] duplicate key '" + std::string(k) + "' (first set at line " +
            std::to_string(prev->line) + ")");
    return 1;
  }
  st.raw.Set(st.section, k,
             ConfigValue{std::string(Unquote(value ? value : "")), st.Origin(st.line), st.line});
  return 1;
}

bool IsNonKeyVariable(std::string_view var) {
  return std::find(std::begin(kNonKeyEnvironmentVariables),
                   std::end(kNonKeyEnvironmentVariables), var) !=
         std::end(kNonKeyEnvironmentVariables);
}

// The existing section or key whose name equals `want` ignoring case, so that
// FERRY_LISTENER__TCP__EDGE1__BIND reaches [listener.tcp.Edge1].
std::string Resolve(const std::vector<std::string>& names, std::string want) {
  for (const auto& n : names) {
    if (EqualsIgnoreCase(n, want)) return n;
  }
  return want;
}

void ApplyOverride(RawConfig& raw, std::string_view var, std::string_view value,
                   ConfigErrors& errors) {
  std::string_view rest = var.substr(std::strlen("FERRY_"));
  size_t split = rest.rfind("__");
  if (split == std::string_view::npos || split == 0 || split + 2 == rest.size()) {
    errors.Add(var, 0, "not a config override: expected FERRY_<SECTION>__<KEY>");
    return;
  }
  std::string section;
  std::string_view s = rest.substr(0, split);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.compare(i, 2, "__") == 0) {
      section += '.';
      ++i;
    } else {
      section += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    }
  }
  std::vector<std::string> names;
  for (const auto& sec : raw.sections()) names.push_back(sec.name);
  section = Resolve(names, section);
  names.clear();
  if (const RawSection* sec = raw.FindSection(section)) {
    for (const auto& [k, v] : sec->entries) names.push_back(k);
  }
  std::string key = Resolve(names, Lower(rest.substr(split + 2)));
  raw.Set(section, key, ConfigValue{std::string(value), std::string(var), 0});
}

void ApplyEnvironment(RawConfig& raw, char** envp, ConfigErrors& errors) {
  if (envp == nullptr) return;
  for (char** e = envp; *e != nullptr; ++e) {
    std::string_view entry = *e;
    if (!entry.starts_with("FERRY_")) continue;
    size_t eq = entry.find('=');
    std::string_view var = entry.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : entry.substr(eq + 1);
    if (IsNonKeyVariable(var)) continue;
    ApplyOverride(raw, var, value, errors);
  }
}

}  // namespace

namespace internal {

RawConfig ParseRaw(std::string_view text, std::string_view name, char** envp,
                   ConfigErrors& errors) {
  ParseState st;
  st.text = text;
  st.name = std::string(name);
  st.errors = &errors;
  int rc = ini_parse_stream(&Reader, &st, &Handler, &st);
  if (rc > 0) {
    // A key line the reader let through but inih refused, e.g. "a ; b = c"
    // where the inline comment hides the '='.
    errors.Add(st.Origin(rc), rc, "expected 'key = value'");
  } else if (rc < 0) {
    errors.Add(name, 0, "cannot parse (out of memory)");
  }
  ApplyEnvironment(st.raw, envp, errors);
  return std::move(st.raw);
}

Result<std::string> ReadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return Status::IoError(path + ": cannot read: " + std::strerror(err));
  return text;
}

}  // namespace internal

Result<RawConfig> ParseConfigString(std::string_view text, std::string_view name,
                                    char** envp) {
  ConfigErrors errors;
  RawConfig raw = internal::ParseRaw(text, name, envp, errors);
  if (!errors.empty()) return errors.ToStatus();
  return raw;
}

Result<RawConfig> ParseConfigFile(const std::string& path, char** envp) {
  Result<std::string> text = internal::ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseConfigString(text.value(), path, envp);
}

}  // namespace ferry::core
