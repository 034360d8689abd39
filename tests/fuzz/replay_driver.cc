// A driver that does whatever its input file says: the other half of
// driver_host_fuzz. It speaks the control protocol and the data path as far
// as the input lets it, then acts out the input's operations one by one —
// raw datagrams, well-formed messages with any field values, writes anywhere
// in its data region, forged completions — so that the fuzzer explores how
// the host takes a driver that lies.
//
//   replay_driver INPUT
//
// Input: byte 0 bit 7 set skips the Hello; the rest is a list of operations
// (see Op). The host is the one under test; this program only plays.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtime/ipc/control_channel.h"
#include "runtime/ipc/data_channel.h"
#include "umbra/control.pb.h"

namespace {

using umbra::ipc::Blocking;
using umbra::proto::DriverToHost;
using umbra::proto::HostToDriver;

enum Op : uint8_t {
  kRawDatagram,    // len, bytes: sent as they are
  kParsedMessage,  // len, bytes: sent only if they parse as a DriverToHost
  kHeartbeat,      // u32 seq
  kProbeDone,      // i32 status
  kAttached,
  kReply,        // u8 id, i32 status, len, body
  kLog,          // u8 level, len, text
  kCrash,        // i32 signal
  kPokeRegion,   // u32 offset, u64 value: a store anywhere in the data region
  kComplete,     // a completion descriptor from the input, published and rung
  kTakeRequest,  // pops a request and completes it honestly
  kPause,        // 2 ms
  kOpCount,
};

class Input {
 public:
  explicit Input(std::string bytes) : bytes_(std::move(bytes)) {}
  bool done() const { return at_ >= bytes_.size(); }
  uint8_t u8() { return done() ? 0 : static_cast<uint8_t>(bytes_[at_++]); }
  template <class T>
  T get() {
    T v{};
    for (size_t i = 0; i < sizeof v; ++i) reinterpret_cast<uint8_t*>(&v)[i] = u8();
    return v;
  }
  std::string bytes(size_t n) {
    n = std::min(n, bytes_.size() - std::min(at_, bytes_.size()));
    std::string out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }

 private:
  std::string bytes_;
  size_t at_ = 0;
};

struct Driver {
  umbra::ipc::ControlChannel control{umbra::UniqueFd(3)};
  std::unique_ptr<umbra::ipc::DataChannel> data;

  void Send(const DriverToHost& m) { (void)control.Send(m, {}, Blocking::kDontWait); }

  // Receives until an Attach arrives (with its descriptors) or the host goes.
  bool AwaitAttach() {
    for (;;) {
      HostToDriver m;
      auto fds = control.Receive(m, Blocking::kWait);
      if (!fds) return false;
      if (!m.has_attach()) continue;
      const auto& d = m.attach().data();
      umbra::ipc::DataLayoutInfo layout{.region_size = d.region_size(),
                                        .submit_ring_offset = d.submit_ring_offset(),
                                        .complete_ring_offset = d.complete_ring_offset(),
                                        .ring_entries = d.ring_entries(),
                                        .pool_offset = d.pool_offset(),
                                        .pool_size = d.pool_size(),
                                        .buffer_size = d.buffer_size()};
      if (fds->size() < 3) return false;
      auto ch =
          umbra::ipc::DataChannel::Attach(layout, std::move((*fds)[0]), std::move((*fds)[1]), std::move((*fds)[2]));
      if (!ch) return false;
      data = std::move(*ch);
      return true;
    }
  }

  void Play(Input& in);
};

void Driver::Play(Input& in) {
  while (!in.done()) {
    DriverToHost m;
    switch (static_cast<Op>(in.u8() % kOpCount)) {
      case kRawDatagram: {
        const std::string b = in.bytes(in.u8());
        (void)write(3, b.data(), b.size());
        break;
      }
      case kParsedMessage:
        if (m.ParseFromString(in.bytes(in.u8()))) Send(m);
        break;
      case kHeartbeat:
        m.mutable_heartbeat()->set_seq(in.get<uint32_t>());
        Send(m);
        break;
      case kProbeDone:
        m.mutable_probe_done()->set_status(in.u8() < 200 ? 0 : in.get<int32_t>());
        Send(m);
        break;
      case kAttached:
        m.mutable_attached();
        Send(m);
        break;
      case kReply: {
        auto* r = m.mutable_reply();
        r->set_id(in.u8());
        r->set_status(in.get<int32_t>());
        r->set_body(in.bytes(in.u8()));
        Send(m);
        break;
      }
      case kLog: {
        auto* l = m.mutable_log();
        l->set_level(static_cast<umbra::proto::Log::Level>(in.u8() % 8));
        l->set_text(in.bytes(in.u8()));
        Send(m);
        break;
      }
      case kCrash:
        m.mutable_crash()->set_signal(in.get<int32_t>());
        Send(m);
        break;
      case kPokeRegion: {
        const uint32_t off = in.get<uint32_t>();
        const uint64_t v = in.get<uint64_t>();
        if (data && data->layout().region_size >= 8) {
          std::memcpy(data->region().data() + off % (data->layout().region_size - 7), &v, sizeof v);
          data->complete_doorbell().Signal();
        }
        break;
      }
      case kComplete: {
        umbra::ipc::Descriptor d = in.get<umbra::ipc::Descriptor>();
        if (data && data->complete().TryPush(d) && data->complete().Publish()) data->complete_doorbell().Signal();
        break;
      }
      case kTakeRequest: {
        umbra::ipc::Descriptor d{};
        if (data && data->submit().TryPop(d)) {
          data->submit().Release();
          d.status = 0;
          if (data->complete().TryPush(d) && data->complete().Publish()) data->complete_doorbell().Signal();
        }
        break;
      }
      case kPause: std::this_thread::sleep_for(std::chrono::milliseconds(2)); break;
      case kOpCount: break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 64;
  std::ifstream f(argv[1], std::ios::binary);
  Input in{std::string(std::istreambuf_iterator<char>(f), {})};
  Driver d;
  if ((in.u8() & 0x80) == 0) {
    DriverToHost hello;
    hello.mutable_hello()->set_protocol_version(umbra::proto::PROTOCOL_VERSION_CURRENT);
    hello.mutable_hello()->set_driver_name("replay");
    hello.mutable_hello()->set_driver_version("1");
    d.Send(hello);
    if (!d.AwaitAttach()) return 0;
  }
  d.Play(in);
  return 0;
}
