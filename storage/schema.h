#pragma once
// Numbered schema migrations (PRAGMA user_version), applied one version at a time, each in its
// own transaction. The views of SPEC §3 are the stable interface; tables behind them are free.
//
// Thread safety: call with exclusive use of the Db. Errors: kDatabase; a database newer than
// this build is refused rather than touched.

#include <cstdint>

#include "core/result.h"
#include "storage/sqlite.h"

namespace tw::storage {

inline constexpr int kSchemaVersion = 6;
// The oldest version read-only commands accept as it is (later versions only added an index and
// the poll_checkpoints table, which only writers use).
inline constexpr int kMinReadableSchemaVersion = 2;

// PRAGMA application_id of a tokenwarden database ("TWRD"), set by migrate().
inline constexpr std::int32_t kApplicationId = 0x54575244;

Result<int> schema_version(Db& db);
// kDatabase naming the file if it is another application's database: an application_id
// that is not ours, or tables without tokenwarden's schema. An empty file is ours to create.
Status check_ownership(Db& db);
// PRAGMA integrity_check: an empty string if the file is sound, else SQLite's first complaint.
Result<std::string> integrity_problem(Db& db);
// Brings a read-write database to kSchemaVersion.
Status migrate(Db& db);

}  // namespace tw::storage
