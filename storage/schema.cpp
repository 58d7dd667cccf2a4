#include "storage/schema.h"

#include <cstdio>
#include <string>
#include <vector>

#include "core/strings.h"

namespace tw::storage {
namespace {

// Version 1: the audit log with its hash chain, the token inventory and the poll record.
constexpr const char* kV1 = R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_events(
  seq         INTEGER PRIMARY KEY,
  recorded_at TEXT NOT NULL,
  cluster     TEXT,
  token_id    TEXT,
  event       TEXT NOT NULL,
  detail      TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL
);
CREATE INDEX audit_events_by_token ON audit_events(token_id);
CREATE INDEX audit_events_by_cluster ON audit_events(cluster, recorded_at);
CREATE INDEX audit_events_by_time ON audit_events(recorded_at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The last appended row, written in the same transaction: a truncated log is detectable.
CREATE TABLE chain_head(
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  seq  INTEGER NOT NULL,
  hash TEXT NOT NULL
);

CREATE TABLE tokens(
  cluster     TEXT NOT NULL,
  token_id    TEXT NOT NULL,
  description TEXT NOT NULL,
  permissions TEXT NOT NULL,
  created_at  TEXT,
  expires_at  TEXT,
  revoked_at  TEXT,
  status      TEXT NOT NULL CHECK (status IN ('active', 'expired', 'revoked', 'removed')),
  first_seen  TEXT NOT NULL,
  last_seen   TEXT NOT NULL,
  PRIMARY KEY (cluster, token_id)
) WITHOUT ROWID;

CREATE TABLE poll_runs(
  id              INTEGER PRIMARY KEY,
  cluster         TEXT NOT NULL,
  started_at      TEXT NOT NULL,
  finished_at     TEXT NOT NULL,
  outcome         TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'suspect')),
  token_count     INTEGER,
  error           TEXT,
  vanished_digest TEXT
);
CREATE INDEX poll_runs_by_cluster ON poll_runs(cluster, outcome, id);

CREATE VIEW audit_log AS
  SELECT seq, recorded_at, cluster, token_id, event, detail, prev_hash, hash FROM audit_events;

-- last_seen of a token still listed is the end of the cluster's last successful poll, so an
-- unchanged poll does not rewrite every token row.
CREATE VIEW token_inventory AS
  SELECT t.cluster, t.token_id, t.description, t.permissions, t.created_at, t.expires_at,
         t.revoked_at, t.status, t.first_seen,
         CASE WHEN t.status = 'removed' THEN t.last_seen
              ELSE COALESCE((SELECT p.finished_at FROM poll_runs p
                             WHERE p.cluster = t.cluster AND p.outcome = 'ok'
                             ORDER BY p.id DESC LIMIT 1), t.last_seen)
         END AS last_seen
  FROM tokens t;

CREATE VIEW polls AS
  SELECT id, cluster, started_at, finished_at, outcome, token_count, error FROM poll_runs;
)sql";

// Version 2: policy violations, enforcement actions, per-cluster halts, exemption use.
constexpr const char* kV2 = R"sql(
CREATE TABLE violation_records(
  id          INTEGER PRIMARY KEY,
  cluster     TEXT NOT NULL,
  token_id    TEXT NOT NULL,
  policy      TEXT NOT NULL,
  severity    TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
  state       TEXT NOT NULL CHECK (state IN ('open', 'awaiting_approval', 'enforcing', 'enforced',
                                             'failed', 'halted', 'skipped', 'resolved')),
  action      TEXT NOT NULL CHECK (action IN ('alert', 'restrict', 'revoke')),
  opened_at   TEXT NOT NULL,
  due_at      TEXT,
  resolved_at TEXT,
  resolution  TEXT CHECK (resolution IN ('compliant', 'revoked', 'restricted', 'exempted',
                                         'removed', 'policy_removed')),
  detail      TEXT NOT NULL,
  released    INTEGER NOT NULL DEFAULT 0
);
-- At most one unresolved violation per token and policy.
CREATE UNIQUE INDEX violation_records_open ON violation_records(cluster, token_id, policy)
  WHERE state != 'resolved';
CREATE INDEX violation_records_by_state ON violation_records(cluster, state);

CREATE TABLE action_records(
  id                 INTEGER PRIMARY KEY,
  violation_id       INTEGER NOT NULL REFERENCES violation_records(id),
  cluster            TEXT NOT NULL,
  token_id           TEXT NOT NULL,
  policy             TEXT NOT NULL,
  action             TEXT NOT NULL CHECK (action IN ('restrict', 'revoke')),
  state              TEXT NOT NULL CHECK (state IN ('planned', 'awaiting_approval', 'succeeded',
                                                    'failed', 'skipped')),
  planned_at         TEXT NOT NULL,
  completed_at       TEXT,
  attempts           INTEGER NOT NULL DEFAULT 0,
  error              TEXT,
  target_permissions TEXT,
  next_attempt_at    TEXT,
  attempt_started_at TEXT,
  attempt_pid        INTEGER,
  approved_by        TEXT,
  approved_at        TEXT
);
CREATE INDEX action_records_by_state ON action_records(cluster, state);
CREATE INDEX action_records_by_violation ON action_records(violation_id);

CREATE TABLE enforcement_state(
  cluster   TEXT PRIMARY KEY,
  halted    INTEGER NOT NULL,
  halted_at TEXT,
  detail    TEXT
) WITHOUT ROWID;

CREATE TABLE exemption_uses(
  exemption        TEXT NOT NULL,
  cluster          TEXT NOT NULL,
  token_id         TEXT NOT NULL,
  first_applied_at TEXT NOT NULL,
  PRIMARY KEY (exemption, cluster, token_id)
) WITHOUT ROWID;

CREATE VIEW violations AS
  SELECT id, cluster, token_id, policy, severity, state, action, opened_at, resolved_at, resolution,
         detail
  FROM violation_records;

CREATE VIEW enforcement_actions AS
  SELECT id, violation_id, cluster, token_id, action, state, planned_at, completed_at, attempts, error
  FROM action_records;
)sql";

// Version 3: per-event lookups over a period (reports: change counts, actions, halts,
// exemptions) without reading every row of the audit log. Only an index: version 2 databases
// stay readable as they are.
constexpr const char* kV3 = R"sql(
CREATE INDEX audit_events_by_event ON audit_events(event, recorded_at);
)sql";

// Version 4: what each cluster's last successful poll established, written in that poll's
// transaction, so that a new process can tell that an identical list changes nothing without
// reading the whole inventory back (storage/recorder.h). Not part of the audit log or its chain:
// a checkpoint that does not match the log (poll id, last seq) is ignored.
constexpr const char* kV4 = R"sql(
CREATE TABLE poll_checkpoints(
  cluster     TEXT PRIMARY KEY,
  poll_id     INTEGER NOT NULL,  -- the successful poll (poll_runs.id) it describes
  list_digest TEXT NOT NULL,     -- SHA-256 of that poll's token list body ('' if unknown)
  token_count INTEGER NOT NULL,
  audit_seq   INTEGER NOT NULL,  -- the audit log's last seq when that poll committed
  due_at      INTEGER,           -- ms since the epoch: from then the clock alone may change an
                                 -- outcome (an expiry, a policy verdict, an action); NULL: never
  evaluation  TEXT NOT NULL      -- identity of the policy evaluation it ran ('' if none)
) WITHOUT ROWID;
)sql";

// Version 5: where each export sink ([[audit.export]]) has delivered the audit log to. Not part
// of the chain: a cursor only says what was sent, and a lost cursor means events are sent again
// (at least once), never skipped.
constexpr const char* kV5 = R"sql(
CREATE TABLE export_cursors(
  name          TEXT PRIMARY KEY,  -- the sink's name in the configuration
  target        TEXT NOT NULL,     -- type and address or path, as configured (no secrets)
  delivered_seq INTEGER NOT NULL,  -- the last audit seq the destination settled: a restart
                                 -- resumes after it (at least once)
  delivered_at  INTEGER,           -- ms since the epoch: when delivered_seq last advanced
  sent_seq      INTEGER NOT NULL DEFAULT 0,  -- the last seq the sink accepted (>= delivered_seq;
                                 -- a syslog sink keeps what its collector may not have read yet)
  sent_at       INTEGER            -- ms since the epoch: when sent_seq last advanced
) WITHOUT ROWID;
)sql";

// Version 6: who owns each token, as the [[owners]] rules resolved it at the token's last change
// (issue 14), and the expiry notices already sent. Not part of the chain: an owner change of a
// known token is also an `owner_changed` event, and a notice a `notice_sent` event; these tables
// are what the daemon consults so that neither is repeated. token_inventory gains the owner
// columns (NULL for a token no rule matched, or not yet resolved).
constexpr const char* kV6 = R"sql(
CREATE TABLE token_owners(     -- a row per token a rule matched; none for an orphaned token
  cluster     TEXT NOT NULL,
  token_id    TEXT NOT NULL,
  owner       TEXT,             -- NULL: the rule assigns no owner (a team only)
  team        TEXT,
  contact     TEXT,
  owner_rule  TEXT NOT NULL,    -- the [[owners]] rule that matched
  resolved_at TEXT NOT NULL,    -- when this resolution was recorded
  PRIMARY KEY (cluster, token_id)
) WITHOUT ROWID;

CREATE TABLE expiry_notices(
  cluster    TEXT NOT NULL,
  token_id   TEXT NOT NULL,
  policy     TEXT NOT NULL,
  expires_at TEXT NOT NULL,     -- the expiry the notice was about: a new expiry starts afresh
  threshold  TEXT NOT NULL,     -- one of the policy's notify_before values, e.g. "7d"
  sent_at    TEXT NOT NULL,
  seq        INTEGER NOT NULL,  -- the notice_sent event
  PRIMARY KEY (cluster, token_id, policy, expires_at, threshold)
) WITHOUT ROWID;

DROP VIEW token_inventory;
CREATE VIEW token_inventory AS
  SELECT t.cluster, t.token_id, t.description, t.permissions, t.created_at, t.expires_at,
         t.revoked_at, t.status, t.first_seen,
         CASE WHEN t.status = 'removed' THEN t.last_seen
              ELSE COALESCE((SELECT p.finished_at FROM poll_runs p
                             WHERE p.cluster = t.cluster AND p.outcome = 'ok'
                             ORDER BY p.id DESC LIMIT 1), t.last_seen)
         END AS last_seen,
         o.owner, o.team, o.owner_rule
  FROM tokens t LEFT JOIN token_owners o ON o.cluster = t.cluster AND o.token_id = t.token_id;
)sql";

struct Migration {
  int version;
  const char* sql;
};
constexpr Migration kMigrations[] = {{1, kV1}, {2, kV2}, {3, kV3}, {4, kV4}, {5, kV5}, {6, kV6}};

}  // namespace

Result<int> schema_version(Db& db) {
  auto stmt = db.prepare("PRAGMA user_version");
  if (!stmt.ok()) return stmt.take_error();
  auto row = stmt->step();
  if (!row.ok()) return row.take_error();
  return static_cast<int>(stmt->int64(0));
}

Status check_ownership(Db& db) {
  auto app = db.prepare("PRAGMA application_id");
  if (!app.ok()) return app.take_error();
  auto row = app->step();
  if (!row.ok()) return row.take_error();
  const std::int64_t application_id = *row ? app->int64(0) : 0;
  const std::string file = "database \"" + printable(db.path(), 200) + "\"";
  if (application_id != 0 && application_id != kApplicationId) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%08llx",
                  static_cast<unsigned long long>(application_id) & 0xffffffffULL);
    return make_error(ErrorCode::kDatabase,
                      file + " belongs to another application (SQLite application_id 0x" + hex +
                          "); tokenwarden will not use it");
  }
  auto tables = db.prepare(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE "
      "'sqlite\\_%' "
      "ESCAPE '\\' ORDER BY name");
  if (!tables.ok()) return tables.take_error();
  std::vector<std::string> names;
  bool has_log = false, has_meta = false;
  while (true) {
    auto r = tables->step();
    if (!r.ok()) return r.take_error();
    if (!*r) break;
    std::string name = tables->text(0);
    has_log = has_log || name == "audit_events";
    has_meta = has_meta || name == "meta";
    names.push_back(std::move(name));
  }
  if (names.empty() || (has_log && has_meta)) return ok_status();
  std::string listed;
  for (std::size_t i = 0; i < names.size() && i < 3; ++i) {
    listed += (i > 0 ? ", " : "") + printable(names[i], 40);
  }
  if (names.size() > 3) listed += ", …";
  return make_error(
      ErrorCode::kDatabase,
      file + " is not a tokenwarden audit database (it holds other tables: " + listed +
          "); tokenwarden will not use it: point daemon.database or --db at a new file "
          "or at a tokenwarden database");
}

Result<std::string> integrity_problem(Db& db) {
  auto st = db.prepare("PRAGMA integrity_check(1)");
  if (!st.ok()) return st.take_error();
  auto row = st->step();
  if (!row.ok()) return row.take_error();
  std::string first = *row ? st->text(0) : std::string("no answer");
  return first == "ok" ? std::string() : first;
}

Status migrate(Db& db) {
  auto current = schema_version(db);
  if (!current.ok()) return current.take_error();
  if (*current > kSchemaVersion) {
    return make_error(ErrorCode::kDatabase,
                      "database \"" + db.path() + "\" has schema version " +
                          std::to_string(*current) + ", newer than this tokenwarden understands (" +
                          std::to_string(kSchemaVersion) + "); upgrade tokenwarden");
  }
  for (const auto& m : kMigrations) {
    if (m.version <= *current) continue;
    auto txn = Transaction::begin(db);
    if (!txn.ok()) return txn.take_error();
    // Re-check under the write lock: another process may have migrated meanwhile.
    auto again = schema_version(db);
    if (!again.ok()) return again.take_error();
    if (*again >= m.version) continue;
    auto s = db.exec(m.sql);
    if (!s.ok()) {
      return make_error(ErrorCode::kDatabase, "schema migration to version " +
                                                  std::to_string(m.version) +
                                                  " failed: " + s.error().message);
    }
    TW_RETURN_IF_ERROR(db.exec("PRAGMA user_version = " + std::to_string(m.version)));
    TW_RETURN_IF_ERROR(txn->commit());
  }
  // Marks the file as tokenwarden's (file(1), other tools, check_ownership); a header write.
  auto app = db.prepare("PRAGMA application_id");
  if (!app.ok()) return app.take_error();
  auto row = app->step();
  if (!row.ok()) return row.take_error();
  const bool unmarked = *row && app->int64(0) == 0;
  app->reset();
  if (unmarked) {
    TW_RETURN_IF_ERROR(db.exec("PRAGMA application_id = " + std::to_string(kApplicationId)));
  }
  return ok_status();
}

}  // namespace tw::storage
