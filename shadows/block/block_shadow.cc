#include "shadows/block/block_shadow.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/supervisor/cookie.h"

namespace umbra::shadows::block {

namespace proto = umbra::block;

namespace {

constexpr int64_t kReapSliceNs = 1'000'000;  // longest the reaper sits in host().Wait
constexpr int64_t kIdleSliceNs = 1'000'000;  // longest a non-reaper sleeps before looking again
// A request's cookie (runtime::RequestCookie): its slot, tagged with its
// submission serial (a completion with an older one is stale).
constexpr uint32_t kMaxRequests = (1u << 20) - 1;
constexpr size_t kBatch = 32;
constexpr int64_t kResubmitTimeoutNs = 2'000'000'000;

// Config log ranks: the cache mode before the queue depth.
constexpr int kRankWriteCache = 0;
constexpr int kRankQueueDepth = 1;

bool CarriesData(uint16_t op) { return op == proto::kRead || op == proto::kWrite || op == proto::kWriteFua; }

std::chrono::nanoseconds Ns(int64_t ns) { return std::chrono::nanoseconds(std::max<int64_t>(0, ns)); }

recorder::RequestOp RecordedOp(uint16_t op) {
  switch (op) {
    case proto::kRead: return recorder::RequestOp::kRead;
    case proto::kWrite:
    case proto::kWriteFua: return recorder::RequestOp::kWrite;
    case proto::kFlush: return recorder::RequestOp::kFlush;
    case proto::kDiscard: return recorder::RequestOp::kDiscard;
    default: return recorder::RequestOp::kOther;
  }
}

}  // namespace

Result<std::unique_ptr<BlockShadow>> BlockShadow::Create(runtime::Host& host, BlockShadowOptions options,
                                                         RecoveryMode mode) {
  if (options.retain_limit == 0) return Fail(Errc::kInvalidArgument, "block shadow retain_limit must be > 0");
  if (options.max_requests < 4 || options.max_requests > kMaxRequests) {
    return Fail(Errc::kInvalidArgument, "block shadow max_requests must be in 4.." + std::to_string(kMaxRequests));
  }
  return std::unique_ptr<BlockShadow>(new BlockShadow(host, Options{.class_name = "block", .mode = mode}, options));
}

BlockShadow::~BlockShadow() {
  Stop();
  std::lock_guard lock(io_mu_);
  FailAll(static_cast<int32_t>(Errc::kNoDevice), true);
}

// ---------------- Disk (client threads) ----------------

Geometry BlockShadow::geometry() const {
  std::lock_guard lock(io_mu_);
  return geometry_.value_or(Geometry{});
}

uint32_t BlockShadow::max_io_blocks() const {
  std::lock_guard lock(io_mu_);
  return max_io_blocks_;
}

bool BlockShadow::unplugged() const {
  std::lock_guard lock(io_mu_);
  return unplugged_;
}

BlockStats BlockShadow::stats() const {
  std::lock_guard lock(io_mu_);
  BlockStats s = stats_;
  s.retained = retained_;
  return s;
}

std::vector<int64_t> BlockShadow::TakeRecoveryWaits() {
  std::lock_guard lock(io_mu_);
  return std::exchange(waits_, {});
}

Result<void> BlockShadow::CheckUsable() const {
  if (state() == ShadowState::kFailed) return std::unexpected(FailedError());
  if (unplugged_) return Fail(Errc::kNoDevice, device_name() + ": no such device (hot-unplugged)");
  if (state() == ShadowState::kStopped && geometry_) return Fail(Errc::kNoDevice, device_name() + " is stopped");
  return {};
}

Result<void> BlockShadow::Validate(const Io& io) const {
  const Geometry& g = *geometry_;
  switch (io.op) {
    case proto::kFlush: return {};
    case proto::kRead:
    case proto::kWrite:
    case proto::kWriteFua:
      if (io.data == nullptr)
        return Fail(Errc::kInvalidArgument, std::string(proto::OpName(io.op)) + " without a buffer");
      [[fallthrough]];
    case proto::kDiscard:
      if (io.blocks == 0 || io.blocks > max_io_blocks_) {
        return Fail(Errc::kInvalidArgument,
                    std::to_string(io.blocks) + " blocks is not in 1.." + std::to_string(max_io_blocks_));
      }
      if (io.lba > g.capacity_blocks || io.blocks > g.capacity_blocks - io.lba) {
        return Fail(Errc::kInvalidArgument, "blocks " + std::to_string(io.lba) + "+" + std::to_string(io.blocks) +
                                                " are past the end of " + device_name() + " (" +
                                                std::to_string(g.capacity_blocks) + " blocks)");
      }
      return {};
    default: return Fail(Errc::kInvalidArgument, "unknown block operation " + std::to_string(io.op));
  }
}

bool BlockShadow::HasRoom(bool internal) const {
  // The last slot is kept for the shadow's own flush, which frees the others.
  const uint32_t limit = table_.capacity() - (internal ? 0 : 1);
  return table_.size() < limit;
}

Result<void> BlockShadow::Enqueue(std::unique_lock<std::mutex>& lock, const Io& io, Waiter* waiter, int64_t deadline) {
  uint32_t buffer = kNoBuffer;
  for (;;) {
    UMBRA_TRY(CheckUsable());
    if (mode() == RecoveryMode::kRestartOnly && !open_ && geometry_) {
      CountFailed();
      return Fail(Errc::kUnavailable, device_name() + " is restarting (restart-only mode)");
    }
    if (geometry_) {
      UMBRA_TRY(Validate(io));
      if (HasRoom(false)) {
        if (!CarriesData(io.op)) break;
        if (auto b = host().AllocBuffer()) {
          buffer = *b;
          break;
        }
      }
      // Full: retained writes may be what fills it; a flush releases them.
      if (retained_ > 0 && !internal_flush_queued_) EnqueueInternalFlush();
    }
    if (MonotonicNanos() >= deadline) {
      return Fail(Errc::kTimeout, device_name() + ": request queue full (back-pressure) past the deadline");
    }
    PumpOrWait(lock, deadline);
  }
  const uint32_t bs = geometry_->block_size;
  Entry e{.op = io.op,
          .lba = io.lba,
          .blocks = io.blocks,
          .length = io.op == proto::kFlush ? 0 : io.blocks * bs,
          .buffer = buffer,
          .seq = ++next_seq_,
          .caught = !open_,
          .cache_off = !cache_on_,
          .read_to = io.op == proto::kRead ? io.data : nullptr,
          .user_data = io.user_data,
          .waiter = waiter,
          .submit_ns = MonotonicNanos()};
  if (io.op == proto::kWrite || io.op == proto::kWriteFua) std::memcpy(host().buffer(buffer), io.data, e.length);
  // Recorded with the submit time the entry keeps anyway (docs/recorder.md).
  host().recorder().RequestSubmitted(host().recorder_device(), RecordedOp(e.op), e.length, e.submit_ns);
  Track(std::move(e));
  if (waiter != nullptr) ++waiter->remaining;
  ++stats_.submitted;
  if (!open_) CountQueued();
  SubmitPending();
  return {};
}

void BlockShadow::EnqueueInternalFlush() {
  if (!HasRoom(true)) return;
  Track(Entry{.op = proto::kFlush, .seq = ++next_seq_, .internal = true, .submit_ns = MonotonicNanos()});
  internal_flush_queued_ = true;
  ++stats_.internal_flushes;
  SubmitPending();
}

void BlockShadow::Track(Entry e) {
  const uint64_t cookie = *table_.Insert(std::move(e));  // the callers checked HasRoom
  const auto slot = static_cast<uint32_t>(cookie);
  cookie_of_slot_[slot] = cookie;
  order_.Insert(slot, At(slot).seq, [this](uint32_t s) { return At(s).seq; });
  MakePending(slot);
}

void BlockShadow::MakePending(uint32_t slot) {
  pending_.Insert(slot, At(slot).seq, [this](uint32_t s) { return At(s).seq; });
}

std::vector<uint64_t> BlockShadow::OrderedCookies() const {
  std::vector<uint64_t> cookies;
  cookies.reserve(table_.size());
  for (uint32_t s = order_.front(); s != SeqList::kNil; s = order_.next(s)) cookies.push_back(cookie_of_slot_[s]);
  return cookies;
}

Result<void> BlockShadow::Submit(const Io& io, int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  std::unique_lock lock(io_mu_);
  return Enqueue(lock, io, nullptr, deadline);
}

Result<size_t> BlockShadow::Reap(std::span<IoDone> out, size_t min, int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  std::unique_lock lock(io_mu_);
  min = std::min(min, out.size());
  while (done_.size() < min && MonotonicNanos() < deadline) PumpOrWait(lock, deadline);
  const size_t n = std::min(out.size(), done_.size());
  std::copy_n(done_.begin(), n, out.begin());
  done_.erase(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(n));
  if (n < min) return Fail(Errc::kTimeout, device_name() + ": no completion within the timeout");
  return n;
}

Result<void> BlockShadow::Run(std::span<const Io> ios, int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  Waiter w;
  std::unique_lock lock(io_mu_);
  while (!geometry_ && MonotonicNanos() < deadline) {
    UMBRA_TRY(CheckUsable());
    PumpOrWait(lock, deadline);
  }
  Result<void> submitted;
  for (const Io& io : ios) {
    const uint32_t step = std::max<uint32_t>(1, max_io_blocks_);
    uint32_t done = 0;
    do {
      Io piece = io;
      if (io.op != proto::kFlush) {
        piece.blocks = std::min(step, io.blocks - done);
        piece.lba = io.lba + done;
        if (io.data != nullptr) piece.data = io.data + uint64_t{done} * geometry_->block_size;
      }
      submitted = Enqueue(lock, piece, &w, deadline);
      done += piece.blocks;
    } while (submitted && done < io.blocks);
    if (!submitted) break;
  }
  while (w.remaining > 0) {
    if (MonotonicNanos() >= deadline) {
      DetachWaiter(&w);
      return Fail(Errc::kTimeout, device_name() + ": request not completed within the timeout");
    }
    PumpOrWait(lock, deadline);
  }
  if (!submitted) return submitted;
  if (w.status == 0) return {};
  const auto code = static_cast<Errc>(w.status);
  switch (code) {
    case Errc::kDeviceFailed: return std::unexpected(FailedError());
    case Errc::kNoDevice: return Fail(code, device_name() + ": no such device (hot-unplugged)");
    case Errc::kInterrupted: return Fail(code, device_name() + ": the driver crashed under the request");
    case Errc::kIo: return Fail(code, device_name() + ": I/O error reported by the disk");
    default: return Fail(code, device_name() + ": request failed");
  }
}

void BlockShadow::DetachWaiter(const Waiter* w) {
  for (uint32_t s = order_.front(); s != SeqList::kNil; s = order_.next(s)) {
    Entry& e = At(s);
    if (e.waiter != w) continue;
    e.waiter = nullptr;
    e.read_to = nullptr;
    e.user_data = ~uint64_t{0};  // nobody to tell (FinishClient drops it)
  }
}

Result<void> BlockShadow::SetWriteCache(bool on) {
  if (on) {
    std::lock_guard lock(io_mu_);
    cache_on_ = true;  // before the device may cache anything
  }
  UMBRA_TRY(ConfigCall("write_cache", kRankWriteCache, proto::kSetWriteCache, on ? "1" : "0"));
  if (on) {
    std::lock_guard lock(io_mu_);
    if (geometry_) geometry_->write_cache = true;
    return {};
  }
  // Turning the cache off wrote it back: everything acknowledged is durable,
  // if the driver really turned it off (a crash under the call is replayed).
  auto g = Identify();
  if (!g || g->write_cache) return {};
  std::lock_guard lock(io_mu_);
  cache_on_ = false;
  if (geometry_) geometry_->write_cache = false;
  for (uint32_t s = order_.front(); s != SeqList::kNil; s = order_.next(s)) {
    if (Entry& e = At(s); e.stage == Stage::kAcked) e.durable = true;
  }
  ReleaseDurable();
  return {};
}

Result<void> BlockShadow::SetQueueDepth(uint32_t depth) {
  if (depth == 0 || depth > proto::kMaxQueueDepth) {
    return Fail(Errc::kInvalidArgument,
                "queue depth " + std::to_string(depth) + " is not in 1.." + std::to_string(proto::kMaxQueueDepth));
  }
  UMBRA_TRY(ConfigCall("queue_depth", kRankQueueDepth, proto::kSetQueueDepth, std::to_string(depth)));
  return {};
}

Result<Geometry> BlockShadow::Identify() {
  auto reply = UMBRA_TRY(CallDriver(proto::kIdentify, ""));
  auto g = proto::DecodeGeometry(reply);
  if (!g) return Fail(Errc::kProtocol, "driver reported a malformed geometry '" + reply + "'");
  return *g;
}

// ---------------- the data path (io_mu_ held) ----------------

void BlockShadow::SubmitPending() {
  if (!open_ || kill_pending_) return;
  runtime::Request batch[kBatch];
  while (!pending_.empty()) {
    size_t n = 0;
    for (uint32_t slot = pending_.front(); slot != SeqList::kNil && n < kBatch; slot = pending_.next(slot), ++n) {
      const Entry& e = At(slot);
      if (HeldBehindUnconfirmed(e)) break;  // it and everything after it, in order
      const bool data = CarriesData(e.op);
      batch[n] = runtime::Request{
          .op = e.op,
          .offset = data ? e.buffer : 0,
          .length = e.length,
          .capacity = data ? e.length : 0,
          .arg = e.lba,
          .cookie = runtime::RequestCookie{.index = slot, .tag = static_cast<uint32_t>(next_serial_ + 1 + n)}.Encode()};
    }
    if (n == 0) return;
    auto accepted = host().Submit({batch, n});
    if (!accepted) return;  // the driver is gone: recovery resubmits
    for (size_t i = 0; i < *accepted; ++i) {
      const uint32_t slot = pending_.front();
      Entry& e = At(slot);
      e.serial = runtime::RequestCookie::Decode(batch[i].cookie).tag;
      e.epoch = epoch_;
      e.stage = Stage::kSubmitted;
      ++submitted_;
      pending_.Erase(slot);
    }
    next_serial_ += n;
    if (*accepted < n) return;  // the ring is full: more after the next completions
  }
}

void BlockShadow::PumpOrWait(std::unique_lock<std::mutex>& lock, int64_t deadline) {
  const int64_t now = MonotonicNanos();
  if (now >= deadline) return;
  if (reaping_ || !open_ || submitted_ == 0) {
    io_cv_.wait_for(lock, Ns(std::min(deadline - now, kIdleSliceNs)));
    return;
  }
  reaping_ = true;
  lock.unlock();
  runtime::Completion done[64];
  const size_t n = host().Wait(done, std::min(deadline - now, kReapSliceNs));
  lock.lock();
  reaping_ = false;
  for (size_t i = 0; i < n; ++i) Process(done[i]);
  ReleaseDurable();
  if (mode() == RecoveryMode::kShadow && retained_ >= std::min(options_.retain_limit, table_.capacity() / 2) &&
      !internal_flush_queued_ && FlushWouldRelease()) {
    EnqueueInternalFlush();
  }
  if (kill_pending_ && open_) {
    open_ = false;  // nothing more for the faulty driver; recovery resubmits
    host().Kill(SIGKILL);
  }
  SubmitPending();
  io_cv_.notify_all();
}

void BlockShadow::Process(const runtime::Completion& c) {
  const uint32_t slot = runtime::RequestCookie::Decode(c.cookie).index;
  Entry* e = slot < cookie_of_slot_.size() ? table_.Find(cookie_of_slot_[slot]) : nullptr;
  if (e == nullptr || e->stage != Stage::kSubmitted || e->serial != runtime::RequestCookie::Decode(c.cookie).tag) {
    ++stats_.stale_completions;
    return;
  }
  const uint64_t cookie = cookie_of_slot_[slot];
  --submitted_;
  SetUnconfirmed(*e, false);
  const auto code = static_cast<Errc>(c.status);
  if (c.status == static_cast<int32_t>(Errc::kInterrupted)) {
    if (mode() == RecoveryMode::kShadow) return Requeue(cookie, *e);
    if (!e->acked) FinishClient(*e, c.status);
    return Remove(cookie, *e);
  }
  if (c.status != 0 && code != Errc::kIo && code != Errc::kNoDevice) {
    // The device refused a command or the driver invented a status.
    return DriverBug(cookie, *e, std::string("completed with ") + std::string(ErrcName(code)));
  }
  if (code == Errc::kNoDevice) {
    unplugged_ = true;
    if (!e->acked) FinishClient(*e, c.status);
    Remove(cookie, *e);
    return FailAll(c.status, false);
  }
  if (c.status != 0) {  // an I/O error of the medium: the client sees it
    if (e->acked) {
      e->stage = Stage::kAcked;  // a replay failed: keep the data for the next one
      return;
    }
    FinishClient(*e, c.status);
    return Remove(cookie, *e);
  }
  // A successful read fills its whole buffer; nothing else produces bytes
  // (block_protocol.h). Another length is a driver that cannot be believed,
  // e.g. one completing a read before the device transferred it.
  const uint32_t produced = e->op == proto::kRead ? e->length : 0;
  if (c.length != produced) {
    return DriverBug(cookie, *e,
                     "completed with length " + std::to_string(c.length) + " (expected " + std::to_string(produced) +
                         ")");
  }
  ProcessOk(cookie, *e);
}

void BlockShadow::DriverBug(uint64_t cookie, Entry& e, const std::string& what) {
  ++stats_.driver_errors;
  spdlog::warn("[{}] block: {} {}, restarting the driver", device_name(), proto::OpName(e.op), what);
  if (mode() == RecoveryMode::kShadow) {
    kill_pending_ = true;
    return Requeue(cookie, e);
  }
  FinishClient(e, static_cast<int32_t>(Errc::kProtocol));
  Remove(cookie, e);
}

void BlockShadow::ProcessOk(uint64_t cookie, Entry& e) {
  switch (e.op) {
    case proto::kRead:
      if (e.read_to != nullptr) std::memcpy(e.read_to, host().buffer(e.buffer), e.length);
      FinishClient(e, 0);
      return Remove(cookie, e);
    case proto::kFlush:
      MarkFlushed(e.seq);
      if (e.internal && e.waiter == nullptr) {
        internal_flush_queued_ = false;
      } else {
        FinishClient(e, 0);
      }
      return Remove(cookie, e);
    default: break;
  }
  // A write, FUA write or discard.
  e.stage = Stage::kAcked;
  if (e.op != proto::kWrite || (e.cache_off && !cache_on_)) e.durable = true;
  if (!e.acked) {
    FinishClient(e, 0);
    e.acked = true;
    ++retained_;
  }
  if (mode() == RecoveryMode::kRestartOnly) Remove(cookie, e);
}

void BlockShadow::Requeue(uint64_t cookie, Entry& e) {
  e.stage = Stage::kQueued;
  e.caught = true;
  SetUnconfirmed(e, true);
  MakePending(static_cast<uint32_t>(cookie));
  ++stats_.resubmitted;
  CountResubmitted();
}

void BlockShadow::MarkFlushed(uint64_t seq) {
  for (uint32_t s = order_.front(); s != SeqList::kNil && At(s).seq < seq; s = order_.next(s)) {
    // Completed before the flush did: the device executed it before the
    // flush. A request sent before the flush but not completed proves
    // nothing: the driver may have lost it (then the flush did not cover
    // it, and it is sent again after the hang is detected).
    if (Entry& e = At(s); e.stage == Stage::kAcked) e.durable = true;
  }
}

void BlockShadow::SetUnconfirmed(Entry& e, bool on) {
  on = on && e.op != proto::kRead && e.op != proto::kFlush;
  if (e.unconfirmed == on) return;
  e.unconfirmed = on;
  if (on) {
    ++unconfirmed_;
  } else {
    --unconfirmed_;
  }
}

bool BlockShadow::HeldBehindUnconfirmed(const Entry& e) {
  if (unconfirmed_ == 0 || e.op != proto::kRead) return false;
  for (uint32_t s = order_.front(); s != SeqList::kNil && At(s).seq < e.seq; s = order_.next(s)) {
    if (At(s).unconfirmed) return true;
  }
  return false;
}

bool BlockShadow::FlushWouldRelease() {
  // Release goes in order: with the oldest entry unfinished (in flight, or
  // lost by the driver until the hang is detected) a flush frees nothing.
  // An acknowledged oldest entry is not durable (it would be gone).
  return !order_.empty() && At(order_.front()).stage == Stage::kAcked;
}

void BlockShadow::ReleaseDurable() {
  while (!order_.empty()) {
    const uint32_t slot = order_.front();
    Entry& e = At(slot);
    if (e.stage != Stage::kAcked || !e.durable) return;
    Remove(cookie_of_slot_[slot], e);
  }
}

void BlockShadow::FinishClient(Entry& e, int32_t status) {
  if (recorder::Recorder& rec = host().recorder(); rec.on() && !e.internal) {
    const int64_t now = MonotonicNanos();
    const recorder::RequestOutcome outcome = status == 0 ? recorder::RequestOutcome::kOk
                                             : status == static_cast<int32_t>(Errc::kInterrupted)
                                                 ? recorder::RequestOutcome::kInterrupted
                                                 : recorder::RequestOutcome::kFailed;
    rec.RequestCompleted(host().recorder_device(), RecordedOp(e.op), e.length, now - e.submit_ns, outcome, now);
  }
  ++stats_.completed;
  if (status != 0) ++stats_.errors;
  if (e.caught && waits_.size() < options_.max_waits_recorded) waits_.push_back(MonotonicNanos() - e.submit_ns);
  if (e.waiter != nullptr) {
    if (status != 0 && e.waiter->status == 0) e.waiter->status = status;
    --e.waiter->remaining;
    e.waiter = nullptr;
  } else if (!e.internal && e.user_data != ~uint64_t{0}) {
    done_.push_back(IoDone{.user_data = e.user_data, .status = status});
  }
  e.read_to = nullptr;
}

void BlockShadow::Remove(uint64_t cookie, Entry& e) {
  SetUnconfirmed(e, false);
  if (e.buffer != kNoBuffer) host().FreeBuffer(e.buffer);
  if (e.acked) --retained_;
  if (e.internal && e.op == proto::kFlush && e.stage != Stage::kAcked) internal_flush_queued_ = false;
  order_.Erase(static_cast<uint32_t>(cookie));
  pending_.Erase(static_cast<uint32_t>(cookie));
  table_.Erase(cookie);
}

void BlockShadow::FailAll(int32_t status, bool everything) {
  for (uint64_t cookie : OrderedCookies()) {
    Entry* e = table_.Find(cookie);
    if (e == nullptr) continue;
    if (e->stage == Stage::kSubmitted && !everything) continue;  // completes by itself
    if (e->stage == Stage::kAcked && !everything) continue;      // acknowledged: nothing to tell
    if (e->stage == Stage::kSubmitted) --submitted_;
    if (!e->acked) FinishClient(*e, status);
    Remove(cookie, *e);
  }
  io_cv_.notify_all();
}

// ---------------- recovery hooks ----------------

void BlockShadow::OnDriverLost() {
  {
    std::lock_guard lock(io_mu_);
    ++epoch_;
    open_ = false;
    kill_pending_ = false;
  }
  io_cv_.notify_all();
}

Result<void> BlockShadow::LearnGeometry() {
  bool known;
  {
    std::lock_guard lock(io_mu_);
    known = geometry_.has_value();
  }
  if (!known) {
    // The first driver: ask. The cache mode it reports is the power-on one.
    const Geometry g = UMBRA_TRY(Identify());
    std::lock_guard lock(io_mu_);
    geometry_ = g;
    power_on_cache_ = g.write_cache;
    max_io_blocks_ = std::min(g.max_io_bytes, host().buffer_size()) / g.block_size;
  }
  // Later drivers run the same disk, reset to power-on and then given the
  // logged configuration: the cache mode is known without a round trip.
  std::optional<std::string> logged;
  {
    std::lock_guard lock(config_mu());
    logged = config_log().Get("write_cache");
  }
  std::lock_guard lock(io_mu_);
  cache_on_ = logged && mode() == RecoveryMode::kShadow ? *logged == "1" : power_on_cache_;
  geometry_->write_cache = cache_on_;
  return {};
}

Result<void> BlockShadow::ResubmitRequests() {
  UMBRA_TRY(LearnGeometry());
  std::unique_lock lock(io_mu_);
  // What the dead driver had: interrupted completions first, then anything
  // whose completion a reaper still holds (it will be stale once resent).
  runtime::Completion done[64];
  while (size_t n = host().Poll(done)) {
    for (size_t i = 0; i < n; ++i) Process(done[i]);
  }
  for (uint64_t cookie : OrderedCookies()) {
    Entry* e = table_.Find(cookie);
    if (e == nullptr) continue;
    if (e->stage == Stage::kSubmitted && e->epoch != epoch_) {
      --submitted_;
      if (mode() == RecoveryMode::kShadow) {
        Requeue(cookie, *e);
      } else {
        if (!e->acked) FinishClient(*e, static_cast<int32_t>(Errc::kInterrupted));
        Remove(cookie, *e);
      }
    } else if (e->stage == Stage::kAcked && mode() == RecoveryMode::kShadow) {
      // Acknowledged but maybe only in the cache the reset dropped: again,
      // in its place in the sequence.
      e->stage = Stage::kQueued;
      if (e->op == proto::kWrite && !cache_on_) e->cache_off = true;
      SetUnconfirmed(*e, true);
      MakePending(static_cast<uint32_t>(cookie));
      ++stats_.replayed_writes;
    }
  }
  kill_pending_ = false;
  open_ = true;
  SubmitPending();
  io_cv_.notify_all();
  return AwaitResubmitted(lock, next_seq_);
}

// Recovery ends when everything resubmitted or replayed has completed again
// (this thread reaps if no client does); a driver dying meanwhile is a double
// fault, and recovery starts over.
Result<void> BlockShadow::AwaitResubmitted(std::unique_lock<std::mutex>& lock, uint64_t barrier) {
  const uint64_t epoch = epoch_;
  const int64_t deadline = MonotonicNanos() + kResubmitTimeoutNs;
  auto outstanding = [&] {
    for (uint32_t s = order_.front(); s != SeqList::kNil; s = order_.next(s)) {
      const Entry& e = At(s);
      if (e.seq > barrier) return false;
      if (e.stage != Stage::kAcked) return true;
    }
    return false;
  };
  while (outstanding()) {
    if (epoch_ != epoch || !open_) {
      return Fail(Errc::kInterrupted, device_name() + ": the driver died while requests were resubmitted");
    }
    if (MonotonicNanos() >= deadline) {
      return Fail(Errc::kTimeout, device_name() + ": resubmitted requests did not complete");
    }
    PumpOrWait(lock, deadline);
  }
  return {};
}

void BlockShadow::OnFailed(const std::string&) {
  std::lock_guard lock(io_mu_);
  open_ = false;
  FailAll(static_cast<int32_t>(Errc::kDeviceFailed), true);
}

// ---------------- factory ----------------

const SettingsSchema<BlockShadowOptions>& BlockSettings() {
  static const auto schema =
      SettingsSchema<BlockShadowOptions>("block").Count("max_requests", &BlockShadowOptions::max_requests);
  return schema;
}

Result<std::unique_ptr<Shadow>> CreateBlockShadow(runtime::Host& host, const ShadowSettings& settings,
                                                  RecoveryMode mode) {
  const BlockShadowOptions o = UMBRA_TRY(BlockSettings().Parse(settings));
  auto shadow = UMBRA_TRY(BlockShadow::Create(host, o, mode));
  return std::unique_ptr<Shadow>(std::move(shadow));
}

}  // namespace umbra::shadows::block
