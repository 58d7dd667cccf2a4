#pragma once
// The `syslog` export sink: each audit event as one RFC 5424 record over TCP with RFC 6587
// octet-counting framing ("LEN SP MSG"), optionally over TLS (RFC 5425), to a collector such as
// rsyslog (imtcp) or syslog-ng (docs/audit-export.md).
//
// A record: <PRI>1 TIMESTAMP HOSTNAME tokenwarden PROCID MSGID [tokenwarden@32473 seq="…"
// event="…" cluster="…" token_id="…" prev_hash="…" hash="…"] MSG
// PRI is facility 13 (log audit) with a severity by event kind; TIMESTAMP the event's
// recorded_at; MSGID the event name; cluster and token_id are omitted when absent; 32473 is the
// private enterprise number RFC 5612 reserves for documentation. MSG is exactly the export line
// (storage/export_log.h, no BOM), so a collector that stores the message, one a line, yields a
// file `tokenwarden verify --export` reads.
//
// A batch goes out in as few writes as the socket takes. Before each batch the sink checks
// whether the collector closed the connection (it then reconnects): without that, the first
// batch after a collector restart would be written into a dead connection and lost. Connect,
// TLS handshake and writes have a deadline (10 s). RFC 6587 has no acknowledgement, so the sink
// keeps what it sent until it can tell the collector read and kept it: on a connection still
// alive, a batch older than 2 s that is followed by what the collector's kernel has not
// acknowledged (SIOCOUTQ) plus 6 MiB (the default tcp_rmem maximum: what the collector's socket
// may hold unread); after an orderly close, what is older than 2 s (a collector shutting
// down may drop what it had just read, as rsyslog does); at most 32 MiB in all. What is kept is
// sent again, first, on the next connection when the collector went away, and settled_seq()
// stops before it, so the exporter's stored cursor does too: after a restart of the daemon the kept
// range is sent again from the database. The collector may see duplicates (at least once);
// records are never reordered or skipped. reopen() closes the connection in order: what was
// sent is then settled (the collector still reads it).
// With TLS the collector's certificate is verified against ca_file (the system store when
// empty) and the host of `address`; cert_file/key_file present a client certificate. A TLS 1.3
// collector refuses a client certificate only after the handshake: a new session waits 300 ms
// for such a refusal, so it fails the delivery instead of swallowing it.
//
// Thread safety: one exporter thread; reopen() from any thread.
// Errors: kNetwork, kTimeout or kIo with one sentence naming the collector (never a key).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "core/time.h"
#include "export/sink.h"

namespace tw::exporting {

struct SyslogOptions {
  std::string address;  // host:port
  bool tls = false;
  std::string ca_file, cert_file, key_file;
  Duration timeout = std::chrono::seconds(10);
};

// RFC 5424 §6.3.3: '"', '\' and ']' are escaped with a backslash.
std::string sd_escape(std::string_view value);
// The RFC 5424 severity of an event kind (4 warning, 5 notice, 6 informational).
int syslog_severity(std::string_view event);
// One RFC 5424 record (without framing). `hostname` and `procid` as the header carries them.
std::string syslog_record(const storage::AuditRow& row, std::string_view hostname,
                          std::string_view procid);
// RFC 6587 octet counting: the record's length in bytes, a space, the record.
void append_octet_counted(std::string& out, std::string_view record);
// The host name as RFC 5424 allows it (printable ASCII, at most 255 characters, "-" if none).
std::string syslog_hostname(std::string_view raw);

class SyslogSink : public Sink {
 public:
  explicit SyslogSink(SyslogOptions options);
  ~SyslogSink() override;
  SyslogSink(const SyslogSink&) = delete;
  SyslogSink& operator=(const SyslogSink&) = delete;

  Status deliver(std::span<const storage::AuditRow> rows) override;
  // Everything up to `sent` except what is still kept for resending.
  std::int64_t settled_seq(std::int64_t sent) override;
  void reopen() override { reopen_.store(true); }
  std::string target() const override;

 private:
  struct Conn;
  struct Sent {
    std::string bytes;  // framed records
    std::int64_t first_seq = 0;
    std::chrono::steady_clock::time_point at;
  };
  static constexpr std::chrono::seconds kSettle{2};
  static constexpr std::size_t kPeerAllowance = std::size_t{6} << 20;
  static constexpr std::size_t kMaxUnsettled = std::size_t{32} << 20;
  Status ensure_connected();
  enum class Settle { kAlive, kClosed, kAll };
  void settle(Settle how);
  SyslogOptions options_;
  std::string hostname_, procid_;
  std::unique_ptr<Conn> conn_;
  std::deque<Sent> unsettled_;  // sent, not yet known to be read by the collector
  std::size_t unsettled_bytes_ = 0;
  std::string spare_;  // the buffer of a settled batch, reused for the next one
  std::atomic<bool> reopen_{false};
};

}  // namespace tw::exporting
