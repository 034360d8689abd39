#include "drivers/disk/disk_driver.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "drivers/sdk/await.h"
#include "drivers/sdk/probe.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"

namespace umbra::drivers::disk {

namespace hwd = hw::disk;
using faultinject::SiteFault;

namespace {

constexpr int64_t kDeviceTimeoutNs = 500'000'000;  // enable, identify, cache switch
constexpr uint32_t kDefaultDepth = 32;

// Blocks the calling fiber until `done()` or the timeout (polling briefly
// first: sdk::AwaitDevice); false on timeout.
template <class Pred>
bool WaitFor(sdk::Context& ctx, Pred done) {
  return sdk::AwaitDevice(ctx, done, kDeviceTimeoutNs, "device timeout").has_value();
}

// The completion status a device status becomes.
Errc StatusErrc(hwd::Status s) {
  switch (s) {
    case hwd::Status::kOk: return Errc::kInternal;  // not an error; never asked
    case hwd::Status::kIoError: return Errc::kIo;
    case hwd::Status::kNoDevice: return Errc::kNoDevice;
    case hwd::Status::kLbaOutOfRange:
    case hwd::Status::kInvalidBlockCount: return Errc::kInvalidArgument;
    case hwd::Status::kInvalidOpcode:
    case hwd::Status::kInvalidTag:
    case hwd::Status::kDuplicateTag:
    case hwd::Status::kInvalidBuffer:
    case hwd::Status::kMisaligned: return Errc::kProtocol;  // the driver programmed it wrong
  }
  return Errc::kProtocol;
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Result<void> DiskDriver::Probe(sdk::Context& ctx) {
  const auto dev = UMBRA_TRY(sdk::MapRegisters<hwd::DiskRegisters>(ctx, {.device = hwd::kCompatible,
                                                                         .sites = kDiskSites,
                                                                         .probe_site = "disk.probe",
                                                                         .magic = hwd::kMagic,
                                                                         .version = hwd::kVersion}));
  regs_ = dev.regs;
  dma_ = dev.dma;
  dma_size_ = dev.dma_size;
  if (auto it = ctx.device().settings.find("queue_depth"); it != ctx.device().settings.end()) {
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec != std::errc() || end != it->second.data() + it->second.size() || !IsPowerOfTwo(v)) {
      return umbra::Fail(Errc::kInvalidArgument, "queue_depth '" + it->second + "' is not a power of two");
    }
    hw_depth_ = v;
  } else {
    hw_depth_ = kDefaultDepth;
  }
  std::string payloads = "in-place";
  if (auto it = ctx.device().settings.find("payloads"); it != ctx.device().settings.end()) payloads = it->second;
  if (payloads != "in-place" && payloads != "bounce") {
    return umbra::Fail(Errc::kInvalidArgument, "payloads '" + payloads + "' is not in-place or bounce");
  }
  // The host mapped memory of the data pool's size for the device: the pool.
  in_place_ = payloads == "in-place" && ctx.pool_size() > 0 &&
              regs_->host_memory_size.load(std::memory_order_acquire) == ctx.pool_size();
  hw_depth_ =
      std::clamp(hw_depth_, hwd::kMinQueueDepth, std::min(regs_->max_queue_depth.load(), regs_->tag_limit.load()));
  soft_depth_ = hw_depth_;
  UMBRA_TRY(EnableQueues(ctx));
  UMBRA_TRY(Identify(ctx));
  regs_->int_cause.store(0);
  regs_->int_mask.store(0);  // unmasked; nothing is outstanding, so no cause is pending
  ctx.Log(sdk::LogLevel::kDebug,
          "disk probed, instance " + std::to_string(ctx.device().instance) + ": " + block::EncodeGeometry(geometry_));
  return {};
}

Result<void> DiskDriver::EnableQueues(sdk::Context& ctx) {
  const uint32_t block_size = regs_->block_size.load();
  cq_offset_ = uint64_t{hw_depth_} * sizeof(hwd::DiskCommand);
  data_offset_ = cq_offset_ + uint64_t{hw_depth_} * sizeof(hwd::DiskCompletion);
  data_offset_ = (data_offset_ + 4095) & ~uint64_t{4095};
  if (dma_size_ < data_offset_ + uint64_t{hw_depth_} * block_size) {
    return umbra::Fail(Errc::kNoDevice, "disk DMA pool too small for " + std::to_string(hw_depth_) + " tags");
  }
  slot_bytes_ = (dma_size_ - data_offset_) / hw_depth_;
  slot_bytes_ = std::min<uint64_t>(slot_bytes_ - slot_bytes_ % block_size,
                                   uint64_t{regs_->max_transfer_blocks.load()} * block_size);
  tags_.assign(hw_depth_, Tag{});
  free_tags_.clear();
  for (uint32_t t = hw_depth_; t > 0; --t) free_tags_.push_back(static_cast<uint16_t>(t - 1));
  sq_tail_ = cq_head_ = 0;
  outstanding_ = 0;
  // A disable and an enable in one device poll would look like no change:
  // let the device see the disable first.
  regs_->int_mask.store(~0u);
  regs_->control.store(0);
  ctx.RingDoorbell();
  if (!WaitFor(ctx, [&] { return (regs_->status.load() & hwd::kStatusReady) == 0; })) {
    return umbra::Fail(Errc::kTimeout, "disk did not stop its queues");
  }
  regs_->sq_offset.store(0);
  regs_->cq_offset.store(cq_offset_);
  regs_->queue_depth.store(hw_depth_);
  regs_->sq_tail.store(0);
  regs_->cq_head.store(0);
  regs_->control.store(hwd::kControlEnable);
  ctx.RingDoorbell();
  if (!WaitFor(ctx, [&] { return (regs_->status.load() & (hwd::kStatusReady | hwd::kStatusConfigError)) != 0; })) {
    return umbra::Fail(Errc::kTimeout, "disk did not enable its queues");
  }
  if ((regs_->status.load() & hwd::kStatusReady) == 0) {
    return umbra::Fail(Errc::kNoDevice, "disk refused the queue configuration");
  }
  return {};
}

// A real kIdentify through the queue, polled (interrupts are still masked).
Result<void> DiskDriver::Identify(sdk::Context& ctx) {
  hwd::DiskCommand c{};
  c.opcode = static_cast<uint8_t>(hwd::Opcode::kIdentify);
  c.tag = 0;
  c.buffer_offset = data_offset_;
  c.buffer_length = sizeof(hwd::DiskIdentify);
  std::memcpy(dma_, &c, sizeof c);
  regs_->sq_tail.store(++sq_tail_, std::memory_order_seq_cst);
  ctx.RingDoorbell();
  if (!WaitFor(ctx, [&] { return regs_->cq_tail.load(std::memory_order_acquire) != cq_head_; })) {
    return umbra::Fail(Errc::kTimeout, "disk did not answer identify");
  }
  hwd::DiskCompletion done;
  std::memcpy(&done, dma_ + cq_offset_, sizeof done);
  regs_->cq_head.store(++cq_head_, std::memory_order_seq_cst);
  if (done.status != static_cast<uint16_t>(hwd::Status::kOk)) {
    return umbra::Fail(Errc::kNoDevice, "identify failed with device status " + std::to_string(done.status));
  }
  hwd::DiskIdentify id;
  std::memcpy(&id, Bounce(0), sizeof id);
  if (id.magic != hwd::kMagic || (id.block_size != 512 && id.block_size != 4096) || id.capacity_blocks == 0) {
    return umbra::Fail(Errc::kNoDevice, "identify returned a malformed answer");
  }
  geometry_ = block::Geometry{.capacity_blocks = id.capacity_blocks,
                              .block_size = id.block_size,
                              .max_io_bytes = static_cast<uint32_t>(slot_bytes_),
                              .max_queue_depth = hw_depth_,
                              .write_cache = id.write_cache_enabled != 0};
  return {};
}

void DiskDriver::Stop(sdk::Context&) {
  if (regs_ != nullptr) regs_->control.store(0);
}

void DiskDriver::Fail(sdk::Context& ctx, const ipc::Descriptor& req, Errc code) {
  ++errors_;
  ctx.Complete(req, static_cast<int32_t>(code), 0, req.arg);
}

void DiskDriver::OnRequest(sdk::Context& ctx, const ipc::Descriptor& req) {
  const uint32_t bs = geometry_.block_size;
  switch (req.op) {
    case block::kRead:
    case block::kWrite:
    case block::kWriteFua:
      if (req.length == 0 || req.length > slot_bytes_ || !ctx.InPool(req.offset, req.length)) {
        return Fail(ctx, req, Errc::kInvalidArgument);
      }
      [[fallthrough]];
    case block::kDiscard:
      if (req.length == 0 || req.length % bs != 0 || req.arg > geometry_.capacity_blocks ||
          req.length / bs > geometry_.capacity_blocks - req.arg) {
        return Fail(ctx, req, Errc::kInvalidArgument);
      }
      break;
    case block::kFlush: break;
    default: return Fail(ctx, req, Errc::kInvalidArgument);
  }
  switch (faultinject::Action f = UMBRA_FAILPOINT("disk.submit"); f.fault) {
    case SiteFault::kError: return Fail(ctx, req, Errc::kIo);
    case SiteFault::kDropCompletion: return;  // the bug: the request is forgotten
    case SiteFault::kBadRegister:             // the bug: a tail far past the queue
      regs_->sq_tail.store(sq_tail_ + 4 * hw_depth_, std::memory_order_seq_cst);
      ctx.RingDoorbell();
      return;
    default: break;
  }
  if (req.op == block::kFlush) {
    switch (UMBRA_FAILPOINT("disk.flush").fault) {
      case SiteFault::kError: return Fail(ctx, req, Errc::kIo);
      case SiteFault::kDropCompletion: return;  // the bug: the flush never reaches the device
      default: break;
    }
  }
  waiting_.push_back(req);
  Kick(ctx);
}

void DiskDriver::Issue(uint16_t tag, const ipc::Descriptor& req, bool in_place) {
  hwd::DiskCommand c{};
  c.tag = tag;
  c.user_data = req.id;
  c.lba = req.arg;
  const uint32_t bs = geometry_.block_size;
  switch (req.op) {
    case block::kRead: c.opcode = static_cast<uint8_t>(hwd::Opcode::kRead); break;
    case block::kWrite: c.opcode = static_cast<uint8_t>(hwd::Opcode::kWrite); break;
    case block::kWriteFua: c.opcode = static_cast<uint8_t>(hwd::Opcode::kWriteFua); break;
    case block::kDiscard: c.opcode = static_cast<uint8_t>(hwd::Opcode::kDiscard); break;
    case block::kFlush: c.opcode = static_cast<uint8_t>(hwd::Opcode::kFlush); break;
  }
  if (req.op != block::kFlush) c.num_blocks = req.length / bs;
  if (req.op == block::kRead || req.op == block::kWrite || req.op == block::kWriteFua) {
    c.flags = in_place ? hwd::kCommandHostMemory : 0;
    c.buffer_offset = in_place ? req.offset : data_offset_ + uint64_t{tag} * slot_bytes_;
    c.buffer_length = req.length;
  }
  std::memcpy(dma_ + (sq_tail_ & (hw_depth_ - 1)) * sizeof(hwd::DiskCommand), &c, sizeof c);
  ++sq_tail_;
}

void DiskDriver::Kick(sdk::Context& ctx) {
  bool issued = false;
  while (!waiting_.empty() && outstanding_ < soft_depth_ && !free_tags_.empty()) {
    const ipc::Descriptor req = waiting_.front();
    waiting_.pop_front();
    const uint16_t tag = free_tags_.back();
    free_tags_.pop_back();
    const bool in_place = in_place_ && req.offset % hwd::kBufferAlignment == 0;
    tags_[tag] = Tag{.request = req, .busy = true, .in_place = in_place};
    if (!in_place && (req.op == block::kWrite || req.op == block::kWriteFua)) {
      std::memcpy(Bounce(tag), ctx.pool() + req.offset, req.length);
    }
    Issue(tag, req, in_place);
    ++outstanding_;
    ++commands_;
    issued = true;
  }
  if (!issued) return;
  regs_->sq_tail.store(sq_tail_, std::memory_order_seq_cst);
  if (regs_->doorbell_wanted.load(std::memory_order_seq_cst) != 0) ctx.RingDoorbell();
}

void DiskDriver::Finish(sdk::Context& ctx, const hwd::DiskCompletion& c) {
  if (c.tag >= tags_.size() || !tags_[c.tag].busy) {
    ++errors_;  // the device answered a tag we did not use: ignore it
    return;
  }
  Tag& t = tags_[c.tag];
  const ipc::Descriptor req = t.request;
  const bool in_place = t.in_place;
  t.busy = false;
  free_tags_.push_back(c.tag);
  --outstanding_;
  const auto status = static_cast<hwd::Status>(c.status);
  switch (faultinject::Action f = UMBRA_FAILPOINT("disk.complete"); f.fault) {
    case SiteFault::kDropCompletion: return;  // the bug: the completion is lost
    case SiteFault::kError: return Fail(ctx, req, Errc::kIo);
    case SiteFault::kWrongLength: return ctx.Complete(req, 0, req.length + static_cast<uint32_t>(f.value + 1), req.arg);
    case SiteFault::kDuplicateId: ctx.Complete(req, 0, req.length, req.arg); break;
    case SiteFault::kForgedId: {
      ipc::Descriptor forged = req;
      forged.id ^= 0x5A5A5A5A00000ull;
      ctx.Complete(forged, 0, req.length, req.arg);
      break;
    }
    default: break;
  }
  if (status != hwd::Status::kOk) return Fail(ctx, req, StatusErrc(status));
  if (req.op == block::kRead && !in_place) std::memcpy(ctx.pool() + req.offset, Bounce(c.tag), req.length);
  ctx.Complete(req, 0, req.op == block::kRead ? req.length : 0, req.arg);
}

size_t DiskDriver::Reap(sdk::Context& ctx) {
  const uint32_t tail = regs_->cq_tail.load(std::memory_order_acquire);
  if (tail - cq_head_ > hw_depth_) return 0;  // the device is broken; the watchdog will notice
  size_t n = 0;
  for (; cq_head_ != tail; ++cq_head_, ++n) {
    hwd::DiskCompletion c;
    std::memcpy(&c, dma_ + cq_offset_ + (cq_head_ & (hw_depth_ - 1)) * sizeof c, sizeof c);
    Finish(ctx, c);
  }
  if (n == 0) return 0;
  regs_->cq_head.store(cq_head_, std::memory_order_seq_cst);
  if (regs_->doorbell_wanted.load(std::memory_order_seq_cst) != 0) ctx.RingDoorbell();
  return n;
}

void DiskDriver::OnInterrupt(sdk::Context& ctx) {
  ++interrupts_;
  if (regs_ == nullptr) return;
  if (UMBRA_FAILPOINT("disk.irq").fault == SiteFault::kDropCompletion) return;  // a lost interrupt
  // Acknowledge first, then look: a completion posted after this is a new edge.
  regs_->int_cause.fetch_and(~(hwd::kIntCompletion | hwd::kIntStatus), std::memory_order_acq_rel);
  Reap(ctx);
  Kick(ctx);
}

// The completion queue read straight from the DMA pool while the SDK spins.
// The interrupt cause stays set, so the device does not signal meanwhile;
// OnInterrupt acknowledges it when the loop next waits.
bool DiskDriver::Poll(sdk::Context& ctx) {
  if (regs_ == nullptr || regs_->cq_tail.load(std::memory_order_acquire) == cq_head_) return false;
  if (Reap(ctx) == 0) return false;
  ++polls_;
  Kick(ctx);
  return true;
}

Result<void> DiskDriver::SetWriteCache(sdk::Context& ctx, bool on) {
  uint32_t value = on ? hwd::kWriteCacheEnable : 0;
  switch (faultinject::Action f = UMBRA_FAILPOINT("disk.set_cache"); f.fault) {
    case SiteFault::kError: return umbra::Fail(Errc::kIo, "disk.set_cache: injected error");
    case SiteFault::kBadRegister: value = static_cast<uint32_t>(f.value) ^ value; break;  // the bug
    default: break;
  }
  regs_->write_cache.store(value, std::memory_order_seq_cst);
  ctx.RingDoorbell();
  const uint32_t want = on ? hwd::kStatusCacheOn : 0;
  if (!WaitFor(ctx, [&] { return (regs_->status.load() & hwd::kStatusCacheOn) == want; })) {
    return umbra::Fail(Errc::kTimeout, std::string("disk did not turn its write cache ") + (on ? "on" : "off"));
  }
  geometry_.write_cache = on;
  return {};
}

Result<std::string> DiskDriver::OnCall(sdk::Context& ctx, uint32_t method, std::string_view body) {
  switch (method) {
    case block::kIdentify: {
      geometry_.write_cache = (regs_->status.load() & hwd::kStatusCacheOn) != 0;
      return block::EncodeGeometry(geometry_);
    }
    case block::kSetWriteCache:
      if (body != "0" && body != "1") {
        return umbra::Fail(Errc::kInvalidArgument, "write cache mode must be 0 or 1, not '" + std::string(body) + "'");
      }
      UMBRA_TRY(SetWriteCache(ctx, body == "1"));
      return std::string();
    case block::kSetQueueDepth: {
      uint32_t v = 0;
      auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
      if (ec != std::errc() || end != body.data() + body.size() || v == 0 || v > hw_depth_) {
        return umbra::Fail(Errc::kInvalidArgument,
                           "queue depth '" + std::string(body) + "' is not in 1.." + std::to_string(hw_depth_));
      }
      soft_depth_ = v;
      Kick(ctx);
      return std::string();
    }
    default: return umbra::Fail(Errc::kInvalidArgument, "disk has no method " + std::to_string(method));
  }
}

std::map<std::string, uint64_t> DiskDriver::Counters() const {
  return {{"commands", commands_}, {"interrupts", interrupts_}, {"polls", polls_}, {"errors", errors_}};
}

}  // namespace umbra::drivers::disk
