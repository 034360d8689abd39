#include "campaign/run.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <mutex>
#include <thread>

#include "recorder/recorder.h"
#include "base/clock.h"
#include "runtime/supervisor/supervisor.h"

namespace umbra::faultinject::campaign {
namespace {

using shadows::RecoveryMode;

// The engine's side of one run: the WorkloadContext, and the listener it puts
// between the primary device's DriverHost and its shadow (every callback is
// forwarded to the shadow first) to arm each driver instance's injection.
class RunContext : public WorkloadContext, public runtime::DriverHostListener {
 public:
  RunContext(const RunSpec& spec, const RunOptions& options, FaultPlan plan, uint64_t units, runtime::Supervisor& sup)
      : spec_(spec), options_(options), plan_(std::move(plan)), units_(units), sup_(sup) {}

  ~RunContext() override { JoinContinuer(); }

  // ---- WorkloadContext ----
  RecoveryMode mode() const override { return spec_.mode; }
  uint64_t seed() const override { return spec_.seed; }
  uint64_t units() const override { return units_; }

  Result<runtime::DriverHost*> AddDevice(runtime::DriverHostOptions o) override {
    o.heartbeat_period_ns = options_.heartbeat_period_ns;
    o.request_deadline_ns = options_.request_deadline_ns;
    o.restart.budget = options_.restart_budget;
    o.restart.window_ns = options_.restart_window_ns;
    o.restart.backoff_initial_ns = 0;
    o.warm_standby = options_.warm_standby;
    o.seed = spec_.seed;
    if (options_.recorder != nullptr) {
      o.recorder = options_.recorder;
      o.device_name += "@r" + std::to_string(spec_.index);
    }
    return sup_.AddDevice(std::move(o));
  }

  void Watch(shadows::Shadow& shadow) override {
    if (shadow_ != nullptr) return;  // faults go to the first device
    shadow_ = &shadow;
    sup_.RunOnLoop([this] { shadow_->host().set_listener(this); });
  }

  void Progress(uint64_t done) override {
    while (next_host_ < plan_.faults.size() && IsHostSide(plan_.faults[next_host_].type) &&
           done > plan_.faults[next_host_].after) {
      InjectHostSide(plan_.faults[next_host_]);
      ++next_host_;
    }
  }

  // ---- DriverHostListener (loop thread) ----
  void OnDriverDown(const runtime::Detection& d) override {
    Forward().OnDriverDown(d);
    // Arm the next instance with the next injection, or with nothing. The
    // update is queued on the loop before the new instance's Attach is sent;
    // the zero timeout means nobody waits for the (dead) driver's answer.
    const size_t next = ++downs_;
    if (!plan_.faults.empty() && !IsHostSide(plan_.faults[0].type)) {
      (void)shadow_->host().SetFailpoints(DriverSpec(plan_, next), 0);
    }
  }
  void OnDriverReady(uint64_t instance, int64_t recovery_ns) override {
    Forward().OnDriverReady(instance, recovery_ns);
    if (double_kills_ > 0) {
      --double_kills_;
      ++injected_;
      shadow_->host().Kill(SIGKILL);  // posted: lands while the shadow replays
    }
  }
  void OnDeviceFailed(const runtime::Detection& d) override { Forward().OnDeviceFailed(d); }
  void OnDriverLog(int level, const std::string& text) override { Forward().OnDriverLog(level, text); }

  // ---- the engine ----
  shadows::Shadow* shadow() const { return shadow_; }

  Result<void> ArmFirst() {
    if (plan_.faults.empty() || IsHostSide(plan_.faults[0].type)) return {};
    return shadow_->host().SetFailpoints(DriverSpec(plan_, 0));
  }

  // Waits for the shadow to settle, then fills the record.
  RunRecord Finish(const WorkResult& work, int64_t wall_ns) {
    JoinContinuer();
    (void)shadow_->WaitUntilPassive(options_.settle_timeout_ns);
    RunRecord rec = Header();
    runtime::Host& host = shadow_->host();
    rec.device = host.name();
    rec.device_class = shadow_->class_name();
    rec.units = units_;
    rec.units_done = work.units_done;
    rec.errors = work.errors;
    rec.first_error = work.first_error;
    rec.verified = work.verified;
    rec.verification = work.verification;
    rec.shadow_state = shadows::ShadowStateName(shadow_->state());
    rec.wall_ns = wall_ns;
    const auto detections = host.detections();
    rec.detections = detections.size();
    rec.restarts = host.stats().restarts;
    rec.injected = injected_;
    if (!plan_.faults.empty() && !IsHostSide(plan_.faults[0].type)) {
      rec.injected = rec.detections + LiveTriggers(host);
    }
    FillRecoveries(rec);
    rec.outcome = Classify(work);
    return rec;
  }

  RunRecord Header() const {
    RunRecord rec;
    rec.index = spec_.index;
    rec.seed = spec_.seed;
    rec.workload = spec_.workload;
    rec.fault = spec_.fault;
    rec.site = plan_.faults.empty() ? "" : plan_.faults[0].site;
    rec.plan = FormatPlan(plan_);
    rec.mode = spec_.mode;
    return rec;
  }

 private:
  runtime::DriverHostListener& Forward() { return *shadow_; }

  void InjectHostSide(const Injection& inj) {
    const int64_t now = MonotonicNanos();
    {
      std::lock_guard lock(mu_);
      injected_at_.push_back(now);
    }
    ++injected_;
    shadow_->host().recorder().FaultInjected(shadow_->host().recorder_device(), inj.site, FaultTypeName(inj.type),
                                             spec_.seed);
    switch (inj.type) {
      case FaultType::kSigkill: Signal(SIGKILL); return;
      case FaultType::kKillDuringRecovery:
        ++double_kills_;
        Signal(SIGKILL);
        return;
      case FaultType::kSigstop: {
        // Stopped for 1..40 ms: past two heartbeat periods the host calls it a hang.
        const int64_t ms = 1 + static_cast<int64_t>(plan_.seed % 40);
        Signal(SIGSTOP);
        JoinContinuer();
        continuer_ = std::thread([this, ms] {
          std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          shadow_->host().Kill(SIGCONT);
        });
        return;
      }
      case FaultType::kSegfault:
      case FaultType::kAbort:
      case FaultType::kHang:
      case FaultType::kDeadlock:
      case FaultType::kSlow:
      case FaultType::kExit:
      case FaultType::kLeak:
      case FaultType::kCorruptHeap:
      case FaultType::kError:
      case FaultType::kMalformedReply:
      case FaultType::kForgedId:
      case FaultType::kDuplicateId:
      case FaultType::kWrongLength:
      case FaultType::kWildDma:
      case FaultType::kDropCompletion: return;  // driver-side: armed through failpoints, never here
    }
  }

  // Sends `sig` to the current driver before the workload's next unit.
  // DriverHost::Kill only posts the signal to the loop; on a loaded machine
  // the loop may not run for tens of milliseconds, and the signal would land
  // units later, or after the run. The empty task queued behind it returns
  // once the signal went out.
  void Signal(int sig) {
    shadow_->host().Kill(sig);
    sup_.RunOnLoop([] {});
  }

  void JoinContinuer() {
    if (continuer_.joinable()) continuer_.join();
  }

  static uint64_t LiveTriggers(runtime::Host& host) {
    if (host.state() != runtime::DeviceState::kRunning) return 0;
    auto counts = host.QueryFailpoints(1'000'000'000);
    if (!counts) return 0;
    uint64_t n = 0;
    for (const auto& c : *counts) n += c.triggers;
    return n;
  }

  void FillRecoveries(RunRecord& rec) {
    std::vector<int64_t> injected_at;
    {
      std::lock_guard lock(mu_);
      injected_at = injected_at_;
    }
    size_t next_injection = 0;
    for (const shadows::RecoveryRecord& r : shadow_->recoveries()) {
      RecoveryFigures f;
      f.reason = runtime::DetectReasonName(r.detection.reason);
      f.attempts = r.attempts;
      f.succeeded = r.succeeded;
      const int64_t detected = r.detected_ns ? r.detected_ns : r.detection.at_ns;
      while (next_injection < injected_at.size() && injected_at[next_injection] <= detected) {
        f.detect_ns = detected - injected_at[next_injection++];
      }
      if (r.restarted_ns) f.restart_ns = r.restarted_ns - detected;
      if (r.passive_ns && r.restarted_ns) f.replay_ns = r.passive_ns - r.restarted_ns;
      if (r.passive_ns) f.gap_ns = r.passive_ns - detected;
      rec.recoveries.push_back(std::move(f));
    }
  }

  Outcome Classify(const WorkResult& work) const {
    if (shadow_->state() == shadows::ShadowState::kFailed || shadow_->host().state() == runtime::DeviceState::kFailed) {
      return Outcome::kFailed;
    }
    if (work.errors > 0 || !work.verified) return Outcome::kMalfunction;
    return Outcome::kTransparent;
  }

  const RunSpec& spec_;
  const RunOptions& options_;
  const FaultPlan plan_;
  const uint64_t units_;
  runtime::Supervisor& sup_;           // the run's; outlives this context
  shadows::Shadow* shadow_ = nullptr;  // the watched device; owned by the workload
  size_t next_host_ = 0;               // workload thread
  size_t downs_ = 0;                   // loop thread
  std::atomic<uint64_t> double_kills_{0};
  std::atomic<uint64_t> injected_{0};
  std::mutex mu_;
  std::vector<int64_t> injected_at_;  // host-side injection times, guarded by mu_
  std::thread continuer_;             // sends SIGCONT after a sigstop; joined before the record
};

// The context `failpoints list` runs a workload in: plain devices, no faults.
class ProbeContext : public WorkloadContext {
 public:
  ProbeContext(runtime::Supervisor& sup, uint64_t units) : sup_(sup), units_(units) {}
  RecoveryMode mode() const override { return RecoveryMode::kShadow; }
  uint64_t seed() const override { return 1; }
  uint64_t units() const override { return units_; }
  Result<runtime::DriverHost*> AddDevice(runtime::DriverHostOptions o) override { return sup_.AddDevice(std::move(o)); }
  void Watch(shadows::Shadow&) override {}
  void Progress(uint64_t) override {}

 private:
  runtime::Supervisor& sup_;  // the caller's; outlives this context
  uint64_t units_;
};

// Arms the driver so that it counts every hit while triggering nothing.
constexpr const char* kCountOnlySpec = "failpoints.list.count-only=off";

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kTransparent: return "transparent";
    case Outcome::kExpected: return "expected";
    case Outcome::kMalfunction: return "malfunction";
    case Outcome::kFailed: return "failed";
    case Outcome::kHostCrash: return "host-crash";
  }
  return "?";
}

char OutcomeLetter(Outcome o) {
  switch (o) {
    case Outcome::kTransparent: return 'T';
    case Outcome::kExpected: return 'E';
    case Outcome::kMalfunction: return 'M';
    case Outcome::kFailed: return 'F';
    case Outcome::kHostCrash: return 'C';
  }
  return '?';
}

std::optional<Outcome> FindOutcome(std::string_view name) {
  for (Outcome o :
       {Outcome::kTransparent, Outcome::kExpected, Outcome::kMalfunction, Outcome::kFailed, Outcome::kHostCrash}) {
    if (OutcomeName(o) == name) return o;
  }
  return std::nullopt;
}

std::string_view ModeName(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kShadow: return "shadow";
    case RecoveryMode::kRestartOnly: return "restart-only";
  }
  return "?";
}

std::optional<RecoveryMode> FindMode(std::string_view name) {
  if (name == "shadow") return RecoveryMode::kShadow;
  if (name == "restart-only") return RecoveryMode::kRestartOnly;
  return std::nullopt;
}

std::string ReplayArgs(const RunRecord& record) {
  std::string out = "--replay " + std::to_string(record.seed) + " --workload " + record.workload + " --fault " +
                    std::string(FaultTypeName(record.fault));
  if (record.mode != RecoveryMode::kShadow) out += " --mode " + std::string(ModeName(record.mode));
  return out;
}

namespace {

// A set-up the driver did not survive although nothing was armed yet: on a
// loaded machine the run's short heartbeat can declare a slow driver dead
// while the workload configures it or while the first fault is armed.
bool SetUpInterrupted(const Error& e) {
  return e.code == Errc::kInterrupted || e.code == Errc::kNoDevice || e.code == Errc::kUnavailable;
}

// One attempt at a run; `interrupted` tells a set-up the machine's load
// broke (worth another attempt) from one that cannot work.
Result<RunRecord> RunAttempt(const WorkloadRegistry& registry, const RunSpec& spec, const RunOptions& options,
                             bool& interrupted) {
  runtime::Supervisor sup;  // declared first: outlives the workload's shadows
  std::unique_ptr<Workload> workload = UMBRA_TRY(registry.Create(spec.workload));
  const uint64_t units = spec.units ? spec.units : workload->default_units();
  FaultPlan plan = spec.plan ? *spec.plan : UMBRA_TRY(MakePlan(spec.seed, spec.fault, workload->sites(units)));
  RunContext ctx(spec, options, std::move(plan), units, sup);
  auto fail = [&](const Error& e) {
    interrupted = SetUpInterrupted(e);
    workload->TearDown();
    sup.Stop();
    return std::unexpected(Error{e.code, spec.workload + " could not start: " + e.message});
  };
  if (auto r = workload->SetUp(ctx); !r) return fail(r.error());
  if (ctx.shadow() == nullptr) return fail(Error{Errc::kInternal, "the workload watched no shadow"});
  if (auto r = ctx.ArmFirst(); !r) return fail(r.error());
  recorder::Recorder& trace = options.recorder ? *options.recorder : recorder::Recorder::Off();
  const std::string run_id = "run " + std::to_string(spec.index);
  trace.RunMarker(recorder::RunMarkerKind::kBegin, run_id, spec.seed);
  const int64_t start = MonotonicNanos();
  WorkResult work = workload->Run(ctx);
  RunRecord rec = ctx.Finish(work, MonotonicNanos() - start);
  if (rec.outcome == Outcome::kMalfunction) {
    if (std::optional<std::string> why = workload->Unseen(spec.fault, work)) {
      rec.outcome = Outcome::kExpected;
      rec.note = *why;
    }
  }
  trace.WorkloadVerified(ctx.shadow()->host().recorder_device(), spec.workload,
                         rec.verified ? recorder::VerifyOutcome::kPassed : recorder::VerifyOutcome::kFailed,
                         rec.verification);
  workload->TearDown();
  sup.Stop();
  trace.RunMarker(recorder::RunMarkerKind::kEnd, run_id, spec.seed);
  return rec;
}

}  // namespace

Result<RunRecord> RunOne(const WorkloadRegistry& registry, const RunSpec& spec, const RunOptions& options) {
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    bool interrupted = false;
    auto r = RunAttempt(registry, spec, options, interrupted);
    if (r || !interrupted || attempt == kAttempts) return r;
  }
}

std::vector<std::string> WorkloadDrivers(const WorkloadRegistry& registry) {
  std::vector<std::string> out;
  for (const std::string& name : registry.names()) {
    auto w = registry.Create(name);
    if (!w) continue;
    std::string driver((*w)->driver());
    if (std::ranges::find(out, driver) == out.end()) out.push_back(driver);
  }
  std::ranges::sort(out);
  return out;
}

Result<std::vector<runtime::FailpointCount>> ProbeFailpoints(const WorkloadRegistry& registry, std::string_view driver,
                                                             uint64_t units, const std::string& spec) {
  runtime::Supervisor sup;  // declared first: outlives the workload's shadows
  std::unique_ptr<Workload> workload;
  for (const std::string& name : registry.names()) {
    auto w = UMBRA_TRY(registry.Create(name));
    if (w->driver() == driver) {
      workload = std::move(w);
      break;
    }
  }
  if (!workload) return Fail(Errc::kNotFound, "no workload runs the driver '" + std::string(driver) + "'");
  ProbeContext ctx(sup, units);
  auto finish = [&](auto result) {
    workload->TearDown();
    sup.Stop();
    return result;
  };
  if (auto r = workload->SetUp(ctx); !r)
    return finish(Result<std::vector<runtime::FailpointCount>>(std::unexpected(r.error())));
  std::vector<runtime::DriverHost*> hosts = workload->hosts();
  if (hosts.empty())
    return finish(Result<std::vector<runtime::FailpointCount>>(Fail(Errc::kInternal, "the workload added no device")));
  if (auto r = hosts[0]->SetFailpoints(spec.empty() ? kCountOnlySpec : spec); !r) {
    return finish(Result<std::vector<runtime::FailpointCount>>(std::unexpected(r.error())));
  }
  (void)workload->Run(ctx);
  return finish(hosts[0]->QueryFailpoints());
}

}  // namespace umbra::faultinject::campaign
