// DriverHost: the public face (driver_host.h). Everything it does happens in
// DriverHost::Impl (driver_host_impl.h lists the file of each concern); these
// functions post to the event loop or read under the data-path lock.
#include "runtime/supervisor/driver_host.h"

#include <future>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "runtime/supervisor/driver_host_impl.h"

namespace umbra::runtime {

Result<std::unique_ptr<DriverHost>> DriverHost::Create(asio::io_context& io, DriverHostOptions options) {
  if (options.device_name.empty()) return Fail(Errc::kInvalidArgument, "device needs a name");
  std::string binary = UMBRA_TRY(FindDriverBinary(options.driver_binary));
  switch (options.sandbox.mode) {
    case sandbox::SandboxMode::kOn: sandbox::HardenHost(); break;
    case sandbox::SandboxMode::kOff:
      spdlog::warn("[{}] sandbox off: the driver runs as the host's user, in the host's namespaces",
                   options.device_name);
      break;
  }
  auto data = UMBRA_TRY(ipc::DataChannel::Create(options.device_name, options.data));
  auto impl = std::make_unique<Impl>(io, std::move(options), std::move(data));
  impl->binary_ = std::move(binary);
  impl->PrepareCgroup();  // before the loop knows this device: no race
  return std::unique_ptr<DriverHost>(new DriverHost(std::move(impl)));
}

DriverHost::DriverHost(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DriverHost::~DriverHost() = default;

const std::string& DriverHost::name() const { return impl_->options_.device_name; }
DeviceState DriverHost::state() const { return impl_->state_.load(); }
std::vector<Detection> DriverHost::detections() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->detections_;
}
DriverHostStats DriverHost::stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->stats_;
}
uint64_t DriverHost::instance() const { return impl_->instance_counter_; }
pid_t DriverHost::driver_pid() const {
  pid_t pid = -1;
  std::promise<void> done;
  asio::post(impl_->io_, [&] {
    if (impl_->current_) pid = impl_->current_->pid;
    done.set_value();
  });
  done.get_future().wait();
  return pid;
}
void DriverHost::set_listener(DriverHostListener* l) { impl_->listener_ = l; }
recorder::Recorder& DriverHost::recorder() const { return impl_->rec_; }
uint32_t DriverHost::recorder_device() const { return impl_->rec_id_; }

void DriverHost::Start() {
  asio::post(impl_->io_, [this] { impl_->Start(); });
}

DriverInfo DriverHost::driver_info() const {
  std::lock_guard lock(impl_->mu_);
  DriverInfo info = impl_->info_;
  if (info.binary.empty()) info.binary = impl_->binary_;
  return info;
}
void DriverHost::ResetFailed() {
  asio::post(impl_->io_, [this] { impl_->ResetFailed(); });
}
void DriverHost::Kill(int sig) {
  asio::post(impl_->io_, [this, sig] { impl_->Kill(sig); });
}

Result<void> DriverHost::WaitUntilRunning(int64_t timeout_ns) {
  return impl_->WaitForState(DeviceState::kRunning, timeout_ns);
}
Result<void> DriverHost::WaitForState(DeviceState s, int64_t timeout_ns) { return impl_->WaitForState(s, timeout_ns); }

std::optional<uint32_t> DriverHost::AllocBuffer() {
  std::lock_guard lock(impl_->mu_);
  if (impl_->free_buffers_.empty()) return std::nullopt;
  uint32_t off = impl_->free_buffers_.back();
  impl_->free_buffers_.pop_back();
  return off;
}
void DriverHost::FreeBuffer(uint32_t offset) {
  std::lock_guard lock(impl_->mu_);
  impl_->free_buffers_.push_back(offset);
}
std::byte* DriverHost::buffer(uint32_t offset) { return impl_->data_->pool() + offset; }
uint32_t DriverHost::buffer_size() const { return impl_->data_->layout().buffer_size; }

Result<size_t> DriverHost::Submit(std::span<const Request> r) { return impl_->Submit(r); }
size_t DriverHost::Poll(std::span<Completion> out) { return impl_->Poll(out); }
size_t DriverHost::Wait(std::span<Completion> out, int64_t t) { return impl_->Wait(out, t); }
size_t DriverHost::in_flight() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->in_flight_;
}

Result<std::string> DriverHost::Call(uint32_t method, std::string body, int64_t timeout_ns) {
  return impl_->Call(method, std::move(body), timeout_ns);
}

Result<std::vector<std::string>> DriverHost::CallBatch(std::vector<DriverCall> calls, int64_t timeout_ns) {
  return impl_->CallBatch(std::move(calls), timeout_ns);
}

void DriverHost::Shutdown() {
  asio::post(impl_->io_, [this] { impl_->BeginShutdown(); });
  (void)impl_->WaitForState(DeviceState::kStopped, 10'000'000'000);
}

}  // namespace umbra::runtime
