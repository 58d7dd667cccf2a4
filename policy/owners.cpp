#include "policy/owners.h"

#include <re2/re2.h>

#include <optional>

#include "core/sha256.h"
#include "core/strings.h"

namespace tw::policy {

struct OwnerRules::Compiled {
  struct Rule {
    std::unique_ptr<RE2> regex;  // null: no description_regex
    int owner_group = -1;        // capture index of (?P<owner>…), -1 if none
    int team_group = -1;
    int groups = 0;
  };
  std::vector<Rule> rules;
};

OwnerRules::~OwnerRules() = default;

bool valid_owner_value(std::string_view value) {
  value = trim(value);
  if (value.empty() || value.size() > kMaxOwnerValue) return false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c == 0x7f) return false;
    const auto next = [&](std::size_t k) {
      return i + k < value.size() ? static_cast<unsigned char>(value[i + k]) : 0;
    };
    if (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) return false;  // C1 controls
    if (c == 0xe2 && next(1) == 0x80 && next(2) >= 0xa8 && next(2) <= 0xae)
      return false;  // U+2028..U+202E: separators, bidi embeddings and overrides
    if (c == 0xe2 && next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9)
      return false;  // U+2066..U+2069: bidi isolates
  }
  return true;
}

bool captures_owner(const std::string& regex) {
  RE2::Options opt;
  opt.set_log_errors(false);
  RE2 re(regex, opt);
  if (!re.ok()) return false;
  const auto& names = re.NamedCapturingGroups();
  return names.contains("owner") || names.contains("team");
}

namespace {

std::string rule_identity(const OwnerRuleSpec& r) {
  std::string s = r.name + '\x1f' + r.token_id + '\x1f' + r.description_regex + '\x1f' +
                  r.description_glob + '\x1f' + r.owner + '\x1f' + r.team + '\x1f' + r.contact;
  for (const auto& c : r.clusters) s += '\x1e' + c;
  for (const auto& [k, v] : r.labels) s += '\x1d' + k + '=' + v;
  return s;
}

// The value a named group captured, if usable; else the rule's own value.
std::string pick(const std::vector<re2::StringPiece>& groups, int index,
                 const std::string& fallback) {
  if (index > 0 && static_cast<std::size_t>(index) < groups.size()) {
    const auto& g = groups[static_cast<std::size_t>(index)];
    if (g.data() != nullptr) {
      std::string_view v(g.data(), g.size());
      if (valid_owner_value(v)) return std::string(trim(v));
    }
  }
  return fallback;
}

bool clusters_match(const OwnerRuleSpec& spec, std::string_view cluster) {
  if (spec.clusters.empty()) return true;
  for (const auto& g : spec.clusters) {
    if (glob_match(g, cluster)) return true;
  }
  return false;
}

}  // namespace

Result<std::shared_ptr<const OwnerRules>> OwnerRules::compile(std::vector<OwnerRuleSpec> rules) {
  std::shared_ptr<OwnerRules> set(new OwnerRules());
  set->compiled_ = std::make_unique<Compiled>();
  std::string identity;
  for (const auto& r : rules) {
    Compiled::Rule c;
    if (!r.description_regex.empty()) {
      RE2::Options opt;
      opt.set_log_errors(false);
      c.regex = std::make_unique<RE2>(r.description_regex, opt);
      if (!c.regex->ok()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "owner rule " + r.name + ": description_regex: " + c.regex->error());
      }
      const auto& names = c.regex->NamedCapturingGroups();
      if (auto it = names.find("owner"); it != names.end()) c.owner_group = it->second;
      if (auto it = names.find("team"); it != names.end()) c.team_group = it->second;
      c.groups = c.regex->NumberOfCapturingGroups();
    }
    set->compiled_->rules.push_back(std::move(c));
    identity += rule_identity(r);
    identity += '\n';
  }
  set->identity_ = sha256_hex(identity);
  set->specs_ = std::move(rules);
  return std::shared_ptr<const OwnerRules>(std::move(set));
}

const OwnerRuleSpec* OwnerRules::find(std::string_view name) const {
  for (const auto& r : specs_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

Ownership OwnerRules::resolve(std::string_view cluster, const Token& token) const {
  std::vector<re2::StringPiece> groups;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto& spec = specs_[i];
    const auto& c = compiled_->rules[i];
    if (!spec.token_id.empty() && spec.token_id != token.id) continue;
    if (!clusters_match(spec, cluster)) continue;
    if (!spec.description_glob.empty() && !glob_match(spec.description_glob, token.description))
      continue;
    Ownership o;
    o.owner = spec.owner;
    o.team = spec.team;
    if (c.regex) {
      groups.assign(static_cast<std::size_t>(c.groups) + 1, re2::StringPiece());
      const re2::StringPiece text(token.description.data(), token.description.size());
      if (!c.regex->Match(text, 0, text.size(), RE2::UNANCHORED, groups.data(),
                          static_cast<int>(groups.size()))) {
        continue;
      }
      o.owner = pick(groups, c.owner_group, spec.owner);
      o.team = pick(groups, c.team_group, spec.team);
      if (o.owner.empty() && o.team.empty()) continue;  // nothing usable was captured
    }
    o.contact = spec.contact;
    o.rule = spec.name;
    return o;
  }
  return {};
}

}  // namespace tw::policy
