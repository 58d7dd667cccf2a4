// The journald export sink: the native protocol's field encoding (text and binary-safe forms),
// the entry of one audit event, the MESSAGE_IDs against the shipped catalog, and delivery to a
// datagram socket — including an entry too large for a datagram, passed in a sealed memfd.

#include "export/journald_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/audit_event.h"
#include "storage/export_log.h"
#include "tests/unit/core/test_support.h"

namespace tw::exporting {
namespace {

using Fields = std::multimap<std::string, std::string>;

// Decodes a native-protocol datagram the way journald does; fails the test on malformed input.
Fields decode(std::string_view d) {
  Fields out;
  while (!d.empty()) {
    auto nl = d.find('\n');
    EXPECT_NE(nl, std::string_view::npos) << "unterminated field";
    if (nl == std::string_view::npos) break;
    auto line = d.substr(0, nl);
    auto eq = line.find('=');
    if (eq != std::string_view::npos) {
      out.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
      d.remove_prefix(nl + 1);
      continue;
    }
    std::string name(line);
    d.remove_prefix(nl + 1);
    EXPECT_GE(d.size(), 8u);
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 8; ++i)
      n |= std::uint64_t(static_cast<unsigned char>(d[i])) << (8 * i);
    d.remove_prefix(8);
    EXPECT_GE(d.size(), n + 1);
    out.emplace(name, std::string(d.substr(0, n)));
    EXPECT_EQ(d[n], '\n');
    d.remove_prefix(n + 1);
  }
  return out;
}

std::string field(const Fields& f, const std::string& name) {
  auto it = f.find(name);
  return it == f.end() ? std::string("<absent>") : it->second;
}

storage::AuditRow row(std::int64_t seq, std::string event = "token_created") {
  storage::AuditRow r;
  r.seq = seq;
  r.recorded_at = "2026-12-07T08:00:00.000Z";
  r.cluster = "prod-eu";
  r.token_id = "tok-" + std::to_string(seq);
  r.event = std::move(event);
  r.detail = R"({"description":"ci \"writer\"","status":"active"})";
  r.prev_hash = std::string(64, 'a');
  r.hash = std::string(64, 'b');
  return r;
}

TEST(JournalField, PlainValuesAreNameEqualsValue) {
  std::string out;
  append_journal_field(out, "A", "b c\td");
  append_journal_field(out, "EMPTY", "");
  EXPECT_EQ(out, "A=b c\td\nEMPTY=\n");
}

TEST(JournalField, ValuesWithControlBytesUseTheBinaryForm) {
  for (std::string value : {std::string("x\ny"), std::string("nul\0byte", 8), std::string("\r")}) {
    std::string out;
    append_journal_field(out, "F", value);
    std::string expected = "F\n";
    std::uint64_t n = value.size();
    for (int i = 0; i < 8; ++i) expected += static_cast<char>((n >> (8 * i)) & 0xff);
    expected += value + "\n";
    EXPECT_EQ(out, expected);
    EXPECT_EQ(field(decode(out), "F"), value);
  }
}

TEST(JournalEntry, CarriesTheEventsFieldsAndItsExportLine) {
  auto r = row(42);
  auto f = decode(encode_journal_entry(r));
  EXPECT_EQ(field(f, "MESSAGE"), "audit seq 42: token_created cluster=prod-eu token=tok-42");
  EXPECT_EQ(field(f, "MESSAGE_ID"), journal_message_id("token_created"));
  EXPECT_EQ(field(f, "PRIORITY"), "6");
  EXPECT_EQ(field(f, "SYSLOG_IDENTIFIER"), "tokenwarden");
  EXPECT_EQ(field(f, "TOKENWARDEN_SEQ"), "42");
  EXPECT_EQ(field(f, "TOKENWARDEN_EVENT"), "token_created");
  EXPECT_EQ(field(f, "TOKENWARDEN_RECORDED_AT"), r.recorded_at);
  EXPECT_EQ(field(f, "TOKENWARDEN_CLUSTER"), "prod-eu");
  EXPECT_EQ(field(f, "TOKENWARDEN_TOKEN_ID"), "tok-42");
  EXPECT_EQ(field(f, "TOKENWARDEN_DETAIL"), r.detail);
  EXPECT_EQ(field(f, "TOKENWARDEN_PREV_HASH"), r.prev_hash);
  EXPECT_EQ(field(f, "TOKENWARDEN_HASH"), r.hash);
  EXPECT_EQ(field(f, "TOKENWARDEN_EXPORT"), storage::export_line(r));
  auto back = storage::parse_export_line(field(f, "TOKENWARDEN_EXPORT"));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->detail, r.detail);
  EXPECT_EQ(f.size(), 13u);
}

TEST(JournalEntry, DaemonEventsHaveNoClusterOrTokenFieldAndWarningsHaveTheirPriority) {
  auto r = row(1, "action_failed");
  r.cluster.reset();
  r.token_id.reset();
  auto f = decode(encode_journal_entry(r));
  EXPECT_EQ(f.count("TOKENWARDEN_CLUSTER"), 0u);
  EXPECT_EQ(f.count("TOKENWARDEN_TOKEN_ID"), 0u);
  EXPECT_EQ(field(f, "MESSAGE"), "audit seq 1: action_failed");
  EXPECT_EQ(field(f, "PRIORITY"), "4");
}

TEST(JournalEntry, HostileValuesSurviveByteForByte) {
  auto r = row(7);
  r.token_id = std::string("id\nMESSAGE_ID=forged\n", 21);
  r.detail = std::string("{\"d\":\"\x01\x02\"}\nPRIORITY=0", 22);
  auto f = decode(encode_journal_entry(r));
  EXPECT_EQ(field(f, "TOKENWARDEN_TOKEN_ID"), *r.token_id);
  EXPECT_EQ(field(f, "TOKENWARDEN_DETAIL"), r.detail);
  EXPECT_EQ(f.count("MESSAGE_ID"), 1u);
  EXPECT_EQ(field(f, "MESSAGE_ID"), journal_message_id("token_created"));
  EXPECT_EQ(f.count("PRIORITY"), 1u);
  EXPECT_EQ(field(f, "MESSAGE"),
            "audit seq 7: token_created cluster=prod-eu token=id\\nMESSAGE_ID=forged\\n");
}

TEST(JournalMessageId, IsAFixedVersion4IdPerEventKind) {
  std::set<std::string> ids;
  for (int k = 0; k < kEventKindCount; ++k) {
    auto id = journal_message_id(to_string(static_cast<EventKind>(k)));
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")))
        << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kEventKindCount));
  // The ids are a contract (journalctl MESSAGE_ID=…, Loki selectors): they never change.
  EXPECT_EQ(journal_message_id("token_discovered"), "da51ece36eb44e40b32cdad46a8a8749");
}

TEST(JournalCatalog, ListsEveryEventKindWithItsMessageId) {
  std::ifstream in(TW_JOURNAL_CATALOG);
  ASSERT_TRUE(in) << TW_JOURNAL_CATALOG;
  std::map<std::string, std::string> subject_of;  // id -> subject
  std::string line, id;
  while (std::getline(in, line)) {
    if (line.rfind("-- ", 0) == 0) id = line.substr(3);
    if (line.rfind("Subject: ", 0) == 0) subject_of[id] = line.substr(9);
  }
  EXPECT_EQ(subject_of.size(), static_cast<std::size_t>(kEventKindCount));
  for (int k = 0; k < kEventKindCount; ++k) {
    std::string name(to_string(static_cast<EventKind>(k)));
    auto it = subject_of.find(journal_message_id(name));
    ASSERT_NE(it, subject_of.end()) << name << " is not in the catalog";
    EXPECT_EQ(it->second.rfind("audit event " + name + ": ", 0), 0u) << it->second;
  }
}

// A datagram socket standing in for journald's.
class FakeJournal {
 public:
  explicit FakeJournal(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  }
  ~FakeJournal() { ::close(fd_); }
  // One entry: the datagram, or the content of the memfd passed with an empty datagram.
  std::string receive() {
    via_memfd = false;
    std::string buf(1 << 20, '\0');
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0) return "<nothing>";
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr && c->cmsg_type == SCM_RIGHTS) {
      int mfd = -1;
      std::memcpy(&mfd, CMSG_DATA(c), sizeof mfd);
      EXPECT_NE(::fcntl(mfd, F_GET_SEALS) & F_SEAL_WRITE, 0) << "the memfd is not sealed";
      std::string content;
      char chunk[65536];
      ssize_t m;
      while ((m = ::pread(mfd, chunk, sizeof chunk, static_cast<off_t>(content.size()))) > 0) {
        content.append(chunk, static_cast<std::size_t>(m));
      }
      ::close(mfd);
      via_memfd = true;
      return content;
    }
    buf.resize(static_cast<std::size_t>(n));
    return buf;
  }

  bool via_memfd = false;  // the last entry came as a memfd

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(JournaldSink, DeliversOneDatagramPerEventInOrder) {
  testing::TempDir dir;
  const std::string socket = (dir.path() / "socket").string();
  FakeJournal journal(socket);
  JournaldSink sink(socket);
  EXPECT_EQ(sink.target(), "journald:" + socket);
  std::vector<storage::AuditRow> rows{row(1), row(2), row(3)};
  ASSERT_TRUE(sink.deliver(rows).ok());
  for (std::int64_t seq = 1; seq <= 3; ++seq) {
    EXPECT_EQ(field(decode(journal.receive()), "TOKENWARDEN_SEQ"), std::to_string(seq));
    EXPECT_FALSE(journal.via_memfd);
  }
  EXPECT_EQ(journal.receive(), "<nothing>");
  sink.reopen();  // SIGHUP: a new socket, same destination
  ASSERT_TRUE(sink.deliver(std::vector<storage::AuditRow>{row(4)}).ok());
  EXPECT_EQ(field(decode(journal.receive()), "TOKENWARDEN_SEQ"), "4");
}

TEST(JournaldSink, AnEntryTooLargeForADatagramGoesThroughASealedMemfd) {
  testing::TempDir dir;
  const std::string socket = (dir.path() / "socket").string();
  FakeJournal journal(socket);
  JournaldSink sink(socket);
  auto big = row(9);
  big.detail = "{\"description\":\"" + std::string(600 * 1024, 'x') + "\"}";
  ASSERT_TRUE(sink.deliver(std::vector<storage::AuditRow>{big}).ok());
  auto f = decode(journal.receive());
  EXPECT_TRUE(journal.via_memfd);
  EXPECT_EQ(field(f, "TOKENWARDEN_DETAIL"), big.detail);
  EXPECT_EQ(field(f, "TOKENWARDEN_SEQ"), "9");
}

TEST(JournaldSink, NoJournalIsAnIoErrorNamingTheSocket) {
  testing::TempDir dir;
  const std::string absent = (dir.path() / "absent").string();
  JournaldSink sink(absent);
  auto s = sink.deliver(std::vector<storage::AuditRow>{row(1)});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_NE(s.error().message.find(absent), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("did not take the entry"), std::string::npos);
}

}  // namespace
}  // namespace tw::exporting
