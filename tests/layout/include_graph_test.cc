// The layering of the top-level folders: the repository against the table in
// docs/architecture.md, and the checker itself on small trees made here, with
// a cycle, a forbidden direction and a folder without a row planted in them.
#include "tests/layout/include_graph.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace umbra::layout {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// A temporary tree of files, removed at the end of the test.
class FakeTree {
 public:
  FakeTree() {
    std::string pattern = (fs::temp_directory_path() / "umbra-layout-XXXXXX").string();
    root_ = mkdtemp(pattern.data());
  }
  ~FakeTree() { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
};

constexpr std::string_view kTable = R"(Some text.

| folder | may include |
|---|---|
| `base` | — |
| `drivers` | `base` |
| `shadows` | `base`, `drivers` |
| `tests` | * |

After the table.
)";

LayerTable Table(std::string_view markdown = kTable) {
  std::string error;
  auto table = ParseLayerTable(markdown, &error);
  EXPECT_TRUE(table.has_value()) << error;
  return table.value_or(LayerTable{});
}

TEST(LayerTable, ParsesRowsNamesAndStars) {
  LayerTable t = Table();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t.at("base"), std::set<std::string>{});
  EXPECT_EQ(t.at("shadows"), (std::set<std::string>{"base", "drivers"}));
  EXPECT_FALSE(t.at("tests").has_value());
}

TEST(LayerTable, APageWithoutTheTableIsRefused) {
  std::string error;
  EXPECT_FALSE(ParseLayerTable("| a | b |\n|---|---|\n", &error).has_value());
  EXPECT_NE(error.find("folder | may include"), std::string::npos) << error;
}

TEST(IncludeGraph, AllowedIncludesPass) {
  FakeTree tree;
  tree.Write("base/result.h", "#pragma once\n#include <string>\n");
  tree.Write("drivers/d.cc", "#include \"drivers/d.h\"\n#include \"base/result.h\"\n");
  tree.Write("shadows/s.cc", "#include \"drivers/d.h\"\n// #include \"nowhere/x.h\" in a comment\n");
  tree.Write("tests/t.cc", "#include \"shadows/s.h\"\n");
  EXPECT_EQ(Joined(CheckLayout(tree.root(), Table())), "");
}

TEST(IncludeGraph, APlantedCycleIsNamedWithTheIncludingFiles) {
  FakeTree tree;
  tree.Write("drivers/disk/disk.h", "#include \"shadows/block/protocol.h\"\n");
  tree.Write("shadows/block/shadow.cc", "#include \"drivers/disk/disk.h\"\n");
  const std::string problems = Joined(CheckLayout(tree.root(), Table()));
  EXPECT_NE(problems.find("include cycle: drivers -> shadows -> drivers"), std::string::npos) << problems;
  EXPECT_NE(problems.find("drivers/disk/disk.h includes shadows/block/protocol.h"), std::string::npos) << problems;
  EXPECT_NE(problems.find("shadows/block/shadow.cc includes drivers/disk/disk.h"), std::string::npos) << problems;
}

TEST(IncludeGraph, ALongerCycleIsFoundOnce) {
  FakeTree tree;
  const std::string table = "| folder | may include |\n|---|---|\n| `a` | `b` |\n| `b` | `c` |\n| `c` | — |\n";
  tree.Write("a/x.h", "#include \"b/y.h\"\n");
  tree.Write("b/y.h", "#include \"c/z.h\"\n");
  tree.Write("c/z.h", "#include \"a/x.h\"\n");
  const std::vector<IncludeEdge> edges = ScanIncludes(tree.root(), Table(table));
  const std::vector<std::string> cycles = FindCycles(edges);
  ASSERT_EQ(cycles.size(), 1u) << Joined(cycles);
  EXPECT_EQ(cycles[0].substr(0, cycles[0].find('\n')), "a -> b -> c -> a");
  EXPECT_NE(cycles[0].find("c/z.h includes a/x.h"), std::string::npos) << cycles[0];
}

TEST(IncludeGraph, AForbiddenDirectionIsNamed) {
  FakeTree tree;
  tree.Write("base/clock.h", "#include \"drivers/sdk/driver.h\"\n");
  const std::string problems = Joined(CheckLayout(tree.root(), Table()));
  EXPECT_NE(problems.find("base/clock.h includes drivers/sdk/driver.h, but base may include only: nothing"),
            std::string::npos)
      << problems;
}

TEST(IncludeGraph, GeneratedProtoHeadersBelongToProto) {
  FakeTree tree;
  tree.Write("base/x.cc", "#include \"umbra/control.pb.h\"\n");
  const std::string table = "| folder | may include |\n|---|---|\n| `base` | — |\n| `proto` | — |\n";
  const std::string problems = Joined(CheckLayout(tree.root(), Table(table)));
  EXPECT_NE(problems.find("base/x.cc includes umbra/control.pb.h, but base may include only"), std::string::npos)
      << problems;
}

TEST(IncludeGraph, AFolderWithSourcesNeedsARow) {
  FakeTree tree;
  tree.Write("gadgets/g.cc", "int x;\n");
  tree.Write("notes/readme.md", "no sources here\n");
  const std::string problems = Joined(CheckLayout(tree.root(), Table()));
  EXPECT_NE(problems.find("folder gadgets/ holds C++ sources but has no row"), std::string::npos) << problems;
  EXPECT_EQ(problems.find("notes"), std::string::npos) << problems;
}

TEST(IncludeGraph, ATableThatAllowsACycleIsRefused) {
  FakeTree tree;
  const std::string table = "| folder | may include |\n|---|---|\n| `a` | `b` |\n| `b` | `a` |\n";
  const std::string problems = Joined(CheckLayout(tree.root(), Table(table)));
  EXPECT_NE(problems.find("the table in docs/architecture.md allows a cycle: a -> b -> a"), std::string::npos)
      << problems;
}

// The repository itself: every folder has a row, no include goes against the
// table, and no cycle exists between top-level folders.
TEST(RepositoryLayout, FollowsTheTableInArchitectureMd) {
  const fs::path root = UMBRA_SOURCE_DIR;
  std::string error;
  auto table = ParseLayerTable(ReadFile(root / "docs/architecture.md"), &error);
  ASSERT_TRUE(table.has_value()) << error;
  EXPECT_TRUE(table->contains("drivers") && table->contains("shadows") && table->contains("protocols"));
  EXPECT_FALSE(table->at("drivers")->contains("shadows")) << "a driver never includes shadows/";
  EXPECT_EQ(Joined(CheckLayout(root, *table)), "");
}

}  // namespace
}  // namespace umbra::layout
