#include "ctl/ctl_render.h"

#include <algorithm>

namespace ferry::ctl {

namespace {

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

// Prints `rows` (objects) as a table with `keys` as columns.
void PrintTable(FILE* out, const std::vector<std::string>& keys,
                const std::vector<std::string>& titles, const Json& rows, std::string_view indent) {
  std::vector<size_t> widths;
  for (const auto& t : titles) widths.push_back(t.size());
  for (const Json& row : rows) {
    for (size_t i = 0; i < keys.size(); ++i) {
      widths[i] = std::max(widths[i], Cell(row.value(keys[i], Json())).size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s(indent);
    for (size_t i = 0; i < cells.size(); ++i) {
      s += i + 1 < cells.size() ? Pad(cells[i], widths[i] + 2) : cells[i];
    }
    std::fprintf(out, "%s\n", s.c_str());
  };
  line(titles);
  for (const Json& row : rows) {
    std::vector<std::string> cells;
    for (const auto& k : keys) cells.push_back(Cell(row.value(k, Json())));
    line(cells);
  }
}

bool IsTable(const Json& v) {
  return v.is_array() && !v.empty() &&
         std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_object(); });
}

// "key/sub : value" lines for nested objects; arrays of objects are set
// aside as tables, printed after the lines.
void Flatten(const Json& v, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& lines,
             std::vector<std::pair<std::string, const Json*>>& tables) {
  for (auto it = v.begin(); it != v.end(); ++it) {
    std::string key = prefix + it.key();
    if (it->is_object()) {
      Flatten(*it, key + "/", lines, tables);
    } else if (IsTable(*it)) {
      tables.emplace_back(key, &*it);
    } else if (it->is_array()) {
      std::string joined;
      for (const Json& e : *it) joined += (joined.empty() ? "" : ", ") + Cell(e);
      lines.emplace_back(key, joined.empty() ? "-" : joined);
    } else {
      lines.emplace_back(key, Cell(*it));
    }
  }
}

}  // namespace

std::string Cell(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

bool Output::OnFrame(const Json& frame) {
  const std::string type = frame.value("type", "");
  if (complete_) return false;
  if (type == "error") {
    const Json& e = frame.value("error", Json::object());
    error_ = CtlError{e.value("kind", "internal"), e.value("message", ""), e.value("usage", "")};
    if (in_list_ && json_) std::fputs(rows_ == 0 ? "]\n" : "\n]\n", out_);
    complete_ = true;
    return true;
  }
  if (type == "value" && !in_list_) {
    if (!json_ && frame.contains("text") && frame["text"].is_string()) {
      std::fputs(frame["text"].get<std::string>().c_str(), out_);
    } else {
      PrintValue(frame.value("result", Json()));
    }
    complete_ = true;
    return true;
  }
  if (type == "list" && !in_list_) {
    in_list_ = true;
    for (const Json& c : frame.value("columns", Json::array())) {
      if (!c.is_object()) return false;
      keys_.push_back(c.value("key", ""));
      titles_.push_back(c.value("title", Upper(c.value("key", ""))));
    }
    if (json_) std::fputs("[", out_);
    return true;
  }
  if (type == "rows" && in_list_) {
    const Json& rows = frame.value("rows", Json::array());
    if (!rows.is_array()) return false;
    PrintRows(rows);
    return true;
  }
  if (type == "end" && in_list_) {
    if (json_) {
      std::fputs(rows_ == 0 ? "]\n" : "\n]\n", out_);
    } else if (widths_.empty()) {
      PrintRows(Json::array());  // the header of an empty listing
    }
    complete_ = true;
    return true;
  }
  return false;
}

void Output::PrintRows(const Json& rows) {
  if (json_) {
    for (const Json& row : rows) {
      std::fputs(rows_++ == 0 ? "\n" : ",\n", out_);
      std::fputs(row.dump(-1, ' ', false, Json::error_handler_t::replace).c_str(), out_);
    }
    std::fflush(out_);
    return;
  }
  if (widths_.empty()) {
    // The first page sets the column widths; later wider cells just push
    // their line out, so no page has to wait for the others.
    for (const auto& t : titles_) widths_.push_back(t.size());
    for (const Json& row : rows) {
      for (size_t i = 0; i < keys_.size(); ++i) {
        widths_[i] = std::max(widths_[i], Cell(row.value(keys_[i], Json())).size());
      }
    }
    std::string header;
    for (size_t i = 0; i < titles_.size(); ++i) {
      header += i + 1 < titles_.size() ? Pad(titles_[i], widths_[i] + 2) : titles_[i];
    }
    std::fprintf(out_, "%s\n", header.c_str());
  }
  for (const Json& row : rows) {
    std::string line;
    for (size_t i = 0; i < keys_.size(); ++i) {
      std::string cell = Cell(row.value(keys_[i], Json()));
      line += i + 1 < keys_.size() ? Pad(cell, widths_[i] + 2) : cell;
    }
    std::fprintf(out_, "%s\n", line.c_str());
    ++rows_;
  }
  std::fflush(out_);
}

void Output::PrintValue(const Json& result) {
  if (json_) {
    std::fprintf(out_, "%s\n", result.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
    return;
  }
  if (IsTable(result)) {
    std::vector<std::string> keys, titles;
    for (auto it = result[0].begin(); it != result[0].end(); ++it) {
      keys.push_back(it.key());
      titles.push_back(Upper(it.key()));
    }
    PrintTable(out_, keys, titles, result, "");
    return;
  }
  if (!result.is_object()) {
    std::fprintf(out_, "%s\n", Cell(result).c_str());
    return;
  }
  std::vector<std::pair<std::string, std::string>> lines;
  std::vector<std::pair<std::string, const Json*>> tables;
  Flatten(result, "", lines, tables);
  size_t width = 0;
  for (const auto& [k, v] : lines) width = std::max(width, k.size());
  for (const auto& [k, v] : lines) std::fprintf(out_, "%s : %s\n", Pad(k, width).c_str(), v.c_str());
  for (const auto& [name, rows] : tables) {
    std::fprintf(out_, "%s:\n", name.c_str());
    std::vector<std::string> keys, titles;
    for (auto it = (*rows)[0].begin(); it != (*rows)[0].end(); ++it) {
      keys.push_back(it.key());
      titles.push_back(Upper(it.key()));
    }
    PrintTable(out_, keys, titles, *rows, "  ");
  }
}

}  // namespace ferry::ctl
