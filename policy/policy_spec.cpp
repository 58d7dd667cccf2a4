#include "policy/policy_spec.h"

#include <re2/re2.h>

#include <array>

#include "core/strings.h"

namespace tw::policy {
namespace {

constexpr std::array<std::string_view, 8> kKinds{"max_lifetime",    "max_age",
                                                 "forbidden_grant", "all_databases_grant",
                                                 "max_databases",   "description_pattern",
                                                 "expires_soon",    "orphaned"};
constexpr std::array<std::string_view, 3> kSeverities{"info", "warning", "critical"};
constexpr std::array<std::string_view, 3> kActions{"alert", "restrict", "revoke"};
constexpr std::array<std::string_view, 2> kModes{"enforce", "monitor"};

template <class E, std::size_t N>
std::optional<E> lookup(const std::array<std::string_view, N>& names, std::string_view s) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(Kind k) { return kKinds[static_cast<std::size_t>(k)]; }
std::string_view to_string(Severity s) { return kSeverities[static_cast<std::size_t>(s)]; }
std::string_view to_string(Action a) { return kActions[static_cast<std::size_t>(a)]; }
std::string_view to_string(Mode m) { return kModes[static_cast<std::size_t>(m)]; }
std::optional<Kind> parse_kind(std::string_view s) { return lookup<Kind>(kKinds, s); }
std::optional<Severity> parse_severity(std::string_view s) {
  return lookup<Severity>(kSeverities, s);
}
std::optional<Action> parse_action(std::string_view s) { return lookup<Action>(kActions, s); }
std::optional<Mode> parse_mode(std::string_view s) { return lookup<Mode>(kModes, s); }

Status validate_regex(std::string_view pattern) {
  RE2::Options opts;
  opts.set_log_errors(false);
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), opts);
  if (!re.ok()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "invalid regular expression \"" + printable(pattern, 100) +
                          "\": " + re.error() + " (RE2 syntax: no backreferences or lookaround)");
  }
  return ok_status();
}

}  // namespace tw::policy
