#include "shadows/config_log.h"

#include <algorithm>

namespace umbra::shadows {

Result<void> ConfigLog::Set(const std::string& key, int rank, uint32_t method, std::string value) {
  if (value.size() > options_.max_value_bytes) {
    return Fail(Errc::kInvalidArgument, "setting '" + key + "' of " + std::to_string(value.size()) +
                                            " bytes exceeds the configuration log's limit of " +
                                            std::to_string(options_.max_value_bytes));
  }
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second.rank = rank;
    it->second.method = method;
    it->second.value = std::move(value);
    return {};
  }
  if (entries_.size() >= options_.max_entries) {
    return Fail(Errc::kUnavailable, "configuration log full (" + std::to_string(options_.max_entries) + " settings)");
  }
  entries_.emplace(key, Entry{key, rank, method, std::move(value), ++arrivals_});
  return {};
}

void ConfigLog::Erase(const std::string& key) { entries_.erase(key); }

std::optional<std::string> ConfigLog::Get(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second.value;
}

std::vector<ConfigLog::Entry> ConfigLog::InReplayOrder() const {
  std::vector<Entry> out;
  out.reserve(entries_.size());
  for (const auto& [k, e] : entries_) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const Entry& a, const Entry& b) { return a.rank != b.rank ? a.rank < b.rank : a.arrival < b.arrival; });
  return out;
}

}  // namespace umbra::shadows
