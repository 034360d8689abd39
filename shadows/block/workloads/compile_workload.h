// CompileWorkload: a "compiler" client writing and re-reading many small
// files on a block::Disk through a minimal file layout.
//
// Layout: the region is cut into fixed slots of `slot_blocks`; a file is one
// slot: a header block (magic, name, size, checksum) followed by its bytes,
// written with one Disk::Write. A build writes `sources` source files, then
// "compiles" each (reads it back, checks it, writes an object derived from
// it), then "links" (reads every object back, checks it, writes the output),
// with a flush after each phase, as a build tool's fsync would. Later builds
// edit some sources and rebuild everything.
//
//   CompileWorkload w(disk, {.sources = 64});
//   CompileReport r = w.Build();  r = w.Build();
//   EXPECT_TRUE(r.clean()) << r.ToString();
//
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "shadows/block/disk.h"

namespace umbra::shadows::block {

struct CompileOptions {
  uint64_t first_lba = 0;
  uint32_t sources = 64;
  uint32_t slot_blocks = 8;      // largest file: (slot_blocks - 1) blocks
  uint32_t edits_per_build = 8;  // sources changed before each later build
  uint64_t seed = 1;
};

struct CompileReport {
  uint64_t builds = 0;
  uint64_t files_written = 0, files_read = 0;
  uint64_t errors = 0;      // Disk calls that failed
  uint64_t mismatches = 0;  // a file read back differs from what was written
  std::string first_problem;
  bool clean() const { return errors == 0 && mismatches == 0; }
  std::string ToString() const;
};

class CompileWorkload {
 public:
  CompileWorkload(Disk& disk, CompileOptions options);

  // One full build (the first writes every source; later ones edit some).
  CompileReport Build();
  // Blocks the workload uses from first_lba on.
  uint64_t blocks_needed() const { return uint64_t{2 * options_.sources + 1} * options_.slot_blocks; }

 private:
  Result<void> WriteFile(uint32_t slot, const std::string& name, std::span<const std::byte> bytes);
  Result<std::vector<std::byte>> ReadFile(uint32_t slot, const std::string& name);
  std::vector<std::byte> SourceText(uint32_t i) const;
  static std::vector<std::byte> Compile(std::span<const std::byte> source);
  void Problem(uint64_t* counter, const std::string& what);

  Disk& disk_;  // the device; outlives the workload
  CompileOptions options_;
  uint32_t block_size_;
  std::mt19937_64 rng_;
  std::vector<uint32_t> version_;  // per source: its current edit
  CompileReport report_;
};

}  // namespace umbra::shadows::block
