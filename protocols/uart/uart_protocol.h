// The uart class protocol: what travels between the uart shadow and any uart
// driver over the data and control paths. Standard library only, so a
// driver, the shadow and tests share it without pulling either side in.
//
// Data path (runtime::Request / ipc::Descriptor):
//   kWrite  offset/length: bytes to transmit. Completes once every byte is on
//           the line (status 0, length = bytes sent), never earlier: a write
//           that completed survives a driver crash.
//   kRead   offset/length: an empty buffer of `length` bytes. Completes with
//           the bytes received (length >= 1) and arg = the stream position
//           of the first of them (the device's rx_origin at enable plus the
//           bytes consumed since), or with length 0 after the driver's read
//           timeout so no read outlives the request deadline. Reads complete
//           in order and follow each other: each starts where the one
//           before it ended. After a driver died, the device delivers again
//           every byte after the reader's acknowledged position, with its
//           position: a reader drops positions it already has.
// Control path (DriverHost::Call):
//   kSetLine    body EncodeLine(settings); refused (kInvalidArgument) when the
//               baud rate is not reachable or a field is out of range.
//   kGetLine    reply EncodeLine(the settings in effect, read from the device)
//   kOpen       enable the receiver
//   kGetTxTotal reply the decimal count of bytes the device ever put on the
//               line (survives resets: the shadow's resubmission uses it)
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace umbra::drivers::uart {

enum Op : uint16_t { kWrite = 1, kRead = 2 };
enum Method : uint32_t { kSetLine = 1, kGetLine = 2, kOpen = 3, kGetTxTotal = 4 };

enum class Parity : uint8_t { kNone, kOdd, kEven };

struct LineSettings {
  uint32_t baud = 9600;
  Parity parity = Parity::kNone;
  uint8_t data_bits = 8;  // 5..8
  uint8_t stop_bits = 1;  // 1..2
  bool operator==(const LineSettings&) const = default;
};

// The baud rates every uart driver of the class must support; the shadow
// refuses others before logging them, so a replay can never be refused.
inline constexpr bool StandardBaud(uint32_t baud) {
  for (uint32_t b : {300u, 600u, 1200u, 2400u, 4800u, 9600u, 19200u, 38400u, 57600u, 115200u}) {
    if (b == baud) return true;
  }
  return false;
}

// "115200,8,E,1" (baud, data bits, N/O/E, stop bits).
inline std::string EncodeLine(const LineSettings& s) {
  const char p = s.parity == Parity::kNone ? 'N' : s.parity == Parity::kOdd ? 'O' : 'E';
  return std::to_string(s.baud) + "," + std::to_string(s.data_bits) + "," + p + "," + std::to_string(s.stop_bits);
}

// The inverse of EncodeLine; nullopt on anything malformed or out of range.
inline std::optional<LineSettings> DecodeLine(std::string_view text) {
  auto field = [&](std::string_view& rest) {
    const size_t comma = rest.find(',');
    std::string_view f = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    return f;
  };
  auto number = [](std::string_view f, uint32_t& out) {
    auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), out);
    return ec == std::errc() && end == f.data() + f.size() && !f.empty();
  };
  std::string_view rest = text;
  uint32_t baud = 0, data = 0, stop = 0;
  if (!number(field(rest), baud) || !number(field(rest), data)) return std::nullopt;
  const std::string_view p = field(rest);
  if (!number(field(rest), stop) || !rest.empty() || p.size() != 1) return std::nullopt;
  LineSettings s{.baud = baud, .data_bits = static_cast<uint8_t>(data), .stop_bits = static_cast<uint8_t>(stop)};
  switch (p[0]) {
    case 'N': s.parity = Parity::kNone; break;
    case 'O': s.parity = Parity::kOdd; break;
    case 'E': s.parity = Parity::kEven; break;
    default: return std::nullopt;
  }
  if (baud == 0 || data < 5 || data > 8 || stop < 1 || stop > 2) return std::nullopt;
  return s;
}

}  // namespace umbra::drivers::uart
