// Control-path bodies of plain structs: a class protocol's Call/Reply body is
// the bytes of one trivially copyable struct. Shared by every class protocol
// (net, sound, ...) and by drivers; standard headers only.
//
//   std::string body = Encode(NetMtuBody{.mtu = 9000});
//   std::optional<NetMtuBody> mtu = Decode<NetMtuBody>(body);  // nullopt: malformed
//
// Thread safety: pure functions.
#pragma once

#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace umbra::ipc {

template <class T>
std::string Encode(const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  return std::string(reinterpret_cast<const char*>(&value), sizeof value);
}

// nullopt when `bytes` is not exactly one T (a malformed body).
template <class T>
std::optional<T> Decode(std::string_view bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (bytes.size() != sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data(), sizeof value);
  return value;
}

}  // namespace umbra::ipc
