// VerifyWorkload: random reads, writes and flushes that check every byte.
//
// Every block the workload writes carries its own address, a write
// generation and a pattern derived from both, so a read tells exactly what
// went wrong: a block from the wrong address (misdirected), an older
// generation than the last acknowledged write (lost write / stale read), or
// damaged bytes (corrupt). The model is updated only when a write is
// acknowledged; at most one request per block is in flight, so every read has
// one right answer. Run() keeps `queue_depth` requests in flight through the
// asynchronous Disk API; Verify() reads the whole region back.
//
//   VerifyWorkload w(disk, {.first_lba = 0, .blocks = 1024, .seed = 7});
//   VerifyReport r = w.Run(10'000);   // 10k operations
//   r = w.Verify();                   // every acknowledged write read back
//   EXPECT_TRUE(r.clean()) << r.ToString();
//
// Thread safety: one thread runs a workload; the Disk may be shared.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "shadows/block/disk.h"

namespace umbra::shadows::block {

struct VerifyOptions {
  uint64_t first_lba = 0;
  uint64_t blocks = 1024;    // the region the workload owns
  uint32_t queue_depth = 8;  // requests kept in flight
  uint32_t max_blocks = 4;   // largest request, in blocks
  double read_fraction = 0.4;
  double flush_fraction = 0.03;
  double fua_fraction = 0.05;
  uint64_t seed = 1;
  int64_t io_timeout_ns = 30'000'000'000;
};

struct VerifyReport {
  uint64_t ops = 0, reads = 0, writes = 0, flushes = 0;
  uint64_t blocks_verified = 0;
  uint64_t errors = 0;       // requests that completed with an error (the client saw a failure)
  uint64_t lost = 0;         // a block older than its last acknowledged write
  uint64_t misdirected = 0;  // a block carrying another address
  uint64_t corrupt = 0;      // damaged bytes
  std::string first_problem;
  bool clean() const { return errors == 0 && lost == 0 && misdirected == 0 && corrupt == 0; }
  std::string ToString() const;
};

class VerifyWorkload {
 public:
  VerifyWorkload(Disk& disk, VerifyOptions options);

  // `ops` random operations; stops early after 100 errors.
  VerifyReport Run(uint64_t ops);
  // Reads every block of the region and checks it against the model.
  VerifyReport Verify();
  // What the model says block `lba` must hold (for checks against an image).
  void ExpectedBlock(uint64_t lba, std::span<std::byte> out) const;
  const VerifyReport& report() const { return report_; }

 private:
  struct Slot {
    Io io;
    std::vector<uint32_t> gens;  // the generation each block is written with
    bool busy = false;
  };

  bool Busy(uint64_t lba, uint32_t blocks) const;
  void Start(Slot& slot, uint64_t user);
  void Finish(Slot& slot, const IoDone& done);
  void Check(uint64_t lba, uint32_t expected_gen, const std::byte* data);
  void Problem(uint64_t* counter, const std::string& what);

  Disk& disk_;  // the device under test; outlives the workload
  VerifyOptions options_;
  uint32_t block_size_;
  std::mt19937_64 rng_;
  std::vector<uint32_t> gen_;       // last acknowledged generation per block (0: never written)
  std::vector<uint8_t> in_flight_;  // a request on this block is outstanding
  std::vector<Slot> slots_;
  std::vector<std::byte> buffers_;
  VerifyReport report_;
};

// The content of block `lba` at write generation `gen` (gen 0: zeros).
void FillBlock(uint64_t lba, uint32_t gen, std::span<std::byte> out);

}  // namespace umbra::shadows::block
