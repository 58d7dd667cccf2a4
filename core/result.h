#pragma once
// Result<T> and Status: expected failures as values.
//
// Every operation that can fail for reasons outside the program's control (network, HTTP status,
// JSON shape, SQLite busy or full, invalid configuration) returns a Result. Exceptions are kept
// for programmer errors and start-up failures. Error messages are one sentence meant for an
// operator; they never contain secrets (callers redact before constructing them).
//
// Thread safety: plain value types.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tw {

enum class ErrorCode {
  kInvalidArgument,  // bad input from the user or the configuration
  kNotFound,         // the thing asked for does not exist
  kParse,            // a peer sent data we could not read whole
  kNetwork,          // connection, TLS or protocol failure
  kTimeout,          // a deadline passed
  kHttpStatus,       // the peer answered with an unexpected HTTP status
  kDatabase,         // SQLite failed (busy, full, corrupt, ...)
  kIo,               // local file or process failure
  kUnsupported,      // the source cannot perform this operation
  kCancelled,        // shutdown interrupted the operation
  kInternal,         // a bug
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  int http_status = 0;  // set for kHttpStatus
  // How long the peer asked us to wait before the next request (HTTP 429/503 Retry-After);
  // unset when it did not say. The poller and the enforcer wait at least this long.
  std::optional<std::chrono::milliseconds> retry_after;
};

inline Error make_error(ErrorCode code, std::string message, int http_status = 0) {
  return Error{code, std::move(message), http_status, std::nullopt};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT implicit
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  T value_or(T fallback) const& { return ok() ? std::get<0>(v_) : std::move(fallback); }

  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : e_(std::move(error)) {}  // NOLINT implicit

  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }
  Error&& take_error() { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

using Status = Result<void>;

inline Status ok_status() { return Status{}; }

}  // namespace tw

// Propagates the error of an expression returning Result<...>/Status.
#define TW_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    auto tw_status_ = (expr);                             \
    if (!tw_status_.ok()) return tw_status_.take_error(); \
  } while (false)
