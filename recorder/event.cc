#include "recorder/event.h"

namespace umbra::recorder {

const char* RequestOpName(RequestOp op) {
  switch (op) {
    case RequestOp::kRead: return "read";
    case RequestOp::kWrite: return "write";
    case RequestOp::kFlush: return "flush";
    case RequestOp::kDiscard: return "discard";
    case RequestOp::kTransmit: return "transmit";
    case RequestOp::kReceive: return "receive";
    case RequestOp::kPlayback: return "playback";
    case RequestOp::kCapture: return "capture";
    case RequestOp::kControl: return "control";
    case RequestOp::kOther: return "other";
  }
  return "?";
}

const char* RequestOutcomeName(RequestOutcome outcome) {
  switch (outcome) {
    case RequestOutcome::kOk: return "ok";
    case RequestOutcome::kFailed: return "failed";
    case RequestOutcome::kInterrupted: return "interrupted";
  }
  return "?";
}

const char* DetectionReasonName(DetectionReason reason) {
  switch (reason) {
    case DetectionReason::kExitCode: return "exit-code";
    case DetectionReason::kSignal: return "signal";
    case DetectionReason::kMissedHeartbeat: return "missed-heartbeat";
    case DetectionReason::kDeadline: return "deadline";
    case DetectionReason::kProtocolViolation: return "protocol-violation";
    case DetectionReason::kChannelEof: return "channel-eof";
    case DetectionReason::kProbeFailed: return "probe-failed";
    case DetectionReason::kStartupTimeout: return "startup-timeout";
    case DetectionReason::kSpawnFailed: return "spawn-failed";
    case DetectionReason::kUpgrade: return "upgrade";
  }
  return "?";
}

const char* RecoveryPhaseName(RecoveryPhase phase) {
  switch (phase) {
    case RecoveryPhase::kIsolate: return "isolate";
    case RecoveryPhase::kQuiesce: return "quiesce";
    case RecoveryPhase::kRestart: return "restart";
    case RecoveryPhase::kProbe: return "probe";
    case RecoveryPhase::kReplayConfiguration: return "replay-configuration";
    case RecoveryPhase::kReopen: return "reopen";
    case RecoveryPhase::kResubmit: return "resubmit";
    case RecoveryPhase::kResume: return "resume";
    case RecoveryPhase::kCount: return "?";
  }
  return "?";
}

const char* DispositionName(Disposition disposition) {
  switch (disposition) {
    case Disposition::kQueued: return "queued";
    case Disposition::kDropped: return "dropped";
    case Disposition::kAnswered: return "answered";
    case Disposition::kFailed: return "failed";
    case Disposition::kReplayed: return "replayed";
  }
  return "?";
}

const char* LinkEventName(LinkEvent event) {
  switch (event) {
    case LinkEvent::kSupplierDown: return "supplier-down";
    case LinkEvent::kSupplierUp: return "supplier-up";
    case LinkEvent::kSupplierFailed: return "supplier-failed";
  }
  return "?";
}

std::string Trace::DeviceName(DeviceId id) const {
  if (id == kNoDevice) return "-";
  if (id < devices.size()) return devices[id].name;
  return "device#" + std::to_string(id);
}

std::string Trace::DeviceClass(DeviceId id) const {
  if (id < devices.size()) return devices[id].device_class;
  return "";
}

RequestOutcome OutcomeOfStatus(int32_t status) {
  if (status == 0) return RequestOutcome::kOk;
  if (status == static_cast<int32_t>(Errc::kInterrupted) || status == static_cast<int32_t>(Errc::kNoDevice))
    return RequestOutcome::kInterrupted;
  return RequestOutcome::kFailed;
}

}  // namespace umbra::recorder
