// The driver process's side of the protocol: handshake, event loop, data path,
// heartbeat, fatal-signal reporting.

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "drivers/sdk/driver.h"
#include "drivers/sdk/fiber.h"
#include "faultinject/failpoint.h"
#include "base/clock.h"
#include "base/spin.h"
#include "runtime/ipc/control_channel.h"
#include "runtime/ipc/data_channel.h"
#include "runtime/ipc/shared_memory.h"
#include "umbra/control.pb.h"

namespace umbra::sdk {
namespace {

namespace asio = boost::asio;
using faultinject::SiteFault;
constexpr int kControlFd = 3;
// How long the submission loop polls for requests before it sleeps on the
// doorbell (taking turns with threads that want its CPU: base/spin.h).
constexpr int64_t kSpinNs = 200'000;
// How often that spin looks at the interrupt line and the control channel.
constexpr int64_t kEventLookNs = 10'000;

// The SDK's failpoint sites: every handler's entry and exit, completions,
// interrupts and heartbeats. Drivers declare their own on top.
constexpr std::string_view kSdkSites[] = {
    "sdk.probe", "sdk.probe.exit", "sdk.request",   "sdk.request.exit", "sdk.complete",
    "sdk.call",  "sdk.call.exit",  "sdk.interrupt", "sdk.heartbeat",    "sdk.stop",
};

// ---- fatal-signal reporting ----
// Serialized Crash messages, one per signal (and, for SIGSYS from the
// sandbox's seccomp filter, one per system call number), built before
// anything can crash: the handler only calls send(2), which is
// async-signal-safe.
struct CrashNote {
  char bytes[16];
  size_t size = 0;
};
CrashNote g_crash_notes[65];
constexpr int kSyscallNotes = 512;
constexpr int kSysSeccomp = 1;  // si_code of a SIGSYS from a seccomp filter (SYS_SECCOMP)
CrashNote g_denied_notes[kSyscallNotes];
char g_exiting_note[8];
size_t g_exiting_size = 0;
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

bool g_stop_after_report = false;  // no core dump would be written: see OnFatalSignal
// The init of a PID namespace of its own (the sandbox): a signal it sends
// itself with the default action is ignored, so it cannot stop or kill
// itself by raise(); it waits for the host instead.
bool g_is_init = false;

bool Report(const CrashNote& note) {
  return note.size > 0 &&
         send(kControlFd, note.bytes, note.size, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(note.size);
}

void OnFatalSignal(int sig, siginfo_t* info, void*) {
  bool reported = false;
  if (sig == SIGSYS && info != nullptr && info->si_code == kSysSeccomp && info->si_syscall >= 0 &&
      info->si_syscall < kSyscallNotes) {
    reported = Report(g_denied_notes[info->si_syscall]);
  } else if (sig > 0 && sig < 65) {
    reported = Report(g_crash_notes[sig]);
  }
  if (g_is_init) {
    // Reported: the host stops and kills it (and, with it, its namespace).
    // Not reported (the host is gone): the parent-death signal or this exit.
    if (reported) {
      for (;;) pause();
    }
    _exit(128 + sig);
  }
  // Reported, and no core to write: stop, and let the host kill this process
  // once its successor runs, so that the teardown of its address space does
  // not compete with the recovery. (If the host is gone, the parent-death
  // signal kills it; if the host misses the report, a stopped driver sends no
  // heartbeat.)
  if (reported && g_stop_after_report) raise(SIGSTOP);
  // Die of the same signal, so that the exit status (and a core dump, when
  // enabled) tell the truth.
  signal(sig, SIG_DFL);
  raise(sig);
}

void OnExit() {
  if (g_exiting_size > 0) send(kControlFd, g_exiting_note, g_exiting_size, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void BuildNote(CrashNote& note, int sig, int denied_syscall_plus_one) {
  proto::DriverToHost m;
  m.mutable_crash()->set_signal(sig);
  if (denied_syscall_plus_one > 0) m.mutable_crash()->set_denied_syscall_plus_one(denied_syscall_plus_one);
  note.size = m.ByteSizeLong();
  m.SerializeToArray(note.bytes, sizeof note.bytes);
}

void InstallCrashReporting() {
  for (int sig : kFatalSignals) BuildNote(g_crash_notes[sig], sig, 0);
  for (int nr = 0; nr < kSyscallNotes; ++nr) BuildNote(g_denied_notes[nr], SIGSYS, nr + 1);
  proto::DriverToHost e;
  e.mutable_exiting();
  g_exiting_size = e.ByteSizeLong();
  e.SerializeToArray(g_exiting_note, sizeof g_exiting_note);
  rlimit core{};
  g_stop_after_report = getrlimit(RLIMIT_CORE, &core) == 0 && core.rlim_cur == 0;
  g_is_init = getpid() == 1;
  // The handler needs its own stack: a stack overflow is a fault too.
  static std::vector<char> alt(64 * 1024);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);
  for (int sig : kFatalSignals) {
    struct sigaction sa {};
    sa.sa_sigaction = OnFatalSignal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
  }
  std::atexit(OnExit);
}

class ProcessRuntime final : public Context {
 public:
  ProcessRuntime(std::unique_ptr<Driver> driver)
      : driver_(std::move(driver)), control_(UniqueFd(kControlFd)), fibers_(io_), control_watch_(io_),
        submit_watch_(io_), interrupt_watch_(io_), heartbeat_(io_) {}

  ~ProcessRuntime() override {
    control_watch_.release();
    submit_watch_.release();
    interrupt_watch_.release();
  }

  int Run() {
    if (auto r = Handshake(); !r) {
      Log(LogLevel::kError, "handshake failed: " + r.error().message);
      return 2;
    }
    control_watch_.assign(control_.fd());
    WatchControl();
    StartHeartbeat();
    io_.run();
    return exit_code_;
  }

  // ---- Context ----
  const DeviceInfo& device() const override { return device_; }
  std::byte* pool() const override { return data_->pool(); }
  uint64_t pool_size() const override { return data_->pool_size(); }
  const HwView& hw() const override { return hw_view_; }

  void Complete(const ipc::Descriptor& req, int32_t status, uint32_t length, uint64_t arg) override {
    faultinject::Action f = UMBRA_FAILPOINT("sdk.complete");
    if (f.fault == SiteFault::kDropCompletion) return;
    if (f.fault == SiteFault::kWrongLength) length += static_cast<uint32_t>(f.value ? f.value : 1 << 20);
    if (f.fault == SiteFault::kDuplicateId) PushCompletion(req, status, length, arg);
    PushCompletion(req, status, length, arg);
  }

  void PushCompletion(const ipc::Descriptor& req, int32_t status, uint32_t length, uint64_t arg) {
    ipc::Descriptor d = req;
    d.status = status;
    d.length = length;
    d.arg = arg;
    // The ring cannot be full: the host never has more in flight than it holds.
    if (!data_->complete().TryPush(d)) {
      pending_completions_.push_back(d);
      return;
    }
    completions_unpublished_ = true;
  }

  void RingDoorbell() override {
    if (hw_doorbell_.valid()) hw_doorbell_.Signal();
  }

  void Log(LogLevel level, std::string_view text) override {
    proto::DriverToHost m;
    auto* l = m.mutable_log();
    l->set_level(static_cast<proto::Log::Level>(level));
    l->set_text(std::string(text.substr(0, 4096)));
    (void)control_.Send(m, {}, ipc::Blocking::kDontWait);
  }

  void Spawn(std::function<void()> fn) override { fibers_.Spawn(std::move(fn)); }
  void Sleep(int64_t ns) override { fibers_.Sleep(ns); }

  bool WaitInterrupt(int64_t timeout_ns) override {
    auto* me = fibers_.current();
    if (me == nullptr) return false;
    interrupt_waiters_.push_back(me);
    asio::steady_timer timer(io_, std::chrono::nanoseconds(timeout_ns));
    bool timed_out = false;
    timer.async_wait([&, me](const boost::system::error_code& ec) {
      if (ec) return;
      timed_out = true;
      std::erase(interrupt_waiters_, me);
      fibers_.Resume(me);
    });
    fibers_.Suspend();
    timer.cancel();
    return !timed_out;
  }

 private:
  Result<void> Handshake() {
    proto::DriverToHost hello;
    auto* h = hello.mutable_hello();
    h->set_protocol_version(proto::PROTOCOL_VERSION_CURRENT);
    h->set_driver_name(std::string(driver_->name()));
    h->set_driver_version(std::string(driver_->version()));
    UMBRA_TRY(control_.Send(hello));

    proto::HostToDriver m;
    std::vector<UniqueFd> fds = UMBRA_TRY(control_.Receive(m));
    if (m.msg_case() == proto::HostToDriver::kShutdown) std::_Exit(0);
    if (!m.has_attach()) return Fail(Errc::kProtocol, "expected Attach");
    const auto& a = m.attach();
    if (static_cast<size_t>(a.fds_size()) != fds.size()) {
      return Fail(Errc::kProtocol, "Attach names " + std::to_string(a.fds_size()) + " descriptors but carries " +
                                       std::to_string(fds.size()));
    }
    device_.name = a.device().name();
    device_.compatible = a.device().compatible();
    device_.device_class = a.device().device_class();
    device_.instance = a.device().instance();
    for (const auto& setting : a.settings()) device_.settings[setting.key()] = setting.value();
    heartbeat_period_ns_ = int64_t{a.heartbeat_period_us()} * 1000;
    if (heartbeat_period_ns_ <= 0) heartbeat_period_ns_ = 50'000'000;

    UniqueFd region, submit, complete, hw_region, hw_doorbell, hw_interrupt;
    for (int i = 0; i < a.fds_size(); ++i) {
      UniqueFd& slot = [&]() -> UniqueFd& {
        switch (a.fds(i)) {
          case proto::FD_ROLE_DATA_REGION: return region;
          case proto::FD_ROLE_SUBMIT_DOORBELL: return submit;
          case proto::FD_ROLE_COMPLETE_DOORBELL: return complete;
          case proto::FD_ROLE_HW_REGION: return hw_region;
          case proto::FD_ROLE_HW_DOORBELL: return hw_doorbell;
          case proto::FD_ROLE_HW_INTERRUPT: return hw_interrupt;
          default: return unused_;
        }
      }();
      slot = std::move(fds[i]);
    }
    const auto& d = a.data();
    ipc::DataLayoutInfo layout{.region_size = d.region_size(),
                               .submit_ring_offset = d.submit_ring_offset(),
                               .complete_ring_offset = d.complete_ring_offset(),
                               .ring_entries = d.ring_entries(),
                               .pool_offset = d.pool_offset(),
                               .pool_size = d.pool_size(),
                               .buffer_size = d.buffer_size()};
    data_ = UMBRA_TRY(ipc::DataChannel::Attach(layout, std::move(region), std::move(submit), std::move(complete)));
    if (hw_region.valid()) {
      const auto& hl = a.hw();
      hw_ = UMBRA_TRY(ipc::SharedMemory::Map(std::move(hw_region), hl.region_size()));
      if (hl.registers_offset() + hl.registers_size() > hw_->size() || hl.dma_offset() + hl.dma_size() > hw_->size()) {
        return Fail(Errc::kProtocol, "hardware layout outside its region");
      }
      hw_view_ = HwView{hw_->data() + hl.registers_offset(), hl.registers_size(), hw_->data() + hl.dma_offset(),
                        hl.dma_size()};
      hw_doorbell_ = ipc::EventFd(std::move(hw_doorbell));
      hw_interrupt_ = ipc::EventFd(std::move(hw_interrupt));
    }
    auto& fp = faultinject::FailpointRegistry::Global();
    fp.Declare(std::span<const std::string_view>(kSdkSites));
    fp.set_trigger_sink(&ReportFailpointFired);
    if (!a.failpoints().empty()) {
      if (auto armed = ArmFailpoints(a.failpoints()); !armed) {
        Log(LogLevel::kError, "failpoints not armed: " + armed.error().message);
      }
    }
    proto::DriverToHost attached;
    attached.mutable_attached();
    UMBRA_TRY(control_.Send(attached));
    if (a.standby()) WarmUp();
    return {};
  }

  // A standby has time: fault in the shared memory every failover touches
  // (the rings, the device's registers and queues) and the heap a fiber
  // stack comes from. Not the buffer pools: populating a large pool kept a
  // new standby busy for tens of milliseconds (zeroing and mapping every
  // page), unable to answer the failover that came meanwhile, and a failover
  // touches few buffers. Best effort (MADV_POPULATE_WRITE needs Linux 5.14).
  void WarmUp() {
    constexpr int kPopulateWrite = 23;      // MADV_POPULATE_WRITE
    constexpr uint64_t kHwBytes = 1 << 20;  // registers, then the queues at the start of the DMA pool
    (void)madvise(data_->region().data(), data_->layout().pool_offset, kPopulateWrite);
    if (hw_) (void)madvise(hw_->data(), std::min<uint64_t>(hw_->size(), kHwBytes), kPopulateWrite);
    fibers_.Spawn([] {});
  }

  // Tells the host when a failpoint struck, before its action runs (which
  // may crash this process at once): one datagram, sent from whichever thread
  // hit it, without the channel's (single-threaded) buffer. Actions that
  // end the driver are always told; the others at most once a millisecond,
  // so that a failpoint on every request cannot flood the host.
  static void ReportFailpointFired(std::string_view site, const faultinject::Trigger& trigger) {
    using faultinject::ActionKind;
    static std::atomic<int64_t> last_ns{0};
    const ActionKind a = trigger.action;
    const bool ends_the_driver = a == ActionKind::kSegfault || a == ActionKind::kAbort || a == ActionKind::kHang ||
                                 a == ActionKind::kDeadlock || a == ActionKind::kExit || a == ActionKind::kCorruptHeap;
    const int64_t now = MonotonicNanos();
    if (!ends_the_driver && now - last_ns.exchange(now, std::memory_order_relaxed) < 1'000'000) return;
    proto::DriverToHost m;
    auto* f = m.mutable_failpoint_fired();
    f->set_site(std::string(site));
    f->set_action(std::string(faultinject::ActionName(trigger.action)));
    f->set_at_ns(MonotonicNanos());
    const std::string bytes = m.SerializeAsString();
    (void)send(kControlFd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }

  Result<void> ArmFailpoints(const std::string& text) {
    faultinject::Spec spec = UMBRA_TRY(faultinject::ParseSpec(text));
    return faultinject::FailpointRegistry::Global().Arm(spec, device_.name, driver_->name());
  }

  void WatchControl() {
    control_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec) return;
      for (int i = 0; i < 16; ++i) {
        auto fds = control_.Receive(in_, ipc::Blocking::kDontWait);
        if (!fds) {
          if (fds.error().code == Errc::kUnavailable) break;
          // The host is gone or talks nonsense: nothing to serve.
          std::_Exit(0);
        }
        OnMessage(in_);
      }
      WatchControl();
    });
  }

  void OnMessage(const proto::HostToDriver& m) {
    switch (m.msg_case()) {
      case proto::HostToDriver::kProbe:
        // Attached ahead of time (a standby): the host reset the rings since,
        // and the failpoint spec may have changed.
        data_->AdoptRingIndices();
        if (m.probe().has_failpoints()) {
          if (auto armed = ArmFailpoints(m.probe().failpoints()); !armed) {
            Log(LogLevel::kError, "failpoints not armed: " + armed.error().message);
          }
        }
        fibers_.Spawn([this] {
          Result<void> r;
          if (auto f = UMBRA_FAILPOINT("sdk.probe"); f.fault == SiteFault::kError) {
            r = Fail(Errc::kIo, "probe failed (injected)");
          } else {
            r = driver_->Probe(*this);
          }
          (void)UMBRA_FAILPOINT("sdk.probe.exit");
          proto::DriverToHost done;
          auto* p = done.mutable_probe_done();
          if (!r) {
            p->set_status(static_cast<int32_t>(r.error().code));
            p->set_message(r.error().message);
          }
          (void)control_.Send(done);
          if (r) StartDataPath();
        });
        return;
      case proto::HostToDriver::kCall: {
        proto::Call call = m.call();
        fibers_.Spawn([this, call = std::move(call)] { (void)ServeCall(call); });
        return;
      }
      case proto::HostToDriver::kCallBatch: {
        // One fiber runs them in order: a call that waits for the device
        // finishes before the next begins, as when they came one by one.
        proto::CallBatch batch = m.call_batch();
        fibers_.Spawn([this, batch = std::move(batch)] { ServeCallBatch(batch); });
        return;
      }
      case proto::HostToDriver::kRemove:
      case proto::HostToDriver::kShutdown:
        (void)UMBRA_FAILPOINT("sdk.stop");
        driver_->PrepareStop(*this);
        driver_->Stop(*this);
        if (m.has_remove()) {
          proto::DriverToHost out;
          out.mutable_remove_done();
          (void)control_.Send(out);
        }
        std::_Exit(0);
      case proto::HostToDriver::kSetFailpoints: {
        proto::DriverToHost out;
        auto* done = out.mutable_failpoints_set();
        done->set_id(m.set_failpoints().id());
        if (auto r = ArmFailpoints(m.set_failpoints().spec()); !r) {
          done->set_status(static_cast<int32_t>(r.error().code));
          done->set_message(r.error().message);
        }
        (void)control_.Send(out);
        return;
      }
      case proto::HostToDriver::kQueryFailpoints: {
        proto::DriverToHost out;
        auto* counts = out.mutable_failpoint_counts();
        counts->set_id(m.query_failpoints().id());
        for (const auto& site : faultinject::FailpointRegistry::Global().List()) {
          auto* row = counts->add_sites();
          row->set_name(site.name);
          row->set_hits(site.hits);
          row->set_triggers(site.triggers);
        }
        (void)control_.Send(out);
        return;
      }
      case proto::HostToDriver::kWake: AwaitControl(); return;
      case proto::HostToDriver::kAttach:
      case proto::HostToDriver::MSG_NOT_SET: return;
    }
  }

  // Runs one call and answers it (unless a failpoint drops the answer or
  // sends junk). Returns the call's status: 0, or an Errc value.
  int32_t ServeCall(const proto::Call& call) {
    faultinject::Action f = UMBRA_FAILPOINT("sdk.call");
    Result<std::string> r = f.fault == SiteFault::kError ? Fail(Errc::kIo, "call failed (injected)")
                                                         : driver_->OnCall(*this, call.method(), call.body());
    (void)UMBRA_FAILPOINT("sdk.call.exit");
    const int32_t status = r ? 0 : static_cast<int32_t>(r.error().code);
    if (f.fault == SiteFault::kMalformedReply) {
      const char junk[] = "\x2a\xff\xff\xff\xff\x0f";
      send(kControlFd, junk, sizeof junk - 1, MSG_NOSIGNAL);
      return status;
    }
    if (f.fault == SiteFault::kDropCompletion) return status;
    proto::DriverToHost out;
    auto* reply = out.mutable_reply();
    reply->set_id(f.fault == SiteFault::kForgedId ? call.id() + 1000003 : call.id());
    if (f.fault == SiteFault::kDuplicateId) {
      proto::DriverToHost early;
      early.mutable_reply()->set_id(call.id());
      (void)control_.Send(early);
    }
    if (r) {
      reply->set_body(std::move(*r));
    } else {
      reply->set_status(status);
      reply->set_message(r.error().message);
    }
    (void)control_.Send(out);
    return status;
  }

  // The calls of a batch in order; after one fails, the rest are answered
  // with its status without being run.
  void ServeCallBatch(const proto::CallBatch& batch) {
    int32_t failed = 0;
    int failed_at = 0;
    for (int i = 0; i < batch.calls_size(); ++i) {
      const proto::Call& call = batch.calls(i);
      if (failed == 0) {
        failed = ServeCall(call);
        failed_at = i;
        continue;
      }
      proto::DriverToHost out;
      auto* reply = out.mutable_reply();
      reply->set_id(call.id());
      reply->set_status(failed);
      reply->set_message("not run: call " + std::to_string(failed_at + 1) + " of the batch failed");
      (void)control_.Send(out);
    }
  }

  // A standby told its turn is coming: watch the channel for the Probe for a
  // while (returning to the event loop as soon as something is there) instead
  // of sleeping until it comes. Bounded, and given up when a thread waits for
  // a CPU.
  void AwaitControl() {
    constexpr int64_t kWatchNs = 1'000'000;
    Spin spin(kWatchNs);
    do {
      pollfd p{kControlFd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) return;
    } while (spin.Again());
  }

  // ---- data path ----

  void StartDataPath() {
    submit_watch_.assign(data_->submit_doorbell().fd());
    if (hw_interrupt_.valid()) {
      interrupt_watch_.assign(hw_interrupt_.fd());
      WatchInterrupt();
    }
    // From the event loop, not from the probe's fiber (which ends here):
    // requests are always served in the same context.
    asio::post(io_, [this] { ServeSubmissions(); });
  }

  // Drains the submit ring, spins briefly for more, then sleeps on the doorbell.
  void ServeSubmissions() {
    // The longest this loop keeps the event loop from heartbeats, control
    // messages and interrupts while requests keep coming.
    constexpr int64_t kSliceNs = 1'000'000;
    auto& ring = data_->submit();
    const int64_t started = MonotonicNanos();
    Spin idle(kSpinNs, Spin::kTakeTurns);
    int64_t next_event_look = 0;
    for (;;) {
      ipc::Descriptor d;
      uint32_t handled = 0;
      while (handled < 256 && ring.TryPop(d)) {
        DispatchRequest(d);
        ++handled;
      }
      if (handled > 0) {
        driver_->OnBatchEnd(*this);
        ring.Release();
      }
      if (driver_->Poll(*this)) {
        polls_ = true;
        ++handled;
      }
      if (handled > 0) {
        PublishCompletions();
        idle.Reset();
        if (handled >= 256 || MonotonicNanos() - started > kSliceNs) {
          // Let heartbeats and control messages through between batches.
          asio::post(io_, [this] { ServeSubmissions(); });
          return;
        }
        continue;
      }
      PublishCompletions();
      if (idle.Again()) {
        // The device or the host wants attention while we poll for requests:
        // go back to the event loop for the interrupt or the message, then
        // come straight back here. (A look costs a system call: one every
        // few microseconds, not one per round.)
        const int64_t now = MonotonicNanos();
        if (now < next_event_look) continue;
        next_event_look = now + kEventLookNs;
        if (EventPending()) {
          asio::post(io_, [this] { ServeSubmissions(); });
          return;
        }
        continue;
      }
      if (!ring.PrepareToSleep()) continue;
      break;
    }
    submit_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec) return;
      data_->submit_doorbell().Drain();
      data_->submit().CancelSleep();
      ServeSubmissions();
    });
  }

  // One poll(2) of the control channel and, unless the driver polls its
  // device, of the device's interrupt line; consumes nothing.
  bool EventPending() const {
    const int irq = hw_interrupt_.valid() && !polls_ ? hw_interrupt_.fd() : -1;
    pollfd p[2] = {{kControlFd, POLLIN, 0}, {irq, POLLIN, 0}};
    return ::poll(p, 2, 0) > 0;
  }

  void DispatchRequest(const ipc::Descriptor& d) {
    faultinject::Action f = UMBRA_FAILPOINT("sdk.request");
    switch (f.fault) {
      case SiteFault::kNone: break;
      case SiteFault::kError: Complete(d, static_cast<int32_t>(Errc::kIo), 0, 0); return;
      case SiteFault::kDropCompletion: return;
      case SiteFault::kForgedId: {
        ipc::Descriptor forged = d;
        forged.id ^= 0x3c3c0000000ull;
        Complete(forged, 0, 0, 0);
        return;
      }
      case SiteFault::kDuplicateId: Complete(d, 0, 0, 0); break;
      case SiteFault::kWrongLength:
      case SiteFault::kWildDma: Complete(d, 0, static_cast<uint32_t>(data_->pool_size() + 1 + f.value), 0); return;
      case SiteFault::kMalformedReply: {
        const char junk[] = "\xff\xff\xff";
        send(kControlFd, junk, sizeof junk - 1, MSG_NOSIGNAL);
        break;
      }
      case SiteFault::kBadRegister: break;  // only drivers program registers
    }
    driver_->OnRequest(*this, d);
    (void)UMBRA_FAILPOINT("sdk.request.exit");
  }

  void PublishCompletions() {
    auto& ring = data_->complete();
    size_t pushed = 0;
    while (pushed < pending_completions_.size() && ring.TryPush(pending_completions_[pushed])) {
      ++pushed;
    }
    if (pushed > 0) {
      pending_completions_.erase(pending_completions_.begin(), pending_completions_.begin() + pushed);
      completions_unpublished_ = true;
    }
    // Tell the host where we run: waiting for one or two requests, it sleeps
    // rather than spin on our CPU (DriverHost::Wait).
    const int cpu = sched_getcpu();
    data_->submit().NoteCpu(cpu);
    if (!completions_unpublished_) return;
    completions_unpublished_ = false;
    if (!ring.Publish()) return;
    data_->complete_doorbell().Signal();
    // The host was asleep: if it sleeps on our CPU, hand it the CPU now rather
    // than at the end of our turn.
    if (cpu >= 0 && ring.consumer_cpu() == cpu) sched_yield();
  }

  void WatchInterrupt() {
    interrupt_watch_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec) return;
      hw_interrupt_.Drain();
      if (UMBRA_FAILPOINT("sdk.interrupt").fault == SiteFault::kDropCompletion) {
        WatchInterrupt();  // a lost interrupt
        return;
      }
      auto waiters = std::move(interrupt_waiters_);
      interrupt_waiters_.clear();
      for (auto* f : waiters) fibers_.Resume(f);
      driver_->OnInterrupt(*this);
      PublishCompletions();
      WatchInterrupt();
    });
  }

  // ---- heartbeat ----

  void StartHeartbeat() {
    heartbeat_.expires_after(std::chrono::nanoseconds(heartbeat_period_ns_));
    heartbeat_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      if (UMBRA_FAILPOINT("sdk.heartbeat").fault != SiteFault::kDropCompletion) {
        proto::DriverToHost m;
        m.mutable_heartbeat()->set_seq(++heartbeat_seq_);
        (void)control_.Send(m, {}, ipc::Blocking::kDontWait);
      }
      // Completions produced from timers or fibers are published here too.
      if (data_) PublishCompletions();
      StartHeartbeat();
    });
  }

  std::unique_ptr<Driver> driver_;
  asio::io_context io_{1};
  ipc::ControlChannel control_;
  FiberScheduler fibers_;
  DeviceInfo device_;
  std::unique_ptr<ipc::DataChannel> data_;  // rings + pool shared with the host
  std::unique_ptr<ipc::SharedMemory> hw_;   // the emulated device's registers + DMA
  HwView hw_view_;
  ipc::EventFd hw_doorbell_;
  ipc::EventFd hw_interrupt_;
  UniqueFd unused_;
  asio::posix::stream_descriptor control_watch_;
  asio::posix::stream_descriptor submit_watch_;
  asio::posix::stream_descriptor interrupt_watch_;
  bool polls_ = false;  // the driver's Poll has found work: it reaps without interrupts while we spin
  asio::steady_timer heartbeat_;
  int64_t heartbeat_period_ns_ = 50'000'000;
  uint64_t heartbeat_seq_ = 0;
  proto::HostToDriver in_;
  std::vector<ipc::Descriptor> pending_completions_;
  bool completions_unpublished_ = false;
  std::vector<FiberScheduler::Fiber*> interrupt_waiters_;
  int exit_code_ = 0;
};

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer's check at exit stops the process's threads with ptrace from
// a helper process, which the sandbox refuses (and which stalls when the
// driver is the init of its PID namespace): a sandboxed driver is not
// checked for leaks at exit. (A hook LeakSanitizer looks up by name.)
extern "C" int __lsan_is_turned_off() { return getpid() == 1 ? 1 : 0; }
#endif

int RunDriverProcess(int argc, char** argv, std::function<std::unique_ptr<Driver>()> factory) {
  pid_t host_pid = -1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--host-pid=", 0) == 0) host_pid = static_cast<pid_t>(std::atoi(argv[i] + 11));
    if (a == "--no-core") {
      rlimit none{0, 0};
      setrlimit(RLIMIT_CORE, &none);
    }
  }
  // Die with the host; and if the host is already gone, do not start.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (host_pid > 0 && getppid() != host_pid) return 1;
  signal(SIGPIPE, SIG_IGN);
  InstallCrashReporting();
  ProcessRuntime runtime(factory());
  return runtime.Run();
}

}  // namespace umbra::sdk
