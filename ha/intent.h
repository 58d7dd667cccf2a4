#pragma once
// An enforcement action's intent and outcome as the leader writes it to the coordination service
// (`<prefix>actions/<cluster>/<token id>/<policy>`, each segment percent-encoded): written with
// state "intent" before the first request, rewritten with the outcome after the read-back, both
// fenced on the leader key. Every instance mirrors the ones it did not write into its own audit
// log (`action_observed`), and a new leader reconciles the ones an earlier term left at
// "intent".
//
// The value is a JSON object; unknown fields are ignored and a value that is not ours (not an
// object, missing fields) decodes to nothing, so a foreign or damaged key cannot make anyone act.
//
// Thread safety: plain values and pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.h"

namespace tw::ha {

// States: "intent" (about to act), then "succeeded" / "failed" / "retry" (our attempt's outcome),
// or "reconciled" (a later leader read the token back after an intent was left open).
struct Intent {
  std::string cluster;
  std::string token_id;
  std::string policy;
  std::string action;  // revoke | restrict
  std::string state;
  std::int64_t term = 0;
  std::string instance;
  std::int64_t action_id = 0;  // in the writer's own database
  std::int64_t attempt = 0;
  Timestamp planned_at;
  Timestamp updated_at;
  std::string outcome;         // revoked, already_revoked, restricted, gone, deleted, not_done
  std::string error;           // a failed attempt's sentence
  std::int64_t from_term = 0;  // reconciled: the term that left it open
  std::string target;          // restrict: the wanted permissions (JSON array) for the read-back
};

std::string intents_prefix(std::string_view key_prefix);
std::string intent_key(std::string_view key_prefix, std::string_view cluster,
                       std::string_view token_id, std::string_view policy);
// '%', '/' and bytes outside printable ASCII become %XX.
std::string encode_segment(std::string_view s);

std::string encode_intent(const Intent& intent);
std::optional<Intent> decode_intent(std::string_view value);

}  // namespace tw::ha
