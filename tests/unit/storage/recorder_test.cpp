// Tests for storage/audit_store.h and storage/recorder.h against a real SQLite file in a temp
// dir, with a manual clock: what each kind of poll writes, suspect polls, dry runs, concurrent
// writers, hooks, file mode, schema and chain continuity.

#include "storage/recorder.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "storage/queries.h"
#include "storage/schema.h"
#include "tests/unit/storage/store_fixture.h"

namespace tw::storage {
namespace {

using testing::make_token;
using testing::make_tokens;
using testing::StoreTest;

class RecorderTest : public StoreTest {
 protected:
  InventoryRecorder rec_{*store_};

  std::vector<InventoryRow> inventory(const std::string& cluster = "prod") {
    auto db = raw();
    InventoryFilter f;
    f.cluster = cluster;
    auto rows = query_inventory(*db, f);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<InventoryRow>{};
  }
  std::int64_t status_count(const std::string& status) {
    return count("SELECT COUNT(*) FROM token_inventory WHERE status = '" + status + "'");
  }
};

TEST_F(RecorderTest, FirstPollDiscoversEveryToken) {
  auto tokens = make_tokens(3);
  tokens.push_back(
      make_token("revoked", "r", {}, std::nullopt, tw::testing::ts("2025-12-24T00:00:00Z")));
  Timestamp at = clock_.now();
  auto s = poll_ok(rec_, tokens);
  EXPECT_EQ(s.outcome, PollOutcome::kOk);
  EXPECT_GT(s.poll_id, 0);
  EXPECT_EQ(s.token_count, 4u);
  EXPECT_EQ(s.known, 0u);
  EXPECT_EQ(n(s.events, EventKind::kTokenDiscovered), 4);
  EXPECT_EQ(audit_rows(), 4);
  EXPECT_EQ(events_of("token_discovered"), 4);
  EXPECT_EQ(poll_rows(), 1);
  EXPECT_EQ(text("SELECT outcome FROM polls"), "ok");
  EXPECT_EQ(count("SELECT token_count FROM polls"), 4);
  EXPECT_EQ(text("SELECT error FROM polls"), "<null>");
  EXPECT_EQ(text("SELECT finished_at FROM polls"), format_timestamp(at));
  EXPECT_EQ(text("SELECT started_at FROM polls"), format_timestamp(at - std::chrono::seconds(1)));
  EXPECT_EQ(text("SELECT recorded_at FROM audit_log WHERE seq = 1"), format_timestamp(at));
  EXPECT_EQ(text("SELECT cluster FROM audit_log WHERE seq = 1"), "prod");
  // Events in token id order, whatever the order of the list.
  EXPECT_EQ(text("SELECT token_id FROM audit_log WHERE seq = 1"), "revoked");
  EXPECT_EQ(text("SELECT token_id FROM audit_log WHERE seq = 2"), "tok-00");
  EXPECT_EQ(status_count("active"), 3);
  EXPECT_EQ(status_count("revoked"), 1);
  auto inv = inventory();
  ASSERT_EQ(inv.size(), 4u);
  EXPECT_EQ(inv[0].first_seen, format_timestamp(at));
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, UnchangedPollWritesOnlyItsPollRow) {
  auto tokens = make_tokens(5);
  poll_ok(rec_, tokens);
  std::int64_t audit_before = audit_rows();
  std::string tokens_before =
      text("SELECT group_concat(token_id || status || last_seen) FROM tokens");
  Timestamp second = clock_.now();
  auto s = poll_ok(rec_, tokens);
  EXPECT_EQ(s.outcome, PollOutcome::kOk);
  for (int k = 0; k < kEventKindCount; ++k)
    EXPECT_EQ(s.events[static_cast<std::size_t>(k)], 0) << k;
  EXPECT_EQ(audit_rows(), audit_before);
  EXPECT_EQ(poll_rows(), 2);
  EXPECT_EQ(text("SELECT group_concat(token_id || status || last_seen) FROM tokens"), tokens_before)
      << "an unchanged poll must not rewrite token rows";
  // The view reports last_seen as the end of the latest successful poll.
  for (const auto& row : inventory())
    EXPECT_EQ(row.last_seen, format_timestamp(second)) << row.token.id;
}

TEST_F(RecorderTest, ChangesAreRecordedOnce) {
  auto tokens = make_tokens(3);
  poll_ok(rec_, tokens);
  tokens[1].description = "renamed";
  tokens.push_back(make_token("new"));
  auto s = poll_ok(rec_, tokens);
  EXPECT_EQ(n(s.events, EventKind::kTokenUpdated), 1);
  EXPECT_EQ(n(s.events, EventKind::kTokenCreated), 1);
  EXPECT_EQ(audit_rows(), 5);
  auto again = poll_ok(rec_, tokens);
  EXPECT_EQ(n(again.events, EventKind::kTokenUpdated), 0);
  EXPECT_EQ(audit_rows(), 5);
  EXPECT_EQ(text("SELECT description FROM token_inventory WHERE token_id = 'tok-01'"), "renamed");
}

TEST_F(RecorderTest, FailedPollRecordsPollFailedAndNoTokenEvents) {
  auto tokens = make_tokens(3);
  poll_ok(rec_, tokens);
  std::int64_t before = audit_rows();
  Timestamp at = clock_.now();
  auto s = poll(rec_, nullptr);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->outcome, PollOutcome::kFailed);
  EXPECT_GT(s->poll_id, 0);
  EXPECT_EQ(s->message, "GET https://h/api/v0/tokens: connection refused");
  EXPECT_EQ(n(s->events, EventKind::kPollFailed), 1);
  EXPECT_EQ(audit_rows(), before + 1);
  EXPECT_EQ(events_of("poll_failed"), 1);
  EXPECT_EQ(text("SELECT cluster FROM audit_log WHERE event = 'poll_failed'"), "prod");
  EXPECT_EQ(text("SELECT token_id FROM audit_log WHERE event = 'poll_failed'"), "<null>");
  EXPECT_EQ(text("SELECT detail FROM audit_log WHERE event = 'poll_failed'"),
            R"({"error":"GET https://h/api/v0/tokens: connection refused","started_at":")" +
                format_timestamp(at - std::chrono::seconds(1)) + R"("})");
  EXPECT_EQ(text("SELECT outcome FROM polls ORDER BY id DESC"), "failed");
  EXPECT_EQ(text("SELECT error FROM polls ORDER BY id DESC"), s->message);
  EXPECT_EQ(text("SELECT token_count FROM polls ORDER BY id DESC"), "<null>");
  EXPECT_EQ(status_count("active"), 3) << "a failed poll changes no token";
  // Last seen still reflects the last successful poll.
  for (const auto& row : inventory()) EXPECT_NE(row.last_seen, format_timestamp(at));
}

TEST_F(RecorderTest, FailedFirstPollThenSuccessStillDiscovers) {
  ASSERT_TRUE(poll(rec_, nullptr).ok());
  auto s = poll_ok(rec_, make_tokens(2));
  EXPECT_EQ(n(s.events, EventKind::kTokenDiscovered), 2);
}

TEST_F(RecorderTest, SuspectPollHoldsTheInventoryUntilConfirmed) {
  auto ten = make_tokens(10);
  poll_ok(rec_, ten);
  std::vector<Token> two(ten.begin(), ten.begin() + 2);
  std::int64_t before = audit_rows();

  auto s = poll(rec_, &two);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(s->known, 10u);
  EXPECT_EQ(s->vanished, 8u);
  EXPECT_FALSE(s->confirmed_suspect);
  EXPECT_NE(s->message.find("8 of 10"), std::string::npos) << s->message;
  EXPECT_EQ(n(s->events, EventKind::kPollSuspect), 1);
  EXPECT_EQ(n(s->events, EventKind::kTokenRemoved), 0);
  EXPECT_EQ(audit_rows(), before + 1);
  EXPECT_EQ(events_of("poll_suspect"), 1);
  EXPECT_EQ(events_of("token_removed"), 0);
  EXPECT_EQ(text("SELECT outcome FROM polls ORDER BY id DESC"), "suspect");
  EXPECT_EQ(count("SELECT token_count FROM polls ORDER BY id DESC"), 2);
  EXPECT_EQ(status_count("active"), 10) << "inventory unchanged by a suspect poll";

  // The next poll sees the same tokens vanish: confirmed, removals recorded.
  auto c = poll(rec_, &two);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->outcome, PollOutcome::kOk);
  EXPECT_TRUE(c->confirmed_suspect);
  EXPECT_EQ(n(c->events, EventKind::kTokenRemoved), 8);
  EXPECT_EQ(events_of("token_removed"), 8);
  EXPECT_EQ(status_count("removed"), 8);
  EXPECT_EQ(status_count("active"), 2);
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, DifferentVanishSetStaysSuspect) {
  auto ten = make_tokens(10);
  poll_ok(rec_, ten);
  std::vector<Token> first(ten.begin(), ten.begin() + 2);
  std::vector<Token> other(ten.begin() + 5, ten.begin() + 8);
  EXPECT_EQ(poll(rec_, &first)->outcome, PollOutcome::kSuspect);
  auto s = poll(rec_, &other);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->outcome, PollOutcome::kSuspect)
      << "a different set of vanished tokens confirms nothing";
  EXPECT_FALSE(s->confirmed_suspect);
  // Back to the first set: the latest suspect poll had the other set, so still suspect.
  EXPECT_EQ(poll(rec_, &first)->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(events_of("poll_suspect"), 3);
  EXPECT_EQ(events_of("token_removed"), 0);
  EXPECT_EQ(status_count("active"), 10);
}

TEST_F(RecorderTest, SuspectThenFullListClearsTheSuspicion) {
  auto ten = make_tokens(10);
  poll_ok(rec_, ten);
  std::vector<Token> two(ten.begin(), ten.begin() + 2);
  EXPECT_EQ(poll(rec_, &two)->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(poll_ok(rec_, ten).outcome, PollOutcome::kOk);
  // A later identical short list is suspect again, not a confirmation of the old one.
  auto s = poll(rec_, &two);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(events_of("token_removed"), 0);
}

TEST_F(RecorderTest, FailedPollBetweenSuspectAndConfirmation) {
  auto ten = make_tokens(10);
  poll_ok(rec_, ten);
  std::vector<Token> two(ten.begin(), ten.begin() + 2);
  EXPECT_EQ(poll(rec_, &two)->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(poll(rec_, nullptr)->outcome, PollOutcome::kFailed);
  auto s = poll(rec_, &two);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->confirmed_suspect);
  EXPECT_EQ(events_of("token_removed"), 8);
}

struct ThresholdCase {
  std::string name;
  int known;
  int listed;
  int max_percent;
  PollOutcome outcome;
};

class SuspectThreshold : public RecorderTest,
                         public ::testing::WithParamInterface<ThresholdCase> {};

TEST_P(SuspectThreshold, Table) {
  const auto& c = GetParam();
  auto all = make_tokens(c.known);
  poll_ok(rec_, all, "prod", c.max_percent);
  std::vector<Token> some(all.begin(), all.begin() + c.listed);
  auto s = poll(rec_, &some, "prod", c.max_percent);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->outcome, c.outcome) << c.name;
  EXPECT_EQ(events_of("token_removed"), c.outcome == PollOutcome::kOk ? c.known - c.listed : 0);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SuspectThreshold,
    ::testing::Values(ThresholdCase{"half vanish at 50 is ok", 10, 5, 50, PollOutcome::kOk},
                      ThresholdCase{"more than half at 50", 10, 4, 50, PollOutcome::kSuspect},
                      ThresholdCase{"one of two at 50", 2, 1, 50, PollOutcome::kOk},
                      ThresholdCase{"everything vanishes at 100", 10, 0, 100, PollOutcome::kOk},
                      ThresholdCase{"everything vanishes at 99", 10, 0, 99, PollOutcome::kSuspect},
                      ThresholdCase{"one vanishes at 0", 10, 9, 0, PollOutcome::kSuspect},
                      ThresholdCase{"none vanish at 0", 10, 10, 0, PollOutcome::kOk},
                      ThresholdCase{"one of ten at 10", 10, 9, 10, PollOutcome::kOk},
                      ThresholdCase{"two of ten at 10", 10, 8, 10, PollOutcome::kSuspect}),
    tw::testing::CaseName());

TEST_F(RecorderTest, MaxVanishedHundredNeverSuspect) {
  auto ten = make_tokens(10);
  poll_ok(rec_, ten, "prod", 100);
  std::vector<Token> none;
  auto s = poll(rec_, &none, "prod", 100);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->outcome, PollOutcome::kOk);
  EXPECT_EQ(events_of("token_removed"), 10);
  EXPECT_EQ(events_of("poll_suspect"), 0);
}

TEST_F(RecorderTest, DryRunWritesNothing) {
  auto tokens = make_tokens(3);
  for (const std::vector<Token>* list :
       std::initializer_list<const std::vector<Token>*>{&tokens, nullptr}) {
    auto s = poll(rec_, list, "prod", 50, true);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->poll_id, 0);
  }
  EXPECT_EQ(audit_rows(), 0);
  EXPECT_EQ(poll_rows(), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM tokens"), 0);

  // A dry run reports what it would record; the real poll then records exactly that.
  auto dry = poll(rec_, &tokens, "prod", 50, true);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(n(dry->events, EventKind::kTokenDiscovered), 3);
  auto real = poll_ok(rec_, tokens);
  EXPECT_EQ(n(real.events, EventKind::kTokenDiscovered), 3);
  EXPECT_EQ(audit_rows(), 3);

  // Dry-run suspect poll: nothing written either.
  std::vector<Token> none;
  auto sus = poll(rec_, &none, "prod", 50, true);
  ASSERT_TRUE(sus.ok());
  EXPECT_EQ(sus->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(audit_rows(), 3);
  EXPECT_EQ(poll_rows(), 1);
  // And a dry run does not poison the in-memory inventory of later real polls.
  auto after = poll_ok(rec_, tokens);
  EXPECT_EQ(audit_rows(), 3);
  EXPECT_EQ(after.outcome, PollOutcome::kOk);
}

TEST_F(RecorderTest, SecondRecorderOnTheSameFileNeverDuplicatesEvents) {
  // Another process (a manual `tokenwarden poll`) writing the same database.
  auto other_store = open_store();
  ASSERT_NE(other_store, nullptr);
  InventoryRecorder other(*other_store);

  std::vector<Token> v1{make_token("a")};
  std::vector<Token> v2{make_token("a"), make_token("b")};
  std::vector<Token> v3{make_token("a", "renamed"), make_token("b")};
  std::vector<Token> v4{make_token("a", "renamed"), make_token("b"), make_token("c")};
  std::vector<Token> v5{make_token("a", "renamed")};

  poll_ok(rec_, v1);   // discovered a
  poll_ok(other, v2);  // created b
  poll_ok(rec_, v2);   // nothing (reloads: the other process moved on)
  poll_ok(rec_, v3);   // updated a
  poll_ok(other, v3);  // nothing
  poll_ok(other, v4);  // created c
  poll_ok(rec_, v4);   // nothing
  poll_ok(rec_, v5);   // b, c vanish: 2 of 3 is suspect
  poll_ok(other, v5);  // confirmed by the other process: removed b, c
  poll_ok(rec_, v5);   // nothing
  poll_ok(other, v5);  // nothing

  EXPECT_EQ(events_of("token_discovered"), 1);
  EXPECT_EQ(events_of("token_created"), 2);
  EXPECT_EQ(events_of("token_updated"), 1);
  EXPECT_EQ(events_of("poll_suspect"), 1);
  EXPECT_EQ(events_of("token_removed"), 2);
  EXPECT_EQ(
      count("SELECT COUNT(*) FROM audit_log WHERE token_id = 'b' AND event = 'token_created'"), 1);
  EXPECT_EQ(poll_rows(), 11);
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, ClustersAreIndependent) {
  poll_ok(rec_, make_tokens(3), "eu");
  auto us = poll_ok(rec_, make_tokens(2), "us");
  EXPECT_EQ(n(us.events, EventKind::kTokenDiscovered), 2) << "first poll of us is a discovery too";
  auto eu = poll_ok(rec_, make_tokens(3), "eu");
  EXPECT_EQ(n(eu.events, EventKind::kTokenRemoved), 0);
  EXPECT_EQ(inventory("eu").size(), 3u);
  EXPECT_EQ(inventory("us").size(), 2u);
}

TEST_F(RecorderTest, HookRunsInTheTransactionWithTheNewInventory) {
  auto tokens = make_tokens(2);
  std::size_t seen = 0;
  auto hook = [&](WriteTxn& txn, const Inventory& after, PollSummary& summary) -> Status {
    seen = after.size();
    EXPECT_GT(summary.poll_id, 0);
    auto seq = txn.append({EventKind::kViolationOpened, "prod", "tok-00", R"({"policy":"p"})"},
                          clock_.now());
    if (!seq.ok()) return seq.take_error();
    return ok_status();
  };
  auto s = poll(rec_, &tokens, "prod", 50, false, hook);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(n(s->events, EventKind::kViolationOpened), 1);
  EXPECT_EQ(n(s->events, EventKind::kTokenDiscovered), 2);
  EXPECT_EQ(audit_rows(), 3);
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, HookFailureRollsBackEverything) {
  auto tokens = make_tokens(3);
  poll_ok(rec_, tokens);
  std::int64_t audit_before = audit_rows();
  std::int64_t polls_before = poll_rows();
  tokens[0].description = "changed";
  tokens.push_back(make_token("new"));
  auto failing = [&](WriteTxn& txn, const Inventory&, PollSummary&) -> Status {
    (void)txn.append({EventKind::kViolationOpened, "prod", "x", "{}"}, clock_.now());
    return make_error(ErrorCode::kDatabase, "policy stage failed");
  };
  auto s = poll(rec_, &tokens, "prod", 50, false, failing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "policy stage failed");
  EXPECT_EQ(audit_rows(), audit_before);
  EXPECT_EQ(poll_rows(), polls_before);
  EXPECT_EQ(count("SELECT COUNT(*) FROM tokens"), 3);
  EXPECT_EQ(text("SELECT description FROM tokens WHERE token_id = 'tok-00'"), "svc tok-00");

  // The in-memory inventory was not advanced: the next poll records the changes, once.
  auto next = poll_ok(rec_, tokens);
  EXPECT_EQ(n(next.events, EventKind::kTokenUpdated), 1);
  EXPECT_EQ(n(next.events, EventKind::kTokenCreated), 1);
  EXPECT_EQ(audit_rows(), audit_before + 2);
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, UncommittedTransactionRollsBack) {
  {
    auto txn = store_->begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->append({EventKind::kDaemonStarted, "", "", "{}"}, clock_.now()).ok());
  }  // destroyed without commit
  EXPECT_EQ(audit_rows(), 0);
  auto txn = store_->begin();
  ASSERT_TRUE(txn.ok());
  auto seq = txn->append({EventKind::kDaemonStarted, "", "", "{}"}, clock_.now());
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 1) << "the rolled-back row left no gap";
  ASSERT_TRUE(txn->commit().ok());
  EXPECT_EQ(text("SELECT cluster FROM audit_log"), "<null>");
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, DatabaseFileIsPrivate) {
  poll_ok(rec_, make_tokens(1));
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string p = path_ + suffix;
    if (!std::filesystem::exists(p)) continue;
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << p;
  }
}

TEST_F(RecorderTest, SchemaVersionAndPragmas) {
  auto v = schema_version(store_->db());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, kSchemaVersion);
  EXPECT_EQ(kSchemaVersion, 6);
  EXPECT_EQ(count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = "
                  "'audit_events_by_event'"),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = "
                  "'poll_checkpoints'"),
            1);
  for (const char* table : {"token_owners", "expiry_notices"}) {
    EXPECT_EQ(count(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
                                "name = '") +
                    table + "'"),
              1)
        << table;
  }
  EXPECT_EQ(text("PRAGMA journal_mode"), "wal");
  for (const char* view : {"audit_log", "token_inventory", "polls"}) {
    EXPECT_EQ(
        count(std::string("SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' AND name = '") +
              view + "'"),
        1)
        << view;
  }
}

TEST_F(RecorderTest, ReadOnlyOpen) {
  poll_ok(rec_, make_tokens(1));
  auto ro = AuditStore::open(path_, AuditStore::Mode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.error().message;
  auto missing = AuditStore::open(dir_.file("missing.db"), AuditStore::Mode::kReadOnly);
  EXPECT_FALSE(missing.ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("missing.db"))) << "read-only must not create";
}

TEST_F(RecorderTest, VersionTwoIsReadableAndMigrated) {
  poll_ok(rec_, make_tokens(2));
  store_.reset();
  exec(
      "DROP INDEX audit_events_by_event; DROP TABLE poll_checkpoints; DROP TABLE export_cursors; "
      "DROP TABLE token_owners; DROP TABLE expiry_notices; DROP VIEW token_inventory; "
      "CREATE VIEW token_inventory AS SELECT cluster, token_id, description, permissions, "
      "created_at, expires_at, revoked_at, status, first_seen, last_seen FROM tokens; "
      "PRAGMA user_version = 2");
  auto ro = AuditStore::open(path_, AuditStore::Mode::kReadOnly);
  ASSERT_TRUE(ro.ok()) << ro.error().message;
  ro->reset();
  auto rw = AuditStore::open(path_, AuditStore::Mode::kReadWrite);
  ASSERT_TRUE(rw.ok()) << rw.error().message;
  EXPECT_EQ(count("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = "
                  "'audit_events_by_event'"),
            1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM poll_checkpoints"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM token_inventory WHERE owner IS NULL"), 2);
}

TEST_F(RecorderTest, NewerSchemaIsRefused) {
  exec("PRAGMA user_version = 99");
  auto rw = AuditStore::open(path_, AuditStore::Mode::kReadWrite);
  ASSERT_FALSE(rw.ok());
  EXPECT_EQ(rw.error().code, ErrorCode::kDatabase);
  EXPECT_NE(rw.error().message.find("99"), std::string::npos) << rw.error().message;
  auto ro = AuditStore::open(path_, AuditStore::Mode::kReadOnly);
  EXPECT_FALSE(ro.ok());
}

TEST_F(RecorderTest, ReopeningPreservesTheChain) {
  auto tokens = make_tokens(4);
  poll_ok(rec_, tokens);
  tokens.pop_back();
  poll_ok(rec_, tokens);
  std::string head = text("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1");
  std::int64_t rows = audit_rows();

  store_.reset();
  store_ = open_store();
  ASSERT_NE(store_, nullptr);
  InventoryRecorder reopened(*store_);
  tokens[0].description = "after reopen";
  auto s = poll_ok(reopened, tokens);
  EXPECT_EQ(n(s.events, EventKind::kTokenDiscovered), 0) << "not a first poll after reopening";
  EXPECT_EQ(n(s.events, EventKind::kTokenUpdated), 1);
  EXPECT_EQ(audit_rows(), rows + 1);
  EXPECT_EQ(text("SELECT prev_hash FROM audit_log ORDER BY seq DESC LIMIT 1"), head);
  EXPECT_EQ(count("SELECT MAX(seq) FROM audit_log"), rows + 1);
  EXPECT_TRUE(chain_ok());
}

TEST_F(RecorderTest, ReadClusterState) {
  auto tokens = make_tokens(4);
  {
    auto st = read_cluster_state(store_->db(), "prod");
    ASSERT_TRUE(st.ok());
    EXPECT_FALSE(st->ever_ok);
    EXPECT_EQ(st->last_ok_poll_id, 0);
  }
  Timestamp at = clock_.now();
  auto s = poll_ok(rec_, tokens);
  std::vector<Token> one(tokens.begin(), tokens.begin() + 1);
  ASSERT_EQ(poll(rec_, &one)->outcome, PollOutcome::kSuspect);
  auto st = read_cluster_state(store_->db(), "prod");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->ever_ok);
  EXPECT_EQ(st->last_ok_poll_id, s.poll_id);
  EXPECT_EQ(st->last_ok_finished, at);
  EXPECT_EQ(st->pending_suspect_digest.size(), 64u);
  auto inv = read_inventory(store_->db(), "prod");
  ASSERT_TRUE(inv.ok());
  EXPECT_EQ(inv->size(), 4u);
  EXPECT_EQ(inv->at("tok-01").token, tokens[1]);
}

// --- the unchanged-list shortcut ----------------------------------------------------------------

class UnchangedListTest : public RecorderTest {
 protected:
  // A poll whose source reported the same bytes as `digest`.
  PollInput unchanged_input(const std::string& digest) const {
    PollInput in = poll_input();
    in.unchanged = true;
    in.digest = digest;
    return in;
  }
  // A full list with the digest of its bytes.
  PollInput listed_input(const std::vector<Token>& tokens, const std::string& digest) const {
    PollInput in = poll_input();
    in.tokens = tokens;
    in.digest = digest;
    return in;
  }
  Result<PollSummary> poll_unchanged(InventoryRecorder& rec, const std::string& digest,
                                     const InventoryRecorder::Hook& hook = {}) {
    auto r = rec.record(unchanged_input(digest), hook);
    clock_.advance(std::chrono::minutes(1));
    return r;
  }
  Result<PollSummary> poll_with_digest(InventoryRecorder& rec, const std::vector<Token>& tokens,
                                       const std::string& digest) {
    PollInput in = listed_input(tokens, digest);
    auto r = rec.record_input(in);
    if (r.ok() && r->needs_confirmation) {  // every vanished token reads back as gone
      for (const auto& id : r->to_confirm)
        in.confirmations[id] = DirectRead{true, std::nullopt, {}};
      r = rec.record_input(in);
    }
    clock_.advance(std::chrono::minutes(1));
    return r;
  }
};

TEST_F(UnchangedListTest, KnownDigestOnlyAfterAListWasRecordedWhole) {
  EXPECT_EQ(rec_.known_digest("prod"), "");
  auto tokens = make_tokens(4);
  ASSERT_TRUE(poll_with_digest(rec_, tokens, "digest-1").ok());
  EXPECT_EQ(rec_.known_digest("prod"), "digest-1");
  EXPECT_EQ(rec_.known_digest("other"), "");
}

TEST_F(UnchangedListTest, UnchangedListWritesOnlyThePollRowAndRunsTheHook) {
  auto tokens = make_tokens(4);
  ASSERT_TRUE(poll_with_digest(rec_, tokens, "digest-1").ok());
  std::int64_t audit_before = audit_rows();
  std::size_t hook_saw = 0;
  auto s = poll_unchanged(rec_, "digest-1", [&](WriteTxn&, const Inventory& inv, PollSummary&) {
    hook_saw = inv.size();
    return ok_status();
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->needs_full_list);
  EXPECT_EQ(s->outcome, PollOutcome::kOk);
  EXPECT_EQ(s->token_count, 4u);
  EXPECT_EQ(hook_saw, 4u);
  EXPECT_EQ(audit_rows(), audit_before);
  EXPECT_EQ(poll_rows(), 2);
  EXPECT_EQ(count("SELECT token_count FROM polls ORDER BY id DESC LIMIT 1"), 4);
  // last_seen of listed tokens follows the latest successful poll.
  EXPECT_EQ(inventory()[0].last_seen, text("SELECT MAX(finished_at) FROM polls"));
}

TEST_F(UnchangedListTest, ADifferentDigestNeedsTheFullList) {
  ASSERT_TRUE(poll_with_digest(rec_, make_tokens(2), "digest-1").ok());
  auto s = poll_unchanged(rec_, "digest-2");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->needs_full_list);
  EXPECT_EQ(poll_rows(), 1) << "nothing may be written for a poll that needs the full list";
}

TEST_F(UnchangedListTest, AnExpiryPassingIsRecordedFromTheUnchangedList) {
  auto tokens = make_tokens(3);
  const Timestamp expiry = clock_.now() + std::chrono::minutes(3);
  tokens[1].expires_at = expiry;
  ASSERT_TRUE(poll_with_digest(rec_, tokens, "digest-1").ok());
  EXPECT_EQ(rec_.known_digest("prod"), "digest-1") << "offered however soon a token expires";
  auto before = poll_unchanged(rec_, "digest-1");  // each poll moves the clock 1 minute
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->needs_full_list);
  EXPECT_TRUE(before->changed_tokens.empty());
  clock_.advance(std::chrono::minutes(2));  // now past the expiry
  const Timestamp at = clock_.now();
  auto s = poll_unchanged(rec_, "digest-1");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->needs_full_list) << "the expiry is recorded without the list";
  EXPECT_EQ(s->outcome, PollOutcome::kOk);
  EXPECT_EQ(n(s->events, EventKind::kTokenExpired), 1);
  EXPECT_EQ(s->changed_tokens, std::vector<std::string>{tokens[1].id});
  EXPECT_EQ(text("SELECT detail FROM audit_log WHERE event = 'token_expired'"),
            "{\"expires_at\":\"" + format_timestamp(expiry) + "\"}");
  EXPECT_EQ(text("SELECT token_id FROM audit_log WHERE event = 'token_expired'"), tokens[1].id);
  EXPECT_EQ(text("SELECT recorded_at FROM audit_log WHERE event = 'token_expired'"),
            format_timestamp(at));
  EXPECT_EQ(status_count("expired"), 1);
  EXPECT_EQ(status_count("active"), 2);
  // Recorded once: neither the next unchanged poll nor a full compare of the same list, nor a
  // new process reading the inventory back, finds it again.
  auto again = poll_unchanged(rec_, "digest-1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(n(again->events, EventKind::kTokenExpired), 0);
  auto full = poll_with_digest(rec_, tokens, "digest-1");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(n(full->events, EventKind::kTokenExpired), 0);
  InventoryRecorder fresh(*store_);
  auto reread = poll_with_digest(fresh, tokens, "digest-1");
  ASSERT_TRUE(reread.ok());
  EXPECT_TRUE(reread->changed_tokens.empty());
  EXPECT_EQ(events_of("token_expired"), 1);
  EXPECT_TRUE(chain_ok());
}

TEST_F(UnchangedListTest, AnExpiryFromTheUnchangedListIsWhatTheFullCompareRecords) {
  // The same history twice, in two databases: once recorded from the unchanged list, once from
  // the full list. The audit rows and the inventory must be the same.
  auto tokens = make_tokens(4);
  tokens[0].expires_at = clock_.now() + std::chrono::seconds(90);
  tokens[2].expires_at = clock_.now() + std::chrono::seconds(100);
  const Timestamp start = clock_.now();
  auto run = [&](bool shortcut) {
    tw::testing::TempDir dir;
    auto store = AuditStore::open(dir.file("audit.db"), AuditStore::Mode::kReadWrite);
    EXPECT_TRUE(store.ok());
    InventoryRecorder rec(**store);
    clock_.set(start);
    EXPECT_TRUE(poll_with_digest(rec, tokens, "digest-1").ok());
    clock_.advance(std::chrono::minutes(2));
    auto s = shortcut ? poll_unchanged(rec, "digest-1") : poll_with_digest(rec, tokens, "digest-1");
    EXPECT_TRUE(s.ok());
    EXPECT_FALSE(s->needs_full_list);
    std::vector<std::string> rows;
    auto db = Db::open(dir.file("audit.db"), Db::Mode::kReadOnly);
    auto st = (*db)->prepare(
        "SELECT recorded_at || ' ' || coalesce(token_id, '') || ' ' || event || ' ' || detail "
        "FROM audit_log WHERE event NOT IN ('poll_failed') ORDER BY seq");
    while (*st->step()) rows.push_back(st->text(0));
    auto inv = (*db)->prepare(
        "SELECT token_id || ' ' || status || ' ' || first_seen || ' ' || last_seen "
        "FROM token_inventory ORDER BY token_id");
    while (*inv->step()) rows.push_back(inv->text(0));
    return rows;
  };
  const auto from_unchanged = run(true);
  const auto from_full = run(false);
  EXPECT_EQ(from_unchanged, from_full);
  EXPECT_EQ(std::count_if(from_unchanged.begin(), from_unchanged.end(),
                          [](const std::string& r) { return r.find("token_expired") != r.npos; }),
            2);
}

TEST_F(UnchangedListTest, ADryRunOfAnExpiryWritesNothingAndTheFullListRecordsIt) {
  auto tokens = make_tokens(2);
  tokens[0].expires_at = clock_.now() + std::chrono::seconds(30);
  ASSERT_TRUE(poll_with_digest(rec_, tokens, "digest-1").ok());
  clock_.advance(std::chrono::minutes(1));
  PollInput dry = unchanged_input("digest-1");
  dry.dry_run = true;
  auto d = rec_.record(dry);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(n(d->events, EventKind::kTokenExpired), 1) << "a dry run says what it would record";
  EXPECT_EQ(events_of("token_expired"), 0);
  // The dry run left the inventory in memory behind the database: the next poll compares the
  // whole list against the inventory read back, and records the expiry once.
  auto s = poll_unchanged(rec_, "digest-1");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->needs_full_list);
  EXPECT_EQ(events_of("token_expired"), 0);
  auto full = poll_with_digest(rec_, tokens, "digest-1");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(n(full->events, EventKind::kTokenExpired), 1);
  EXPECT_EQ(events_of("token_expired"), 1);
}

TEST_F(UnchangedListTest, AnotherWriterInvalidatesTheShortcut) {
  auto tokens = make_tokens(3);
  ASSERT_TRUE(poll_with_digest(rec_, tokens, "digest-1").ok());
  InventoryRecorder other(*store_);  // e.g. a manual `tokenwarden poll` while the daemon runs
  tokens.push_back(make_token("new-one"));
  ASSERT_TRUE(poll_with_digest(other, tokens, "digest-2").ok());
  auto s = poll_unchanged(rec_, "digest-1");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->needs_full_list);
  auto full = poll_with_digest(rec_, tokens, "digest-2");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(n(full->events, EventKind::kTokenCreated), 0) << "the other writer already recorded it";
  EXPECT_EQ(events_of("token_created"), 1);
}

TEST_F(UnchangedListTest, SuspectPollDoesNotReplaceTheKnownDigest) {
  ASSERT_TRUE(poll_with_digest(rec_, make_tokens(10), "digest-full").ok());
  auto s = poll_with_digest(rec_, {}, "digest-empty");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->outcome, PollOutcome::kSuspect);
  EXPECT_EQ(rec_.known_digest("prod"), "digest-full");
  EXPECT_TRUE(poll_unchanged(rec_, "digest-empty")->needs_full_list);
}

// --- the checkpoint a new process records an unchanged list from ---------------------------------

class CheckpointTest : public UnchangedListTest {
 protected:
  // A poll by a new process (no inventory in memory) whose source reported the bytes of `digest`;
  // its hook must not run when the checkpoint stands for the inventory.
  Result<PollSummary> fresh_unchanged(const std::string& digest,
                                      const std::string& evaluation = "eval-1") {
    InventoryRecorder fresh(*store_);
    PollInput in = unchanged_input(digest);
    in.use_checkpoint = true;
    in.evaluation = evaluation;
    bool hook_ran = false;
    auto r = fresh.record(in, [&](WriteTxn&, const Inventory&, PollSummary&) {
      hook_ran = true;
      return ok_status();
    });
    if (r.ok() && r->from_checkpoint) {
      EXPECT_FALSE(hook_ran);
    }
    clock_.advance(std::chrono::minutes(1));
    return r;
  }
  // A full list, recorded with an evaluation whose own time comes at `hook_due`.
  Result<PollSummary> poll_evaluated(InventoryRecorder& rec, const std::vector<Token>& tokens,
                                     const std::string& digest,
                                     Timestamp hook_due = Timestamp::max()) {
    PollInput in = listed_input(tokens, digest);
    in.evaluation = "eval-1";
    auto r = rec.record_input(in, [&](WriteTxn&, const Inventory&, PollSummary& s) {
      s.hook_due = hook_due;
      return ok_status();
    });
    clock_.advance(std::chrono::minutes(1));
    return r;
  }
};

TEST_F(CheckpointTest, ANewProcessRecordsAnUnchangedListFromTheCheckpoint) {
  ASSERT_TRUE(poll_evaluated(rec_, make_tokens(4), "digest-1").ok());
  const std::int64_t audit_before = audit_rows();
  InventoryRecorder fresh(*store_);
  EXPECT_EQ(fresh.known_digest("prod"), "");
  EXPECT_EQ(fresh.saved_digest("prod", clock_.now(), "eval-1"), "digest-1");
  EXPECT_EQ(fresh.saved_digest("prod", clock_.now(), "eval-2"), "") << "another evaluation";
  EXPECT_EQ(fresh.saved_digest("other", clock_.now(), "eval-1"), "");
  auto s = fresh_unchanged("digest-1");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(s->from_checkpoint);
  EXPECT_FALSE(s->needs_full_list);
  EXPECT_EQ(s->outcome, PollOutcome::kOk);
  EXPECT_EQ(s->token_count, 4u);
  EXPECT_GT(s->poll_id, 0);
  EXPECT_EQ(audit_rows(), audit_before);
  EXPECT_EQ(poll_rows(), 2);
  EXPECT_EQ(count("SELECT token_count FROM polls ORDER BY id DESC LIMIT 1"), 4);
  // The checkpoint now describes that poll: the next new process uses it too.
  auto again = fresh_unchanged("digest-1");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->from_checkpoint);
  EXPECT_EQ(poll_rows(), 3);
  // A process holding the inventory sees polls it did not write and compares in full.
  EXPECT_TRUE(poll_unchanged(rec_, "digest-1")->needs_full_list);
  EXPECT_TRUE(chain_ok());
}

TEST_F(CheckpointTest, ItStandsOnlyForTheSameBytesEvaluationAndLog) {
  ASSERT_TRUE(poll_evaluated(rec_, make_tokens(3), "digest-1").ok());
  EXPECT_TRUE(fresh_unchanged("digest-2")->needs_full_list) << "other bytes";
  EXPECT_TRUE(fresh_unchanged("digest-1", "eval-2")->needs_full_list) << "other policies";
  InventoryRecorder fresh(*store_);
  EXPECT_TRUE(poll_unchanged(fresh, "digest-1")->needs_full_list) << "not asked to use it";
  EXPECT_EQ(poll_rows(), 1) << "nothing is written for a poll that needs the full list";
  // Any event appended since — here another process's failed poll — makes it stale.
  ASSERT_TRUE(poll(rec_, nullptr).ok());
  EXPECT_TRUE(fresh_unchanged("digest-1")->needs_full_list);
  // A full compare saves a new one.
  ASSERT_TRUE(poll_evaluated(fresh, make_tokens(3), "digest-1").ok());
  EXPECT_TRUE(fresh_unchanged("digest-1")->from_checkpoint);
}

TEST_F(CheckpointTest, ItsTimeComingNeedsTheFullList) {
  auto tokens = make_tokens(2);
  tokens[1].expires_at = clock_.now() + std::chrono::minutes(3);
  ASSERT_TRUE(poll_evaluated(rec_, tokens, "digest-1").ok());
  InventoryRecorder fresh(*store_);
  EXPECT_EQ(fresh.saved_digest("prod", clock_.now() + std::chrono::minutes(5), "eval-1"), "")
      << "not for a poll that could end after the expiry";
  EXPECT_TRUE(fresh_unchanged("digest-1")->from_checkpoint);
  clock_.advance(std::chrono::minutes(2));  // past the expiry
  EXPECT_TRUE(fresh_unchanged("digest-1")->needs_full_list);
  auto full = poll_evaluated(fresh, tokens, "digest-1");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(n(full->events, EventKind::kTokenExpired), 1);
  // The hook's own time (a policy verdict, an action coming due) counts the same way.
  ASSERT_TRUE(
      poll_evaluated(fresh, tokens, "digest-3", clock_.now() + std::chrono::minutes(2)).ok());
  EXPECT_TRUE(fresh_unchanged("digest-3")->from_checkpoint);
  clock_.advance(std::chrono::minutes(1));  // the hook's time has come
  EXPECT_TRUE(fresh_unchanged("digest-3")->needs_full_list);
}

TEST_F(RecorderTest, HookSeesTheEventsOfItsPoll) {
  auto tokens = make_tokens(2);
  poll_ok(rec_, tokens);
  tokens.push_back(make_token("fresh"));
  std::int64_t created_seen = -1;
  auto r = poll(rec_, &tokens, "prod", 50, false, [&](WriteTxn&, const Inventory&, PollSummary& s) {
    created_seen = n(s.events, EventKind::kTokenCreated);
    return ok_status();
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(created_seen, 1) << "a hook deciding whether to re-evaluate needs this poll's changes";
}

}  // namespace
}  // namespace tw::storage
