// The include graph between top-level folders, checked against the layering
// table in docs/architecture.md ("Which folder may include which").
//
// Every C++ source under a folder of the table is read; each line
// `#include "a/b.h"` is an edge from the file's top-level folder to `a`
// (generated protobuf headers, `umbra/...`, belong to proto/). An edge the
// table does not allow is a problem, and so is every cycle between folders,
// named with one including file per edge. A folder holding C++ sources that
// has no row is a problem too, so a new folder has to take its place in the
// table. A row whose cell is `*` (tests, bench) may include anything and is
// not scanned.
//
//   auto table = ParseLayerTable(ReadFile(root / "docs/architecture.md"));
//   std::vector<std::string> problems = CheckLayout(root, *table);   // empty: fine
//
// Thread safety: pure functions over the files they are given.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace umbra::layout {

// folder -> the folders it may include. A folder mapped to nullopt may
// include anything (a `*` cell).
using LayerTable = std::map<std::string, std::optional<std::set<std::string>>>;

// The table under the header row `| folder | may include |` of a markdown
// page: one row per folder, names in backticks, `—` for none. nullopt, with
// `error` set, when there is no such table or a row is malformed.
std::optional<LayerTable> ParseLayerTable(std::string_view markdown, std::string* error = nullptr);

// One `#include "..."` line from one top-level folder into another.
struct IncludeEdge {
  std::string from;     // "drivers"
  std::string to;       // "shadows"
  std::string file;     // "drivers/disk/disk_driver.h", relative to the root
  std::string include;  // "shadows/block/block_protocol.h"
};

// Every include between two different folders of the table, from the folders
// that are scanned (not `*`).
std::vector<IncludeEdge> ScanIncludes(const std::filesystem::path& root, const LayerTable& table);

// Each cycle once, as "a -> b -> a", followed by one edge per step
// ("  a/x.h includes b/y.h").
std::vector<std::string> FindCycles(const std::vector<IncludeEdge>& edges);

// Everything wrong with the tree at `root` against `table`: edges the table
// does not allow, cycles, a cycle in the table itself, and folders with C++
// sources and no row. Empty when the layering holds.
std::vector<std::string> CheckLayout(const std::filesystem::path& root, const LayerTable& table);

}  // namespace umbra::layout
