#include "runtime/supervisor/restart_policy.h"

#include <algorithm>

namespace umbra::runtime {

const char* RestartVerdictName(RestartPolicy::Verdict v) {
  switch (v) {
    case RestartPolicy::Verdict::kImmediate: return "immediate";
    case RestartPolicy::Verdict::kBackoff: return "backoff";
    case RestartPolicy::Verdict::kGiveUp: return "give-up";
  }
  return "?";
}

RestartPolicy::Decision RestartPolicy::OnCrash(int64_t now_ns, int64_t up_since_ns) {
  const int64_t up_ns = up_since_ns < 0 ? 0 : now_ns - up_since_ns;
  if (up_ns >= options_.stable_period_ns) recent_.clear();
  if (up_ns >= options_.crash_loop_ns) consecutive_ = 0;
  while (!recent_.empty() && now_ns - recent_.front() > options_.window_ns) recent_.pop_front();
  if (recent_.size() >= options_.budget) return {.give_up = true, .verdict = Verdict::kGiveUp};
  recent_.push_back(now_ns);
  ++consecutive_;
  // The first restart of a loop is immediate: one quick crash may be bad luck.
  const int64_t delay = BackoffFor(consecutive_);
  return {.delay_ns = delay, .verdict = delay > 0 ? Verdict::kBackoff : Verdict::kImmediate};
}

int64_t RestartPolicy::BackoffFor(uint32_t consecutive) const {
  if (consecutive <= 1 || options_.backoff_initial_ns <= 0) return 0;
  int64_t delay = options_.backoff_initial_ns;
  for (uint32_t i = 2; i < consecutive && delay < options_.backoff_max_ns; ++i) delay *= 2;
  return std::min(delay, options_.backoff_max_ns);
}

void RestartPolicy::Reset() {
  consecutive_ = 0;
  recent_.clear();
}

}  // namespace umbra::runtime
