// ConfigLog: the configuration a shadow replays into a restarted driver.
//
// Compacted: one entry per setting key, holding the latest value, so the log
// stays bounded however long the device runs (at most `max_entries` keys and
// `max_value_bytes` per value; larger is refused with a clear error). Replay
// order is the class's, not the arrival order: each key has a rank (MAC
// before "up", sample rate before "start"), ties broken by first arrival.
//
//   ConfigLog log({.max_entries = 64});
//   log.Set("mtu", /*rank=*/2, kSetMtu, Encode(9000));
//   log.Set("mtu", 2, kSetMtu, Encode(1500));   // replaces: one entry
//   for (const auto& e : log.InReplayOrder()) host.Call(e.method, e.value, ...);
//
// Thread safety: none; the owning shadow serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace umbra::shadows {

class ConfigLog {
 public:
  struct Options {
    size_t max_entries = 256;
    size_t max_value_bytes = 16 * 1024;
  };
  struct Entry {
    std::string key;
    int rank = 0;
    uint32_t method = 0;
    std::string value;
    uint64_t arrival = 0;  // first time the key was set
  };

  explicit ConfigLog(Options options) : options_(options) {}
  ConfigLog() : ConfigLog(Options{}) {}

  Result<void> Set(const std::string& key, int rank, uint32_t method, std::string value);
  void Erase(const std::string& key);
  std::optional<std::string> Get(const std::string& key) const;
  size_t size() const { return entries_.size(); }
  std::vector<Entry> InReplayOrder() const;
  void Clear() { entries_.clear(); }

 private:
  Options options_;
  std::map<std::string, Entry> entries_;
  uint64_t arrivals_ = 0;
};

}  // namespace umbra::shadows
