// A driver that misbehaves on request: every way a buggy or hostile driver can
// hurt its host, one op each. Used by the supervisor tests.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "drivers/echo/echo_driver.h"
#include "runtime/ipc/spsc_ring.h"
#include "tests/runtime/supervisor/faulty_ops.h"

namespace {

using umbra::ipc::Descriptor;

// The program's file name. The upgrade tests install copies of this binary
// as "new builds" whose name says what the build does wrong: "probe-fails",
// "crashes-soon" (aborts 100 ms after its probe); "v2" reports version 2.0.
std::string g_program;

bool NameSays(const char* what) { return g_program.find(what) != std::string::npos; }

class FaultyDriver : public umbra::drivers::EchoDriver {
 public:
  using enum umbra::testing::FaultOp;

  std::string_view name() const override { return "faulty"; }
  std::string_view version() const override { return NameSays("v2") ? "2.0" : "1.0"; }

  umbra::Result<void> Probe(umbra::sdk::Context& ctx) override {
    if (NameSays("probe-fails")) return umbra::Fail(umbra::Errc::kIo, "this build fails its probe");
    if (NameSays("crashes-soon")) {
      std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::abort();
      }).detach();
    }
    auto it = ctx.device().settings.find("probe");
    if (it != ctx.device().settings.end() && it->second == "fail") {
      return umbra::Fail(umbra::Errc::kIo, "probe told to fail");
    }
    if (it != ctx.device().settings.end() && it->second == "hang") {
      for (;;) ctx.Sleep(1'000'000'000);
    }
    return EchoDriver::Probe(ctx);
  }

  // Crashes while a shadow replays the tag into instances listed in the
  // "crash_replay_on" setting ("2,3"): a double fault during recovery.
  umbra::Result<std::string> OnCall(umbra::sdk::Context& ctx, uint32_t method, std::string_view body) override {
    auto it = ctx.device().settings.find("crash_replay_on");
    if (method == kSetTag && it != ctx.device().settings.end()) {
      const std::string me = std::to_string(ctx.device().instance);
      std::string list = "," + it->second + ",";
      if (list.find("," + me + ",") != std::string::npos) std::abort();
    }
    return EchoDriver::OnCall(ctx, method, body);
  }

  void OnRequest(umbra::sdk::Context& ctx, const Descriptor& req) override {
    switch (req.op) {
      case kSegfault: {
        volatile int* p = nullptr;
        *p = 1;
        break;
      }
      case kAbort: std::abort();
      case kSelfKill: kill(getpid(), SIGKILL); break;
      case kExit: std::exit(static_cast<int>(req.arg));
      case kHang: {
        volatile bool forever = true;
        while (forever) {}
        break;
      }
      case kForgeId: {
        Descriptor forged = req;
        forged.id ^= 0x5a5a0000000ull;
        ctx.Complete(forged, 0, 0);
        return;
      }
      case kOverlongCompletion: ctx.Complete(req, 0, 1u << 30); return;
      case kCorruptRing: {
        // The test passes the distance from the pool back to the completion
        // ring's header; write an impossible producer index there.
        auto* header = reinterpret_cast<umbra::ipc::RingHeader*>(ctx.pool() - req.arg);
        header->head.store(0xdead0000u, std::memory_order_release);
        return;
      }
      case kGarbageDatagram: {
        const char junk[] = "\xff\xff\xff\xff garbage";
        send(3, junk, sizeof junk, MSG_NOSIGNAL);
        break;
      }
      case kOversizedDatagram: {
        std::string big(200 * 1024, 'x');
        send(3, big.data(), big.size(), MSG_NOSIGNAL);
        break;
      }
      case kLogFlood:
        for (int i = 0; i < 2000; ++i) ctx.Log(umbra::sdk::LogLevel::kInfo, "flood " + std::to_string(i));
        ctx.Complete(req, 0, 0);
        return;
      case kDuplicateCompletion:
        ctx.Complete(req, 0, 0);
        ctx.Complete(req, 0, 0);
        return;
      case kUnknownReply: {
        // A Reply for a call nobody made: field 5 (reply) { id = 999 }.
        const unsigned char msg[] = {0x2a, 0x03, 0x08, 0xe7, 0x07};
        send(3, msg, sizeof msg, MSG_NOSIGNAL);
        break;
      }
      case kSelfStop: raise(SIGSTOP); break;
      case kBadStatus: ctx.Complete(req, -77, 0); return;
      default: EchoDriver::OnRequest(ctx, req); return;
    }
    EchoDriver::OnRequest(ctx, req);
  }
};

}  // namespace

int main(int argc, char** argv) {
  g_program = argc > 0 ? argv[0] : "";
  if (const char* slash = std::strrchr(g_program.c_str(), '/')) g_program = slash + 1;
  return umbra::sdk::RunDriverProcess(argc, argv, [] { return std::unique_ptr<umbra::sdk::Driver>(new FaultyDriver); });
}
