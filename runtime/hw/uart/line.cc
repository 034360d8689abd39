#include "runtime/hw/uart/line.h"

#include <algorithm>
#include <chrono>

namespace umbra::hw::uart {

namespace {

// What a character looks like to a receiver: only the data bits survive.
std::byte Mask(std::byte b, const LineConfig& c) {
  return b & std::byte(static_cast<uint8_t>((1u << c.data_bits) - 1));
}

}  // namespace

size_t Line::Send(std::span<const std::byte> bytes, int64_t timeout_ns) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  size_t sent = 0;
  while (sent < bytes.size()) {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_until(lock, deadline, [&] { return to_device_.size() < capacity_; })) break;
      const size_t n = std::min(bytes.size() - sent, capacity_ - to_device_.size());
      to_device_.insert(to_device_.end(), bytes.begin() + sent, bytes.begin() + sent + n);
      sent += n;
    }
    if (wake_) wake_();
  }
  return sent;
}

size_t Line::Receive(std::span<std::byte> out, int64_t timeout_ns) {
  size_t n = 0;
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return !from_device_.empty(); })) {
      return 0;
    }
    n = std::min(out.size(), from_device_.size());
    std::copy_n(from_device_.begin(), n, out.begin());
    from_device_.erase(from_device_.begin(), from_device_.begin() + n);
  }
  if (wake_) wake_();  // room again: the UART may transmit
  return n;
}

void Line::set_far_end(const LineConfig& config) {
  std::lock_guard lock(mu_);
  far_end_ = config;
}

LineConfig Line::far_end() const {
  std::lock_guard lock(mu_);
  return far_end_;
}

uint64_t Line::framing_errors() const {
  std::lock_guard lock(mu_);
  return framing_errors_;
}

uint64_t Line::received_total() const {
  std::lock_guard lock(mu_);
  return received_total_;
}

size_t Line::pending_to_device() const {
  std::lock_guard lock(mu_);
  return to_device_.size();
}

size_t Line::DeviceSpace() const {
  std::lock_guard lock(mu_);
  return capacity_ - std::min(capacity_, from_device_.size());
}

void Line::DeviceTransmit(std::byte b, const LineConfig& uart_config) {
  {
    std::lock_guard lock(mu_);
    if (!(uart_config == far_end_)) {
      ++framing_errors_;
      return;
    }
    from_device_.push_back(Mask(b, uart_config));
    ++received_total_;
  }
  cv_.notify_all();
}

size_t Line::DeviceTake(std::span<std::byte> out, const LineConfig& uart_config, uint64_t* framing_errors) {
  size_t n = 0;
  {
    std::lock_guard lock(mu_);
    const bool agree = uart_config == far_end_;
    size_t taken = 0;
    while (taken < to_device_.size() && n < out.size()) {
      const std::byte b = to_device_[taken++];
      if (!agree) {
        ++*framing_errors;
        continue;
      }
      out[n++] = Mask(b, uart_config);
    }
    to_device_.erase(to_device_.begin(), to_device_.begin() + taken);
    if (taken == 0) return 0;
  }
  cv_.notify_all();  // a sender may be waiting for room
  return n;
}

void Line::set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

}  // namespace umbra::hw::uart
