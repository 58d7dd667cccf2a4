#pragma once
// A fixture for storage tests: a real SQLite audit store in a temp dir, a manual clock, and
// helpers to record polls and to read or tamper with the database through a second connection.
// HistoryStoreTest adds what the report tests (storage/report_queries, report/) build histories
// with: polls at given instants, raw events and violation rows, and read-only snapshots.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/time.h"
#include "storage/audit_store.h"
#include "storage/chain.h"
#include "storage/read_txn.h"
#include "storage/recorder.h"
#include "storage/sqlite.h"
#include "tests/unit/core/test_support.h"

namespace tw::storage {

inline void PrintTo(PollOutcome outcome, std::ostream* os) { *os << to_string(outcome); }

}  // namespace tw::storage

namespace tw::storage::testing {

inline Token make_token(std::string id, std::string description = "d",
                        std::vector<Permission> perms = {{"read", "db1"}},
                        std::optional<Timestamp> expires = std::nullopt,
                        std::optional<Timestamp> revoked = std::nullopt) {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  t.permissions = std::move(perms);
  t.created_at = tw::testing::ts("2025-12-01T00:00:00Z");
  t.expires_at = expires;
  t.revoked_at = revoked;
  return t;
}

// n tokens "tok-00" … with distinct descriptions.
inline std::vector<Token> make_tokens(int n, const std::string& prefix = "tok-") {
  std::vector<Token> out;
  for (int i = 0; i < n; ++i) {
    std::string id = prefix + (i < 10 ? "0" : "") + std::to_string(i);
    out.push_back(make_token(id, "svc " + id));
  }
  return out;
}

// The append-only triggers of the schema, to restore them after tampering.
inline constexpr const char* kRestoreTriggers =
    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END; "
    "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";
inline constexpr const char* kDropTriggers =
    "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;";

class StoreTest : public ::testing::Test {
 protected:
  // The store is opened in the constructor so that derived fixtures can build on it in their
  // member initializers.
  StoreTest() : path_(dir_.file("audit.db")), store_(open_store()) {}
  void SetUp() override { ASSERT_NE(store_, nullptr); }

  std::unique_ptr<AuditStore> open_store() {
    auto s = AuditStore::open(path_, AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(*s) : nullptr;
  }

  // A separate connection, as another process or an attacker with file access would have.
  std::unique_ptr<Db> raw() {
    auto db = Db::open(path_, Db::Mode::kReadWrite);
    EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
    return db.ok() ? std::move(*db) : nullptr;
  }

  std::int64_t count(const std::string& sql) {
    auto db = raw();
    auto st = db->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql << ": " << (st.ok() ? "" : st.error().message);
    if (!st.ok()) return -1;
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row) << sql;
    return st->int64(0);
  }
  std::string text(const std::string& sql) {
    auto db = raw();
    auto st = db->prepare(sql);
    EXPECT_TRUE(st.ok()) << sql;
    if (!st.ok()) return {};
    auto row = st->step();
    if (!row.ok() || !*row) return "<no row>";
    return st->is_null(0) ? "<null>" : st->text(0);
  }
  void exec(const std::string& sql) {
    auto db = raw();
    auto s = db->exec(sql);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.error().message;
  }
  // Runs `sql` past the append-only triggers (as an attacker with file access could), then
  // restores them.
  void tamper(const std::string& sql) { exec(std::string(kDropTriggers) + sql + kRestoreTriggers); }
  std::int64_t audit_rows() { return count("SELECT COUNT(*) FROM audit_log"); }
  std::int64_t poll_rows() { return count("SELECT COUNT(*) FROM polls"); }
  std::int64_t events_of(const std::string& kind) {
    return count("SELECT COUNT(*) FROM audit_log WHERE event = '" + kind + "'");
  }

  // Whether the hash chain verifies from end to end.
  bool chain_ok() {
    auto db = raw();
    auto rep = verify_chain(*db);
    return rep.ok() && rep->ok;
  }

  // The input of a poll of `cluster` that ends at the clock's time (started 1 s before).
  PollInput poll_input(const std::string& cluster = "prod") const {
    PollInput in;
    in.cluster = cluster;
    in.finished_at = clock_.now();
    in.started_at = in.finished_at - std::chrono::seconds(1);
    return in;
  }

  // Records one poll that ends at the clock's time (started 1 s before), then advances the clock.
  Result<PollSummary> poll(InventoryRecorder& rec, const std::vector<Token>* tokens,
                           const std::string& cluster = "prod", int max_vanished_percent = 50,
                           bool dry_run = false, const InventoryRecorder::Hook& hook = {}) {
    PollInput in = poll_input(cluster);
    if (tokens != nullptr) in.tokens = *tokens;
    in.error = tokens == nullptr ? "GET https://h/api/v0/tokens: connection refused" : "";
    in.max_vanished_percent = max_vanished_percent;
    in.dry_run = dry_run;
    auto r = rec.record_input(in, hook);
    if (r.ok() && r->needs_confirmation) {
      // As the poller does: read each token the recorder asks about, then record again.
      for (const auto& id : r->to_confirm) {
        ++direct_reads_;
        auto it = direct_.find(id);
        in.confirmations[id] =
            it == direct_.end() ? DirectRead{true, std::nullopt, {}} : it->second;
      }
      r = rec.record_input(in, hook);
    }
    clock_.advance(std::chrono::minutes(1));
    return r;
  }
  PollSummary poll_ok(InventoryRecorder& rec, const std::vector<Token>& tokens,
                      const std::string& cluster = "prod", int max_vanished_percent = 50) {
    auto r = poll(rec, &tokens, cluster, max_vanished_percent);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : PollSummary{};
  }

  static std::int64_t n(const EventCounts& c, EventKind k) {
    return c[static_cast<std::size_t>(k)];
  }

  // What a direct read of a token finds; ids not here are gone (404).
  std::map<std::string, DirectRead> direct_;
  int direct_reads_ = 0;

  tw::testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<AuditStore> store_;
  ManualClock clock_{tw::testing::ts("2026-01-01T00:00:00Z")};
};

// A violation row as the enforcer leaves it: open, or resolved with `resolution`.
struct ViolationRow {
  std::string cluster = "prod";
  std::string token;
  std::string policy;
  std::string severity = "critical";
  std::string action = "alert";
  Timestamp opened;
  std::optional<Timestamp> resolved;
  std::string resolution = "compliant";
};

class HistoryStoreTest : public StoreTest {
 protected:
  // Records a poll of `cluster` ending exactly at `at` (nullptr tokens: a failed poll).
  void poll_at(Timestamp at, const std::vector<Token>* tokens,
               const std::string& cluster = "prod") {
    clock_.set(at);
    auto s = poll(rec_, tokens, cluster, 100);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  void append(EventKind kind, const std::string& cluster, const std::string& token,
              const std::string& detail, Timestamp at) {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->append({kind, cluster, token, detail}, at).ok());
    ASSERT_TRUE(txn->commit().ok());
  }
  void insert_violation(const ViolationRow& v) {
    const auto quoted = [](const std::string& s) { return "'" + s + "'"; };
    exec(
        "INSERT INTO violation_records(cluster, token_id, policy, severity, state, action, "
        "opened_at, resolved_at, resolution, detail) VALUES (" +
        quoted(v.cluster) + ", " + quoted(v.token) + ", " + quoted(v.policy) + ", " +
        quoted(v.severity) + ", " + quoted(v.resolved ? "resolved" : "open") + ", " +
        quoted(v.action) + ", " + quoted(format_timestamp(v.opened)) + ", " +
        (v.resolved ? quoted(format_timestamp(*v.resolved)) : "NULL") + ", " +
        (v.resolved ? quoted(v.resolution) : "NULL") + ", '{}')");
  }
  // A snapshot on a read-only connection of its own, as `tokenwarden report` reads.
  ReadTxn read() {
    auto txn = ReadTxn::open(path_);
    EXPECT_TRUE(txn.ok()) << (txn.ok() ? "" : txn.error().message);
    return std::move(*txn);
  }

  InventoryRecorder rec_{*store_};
};

}  // namespace tw::storage::testing
