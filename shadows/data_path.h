// The data path a shadow class would otherwise copy from another class, in
// two shapes:
//
// RoundTrip: one synchronous request, as a client call wants it. While the
// driver recovers the call waits for it (the queue policy; restart-only mode
// fails it instead), a request a crash interrupted is sent again once the
// driver is back, and the deadline bounds it all.
//
//   auto c = UMBRA_TRY(RoundTrip(*this, [this] { return CheckServing(); },
//                                {.request = {.op = kEcho, .offset = buf, .length = n, .capacity = n},
//                                 .prepare = [&] { std::memcpy(host().buffer(buf), data, n); },
//                                 .deadline_ns = MonotonicNanos() + timeout_ns}));
//
// DataPath: a thread of the shadow's own that keeps requests posted while the
// shadow is passive (receive buffers, queued writes), takes their
// completions, and owns the buffers in flight: the pump the serial, net and
// sound classes each wrote. The class gives two hooks:
//   submit     — data-path thread, only while passive and not paused: post
//                what is queued with Post() (and reads, to keep them posted);
//   completed  — data-path thread: one completion and what was posted for it.
//                A status of kInterrupted means the driver died with it; the
//                class decides whether to post it again.
// Post allocates nothing: the class allocates the buffer (AllocBuffer) and
// fills it; DataPath frees it after `completed` returns, and frees whatever is
// still in flight when it stops. Stop order: the class's destructor calls
// Shadow::Stop() (no more recoveries), then DataPath::Stop() (the thread
// joined, buffers freed), then its own state goes.
//
//   DataPath pump(host(), *this, {.submit = [this] { SubmitQueued(); },
//                                 .completed = [this](auto& c, auto& p) { Take(c, p); }});
//   pump.Start("uart0");   ...   pump.Kick();  // a client queued something
//
// Thread safety: Post, Pause and Resume from the hooks (the data-path
// thread); Kick, Start, Stop and in_flight() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/result.h"
#include "runtime/supervisor/driver_host.h"
#include "shadows/shadow.h"

namespace umbra::shadows {

struct RoundTripRequest {
  runtime::Request request;       // cookie is set by RoundTrip
  std::function<void()> prepare;  // fills the payload before every (re)submission; may be empty
  int64_t deadline_ns = 0;        // MonotonicNanos() deadline
};

// The request's completion (status 0, or the driver's error: the class turns
// it into its own). kTimeout at the deadline; `check_serving`'s error when the
// shadow cannot serve (failed, stopped, restart-only and restarting); in
// restart-only mode a crash under the request is kInterrupted.
// One request in flight per class at a time: the caller reaps the host.
Result<runtime::Completion> RoundTrip(Shadow& shadow, const std::function<Result<void>()>& check_serving,
                                      RoundTripRequest r);

// What the class posted, handed back with its completion.
struct Posted {
  uint16_t op = 0;
  uint32_t buffer = 0;
  uint32_t length = 0;
  uint64_t tag = 0;  // the class's own (a stream position, a kind)
  int64_t submit_ns = 0;
};

class DataPath {
 public:
  struct Hooks {
    std::function<void()> submit;
    std::function<void(const runtime::Completion&, const Posted&)> completed;
    int64_t wait_ns = 1'000'000;  // longest sleep between looks
  };

  DataPath(runtime::Host& host, Shadow& shadow, Hooks hooks) : host_(host), shadow_(shadow), hooks_(std::move(hooks)) {}
  ~DataPath() { Stop(); }
  DataPath(const DataPath&) = delete;
  DataPath& operator=(const DataPath&) = delete;

  // Starts the thread (named "<name>-dp"). Nothing when running.
  void Start(const std::string& name);
  // Joins the thread and frees the buffers still in flight. Idempotent.
  void Stop();
  // Wakes the thread: something was queued (or a pause may end).
  void Kick();

  // From `submit`: posts one request whose payload is `buffer` (allocated by
  // the class, freed here after its completion). The buffer is freed at once
  // when the driver is gone or the ring is full; false then.
  bool Post(runtime::Request request, uint64_t tag);
  // From a hook: no `submit` until Resume (e.g. until the class learned what
  // a new driver already sent).
  void Pause() { paused_ = true; }
  void Resume() { paused_ = false; }

  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  void Dispatch(const runtime::Completion& c);
  void FreeAll();

  runtime::Host& host_;  // owned by the Supervisor, outlives the shadow
  Shadow& shadow_;       // the class that owns this DataPath
  const Hooks hooks_;

  std::unordered_map<uint64_t, Posted> posted_;  // by cookie; the data-path thread only
  uint64_t next_cookie_ = 1;
  bool paused_ = false;  // the data-path thread only
  std::atomic<size_t> in_flight_{0};

  std::mutex mu_;  // stop_, kicked_
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  std::thread thread_;  // runs Loop; joined by Stop
};

}  // namespace umbra::shadows
