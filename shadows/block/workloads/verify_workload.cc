#include "shadows/block/workloads/verify_workload.h"

#include <algorithm>
#include <cstring>

namespace umbra::shadows::block {

namespace {

constexpr char kMagic[8] = {'U', 'M', 'B', 'R', 'A', 'V', 'F', 'Y'};
constexpr uint32_t kUnknown = ~uint32_t{0};  // a failed write: either content is right
constexpr uint64_t kMaxErrors = 100;

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

void FillBlock(uint64_t lba, uint32_t gen, std::span<std::byte> out) {
  if (gen == 0) {
    std::memset(out.data(), 0, out.size());
    return;
  }
  std::memcpy(out.data(), kMagic, 8);
  std::memcpy(out.data() + 8, &lba, 8);
  std::memcpy(out.data() + 16, &gen, 4);
  std::memset(out.data() + 20, 0, 4);
  const uint64_t base = Mix(lba * 0x100000001B3ull ^ gen);
  for (size_t i = 24; i + 8 <= out.size(); i += 8) {
    const uint64_t v = Mix(base + i);
    std::memcpy(out.data() + i, &v, 8);
  }
}

std::string VerifyReport::ToString() const {
  return "ops=" + std::to_string(ops) + " reads=" + std::to_string(reads) + " writes=" + std::to_string(writes) +
         " flushes=" + std::to_string(flushes) + " verified=" + std::to_string(blocks_verified) +
         " errors=" + std::to_string(errors) + " lost=" + std::to_string(lost) +
         " misdirected=" + std::to_string(misdirected) + " corrupt=" + std::to_string(corrupt) +
         (first_problem.empty() ? "" : " first: " + first_problem);
}

VerifyWorkload::VerifyWorkload(Disk& disk, VerifyOptions options)
    : disk_(disk), options_(options), block_size_(disk.block_size()), rng_(options.seed), gen_(options.blocks, 0),
      in_flight_(options.blocks, 0), slots_(std::max<uint32_t>(1, options.queue_depth)) {
  options_.max_blocks = std::clamp<uint32_t>(options_.max_blocks, 1, std::max<uint32_t>(1, disk.max_io_blocks()));
  buffers_.resize(slots_.size() * options_.max_blocks * block_size_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].io.data = buffers_.data() + i * options_.max_blocks * block_size_;
  }
}

void VerifyWorkload::Problem(uint64_t* counter, const std::string& what) {
  ++*counter;
  if (report_.first_problem.empty()) report_.first_problem = what;
}

void VerifyWorkload::ExpectedBlock(uint64_t lba, std::span<std::byte> out) const {
  FillBlock(lba, gen_[lba - options_.first_lba], out);
}

bool VerifyWorkload::Busy(uint64_t rel, uint32_t blocks) const {
  for (uint32_t i = 0; i < blocks; ++i) {
    if (in_flight_[rel + i] != 0) return true;
  }
  return false;
}

void VerifyWorkload::Check(uint64_t lba, uint32_t expected, const std::byte* data) {
  ++report_.blocks_verified;
  if (expected == kUnknown) return;
  const std::string where = "block " + std::to_string(lba) + " expected generation " + std::to_string(expected);
  uint64_t got_lba = 0;
  uint32_t got_gen = 0;
  std::memcpy(&got_lba, data + 8, 8);
  std::memcpy(&got_gen, data + 16, 4);
  const bool zero = std::all_of(data, data + block_size_, [](std::byte b) { return b == std::byte{0}; });
  if (zero) {
    if (expected != 0) Problem(&report_.lost, where + ", read zeros");
    return;
  }
  if (std::memcmp(data, kMagic, 8) != 0) return Problem(&report_.corrupt, where + ", no header");
  if (got_lba != lba) return Problem(&report_.misdirected, where + ", holds block " + std::to_string(got_lba));
  if (got_gen < expected) {
    return Problem(&report_.lost, where + ", holds older generation " + std::to_string(got_gen));
  }
  if (got_gen > expected) {
    return Problem(&report_.corrupt, where + ", holds unacknowledged generation " + std::to_string(got_gen));
  }
  std::vector<std::byte> want(block_size_);
  FillBlock(lba, expected, want);
  if (std::memcmp(want.data(), data, block_size_) != 0) Problem(&report_.corrupt, where + ", damaged bytes");
}

void VerifyWorkload::Start(Slot& slot, uint64_t user) {
  Io& io = slot.io;
  io.user_data = user;
  slot.busy = true;
  ++report_.ops;
  if (io.op == umbra::block::kFlush) {
    ++report_.flushes;
    return;
  }
  const uint64_t rel = io.lba - options_.first_lba;
  for (uint32_t i = 0; i < io.blocks; ++i) in_flight_[rel + i] = 1;
  if (io.op == umbra::block::kRead) {
    ++report_.reads;
    return;
  }
  ++report_.writes;
  slot.gens.resize(io.blocks);
  for (uint32_t i = 0; i < io.blocks; ++i) {
    // Generations only grow: the next one is above anything ever written.
    const uint32_t last = gen_[rel + i] == kUnknown ? 0 : gen_[rel + i];
    slot.gens[i] = std::max<uint32_t>(last, static_cast<uint32_t>(report_.ops)) + 1;
    FillBlock(io.lba + i, slot.gens[i], {io.data + uint64_t{i} * block_size_, block_size_});
  }
}

void VerifyWorkload::Finish(Slot& slot, const IoDone& done) {
  slot.busy = false;
  const Io& io = slot.io;
  if (done.status != 0) {
    Problem(&report_.errors,
            std::string(umbra::block::OpName(io.op)) + " failed: " + ErrcName(static_cast<Errc>(done.status)));
  }
  if (io.op == umbra::block::kFlush) return;
  const uint64_t rel = io.lba - options_.first_lba;
  for (uint32_t i = 0; i < io.blocks; ++i) {
    in_flight_[rel + i] = 0;
    if (io.op == umbra::block::kRead) {
      if (done.status == 0) Check(io.lba + i, gen_[rel + i], io.data + uint64_t{i} * block_size_);
    } else {
      gen_[rel + i] = done.status == 0 ? slot.gens[i] : kUnknown;
    }
  }
}

VerifyReport VerifyWorkload::Run(uint64_t ops) {
  std::uniform_real_distribution<double> coin(0, 1);
  uint64_t issued = 0;
  size_t busy = 0;
  std::vector<IoDone> done(slots_.size());
  while ((issued < ops && report_.errors < kMaxErrors) || busy > 0) {
    for (size_t s = 0; s < slots_.size() && issued < ops && report_.errors < kMaxErrors; ++s) {
      Slot& slot = slots_[s];
      if (slot.busy) continue;
      const double c = coin(rng_);
      Io& io = slot.io;
      io.op = c < options_.flush_fraction                            ? umbra::block::kFlush
              : c < options_.flush_fraction + options_.read_fraction ? umbra::block::kRead
              : coin(rng_) < options_.fua_fraction                   ? umbra::block::kWriteFua
                                                                     : umbra::block::kWrite;
      io.blocks =
          io.op == umbra::block::kFlush ? 0 : std::uniform_int_distribution<uint32_t>(1, options_.max_blocks)(rng_);
      if (io.op != umbra::block::kFlush) {
        io.blocks = static_cast<uint32_t>(std::min<uint64_t>(io.blocks, options_.blocks));
        bool found = false;
        for (int attempt = 0; attempt < 16 && !found; ++attempt) {
          const uint64_t rel = std::uniform_int_distribution<uint64_t>(0, options_.blocks - io.blocks)(rng_);
          io.lba = options_.first_lba + rel;
          found = !Busy(rel, io.blocks);
        }
        if (!found) break;
      }
      Start(slot, s);
      auto r = disk_.Submit(io, options_.io_timeout_ns);
      ++issued;
      if (!r) {
        Finish(slot, IoDone{.user_data = s, .status = static_cast<int32_t>(r.error().code)});
        if (report_.first_problem.find(r.error().message) == std::string::npos && report_.errors == 1) {
          report_.first_problem += " (" + r.error().message + ")";
        }
        continue;
      }
      ++busy;
    }
    if (busy == 0) continue;
    auto n = disk_.Reap(done, 1, options_.io_timeout_ns);
    if (!n) {
      Problem(&report_.errors, "reap: " + n.error().ToString());
      break;
    }
    for (size_t i = 0; i < *n; ++i) {
      Finish(slots_[done[i].user_data], done[i]);
      --busy;
    }
  }
  return report_;
}

VerifyReport VerifyWorkload::Verify() {
  const uint32_t chunk = std::max<uint32_t>(1, disk_.max_io_blocks());
  std::vector<std::byte> buf(uint64_t{chunk} * block_size_);
  for (uint64_t rel = 0; rel < options_.blocks; rel += chunk) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(chunk, options_.blocks - rel));
    auto r = disk_.Read(options_.first_lba + rel, {buf.data(), uint64_t{n} * block_size_}, options_.io_timeout_ns);
    if (!r) {
      Problem(&report_.errors, "verify read: " + r.error().ToString());
      continue;
    }
    for (uint32_t i = 0; i < n; ++i) {
      Check(options_.first_lba + rel + i, gen_[rel + i], buf.data() + uint64_t{i} * block_size_);
    }
  }
  return report_;
}

}  // namespace umbra::shadows::block
