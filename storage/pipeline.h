#pragma once
// Reads a long query on a second thread: a reader steps the statement and copies each row's
// text columns into batches while the calling thread processes the previous batch. For full
// passes over the audit log (reports, tokens --at), where reading (SQLite, the kernel) and
// processing (parsing, indexing, rendering) each take about half the time.
//
// Thread safety: the statement (and its connection) is used only by the reader while the call
// runs. Errors: the statement's first error, after the rows before it were processed.

#include <functional>
#include <string_view>

#include "core/result.h"
#include "storage/sqlite.h"

namespace tw::storage {

// Calls `row(fields)` for every row of `stmt`, in order, on the calling thread; `fields` holds
// the first `columns` columns as text (NULL as empty), valid during the call. `row` returns
// false to stop early.
Status pipelined_rows(Stmt& stmt, int columns,
                      const std::function<bool(const std::string_view* fields)>& row);

}  // namespace tw::storage
