// Names of device states and detection reasons, for logs, errors and the recorder.
#include "runtime/supervisor/driver_host.h"

#include <signal.h>
#include <string.h>

#include "recorder/recorder.h"
#include "runtime/supervisor/driver_host_impl.h"

namespace umbra::runtime {

const char* DeviceStateName(DeviceState s) {
  switch (s) {
    case DeviceState::kStopped: return "stopped";
    case DeviceState::kStarting: return "starting";
    case DeviceState::kRunning: return "running";
    case DeviceState::kRecovering: return "recovering";
    case DeviceState::kFailed: return "failed";
    case DeviceState::kStopping: return "stopping";
  }
  return "?";
}

const char* DetectReasonName(DetectReason r) {
  switch (r) {
    case DetectReason::kExit: return "exit";
    case DetectReason::kSignal: return "signal";
    case DetectReason::kChannelEof: return "channel-eof";
    case DetectReason::kProtocolViolation: return "protocol-violation";
    case DetectReason::kMissedHeartbeat: return "missed-heartbeat";
    case DetectReason::kRequestDeadline: return "request-deadline";
    case DetectReason::kProbeFailed: return "probe-failed";
    case DetectReason::kHandshakeTimeout: return "handshake-timeout";
    case DetectReason::kSpawnFailed: return "spawn-failed";
    case DetectReason::kHostRequest: return "host-request";
    case DetectReason::kUpgrade: return "upgrade";
  }
  return "?";
}

std::string Detection::ToString() const {
  std::string s = DetectReasonName(reason);
  if (reason == DetectReason::kExit) s += " code " + std::to_string(code);
  if (reason == DetectReason::kSignal) s += std::string(" ") + sigabbrev_np(code);
  if (!detail.empty()) s += ": " + detail;
  return s;
}

recorder::DetectionReason ToRecorder(DetectReason r) {
  switch (r) {
    case DetectReason::kExit: return recorder::DetectionReason::kExitCode;
    case DetectReason::kSignal: return recorder::DetectionReason::kSignal;
    case DetectReason::kChannelEof: return recorder::DetectionReason::kChannelEof;
    case DetectReason::kProtocolViolation: return recorder::DetectionReason::kProtocolViolation;
    case DetectReason::kMissedHeartbeat: return recorder::DetectionReason::kMissedHeartbeat;
    case DetectReason::kRequestDeadline: return recorder::DetectionReason::kDeadline;
    case DetectReason::kProbeFailed: return recorder::DetectionReason::kProbeFailed;
    case DetectReason::kHandshakeTimeout: return recorder::DetectionReason::kStartupTimeout;
    case DetectReason::kSpawnFailed: return recorder::DetectionReason::kSpawnFailed;
    case DetectReason::kHostRequest: return recorder::DetectionReason::kSignal;
    case DetectReason::kUpgrade: return recorder::DetectionReason::kUpgrade;
  }
  return recorder::DetectionReason::kSignal;
}

}  // namespace umbra::runtime
