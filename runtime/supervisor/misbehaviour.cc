#include "runtime/supervisor/misbehaviour.h"

namespace umbra::runtime {

namespace {
constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kMs = 1'000'000;
}  // namespace

std::optional<std::string> MisbehaviourWatch::OnMessage(int64_t now_ns) {
  if (now_ns - window_start_ns_ >= kSecond) {
    window_start_ns_ = now_ns;
    window_messages_ = 0;
  }
  if (++window_messages_ <= limits_.messages_per_second) return std::nullopt;
  return "control-message flood: more than " + std::to_string(limits_.messages_per_second) + " messages in one second";
}

std::optional<std::string> MisbehaviourWatch::OnTick(int64_t now_ns, bool idle, std::optional<int64_t> cpu_ns) {
  if (limits_.idle_cpu_window_ns <= 0 || !idle || !cpu_ns) {
    idle_since_ns_ = -1;
    return std::nullopt;
  }
  if (idle_since_ns_ < 0) {
    idle_since_ns_ = now_ns;
    idle_since_cpu_ns_ = *cpu_ns;
    return std::nullopt;
  }
  const int64_t wall = now_ns - idle_since_ns_;
  if (wall < limits_.idle_cpu_window_ns) return std::nullopt;
  const int64_t used = *cpu_ns - idle_since_cpu_ns_;
  // Judged over one window, then a fresh one begins.
  idle_since_ns_ = now_ns;
  idle_since_cpu_ns_ = *cpu_ns;
  if (static_cast<double>(used) <= limits_.idle_cpu_share * static_cast<double>(wall)) return std::nullopt;
  return "held a CPU with nothing outstanding: " + std::to_string(used / kMs) + " ms of CPU in " +
         std::to_string(wall / kMs) + " ms";
}

}  // namespace umbra::runtime
