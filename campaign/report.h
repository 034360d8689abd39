// Campaign reports: per-run JSON lines, the summary table, and merging shards.
//
//   std::string line = RecordToJson(record);          // one line of --jsonl
//   RunRecord back = UMBRA_TRY(RecordFromJson(line));
//   std::cout << FormatSummary(records);
//
//   WORKLOAD      segfault  sigkill
//   echo-stream   20T       18T 2M
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "campaign/run.h"
#include "base/result.h"

namespace umbra::faultinject::campaign {

// One JSON object on one line (proto field names; 64-bit integers as strings).
std::string RecordToJson(const RunRecord& record);
Result<RunRecord> RecordFromJson(std::string_view line);

// Reads JSON lines (blank lines skipped); errors name the file and line.
Result<std::vector<RunRecord>> ReadJsonLines(const std::string& path);

// Sorts by index and drops duplicates of an index (the first one stays).
std::vector<RunRecord> MergeRecords(std::vector<RunRecord> records);

// Rows: workloads; columns: fault types present (catalogue order); cells the
// counts of each outcome, "20T" or "18T 2M". A last line totals each outcome.
std::string FormatSummary(const std::vector<RunRecord>& records);

// The whole report as one JSON object: totals, cells, and every run.
std::string ReportJson(const std::vector<RunRecord>& records, uint64_t campaign_seed, std::string_view mode);

}  // namespace umbra::faultinject::campaign
