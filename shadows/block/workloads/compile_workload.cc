#include "shadows/block/workloads/compile_workload.h"

#include <algorithm>
#include <cstring>

namespace umbra::shadows::block {

namespace {

constexpr uint64_t kFileMagic = 0x454C4946414D55ull;  // "UMAFILE"

struct FileHeader {
  uint64_t magic;
  uint64_t size;
  uint64_t checksum;
  char name[64];
};

uint64_t Checksum(std::span<const std::byte> bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (std::byte b : bytes) h = (h ^ static_cast<uint8_t>(b)) * 0x100000001B3ull;
  return h;
}

}  // namespace

std::string CompileReport::ToString() const {
  return "builds=" + std::to_string(builds) + " written=" + std::to_string(files_written) +
         " read=" + std::to_string(files_read) + " errors=" + std::to_string(errors) +
         " mismatches=" + std::to_string(mismatches) + (first_problem.empty() ? "" : " first: " + first_problem);
}

CompileWorkload::CompileWorkload(Disk& disk, CompileOptions options)
    : disk_(disk), options_(options), block_size_(disk.block_size()), rng_(options.seed), version_(options.sources, 0) {
}

void CompileWorkload::Problem(uint64_t* counter, const std::string& what) {
  ++*counter;
  if (report_.first_problem.empty()) report_.first_problem = what;
}

std::vector<std::byte> CompileWorkload::SourceText(uint32_t i) const {
  // Deterministic from (seed, file, version): a rebuild can re-derive it.
  std::mt19937_64 g(options_.seed * 1000003 + i * 7919 + version_[i]);
  const uint64_t max = uint64_t{options_.slot_blocks - 1} * block_size_ / 2;  // objects are larger
  std::vector<std::byte> text(64 + g() % (max - 64));
  for (auto& b : text) b = static_cast<std::byte>("abcdefghij(){};= \n"[g() % 18]);
  return text;
}

std::vector<std::byte> CompileWorkload::Compile(std::span<const std::byte> source) {
  std::vector<std::byte> obj(source.size() + 16);
  const uint64_t sum = Checksum(source);
  std::memcpy(obj.data(), &sum, 8);
  const uint64_t n = source.size();
  std::memcpy(obj.data() + 8, &n, 8);
  for (size_t i = 0; i < source.size(); ++i) obj[16 + i] = source[i] ^ static_cast<std::byte>(i * 31 + 7);
  return obj;
}

Result<void> CompileWorkload::WriteFile(uint32_t slot, const std::string& name, std::span<const std::byte> bytes) {
  const uint64_t blocks = 1 + (bytes.size() + block_size_ - 1) / block_size_;
  if (blocks > options_.slot_blocks) return Fail(Errc::kInvalidArgument, name + " does not fit its slot");
  std::vector<std::byte> image(blocks * block_size_);
  FileHeader h{.magic = kFileMagic, .size = bytes.size(), .checksum = Checksum(bytes), .name = {}};
  std::snprintf(h.name, sizeof h.name, "%s", name.c_str());
  std::memcpy(image.data(), &h, sizeof h);
  std::memcpy(image.data() + block_size_, bytes.data(), bytes.size());
  ++report_.files_written;
  return disk_.Write(options_.first_lba + uint64_t{slot} * options_.slot_blocks, image);
}

Result<std::vector<std::byte>> CompileWorkload::ReadFile(uint32_t slot, const std::string& name) {
  std::vector<std::byte> image(uint64_t{options_.slot_blocks} * block_size_);
  UMBRA_TRY(disk_.Read(options_.first_lba + uint64_t{slot} * options_.slot_blocks, image));
  ++report_.files_read;
  FileHeader h;
  std::memcpy(&h, image.data(), sizeof h);
  h.name[sizeof h.name - 1] = '\0';
  if (h.magic != kFileMagic || name != h.name || h.size > image.size() - block_size_) {
    return Fail(Errc::kNotFound, name + ": no such file in slot " + std::to_string(slot));
  }
  std::vector<std::byte> bytes(image.begin() + block_size_,
                               image.begin() + block_size_ + static_cast<ptrdiff_t>(h.size));
  if (Checksum(bytes) != h.checksum) return Fail(Errc::kParse, name + ": checksum mismatch");
  return bytes;
}

CompileReport CompileWorkload::Build() {
  const bool first = report_.builds == 0;
  const uint32_t n = options_.sources;
  // Edit: sources change between builds, as a developer's would.
  std::vector<bool> changed(n, first);
  for (uint32_t e = 0; !first && e < options_.edits_per_build; ++e) {
    const uint32_t i = static_cast<uint32_t>(rng_() % n);
    ++version_[i];
    changed[i] = true;
  }
  auto fail = [&](const Error& e) { Problem(&report_.errors, e.ToString()); };
  for (uint32_t i = 0; i < n; ++i) {
    if (!changed[i]) continue;
    if (auto r = WriteFile(i, "src/" + std::to_string(i) + ".c", SourceText(i)); !r) fail(r.error());
  }
  if (auto r = disk_.Flush(); !r) fail(r.error());
  // Compile: every source read back, checked, turned into an object.
  for (uint32_t i = 0; i < n; ++i) {
    auto src = ReadFile(i, "src/" + std::to_string(i) + ".c");
    if (!src) {
      Problem(src.error().code == Errc::kNotFound || src.error().code == Errc::kParse ? &report_.mismatches
                                                                                      : &report_.errors,
              src.error().ToString());
      continue;
    }
    if (*src != SourceText(i)) Problem(&report_.mismatches, "src/" + std::to_string(i) + ".c is stale");
    if (auto r = WriteFile(n + i, "obj/" + std::to_string(i) + ".o", Compile(*src)); !r) fail(r.error());
  }
  if (auto r = disk_.Flush(); !r) fail(r.error());
  // Link: every object read back and checked; the output names them all.
  std::vector<std::byte> out;
  for (uint32_t i = 0; i < n; ++i) {
    auto obj = ReadFile(n + i, "obj/" + std::to_string(i) + ".o");
    if (!obj) {
      Problem(obj.error().code == Errc::kNotFound || obj.error().code == Errc::kParse ? &report_.mismatches
                                                                                      : &report_.errors,
              obj.error().ToString());
      continue;
    }
    if (*obj != Compile(SourceText(i))) Problem(&report_.mismatches, "obj/" + std::to_string(i) + ".o is stale");
    out.insert(out.end(), obj->begin(), obj->begin() + 16);
  }
  const uint64_t max = uint64_t{options_.slot_blocks - 1} * block_size_;
  out.resize(std::min<uint64_t>(out.size(), max));
  if (auto r = WriteFile(2 * n, "a.out", out); !r) fail(r.error());
  if (auto r = disk_.Flush(); !r) fail(r.error());
  ++report_.builds;
  return report_;
}

}  // namespace umbra::shadows::block
