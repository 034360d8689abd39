// The recorder's event model in C++: what the hot-path API records, what the
// reader returns and what analysis and the exporters consume. It mirrors
// proto/umbra/trace.proto without exposing protobuf types.
//
//   Event e{.time_ns = MonotonicNanos(), .device = nic,
//           .body = RequestCompleted{RequestOp::kTransmit, RequestOutcome::kOk, 64, 900}};
//
// Thread safety: plain values; no shared state.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace umbra::recorder {

// Index of a device in the trace's name table (Recorder::RegisterDevice).
using DeviceId = uint32_t;
inline constexpr DeviceId kNoDevice = std::numeric_limits<DeviceId>::max();

enum class RequestOp : uint8_t {
  kRead,
  kWrite,
  kFlush,
  kDiscard,
  kTransmit,
  kReceive,
  kPlayback,
  kCapture,
  kControl,
  kOther,
};
enum class RequestOutcome : uint8_t { kOk, kFailed, kInterrupted };
enum class ExitKind : uint8_t { kCode, kSignal };
enum class DetectionReason : uint8_t {
  kExitCode,
  kSignal,
  kMissedHeartbeat,
  kDeadline,
  kProtocolViolation,
  kChannelEof,
  kProbeFailed,
  kStartupTimeout,
  kSpawnFailed,
  kUpgrade,  // not a fault: a live update replaced the driver
};
// In the order a recovery runs them; kCount is the number of phases.
enum class RecoveryPhase : uint8_t {
  kIsolate,
  kQuiesce,
  kRestart,
  kProbe,
  kReplayConfiguration,
  kReopen,
  kResubmit,
  kResume,
  kCount,
};
inline constexpr int kPhaseCount = static_cast<int>(RecoveryPhase::kCount);
enum class PhaseOutcome : uint8_t { kDone, kAborted };
enum class Disposition : uint8_t { kQueued, kDropped, kAnswered, kFailed, kReplayed };
inline constexpr int kDispositionCount = 5;
enum class LinkEvent : uint8_t { kSupplierDown, kSupplierUp, kSupplierFailed };
enum class VerifyOutcome : uint8_t { kPassed, kFailed };
enum class RunMarkerKind : uint8_t { kBegin, kEnd };

// Stable lower-case names, used in reports, exports and docs ("replay-configuration").
const char* RequestOpName(RequestOp op);
const char* RequestOutcomeName(RequestOutcome outcome);
const char* DetectionReasonName(DetectionReason reason);
const char* RecoveryPhaseName(RecoveryPhase phase);
const char* DispositionName(Disposition disposition);
const char* LinkEventName(LinkEvent event);

// The outcome of a request whose completion carries `status` (0 or an Errc):
// ok; interrupted when the driver died under it (kInterrupted) or the device
// stopped under it (kNoDevice) — the shadow, not the application, handles
// those; failed otherwise.
RequestOutcome OutcomeOfStatus(int32_t status);

struct RequestSubmitted {
  RequestOp op;
  uint64_t size;
  bool operator==(const RequestSubmitted&) const = default;
};
struct RequestCompleted {
  RequestOp op;
  RequestOutcome outcome;
  uint64_t size;
  int64_t latency_ns;
  bool operator==(const RequestCompleted&) const = default;
};
struct DriverSpawned {
  int64_t pid;
  bool operator==(const DriverSpawned&) const = default;
};
struct DriverReady {
  bool operator==(const DriverReady&) const = default;
};
struct DriverExited {
  ExitKind kind;
  int32_t value;  // exit code or signal number
  bool operator==(const DriverExited&) const = default;
};
struct FaultInjected {
  std::string site;
  std::string action;
  uint64_t seed;
  bool operator==(const FaultInjected&) const = default;
};
struct Detected {
  DetectionReason reason;
  int64_t detail;  // exit code or signal number when the reason has one
  bool operator==(const Detected&) const = default;
};
struct PhaseBegin {
  RecoveryPhase phase;
  bool operator==(const PhaseBegin&) const = default;
};
struct PhaseEnd {
  RecoveryPhase phase;
  PhaseOutcome outcome;
  bool operator==(const PhaseEnd&) const = default;
};
struct DeviceFailed {
  bool operator==(const DeviceFailed&) const = default;
};
struct RequestsDisposed {
  Disposition disposition;
  uint64_t count;
  bool operator==(const RequestsDisposed&) const = default;
};
struct LinkChanged {
  LinkEvent event;
  DeviceId supplier;
  bool operator==(const LinkChanged&) const = default;
};
struct WorkloadVerified {
  std::string workload;
  VerifyOutcome outcome;
  std::string detail;
  bool operator==(const WorkloadVerified&) const = default;
};
struct RunMarker {
  RunMarkerKind kind;
  std::string run_id;
  uint64_t seed;
  bool operator==(const RunMarker&) const = default;
};

using EventBody =
    std::variant<RequestSubmitted, RequestCompleted, DriverSpawned, DriverReady, DriverExited, FaultInjected, Detected,
                 PhaseBegin, PhaseEnd, DeviceFailed, RequestsDisposed, LinkChanged, WorkloadVerified, RunMarker>;

struct Event {
  int64_t time_ns = 0;          // CLOCK_MONOTONIC (MonotonicNanos)
  DeviceId device = kNoDevice;  // kNoDevice for run markers and verification of a whole run
  EventBody body;
  bool operator==(const Event&) const = default;
};

struct TraceHeader {
  uint32_t format_version = 1;
  int64_t start_unix_ns = 0;
  int64_t start_monotonic_ns = 0;
  std::string host_name;
  std::string kernel;
  uint32_t cpus = 0;
  uint32_t sampling_rate = 1;  // 1 in N per-request events kept
  std::string tool_version;
  bool operator==(const TraceHeader&) const = default;
};

struct DeviceInfo {
  std::string name;          // "nic0"
  std::string device_class;  // "net"
  bool operator==(const DeviceInfo&) const = default;
};

// What kind of damage stopped reading.
enum class DamageKind : uint8_t {
  kUnreadable,  // a record is cut short, does not parse or makes no sense
  kIncomplete,  // the file ends cleanly between records but without the end record
  kTrailing,    // bytes after the end record
};

// Where and why reading stopped early. Everything before `offset` was read.
struct TraceDamage {
  uint64_t offset = 0;  // byte offset of the first unreadable record
  std::string message;  // "truncated trace: record at byte 812 declares 40 bytes, 13 remain"
  DamageKind kind = DamageKind::kUnreadable;
};

// A whole trace in memory. Events are in file order (drain order, roughly but
// not strictly by time); analysis sorts by time_ns itself.
struct Trace {
  TraceHeader header;
  std::vector<DeviceInfo> devices;  // indexed by DeviceId
  std::vector<Event> events;
  uint64_t lost_events = 0;  // sum of the trace's EventsLost records
  bool complete = false;     // the end record of a clean close was read
  std::optional<TraceDamage> damage;

  // The device's name, or "device#<id>" when the table lacks it, or "-" for kNoDevice.
  std::string DeviceName(DeviceId id) const;
  // The device's class, or "" when unknown.
  std::string DeviceClass(DeviceId id) const;
};

}  // namespace umbra::recorder
