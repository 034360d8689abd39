#include "shadows/net/frontend/tap_frontend.h"

#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/hw/nic/tap_backend.h"

namespace umbra::net {
namespace {

constexpr size_t kQueueFrames = 1024;  // frames from Linux waiting for the interface
constexpr int64_t kIdleWaitNs = 200'000;

// Runs `ip ARGS`, quietly; kUnavailable with the command when it fails.
Result<void> Ip(const std::string& args) {
  const std::string cmd = "ip " + args + " >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  if (status != 0) return Fail(Errc::kUnavailable, "`" + cmd.substr(0, cmd.find(" >")) + "` failed");
  return {};
}

}  // namespace

class TapFrontend::Impl final : public hw::nic::FrameSink {
 public:
  explicit Impl(Interface& nic) : nic_(nic) {}
  ~Impl() { Stop(); }

  Result<void> Start(TapFrontendOptions options) {
    UMBRA_TRY(nic_.Open(10'000'000'000));
    UMBRA_TRY(nic_.SetRxMode({.promiscuous = true}));
    UMBRA_TRY(nic_.Up());
    tap_ = UMBRA_TRY(hw::nic::TapBackend::Create({.name = options.name,
                                                  .netns = options.netns,
                                                  .ipv4_address = options.ipv4_address,
                                                  .prefix_length = options.prefix_length,
                                                  .mtu = options.mtu}));
    tap_->Attach(this);
    pump_ = std::thread([this] { Pump(); });
    return {};
  }
  void Stop() {
    stop_ = true;
    if (pump_.joinable()) pump_.join();
    if (tap_) tap_->Attach(nullptr);
    tap_.reset();
  }

  // Linux sent frames out of the TAP (the TAP's reader thread).
  void DeliverFrames(std::span<const hw::nic::FrameView> frames) override {
    std::lock_guard lock(mu_);
    for (const auto& f : frames) {
      if (queue_.size() >= kQueueFrames) {
        ++dropped_;
        continue;
      }
      queue_.emplace_back(f.begin(), f.end());
    }
  }
  void LinkChanged(hw::nic::LinkState) override {}

  const std::string& name() const { return tap_->name(); }
  TapFrontendStats stats() const { return {to_device_.load(), from_device_.load(), dropped_.load()}; }

 private:
  void Pump() {
    bool idle = false;
    while (!stop_) {
      const size_t out = ToDevice();
      const size_t in = FromDevice(idle && out == 0 ? kIdleWaitNs : 0);
      idle = out == 0 && in == 0;
    }
  }

  // Hands what Linux sent to the interface; what it does not take is dropped.
  size_t ToDevice() {
    std::deque<std::vector<std::byte>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
    }
    std::vector<FrameView> views(batch.begin(), batch.end());
    size_t done = 0;
    for (int tries = 0; done < views.size() && tries < 100 && !stop_; ++tries) {
      auto sent = nic_.Transmit({views.data() + done, views.size() - done});
      if (!sent) break;
      done += *sent;
      if (done < views.size()) std::this_thread::yield();
    }
    to_device_ += done;
    dropped_ += views.size() - done;
    return views.size();
  }

  size_t FromDevice(int64_t wait_ns) {
    auto got = nic_.Receive(frames_, wait_ns);
    if (!got || *got == 0) return 0;
    tap_->Transmit({frames_.data(), *got});
    from_device_ += *got;
    return *got;
  }

  Interface& nic_;                            // not owned; outlives the frontend
  std::unique_ptr<hw::nic::TapBackend> tap_;  // the Linux interface
  std::mutex mu_;
  std::deque<std::vector<std::byte>> queue_;  // guarded by mu_
  std::array<FrameView, 64> frames_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> to_device_{0}, from_device_{0}, dropped_{0};
  std::thread pump_;  // the one thread that calls Transmit and Receive
};

Result<std::unique_ptr<TapFrontend>> TapFrontend::Create(Interface& nic, TapFrontendOptions options) {
  auto impl = std::make_unique<Impl>(nic);
  UMBRA_TRY(impl->Start(std::move(options)));
  return std::unique_ptr<TapFrontend>(new TapFrontend(std::move(impl)));
}

TapFrontend::TapFrontend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TapFrontend::~TapFrontend() = default;
const std::string& TapFrontend::name() const { return impl_->name(); }
TapFrontendStats TapFrontend::stats() const { return impl_->stats(); }

Result<std::unique_ptr<Netns>> Netns::Ensure(std::string name) {
  if (name.empty() || name.find_first_of(" /'\"") != std::string::npos) {
    return Fail(Errc::kInvalidArgument, "bad network namespace name '" + name + "'");
  }
  const bool exists = std::system(("ip netns exec " + name + " true >/dev/null 2>&1").c_str()) == 0;
  if (!exists) UMBRA_TRY(Ip("netns add " + name));
  return std::unique_ptr<Netns>(new Netns(std::move(name), !exists));
}

Netns::~Netns() {
  if (made_) (void)Ip("netns del " + name_);
}

Result<void> MoveInterface(const std::string& name, const std::string& netns, const std::string& cidr) {
  UMBRA_TRY(Ip("link set dev " + name + " netns " + netns));
  if (!cidr.empty()) UMBRA_TRY(Ip("-n " + netns + " addr add " + cidr + " dev " + name));
  UMBRA_TRY(Ip("-n " + netns + " link set dev " + name + " up"));
  UMBRA_TRY(Ip("-n " + netns + " link set dev lo up"));
  return {};
}

}  // namespace umbra::net
