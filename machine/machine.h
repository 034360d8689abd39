// Machine: a machine description brought to life. For each device of the
// description: its emulated hardware (by compatible string, HardwareRegistry),
// a driver process under a supervisor (the binary of the driver the model
// matched), and a shadow of the device's class (ShadowRegistry). The device
// model drives all of it through a DriverBackend, and hears back: a driver
// crash is Model::SetRecovering, the shadow back to passive is SetRecovered,
// a spent restart budget is SetFailed — so device links drive recovery (a
// consumer's shadow holds while its supplier recovers; a failed supplier
// unbinds managed consumers and leaves optional ones degraded).
//
//   auto description = UMBRA_TRY(model::LoadMachine("examples/machines/echo-links.textproto"));
//   auto machine = UMBRA_TRY(Machine::Create(*description, {}));
//   auto sub = machine->model().Subscribe([](const model::Event& e) { ... });
//   UMBRA_TRY(machine->Start());                       // probing begins
//   UMBRA_TRY(machine->WaitSettled(10'000'000'000));   // nothing probing or recovering
//   std::cout << machine->model().RenderText();
//   auto* echo = dynamic_cast<shadows::echo::EchoShadow*>(machine->shadow("echo1"));
//   machine->Stop();                                   // unbinds (consumers first), reaps every driver
//
// How a device's life maps onto the model (docs/machines.md draws it):
//   Probe      → supervisor + shadow started; ProbeDone(ok) when the shadow
//                first reaches passive, ProbeDone(error) when the driver
//                never starts within its restart budget
//   crash      → SetRecovering;  shadow passive again → SetRecovered
//   budget spent → SetFailed (reason: the last detection)
//   Remove     → shadow and driver stopped
//
// Threads: the machine owns one thread that turns driver-host reports into
// model calls, polls shadows that are finishing recovery, expires the
// deferred-probe timeout and runs the drivers' deferred callbacks. Each bound
// device has its own Supervisor (event loop), so that a device unbound and
// probed again gets a fresh one.
//
// Thread safety: Start, WaitSettled, Stop and the accessors may be called
// from any thread but the machine's own and the supervisors' loops. A
// shadow(), host() or hardware() pointer stays valid until the device is
// unbound (hardware: until the machine is destroyed).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/hw/hardware.h"
#include "runtime/model/model.h"
#include "runtime/supervisor/driver_host.h"
#include "shadows/shadow.h"

namespace umbra::proto {
class Machine;
}  // namespace umbra::proto

namespace umbra::shadows {
class ShadowRegistry;
}  // namespace umbra::shadows
namespace umbra::recorder {
class Recorder;
}  // namespace umbra::recorder

namespace umbra::machine {

// What the machine reports as it happens (besides the model's own events).
enum class NoticeKind {
  kDriverDown,       // a driver died (detail: the detection)
  kDriverBack,       // recovered: the shadow is passive again (detail: the gap)
  kDeviceFailed,     // the restart budget is spent (detail: the last detection)
  kDeferralExpired,  // the deferred-probe timeout passed (detail: what still waits)
  kError,            // something the machine could not do (detail says what)
};
const char* NoticeKindName(NoticeKind kind);

struct Notice {
  int64_t at_ns = 0;  // MonotonicNanos
  NoticeKind kind = NoticeKind::kError;
  std::string device;  // empty for machine-wide notices
  std::string detail;
};

struct MachineOptions {
  // Shadow classes and hardware by compatible string; null: the built-in ones.
  // Not owned; must outlive the machine.
  const shadows::ShadowRegistry* shadows = nullptr;
  const HardwareRegistry* hardware = nullptr;
  // Where every device's lifecycle and recovery events go; null: nowhere.
  // Not owned; must outlive the machine.
  recorder::Recorder* recorder = nullptr;
  // Where relative files (disk images) go; empty: a fresh temporary folder,
  // removed when the machine is destroyed.
  std::string state_dir;
  // Where a relative driver binary with a '/' is looked for after the current
  // folder; empty: $UMBRA_BUILD_DIR.
  std::string build_dir;
  // Deferred-probe timeout when the file gives none.
  int64_t default_deferred_probe_timeout_ns = 5'000'000'000;
  // Called on the machine's thread (or the thread that probed), in order.
  std::function<void(const Notice&)> on_notice;
};

// One device at the end of a run.
struct DeviceSummary {
  std::string name;
  std::string state;         // the model's: "bound", "failed" ...
  std::string shadow_state;  // "passive", "holding" ...; empty when it has no shadow
  bool degraded = false;
  uint64_t restarts = 0;    // driver restarts
  uint64_t recoveries = 0;  // recoveries the shadow completed
  int64_t last_gap_ns = 0;  // detection → passive of the latest completed recovery
  std::string reason;       // why it is unbound or failed
};

class Machine {
 public:
  // Makes the model, the hardware (started) and the machine's thread; no
  // driver runs until Start. Errors: a device's hardware could not be made.
  static Result<std::unique_ptr<Machine>> Create(const proto::Machine& description, MachineOptions options);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Registers buses, devices and links, then drivers: probing begins, in
  // dependency order. Starts the deferred-probe timeout.
  Result<void> Start();
  // Waits until no device is probing or recovering and no shadow is
  // finishing a recovery; kTimeout names the devices still busy.
  Result<void> WaitSettled(int64_t timeout_ns);
  // Unbinds every device (consumers first), stops every driver and reaps it.
  // Idempotent.
  void Stop();

  model::Model& model() { return *model_; }
  const std::string& name() const { return name_; }
  std::vector<std::string> device_names() const;
  shadows::Shadow* shadow(std::string_view device) const;
  runtime::DriverHost* host(std::string_view device) const;
  Hardware* hardware(std::string_view device) const;
  std::vector<DeviceSummary> Summarize() const;
  std::vector<Notice> notices() const;

 private:
  struct Unit;
  class Backend;
  class HostForwarder;
  class ConsumerListener;
  using Task = std::function<void()>;

  explicit Machine(MachineOptions options);

  Unit* FindUnit(std::string_view device) const;
  // model::DriverBackend, on the model's dispatching thread.
  void ProbeUnit(model::Device& device, const model::DriverSpec& driver);
  void RemoveUnit(model::Device& device);
  Result<void> StartUnit(Unit& unit, model::Device& device, const model::DriverSpec& driver);
  void StopUnit(Unit& unit);
  runtime::DriverHostOptions HostOptions(const Unit& unit, const model::Device& device,
                                         const model::DriverSpec& driver) const;
  // A relative binary with a '/' is looked for here, then in the build dir.
  std::string ResolveBinary(const std::string& binary) const;
  // Reports from a unit's supervisor loop, handled on the machine's thread.
  void HandleDown(Unit& unit, uint64_t epoch, runtime::Detection detection);
  void HandleReady(Unit& unit, uint64_t epoch);
  void HandleFailed(Unit& unit, uint64_t epoch, runtime::Detection detection);
  void PollRecoveries();
  void Post(Task task);
  void ThreadMain();
  void Notify(NoticeKind kind, std::string device, std::string detail);

  MachineOptions options_;
  std::string name_;
  std::unique_ptr<proto::Machine> description_;           // what Start registers
  std::unique_ptr<shadows::ShadowRegistry> own_shadows_;  // the built-ins, when options_ gives none
  std::unique_ptr<HardwareRegistry> own_hardware_;
  std::string temp_dir_;  // made by Create when options_.state_dir is empty; removed by ~Machine
  int64_t deferral_ns_ = 0;
  // Every device of the description, made in Create and never added to or
  // erased from, so lookups need no lock. Units own hardware, supervisor and
  // shadow; destroyed after the model (whose backends point back here) —
  // see ~Machine for the order.
  std::map<std::string, std::unique_ptr<Unit>, std::less<>> units_;
  std::unique_ptr<model::Model> model_;

  mutable std::mutex mu_;  // guards what follows and every Unit's phase fields
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::vector<Notice> notices_;
  bool stop_thread_ = false;
  bool started_ = false;
  bool stopped_ = false;
  int64_t deferral_deadline_ns_ = 0;  // 0: not armed (or already expired)
  std::thread thread_;                // the machine's thread; joined by Stop
};

}  // namespace umbra::machine
