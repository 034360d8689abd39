#include "runtime/supervisor/restart_policy.h"

#include <algorithm>

namespace umbra::runtime {

RestartPolicy::Decision RestartPolicy::OnCrash(int64_t now_ns, int64_t up_since_ns) {
  if (up_since_ns >= 0 && now_ns - up_since_ns >= options_.stable_period_ns) consecutive_ = 0;
  while (!recent_.empty() && now_ns - recent_.front() > options_.window_ns) recent_.pop_front();
  if (recent_.size() >= options_.budget) return {.give_up = true, .delay_ns = 0};
  recent_.push_back(now_ns);
  ++consecutive_;
  if (consecutive_ <= 1) return {};
  int64_t delay = options_.backoff_initial_ns;
  for (uint32_t i = 2; i < consecutive_ && delay < options_.backoff_max_ns; ++i) delay *= 2;
  return {.give_up = false, .delay_ns = std::min(delay, options_.backoff_max_ns)};
}

void RestartPolicy::Reset() {
  consecutive_ = 0;
  recent_.clear();
}

}  // namespace umbra::runtime
