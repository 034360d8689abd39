#include "shadows/net/workloads/file_transfer.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/clock.h"
#include "runtime/hw/nic/wire.h"

namespace umbra::net::workloads {

namespace {

enum class Type : uint8_t { kData = 1, kAck = 2, kFin = 3 };

// After the Ethernet header: type, pad, seq (or cumulative ack), length.
struct Header {
  uint8_t type;
  uint8_t pad[3];
  uint32_t seq;
  uint32_t length;
};
constexpr size_t kEth = 14;
constexpr size_t kHdr = kEth + sizeof(Header);
struct FinBody {
  uint64_t bytes;
  uint64_t checksum;
};

void PutMac(std::byte* p, uint64_t mac) {
  for (int i = 0; i < 6; ++i) p[i] = std::byte(mac >> (8 * i));
}
uint64_t GetMac(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 5; i >= 0; --i) v = (v << 8) | std::to_integer<uint64_t>(p[i]);
  return v;
}

// Writes a frame into `buf`; returns its length (at least 60 bytes, like Ethernet).
size_t Build(std::byte* buf, uint64_t dst, uint64_t src, Type type, uint32_t seq, std::span<const std::byte> payload) {
  PutMac(buf, dst);
  PutMac(buf + 6, src);
  buf[12] = std::byte(kFileTransferEthertype >> 8);
  buf[13] = std::byte(kFileTransferEthertype & 0xFF);
  Header h{.type = static_cast<uint8_t>(type), .pad = {}, .seq = seq, .length = static_cast<uint32_t>(payload.size())};
  std::memcpy(buf + kEth, &h, sizeof h);
  if (!payload.empty()) std::memcpy(buf + kHdr, payload.data(), payload.size());
  const size_t len = kHdr + payload.size();
  if (len < 60) std::memset(buf + len, 0, 60 - len);
  return std::max<size_t>(len, 60);
}

// Parses a frame of ours; false for anything else (other traffic, runts).
bool Parse(FrameView f, Header* h, std::span<const std::byte>* payload, uint64_t* src) {
  if (f.size() < kHdr) return false;
  if (f[12] != std::byte(kFileTransferEthertype >> 8) || f[13] != std::byte(kFileTransferEthertype & 0xFF)) {
    return false;
  }
  std::memcpy(h, f.data() + kEth, sizeof *h);
  if (h->length > f.size() - kHdr) return false;
  *payload = f.subspan(kHdr, h->length);
  *src = GetMac(f.data() + 6);
  return true;
}

}  // namespace

uint64_t Fnv1a(std::span<const std::byte> data, uint64_t hash) {
  for (std::byte b : data) {
    hash ^= std::to_integer<uint64_t>(b);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// ---------------- PeerPort ----------------

PeerPort::PeerPort(hw::nic::PeerEndpoint& peer, uint64_t mac) : peer_(peer), mac_(mac), storage_(kSlots * kSlotSize) {}

Result<size_t> PeerPort::Send(std::span<const FrameView> frames) {
  UMBRA_TRY(peer_.SendBatch(frames));
  return frames.size();
}

Result<size_t> PeerPort::Receive(std::span<FrameView> out, int64_t timeout_ns) {
  if (out.empty()) return size_t{0};
  auto first = peer_.Receive({storage_.data(), kSlotSize}, timeout_ns);
  if (!first) {
    if (first.error().code == Errc::kTimeout) return size_t{0};
    return std::unexpected(first.error());
  }
  out[0] = FrameView(storage_.data(), *first);
  size_t n = 1;
  const size_t max = std::min(out.size(), kSlots);
  peer_.Drain(max - 1, [&](FrameView f) {
    const size_t len = std::min(f.size(), kSlotSize);
    std::memcpy(storage_.data() + n * kSlotSize, f.data(), len);
    out[n] = FrameView(storage_.data() + n * kSlotSize, len);
    ++n;
  });
  return n;
}

// ---------------- sender ----------------

Result<FileTransferStats> SendFile(FramePort& port, uint64_t peer_mac, std::span<const std::byte> data,
                                   const FileTransferOptions& o) {
  FileTransferStats st;
  st.bytes = data.size();
  st.checksum = Fnv1a(data);
  const int64_t start = MonotonicNanos();
  const uint32_t chunks = static_cast<uint32_t>((data.size() + o.chunk - 1) / o.chunk);
  const uint32_t fin_seq = chunks;  // the FIN takes the sequence number after the data
  const uint32_t window = std::max<uint32_t>(1, o.window);
  std::vector<std::byte> bufs(size_t{window} * (kHdr + o.chunk + 64));
  std::vector<FrameView> batch(window);
  std::array<FrameView, 64> in;
  uint32_t base = 0, next = 0;
  int64_t last_progress = start;
  while (base <= fin_seq) {
    // Fill the window.
    size_t n = 0;
    while (next + n < base + window && next + n <= fin_seq) {
      const uint32_t seq = next + static_cast<uint32_t>(n);
      std::byte* buf = bufs.data() + n * (kHdr + o.chunk + 64);
      size_t len;
      if (seq < fin_seq) {
        const size_t off = size_t{seq} * o.chunk;
        len = Build(buf, peer_mac, port.mac(), Type::kData, seq,
                    data.subspan(off, std::min<size_t>(o.chunk, data.size() - off)));
      } else {
        const FinBody fin{.bytes = st.bytes, .checksum = st.checksum};
        len = Build(buf, peer_mac, port.mac(), Type::kFin, seq, std::as_bytes(std::span<const FinBody>(&fin, 1)));
      }
      batch[n++] = FrameView(buf, len);
    }
    if (n > 0) {
      const size_t sent = UMBRA_TRY(port.Send({batch.data(), n}));
      next += static_cast<uint32_t>(sent);
      st.frames_sent += sent;
    }
    // Collect acknowledgements.
    const size_t got = UMBRA_TRY(port.Receive(in, 1'000'000));
    for (size_t i = 0; i < got; ++i) {
      Header h;
      std::span<const std::byte> payload;
      uint64_t src;
      if (!Parse(in[i], &h, &payload, &src) || h.type != static_cast<uint8_t>(Type::kAck)) continue;
      if (h.seq > base && h.seq <= fin_seq + 1) {
        base = h.seq;
        last_progress = MonotonicNanos();
      }
    }
    if (next < base) next = base;
    const int64_t now = MonotonicNanos();
    if (now - start > o.timeout_ns) return Fail(Errc::kTimeout, "file transfer timed out");
    if (base <= fin_seq && now - last_progress > o.rto_ns) {
      next = base;  // go back N
      last_progress = now;
      ++st.retransmits;
    }
  }
  st.elapsed_ns = MonotonicNanos() - start;
  return st;
}

// ---------------- receiver ----------------

Result<FileTransferStats> ReceiveFile(FramePort& port, const FileTransferOptions& o, std::vector<std::byte>* out) {
  FileTransferStats st;
  st.checksum = Fnv1a({});
  const int64_t start = MonotonicNanos();
  std::array<FrameView, 64> in;
  std::array<std::byte, 64> ack_buf;
  uint32_t expected = 0;
  uint64_t sender = 0;
  int64_t finished_at = 0;
  for (;;) {
    const int64_t now = MonotonicNanos();
    if (finished_at != 0 && now - finished_at > o.linger_ns) break;
    if (now - start > o.timeout_ns) return Fail(Errc::kTimeout, "file transfer timed out");
    const size_t got = UMBRA_TRY(port.Receive(in, 2'000'000));
    bool answer = false;
    for (size_t i = 0; i < got; ++i) {
      Header h;
      std::span<const std::byte> payload;
      uint64_t src;
      if (!Parse(in[i], &h, &payload, &src)) continue;
      if (h.type == static_cast<uint8_t>(Type::kData) || h.type == static_cast<uint8_t>(Type::kFin)) {
        sender = src;
        answer = true;
      }
      if (h.seq != expected || finished_at != 0) continue;
      if (h.type == static_cast<uint8_t>(Type::kData)) {
        st.checksum = Fnv1a(payload, st.checksum);
        st.bytes += payload.size();
        if (out != nullptr) out->insert(out->end(), payload.begin(), payload.end());
        ++expected;
      } else if (h.type == static_cast<uint8_t>(Type::kFin)) {
        FinBody fin;
        if (payload.size() != sizeof fin) return Fail(Errc::kProtocol, "malformed FIN");
        std::memcpy(&fin, payload.data(), sizeof fin);
        if (fin.bytes != st.bytes || fin.checksum != st.checksum) {
          return Fail(Errc::kProtocol, "file checksum mismatch");
        }
        ++expected;
        finished_at = MonotonicNanos();
      }
    }
    if (answer) {
      const size_t len = Build(ack_buf.data(), sender, port.mac(), Type::kAck, expected, {});
      FrameView ack(ack_buf.data(), len);
      (void)UMBRA_TRY(port.Send({&ack, 1}));
      ++st.frames_sent;
    }
  }
  st.elapsed_ns = finished_at - start;
  return st;
}

}  // namespace umbra::net::workloads
