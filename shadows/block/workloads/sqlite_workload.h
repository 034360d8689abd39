// SqliteWorkload: a transactional SQLite client on a block::Disk (via
// BlockVfs), checked against a model kept outside the database.
//
// Each transaction inserts rows, updates existing ones and logs itself with
// the running checksum of the whole table. The model (rows and checksum) is
// updated only when COMMIT returned SQLITE_OK, so afterwards:
// `PRAGMA integrity_check` must say "ok", every committed transaction must be
// in the log, and every row must hold the value its last committed
// transaction gave it.
//
//   SqliteWorkload w({.vfs = vfs->name()});
//   UMBRA_TRY(w.Open());
//   SqliteReport r = w.Run(200);       // 200 transactions
//   w.Close();  UMBRA_TRY(w.Open());   // from the disk again
//   r = w.Check();
//   EXPECT_TRUE(r.clean()) << r.ToString();
//
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"

struct sqlite3;

namespace umbra::shadows::block {

struct SqliteWorkloadOptions {
  std::string vfs;
  std::string db_name = "umbra.db";
  uint32_t inserts_per_txn = 8;
  uint32_t updates_per_txn = 4;
  uint64_t seed = 1;
};

struct SqliteReport {
  uint64_t committed = 0;     // transactions whose COMMIT succeeded
  uint64_t failed = 0;        // transactions SQLite reported an error for
  bool integrity_ok = false;  // the last Check's PRAGMA integrity_check
  uint64_t missing_txns = 0;  // committed, not in the log
  uint64_t missing_rows = 0;  // committed, not in the table
  uint64_t wrong_rows = 0;    // a value other than the last committed one
  std::string first_error;
  bool clean() const {
    return failed == 0 && integrity_ok && missing_txns == 0 && missing_rows == 0 && wrong_rows == 0;
  }
  std::string ToString() const;
};

class SqliteWorkload {
 public:
  explicit SqliteWorkload(SqliteWorkloadOptions options);
  ~SqliteWorkload();
  SqliteWorkload(const SqliteWorkload&) = delete;
  SqliteWorkload& operator=(const SqliteWorkload&) = delete;

  // Opens (creating if needed) the database and its tables.
  Result<void> Open();
  void Close();
  // `n` transactions; keeps going after failures (each is counted).
  SqliteReport Run(uint32_t n);
  // Integrity check plus the model comparison.
  SqliteReport Check();
  const SqliteReport& report() const { return report_; }

 private:
  Result<void> Exec(const std::string& sql);
  bool Transaction();
  void Note(const std::string& what);

  SqliteWorkloadOptions options_;
  sqlite3* db_ = nullptr;  // owned; closed by Close
  std::mt19937_64 rng_;
  std::map<int64_t, int64_t> rows_;  // committed id → value
  uint64_t next_txn_ = 1;
  int64_t next_id_ = 1;
  uint64_t checksum_ = 0;
  std::vector<uint64_t> committed_txns_;
  SqliteReport report_;
};

}  // namespace umbra::shadows::block
