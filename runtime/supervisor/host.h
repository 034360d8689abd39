// Host: what a shadow sees of the host that runs its device's driver.
//
// A Shadow (shadows/shadow.h) and the class shadows hold a Host&, never the
// concrete DriverHost (driver_host.h), which implements it with real driver
// processes; a test may hand a shadow a fake. The contract, which every
// implementation keeps:
//   - the listener is told OnDriverDown before any request in flight or call
//     fails with kInterrupted, and OnDriverReady once a new driver probed;
//   - Submit refuses (kUnavailable while recovering, kDeviceFailed once
//     failed, kNoDevice when stopped); Poll and Wait hand out every accepted
//     request's completion exactly once, interrupted ones included;
//   - Call fails with kInterrupted when the driver dies during it.
//
//   class MyShadow : public shadows::Shadow {
//     MyShadow(runtime::Host& host, Options o) : Shadow(host, std::move(o)) {}
//     Result<std::string> Hello() { return host().Call(kHello, "", kTimeout); }
//   };
//
// Thread safety: as DriverHost; the data path from one client thread at a
// time, Call and the accessors from any thread but the host's loop.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::recorder {
class Recorder;
}

namespace umbra::runtime {

enum class DeviceState { kStopped, kStarting, kRunning, kRecovering, kFailed, kStopping };
const char* DeviceStateName(DeviceState s);

// Why a driver instance was declared dead.
enum class DetectReason {
  kExit,               // exited by itself; code = exit status
  kSignal,             // killed by a signal; code = signal number
  kChannelEof,         // closed its control channel
  kProtocolViolation,  // sent something invalid; detail says what
  kMissedHeartbeat,    // no heartbeat for two periods (a hang)
  kRequestDeadline,    // a request outlived its deadline (a hang)
  kProbeFailed,        // probe returned an error
  kHandshakeTimeout,   // no Hello/Attached/ProbeDone in time
  kSpawnFailed,        // the binary could not be started
  kHostRequest,        // the host killed it (fault injection, tests)
  kUpgrade,            // not a fault: replaced by a live update (Upgrade)
};
const char* DetectReasonName(DetectReason r);

struct Detection {
  DetectReason reason = DetectReason::kExit;
  int code = 0;           // exit status or signal number
  std::string detail;     // human-readable
  int64_t at_ns = 0;      // when it was detected (MonotonicNanos)
  uint64_t instance = 0;  // which driver instance
  std::string ToString() const;
};

// A data-path request as the client sees it; `cookie` is the client's own tag
// and never leaves the host.
struct Request {
  uint16_t op = 0;
  uint16_t flags = 0;
  uint32_t offset = 0;  // payload in the buffer pool
  uint32_t length = 0;
  uint32_t capacity = 0;  // bytes the driver may write back at `offset` (>= length)
  uint64_t arg = 0;
  uint64_t cookie = 0;
};

struct Completion {
  uint64_t cookie = 0;
  int32_t status = 0;   // 0, or an Errc value (kInterrupted when the driver died)
  uint32_t length = 0;  // bytes produced (validated against the request's capacity)
  uint64_t arg = 0;
};

// One control-path call of a batch (CallBatch): a class-specific method
// number and its request body.
struct DriverCall {
  uint32_t method = 0;
  std::string body;
};

// Told about the driver's life; called on the supervisor thread.
class DriverHostListener {
 public:
  virtual ~DriverHostListener() = default;
  virtual void OnDriverDown(const Detection&) {}
  virtual void OnDriverReady(uint64_t /*instance*/, int64_t /*recovery_ns*/) {}
  virtual void OnDeviceFailed(const Detection&) {}
  virtual void OnDriverLog(int /*level*/, const std::string& /*text*/) {}
};

struct FailpointCount {
  std::string site;
  uint64_t hits = 0;
  uint64_t triggers = 0;
};

struct DriverHostStats {
  uint64_t restarts = 0;
  uint64_t requests_submitted = 0;
  uint64_t requests_completed = 0;
  uint64_t requests_interrupted = 0;
  uint64_t protocol_violations = 0;
  uint64_t log_lines = 0;
  uint64_t log_lines_suppressed = 0;
  uint64_t heartbeats = 0;
  uint64_t waits_handed_over = 0;  // Waits that slept at once: the driver runs on the waiter's CPU
  int64_t last_recovery_ns = 0;    // detect → ready of the latest recovery
};

class Host {
 public:
  virtual ~Host() = default;

  virtual const std::string& name() const = 0;
  virtual DeviceState state() const = 0;
  // The most recent detections, oldest first.
  virtual std::vector<Detection> detections() const = 0;
  virtual DriverHostStats stats() const = 0;
  // The recorder events go to (Recorder::Off() when none) and this device's id in it.
  virtual recorder::Recorder& recorder() const = 0;
  virtual uint32_t recorder_device() const = 0;

  // Not owned; set before Start (and cleared after Shutdown).
  virtual void set_listener(DriverHostListener* listener) = 0;
  // Starts the driver (the work happens on the host's loop).
  virtual void Start() = 0;
  // Stops the driver; blocks until it is stopped.
  virtual void Shutdown() = 0;
  // Kills the driver the way a fault would (SIGKILL, SIGSTOP ...).
  virtual void Kill(int signal) = 0;
  // Arms a failpoint spec in the running driver and every later one.
  virtual Result<void> SetFailpoints(const std::string& spec, int64_t timeout_ns = 2'000'000'000) = 0;
  // The running driver's failpoint sites with their hit and trigger counts.
  virtual Result<std::vector<FailpointCount>> QueryFailpoints(int64_t timeout_ns = 2'000'000'000) = 0;

  // ---- data path (one client thread) ----
  // Buffers in the pool: Alloc returns an offset, or nullopt when none is free.
  virtual std::optional<uint32_t> AllocBuffer() = 0;
  virtual void FreeBuffer(uint32_t offset) = 0;
  virtual std::byte* buffer(uint32_t offset) = 0;
  virtual uint32_t buffer_size() const = 0;
  // Queues requests; returns how many were accepted (fewer when full).
  virtual Result<size_t> Submit(std::span<const Request> requests) = 0;
  // Completions now (Poll), or within `timeout_ns` (Wait); how many.
  virtual size_t Poll(std::span<Completion> out) = 0;
  virtual size_t Wait(std::span<Completion> out, int64_t timeout_ns) = 0;

  // ---- control path (any thread but the loop) ----
  virtual Result<std::string> Call(uint32_t method, std::string body, int64_t timeout_ns) = 0;
  // Several calls in one message, run in order by the driver: their bodies
  // in order, or the first failed call's error (the later ones are not run).
  virtual Result<std::vector<std::string>> CallBatch(std::vector<DriverCall> calls, int64_t timeout_ns) = 0;
};

}  // namespace umbra::runtime
