// The machine with real driver processes: device links drive recovery.
#include "machine/machine.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/hw/disk/disk_device.h"
#include "machine/default_machine.h"
#include "runtime/model/machine.h"
#include "shadows/builtin/builtin.h"
#include "shadows/echo/echo_shadow.h"
#include "shadows/net/class.h"
#include "umbra/machine.pb.h"

namespace umbra::machine {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

// echo1 depends on echo0 (managed), echo2 on echo0 (optional).
std::string LinkedEchoes(int max_restarts) {
  return R"pb(name: "echoes"
settings {
  heartbeat_period_ms: 50
  restart_budget { max_restarts: )pb" +
         std::to_string(max_restarts) + R"pb( window_ms: 60000 backoff_ms: 1 }
  deferred_probe_timeout_ms: 500
}
buses { name: "platform" }
devices { name: "echo0" bus: "platform" compatible: "umbra,echo" device_class: "echo" }
devices { name: "echo1" bus: "platform" compatible: "umbra,echo" device_class: "echo" }
devices { name: "echo2" bus: "platform" compatible: "umbra,echo" device_class: "echo" }
drivers { name: "echo" bus: "platform" compatible: "umbra,echo" binary: "umbra-driver-echo" }
links { consumer: "echo1" supplier: "echo0" flags: "managed" }
links { consumer: "echo2" supplier: "echo0" flags: "managed" flags: "optional" }
)pb";
}

std::unique_ptr<Machine> StartMachine(const std::string& text) {
  auto description = model::ParseMachine(text, "echoes.textproto");
  EXPECT_TRUE(description.has_value()) << description.error().ToString();
  if (!description) return nullptr;
  auto m = Machine::Create(**description, {});
  EXPECT_TRUE(m.has_value()) << m.error().ToString();
  if (!m) return nullptr;
  auto started = (*m)->Start();
  EXPECT_TRUE(started.has_value()) << started.error().ToString();
  auto settled = (*m)->WaitSettled(20 * kSec);
  EXPECT_TRUE(settled.has_value()) << settled.error().ToString();
  return std::move(*m);
}

std::string State(Machine& m, const std::string& device) {
  return m.model().Read("/devices/platform/" + device + "/state").value_or("?");
}

shadows::echo::EchoShadow* Echo(Machine& m, const std::string& device) {
  return dynamic_cast<shadows::echo::EchoShadow*>(m.shadow(device));
}

// A client that keeps a consumer busy: echoes and checks every answer.
class BusyClient {
 public:
  explicit BusyClient(shadows::echo::EchoShadow* shadow) : shadow_(shadow) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~BusyClient() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t ok() const { return ok_; }
  uint64_t errors() const { return errors_; }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  void WaitForMore(uint64_t n) {
    const uint64_t target = ok_ + n;
    const int64_t deadline = MonotonicNanos() + 10 * kSec;
    while (ok_ < target && MonotonicNanos() < deadline) usleep(200);
  }

 private:
  void Loop() {
    std::vector<std::byte> data(64);
    while (!stop_) {
      for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(i);
      auto r = shadow_->Echo(data, 10 * kSec);
      bool good = r.has_value();
      for (size_t i = 0; good && i < data.size(); ++i) good = data[i] == ~std::byte(i);
      if (good) {
        ++ok_;
      } else {
        ++errors_;
        std::lock_guard lock(mu_);
        last_error_ = r ? "wrong answer" : r.error().ToString();
      }
    }
  }

  shadows::echo::EchoShadow* shadow_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0}, errors_{0};
  mutable std::mutex mu_;
  std::string last_error_;
  std::thread thread_;
};

bool WaitFor(const std::function<bool()>& done, int64_t timeout_ns = 10 * kSec) {
  const int64_t deadline = MonotonicNanos() + timeout_ns;
  while (!done()) {
    if (MonotonicNanos() > deadline) return false;
    usleep(500);
  }
  return true;
}

TEST(MachineTest, StartsEveryDriverInDependencyOrder) {
  auto m = StartMachine(LinkedEchoes(3));
  ASSERT_TRUE(m);
  for (const char* d : {"echo0", "echo1", "echo2"}) {
    EXPECT_EQ(State(*m, d), "bound") << d;
    ASSERT_NE(m->host(d), nullptr);
    EXPECT_GT(m->host(d)->driver_pid(), 0) << d << " runs in its own process";
    ASSERT_NE(Echo(*m, d), nullptr);
    EXPECT_EQ(Echo(*m, d)->state(), shadows::ShadowState::kPassive);
  }
  EXPECT_EQ(m->model().Read("/links/echo0--echo1/status").value_or(""), "active");
  EXPECT_EQ(m->model().Read("/links/echo0--echo2/status").value_or(""), "active");
  m->Stop();
  for (const char* d : {"echo0", "echo1", "echo2"}) {
    EXPECT_EQ(State(*m, d), "unbound") << d;
    EXPECT_EQ(m->host(d), nullptr) << d << "'s driver was stopped";
  }
}

// Issue 3's integration test: a supplier whose driver is killed while its
// consumers are busy; they hold and resume, and nothing is torn down. Then the
// supplier fails for good: the managed consumer is unbound with a reason, the
// optional one runs on, degraded.
TEST(MachineTest, SupplierCrashHoldsConsumersThenFailureUnbindsManagedAndDegradesOptional) {
  auto m = StartMachine(LinkedEchoes(1));
  ASSERT_TRUE(m);
  const pid_t echo1_pid = m->host("echo1")->driver_pid();
  const pid_t echo2_pid = m->host("echo2")->driver_pid();

  // When the model says echo0 is back, echo1's and echo2's shadows have not
  // yet been told: they must be holding right then.
  std::atomic<int> held_at_recovered{0};
  std::atomic<bool> recovered_seen{false};
  std::atomic<int> consumer_unbinds{0};
  model::Subscription sub = m->model().Subscribe([&](const model::Event& e) {
    if (e.type == model::EventType::kUnbind && (e.name == "echo1" || e.name == "echo2")) ++consumer_unbinds;
    if (e.type != model::EventType::kStateChange || e.name != "echo0" || e.detail != "recovering -> bound") return;
    for (const char* c : {"echo1", "echo2"}) {
      if (auto* s = m->shadow(c); s && s->state() == shadows::ShadowState::kHolding) ++held_at_recovered;
    }
    recovered_seen = true;
  });

  auto busy1 = std::make_unique<BusyClient>(Echo(*m, "echo1"));
  BusyClient busy2(Echo(*m, "echo2"));
  busy1->WaitForMore(50);
  busy2.WaitForMore(50);

  // 1. The supplier's driver is killed while both consumers are busy.
  const pid_t echo0_pid = m->host("echo0")->driver_pid();
  m->host("echo0")->Kill(SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& n : m->notices()) {
      if (n.kind == NoticeKind::kDriverBack && n.device == "echo0") return true;
    }
    return false;
  })) << "echo0 recovered";
  ASSERT_TRUE(WaitFor([&] { return State(*m, "echo0") == "bound"; }));
  EXPECT_NE(m->host("echo0")->driver_pid(), echo0_pid) << "a new driver process serves echo0";
  // The model delivers events after it changed the state: wait for this one.
  ASSERT_TRUE(WaitFor([&] { return recovered_seen.load(); })) << "the model reported echo0 back";
  EXPECT_EQ(held_at_recovered.load(), 2) << "both consumers held while echo0 recovered";
  busy1->WaitForMore(50);
  busy2.WaitForMore(50);
  EXPECT_EQ(Echo(*m, "echo1")->state(), shadows::ShadowState::kPassive) << "echo1 resumed";
  EXPECT_EQ(Echo(*m, "echo2")->state(), shadows::ShadowState::kPassive) << "echo2 resumed";
  // Nothing was torn down: same consumer drivers, no restarts, no unbind, no error.
  EXPECT_EQ(m->host("echo1")->driver_pid(), echo1_pid);
  EXPECT_EQ(m->host("echo2")->driver_pid(), echo2_pid);
  EXPECT_EQ(m->host("echo1")->stats().restarts, 0u);
  EXPECT_EQ(m->host("echo2")->stats().restarts, 0u);
  EXPECT_EQ(consumer_unbinds.load(), 0);
  EXPECT_EQ(busy1->errors(), 0u) << busy1->last_error();
  EXPECT_EQ(busy2.errors(), 0u) << busy2.last_error();
  EXPECT_EQ(State(*m, "echo1"), "bound");
  EXPECT_EQ(State(*m, "echo2"), "bound");

  // 2. Killed again: the budget (one restart per minute) is spent.
  busy1->Stop();  // echo1's shadow goes away with its unbinding
  busy1.reset();
  m->host("echo0")->Kill(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return State(*m, "echo0") == "failed"; })) << State(*m, "echo0");
  ASSERT_TRUE(WaitFor([&] { return State(*m, "echo1") == "unbound"; })) << State(*m, "echo1");
  const std::string reason = m->model().Read("/devices/platform/echo1/reason").value_or("");
  EXPECT_NE(reason.find("supplier echo0 failed"), std::string::npos) << reason;
  EXPECT_EQ(m->shadow("echo1"), nullptr) << "the managed consumer's driver was stopped";
  EXPECT_EQ(State(*m, "echo2"), "bound") << "the optional consumer runs on";
  EXPECT_EQ(m->model().Read("/devices/platform/echo2/degraded").value_or(""), "1");
  ASSERT_TRUE(WaitFor([&] { return Echo(*m, "echo2")->degraded(); }));
  const uint64_t before = busy2.ok();
  busy2.WaitForMore(50);
  EXPECT_GE(busy2.ok(), before + 50) << "echo2 serves, degraded";
  EXPECT_EQ(busy2.errors(), 0u) << busy2.last_error();
  EXPECT_EQ(m->host("echo2")->driver_pid(), echo2_pid);
  busy2.Stop();

  bool failed_notice = false;
  for (const auto& n : m->notices()) failed_notice |= n.kind == NoticeKind::kDeviceFailed && n.device == "echo0";
  EXPECT_TRUE(failed_notice);
  auto summary = m->Summarize();
  ASSERT_EQ(summary.size(), 3u);
  EXPECT_EQ(summary[0].state, "failed");
  EXPECT_EQ(summary[1].state, "unbound");
  EXPECT_TRUE(summary[2].degraded);
}

// Attribute reads, tree renders and link changes from other threads while
// the supplier crashes and recovers over and over (run it under TSan).
TEST(MachineTest, ReadsAndLinkChangesRaceWithRecovery) {
  auto m = StartMachine(LinkedEchoes(1000));
  ASSERT_TRUE(m);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0}, link_changes{0};
  std::thread reader([&] {
    while (!stop) {
      for (const char* d : {"echo0", "echo1", "echo2"}) {
        (void)m->model().Read(std::string("/devices/platform/") + d + "/state");
        (void)m->model().Read(std::string("/devices/platform/") + d + "/degraded");
      }
      (void)m->model().Read("/links/echo0--echo1/status");
      (void)m->model().RenderText();
      (void)m->Summarize();
      ++reads;
    }
  });
  std::thread linker([&] {
    while (!stop) {
      // A stateless link and an optional one between bound devices, added and removed.
      if (m->model().AddLink("echo2", "echo1", model::LinkFlag::kStateless)) ++link_changes;
      (void)m->model().RemoveLink("echo2", "echo1");
      if (m->model().AddLink("echo1", "echo2", model::LinkFlag::kManaged | model::LinkFlag::kOptional)) {
        ++link_changes;
      }
      (void)m->model().RemoveLink("echo1", "echo2");
    }
  });
  BusyClient busy(Echo(*m, "echo1"));
  for (int i = 0; i < 5; ++i) {
    const size_t before = m->notices().size();
    m->host("echo0")->Kill(SIGKILL);
    ASSERT_TRUE(WaitFor([&] {
      auto n = m->notices();
      for (size_t j = before; j < n.size(); ++j) {
        if (n[j].kind == NoticeKind::kDriverBack && n[j].device == "echo0") return true;
      }
      return false;
    })) << "recovery "
        << i;
  }
  stop = true;
  reader.join();
  linker.join();
  ASSERT_TRUE(m->WaitSettled(10 * kSec).has_value());
  busy.WaitForMore(10);
  busy.Stop();
  EXPECT_EQ(busy.errors(), 0u) << busy.last_error();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(link_changes.load(), 0u);
  for (const char* d : {"echo0", "echo1", "echo2"}) EXPECT_EQ(State(*m, d), "bound") << d;
  EXPECT_EQ(m->host("echo1")->stats().restarts, 0u) << "the consumer's driver never died";
}

TEST(MachineTest, ProbeFailsWithAClearReasonWhenTheDriverCannotStart) {
  // echo0 gets a driver of its own whose program does not exist.
  std::string text = LinkedEchoes(3);
  const std::string echo0 = R"(name: "echo0" bus: "platform" compatible: "umbra,echo")";
  text.replace(text.find(echo0), echo0.size(), R"(name: "echo0" bus: "platform" compatible: "umbra,echo-x")");
  text += R"(drivers { name: "nope" bus: "platform" compatible: "umbra,echo-x" binary: "umbra-driver-nope" })";
  auto m = StartMachine(text);
  ASSERT_TRUE(m);
  EXPECT_EQ(State(*m, "echo0"), "unbound");
  const std::string reason = m->model().Read("/devices/platform/echo0/reason").value_or("");
  EXPECT_NE(reason.find("umbra-driver-nope"), std::string::npos) << reason;
  // echo1 waits for echo0; echo2's optional link was relaxed by the deferral timeout.
  EXPECT_EQ(State(*m, "echo1"), "deferred");
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& n : m->notices()) {
      if (n.kind == NoticeKind::kDeferralExpired) return true;
    }
    return false;
  }));
  ASSERT_TRUE(WaitFor([&] { return State(*m, "echo2") == "bound"; })) << State(*m, "echo2");
  EXPECT_EQ(m->model().Read("/devices/platform/echo2/degraded").value_or(""), "1");
  EXPECT_EQ(State(*m, "echo1"), "deferred") << "a managed supplier is still waited for";
}

TEST(MachineTest, DefaultMachineAndExamplesLoad) {
  auto d = LoadDefaultMachine();
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ((*d)->devices_size(), 4) << "a NIC, a disk, a serial port and a sound card";
  bool managed = false, optional = false;
  for (const auto& l : (*d)->links()) {
    bool opt = false;
    for (const auto& f : l.flags()) opt |= f == "optional";
    (opt ? optional : managed) = true;
  }
  EXPECT_TRUE(managed && optional);
  for (const char* f : {"echo-links.textproto", "links.textproto", "links.json", "small.textproto"}) {
    auto m = model::LoadMachine(std::string(UMBRA_SOURCE_DIR) + "/examples/machines/" + f);
    EXPECT_TRUE(m.has_value()) << f << ": " << m.error().ToString();
  }
}

TEST(HardwareRegistryTest, MakesHardwareByCompatibleAndRefusesTwice) {
  HardwareRegistry registry;
  RegisterBuiltinHardware(registry);
  EXPECT_TRUE(registry.Has("umbra,e1000-emu"));
  EXPECT_FALSE(
      registry
          .Register("umbra,e1000-emu", [](const HardwareSpec&) { return Result<std::unique_ptr<Hardware>>(nullptr); })
          .has_value());
  auto none = registry.Create({.device = "echo0", .compatible = {"umbra,echo"}});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->get(), nullptr) << "nothing to emulate for echo";
  auto nic = registry.Create(
      {.device = "nic0", .compatible = {"vendor,x", "umbra,e1000-emu"}, .settings = {{"mac", "02:00:00:00:00:07"}}});
  ASSERT_TRUE(nic.has_value()) << nic.error().ToString();
  auto* n = dynamic_cast<NicHardware*>(nic->get());
  ASSERT_NE(n, nullptr);
  EXPECT_NE(n->peer(), nullptr);
  auto bad = registry.Create({.device = "nic1", .compatible = {"umbra,e1000-emu"}, .settings = {{"mac", "zz"}}});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("nic1: mac 'zz'"), std::string::npos) << bad.error().message;
}

TEST(HardwareRegistryTest, DiskSettingsReachTheDeviceAndBadOnesAreNamed) {
  char dir[] = "/tmp/umbra-hw-disk-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  HardwareRegistry registry;
  RegisterBuiltinHardware(registry);
  auto made = registry.Create({.device = "disk7",
                               .compatible = {"umbra,disk-emu"},
                               .settings = {{"blocks", "64"},
                                            {"cache", "8192"},
                                            {"writeback_start", "75"},
                                            {"idle_writeback", "true"},
                                            {"hw_cpu", "0"}},
                               .state_dir = dir});
  ASSERT_TRUE(made.has_value()) << made.error().ToString();
  auto* disk = dynamic_cast<hw::disk::DiskDevice*>((*made)->device());
  ASSERT_NE(disk, nullptr);
  EXPECT_EQ(disk->capacity_blocks(), 64u);
  EXPECT_EQ(disk->options().cache_bytes, 8192u);
  EXPECT_EQ(disk->options().writeback_start_percent, 75u);
  EXPECT_TRUE(disk->options().idle_writeback);
  EXPECT_EQ(disk->options().hw_cpu, 0);
  made->reset();
  auto defaults = registry.Create({.device = "disk8", .compatible = {"umbra,disk-emu"}, .state_dir = dir});
  ASSERT_TRUE(defaults.has_value()) << defaults.error().ToString();
  auto* plain = dynamic_cast<hw::disk::DiskDevice*>((*defaults)->device());
  EXPECT_FALSE(plain->options().idle_writeback);
  EXPECT_EQ(plain->options().hw_cpu, -1);
  defaults->reset();
  const std::pair<const char*, const char*> bad[] = {
      {"idle_writeback", "maybe"}, {"writeback_start", "150"}, {"hw_cpu", "100000"}, {"cache", "12ab"}};
  const char* expected[] = {"idle_writeback='maybe' is not true or false", "percentage", "no CPU 100000",
                            "cache='12ab' is not a number"};
  for (size_t i = 0; i < std::size(bad); ++i) {
    auto r = registry.Create({.device = "disk9",
                              .compatible = {"umbra,disk-emu"},
                              .settings = {{bad[i].first, bad[i].second}},
                              .state_dir = dir});
    ASSERT_FALSE(r.has_value()) << bad[i].first;
    EXPECT_NE(r.error().message.find("disk9"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(expected[i]), std::string::npos) << r.error().message;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace umbra::machine
