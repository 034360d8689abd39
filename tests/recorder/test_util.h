// Helpers shared by the recorder tests: temporary files and hand-built traces.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "recorder/event.h"

namespace umbra::recorder::testing {

// A fresh directory removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "umbra-recorder-XXXXXX").string();
    path_ = mkdtemp(templ.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

constexpr int64_t kUs = 1000;
constexpr int64_t kMs = 1'000'000;

// Builds a trace by appending events at given times.
class TraceBuilder {
 public:
  TraceBuilder() { trace_.header.start_monotonic_ns = 0; }
  DeviceId Device(std::string name, std::string device_class) {
    trace_.devices.push_back({std::move(name), std::move(device_class)});
    return static_cast<DeviceId>(trace_.devices.size() - 1);
  }
  TraceBuilder& At(int64_t t, DeviceId d, EventBody body) {
    trace_.events.push_back(Event{t, d, std::move(body)});
    return *this;
  }
  TraceBuilder& Ok(int64_t t, DeviceId d, RequestOp op = RequestOp::kTransmit) {
    return At(t, d, RequestCompleted{op, RequestOutcome::kOk, 64, 10 * kUs});
  }
  TraceBuilder& Phase(DeviceId d, RecoveryPhase p, int64_t begin, int64_t end,
                      PhaseOutcome outcome = PhaseOutcome::kDone) {
    At(begin, d, PhaseBegin{p});
    return At(end, d, PhaseEnd{p, outcome});
  }
  Trace& trace() { return trace_; }

 private:
  Trace trace_;
};

// A full recovery of `d` from a segfault at `fault` (all phases, 10 µs each
// after a detection 50 µs later), resume ending at fault + 50 µs + 80 µs.
inline void FullRecovery(TraceBuilder& b, DeviceId d, int64_t fault, std::string action = "segfault") {
  b.At(fault, d, FaultInjected{"nic.tx.entry", std::move(action), 7});
  int64_t t = fault + 50 * kUs;
  b.At(t, d, Detected{DetectionReason::kSignal, 11});
  for (int p = 0; p < kPhaseCount; ++p, t += 10 * kUs) b.Phase(d, RecoveryPhase(p), t, t + 10 * kUs);
}

}  // namespace umbra::recorder::testing
