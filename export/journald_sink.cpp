#include "export/journald_sink.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/sha256.h"
#include "core/strings.h"
#include "export/syslog_sink.h"
#include "storage/export_log.h"

namespace tw::exporting {

std::string journal_message_id(std::string_view event) {
  std::string id = sha256_hex("tokenwarden event " + std::string(event)).substr(0, 32);
  id[12] = '4';  // UUID version 4
  static constexpr char kVariant[] = "89ab";
  id[16] = kVariant[std::string_view("0123456789abcdef").find(id[16]) & 3];
  return id;
}

void append_journal_field(std::string& out, std::string_view name, std::string_view value) {
  bool binary = false;
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 && ch != '\t') {
      binary = true;
      break;
    }
  }
  out += name;
  if (!binary) {
    out += '=';
    out += value;
    out += '\n';
    return;
  }
  out += '\n';
  std::uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += value;
  out += '\n';
}

namespace {

std::string readable(const storage::AuditRow& row) {
  std::string m = "audit seq " + std::to_string(row.seq) + ": " + row.event;
  if (row.cluster) m += " cluster=" + printable(*row.cluster, 100);
  if (row.token_id) m += " token=" + printable(*row.token_id, 100);
  return m;
}

}  // namespace

std::string encode_journal_entry(const storage::AuditRow& row) {
  std::string out;
  out.reserve(2 * row.detail.size() + 1024);
  append_journal_field(out, "MESSAGE", readable(row));
  append_journal_field(out, "MESSAGE_ID", journal_message_id(row.event));
  append_journal_field(out, "PRIORITY", std::to_string(syslog_severity(row.event)));
  append_journal_field(out, "SYSLOG_IDENTIFIER", "tokenwarden");
  append_journal_field(out, "TOKENWARDEN_SEQ", std::to_string(row.seq));
  append_journal_field(out, "TOKENWARDEN_EVENT", row.event);
  append_journal_field(out, "TOKENWARDEN_RECORDED_AT", row.recorded_at);
  if (row.cluster) append_journal_field(out, "TOKENWARDEN_CLUSTER", *row.cluster);
  if (row.token_id) append_journal_field(out, "TOKENWARDEN_TOKEN_ID", *row.token_id);
  append_journal_field(out, "TOKENWARDEN_DETAIL", row.detail);
  append_journal_field(out, "TOKENWARDEN_PREV_HASH", row.prev_hash);
  append_journal_field(out, "TOKENWARDEN_HASH", row.hash);
  append_journal_field(out, "TOKENWARDEN_EXPORT", storage::export_line(row));
  return out;
}

JournaldSink::JournaldSink(std::string socket_path) : socket_path_(std::move(socket_path)) {}

JournaldSink::~JournaldSink() {
  if (fd_ >= 0) ::close(fd_);
}

void JournaldSink::reopen() { reopen_.store(true); }

Status JournaldSink::deliver(std::span<const storage::AuditRow> rows) {
  if (reopen_.exchange(false) && fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      return make_error(ErrorCode::kIo,
                        target() + ": cannot create a socket: " + std::strerror(errno));
    }
    // A journald that stops reading must not hold the exporter thread (and the gate) forever:
    // a send blocked for 5 s fails (EAGAIN) and is retried with backoff.
    const timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  for (const auto& row : rows) TW_RETURN_IF_ERROR(send_entry(encode_journal_entry(row)));
  return ok_status();
}

namespace {

bool fill_address(const std::string& path, sockaddr_un& addr, socklen_t& len) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

// An entry too large for a datagram: written to a sealed memfd whose descriptor is sent alone.
int sealed_memfd(const std::string& datagram) {
  int mfd = ::memfd_create("tokenwarden-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return -1;
  std::size_t done = 0;
  while (done < datagram.size()) {
    ssize_t n = ::write(mfd, datagram.data() + done, datagram.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(mfd);
      return -1;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
    ::close(mfd);
    return -1;
  }
  return mfd;
}

}  // namespace

Status JournaldSink::send_entry(const std::string& datagram) {
  sockaddr_un addr{};
  socklen_t len = 0;
  if (!fill_address(socket_path_, addr, len)) {
    return make_error(ErrorCode::kIo, target() + ": the socket path is too long");
  }
  while (true) {
    ssize_t n = ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(&addr), len);
    if (n >= 0) return ok_status();
    if (errno == EINTR) continue;
    if (errno != EMSGSIZE && errno != ENOBUFS) break;
    int mfd = sealed_memfd(datagram);
    if (mfd < 0) break;
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = len;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &mfd, sizeof(int));
    ssize_t m = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    int saved = errno;
    ::close(mfd);
    if (m >= 0) return ok_status();
    errno = saved;
    break;
  }
  return make_error(ErrorCode::kIo,
                    target() + ": the journal did not take the entry: " + std::strerror(errno));
}

}  // namespace tw::exporting
