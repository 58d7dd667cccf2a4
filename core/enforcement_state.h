#pragma once
// The states of the violation lifecycle (SPEC §2 "Violation lifecycle", docs/policies.md) and the
// two destructive actions, shared by the pure planner (policy/planner.h) and the store
// (storage/enforcement.h), with the names stored in SQLite and written to audit details.
//
// Thread safety: plain enums and constant tables. Errors: parse_* return nullopt for unknown names.

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace tw {

enum class ViolationState {
  kOpen,
  kAwaitingApproval,
  kEnforcing,
  kEnforced,
  kFailed,
  kHalted,
  kSkipped,
  kResolved
};
enum class Resolution { kCompliant, kRevoked, kRestricted, kExempted, kRemoved, kPolicyRemoved };
enum class ActionState { kPlanned, kAwaitingApproval, kSucceeded, kFailed, kSkipped };
enum class ActionKind { kRestrict, kRevoke };

namespace enforcement_names {
inline constexpr std::array<std::string_view, 8> kViolationStates{
    "open",   "awaiting_approval", "enforcing", "enforced", "failed",
    "halted", "skipped",           "resolved"};
inline constexpr std::array<std::string_view, 6> kResolutions{
    "compliant", "revoked", "restricted", "exempted", "removed", "policy_removed"};
inline constexpr std::array<std::string_view, 5> kActionStates{"planned", "awaiting_approval",
                                                               "succeeded", "failed", "skipped"};
inline constexpr std::array<std::string_view, 2> kActionKinds{"restrict", "revoke"};

template <class E, std::size_t N>
constexpr std::optional<E> lookup(const std::array<std::string_view, N>& names,
                                  std::string_view s) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}
}  // namespace enforcement_names

constexpr std::string_view to_string(ViolationState s) {
  return enforcement_names::kViolationStates[static_cast<std::size_t>(s)];
}
constexpr std::string_view to_string(Resolution r) {
  return enforcement_names::kResolutions[static_cast<std::size_t>(r)];
}
constexpr std::string_view to_string(ActionState s) {
  return enforcement_names::kActionStates[static_cast<std::size_t>(s)];
}
constexpr std::string_view to_string(ActionKind k) {
  return enforcement_names::kActionKinds[static_cast<std::size_t>(k)];
}
constexpr std::optional<ViolationState> parse_violation_state(std::string_view s) {
  return enforcement_names::lookup<ViolationState>(enforcement_names::kViolationStates, s);
}
constexpr std::optional<Resolution> parse_resolution(std::string_view s) {
  return enforcement_names::lookup<Resolution>(enforcement_names::kResolutions, s);
}
constexpr std::optional<ActionState> parse_action_state(std::string_view s) {
  return enforcement_names::lookup<ActionState>(enforcement_names::kActionStates, s);
}
constexpr std::optional<ActionKind> parse_action_kind(std::string_view s) {
  return enforcement_names::lookup<ActionKind>(enforcement_names::kActionKinds, s);
}

}  // namespace tw
