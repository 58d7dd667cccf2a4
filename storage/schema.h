#pragma once
// Numbered schema migrations (PRAGMA user_version), applied one version at a time, each in its
// own transaction. The views of SPEC §3 are the stable interface; tables behind them are free.
//
// Thread safety: call with exclusive use of the Db. Errors: kDatabase; a database newer than
// this build is refused rather than touched.

#include "core/result.h"
#include "storage/sqlite.h"

namespace tw::storage {

inline constexpr int kSchemaVersion = 3;
// The oldest version read-only commands accept as it is (later versions only added indexes).
inline constexpr int kMinReadableSchemaVersion = 2;

Result<int> schema_version(Db& db);
// Brings a read-write database to kSchemaVersion.
Status migrate(Db& db);

}  // namespace tw::storage
