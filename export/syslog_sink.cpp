#include "export/syslog_sink.h"

#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "storage/export_log.h"

namespace tw::exporting {

// ---- record formatting ------------------------------------------------------------------------

std::string sd_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

int syslog_severity(std::string_view event) {
  if (event == "action_failed" || event == "enforcement_halted" || event == "poll_suspect" ||
      event == "token_anomaly" || event == "config_rejected") {
    return 4;
  }
  if (event == "poll_failed" || event == "violation_opened") return 5;
  return 6;
}

namespace {

constexpr int kFacilityLogAudit = 13;

// MSGID: 1 to 32 printable US-ASCII characters (RFC 5424 §6.2.7), "-" otherwise.
std::string msgid(std::string_view event) {
  std::string out;
  for (char c : event.substr(0, 32)) {
    if (c < 33 || c > 126) return "-";
    out += c;
  }
  return out.empty() ? "-" : out;
}

void sd_param(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  out += sd_escape(value);
  out += '"';
}

}  // namespace

std::string syslog_hostname(std::string_view raw) {
  std::string out;
  for (char c : raw.substr(0, 255)) {
    if (c >= 33 && c <= 126) out += c;
  }
  return out.empty() ? "-" : out;
}

std::string syslog_record(const storage::AuditRow& row, std::string_view hostname,
                          std::string_view procid) {
  std::string out;
  out.reserve(2 * row.detail.size() + 640);
  out += '<';
  out += std::to_string(kFacilityLogAudit * 8 + syslog_severity(row.event));
  out += ">1 ";
  out += row.recorded_at.empty() ? std::string_view("-") : std::string_view(row.recorded_at);
  out += ' ';
  out += hostname;
  out += " tokenwarden ";
  out += procid;
  out += ' ';
  out += msgid(row.event);
  out += " [tokenwarden@32473";
  sd_param(out, "seq", std::to_string(row.seq));
  sd_param(out, "event", row.event);
  if (row.cluster) sd_param(out, "cluster", *row.cluster);
  if (row.token_id) sd_param(out, "token_id", *row.token_id);
  sd_param(out, "prev_hash", row.prev_hash);
  sd_param(out, "hash", row.hash);
  out += "] ";
  out += storage::export_line(row);
  return out;
}

void append_octet_counted(std::string& out, std::string_view record) {
  out += std::to_string(record.size());
  out += ' ';
  out += record;
}

// ---- the connection ---------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;
// How long a new TLS 1.3 session waits for the collector to refuse our certificate.
constexpr std::chrono::milliseconds kRefusalWindow{300};

struct HostPort {
  std::string host, port;
};

HostPort split_address(const std::string& address) {
  const auto colon = address.rfind(':');
  HostPort hp{address.substr(0, colon),
              colon == std::string::npos ? "" : address.substr(colon + 1)};
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  return hp;
}

int remaining_ms(Clock::time_point deadline) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

// Waits until fd is readable or writable; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let the next call report the error
  }
}

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "the TLS handshake failed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

struct SyslogSink::Conn {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  std::string peer;  // for messages
  // A reset is reported once (ECONNRESET); the socket reads as closed (EOF) after that, which
  // must not pass for the collector's orderly close: the state stays broken.
  bool broken = false;

  ~Conn() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }

  Error fail(ErrorCode code, const std::string& what) const {
    return make_error(code, "syslog collector " + peer + ": " + what);
  }

  Status tcp_connect(const HostPort& hp, Clock::time_point deadline) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res);
    if (rc != 0)
      return fail(ErrorCode::kNetwork, std::string("cannot resolve: ") + gai_strerror(rc));
    std::string last = "no address";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      const int s = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (s < 0) continue;
      int r = ::connect(s, a->ai_addr, a->ai_addrlen);
      if (r != 0 && errno == EINPROGRESS) {
        if (!wait_fd(s, POLLOUT, deadline)) {
          ::close(s);
          last = "connect timed out";
          continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
        errno = err;
        r = err == 0 ? 0 : -1;
      }
      if (r != 0) {
        last = std::strerror(errno);
        ::close(s);
        continue;
      }
      const int one = 1;
      ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fd = s;
      break;
    }
    ::freeaddrinfo(res);
    if (fd < 0) return fail(ErrorCode::kNetwork, "cannot connect: " + last);
    return ok_status();
  }

  Status tls_setup(const SyslogOptions& o, const HostPort& hp) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) return fail(ErrorCode::kNetwork, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int loaded = o.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr);
    if (loaded != 1) return fail(ErrorCode::kIo, "cannot load the CA file " + o.ca_file);
    if (!o.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1)
        return fail(ErrorCode::kIo, "cannot load the client certificate " + o.cert_file);
      if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();  // OpenSSL's reasons are not repeated: they may quote key material
        return fail(ErrorCode::kIo, "cannot load the client key " + o.key_file +
                                        " or it does not match the certificate");
      }
    }
    ssl = SSL_new(ctx);
    if (ssl == nullptr) return fail(ErrorCode::kNetwork, "cannot create a TLS session");
    SSL_set_fd(ssl, fd);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, hp.host.c_str()) != 1) {
      ERR_clear_error();
      // SNI (SSL_set_tlsext_host_name, a macro with an old-style cast).
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               static_cast<void*>(const_cast<char*>(hp.host.c_str())));
      if (SSL_set1_host(ssl, hp.host.c_str()) != 1) {
        ERR_clear_error();
        return fail(ErrorCode::kNetwork, "cannot set the host name to verify");
      }
    }
    return ok_status();
  }

  // Drives a non-blocking TLS call until it completes or the deadline passes.
  template <class F>
  Result<int> tls_call(F&& call, Clock::time_point deadline, const char* what) {
    while (true) {
      const int r = call();
      if (r > 0) return r;
      const int e = SSL_get_error(ssl, r);
      short ev = 0;
      if (e == SSL_ERROR_WANT_READ) ev = POLLIN;
      if (e == SSL_ERROR_WANT_WRITE) ev = POLLOUT;
      if (ev == 0) {
        const std::string why = e == SSL_ERROR_SYSCALL && errno != 0
                                    ? std::string(std::strerror(errno))
                                    : openssl_reason();
        return fail(ErrorCode::kNetwork, std::string(what) + " failed: " + why);
      }
      if (!wait_fd(fd, ev, deadline))
        return fail(ErrorCode::kTimeout, std::string(what) + " timed out");
    }
  }

  Status handshake(Clock::time_point deadline) {
    auto r = tls_call([&] { return SSL_connect(ssl); }, deadline, "the TLS handshake");
    if (!r.ok()) {
      const long v = SSL_get_verify_result(ssl);
      if (v != X509_V_OK) {
        return fail(ErrorCode::kNetwork, std::string("its certificate was not accepted: ") +
                                             X509_verify_cert_error_string(v));
      }
      return r.take_error();
    }
    return SSL_version(ssl) == TLS1_3_VERSION ? await_refusal() : ok_status();
  }

  // TLS 1.3: the collector checks our client certificate (or its absence) after the handshake
  // has completed on our side, and answers a refusal with an alert. Without waiting for it, every
  // batch would be written into a session the collector drops: a refused client would look
  // like a working export.
  Status await_refusal() {
    const auto until = Clock::now() + kRefusalWindow;
    char buf[512];
    while (wait_fd(fd, POLLIN, until)) {
      if (Clock::now() >= until) break;
      const int r = SSL_read(ssl, buf, sizeof buf);
      if (r > 0) continue;
      const int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;  // session tickets
      return fail(ErrorCode::kNetwork,
                  "it ended the TLS session after the handshake (a client certificate it does "
                  "not accept, or none?): " +
                      openssl_reason());
    }
    ERR_clear_error();
    return ok_status();
  }

  Status send_all(std::string_view data, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < data.size()) {
      const std::size_t chunk = std::min<std::size_t>(data.size() - done, 1 << 20);
      if (ssl != nullptr) {
        auto n =
            tls_call([&] { return SSL_write(ssl, data.data() + done, static_cast<int>(chunk)); },
                     deadline, "writing");
        if (!n.ok()) return n.take_error();
        done += static_cast<std::size_t>(*n);
        continue;
      }
      const auto n = ::send(fd, data.data() + done, chunk, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!wait_fd(fd, POLLOUT, deadline)) return fail(ErrorCode::kTimeout, "writing timed out");
      } else {
        return fail(ErrorCode::kNetwork, std::string("writing failed: ") + std::strerror(errno));
      }
    }
    return ok_status();
  }

  // Bytes written and not yet acknowledged by the collector's kernel (everything if unknown).
  std::size_t unacked(std::size_t all) const {
    int n = 0;
    if (::ioctl(fd, SIOCOUTQ, &n) != 0 || n < 0) return all;
    return static_cast<std::size_t>(n);
  }

  // What became of the connection since the last batch. The collector sends nothing on a syslog
  // connection but, with TLS, session tickets and close_notify. A collector that closes its
  // socket after reading everything sends FIN (kClosed); one that closes it with data still
  // unread — a restart in the middle of a batch — makes the kernel answer with RST (kBroken).
  enum class State { kAlive, kClosed, kBroken };
  State state() {
    if (!broken && observe() == State::kBroken) broken = true;
    return broken ? State::kBroken : last_;
  }

 private:
  State last_ = State::kAlive;
  State observe() {
    last_ = peek();
    return last_;
  }
  State peek() {
    char c;
    const auto n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return State::kClosed;
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? State::kAlive
                                                                       : State::kBroken;
    }
    char sink[4096];
    if (ssl == nullptr) {
      while (::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
      return State::kAlive;
    }
    while (true) {
      const int r = SSL_read(ssl, sink, sizeof sink);
      if (r > 0) continue;
      const int e = SSL_get_error(ssl, r);
      ERR_clear_error();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return State::kAlive;
      return e == SSL_ERROR_ZERO_RETURN ? State::kClosed : State::kBroken;
    }
  }
};

SyslogSink::SyslogSink(SyslogOptions options) : options_(std::move(options)) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  hostname_ = syslog_hostname(host);
  procid_ = std::to_string(::getpid());
}

SyslogSink::~SyslogSink() = default;

std::string SyslogSink::target() const {
  return std::string(options_.tls ? "syslog+tls://" : "syslog://") + options_.address;
}

// Drops what the collector has read. On a connection still alive: what was sent more than
// kSettle ago and is followed by the bytes its kernel has not acknowledged (SIOCOUTQ) plus
// kPeerAllowance (what its socket may hold unread). After an orderly close (FIN) the
// kernel had nothing unread, but a collector shutting down can still drop what it had just read
// (rsyslog does): only the last kSettle is kept then. `all`: we closed the connection ourselves
// (the collector still reads everything). Past kMaxUnsettled bytes, the oldest goes regardless.
void SyslogSink::settle(Settle how) {
  const auto now = Clock::now();
  const std::size_t unacked = how == Settle::kAlive && conn_ ? conn_->unacked(unsettled_bytes_) : 0;
  while (!unsettled_.empty()) {
    const Sent& oldest = unsettled_.front();
    const bool old = now - oldest.at > kSettle;
    const std::size_t after = unsettled_bytes_ - oldest.bytes.size();
    const bool alive_read = old && after >= unacked + kPeerAllowance;
    const bool read = how == Settle::kAll || (how == Settle::kClosed && old) ||
                      (how == Settle::kAlive && alive_read);
    if (!read && unsettled_bytes_ <= kMaxUnsettled) break;
    unsettled_bytes_ -= oldest.bytes.size();
    if (oldest.bytes.capacity() > spare_.capacity()) spare_ = std::move(unsettled_.front().bytes);
    unsettled_.pop_front();
  }
}

std::int64_t SyslogSink::settled_seq(std::int64_t sent) {
  if (conn_ && conn_->state() == Conn::State::kAlive) {
    if (reopen_.exchange(false)) {
      conn_.reset();  // our orderly close: the collector still reads what we sent
      settle(Settle::kAll);
    } else {
      settle(Settle::kAlive);
    }
  }
  return unsettled_.empty() ? sent : std::min(sent, unsettled_.front().first_seq - 1);
}

Status SyslogSink::ensure_connected() {
  if (reopen_.exchange(false) && conn_) {
    conn_.reset();  // our close: the collector still reads what we sent before it
    settle(Settle::kAll);
  }
  if (conn_) {
    switch (conn_->state()) {
      case Conn::State::kAlive:
        settle(Settle::kAlive);
        break;
      case Conn::State::kClosed:
        conn_.reset();
        settle(Settle::kClosed);
        break;
      case Conn::State::kBroken:
        conn_.reset();  // what was not settled may be lost: it is sent again below
        break;
    }
  }
  if (conn_) return ok_status();
  const auto deadline = Clock::now() + options_.timeout;
  const HostPort hp = split_address(options_.address);
  auto c = std::make_unique<Conn>();
  c->peer = options_.address;
  TW_RETURN_IF_ERROR(c->tcp_connect(hp, deadline));
  if (options_.tls) {
    TW_RETURN_IF_ERROR(c->tls_setup(options_, hp));
    TW_RETURN_IF_ERROR(c->handshake(deadline));
  }
  for (const auto& sent : unsettled_) {
    TW_RETURN_IF_ERROR(c->send_all(sent.bytes, Clock::now() + options_.timeout));
  }
  for (auto& sent : unsettled_) sent.at = Clock::now();
  conn_ = std::move(c);
  return ok_status();
}

Status SyslogSink::deliver(std::span<const storage::AuditRow> rows) {
  TW_RETURN_IF_ERROR(ensure_connected());
  std::string buf = std::move(spare_);  // a settled batch's buffer: its pages are warm
  spare_ = {};
  buf.clear();
  buf.reserve(rows.size() * 1200);
  for (const auto& row : rows) append_octet_counted(buf, syslog_record(row, hostname_, procid_));
  Status s = conn_->send_all(buf, Clock::now() + options_.timeout);
  if (!s.ok()) {
    conn_.reset();  // the exporter sends the batch again, on a new connection
    return s;
  }
  unsettled_bytes_ += buf.size();
  unsettled_.push_back({std::move(buf), rows.front().seq, Clock::now()});
  return ok_status();
}

}  // namespace tw::exporting
