// Fibers on an Asio event loop: driver code that blocks like kernel code.
//
// Spawn() starts a fiber at once; inside it, Suspend() returns control to the
// loop until someone calls Resume(fiber) (typically a timer or an interrupt
// handler). Stacks are small fixed-size allocations (64 KiB).
//
//   FiberScheduler fibers(io);
//   fibers.Spawn([&] { fibers.Sleep(1'000'000); DoMore(); });
//
// Thread safety: single-threaded; all calls on the loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace umbra::sdk {

class FiberScheduler {
 public:
  struct Fiber;

  explicit FiberScheduler(boost::asio::io_context& io);
  ~FiberScheduler();

  void Spawn(std::function<void()> fn);
  // The running fiber, or nullptr on the loop itself.
  Fiber* current() const { return current_; }
  // Inside a fiber: yield until Resume(current()).
  void Suspend();
  // Schedules `fiber` to continue (from the loop, not from inside a fiber).
  void Resume(Fiber* fiber);
  // Inside a fiber: sleep on an Asio timer.
  void Sleep(int64_t ns);

 private:
  void Run(Fiber* fiber);

  boost::asio::io_context& io_;
  Fiber* current_ = nullptr;
};

}  // namespace umbra::sdk
