#include "shadows/block/workloads/sqlite_workload.h"

#include <sqlite3.h>

#include <set>
#include <vector>

namespace umbra::shadows::block {

std::string SqliteReport::ToString() const {
  return "committed=" + std::to_string(committed) + " failed=" + std::to_string(failed) +
         " integrity=" + (integrity_ok ? "ok" : "BAD") + " missing_txns=" + std::to_string(missing_txns) +
         " missing_rows=" + std::to_string(missing_rows) + " wrong_rows=" + std::to_string(wrong_rows) +
         (first_error.empty() ? "" : " first: " + first_error);
}

SqliteWorkload::SqliteWorkload(SqliteWorkloadOptions options) : options_(std::move(options)), rng_(options_.seed) {}

SqliteWorkload::~SqliteWorkload() { Close(); }

void SqliteWorkload::Note(const std::string& what) {
  if (report_.first_error.empty()) report_.first_error = what;
}

Result<void> SqliteWorkload::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return {};
  std::string message = err != nullptr ? err : sqlite3_errmsg(db_);
  sqlite3_free(err);
  return Fail(Errc::kIo, "sqlite: " + message + " (in " + sql.substr(0, 40) + ")");
}

Result<void> SqliteWorkload::Open() {
  Close();
  if (sqlite3_open_v2(options_.db_name.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      options_.vfs.c_str()) != SQLITE_OK) {
    std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    Close();
    return Fail(Errc::kIo, "sqlite3_open_v2 on vfs " + options_.vfs + ": " + why);
  }
  UMBRA_TRY(Exec("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;"));
  UMBRA_TRY(Exec("CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, val INTEGER NOT NULL, pad TEXT);"
                 "CREATE TABLE IF NOT EXISTS txlog(txn INTEGER PRIMARY KEY, checksum INTEGER NOT NULL);"));
  return {};
}

void SqliteWorkload::Close() {
  if (db_ == nullptr) return;
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

bool SqliteWorkload::Transaction() {
  const uint64_t txn = next_txn_++;
  std::map<int64_t, int64_t> changes;
  uint64_t sum = checksum_;
  std::string sql = "BEGIN IMMEDIATE;";
  auto value = [&] { return static_cast<int64_t>(rng_() >> 2); };
  for (uint32_t i = 0; i < options_.inserts_per_txn; ++i) {
    const int64_t id = next_id_++;
    const int64_t v = value();
    changes[id] = v;
    sum += static_cast<uint64_t>(id) * static_cast<uint64_t>(v);
    sql += "INSERT INTO kv VALUES(" + std::to_string(id) + "," + std::to_string(v) + ",'" +
           std::string(100 + rng_() % 300, static_cast<char>('a' + rng_() % 26)) + "');";
  }
  for (uint32_t i = 0; i < options_.updates_per_txn && !rows_.empty(); ++i) {
    auto it = rows_.lower_bound(static_cast<int64_t>(rng_() % static_cast<uint64_t>(next_id_)));
    if (it == rows_.end() || changes.contains(it->first)) continue;
    const int64_t v = value();
    sum += static_cast<uint64_t>(it->first) * (static_cast<uint64_t>(v) - static_cast<uint64_t>(it->second));
    changes[it->first] = v;
    sql += "UPDATE kv SET val=" + std::to_string(v) + " WHERE id=" + std::to_string(it->first) + ";";
  }
  sql += "INSERT INTO txlog VALUES(" + std::to_string(txn) + "," + std::to_string(static_cast<int64_t>(sum)) + ");";
  if (auto r = Exec(sql); !r) {
    Note("txn " + std::to_string(txn) + ": " + r.error().message);
    (void)Exec("ROLLBACK;");
    return false;
  }
  if (auto r = Exec("COMMIT;"); !r) {
    Note("commit " + std::to_string(txn) + ": " + r.error().message);
    (void)Exec("ROLLBACK;");
    return false;
  }
  for (const auto& [id, v] : changes) rows_[id] = v;
  checksum_ = sum;
  committed_txns_.push_back(txn);
  return true;
}

SqliteReport SqliteWorkload::Run(uint32_t n) {
  for (uint32_t i = 0; i < n; ++i) {
    if (db_ == nullptr) {
      ++report_.failed;
      Note("database not open");
      continue;
    }
    if (Transaction()) {
      ++report_.committed;
    } else {
      ++report_.failed;
    }
  }
  return report_;
}

SqliteReport SqliteWorkload::Check() {
  report_.integrity_ok = false;
  report_.missing_txns = report_.missing_rows = report_.wrong_rows = 0;
  if (db_ == nullptr) {
    Note("check: database not open");
    return report_;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA integrity_check;", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    report_.integrity_ok = text != nullptr && std::string(text) == "ok";
    if (!report_.integrity_ok) Note(std::string("integrity_check: ") + (text != nullptr ? text : "?"));
  } else {
    Note(std::string("integrity_check: ") + sqlite3_errmsg(db_));
  }
  sqlite3_finalize(st);
  std::set<int64_t> logged;
  if (sqlite3_prepare_v2(db_, "SELECT txn FROM txlog;", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) logged.insert(sqlite3_column_int64(st, 0));
  }
  sqlite3_finalize(st);
  for (uint64_t t : committed_txns_) {
    if (!logged.contains(static_cast<int64_t>(t))) ++report_.missing_txns;
  }
  std::map<int64_t, int64_t> table;
  if (sqlite3_prepare_v2(db_, "SELECT id, val FROM kv;", -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) table[sqlite3_column_int64(st, 0)] = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  for (const auto& [id, v] : rows_) {
    auto it = table.find(id);
    if (it == table.end()) {
      ++report_.missing_rows;
    } else if (it->second != v) {
      ++report_.wrong_rows;
    }
  }
  if (report_.missing_txns + report_.missing_rows + report_.wrong_rows > 0) {
    Note("model mismatch after " + std::to_string(report_.committed) + " commits");
  }
  return report_;
}

}  // namespace umbra::shadows::block
