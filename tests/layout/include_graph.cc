#include "tests/layout/include_graph.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

namespace umbra::layout {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHeader = "| folder | may include |";

std::string Trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// The names in backticks of one table cell: "`a`, `b`" -> {a, b}.
std::set<std::string> BacktickNames(std::string_view cell) {
  std::set<std::string> out;
  for (size_t at = cell.find('`'); at != std::string_view::npos; at = cell.find('`', at)) {
    const size_t end = cell.find('`', at + 1);
    if (end == std::string_view::npos) break;
    out.insert(std::string(cell.substr(at + 1, end - at - 1)));
    at = end + 1;
  }
  return out;
}

// "| `drivers` | `base`, `runtime` |" -> {"`drivers`", "`base`, `runtime`"}.
std::vector<std::string> Cells(std::string_view row) {
  std::vector<std::string> cells;
  std::string cur;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] == '|') {
      cells.push_back(Trim(cur));
      cur.clear();
    } else {
      cur += row[i];
    }
  }
  return cells;
}

bool IsSource(const fs::path& p) {
  static const std::set<std::string> kExt = {".h", ".hh", ".hpp", ".cc", ".cpp", ".cxx", ".inc"};
  return kExt.contains(p.extension().string());
}

// The top-level folder an include names: its first component, with the
// generated protobuf headers (umbra/*.pb.h) counted as proto's.
std::string FolderOf(const std::string& include) {
  const std::string first = include.substr(0, include.find('/'));
  return first == "umbra" ? "proto" : first;
}

bool HasSources(const fs::path& dir) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file() && IsSource(it->path())) return true;
  }
  return false;
}

// The folders of `edges` reachable from `from`, with the edge used to reach each.
std::vector<const IncludeEdge*> PathBetween(const std::multimap<std::string, const IncludeEdge*>& out,
                                            const std::string& from, const std::string& to) {
  std::map<std::string, const IncludeEdge*> came_by;
  std::vector<std::string> queue = {from};
  for (size_t i = 0; i < queue.size(); ++i) {
    auto [b, e] = out.equal_range(queue[i]);
    for (auto it = b; it != e; ++it) {
      const std::string& next = it->second->to;
      if (next == from || came_by.contains(next)) continue;
      came_by[next] = it->second;
      queue.push_back(next);
    }
  }
  if (!came_by.contains(to)) return {};
  std::vector<const IncludeEdge*> path;
  for (std::string at = to; at != from; at = came_by[at]->from) path.push_back(came_by[at]);
  std::reverse(path.begin(), path.end());
  return path;
}

// The table's own edges (allowed includes), for the check that it has no cycle.
std::vector<IncludeEdge> TableEdges(const LayerTable& table) {
  std::vector<IncludeEdge> edges;
  for (const auto& [folder, allowed] : table) {
    if (!allowed) continue;
    for (const std::string& to : *allowed) {
      edges.push_back({folder, to, "docs/architecture.md", "row " + folder + " allows " + to});
    }
  }
  return edges;
}

std::string JoinNames(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "nothing" : out;
}

}  // namespace

std::optional<LayerTable> ParseLayerTable(std::string_view markdown, std::string* error) {
  auto fail = [&](std::string message) -> std::optional<LayerTable> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  std::istringstream in{std::string(markdown)};
  std::string line;
  while (std::getline(in, line) && Trim(line) != kHeader) {}
  if (!in) return fail("no table with the header '" + std::string(kHeader) + "'");
  LayerTable table;
  while (std::getline(in, line)) {
    const std::string row = Trim(line);
    if (row.empty() || row[0] != '|') break;
    if (row.starts_with("|---") || row.starts_with("| ---")) continue;
    const std::vector<std::string> cells = Cells(row);
    const std::set<std::string> folder = BacktickNames(cells.empty() ? "" : cells[0]);
    if (cells.size() < 2 || folder.size() != 1) return fail("malformed row: " + row);
    if (cells[1] == "*") {
      table[*folder.begin()] = std::nullopt;
    } else {
      table[*folder.begin()] = BacktickNames(cells[1]);
    }
  }
  if (table.empty()) return fail("the table has no rows");
  return table;
}

std::vector<IncludeEdge> ScanIncludes(const fs::path& root, const LayerTable& table) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::vector<IncludeEdge> edges;
  for (const auto& [folder, allowed] : table) {
    if (!allowed || !fs::is_directory(root / folder)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      if (entry.is_regular_file() && IsSource(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::ifstream in(file);
      std::string line;
      std::smatch m;
      while (std::getline(in, line)) {
        if (!std::regex_search(line, m, kInclude)) continue;
        const std::string include = m[1];
        const std::string to = FolderOf(include);
        if (to == folder || !table.contains(to)) continue;
        edges.push_back({folder, to, fs::relative(file, root).string(), include});
      }
    }
  }
  return edges;
}

std::vector<std::string> FindCycles(const std::vector<IncludeEdge>& edges) {
  std::multimap<std::string, const IncludeEdge*> out;
  std::map<std::pair<std::string, std::string>, const IncludeEdge*> first_edge;
  for (const IncludeEdge& e : edges) {
    if (first_edge.emplace(std::pair(e.from, e.to), &e).second) out.emplace(e.from, &e);
  }
  std::vector<std::string> cycles;
  std::set<std::set<std::string>> seen;
  for (const auto& [key, edge] : first_edge) {
    std::vector<const IncludeEdge*> back = PathBetween(out, edge->to, edge->from);
    if (back.empty() && edge->to != edge->from) continue;
    back.insert(back.begin(), edge);
    std::set<std::string> members;
    for (const IncludeEdge* e : back) members.insert(e->from);
    if (!seen.insert(members).second) continue;
    std::string text = back.front()->from;
    for (const IncludeEdge* e : back) text += " -> " + e->to;
    for (const IncludeEdge* e : back) text += "\n  " + e->file + " includes " + e->include;
    cycles.push_back(std::move(text));
  }
  return cycles;
}

std::vector<std::string> CheckLayout(const fs::path& root, const LayerTable& table) {
  std::vector<std::string> problems;
  for (const std::string& cycle : FindCycles(TableEdges(table))) {
    problems.push_back("the table in docs/architecture.md allows a cycle: " + cycle);
  }
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.starts_with(".") || name.starts_with("build")) continue;
    if (!table.contains(name) && HasSources(entry.path())) {
      problems.push_back("folder " + name + "/ holds C++ sources but has no row in the table");
    }
  }
  const std::vector<IncludeEdge> edges = ScanIncludes(root, table);
  for (const IncludeEdge& e : edges) {
    const auto& allowed = table.at(e.from);
    if (allowed && !allowed->contains(e.to)) {
      problems.push_back(e.file + " includes " + e.include + ", but " + e.from +
                         " may include only: " + JoinNames(*allowed));
    }
  }
  for (const std::string& cycle : FindCycles(edges)) problems.push_back("include cycle: " + cycle);
  return problems;
}

}  // namespace umbra::layout
