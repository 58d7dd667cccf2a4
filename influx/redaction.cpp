#include "influx/redaction.h"

#include <cstdlib>
#include <exception>
#include <toml.hpp>

#include "core/strings.h"

namespace tw::influx {
namespace {

// The text a cluster chose for a token — its description and the resources it names — without
// the secrets: these fields are recorded, and reach error messages (a restriction's read-back).
void scrub_token(Token& t, const std::vector<std::string>& secrets) {
  auto scrub = [&](std::string& text) {
    if (needs_redaction(text, secrets, Credentials::kKnownOnly))
      text = redact(text, secrets, Credentials::kKnownOnly);
  };
  scrub(t.description);
  for (auto& p : t.permissions) scrub(p.resource);
}

// A decode error of `body`, told from the body without its secrets.
template <class Decode>
Error decode_error(std::string_view body, Error e, const std::vector<std::string>& secrets,
                   Decode decode) {
  if (needs_redaction(body, secrets, Credentials::kKnownOnly)) {
    auto again = decode(redact(body, secrets, Credentials::kKnownOnly));
    if (!again.ok()) {
      e = again.take_error();
    } else {  // only the secret made it unreadable (e.g. a repeated key spelled as the secret)
      e.message = "the response is unreadable where it quotes a credential";
    }
  }
  return redacted(std::move(e), secrets);
}

}  // namespace

Error redacted(Error e, const std::vector<std::string>& secrets) {
  e.message = redact(e.message, secrets);
  return e;
}

Result<DecodedList> decode_token_list_redacted(std::string_view body,
                                               const std::vector<std::string>& secrets,
                                               EmptyList empty) {
  auto list = decode_token_list(body, empty);
  if (!list.ok()) {
    return decode_error(body, list.take_error(), secrets,
                        [empty](const std::string& b) { return decode_token_list(b, empty); });
  }
  for (auto& t : list->tokens) scrub_token(t, secrets);
  return list;
}

Result<Token> decode_token_redacted(std::string body, const std::vector<std::string>& secrets) {
  auto token = decode_token(body);
  if (!token.ok()) {
    return decode_error(body, token.take_error(), secrets,
                        [](std::string b) { return decode_token(std::move(b)); });
  }
  scrub_token(*token, secrets);
  return token;
}

Result<Influxdb3Rows> decode_influxdb3_rows_redacted(std::string_view body,
                                                     const std::vector<std::string>& secrets) {
  auto rows = decode_influxdb3_rows(body);
  if (!rows.ok()) {
    return decode_error(body, rows.take_error(), secrets,
                        [](const std::string& b) { return decode_influxdb3_rows(b); });
  }
  for (auto& t : rows->list.tokens) scrub_token(t, secrets);
  return rows;
}

std::vector<std::string> influxctl_config_secrets(const std::string& config_path) {
  std::vector<std::string> out;
  try {
    const toml::value data = toml::parse(config_path);
    if (!data.is_table() || !data.contains("profile") || !data.at("profile").is_array()) return out;
    for (const auto& profile : data.at("profile").as_array()) {
      if (!profile.is_table()) continue;
      for (const char* key : {"mgmt_token", "token"}) {
        if (profile.contains(key) && profile.at(key).is_string()) {
          std::string_view secret = trim(profile.at(key).as_string().str);
          if (!secret.empty()) out.emplace_back(secret);
        }
      }
    }
  } catch (const std::exception&) {  // toml11 reports unreadable files and bad syntax by exception
  }
  return out;
}

std::string influxctl_profile_mgmt_token(const std::string& config_path,
                                         const std::string& profile) {
  std::string wanted = profile;
  if (wanted.empty()) {
    const char* env = std::getenv("INFLUXCTL_PROFILE");
    wanted = (env != nullptr && *env != '\0') ? env : "default";
  }
  try {
    const toml::value data = toml::parse(config_path);
    if (!data.is_table() || !data.contains("profile") || !data.at("profile").is_array()) return {};
    for (const auto& p : data.at("profile").as_array()) {
      if (!p.is_table() || !p.contains("name") || !p.at("name").is_string() ||
          p.at("name").as_string().str != wanted) {
        continue;
      }
      if (!p.contains("mgmt_token") || !p.at("mgmt_token").is_string()) return {};
      return std::string(trim(p.at("mgmt_token").as_string().str));
    }
  } catch (const std::exception&) {  // toml11 reports unreadable files and bad syntax by exception
  }
  return {};
}

}  // namespace tw::influx
