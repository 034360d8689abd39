#include "shadows/net/workloads/file_transfer_workload.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "shadows/net/workloads/file_transfer.h"

namespace umbra::faultinject::campaign {
namespace {

using net::workloads::FramePort;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint32_t kChunk = 1024;
constexpr uint64_t kPeerMac = 0x990000000002;  // 02:00:00:00:00:99

// The transfer's timing, shortened for campaign runs: a lost frame costs
// 10 ms, a transfer the device can no longer carry gives up after 3 s, and
// the receiver keeps acknowledging FINs until the sender is done.
net::workloads::FileTransferOptions TransferOptions() {
  return {.chunk = kChunk, .window = 32, .rto_ns = 10 * kMs, .timeout_ns = 3 * kSec, .linger_ns = 3 * kSec};
}

// The sender's port: reports each frame handed to the interface as a unit.
class ProgressPort final : public FramePort {
 public:
  ProgressPort(FramePort& inner, WorkloadContext& ctx) : inner_(inner), ctx_(ctx) {}
  uint64_t mac() const override { return inner_.mac(); }
  Result<size_t> Send(std::span<const net::FrameView> frames) override {
    const size_t n = UMBRA_TRY(inner_.Send(frames));
    sent_ += n;
    ctx_.Progress(std::min(sent_, ctx_.units()));
    return n;
  }
  Result<size_t> Receive(std::span<net::FrameView> out, int64_t timeout_ns) override {
    return inner_.Receive(out, timeout_ns);
  }

 private:
  FramePort& inner_;      // the interface's port; outlives this one
  WorkloadContext& ctx_;  // the run's
  uint64_t sent_ = 0;
};

// The receiver's port: once the sender is done (its FIN acknowledged, or it
// gave up) Receive ends the receiver with an error instead of lingering.
class StoppablePort final : public FramePort {
 public:
  StoppablePort(FramePort& inner, const std::atomic<bool>& stop) : inner_(inner), stop_(stop) {}
  uint64_t mac() const override { return inner_.mac(); }
  Result<size_t> Send(std::span<const net::FrameView> frames) override { return inner_.Send(frames); }
  Result<size_t> Receive(std::span<net::FrameView> out, int64_t timeout_ns) override {
    if (stop_.load()) {
      stopped_ = true;
      return Fail(Errc::kUnavailable, "the sender is done");
    }
    return inner_.Receive(out, timeout_ns);
  }
  bool stopped() const { return stopped_; }

 private:
  FramePort& inner_;               // the peer's port; outlives this one
  const std::atomic<bool>& stop_;  // set by the sender's thread
  bool stopped_ = false;
};

std::vector<std::byte> SeededFile(uint64_t seed, size_t size) {
  std::vector<std::byte> data(size);
  uint64_t x = seed | 1;
  for (auto& b : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = std::byte(x);
  }
  return data;
}

}  // namespace

FileTransferWorkload::~FileTransferWorkload() {
  shadow_.reset();
  if (nic_) nic_->Stop();
}

std::vector<SiteUse> FileTransferWorkload::sites(uint64_t units) const {
  // Measured with `umbra failpoints list --driver nic --units 64`: a request
  // per frame sent, an ACK received per 10..30 frames, interrupts rarely
  // (the driver mostly reaps on the next transmit).
  const uint64_t acks = units / 16 + 1;
  return {{"sdk.request", units},
          {"sdk.request.exit", units},
          {"sdk.complete", units},
          {"nic.tx", units},
          {"nic.rx", acks},
          {"nic.irq", 2},
          {std::string(kHostSite), units}};
}

Result<void> FileTransferWorkload::SetUp(WorkloadContext& ctx) {
  auto ports = UMBRA_TRY(hw::nic::WirePort::CreatePair());
  nic_ = UMBRA_TRY(hw::nic::Nic::Create({.name = "nic0"}, std::move(ports.first)));
  peer_ = UMBRA_TRY(hw::nic::PeerEndpoint::Create(std::move(ports.second), {.queue_frames = 1024}));
  nic_->Start();
  runtime::DriverHostOptions o;
  o.device_name = "nic0";
  o.device_class = "net";
  o.compatible = "umbra,e1000-emu";
  o.driver_binary = "umbra-driver-nic";
  o.data = {.ring_entries = 256, .buffer_size = 2048, .buffer_count = 256};
  o.hw = nic_.get();
  host_ = UMBRA_TRY(ctx.AddDevice(std::move(o)));
  shadow_ = UMBRA_TRY(net::NetShadow::Create(*host_, {}, ctx.mode()));
  UMBRA_TRY(shadow_->Open(5 * kSec));
  UMBRA_TRY(shadow_->Up());
  UMBRA_TRY(shadow_->WaitUntilPassive(5 * kSec));
  ctx.Watch(*shadow_);
  return {};
}

WorkResult FileTransferWorkload::Run(WorkloadContext& ctx) {
  WorkResult r;
  auto error = [&r](const Error& e) {
    if (r.errors++ == 0) r.first_error = e.ToString();
  };
  const auto options = TransferOptions();
  const std::vector<std::byte> file = SeededFile(ctx.seed(), ctx.units() * kChunk);
  std::vector<std::byte> received;
  Result<net::workloads::FileTransferStats> got = Fail(Errc::kInternal, "not run");
  std::atomic<bool> sender_done{false};
  bool receiver_stopped = false;
  std::thread receiver([&] {
    net::workloads::PeerPort peer(*peer_, kPeerMac);
    StoppablePort port(peer, sender_done);
    got = net::workloads::ReceiveFile(port, options, &received);
    receiver_stopped = port.stopped();
  });
  net::workloads::InterfacePort nic(*shadow_);
  ProgressPort port(nic, ctx);
  auto sent = net::workloads::SendFile(port, kPeerMac, file, options);
  sender_done = true;
  receiver.join();
  if (!sent) error(sent.error());
  // The receiver ends by being stopped; any other error is the application's.
  if (!got && !receiver_stopped) error(got.error());
  r.units_done = received.size() / kChunk;
  const bool same = received == file;
  r.verified = sent.has_value() && same;
  r.wrong_data = sent.has_value() && !same ? 1 : 0;
  r.verification = std::to_string(received.size()) + "/" + std::to_string(file.size()) + " bytes received, " +
                   (sent ? "FIN acknowledged (checksum matched)" : "no acknowledged FIN") + ", bytes " +
                   (same ? "equal" : "differ");
  return r;
}

void FileTransferWorkload::TearDown() {
  if (!shadow_) return;
  shadow_->Stop();
  shadow_.reset();  // its destructor gives pool buffers back: before the Supervisor stops
}

}  // namespace umbra::faultinject::campaign
