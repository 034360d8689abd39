#include "machine/machine.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>

#include "base/clock.h"
#include "machine/machine_check.h"
#include "machine/recovery_settings.h"
#include "runtime/model/machine.h"
#include "runtime/supervisor/spawn.h"
#include "runtime/supervisor/supervisor.h"
#include "shadows/builtin/builtin.h"
#include "shadows/registry.h"
#include "umbra/machine.pb.h"

namespace umbra::machine {

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr std::string_view kShadowPrefix = "shadow.";

}  // namespace

const char* NoticeKindName(NoticeKind kind) {
  switch (kind) {
    case NoticeKind::kDriverDown: return "driver-down";
    case NoticeKind::kDriverBack: return "recovered";
    case NoticeKind::kDeviceFailed: return "failed";
    case NoticeKind::kDeferralExpired: return "deferral-expired";
    case NoticeKind::kError: return "error";
  }
  return "?";
}

// Where a device's driver stands, as the machine sees it.
enum class Phase {
  kIdle,        // no driver (never probed, or removed)
  kStarting,    // probing: waiting for the shadow's first passive
  kRunning,     // bound and serving
  kRecovering,  // the driver crashed; waiting for the shadow's passive
  kFailed,      // the restart budget is spent
};

struct Machine::Unit {
  std::string name;
  RecoverySettings recovery;  // the machine's and the device's, resolved in Create
  // The emulated device; made in Create and kept for the machine's life, so
  // its state outlives every driver (as real hardware does). Null: nothing to
  // emulate.
  std::unique_ptr<Hardware> hardware;
  // The host's listener for every driver of this unit; lives with the unit.
  std::unique_ptr<HostForwarder> forwarder;
  // What the model tells this device about its suppliers; shared with the model.
  std::shared_ptr<ConsumerListener> listener;

  // Written only by the model's dispatching thread (Probe and Remove run one
  // at a time) and by Stop once the model is quiet, under mu_; read under mu_
  // by other threads.
  std::unique_ptr<runtime::Supervisor> supervisor;  // this driver's event loop; owns `host`
  runtime::DriverHost* host = nullptr;
  std::unique_ptr<shadows::Shadow> shadow;  // stopped before the supervisor

  // Guarded by Machine::mu_.
  Phase phase = Phase::kIdle;
  uint64_t epoch = 0;                      // bumped per start and stop: reports of older instances are ignored
  bool awaiting_passive = false;           // the driver is ready; the shadow is replaying
  std::shared_ptr<model::Device> probing;  // kept alive until ProbeDone
  model::WorkToken probe_work;             // the probe counts as the driver's work in flight
};

// Sits between a unit's DriverHost and its shadow on the supervisor's loop:
// hands every report to the shadow first, then queues it for the machine.
class Machine::HostForwarder final : public runtime::DriverHostListener {
 public:
  HostForwarder(Machine* machine, Unit* unit) : machine_(machine), unit_(unit) {}

  // Loop thread only.
  void Attach(runtime::DriverHostListener* shadow, uint64_t epoch) {
    shadow_ = shadow;
    epoch_ = epoch;
  }
  void Detach() { shadow_ = nullptr; }

  void OnDriverDown(const runtime::Detection& d) override {
    if (!shadow_) return;
    shadow_->OnDriverDown(d);
    machine_->Post([m = machine_, u = unit_, e = epoch_, d] { m->HandleDown(*u, e, d); });
  }
  void OnDriverReady(uint64_t instance, int64_t recovery_ns) override {
    if (!shadow_) return;
    shadow_->OnDriverReady(instance, recovery_ns);
    machine_->Post([m = machine_, u = unit_, e = epoch_] { m->HandleReady(*u, e); });
  }
  void OnDeviceFailed(const runtime::Detection& d) override {
    if (!shadow_) return;
    shadow_->OnDeviceFailed(d);
    machine_->Post([m = machine_, u = unit_, e = epoch_, d] { m->HandleFailed(*u, e, d); });
  }
  void OnDriverLog(int level, const std::string& text) override {
    if (shadow_) shadow_->OnDriverLog(level, text);
  }

 private:
  Machine* const machine_;  // raw: the machine stops every loop before it goes
  Unit* const unit_;        // raw: owned by the machine, lives as long
  // The running shadow, as its listener interface; set and cleared on the loop.
  runtime::DriverHostListener* shadow_ = nullptr;
  uint64_t epoch_ = 0;
};

// What a device hears about its suppliers, passed on to its shadow. The
// model calls it on its dispatching thread, never at the same time as Probe
// or Remove, which are the only ones to replace the shadow.
class Machine::ConsumerListener final : public model::LinkListener {
 public:
  explicit ConsumerListener(Unit* unit) : unit_(unit) {}

  void OnSupplierRecovering(const model::Device& supplier) override {
    if (unit_->shadow) unit_->shadow->OnSupplierRecovering(supplier.name());
  }
  void OnSupplierRecovered(const model::Device& supplier) override {
    if (unit_->shadow) unit_->shadow->OnSupplierRecovered(supplier.name());
  }
  void OnSupplierFailed(const model::Device& supplier, model::LinkOptional optional) override {
    if (unit_->shadow) unit_->shadow->OnSupplierFailed(supplier.name(), optional == model::LinkOptional::kYes);
  }
  // Unbound on purpose: nothing to wait for any more (a hold would never end).
  void OnSupplierUnbound(const model::Device& supplier) override {
    if (unit_->shadow) unit_->shadow->OnSupplierRecovered(supplier.name());
  }

 private:
  Unit* const unit_;  // raw: owned by the machine, which outlives the model
};

// model::DriverBackend for one driver of the machine.
class Machine::Backend final : public model::DriverBackend {
 public:
  Backend(Machine* machine, model::DriverSpec driver) : machine_(machine), driver_(std::move(driver)) {}
  void Probe(model::Device& device) override { machine_->ProbeUnit(device, driver_); }
  void Remove(model::Device& device) override { machine_->RemoveUnit(device); }

 private:
  Machine* const machine_;  // raw: the machine owns the model that owns this backend
  const model::DriverSpec driver_;
};

// ---------------- creation and lifetime ----------------

Machine::Machine(MachineOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<Machine>> Machine::Create(const proto::Machine& description, MachineOptions options) {
  std::unique_ptr<Machine> m(new Machine(std::move(options)));
  m->description_ = std::make_unique<proto::Machine>(description);
  m->name_ = description.name();
  const auto& s = description.settings();
  m->deferral_ns_ = s.deferred_probe_timeout_ms() > 0 ? int64_t(s.deferred_probe_timeout_ms()) * kMs
                                                      : m->options_.default_deferred_probe_timeout_ns;
  if (!m->options_.shadows) {
    m->own_shadows_ = std::make_unique<shadows::ShadowRegistry>();
    shadows::RegisterBuiltinShadows(*m->own_shadows_);
    m->options_.shadows = m->own_shadows_.get();
  }
  if (!m->options_.hardware) {
    m->own_hardware_ = std::make_unique<HardwareRegistry>();
    RegisterBuiltinHardware(*m->own_hardware_);
    m->options_.hardware = m->own_hardware_.get();
  }
  if (m->options_.state_dir.empty()) {
    char tmpl[] = "/tmp/umbra-machine-XXXXXX";
    if (!::mkdtemp(tmpl)) return FailErrno("cannot make a state folder");
    m->temp_dir_ = tmpl;
    m->options_.state_dir = tmpl;
  }
  m->model_ = UMBRA_TRY(model::Model::Create());
  for (const auto& d : description.devices()) {
    auto unit = std::make_unique<Unit>();
    unit->name = d.name();
    unit->recovery = ResolveRecovery(description, d);
    HardwareSpec spec{d.name(), {d.compatible().begin(), d.compatible().end()}, {}, m->options_.state_dir};
    for (const auto& [k, v] : d.settings()) spec.settings.emplace(k, v);
    unit->hardware = UMBRA_TRY(m->options_.hardware->Create(spec));
    if (unit->hardware) unit->hardware->device()->Start();
    unit->forwarder = std::make_unique<HostForwarder>(m.get(), unit.get());
    unit->listener = std::make_shared<ConsumerListener>(unit.get());
    m->units_.emplace(d.name(), std::move(unit));
  }
  m->thread_ = std::thread([mp = m.get()] { mp->ThreadMain(); });
  return m;
}

Machine::~Machine() {
  Stop();
  model_.reset();  // its backends and listeners point at units_
  units_.clear();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
}

Result<void> Machine::Start() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return Fail(Errc::kUnavailable, "machine " + name_ + " is stopped");
    if (started_) return Fail(Errc::kAlreadyExists, "machine " + name_ + " is already started");
    started_ = true;
  }
  auto backends = [this](model::Model&, const model::DriverSpec& driver) -> std::shared_ptr<model::DriverBackend> {
    return std::make_shared<Backend>(this, driver);
  };
  UMBRA_TRY(model::PopulateModel(*description_, *model_, backends));
  {
    std::lock_guard lock(mu_);
    deferral_deadline_ns_ = MonotonicNanos() + deferral_ns_;
  }
  cv_.notify_all();
  return {};
}

void Machine::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  // Unbind in the model so that consumers go before their suppliers; the
  // model refuses devices that are not bound, which is fine.
  for (auto it = description_->devices().rbegin(); it != description_->devices().rend(); ++it) {
    (void)model_->UnbindDevice(it->name(), "machine stopped");
  }
  {
    std::lock_guard lock(mu_);
    stop_thread_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever is left (failed devices, a probe that never finished).
  for (auto& [name, unit] : units_) StopUnit(*unit);
}

std::vector<std::string> Machine::device_names() const {
  std::vector<std::string> out;
  for (const auto& d : description_->devices()) out.push_back(d.name());
  return out;
}

Machine::Unit* Machine::FindUnit(std::string_view device) const {
  auto it = units_.find(device);
  return it == units_.end() ? nullptr : it->second.get();
}

shadows::Shadow* Machine::shadow(std::string_view device) const {
  Unit* u = FindUnit(device);
  std::lock_guard lock(mu_);
  return u ? u->shadow.get() : nullptr;
}

runtime::DriverHost* Machine::host(std::string_view device) const {
  Unit* u = FindUnit(device);
  std::lock_guard lock(mu_);
  return u ? u->host : nullptr;
}

Hardware* Machine::hardware(std::string_view device) const {
  Unit* u = FindUnit(device);
  return u ? u->hardware.get() : nullptr;
}

std::vector<Notice> Machine::notices() const {
  std::lock_guard lock(mu_);
  return notices_;
}

// ---------------- the backend: probe and remove ----------------

namespace {

// A machine file's sandbox settings for a driver, over the defaults.
void ApplySandbox(const proto::DriverSandbox& in, sandbox::SandboxOptions& out) {
  switch (in.mode()) {
    case proto::DriverSandbox::ON: out.mode = sandbox::SandboxMode::kOn; break;
    case proto::DriverSandbox::OFF: out.mode = sandbox::SandboxMode::kOff; break;
    default: break;
  }
  switch (in.seccomp()) {
    case proto::DriverSandbox::ENFORCE: out.seccomp = sandbox::SeccompMode::kEnforce; break;
    case proto::DriverSandbox::LOG: out.seccomp = sandbox::SeccompMode::kLog; break;
    case proto::DriverSandbox::NO_FILTER: out.seccomp = sandbox::SeccompMode::kOff; break;
    default: break;
  }
  auto set = [](uint64_t value, uint64_t unit, uint64_t& limit) {
    if (value > 0) limit = value * unit;
  };
  set(in.open_files(), 1, out.limits.open_files);
  set(in.memory_mb(), 1ull << 20, out.limits.memory_bytes);
  // Asked for by name: enforced even where it costs each spawn a little.
  if (in.memory_mb() > 0) out.limits.memory_limit = sandbox::MemoryLimit::kAlways;
  set(in.processes(), 1, out.limits.processes);
  set(in.cpu_seconds(), 1, out.limits.cpu_seconds);
  set(in.address_space_mb(), 1ull << 20, out.limits.address_space_bytes);
  set(in.tmpfs_kb(), 1ull << 10, out.limits.tmpfs_bytes);
}

}  // namespace

runtime::DriverHostOptions Machine::HostOptions(const Unit& unit, const model::Device& device,
                                                const model::DriverSpec& driver) const {
  runtime::DriverHostOptions o;
  o.device_name = device.name();
  o.compatible = device.compatible().empty() ? "" : device.compatible().front();
  o.device_class = device.device_class();
  o.driver_binary = ResolveBinary(driver.binary);
  if (unit.hardware) {
    o.data = unit.hardware->data_options();
    o.hw = unit.hardware->device();
  }
  unit.recovery.ApplyTo(o);
  o.recorder = options_.recorder;
  for (const auto& d : description_->drivers()) {
    if (d.name() == driver.name) ApplySandbox(d.sandbox(), o.sandbox);
  }
  for (const auto& [k, v] : driver.settings) o.settings[k] = v;
  for (const auto& [k, v] : device.settings()) {
    if (k.starts_with(kShadowPrefix)) continue;
    if (k == "failpoints") {
      o.failpoints = v;
      continue;
    }
    o.settings[k] = v;
  }
  return o;
}

std::string Machine::ResolveBinary(const std::string& binary) const {
  namespace fs = std::filesystem;
  if (binary.find('/') == std::string::npos || fs::path(binary).is_absolute()) return binary;
  std::error_code ec;
  if (fs::exists(binary, ec)) return binary;
  std::string build = options_.build_dir;
  if (build.empty()) {
    if (const char* env = std::getenv("UMBRA_BUILD_DIR")) build = env;
  }
  if (!build.empty() && fs::exists(fs::path(build) / binary, ec)) return (fs::path(build) / binary).string();
  // The last path component may still be found by name (next to umbra, $UMBRA_DRIVER_PATH).
  return fs::path(binary).filename().string();
}

void Machine::ProbeUnit(model::Device& device, const model::DriverSpec& driver) {
  Unit* unit = FindUnit(device.name());
  bool stopping;
  {
    std::lock_guard lock(mu_);
    stopping = stopped_;
  }
  if (!unit || stopping) {
    (void)model_->ProbeDone(
        device, Fail(Errc::kUnavailable, unit ? "the machine is stopping" : device.name() + " is not in the machine"));
    return;
  }
  StopUnit(*unit);  // an earlier instance that failed
  if (auto r = StartUnit(*unit, device, driver); !r) {
    StopUnit(*unit);
    Notify(NoticeKind::kError, unit->name, r.error().message);
    (void)model_->ProbeDone(device, std::unexpected(r.error()));
  }
}

Result<void> Machine::StartUnit(Unit& unit, model::Device& device, const model::DriverSpec& driver) {
  if (device.device_class().empty()) {
    return Fail(Errc::kInvalidArgument, device.name() + " has no device_class, so no shadow can stand in front of it");
  }
  auto supervisor = std::make_unique<runtime::Supervisor>();
  runtime::DriverHost* host = UMBRA_TRY(supervisor->AddDevice(HostOptions(unit, device, driver)));
  shadows::ShadowSettings settings;
  for (const auto& [k, v] : device.settings()) {
    if (k.starts_with(kShadowPrefix)) settings.emplace(k.substr(kShadowPrefix.size()), v);
  }
  auto shadow = UMBRA_TRY(options_.shadows->Create(device.device_class(), *host, settings));
  if (unit.hardware) unit.hardware->Connect(*shadow);
  model::WorkToken work;
  if (auto drv = model_->FindDriver(driver.name)) {
    if (auto token = (*drv)->work().BeginWork()) work = std::move(*token);
  }
  uint64_t epoch;
  {
    std::lock_guard lock(mu_);
    epoch = ++unit.epoch;
    unit.phase = Phase::kStarting;
    unit.awaiting_passive = false;
    unit.probing = device.shared_from_this();
    unit.probe_work = std::move(work);
    unit.supervisor = std::move(supervisor);
    unit.host = host;
    unit.shadow = std::move(shadow);
  }
  UMBRA_TRY(model_->SetLinkListener(unit.name, unit.listener));
  shadows::Shadow* s = unit.shadow.get();
  HostForwarder* forwarder = unit.forwarder.get();
  // On the loop, so that no report falls between the shadow taking the
  // host's listener and the forwarder taking it over.
  unit.supervisor->RunOnLoop([s, host, forwarder, epoch] {
    s->Start();
    forwarder->Attach(s, epoch);
    host->set_listener(forwarder);
  });
  return {};
}

void Machine::RemoveUnit(model::Device& device) {
  if (Unit* unit = FindUnit(device.name())) StopUnit(*unit);
}

void Machine::StopUnit(Unit& unit) {
  {
    std::lock_guard lock(mu_);
    ++unit.epoch;
    unit.phase = Phase::kIdle;
    unit.awaiting_passive = false;
    unit.probing.reset();
    unit.probe_work = model::WorkToken();
  }
  if (unit.shadow) unit.shadow->Stop();
  if (unit.supervisor) {
    // A barrier too: a report being forwarded has finished after this.
    runtime::DriverHost* host = unit.host;
    HostForwarder* forwarder = unit.forwarder.get();
    unit.supervisor->RunOnLoop([host, forwarder] {
      host->set_listener(nullptr);
      forwarder->Detach();
    });
  }
  std::unique_ptr<shadows::Shadow> shadow;
  std::unique_ptr<runtime::Supervisor> supervisor;
  {
    std::lock_guard lock(mu_);
    shadow = std::move(unit.shadow);
    supervisor = std::move(unit.supervisor);
    unit.host = nullptr;
  }
  shadow.reset();
  if (supervisor) supervisor->Stop();  // reaps the driver
  supervisor.reset();
  if (unit.hardware) unit.hardware->device()->Reset();
}

// ---------------- reports from the supervisors (machine thread) ----------------

void Machine::HandleDown(Unit& unit, uint64_t epoch, runtime::Detection detection) {
  bool tell_model = false;
  {
    std::lock_guard lock(mu_);
    if (epoch != unit.epoch) return;
    unit.awaiting_passive = false;
    if (unit.phase == Phase::kRunning) {
      unit.phase = Phase::kRecovering;
      tell_model = true;
    }
  }
  Notify(NoticeKind::kDriverDown, unit.name, detection.ToString());
  if (tell_model) (void)model_->SetRecovering(unit.name);
}

void Machine::HandleReady(Unit& unit, uint64_t epoch) {
  std::lock_guard lock(mu_);
  if (epoch != unit.epoch) return;
  if (unit.phase == Phase::kStarting || unit.phase == Phase::kRecovering) unit.awaiting_passive = true;
}

void Machine::HandleFailed(Unit& unit, uint64_t epoch, runtime::Detection detection) {
  Phase before;
  std::shared_ptr<model::Device> probing;
  {
    std::lock_guard lock(mu_);
    if (epoch != unit.epoch) return;
    before = unit.phase;
    unit.phase = Phase::kFailed;
    unit.awaiting_passive = false;
    probing = std::move(unit.probing);
    unit.probe_work = model::WorkToken();
  }
  const std::string why = "restart budget spent; last failure: " + detection.ToString();
  Notify(NoticeKind::kDeviceFailed, unit.name, why);
  switch (before) {
    case Phase::kStarting:
      if (probing) (void)model_->ProbeDone(*probing, Fail(Errc::kDeviceFailed, "driver did not start: " + why));
      return;
    case Phase::kRunning:
    case Phase::kRecovering: (void)model_->SetFailed(unit.name, why); return;
    case Phase::kIdle:
    case Phase::kFailed: return;
  }
}

void Machine::PollRecoveries() {
  for (auto& [name, unit] : units_) {
    Phase before;
    std::shared_ptr<model::Device> probing;
    int64_t gap_ns = 0;
    {
      std::lock_guard lock(mu_);
      if (!unit->awaiting_passive || !unit->shadow) continue;
      const shadows::ShadowState s = unit->shadow->state();
      if (s != shadows::ShadowState::kPassive && s != shadows::ShadowState::kHolding) continue;
      unit->awaiting_passive = false;
      before = unit->phase;
      unit->phase = Phase::kRunning;
      probing = std::move(unit->probing);
      unit->probe_work = model::WorkToken();
      auto records = unit->shadow->recoveries();
      if (!records.empty() && records.back().succeeded) {
        gap_ns = records.back().passive_ns - records.back().detected_ns;
      }
    }
    if (before == Phase::kStarting && probing) {
      (void)model_->ProbeDone(*probing, {});
    } else if (before == Phase::kRecovering) {
      Notify(NoticeKind::kDriverBack, name, "serving again after " + std::to_string(gap_ns / 1000) + " us");
      (void)model_->SetRecovered(name);
    }
  }
}

// ---------------- the machine's thread ----------------

void Machine::Post(Task task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

void Machine::Notify(NoticeKind kind, std::string device, std::string detail) {
  Notice n{MonotonicNanos(), kind, std::move(device), std::move(detail)};
  {
    std::lock_guard lock(mu_);
    notices_.push_back(n);
  }
  if (options_.on_notice) options_.on_notice(n);
}

void Machine::ThreadMain() {
  std::unique_lock lock(mu_);
  while (!stop_thread_) {
    if (!tasks_.empty()) {
      Task task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (deferral_deadline_ns_ != 0 && MonotonicNanos() >= deferral_deadline_ns_) {
      deferral_deadline_ns_ = 0;
      lock.unlock();
      model::DeferralReport report = model_->ExpireDeferral();
      Notify(NoticeKind::kDeferralExpired, "", report.ToString());
      lock.lock();
      continue;
    }
    bool awaiting = false;
    for (const auto& [name, unit] : units_) awaiting = awaiting || unit->awaiting_passive;
    const bool started = started_;
    lock.unlock();
    if (awaiting) PollRecoveries();
    if (started) {
      for (const auto& d : description_->drivers()) {
        if (auto drv = model_->FindDriver(d.name())) (*drv)->work().RunDeferred();
      }
    }
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(awaiting ? 1 : 20), [&] { return stop_thread_ || !tasks_.empty(); });
  }
}

// ---------------- waiting and summaries ----------------

Result<void> Machine::WaitSettled(int64_t timeout_ns) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  for (;;) {
    std::string busy;
    for (const auto& [name, unit] : units_) {
      auto st = model_->device_state(name);
      bool unit_busy;
      {
        std::lock_guard lock(mu_);
        unit_busy = unit->awaiting_passive || unit->phase == Phase::kStarting || unit->phase == Phase::kRecovering;
      }
      if (st && (*st == model::DeviceState::kProbing || *st == model::DeviceState::kRecovering)) unit_busy = true;
      if (unit_busy) busy += (busy.empty() ? "" : ", ") + name;
    }
    if (busy.empty()) return {};
    if (MonotonicNanos() > deadline) return Fail(Errc::kTimeout, "still starting or recovering: " + busy);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::vector<DeviceSummary> Machine::Summarize() const {
  std::vector<DeviceSummary> out;
  for (const auto& d : description_->devices()) {
    const Unit& unit = *FindUnit(d.name());
    DeviceSummary s;
    s.name = d.name();
    auto st = model_->device_state(d.name());
    s.state = st ? model::DeviceStateName(*st) : "removed";
    const std::string path = "/devices/" + d.bus() + "/" + d.name();
    s.degraded = model_->Read(path + "/degraded").value_or("0") == "1";
    s.reason = model_->Read(path + "/reason").value_or("");
    if (s.reason.empty() && st && *st == model::DeviceState::kUnbound && !MatchingDriver(*description_, d)) {
      s.reason = "no driver matches its compatible";
    }
    std::lock_guard lock(mu_);
    if (unit.host) s.restarts = unit.host->stats().restarts;
    if (unit.shadow) {
      s.shadow_state = shadows::ShadowStateName(unit.shadow->state());
      for (const auto& r : unit.shadow->recoveries()) {
        if (!r.succeeded) continue;
        ++s.recoveries;
        s.last_gap_ns = r.passive_ns - r.detected_ns;
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace umbra::machine
