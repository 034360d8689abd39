#include "drivers/sdk/fiber.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>

#if defined(UMBRA_TSAN)
extern "C" {
void* __tsan_get_current_fiber();
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif

namespace umbra::sdk {

namespace ctx = boost::context;

struct FiberScheduler::Fiber {
  std::function<void()> fn;
  ctx::fiber self;    // the fiber's own continuation
  ctx::fiber caller;  // where to return on Suspend
  bool done = false;
#if defined(UMBRA_TSAN)
  void* tsan_fiber = nullptr;
  void* tsan_caller = nullptr;
#endif
};

FiberScheduler::FiberScheduler(boost::asio::io_context& io) : io_(io) {}
FiberScheduler::~FiberScheduler() = default;

void FiberScheduler::Spawn(std::function<void()> fn) {
  auto* f = new Fiber{.fn = std::move(fn)};
  f->self = ctx::fiber(std::allocator_arg, ctx::fixedsize_stack(64 * 1024), [f](ctx::fiber&& caller) {
    f->caller = std::move(caller);
    f->fn();
    f->done = true;
#if defined(UMBRA_TSAN)
    __tsan_switch_to_fiber(f->tsan_caller, 0);
#endif
    return std::move(f->caller);
  });
#if defined(UMBRA_TSAN)
  f->tsan_fiber = __tsan_create_fiber(0);
#endif
  Run(f);
}

void FiberScheduler::Run(Fiber* f) {
  Fiber* outer = current_;
  current_ = f;
#if defined(UMBRA_TSAN)
  f->tsan_caller = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(f->tsan_fiber, 0);
#endif
  f->self = std::move(f->self).resume();
  current_ = outer;
  if (f->done) {
#if defined(UMBRA_TSAN)
    __tsan_destroy_fiber(f->tsan_fiber);
#endif
    delete f;
  }
}

void FiberScheduler::Suspend() {
  Fiber* f = current_;
  if (f == nullptr) {
    // Sleep or WaitInterrupt outside a fiber (in OnRequest, OnInterrupt,
    // Stop): a driver bug. Say so, then crash as any driver bug does.
    static const char kMessage[] = "umbra driver: blocking call outside a fiber (Sleep/WaitInterrupt)\n";
    (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    std::abort();
  }
#if defined(UMBRA_TSAN)
  __tsan_switch_to_fiber(f->tsan_caller, 0);
#endif
  f->caller = std::move(f->caller).resume();
}

void FiberScheduler::Resume(Fiber* f) {
  boost::asio::post(io_, [this, f] { Run(f); });
}

void FiberScheduler::Sleep(int64_t ns) {
  boost::asio::steady_timer timer(io_, std::chrono::nanoseconds(ns));
  Fiber* me = current_;
  timer.async_wait([this, me](const boost::system::error_code&) { Resume(me); });
  Suspend();
}

}  // namespace umbra::sdk
