// A driver killed in every way, and a wait for the shadow to recover: the
// harness every class's tests copied (a KillAndRecover and a background
// killer per class).
//
// Host-side faults need nothing from the driver: SIGSEGV, SIGABRT, SIGKILL
// and SIGSTOP (a hang the heartbeat finds). Driver-side misbehaviours go
// through the failpoint site every SDK driver hits for each request
// (sdk.request; a class may name one of its own): it segfaults, aborts,
// spins, exits, never completes the request (the request deadline finds it)
// or completes a request id that was never issued (a protocol violation), so
// they need traffic to fire.
//
//   KillFixture kill(host, shadow, {});
//   for (DriverFault f : kill.faults()) {
//     std::thread client([&] { /* requests */ });
//     kill.KillAndRecover(f);
//   }
//   KillFixture::Background killer(kill, /*max_kills=*/240, /*seed=*/5);
//   ... run a workload ...;  EXPECT_GT(killer.Stop(), 0);
//
// Thread safety: one test thread; Background runs its own.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "runtime/supervisor/driver_host.h"
#include "shadows/shadow.h"

namespace umbra::shadows {

enum class DriverFault {
  kSegfault,  // SIGSEGV from the host
  kAbort,     // SIGABRT
  kSigkill,   // SIGKILL
  kStopped,   // SIGSTOP: a hang the heartbeat finds
  // Driver-side, at the class's request site (the next request hits it):
  kCrashInRequest,    // a null dereference
  kAbortInRequest,    // a failed assertion
  kSpinInRequest,     // an endless loop: the heartbeat stops
  kExitInRequest,     // exit(3): the channel closes
  kLostRequest,       // the request is never completed: the request deadline
  kForgedCompletion,  // a completion for an id never issued: a protocol violation
};

inline const char* DriverFaultName(DriverFault f) {
  switch (f) {
    case DriverFault::kSegfault: return "SIGSEGV";
    case DriverFault::kAbort: return "SIGABRT";
    case DriverFault::kSigkill: return "SIGKILL";
    case DriverFault::kStopped: return "SIGSTOP";
    case DriverFault::kCrashInRequest: return "segfault in a request";
    case DriverFault::kAbortInRequest: return "abort in a request";
    case DriverFault::kSpinInRequest: return "hang in a request";
    case DriverFault::kExitInRequest: return "exit in a request";
    case DriverFault::kLostRequest: return "a request never completed";
    case DriverFault::kForgedCompletion: return "a forged completion";
  }
  return "?";
}

class KillFixture {
 public:
  struct Options {
    std::string request_site = "sdk.request";  // hit once per request; empty: host-side faults only
    // Upper bound for noticing and recovering. Generous: a lost request is
    // judged in the driver's own CPU time, which a loaded machine slows.
    int64_t timeout_ns = 30'000'000'000;
  };

  KillFixture(runtime::DriverHost& host, Shadow& shadow, Options options)
      : host_(host), shadow_(shadow), options_(std::move(options)) {}

  // The four signals, then (with a request site) the driver-side faults.
  std::vector<DriverFault> faults() const {
    std::vector<DriverFault> out = {DriverFault::kSegfault, DriverFault::kAbort, DriverFault::kSigkill,
                                    DriverFault::kStopped};
    if (options_.request_site.empty()) return out;
    for (DriverFault f : {DriverFault::kCrashInRequest, DriverFault::kAbortInRequest, DriverFault::kSpinInRequest,
                          DriverFault::kExitInRequest, DriverFault::kLostRequest, DriverFault::kForgedCompletion}) {
      out.push_back(f);
    }
    return out;
  }

  // Makes the running driver fail that way; returns at once.
  void Inject(DriverFault f) {
    switch (f) {
      case DriverFault::kSegfault: return host_.Kill(SIGSEGV);
      case DriverFault::kAbort: return host_.Kill(SIGABRT);
      case DriverFault::kSigkill: return host_.Kill(SIGKILL);
      case DriverFault::kStopped: return host_.Kill(SIGSTOP);
      case DriverFault::kCrashInRequest: return Arm("1*segfault");
      case DriverFault::kAbortInRequest: return Arm("1*abort");
      case DriverFault::kSpinInRequest: return Arm("1*hang");
      case DriverFault::kExitInRequest: return Arm("1*exit(3)");
      case DriverFault::kLostRequest: return Arm("1*drop_completion");
      case DriverFault::kForgedCompletion: return Arm("1*forged_id");
    }
  }

  // Injects `f` and waits until the shadow noticed and serves again.
  void KillAndRecover(DriverFault f) {
    SCOPED_TRACE(DriverFaultName(f));
    const size_t before = shadow_.recoveries().size();
    Inject(f);
    ASSERT_TRUE(WaitForRecovery(before)) << "the fault was noticed";
  }
  void KillAndRecover(int sig) {
    const size_t before = shadow_.recoveries().size();
    host_.Kill(sig);
    ASSERT_TRUE(WaitForRecovery(before)) << "the fault was noticed";
  }

  // True once a recovery after the first `before` started and the shadow is
  // passive again (within the timeout).
  bool WaitForRecovery(size_t before) {
    const int64_t deadline = MonotonicNanos() + options_.timeout_ns;
    while (shadow_.recoveries().size() == before && MonotonicNanos() < deadline) usleep(50);
    if (shadow_.recoveries().size() == before) return false;
    return shadow_.WaitUntilPassive(deadline - MonotonicNanos()).has_value();
  }

  // Kills the driver every 0.5–4 ms while it serves, rotating through the
  // host-side faults (driver-side ones need traffic the killer cannot see),
  // until `max_kills` or Stop.
  class Background {
   public:
    Background(KillFixture& fixture, int max_kills, uint64_t seed) : fixture_(fixture) {
      thread_ = std::thread([this, max_kills, seed] { Run(max_kills, seed); });
    }
    ~Background() { Stop(); }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    // Joins the killer; returns how many kills it made.
    int Stop() {
      stop_ = true;
      if (thread_.joinable()) thread_.join();
      return kills_;
    }

   private:
    void Run(int max_kills, uint64_t seed) {
      std::mt19937 rng(seed);
      const DriverFault rotation[] = {DriverFault::kSegfault, DriverFault::kAbort, DriverFault::kSigkill,
                                      DriverFault::kStopped};
      while (!stop_ && kills_ < max_kills) {
        usleep(std::uniform_int_distribution<int>(500, 4000)(rng));
        if (!fixture_.shadow_.passive()) continue;
        fixture_.Inject(rotation[kills_ % 4]);
        ++kills_;
        const int64_t deadline = MonotonicNanos() + fixture_.options_.timeout_ns / 2;
        while (fixture_.shadow_.passive() && MonotonicNanos() < deadline && !stop_) usleep(50);
      }
    }

    KillFixture& fixture_;
    std::atomic<bool> stop_{false};
    std::atomic<int> kills_{0};
    std::thread thread_;
  };

 private:
  void Arm(const std::string& action) {
    ASSERT_FALSE(options_.request_site.empty()) << "driver-side faults need the class's request site";
    auto r = host_.ArmFailpointsInRunningDriver(options_.request_site + "=" + action);
    // kInterrupted: the fault fired (and killed the driver) before the reply
    // to the arming call came back — which is what was asked for.
    ASSERT_TRUE(r.has_value() || r.error().code == Errc::kInterrupted) << r.error().ToString();
  }

  runtime::DriverHost& host_;  // owned by the test's supervisor
  Shadow& shadow_;             // owned by the test
  const Options options_;
};

}  // namespace umbra::shadows
