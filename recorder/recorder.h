// Recorder: the timestamped event log the runtime writes while it runs.
//
// The hot path (per-request events, recovery steps, lifecycle) copies a
// 32-byte record into a per-thread lock-free buffer: no lock, no allocation,
// no system call, never blocking. A writer thread drains the buffers every
// flush period and appends length-delimited protobuf records to the trace
// file (format: proto/umbra/trace.proto, docs/recorder.md). When a buffer is
// full the event is counted as lost. Per-request events can be sampled (keep 1
// in N per thread); the rate is written in the header so analysis can scale.
//
//   auto rec = UMBRA_TRY(Recorder::Create({.path = "run.trace"}));
//   DeviceId nic = rec->RegisterDevice("nic0", "net");
//   rec->RequestSubmitted(nic, RequestOp::kTransmit, 1500);
//   rec->RequestCompleted(nic, RequestOp::kTransmit, 1500, latency_ns, RequestOutcome::kOk);
//   rec->FaultInjected(nic, "nic.tx.entry", "segfault", seed);
//   rec->PhaseBegin(nic, RecoveryPhase::kRestart);
//   UMBRA_TRY(rec->Close());
//
// Recording off: Recorder::Off() is a recorder that records nothing; every
// call on it costs one predictable branch. Code that records takes a
// Recorder& and is handed Off() when tracing is disabled.
//
// Thread safety: every recording method may be called from any thread
// concurrently. Events with strings (FaultInjected, WorkloadVerified,
// RunMarker) and RegisterDevice take a mutex; they are rare. Flush() may be
// called from any thread. Close() must be called once producers have stopped:
// an event recorded while Close runs may be lost. A thread's first event on a
// recorder registers its buffer under the mutex; a thread that alternates
// between recorders pays a map lookup at each switch.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "recorder/event.h"
#include "recorder/thread_buffer.h"
#include "base/clock.h"
#include "base/result.h"

namespace umbra::recorder {

class TraceSink;

struct RecorderOptions {
  std::string path;                            // trace file, created or truncated
  uint32_t sampling_rate = 1;                  // keep 1 in N per-request events per thread (1 = all)
  uint32_t buffer_records = 1 << 14;           // per-thread buffer, rounded up to a power of two
  std::chrono::milliseconds flush_period{20};  // how often the writer drains the buffers
};

class Recorder {
 public:
  // Opens the trace file, writes the header and starts the writer thread.
  static Result<std::unique_ptr<Recorder>> Create(const RecorderOptions& options);

  // A process-wide recorder that records nothing (recording off).
  static Recorder& Off();

  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Declares a device; its events carry the returned index. Written once to
  // the trace's name table. Registering the same name again returns the same id.
  DeviceId RegisterDevice(std::string_view name, std::string_view device_class);

  // --- per-request events (sampled) -----------------------------------------
  // `time_ns` is the event's MonotonicNanos() when the caller already has it
  // (it timed the request anyway); kReadClock makes the recorder read the
  // clock, which is most of the cost of an event.
  static constexpr int64_t kReadClock = std::numeric_limits<int64_t>::min();

  void RequestSubmitted(DeviceId device, RequestOp op, uint64_t size, int64_t time_ns = kReadClock) {
    if (!on()) return;
    PushSampled(0, {time_ns, device, detail::RecordKind::kRequestSubmitted, Code(op), 0, 0, size, 0});
  }
  void RequestCompleted(DeviceId device, RequestOp op, uint64_t size, int64_t latency_ns, RequestOutcome outcome,
                        int64_t time_ns = kReadClock) {
    if (!on()) return;
    PushSampled(1,
                {time_ns, device, detail::RecordKind::kRequestCompleted, Code(op), Code(outcome), 0, size, latency_ns});
  }

  // --- lifecycle, detection, recovery (never sampled) -----------------------
  void DriverSpawned(DeviceId device, int64_t pid) {
    if (on()) Push({0, device, detail::RecordKind::kDriverSpawned, 0, 0, 0, uint64_t(pid), 0});
  }
  void DriverReady(DeviceId device) {
    if (on()) Push({0, device, detail::RecordKind::kDriverReady, 0, 0, 0, 0, 0});
  }
  void DriverExited(DeviceId device, ExitKind kind, int32_t value) {
    if (on())
      Push({0, device, detail::RecordKind::kDriverExited, Code(kind), 0, 0,
            static_cast<uint64_t>(static_cast<int64_t>(value)), 0});
  }
  // `value`: the exit code or signal number when the reason has one.
  void Detected(DeviceId device, DetectionReason reason, int64_t value = 0) {
    if (on()) Push({0, device, detail::RecordKind::kDetected, Code(reason), 0, 0, static_cast<uint64_t>(value), 0});
  }
  void PhaseBegin(DeviceId device, RecoveryPhase phase) {
    if (on()) Push({0, device, detail::RecordKind::kPhaseBegin, Code(phase), 0, 0, 0, 0});
  }
  void PhaseEnd(DeviceId device, RecoveryPhase phase, PhaseOutcome outcome = PhaseOutcome::kDone) {
    if (on()) Push({0, device, detail::RecordKind::kPhaseEnd, Code(phase), Code(outcome), 0, 0, 0});
  }
  void DeviceFailed(DeviceId device) {
    if (on()) Push({0, device, detail::RecordKind::kDeviceFailed, 0, 0, 0, 0, 0});
  }
  void RequestsDisposed(DeviceId device, Disposition disposition, uint64_t count) {
    if (on()) Push({0, device, detail::RecordKind::kRequestsDisposed, Code(disposition), 0, 0, count, 0});
  }
  void LinkChanged(DeviceId consumer, LinkEvent event, DeviceId supplier) {
    if (on()) Push({0, consumer, detail::RecordKind::kLinkChanged, Code(event), 0, 0, supplier, 0});
  }

  // --- rare events with strings (take a mutex) ------------------------------
  // `at_ns` (MonotonicNanos) when the fault struck earlier than now (a driver
  // reports its failpoints after the fact); 0: now.
  void FaultInjected(DeviceId device, std::string_view site, std::string_view action, uint64_t seed, int64_t at_ns = 0);
  void WorkloadVerified(DeviceId device, std::string_view workload, VerifyOutcome outcome, std::string_view detail);
  void RunMarker(RunMarkerKind kind, std::string_view run_id, uint64_t seed);

  // Writes everything recorded before this call to the file (blocks until the
  // writer has drained and flushed). Returns the writer's first write error.
  Result<void> Flush();
  // Stops the writer after a last drain, writes the end record, closes the
  // file. Idempotent. Recording after Close is a no-op.
  Result<void> Close();

  // Events dropped because a buffer was full, over all threads so far.
  uint64_t lost_events() const;
  // Events written to the file so far.
  uint64_t recorded_events() const { return recorded_.load(std::memory_order_relaxed); }
  bool on() const { return on_.load(std::memory_order_relaxed); }
  uint32_t sampling_rate() const { return options_.sampling_rate; }

 private:
  Recorder(RecorderOptions options, std::unique_ptr<TraceSink> sink, uint64_t id);

  template <class E>
  static uint8_t Code(E e) {
    return static_cast<uint8_t>(e);
  }

  detail::ThreadBuffer* Buffer() {
    detail::ThreadSlot& slot = detail::tls_slot;
    if (slot.recorder_id == id_) [[likely]]
      return slot.buffer;
    return AttachThisThread();
  }
  void Push(detail::Record r) {
    r.time_ns = MonotonicNanos();
    Buffer()->Push(r);
  }
  void PushSampled(int stream, detail::Record r) {
    detail::ThreadBuffer* b = Buffer();
    if (!b->Sample(stream, options_.sampling_rate)) return;
    if (r.time_ns == kReadClock) r.time_ns = MonotonicNanos();
    b->Push(r);
  }

  detail::ThreadBuffer* AttachThisThread();
  void PushSlow(Event event);
  void WriterLoop();
  // One pass: slow queue, then every thread buffer, then the lost count. Writer thread only.
  void DrainOnce();
  void NoteWriteError(Result<void> r);

  const RecorderOptions options_;
  const uint64_t id_;  // distinguishes recorders in the thread-local slot; never reused
  std::atomic<bool> on_;

  // Guards everything below up to writer_.
  mutable std::mutex mu_;
  std::condition_variable wake_;     // writer: a flush is requested or stop
  std::condition_variable drained_;  // Flush callers: a pass finished
  uint64_t flush_requested_ = 0;
  uint64_t flush_done_ = 0;
  bool stop_ = false;
  // Per-thread buffers; the recorder owns them so a thread that exits leaves
  // its last records to be drained.
  std::vector<std::unique_ptr<detail::ThreadBuffer>> buffers_;
  std::map<std::thread::id, detail::ThreadBuffer*> buffer_of_thread_;
  std::vector<DeviceInfo> devices_;
  size_t devices_written_ = 0;
  std::vector<Event> slow_queue_;
  std::optional<Error> write_error_;

  // Only the writer thread touches these (and Close after joining it).
  // The open trace file, written by the writer thread until Close; null for Off().
  std::unique_ptr<TraceSink> sink_;
  uint64_t lost_written_ = 0;
  std::atomic<uint64_t> recorded_{0};
  std::thread writer_;
  bool closed_ = false;
};

// Records one recovery phase around a scope: PhaseBegin now, PhaseEnd when the
// scope ends — kAborted unless Done() was called, so an early return from a
// failed recovery step is recorded as such.
//
//   Result<void> Shadow::Restart() {
//     PhaseScope phase(recorder_, device_, RecoveryPhase::kRestart);
//     UMBRA_TRY(supervisor_.Spawn());  // returns early: phase aborted
//     phase.Done();
//     return {};
//   }
//
// Thread safety: as Recorder; one scope is used by one thread.
class PhaseScope {
 public:
  PhaseScope(Recorder& recorder, DeviceId device, RecoveryPhase phase)
      : recorder_(recorder), device_(device), phase_(phase) {
    recorder_.PhaseBegin(device_, phase_);
  }
  ~PhaseScope() { recorder_.PhaseEnd(device_, phase_, outcome_); }
  PhaseScope(const PhaseScope&) = delete;
  PhaseScope& operator=(const PhaseScope&) = delete;

  void Done() { outcome_ = PhaseOutcome::kDone; }

 private:
  Recorder& recorder_;  // not owned; outlives the scope
  const DeviceId device_;
  const RecoveryPhase phase_;
  PhaseOutcome outcome_ = PhaseOutcome::kAborted;
};

}  // namespace umbra::recorder
