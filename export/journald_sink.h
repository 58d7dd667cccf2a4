#pragma once
// The `journald` export sink: each audit event as one journal entry over the journal's native
// protocol (systemd.journal-fields(7), "Native Journal Protocol"), so `journalctl
// MESSAGE_ID=<id>` and Loki/Promtail pipelines can select events by kind and by field.
//
// Fields of every entry: MESSAGE (one readable line), MESSAGE_ID (one fixed 128-bit id per
// event kind, listed in systemd/tokenwarden.catalog), PRIORITY, SYSLOG_IDENTIFIER=tokenwarden,
// TOKENWARDEN_SEQ, TOKENWARDEN_EVENT, TOKENWARDEN_RECORDED_AT, TOKENWARDEN_CLUSTER and
// TOKENWARDEN_TOKEN_ID (when set), TOKENWARDEN_DETAIL, TOKENWARDEN_PREV_HASH, TOKENWARDEN_HASH
// and TOKENWARDEN_EXPORT (the export line, storage/export_log.h: `journalctl -o cat
// --output-fields=TOKENWARDEN_EXPORT` yields a file `verify --export` reads).
//
// Values holding a newline or other control bytes use the protocol's binary form (name, "\n",
// 64-bit little-endian length, bytes, "\n"), so any detail survives byte for byte. An entry too
// large for one datagram is passed in a sealed memfd, as libsystemd does.
//
// Thread safety: one exporter thread. Errors: kIo naming the socket.

#include <atomic>
#include <string>
#include <string_view>

#include "export/sink.h"

namespace tw::exporting {

// The MESSAGE_ID of an event kind: 32 lowercase hex digits, the first 128 bits of
// SHA-256("tokenwarden event " + name) with the UUID version-4 and variant bits set.
std::string journal_message_id(std::string_view event);

// Appends one field in the native protocol's encoding.
void append_journal_field(std::string& out, std::string_view name, std::string_view value);
// One entry's datagram.
std::string encode_journal_entry(const storage::AuditRow& row);

class JournaldSink : public Sink {
 public:
  explicit JournaldSink(std::string socket_path);
  ~JournaldSink() override;
  Status deliver(std::span<const storage::AuditRow> rows) override;
  void reopen() override;
  std::string target() const override { return "journald:" + socket_path_; }

 private:
  Status send_entry(const std::string& datagram);
  std::string socket_path_;
  int fd_ = -1;
  std::atomic<bool> reopen_{false};
};

}  // namespace tw::exporting
