// What connects the emulated NIC's "cable" to something: NicBackend (the NIC
// transmits into it) and FrameSink (the backend delivers received frames and
// link changes into it). Two backends exist: the in-process wire (wire.h) and
// a Linux TAP interface (tap_backend.h).
//
//   std::unique_ptr<NicBackend> backend = ...;   // a WirePort or a TapBackend
//   backend->Attach(&my_sink);                   // frames now arrive in my_sink
//   backend->Transmit(frames);                   // copies them onto the wire
//   backend->Attach(nullptr);                    // no call into my_sink after this
//
// Thread safety: Transmit may be called from one thread while frames are
// delivered from another; Attach synchronises with delivery.
#pragma once

#include <cstddef>
#include <span>

namespace umbra::hw::nic {

// One frame: destination MAC first, no FCS.
using FrameView = std::span<const std::byte>;

enum class LinkState { kDown, kUp };

// The receiving side of a backend: a NIC or a peer endpoint.
class FrameSink {
 public:
  // A batch of frames from the wire, called on the backend's thread (or the
  // transmitting peer's). The sink copies what it keeps before returning.
  virtual void DeliverFrames(std::span<const FrameView> frames) = 0;
  // The cable was plugged in or pulled out.
  virtual void LinkChanged(LinkState state) = 0;

 protected:
  ~FrameSink() = default;
};

class NicBackend {
 public:
  virtual ~NicBackend() = default;

  // Sets (or with nullptr clears) the sink that receives frames. After it
  // returns, no delivery into the previous sink is running or will start.
  virtual void Attach(FrameSink* sink) = 0;

  // Puts frames on the wire; copies them before returning. Frames the other
  // side cannot take are dropped (the backend counts them), as on a network.
  virtual void Transmit(std::span<const FrameView> frames) = 0;
};

}  // namespace umbra::hw::nic
