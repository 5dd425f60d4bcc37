#include "ini_config.h"

#include <algorithm>
#include <set>

namespace ferry::testing {
namespace {

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

struct Entry {
  std::string section;
  std::string key;
  std::string value;
};

// Splits `text` into entries (and the sections it names, in order).
::testing::AssertionResult ParseIni(std::string_view text, std::vector<std::string>* sections,
                                    std::vector<Entry>* entries) {
  std::string section;
  bool in_section = false;
  int line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        return ::testing::AssertionFailure()
               << "INI line " << line_no << ": bad section header '" << std::string(line) << "'";
      }
      section = std::string(Trim(line.substr(1, line.size() - 2)));
      in_section = true;
      sections->push_back(section);
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return ::testing::AssertionFailure()
             << "INI line " << line_no << ": expected key = value, got '" << std::string(line)
             << "'";
    }
    if (!in_section) {
      return ::testing::AssertionFailure()
             << "INI line " << line_no << ": key outside any [section]";
    }
    entries->push_back(Entry{section, std::string(Trim(line.substr(0, eq))),
                             std::string(Trim(line.substr(eq + 1)))});
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

void IniConfig::Set(std::string_view section, std::string_view key, std::string_view value) {
  Erase(section, key);
  FindOrAdd(section).entries.emplace_back(std::string(key), std::string(value));
}

void IniConfig::Erase(std::string_view section, std::string_view key) {
  for (Section& s : sections_) {
    if (s.name != section) continue;
    std::erase_if(s.entries, [&](const auto& e) { return e.first == key; });
  }
}

std::optional<std::string> IniConfig::Get(std::string_view section, std::string_view key) const {
  const Section* s = Find(section);
  if (s == nullptr) return std::nullopt;
  for (auto it = s->entries.rbegin(); it != s->entries.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return std::nullopt;
}

std::vector<std::string> IniConfig::Sections() const {
  std::vector<std::string> names;
  for (const Section& s : sections_) names.push_back(s.name);
  return names;
}

::testing::AssertionResult IniConfig::Merge(std::string_view text) {
  std::vector<std::string> sections;
  std::vector<Entry> entries;
  if (auto parsed = ParseIni(text, &sections, &entries); !parsed) return parsed;
  for (const std::string& name : sections) FindOrAdd(name);
  std::set<std::pair<std::string, std::string>> replaced;
  for (Entry& e : entries) {
    if (replaced.emplace(e.section, e.key).second) Erase(e.section, e.key);
    FindOrAdd(e.section).entries.emplace_back(std::move(e.key), std::move(e.value));
  }
  return ::testing::AssertionSuccess();
}

std::string IniConfig::Render() const {
  std::string out;
  for (const Section& s : sections_) {
    if (!out.empty()) out += "\n";
    out += "[" + s.name + "]\n";
    for (const auto& [key, value] : s.entries) out += key + " = " + value + "\n";
  }
  return out;
}

IniConfig::Section& IniConfig::FindOrAdd(std::string_view name) {
  for (Section& s : sections_) {
    if (s.name == name) return s;
  }
  sections_.push_back(Section{std::string(name), {}});
  return sections_.back();
}

const IniConfig::Section* IniConfig::Find(std::string_view name) const {
  for (const Section& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace ferry::testing
