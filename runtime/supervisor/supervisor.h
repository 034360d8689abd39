// Supervisor: the host's event loop and the devices it keeps alive.
//
// One single-threaded Boost.Asio io_context runs on a thread the Supervisor
// owns; every DriverHost's process watching, handshakes, watchdogs and
// restarts happen there. Clients use the DriverHosts from their own threads.
//
//   Supervisor sup;
//   DriverHost* echo = UMBRA_TRY(sup.AddDevice({.device_name = "echo0",
//                                               .driver_binary = "umbra-driver-echo"}));
//   echo->Start();
//   ...
//   sup.Stop();  // or let the destructor do it: asks, waits, kills; reaps all
//
// Thread safety: AddDevice, Find and Stop may be called from any thread except
// the loop's own.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "runtime/supervisor/driver_host.h"

namespace umbra::runtime {

class Supervisor {
 public:
  Supervisor();
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Creates the device's data channel and resolves its driver; does not start it.
  Result<DriverHost*> AddDevice(DriverHostOptions options);
  DriverHost* Find(const std::string& name) const;

  // Runs `fn` on the loop thread and waits for it.
  void RunOnLoop(std::function<void()> fn);
  boost::asio::io_context& io();

  // Shuts every device down (ask, wait, kill), then stops the loop. Idempotent.
  void Stop();

 private:
  struct Loop;
  std::unique_ptr<Loop> loop_;  // the io_context and its thread; outlives the hosts
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<DriverHost>> hosts_;  // destroyed before the loop
  bool stopped_ = false;
};

}  // namespace umbra::runtime
