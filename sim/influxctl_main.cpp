// tokenwarden-influxctl: an `influxctl` look-alike for the database-token commands (reference
// §3) that talks REST to tokenwarden-sim (or any server of the Management API).
//
// Same global flags, config file (TOML [[profile]] tables), commands, flags and output as
// influxctl: JSON with snake_case keys, permission entries with a nil-UUID "id", timestamps as
// {"seconds","nanos"} objects (zero fields and unset timestamps omitted); results on stdout;
// logs and errors on stderr as `level<TAB>message`; exit status 1 on any error. Only management
// tokens (`mgmt_token`) authenticate; there is no OAuth device flow.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#include "core/strings.h"
#include "core/time.h"
#include "core/token.h"
#include "influx/codec.h"
#include "influx/http_client.h"

namespace {

using tw::Result;
using OJson = nlohmann::ordered_json;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr const char* kNilUuid = "00000000-0000-0000-0000-000000000000";

void log_line(const char* level, std::string_view message) {
  std::string line = std::string(level) + "\t" + tw::printable(message, 2000) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int fail(std::string_view message) {
  log_line("error", message);
  return kExitError;
}

tw::Error config_error(std::string message) {
  return tw::make_error(tw::ErrorCode::kInvalidArgument, std::move(message));
}

// --- realism options ------------------------------------------------------------------------
//
// What the real influxctl does where its docs are silent (reference §A2-A4), chosen per test with
// $TOKENWARDEN_INFLUXCTL_REALISM: "key=value" pairs separated by commas or white space, or
// "@FILE" to read them from FILE at every run (a test can change them under a running daemon).
// Defaults are the most likely real answers.

constexpr const char* kRealismEnv = "TOKENWARDEN_INFLUXCTL_REALISM";

struct Realism {
  bool empty_list_null = true;     // empty_list=null|array: an empty list prints as a nil Go slice
  bool omit_empty = true;          // omit_empty=on|off: empty description/permissions left out
  bool ids_on_clustered = true;    // ids=on|off: account_id/cluster_id (nil UUIDs) on Clustered too
  int warnings = 0;                // warn=N: N `warn<TAB>…` lines on stderr from every command
  std::string version = "2.12.0";  // version=X.Y.Z, or version=none (prints no version number)
  bool revoke_exit_zero = false;   // revoke_exit=zero|status: exit 0 even if a revocation failed
  bool management = true;          // management=on|off: `management list` works
  std::optional<tw::Timestamp> mgmt_expires_at;  // mgmt_expires_at=RFC3339: the profile's token
  std::optional<tw::Timestamp> mgmt_revoked_at;  // mgmt_revoked_at=RFC3339
};

Result<bool> on_off(const std::string& key, const std::string& value, const char* on,
                    const char* off) {
  if (value == on) return true;
  if (value == off) return false;
  return config_error(std::string(kRealismEnv) + ": " + key + " must be " + on + " or " + off);
}

Result<Realism> parse_realism(std::string text) {
  Realism r;
  if (!text.empty() && text.front() == '@') {
    std::ifstream in(text.substr(1));
    if (!in) return config_error(std::string(kRealismEnv) + ": cannot read " + text.substr(1));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::replace_if(
      text.begin(), text.end(),
      [](char c) { return c == ',' || std::isspace(static_cast<unsigned char>(c)); }, ' ');
  std::istringstream words(text);
  std::string word;
  while (words >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos)
      return config_error(std::string(kRealismEnv) + ": \"" + word + "\" is not key=value");
    std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    Result<bool> flag = false;
    if (key == "empty_list") {
      flag = on_off(key, value, "null", "array");
      if (flag.ok()) r.empty_list_null = *flag;
    } else if (key == "omit_empty") {
      flag = on_off(key, value, "on", "off");
      if (flag.ok()) r.omit_empty = *flag;
    } else if (key == "ids") {
      flag = on_off(key, value, "on", "off");
      if (flag.ok()) r.ids_on_clustered = *flag;
    } else if (key == "management") {
      flag = on_off(key, value, "on", "off");
      if (flag.ok()) r.management = *flag;
    } else if (key == "revoke_exit") {
      flag = on_off(key, value, "zero", "status");
      if (flag.ok()) r.revoke_exit_zero = *flag;
    } else if (key == "warn") {
      r.warnings = std::atoi(value.c_str());
    } else if (key == "version") {
      r.version = value;
    } else if (key == "mgmt_expires_at" || key == "mgmt_revoked_at") {
      auto t = tw::parse_rfc3339(value);
      if (!t.ok())
        return config_error(std::string(kRealismEnv) + ": " + key + ": " + t.error().message);
      (key == "mgmt_expires_at" ? r.mgmt_expires_at : r.mgmt_revoked_at) = *t;
    } else {
      return config_error(std::string(kRealismEnv) + ": unknown option \"" + key + "\"");
    }
    if (!flag.ok()) return flag.take_error();
  }
  return r;
}

// --- configuration -------------------------------------------------------------------------

struct Profile {
  std::string name;
  std::string product;  // "clustered" or "dedicated"
  std::string host;
  std::string port;
  std::string account_id;
  std::string cluster_id;
  std::string mgmt_token;
  std::string tls_ca;
  bool tls_insecure = false;
  bool tls_disable = false;
};

struct Globals {
  std::string config;
  std::string profile;
  std::string timeout = "1m";
  std::string account;
  std::string cluster;
  bool debug = false;
};

std::string default_config_path() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/influxctl/config.toml";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : ".") + "/.config/influxctl/config.toml";
}

Result<std::string> string_key(const toml::value& table, const char* key, const std::string& where,
                               bool allow_integer = false) {
  if (!table.contains(key)) return std::string();
  const toml::value& v = table.at(key);
  if (v.is_string()) return v.as_string().str;
  if (allow_integer && v.is_integer()) return std::to_string(v.as_integer());
  return config_error(where + "." + key + " must be a string");
}

Result<bool> bool_key(const toml::value& table, const char* key, const std::string& where) {
  if (!table.contains(key)) return false;
  const toml::value& v = table.at(key);
  if (!v.is_boolean()) return config_error(where + "." + key + " must be true or false");
  return v.as_boolean();
}

Result<Profile> load_profile(const std::string& path, const std::string& name) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return config_error("cannot read config file \"" + path + "\": no such file");
  }
  toml::value data;
  try {
    data = toml::parse(path);
  } catch (const std::exception& e) {  // toml11 reports syntax errors by exception
    std::string why = e.what();
    std::replace(why.begin(), why.end(), '\n', ' ');
    return config_error("invalid config file \"" + path + "\": " + why);
  }
  if (!data.is_table() || !data.contains("profile") || !data.at("profile").is_array()) {
    return config_error("config file \"" + path + "\" has no [[profile]] tables");
  }
  const auto& profiles = data.at("profile").as_array();
  for (std::size_t i = 0; i < profiles.size(); ++i) {
    const toml::value& p = profiles[i];
    std::string where = "profile[" + std::to_string(i) + "]";
    if (!p.is_table()) return config_error(where + " must be a table");
    auto pname = string_key(p, "name", where);
    if (!pname.ok()) return pname.take_error();
    if (*pname != name) continue;
    Profile out;
    out.name = *pname;
    where = "profile \"" + name + "\"";
    struct Field {
      const char* key;
      std::string* target;
      bool allow_integer;
    };
    for (const Field& f :
         {Field{"product", &out.product, false}, Field{"host", &out.host, false},
          Field{"port", &out.port, true}, Field{"account_id", &out.account_id, false},
          Field{"cluster_id", &out.cluster_id, false},
          Field{"mgmt_token", &out.mgmt_token, false}}) {
      auto v = string_key(p, f.key, where, f.allow_integer);
      if (!v.ok()) return v.take_error();
      *f.target = std::move(*v);
    }
    if (p.contains("tls")) {
      const toml::value& tls = p.at("tls");
      if (!tls.is_table()) return config_error(where + ".tls must be a table");
      auto ca = string_key(tls, "ca", where + ".tls");
      auto insecure = bool_key(tls, "insecure", where + ".tls");
      auto disable = bool_key(tls, "disable", where + ".tls");
      if (!ca.ok()) return ca.take_error();
      if (!insecure.ok()) return insecure.take_error();
      if (!disable.ok()) return disable.take_error();
      out.tls_ca = *ca;
      out.tls_insecure = *insecure;
      out.tls_disable = *disable;
    }
    return out;
  }
  return config_error("profile \"" + name + "\" not found in config file \"" + path + "\"");
}

// --- the API client ------------------------------------------------------------------------

class Client {
 public:
  static Result<Client> make(const Globals& g, Realism realism) {
    std::string profile_name = g.profile;
    if (profile_name.empty()) {
      const char* env = std::getenv("INFLUXCTL_PROFILE");
      profile_name = (env != nullptr && *env != '\0') ? env : "default";
    }
    auto profile = load_profile(g.config.empty() ? default_config_path() : g.config, profile_name);
    if (!profile.ok()) return profile.take_error();
    Profile& p = *profile;
    if (!g.account.empty()) p.account_id = g.account;
    if (!g.cluster.empty()) p.cluster_id = g.cluster;
    if (p.product.empty()) p.product = p.account_id.empty() ? "clustered" : "dedicated";
    if (p.product != "clustered" && p.product != "dedicated") {
      return config_error("profile \"" + p.name +
                          "\": product must be \"clustered\" or \"dedicated\"");
    }
    if (p.host.empty()) return config_error("profile \"" + p.name + "\" has no host");
    if (p.mgmt_token.empty()) {
      return config_error("profile \"" + p.name +
                          "\" has no mgmt_token (this influxctl look-alike authenticates only "
                          "with management tokens)");
    }
    Client c;
    c.dedicated_ = p.product == "dedicated";
    if (c.dedicated_) {
      if (!tw::is_uuid(p.account_id) || !tw::is_uuid(p.cluster_id)) {
        return config_error("profile \"" + p.name +
                            "\": a dedicated profile needs account_id and cluster_id (UUIDs)");
      }
      c.account_id_ = p.account_id;
      c.cluster_id_ = p.cluster_id;
      c.collection_ = "/accounts/" + p.account_id + "/clusters/" + p.cluster_id + "/tokens";
    } else {
      c.collection_ = "/tokens";
    }
    std::string host = p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host;
    std::string url = (p.tls_disable ? "http://" : "https://") + host;
    if (!p.port.empty()) url += ":" + p.port;
    url += "/api/v0";
    auto parsed = tw::influx::parse_url(url);
    if (!parsed.ok()) return config_error("profile \"" + p.name + "\": " + parsed.error().message);
    c.base_ = *parsed;
    auto timeout = tw::parse_duration(g.timeout);
    if (!timeout.ok()) return config_error("--timeout: " + timeout.error().message);
    if (timeout->count() <= 0) return config_error("--timeout must be positive");
    c.options_.timeout = *timeout;
    c.options_.ca_file = p.tls_ca;
    if (p.tls_insecure && !p.tls_disable) {
      log_line("warn",
               "tls.insecure is not supported by this look-alike; the server certificate "
               "is verified (set tls.ca to trust a private CA)");
    }
    c.token_ = p.mgmt_token;
    c.debug_ = g.debug;
    c.realism_ = std::move(realism);
    return c;
  }

  Result<tw::influx::HttpResponse> call(const std::string& method, const std::string& target,
                                        std::string body = {}) const {
    tw::influx::HttpRequest req;
    req.method = method;
    req.target = collection_ + target;
    req.body = std::move(body);
    req.headers.emplace_back("Authorization", "Bearer " + token_);
    req.headers.emplace_back("Accept", "application/json");
    if (debug_) log_line("debug", method + " " + base_.to_string() + req.target);
    auto resp = tw::influx::http_request(base_, req, options_);
    if (!resp.ok()) {
      tw::Error e = resp.take_error();
      e.message = tw::redact(std::move(e.message), token_);
      return e;
    }
    if (debug_) {
      log_line("debug", "response " + std::to_string(resp->status) + " (" +
                            std::to_string(resp->body.size()) + " bytes)");
    }
    return resp;
  }

  // "401 Unauthorized: unauthorized", plus a hint where one helps.
  std::string describe_status(const tw::influx::HttpResponse& resp) const {
    std::string out = std::to_string(resp.status);
    auto reason = tw::influx::http_reason(resp.status);
    if (!reason.empty() && reason != "<unknown-status>") out += " " + std::string(reason);
    std::string detail = tw::influx::decode_error_message(resp.body);
    if (!detail.empty()) out += ": " + tw::redact(detail, token_);
    if (resp.status == 401) out += " (check mgmt_token in the profile)";
    return out;
  }

  // A test fault: with $TOKENWARDEN_INFLUXCTL_LEAK_TOKEN set, every command fails at once with
  // an error that quotes the management token, as a careless CLI might: `bearer` ("…
  // Authorization: Bearer TOKEN …"), `plain` (the token alone) or `upper` (upper-cased).
  // Returns the exit status then, nothing otherwise.
  std::optional<int> leak_token_if_asked() const {
    const char* mode = std::getenv("TOKENWARDEN_INFLUXCTL_LEAK_TOKEN");
    if (mode == nullptr || *mode == '\0') return std::nullopt;
    const std::string m = mode;
    if (m == "bearer")
      return fail("request failed: Authorization: Bearer " + token_ + " was rejected");
    if (m == "plain") return fail("the management token " + token_ + " was rejected");
    if (m == "upper") {
      std::string upper = token_;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return fail("the management token " + upper + " was rejected");
    }
    return fail("TOKENWARDEN_INFLUXCTL_LEAK_TOKEN must be bearer, plain or upper");
  }

  bool dedicated() const { return dedicated_; }
  const Realism& realism() const { return realism_; }
  const std::string& mgmt_token() const { return token_; }
  // The error the cluster gives a lapsed management token, if the realism options say it lapsed.
  std::optional<std::string> lapsed_token() const {
    if (realism_.mgmt_revoked_at) return "rpc error: code = Unauthenticated desc = token revoked";
    if (realism_.mgmt_expires_at &&
        *realism_.mgmt_expires_at <= std::chrono::time_point_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now())) {
      return "rpc error: code = Unauthenticated desc = token expired";
    }
    return std::nullopt;
  }
  const std::string& account_id() const { return account_id_; }
  const std::string& cluster_id() const { return cluster_id_; }

 private:
  tw::influx::Url base_;
  tw::influx::HttpOptions options_;
  std::string collection_;
  std::string token_;
  std::string account_id_;
  std::string cluster_id_;
  bool dedicated_ = false;
  bool debug_ = false;
  Realism realism_;
};

// --- output --------------------------------------------------------------------------------

OJson timestamp_json(tw::Timestamp t) {
  std::int64_t ms = t.time_since_epoch().count();
  std::int64_t seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  std::int64_t nanos = (ms - seconds * 1000) * 1'000'000;
  OJson out = OJson::object();
  if (seconds != 0) out["seconds"] = seconds;
  if (nanos != 0) out["nanos"] = nanos;
  return out;
}

OJson token_json(const tw::Token& t, const Client& client) {
  const Realism& r = client.realism();
  OJson out = OJson::object();
  if (client.dedicated()) {
    out["account_id"] = client.account_id();
    out["cluster_id"] = client.cluster_id();
  } else if (r.ids_on_clustered) {  // the Clustered docs show them too
    out["account_id"] = kNilUuid;
    out["cluster_id"] = kNilUuid;
  }
  out["id"] = t.id;
  if (!r.omit_empty || !t.description.empty()) out["description"] = t.description;
  OJson perms = OJson::array();
  for (const auto& p : t.permissions) {
    perms.push_back(OJson{{"id", kNilUuid}, {"action", p.action}, {"resource", p.resource}});
  }
  if (!r.omit_empty || !perms.empty()) out["permissions"] = std::move(perms);
  if (t.created_at) out["created_at"] = timestamp_json(*t.created_at);
  if (t.expires_at) out["expires_at"] = timestamp_json(*t.expires_at);
  if (t.revoked_at) out["revoked_at"] = timestamp_json(*t.revoked_at);
  return out;
}

void print_json(const OJson& value) {
  std::cout << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// A bordered table like influxctl's; cells are made terminal-safe.
void print_table(const std::vector<std::string>& header,
                 std::vector<std::vector<std::string>> rows) {
  std::vector<std::size_t> width(header.size(), 0);
  for (auto& row : rows) {
    for (auto& cell : row) cell = tw::printable(cell, 200);
  }
  for (std::size_t i = 0; i < header.size(); ++i) width[i] = display_width(header[i]);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], display_width(row[i]));
    }
  }
  std::string rule = "+";
  for (std::size_t w : width) rule += std::string(w + 2, '-') + "+";
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (std::size_t i = 0; i < width.size(); ++i) {
      const std::string& c = i < cells.size() ? cells[i] : std::string();
      s += " " + c + std::string(width[i] - display_width(c), ' ') + " |";
    }
    return s;
  };
  std::cout << rule << "\n";
  bool has_header = std::any_of(header.begin(), header.end(), [](auto& h) { return !h.empty(); });
  if (has_header) std::cout << line(header) << "\n" << rule << "\n";
  for (const auto& row : rows) std::cout << line(row) << "\n";
  std::cout << rule << std::endl;
}

std::string time_cell(const std::optional<tw::Timestamp>& t) {
  return t ? tw::format_timestamp(*t) : std::string();
}

std::string permissions_cell(const std::vector<tw::Permission>& perms) {
  std::vector<std::string> parts;
  for (const auto& p : perms) parts.push_back(p.action + ":" + p.resource);
  return tw::join(parts, ", ");
}

void print_token_details(const tw::Token& t) {
  print_table({"", ""}, {{"id", t.id},
                         {"description", t.description},
                         {"permissions", permissions_cell(t.permissions)},
                         {"created at", time_cell(t.created_at)},
                         {"expires at", time_cell(t.expires_at)},
                         {"revoked at", time_cell(t.revoked_at)}});
}

// Token ids go into URL paths: accept only what a UUID (or a sane id) is made of.
bool safe_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '_';
  });
}

std::string permissions_body(const std::vector<std::string>& read,
                             const std::vector<std::string>& write) {
  std::string out = "[";
  bool first = true;
  auto add = [&](const char* action, const std::string& db) {
    if (!first) out += ",";
    first = false;
    out += "{\"action\":\"";
    out += action;
    out += "\",\"resource\":";
    out += OJson(db).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += "}";
  };
  for (const auto& db : read) add("read", db);
  for (const auto& db : write) add("write", db);
  return out + "]";
}

// --- commands ------------------------------------------------------------------------------

struct ListArgs {
  std::string format = "table";
  bool include_revoked = false;
  std::string sort = "id";
};

int cmd_list(const Client& client, const ListArgs& a) {
  auto resp = client.call("GET", "");
  if (!resp.ok()) return fail("failed to list tokens: " + resp.error().message);
  if (resp->status != 200) return fail("failed to list tokens: " + client.describe_status(*resp));
  auto decoded = tw::influx::decode_token_list(resp->body);
  if (!decoded.ok()) return fail("failed to list tokens: " + decoded.error().message);
  std::vector<tw::Token> tokens;
  for (auto& t : decoded->tokens) {
    if (a.include_revoked || !t.revoked_at) tokens.push_back(std::move(t));
  }
  std::stable_sort(tokens.begin(), tokens.end(), [&](const tw::Token& x, const tw::Token& y) {
    if (a.sort == "description" && x.description != y.description) {
      return x.description < y.description;
    }
    return x.id < y.id;
  });
  if (a.format == "json") {
    // A placeholder createdAt from the server (read as unset) comes out as the protobuf
    // Timestamp the server would have converted it to: {} for 1970, Go's zero time for 0001.
    std::map<std::string, OJson> placeholder_created;
    for (const auto& anomaly : decoded->anomalies) {
      OJson zero = OJson::object();
      if (anomaly.value.starts_with("0001")) zero["seconds"] = std::int64_t{-62135596800};
      placeholder_created[anomaly.token_id] = std::move(zero);
    }
    OJson out = OJson::array();
    for (const auto& t : tokens) {
      OJson j = token_json(t, client);
      if (auto it = placeholder_created.find(t.id); it != placeholder_created.end())
        j["created_at"] = it->second;
      out.push_back(std::move(j));
    }
    // encoding/json prints a nil slice as null: what a Go CLI that appends pages prints for none.
    if (out.empty() && client.realism().empty_list_null) {
      std::cout << "null" << std::endl;
      return kExitOk;
    }
    print_json(out);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : tokens) {
    rows.push_back({t.id, t.description, time_cell(t.expires_at), time_cell(t.revoked_at)});
  }
  print_table({"ID", "DESCRIPTION", "EXPIRES AT", "REVOKED AT"}, std::move(rows));
  return kExitOk;
}

struct GetArgs {
  std::string format = "table";
  bool include_revoked = false;
  std::string id;
};

int cmd_get(const Client& client, const GetArgs& a) {
  if (!safe_id(a.id)) return fail("invalid token id \"" + a.id + "\"");
  auto resp = client.call("GET", "/" + a.id);
  if (!resp.ok()) return fail("failed to get token: " + resp.error().message);
  if (resp->status == 404) return fail("token " + a.id + " not found");
  if (resp->status != 200) return fail("failed to get token: " + client.describe_status(*resp));
  auto token = tw::influx::decode_token(std::move(resp->body));
  if (!token.ok()) return fail("failed to get token: " + token.error().message);
  if (token->revoked_at && !a.include_revoked) {
    return fail("token " + a.id + " not found (it is revoked; use --include-revoked to show it)");
  }
  if (a.format == "json") {
    print_json(token_json(*token, client));
  } else {
    print_token_details(*token);
  }
  return kExitOk;
}

struct CreateArgs {
  std::vector<std::string> read;
  std::vector<std::string> write;
  std::string expires_at;
  std::string format = "table";
  std::string description;
};

int cmd_create(const Client& client, const CreateArgs& a) {
  std::string body =
      "{\"description\":" +
      OJson(a.description).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
      ",\"permissions\":" + permissions_body(a.read, a.write);
  if (!a.expires_at.empty()) {
    auto t = tw::parse_rfc3339(a.expires_at);
    if (!t.ok()) return fail("--expires-at: " + t.error().message);
    body += ",\"expiresAt\":\"" + tw::format_timestamp(*t) + "\"";
  }
  body += "}";
  auto resp = client.call("POST", "", std::move(body));
  if (!resp.ok()) return fail("failed to create token: " + resp.error().message);
  if (resp->status != 200 && resp->status != 201) {
    return fail("failed to create token: " + client.describe_status(*resp));
  }
  OJson raw = OJson::parse(resp->body, nullptr, false);
  std::string access_token;
  if (raw.is_object() && raw.contains("accessToken") && raw["accessToken"].is_string()) {
    access_token = raw["accessToken"].get<std::string>();
  }
  auto token = tw::influx::decode_token(std::move(resp->body));
  if (!token.ok()) return fail("failed to create token: " + token.error().message);
  if (access_token.empty()) return fail("failed to create token: the response has no accessToken");
  if (a.format == "json") {
    OJson out = token_json(*token, client);
    out["access_token"] = access_token;
    print_json(out);
    return kExitOk;
  }
  print_token_details(*token);
  log_line("warn", "please copy the token and store in a safe place");
  log_line("warn", "this is the only time you will see the token");
  std::cout << access_token << std::endl;
  return kExitOk;
}

struct UpdateArgs {
  std::vector<std::string> read;
  std::vector<std::string> write;
  std::optional<std::string> description;
  std::string format = "table";
  std::string id;
};

int cmd_update(const Client& client, const UpdateArgs& a) {
  if (!safe_id(a.id)) return fail("invalid token id \"" + a.id + "\"");
  std::string body = "{";
  if (a.description) {
    body += "\"description\":" +
            OJson(*a.description).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  if (!a.read.empty() || !a.write.empty()) {
    if (a.description) body += ",";
    body += "\"permissions\":" + permissions_body(a.read, a.write);
  }
  body += "}";
  if (body == "{}") {
    return fail("nothing to update: give --read-database, --write-database or --description");
  }
  auto resp = client.call("PATCH", "/" + a.id, std::move(body));
  if (!resp.ok()) return fail("failed to update token: " + resp.error().message);
  if (resp->status == 404) return fail("token " + a.id + " not found");
  if (resp->status != 200) return fail("failed to update token: " + client.describe_status(*resp));
  auto token = tw::influx::decode_token(std::move(resp->body));
  if (!token.ok()) return fail("failed to update token: " + token.error().message);
  if (a.format == "json") {
    print_json(token_json(*token, client));
  } else {
    print_token_details(*token);
  }
  return kExitOk;
}

struct RevokeArgs {
  bool force = false;
  std::vector<std::string> ids;
};

int cmd_revoke(const Client& client, const RevokeArgs& a) {
  if (!a.force) {
    std::string prompt = "revoking " + std::to_string(a.ids.size()) +
                         (a.ids.size() == 1 ? " token: " : " tokens: ") + tw::join(a.ids, ", ");
    prompt = tw::printable(prompt, 4000) + "\nare you sure? (y/N) ";
    std::fputs(prompt.c_str(), stderr);
    std::fflush(stderr);
    std::string answer;
    if (!std::getline(std::cin, answer)) {
      std::fputs("\n", stderr);
      return fail("no confirmation on stdin; nothing revoked (use --force to skip the prompt)");
    }
    std::string yes = tw::to_lower(tw::trim(answer));
    if (yes != "y" && yes != "yes") return fail("revocation aborted; nothing revoked");
  }
  int status = kExitOk;
  for (const auto& id : a.ids) {
    if (!safe_id(id)) {
      status = fail("invalid token id \"" + id + "\"");
      continue;
    }
    auto resp = client.call("DELETE", "/" + id);
    if (!resp.ok()) {
      status = fail("failed to revoke token " + id + ": " + resp.error().message);
    } else if (resp->status == 404) {
      status = fail("token " + id + " not found (unknown or already revoked)");
    } else if (resp->status != 204 && resp->status != 200) {
      status = fail("failed to revoke token " + id + ": " + client.describe_status(*resp));
    } else {
      std::cout << "revoked token " << id << std::endl;
    }
  }
  return client.realism().revoke_exit_zero ? kExitOk : status;
}

int cmd_management_list(const Client& client, const std::string& format) {
  if (!client.realism().management) return fail("unknown command \"management\"");
  const Realism& r = client.realism();
  const std::string& secret = client.mgmt_token();
  OJson own = OJson::object();
  own["id"] = "6d7a1f3e-5b2c-4c1d-9e8f-0a1b2c3d4e5f";
  own["account_id"] = client.dedicated() ? client.account_id() : kNilUuid;
  own["token_prefix"] = secret.substr(0, std::min<std::size_t>(9, secret.size()));
  if (r.mgmt_expires_at) own["expires_at"] = timestamp_json(*r.mgmt_expires_at);
  if (r.mgmt_revoked_at) own["revoked_at"] = timestamp_json(*r.mgmt_revoked_at);
  own["created_at"] = OJson{{"seconds", 1710273527}, {"nanos", 622095000}};
  own["description"] = "tokenwarden";
  own["created_by"] = kNilUuid;
  // Another client's token, revoked, as in the docs' example: not ours (another prefix).
  OJson other = OJson{{"id", "0a0b0c0d-0000-4000-8000-000000000002"},
                      {"account_id", kNilUuid},
                      {"token_prefix", "M.V1.zZ9q"},
                      {"revoked_at", OJson{{"seconds", 1710273809}, {"nanos", 948178000}}},
                      {"created_at", OJson{{"seconds", 1710273527}}},
                      {"description", "Client1 token"},
                      {"created_by", kNilUuid}};
  OJson list = OJson::array({other, own});
  if (format == "json") {
    print_json(list);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : list) {
    auto cell = [&](const char* key) {
      if (!m.contains(key)) return std::string("1970-01-01T00:00:00Z");
      return tw::format_timestamp(
          tw::Timestamp(std::chrono::seconds(m[key]["seconds"].get<std::int64_t>())));
    };
    rows.push_back({m["id"].get<std::string>(), m["description"].get<std::string>(),
                    m["token_prefix"].get<std::string>(), cell("created_at"), cell("expires_at"),
                    cell("revoked_at")});
  }
  print_table({"ID", "DESCRIPTION", "PREFIX", "CREATED AT", "EXPIRES AT", "REVOKED AT"},
              std::move(rows));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tokenwarden-influxctl - an influxctl look-alike for database tokens, talking to "
      "the Management REST API (e.g. tokenwarden-sim).\n",
      "tokenwarden-influxctl"};
  app.footer(
      "\nCONFIG (TOML, influxctl's format):\n"
      "  [[profile]]\n"
      "    name = \"default\"            # --profile, or $INFLUXCTL_PROFILE\n"
      "    product = \"clustered\"       # or \"dedicated\" (then account_id, cluster_id)\n"
      "    host = \"127.0.0.1\"\n"
      "    port = \"8086\"\n"
      "    mgmt_token = \"...\"          # the management token (required)\n"
      "    [profile.tls]\n"
      "      ca = \"/path/ca.pem\"       # trust this CA\n"
      "      disable = true            # plain http\n"
      "Base URL: http(s)://host:port/api/v0. Errors: 'error<TAB>message' on stderr, exit 1.\n"
      "\nREALISM ($TOKENWARDEN_INFLUXCTL_REALISM, \"k=v,k=v\" or \"@FILE\"; docs/simulator.md):\n"
      "  empty_list=null|array  omit_empty=on|off  ids=on|off  warn=N  version=X.Y.Z|none\n"
      "  revoke_exit=zero|status  management=on|off  mgmt_expires_at=T  mgmt_revoked_at=T\n");
  app.require_subcommand(1);
  Globals g;
  app.add_option("--config", g.config, "Config file [$HOME/.config/influxctl/config.toml]")
      ->type_name("PATH");
  app.add_option("--profile", g.profile, "Profile [$INFLUXCTL_PROFILE or default]")
      ->type_name("NAME");
  app.add_option("--account", g.account, "Override the profile's account_id")->type_name("UUID");
  app.add_option("--cluster", g.cluster, "Override the profile's cluster_id")->type_name("UUID");
  app.add_option("--timeout", g.timeout, "API call timeout [1m]")->type_name("DURATION");
  app.add_flag("--debug,--trace", g.debug, "Log requests (never the token) on stderr");

  auto* token = app.add_subcommand("token", "Manage database tokens");
  token->require_subcommand(1);
  auto formats = CLI::IsMember({"table", "json"}).description("");

  ListArgs list_args;
  auto* list = token->add_subcommand("list", "List database tokens (revoked ones hidden)");
  list->add_option("--format", list_args.format, "table|json [table]")->check(formats);
  list->add_flag("--include-revoked", list_args.include_revoked, "Also list revoked tokens");
  list->add_option("--sort", list_args.sort, "id|description [id]")
      ->check(CLI::IsMember({"id", "description"}).description(""));

  GetArgs get_args;
  auto* get = token->add_subcommand("get", "Show one database token");
  get->add_option("--format", get_args.format, "table|json [table]")->check(formats);
  get->add_flag("--include-revoked", get_args.include_revoked, "Allow a revoked token");
  get->add_option("TOKEN_ID", get_args.id, "Token id")->required();

  CreateArgs create_args;
  auto* create = token->add_subcommand("create", "Create a database token");
  create->add_option("--read-database", create_args.read, "Grant read (repeatable; \"*\" = all)")
      ->type_name("DB")
      ->allow_extra_args(false);
  create->add_option("--write-database", create_args.write, "Grant write (repeatable; \"*\" = all)")
      ->type_name("DB")
      ->allow_extra_args(false);
  create->add_option("--expires-at", create_args.expires_at, "Expiry [never]")
      ->type_name("RFC3339");
  create->add_option("--format", create_args.format, "table|json [table]")->check(formats);
  create->add_option("TOKEN_DESCRIPTION", create_args.description, "Description")->required();

  UpdateArgs update_args;
  std::string new_description;
  auto* update = token->add_subcommand("update", "Replace a token's permissions or description");
  update->add_option("--read-database", update_args.read, "Grant read (repeatable; replaces all)")
      ->type_name("DB")
      ->allow_extra_args(false);
  update
      ->add_option("--write-database", update_args.write, "Grant write (repeatable; replaces all)")
      ->type_name("DB")
      ->allow_extra_args(false);
  auto* desc_opt = update->add_option("--description", new_description, "New description");
  update->add_option("--format", update_args.format, "table|json [table]")->check(formats);
  update->add_option("TOKEN_ID", update_args.id, "Token id")->required();

  auto* version = app.add_subcommand("version", "Print the version and architecture");

  auto* management = app.add_subcommand("management", "Manage management tokens (list only)");
  management->require_subcommand(1);
  std::string management_format = "table";
  auto* management_list = management->add_subcommand("list", "List management tokens");
  management_list->add_option("--format", management_format, "table|json [table]")->check(formats);

  RevokeArgs revoke_args;
  auto* revoke = token->add_subcommand("revoke", "Revoke database tokens (irreversible)");
  revoke->alias("delete");
  revoke->add_flag("--force", revoke_args.force, "Do not ask for confirmation");
  revoke->add_option("TOKEN_ID", revoke_args.ids, "Token ids")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }
  if (desc_opt->count() > 0) update_args.description = new_description;

  const char* realism_text = std::getenv(kRealismEnv);
  auto realism = parse_realism(realism_text != nullptr ? realism_text : "");
  if (!realism.ok()) return fail(realism.error().message);
  for (int i = 0; i < realism->warnings; ++i) {
    log_line("warn", "a newer version of influxctl is available (look-alike warning " +
                         std::to_string(i + 1) + ")");
  }
  if (*version) {
    if (realism->version == "none") {
      std::cout << "influxctl dev (look-alike) linux/amd64" << std::endl;
    } else {
      std::cout << "influxctl v" << realism->version << " (tokenwarden-influxctl) linux/amd64"
                << std::endl;
    }
    return kExitOk;
  }
  auto client = Client::make(g, std::move(*realism));
  if (!client.ok()) return fail(client.error().message);
  if (auto rc = client->leak_token_if_asked()) return *rc;
  if (auto why = client->lapsed_token()) return fail("request failed: " + *why);
  if (*management_list) return cmd_management_list(*client, management_format);
  if (*list) return cmd_list(*client, list_args);
  if (*get) return cmd_get(*client, get_args);
  if (*create) return cmd_create(*client, create_args);
  if (*update) return cmd_update(*client, update_args);
  if (*revoke) return cmd_revoke(*client, revoke_args);
  return fail("unknown command (see --help)");
}
