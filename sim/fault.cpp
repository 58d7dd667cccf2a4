#include "sim/fault.h"

#include <array>
#include <utility>

#include "core/strings.h"

namespace tw::sim {
namespace {

constexpr std::array<std::pair<FaultKind, const char*>, 9> kKinds{{
    {FaultKind::kStatus, "status"},
    {FaultKind::kTimeout, "timeout"},
    {FaultKind::kSlow, "slow"},
    {FaultKind::kTruncate, "truncate"},
    {FaultKind::kMalformed, "malformed"},
    {FaultKind::kEmpty, "empty"},
    {FaultKind::kReset, "reset"},
    {FaultKind::kIgnore, "ignore"},
    {FaultKind::kRedirect, "redirect"},
}};

}  // namespace

const char* to_string(FaultKind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "unknown";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (const auto& [k, n] : kKinds) {
    if (name == n) return k;
  }
  return std::nullopt;
}

const char* fault_kind_names() {
  return "status, timeout, slow, truncate, malformed, empty, reset, ignore, redirect";
}

bool fault_matches(const FaultSpec& spec, std::string_view method, std::string_view path) {
  if (!spec.method.empty() && to_lower(spec.method) != to_lower(method)) return false;
  if (spec.path.empty()) return true;
  if (spec.path.back() == '$') {
    std::string_view suffix = std::string_view(spec.path).substr(0, spec.path.size() - 1);
    return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
  }
  return path.find(spec.path) != std::string_view::npos;
}

}  // namespace tw::sim
