#pragma once
// JSON codecs for the token shapes the sources send (SPEC §1, reference §2.3 and §3.3).
//
// Decoding (influx/json_reader.h: no DOM, no index, memory ≈ the tokens themselves) is tolerant
// of what real systems send: camelCase (REST) or snake_case (influxctl)
// keys, timestamps as RFC 3339 strings or {"seconds","nanos"} objects, unset timestamps absent,
// null or a placeholder (0001-01-01T00:00:00Z, 1970-01-01T00:00:00Z, "", {}; a placeholder
// createdAt is reported as a created_at_unset anomaly, core/time_anomaly.h), unknown fields, empty
// or null permission lists, invalid UTF-8 (replaced by U+FFFD). It is strict about what matters:
// the body must be one complete JSON array (or, for influxctl, `null`: no tokens), and every
// element must be an object with a non-empty string "id" and no id may repeat; otherwise the whole
// list is rejected, so the caller never acts on a partial inventory.
//
// Thread safety: pure functions (each call uses its own parser). Errors: Result with a
// one-sentence kParse message naming the element index and field.

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time_anomaly.h"
#include "core/token.h"

namespace tw::influx {

struct DecodedList {
  std::vector<Token> tokens;
  // Tokens whose createdAt was a placeholder for "unset" (read as no createdAt), in list order.
  std::vector<TimeAnomaly> anomalies;
  bool replaced_invalid_utf8 = false;  // the body had invalid UTF-8, replaced by U+FFFD
};

// How a list body may say "no tokens" besides `[]`.
enum class EmptyList {
  kArrayOnly,   // REST: the published spec answers a JSON array, always
  kNullOrArray  // influxctl: a Go CLI prints a nil slice as `null` (reference §A2)
};

Result<DecodedList> decode_token_list(std::string_view body,
                                      EmptyList empty = EmptyList::kArrayOnly);
// The digest identifying a list body (SHA-256, hex), for TokenList::digest.
std::string list_digest(std::string_view body);
// Decodes one token object (GET/PATCH responses, influxctl token get).
Result<Token> decode_token(std::string body);

// A management token as `influxctl management list --format json` prints it (reference §A4):
// the secret itself is never listed, only its first characters (`token_prefix`, "M.V1.+5Jk").
struct ManagementToken {
  std::string id;
  std::string token_prefix;
  std::string description;
  std::optional<Timestamp> created_at;
  std::optional<Timestamp> expires_at;
  std::optional<Timestamp> revoked_at;
};
// An array (or null: none) of management tokens; strict like decode_token_list.
Result<std::vector<ManagementToken>> decode_management_tokens(std::string_view body);

// {"permissions":[{"action":…,"resource":…},…]} for PATCH.
std::string encode_permissions_update(const std::vector<Permission>& permissions);
// {"code":…,"message":…} error bodies: the message, or "" if the body is not of that shape.
std::string decode_error_message(std::string_view body);

}  // namespace tw::influx
