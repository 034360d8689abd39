#include "runtime/supervisor/supervisor.h"

#include <future>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace umbra::runtime {

namespace asio = boost::asio;

struct Supervisor::Loop {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread;
};

Supervisor::Supervisor() : loop_(std::make_unique<Loop>()) {
  // The loop thread logs: spdlog's registry (created on first use, inside
  // its own library) must exist before it starts.
  (void)spdlog::default_logger_raw();
  loop_->thread = std::thread([this] { loop_->io.run(); });
}

Supervisor::~Supervisor() { Stop(); }

asio::io_context& Supervisor::io() { return loop_->io; }

Result<DriverHost*> Supervisor::AddDevice(DriverHostOptions options) {
  std::lock_guard lock(mu_);
  if (stopped_) return Fail(Errc::kUnavailable, "supervisor is stopped");
  for (const auto& h : hosts_) {
    if (h->name() == options.device_name) {
      return Fail(Errc::kAlreadyExists, "a device named " + options.device_name + " exists");
    }
  }
  auto host = UMBRA_TRY(DriverHost::Create(loop_->io, std::move(options)));
  hosts_.push_back(std::move(host));
  return hosts_.back().get();
}

DriverHost* Supervisor::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const auto& h : hosts_) {
    if (h->name() == name) return h.get();
  }
  return nullptr;
}

void Supervisor::RunOnLoop(std::function<void()> fn) {
  std::promise<void> done;
  asio::post(loop_->io, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void Supervisor::Stop() {
  std::vector<std::unique_ptr<DriverHost>> hosts;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    hosts = std::move(hosts_);
  }
  for (auto& h : hosts) h->Shutdown();
  // Every host is stopped and reaped; nothing of theirs is pending.
  loop_->guard.reset();
  loop_->io.stop();
  if (loop_->thread.joinable()) loop_->thread.join();
  hosts.clear();
}

}  // namespace umbra::runtime
