// BlockShadow: the block class's shadow, a Disk that hides driver crashes and
// never loses an acknowledged write, even though the disk's write cache is
// volatile and recovery resets the device.
//
// Policies while the driver is down or restarting:
//   SetWriteCache / queue depth   logged (one entry each, the latest value)
//                                 and replayed into every new driver;
//   new requests                  queued (bounded by max_requests and the data
//                                 pool: callers block, back-pressure, never an
//                                 error);
//   requests in flight            resubmitted once the new driver probed, in
//                                 their original order, before the queue;
//   acknowledged writes not yet   kept (their data-pool buffer is held) until a
//   covered by a completed flush  flush covering them completes, and written
//                                 again first after a crash: Reset() dropped
//                                 them from the device's cache.
// Every request carries a sequence number; the shadow sends requests to the
// driver in sequence order and the driver and the device keep that order, so
// replaying "everything retained or in flight, in sequence order" rebuilds
// exactly the state the client was told about (docs/block.md argues why this
// is idempotent). A flush completing releases the retained writes completed
// before it. A write sent again after a reset is unconfirmed until it
// completes again (the new driver may lose it too); a read after it waits.
// A successful completion's length must be the read's length (0 for any
// other op): anything else is a driver bug, and the driver is restarted.
// When retained writes fill half the table the shadow flushes on its own.
//
// Hot-unplug: a completion with kNoDevice marks the disk gone; pending and new
// requests fail with kNoDevice. Budget spent: everything fails kDeviceFailed.
// RecoveryMode::kRestartOnly: no replay, no retention; requests in flight and
// new requests while down fail (kInterrupted / kUnavailable).
//
// The data path has no thread of its own: a client thread waiting for a
// completion becomes the "reaper" (one at a time) and processes completions
// for everyone, so a single synchronous client pays no thread handoff.
//
//   auto shadow = UMBRA_TRY(BlockShadow::Create(host, {}));
//   shadow->Start();
//   UMBRA_TRY(shadow->WaitUntilPassive(1s));
//   UMBRA_TRY(shadow->Write(0, data));  UMBRA_TRY(shadow->Flush());
//
// Thread safety: the Disk methods from any thread; see Shadow for the rest.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "shadows/block/disk.h"
#include "shadows/registry.h"
#include "shadows/shadow.h"
#include "shadows/slot_table.h"

namespace umbra::shadows::block {

struct BlockShadowOptions {
  uint32_t max_requests = 256;  // tracked requests (queued + in flight + retained writes)
  // Acknowledged, unflushed writes held before the shadow flushes by itself
  // (at most max_requests / 2). Fewer: less to replay after a crash (a
  // shorter recovery gap), more flushes while writing without flushing.
  uint32_t retain_limit = 64;
  size_t max_waits_recorded = 1 << 16;
};

// What the shadow did, since creation.
struct BlockStats {
  uint64_t submitted = 0;          // client requests accepted
  uint64_t completed = 0;          // client requests completed (ok or not)
  uint64_t errors = 0;             // client requests completed with an error
  uint64_t resubmitted = 0;        // requests sent again to a new driver
  uint64_t replayed_writes = 0;    // acknowledged, unflushed writes written again
  uint64_t internal_flushes = 0;   // flushes the shadow issued to bound retention
  uint64_t stale_completions = 0;  // completions of an earlier submission, ignored
  uint64_t driver_errors = 0;      // completions that showed a driver bug (driver killed)
  uint32_t retained = 0;           // acknowledged writes held right now
};

class BlockShadow final : public Shadow, public Disk {
 public:
  static Result<std::unique_ptr<BlockShadow>> Create(runtime::Host& host, BlockShadowOptions options,
                                                     RecoveryMode mode = RecoveryMode::kShadow);
  ~BlockShadow() override;

  // Disk.
  Geometry geometry() const override;
  uint32_t max_io_blocks() const override;
  Result<void> Submit(const Io& io, int64_t timeout_ns) override;
  Result<size_t> Reap(std::span<IoDone> out, size_t min, int64_t timeout_ns) override;
  Result<void> Run(std::span<const Io> ios, int64_t timeout_ns) override;
  Result<void> SetWriteCache(bool on) override;
  // Logged and replayed like the write-cache mode.
  Result<void> SetQueueDepth(uint32_t depth);

  BlockStats stats() const;
  // How long each request that was caught by a recovery (in flight, or
  // submitted while the driver was down) waited from Submit to completion;
  // the recovery gap a client sees. Taken (cleared) by the call.
  std::vector<int64_t> TakeRecoveryWaits();
  bool unplugged() const;

 private:
  enum class Stage { kQueued, kSubmitted, kAcked };
  struct Waiter {
    uint32_t remaining = 0;
    int32_t status = 0;
  };
  struct Entry {
    uint16_t op = 0;
    uint64_t lba = 0;
    uint32_t blocks = 0;
    uint32_t length = 0;          // payload bytes (read/write), extent bytes (discard)
    uint32_t buffer = kNoBuffer;  // data-pool buffer, held until released
    uint64_t seq = 0;             // client order; submission order to the driver
    uint64_t serial = 0;          // this submission (stale completions carry an older one)
    uint64_t epoch = 0;           // driver generation it was submitted to
    Stage stage = Stage::kQueued;
    bool durable = false;    // acknowledged and on the medium
    bool internal = false;   // the shadow's own flush
    bool acked = false;      // the client was told it completed
    bool caught = false;     // waited because of a recovery
    bool cache_off = false;  // the write cache was off when it was submitted
    // A write sent again after a reset and not yet completed by the new
    // driver: the device may not hold it yet (a driver can lose a request),
    // so a read after it in sequence waits (see SubmitPending).
    bool unconfirmed = false;
    std::byte* read_to = nullptr;
    uint64_t user_data = 0;
    Waiter* waiter = nullptr;  // a synchronous caller, or null (async: done_)
    int64_t submit_ns = 0;
  };
  static constexpr uint32_t kNoBuffer = ~uint32_t{0};

  // Table slots kept in sequence order through links of their own: O(1)
  // append, front and removal, and no allocation (what a std::map keyed by
  // sequence number cost on every request). Insertion walks back from the
  // tail, which is where a new request goes; only a request sent again
  // after a crash lands further in.
  class SeqList {
   public:
    static constexpr uint32_t kNil = ~uint32_t{0};
    explicit SeqList(uint32_t capacity) : links_(capacity) {}
    bool empty() const { return head_ == kNil; }
    uint32_t front() const { return head_; }
    uint32_t next(uint32_t slot) const { return links_[slot].next; }
    // Links `slot` (sequence number `seq`) in order; `seq_of(s)` gives a
    // linked slot's sequence number.
    template <class SeqOf>
    void Insert(uint32_t slot, uint64_t seq, SeqOf seq_of) {
      Erase(slot);  // never linked twice
      uint32_t after = tail_;
      while (after != kNil && seq_of(after) > seq) after = links_[after].prev;
      Link& l = links_[slot];
      l = Link{.prev = after, .next = after == kNil ? head_ : links_[after].next, .linked = true};
      (l.next == kNil ? tail_ : links_[l.next].prev) = slot;
      (after == kNil ? head_ : links_[after].next) = slot;
    }
    // A slot not linked is left alone.
    void Erase(uint32_t slot) {
      Link& l = links_[slot];
      if (!l.linked) return;
      (l.prev == kNil ? head_ : links_[l.prev].next) = l.next;
      (l.next == kNil ? tail_ : links_[l.next].prev) = l.prev;
      l = Link{};
    }

   private:
    struct Link {
      uint32_t prev = kNil;
      uint32_t next = kNil;
      bool linked = false;
    };
    std::vector<Link> links_;
    uint32_t head_ = kNil;
    uint32_t tail_ = kNil;
  };

  BlockShadow(runtime::Host& host, Options base, BlockShadowOptions options)
      : Shadow(host, std::move(base)), options_(options), table_(options.max_requests),
        cookie_of_slot_(options.max_requests, 0), order_(options.max_requests), pending_(options.max_requests) {}

  // Shadow hooks.
  void OnDriverLost() override;
  Result<void> ResubmitRequests() override;
  void OnFailed(const std::string& why) override;

  // All below with io_mu_ held.
  Result<void> CheckUsable() const;
  Result<void> Validate(const Io& io) const;
  Result<void> Enqueue(std::unique_lock<std::mutex>& lock, const Io& io, Waiter* waiter, int64_t deadline);
  // Puts a new entry in the table, last in order_ and pending_.
  void Track(Entry e);
  Entry& At(uint32_t slot) { return *table_.Find(cookie_of_slot_[slot]); }
  // Inserts a live entry's slot into pending_ in its place in the sequence.
  void MakePending(uint32_t slot);
  // The cookies of every live entry, oldest first (for loops that remove).
  std::vector<uint64_t> OrderedCookies() const;
  void EnqueueInternalFlush();
  bool HasRoom(bool internal) const;
  void SubmitPending();
  // Processes completions or sleeps a little; the reaper role.
  void PumpOrWait(std::unique_lock<std::mutex>& lock, int64_t deadline);
  void Process(const runtime::Completion& c);
  // A completion of a successful request, driver bugs aside.
  void ProcessOk(uint64_t cookie, Entry& e);
  // A completion that shows a driver bug: the driver is killed (with the
  // shadow) and the request goes to the next one.
  void DriverBug(uint64_t cookie, Entry& e, const std::string& what);
  void Requeue(uint64_t cookie, Entry& e);
  // Marks an entry sent again after a reset (writes only; reads need no
  // confirmation), or confirmed by a completion.
  void SetUnconfirmed(Entry& e, bool on);
  // A read must wait: a write before it is not confirmed since the reset.
  bool HeldBehindUnconfirmed(const Entry& e);
  // Whether a flush would let retained writes go (internal flushes only go
  // out when one would).
  bool FlushWouldRelease();
  void MarkFlushed(uint64_t seq);
  void ReleaseDurable();
  void FinishClient(Entry& e, int32_t status);
  void Remove(uint64_t cookie, Entry& e);
  void FailAll(int32_t status, bool include_retained);
  void DetachWaiter(const Waiter* w);
  Result<Geometry> Identify();
  Result<void> LearnGeometry();
  Result<void> AwaitResubmitted(std::unique_lock<std::mutex>& lock, uint64_t barrier);

  const BlockShadowOptions options_;

  mutable std::mutex io_mu_;  // everything below
  std::condition_variable io_cv_;
  SlotTable<Entry> table_;
  std::vector<uint64_t> cookie_of_slot_;  // slot index → table cookie
  SeqList order_;                         // every live entry, oldest first
  SeqList pending_;                       // the entries to be sent to the driver, oldest first
  std::deque<IoDone> done_;               // async completions not yet reaped
  std::vector<int64_t> waits_;
  std::optional<Geometry> geometry_;
  uint32_t max_io_blocks_ = 0;
  bool cache_on_ = true;        // conservative until identify says otherwise
  bool power_on_cache_ = true;  // the cache mode after a reset, before any replay
  bool open_ = false;           // a live driver takes submissions
  bool reaping_ = false;        // a client thread is in host().Wait
  bool kill_pending_ = false;   // a completion showed a driver bug
  bool unplugged_ = false;
  bool internal_flush_queued_ = false;
  uint64_t next_seq_ = 0;
  uint64_t next_serial_ = 0;
  uint64_t epoch_ = 0;
  uint32_t submitted_ = 0;    // entries in Stage::kSubmitted
  uint32_t retained_ = 0;     // acknowledged writes held
  uint32_t unconfirmed_ = 0;  // entries with Entry::unconfirmed
  BlockStats stats_;
};

// The settings the factory takes: "max_requests".
const SettingsSchema<BlockShadowOptions>& BlockSettings();
// The registry's factory.
Result<std::unique_ptr<Shadow>> CreateBlockShadow(runtime::Host& host, const ShadowSettings& settings,
                                                  RecoveryMode mode);

}  // namespace umbra::shadows::block
