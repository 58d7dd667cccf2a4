#include "ha/intent.h"

#include <nlohmann/json.hpp>

namespace tw::ha {

std::string encode_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '%' || c == '/' || c <= 0x20 || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string intents_prefix(std::string_view key_prefix) {
  return std::string(key_prefix) + "actions/";
}

std::string intent_key(std::string_view key_prefix, std::string_view cluster,
                       std::string_view token_id, std::string_view policy) {
  return intents_prefix(key_prefix) + encode_segment(cluster) + "/" + encode_segment(token_id) +
         "/" + encode_segment(policy);
}

std::string encode_intent(const Intent& i) {
  nlohmann::json j{{"cluster", i.cluster},
                   {"token_id", i.token_id},
                   {"policy", i.policy},
                   {"action", i.action},
                   {"state", i.state},
                   {"term", i.term},
                   {"instance", i.instance},
                   {"action_id", i.action_id},
                   {"attempt", i.attempt},
                   {"planned_at", format_timestamp(i.planned_at)},
                   {"updated_at", format_timestamp(i.updated_at)}};
  if (!i.outcome.empty()) j["outcome"] = i.outcome;
  if (!i.error.empty()) j["error"] = i.error;
  if (i.from_term != 0) j["from_term"] = i.from_term;
  if (!i.target.empty()) j["target"] = i.target;
  return j.dump();
}

std::optional<Intent> decode_intent(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto text = [&](const char* name, bool required, std::string& out) {
    auto it = j.find(name);
    if (it == j.end()) return !required;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return !required || !out.empty();
  };
  auto number = [&](const char* name, bool required, std::int64_t& out) {
    auto it = j.find(name);
    if (it == j.end()) return !required;
    if (!it->is_number_integer()) return false;
    out = it->get<std::int64_t>();
    return true;
  };
  auto time = [&](const char* name, Timestamp& out) {
    std::string s;
    if (!text(name, true, s)) return false;
    auto t = parse_rfc3339(s);
    if (!t.ok()) return false;
    out = *t;
    return true;
  };
  Intent i;
  const bool ok = text("cluster", true, i.cluster) && text("token_id", true, i.token_id) &&
                  text("policy", true, i.policy) && text("action", true, i.action) &&
                  text("state", true, i.state) && number("term", true, i.term) &&
                  text("instance", true, i.instance) && number("action_id", false, i.action_id) &&
                  number("attempt", false, i.attempt) && time("planned_at", i.planned_at) &&
                  time("updated_at", i.updated_at) && text("outcome", false, i.outcome) &&
                  text("error", false, i.error) && number("from_term", false, i.from_term) &&
                  text("target", false, i.target);
  if (!ok || i.term <= 0) return std::nullopt;
  return i;
}

}  // namespace tw::ha
