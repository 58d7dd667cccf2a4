// The file sink: appends JSON lines, reads back where it stands (a torn last line is cut off),
// and reopens its path after logrotate moved the file away.
#include "export/file_sink.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "storage/export_log.h"
#include "tests/unit/core/test_support.h"

namespace tw::exporting {
namespace {

using tw::testing::read_file;
using tw::testing::TempDir;

std::vector<storage::AuditRow> rows(std::int64_t from, std::int64_t to) {
  std::vector<storage::AuditRow> out;
  for (auto seq = from; seq <= to; ++seq) {
    storage::AuditRow r;
    r.seq = seq;
    r.recorded_at = "2026-01-01T00:00:00Z";
    r.event = "poll_succeeded";
    r.cluster = "prod";
    r.detail = "{\"n\":" + std::to_string(seq) + "}";
    r.prev_hash = std::string(64, '0');
    r.hash = std::string(64, '1');
    out.push_back(r);
  }
  return out;
}

std::string lines(const std::vector<storage::AuditRow>& rs) {
  std::string out;
  for (const auto& r : rs) out += storage::export_line(r) + "\n";
  return out;
}

// The seq of the sink's resume point (nullopt: none), which must not fail.
std::optional<std::int64_t> resume_seq(FileSink& sink) {
  auto at = sink.resume_point();
  EXPECT_TRUE(at.ok()) << at.error().message;
  if (!at.ok() || !*at) return std::nullopt;
  return (*at)->seq;
}

TEST(FileSink, AppendsOneLinePerEventWithMode0640) {
  TempDir dir;
  const std::string path = dir.file("audit.jsonl");
  FileSink sink(path);
  EXPECT_EQ(sink.target(), "file:" + path);
  EXPECT_EQ(resume_seq(sink), std::nullopt);  // empty file
  ASSERT_TRUE(sink.deliver(rows(1, 2)).ok());
  ASSERT_TRUE(sink.deliver(rows(3, 3)).ok());
  EXPECT_EQ(read_file(path), lines(rows(1, 3)));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(resume_seq(sink), 3);
  EXPECT_EQ((*sink.resume_point())->hash, std::string(64, '1'));
}

TEST(FileSink, ANewFileIs0640WhateverTheUmaskAndAnExistingOneKeepsItsMode) {
  TempDir dir;
  const mode_t old = ::umask(077);
  FileSink sink(dir.file("new.jsonl"));
  ASSERT_TRUE(sink.deliver(rows(1, 1)).ok());
  const std::string existing = dir.write("existing.jsonl", "", 0600);
  FileSink other(existing);
  ASSERT_TRUE(other.deliver(rows(1, 1)).ok());
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("new.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_EQ(::stat(existing.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileSink, ResumePointCutsATornLastLineOff) {
  TempDir dir;
  const std::string whole = lines(rows(1, 5));
  const std::string torn = storage::export_line(rows(6, 6)[0]).substr(0, 40);
  const std::string path = dir.write("audit.jsonl", whole + torn, 0640);
  FileSink sink(path);
  EXPECT_EQ(resume_seq(sink), 5);
  EXPECT_EQ(read_file(path), whole);
  ASSERT_TRUE(sink.deliver(rows(6, 7)).ok());
  EXPECT_EQ(read_file(path), lines(rows(1, 7)));
}

TEST(FileSink, AForeignFileWithoutANewlineIsNeitherTruncatedNorAppendedTo) {
  TempDir dir;
  const std::string path = dir.write("notes.txt", "precious data without a newline", 0640);
  FileSink sink(path);
  auto at = sink.resume_point();
  ASSERT_FALSE(at.ok());
  EXPECT_NE(at.error().message.find(path), std::string::npos);
  EXPECT_FALSE(sink.deliver(rows(1, 1)).ok());
  EXPECT_EQ(read_file(path), "precious data without a newline");
}

TEST(FileSink, ATornLookingTailAfterAForeignLineIsNotCut) {
  TempDir dir;
  const std::string content = "some log line\n{\"seq\":12,\"recorded_at";
  const std::string path = dir.write("other.log", content, 0640);
  FileSink sink(path);
  EXPECT_FALSE(sink.resume_point().ok());
  EXPECT_FALSE(sink.deliver(rows(1, 1)).ok());
  EXPECT_EQ(read_file(path), content);
}

TEST(FileSink, AFileNotEndingWithAnExportLineIsRefused) {
  TempDir dir;
  const std::string path = dir.write("other.log", "a\nb\n", 0640);
  FileSink sink(path);
  auto at = sink.resume_point();
  ASSERT_FALSE(at.ok());
  EXPECT_EQ(at.error().code, ErrorCode::kIo);
  EXPECT_EQ(read_file(path), "a\nb\n");
}

TEST(FileSink, ATornFirstLineIsCut) {
  TempDir dir;
  const std::string torn = storage::export_line(rows(1, 1)[0]).substr(0, 30);
  const std::string path = dir.write("audit.jsonl", torn, 0640);
  FileSink sink(path);
  EXPECT_EQ(resume_seq(sink), std::nullopt);
  EXPECT_EQ(read_file(path), "");
}

TEST(FileSink, ReopenAfterRotationStartsANewFile) {
  TempDir dir;
  const std::string path = dir.file("audit.jsonl");
  FileSink sink(path);
  ASSERT_TRUE(sink.deliver(rows(1, 2)).ok());
  std::filesystem::rename(path, dir.file("audit.jsonl.1"));
  sink.reopen();
  EXPECT_EQ(resume_seq(sink), std::nullopt);  // the new file is empty: resume from the cursor
  ASSERT_TRUE(sink.deliver(rows(3, 4)).ok());
  EXPECT_EQ(read_file(dir.file("audit.jsonl.1")), lines(rows(1, 2)));
  EXPECT_EQ(read_file(path), lines(rows(3, 4)));
}

TEST(FileSink, WithoutReopenARotatedFileKeepsReceiving) {
  TempDir dir;
  const std::string path = dir.file("audit.jsonl");
  FileSink sink(path);
  ASSERT_TRUE(sink.deliver(rows(1, 1)).ok());
  std::filesystem::rename(path, dir.file("old"));
  ASSERT_TRUE(sink.deliver(rows(2, 2)).ok());
  EXPECT_EQ(read_file(dir.file("old")), lines(rows(1, 2)));
}

TEST(FileSink, FailsNamingThePath) {
  TempDir dir;
  FileSink sink(dir.file("missing/dir/audit.jsonl"));
  auto s = sink.deliver(rows(1, 1));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_NE(s.error().message.find("missing/dir/audit.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace tw::exporting
