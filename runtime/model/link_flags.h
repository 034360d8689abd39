// LinkFlags: the flags of a device link and the rules that combine them.
//
//   auto flags = LinkFlags(LinkFlag::kManaged) | LinkFlag::kOptional;
//   if (auto ok = ValidateLinkFlags(flags); !ok) { /* ok.error().message */ }
//   auto parsed = LinkFlags::Parse("managed,auto-probe-consumer");
//
// Modelled on the kernel's DL_FLAG_*; the rules (ValidateLinkFlags) are listed
// in docs/device-model.md with the reason for each.
//
// Thread safety: a value type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace umbra::model {

enum class LinkFlag : uint32_t {
  kStateless = 1u << 0,           // the model does not track the link's state
  kManaged = 1u << 1,             // the model tracks it (the default)
  kAutoRemoveConsumer = 1u << 2,  // deleted when the consumer unbinds
  kAutoRemoveSupplier = 1u << 3,  // deleted when the supplier unbinds
  kAutoProbeConsumer = 1u << 4,   // probe the consumer when the supplier binds
  kOptional = 1u << 5,            // weak: the consumer runs degraded without it
};

class LinkFlags {
 public:
  static constexpr uint32_t kAllBits = (1u << 6) - 1;

  constexpr LinkFlags() = default;
  constexpr LinkFlags(LinkFlag flag) : bits_(static_cast<uint32_t>(flag)) {}  // NOLINT: implicit on purpose
  static constexpr LinkFlags FromBits(uint32_t bits) {
    LinkFlags f;
    f.bits_ = bits;
    return f;
  }
  // "managed,optional" or "stateless"; names as in ToString. Unknown names fail.
  static Result<LinkFlags> Parse(std::string_view text);
  // One flag name ("auto-remove-consumer"); kNotFound lists the known names.
  static Result<LinkFlag> ParseOne(std::string_view name);

  constexpr uint32_t bits() const { return bits_; }
  constexpr bool has(LinkFlag flag) const { return (bits_ & static_cast<uint32_t>(flag)) != 0; }
  // A link is managed unless it is stateless.
  constexpr bool managed() const { return !has(LinkFlag::kStateless); }
  constexpr bool optional() const { return has(LinkFlag::kOptional); }

  constexpr LinkFlags operator|(LinkFlags other) const { return FromBits(bits_ | other.bits_); }
  constexpr bool operator==(const LinkFlags&) const = default;

  // "managed,optional": always names managed or stateless first.
  std::string ToString() const;

 private:
  uint32_t bits_ = 0;
};

constexpr LinkFlags operator|(LinkFlag a, LinkFlag b) { return LinkFlags(a) | LinkFlags(b); }

const char* LinkFlagName(LinkFlag flag);

// Refuses invalid combinations with a message saying why:
//   - unknown bits;
//   - stateless together with managed;
//   - stateless with auto-remove-*, auto-probe-consumer or optional (those
//     act on state the model does not track for a stateless link);
//   - auto-remove-consumer together with auto-remove-supplier;
//   - auto-probe-consumer with either auto-remove flag (auto-probe keeps the
//     link to probe the consumer when the supplier binds again).
Result<void> ValidateLinkFlags(LinkFlags flags);

}  // namespace umbra::model
