#include "daemon/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <toml.hpp>

#include "core/host.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "influx/http_client.h"
#include "policy/engine.h"

namespace tw::daemon {
namespace {

using TomlValue = toml::value;

struct TextPosition {
  std::size_t line = 1;
  std::size_t column = 1;  // in characters
};

// Where the first byte that is not valid UTF-8 sits, or nothing when the text is valid.
std::optional<TextPosition> first_invalid_utf8(std::string_view text) {
  TextPosition at;
  for (std::size_t i = 0; i < text.size();) {
    std::uint32_t cp = 0;
    std::size_t n = utf8_sequence(text, i, cp);
    if (n == 0) return at;
    if (cp == '\n') {
      ++at.line;
      at.column = 1;
    } else {
      ++at.column;
    }
    i += n;
  }
  return std::nullopt;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// 1 to `max` of A-Z a-z 0-9 _ . - (export sink names, [ha] instance names).
bool valid_identifier(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
             std::string_view::npos;
}

std::string line_of(const TomlValue& v) {
  auto line = v.location().line();
  if (line <= 1 && v.location().line_str().empty()) return {};
  return " (line " + std::to_string(line) + ")";
}

std::string type_name(const TomlValue& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      return "a date/time";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "empty";
  }
}

struct Problems {
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

// Reads one TOML table: typed getters record which keys are known; finish() reports the rest.
class TableReader {
 public:
  TableReader(const TomlValue& table, std::string path, Problems& p)
      : table_(table), path_(std::move(path)), p_(p) {}

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  void error(std::string_view key, const std::string& msg) {
    const TomlValue* v = find(key);
    p_.errors.push_back(key_path(key) + ": " + msg + (v != nullptr ? line_of(*v) : std::string()));
  }
  void warning(std::string_view key, const std::string& msg) {
    p_.warnings.push_back(key_path(key) + ": " + msg);
  }

  const TomlValue* find(std::string_view key) const {
    if (!table_.is_table()) return nullptr;
    const auto& t = table_.as_table();
    auto it = t.find(std::string(key));
    return it == t.end() ? nullptr : &it->second;
  }
  bool has(std::string_view key) {
    known_.insert(std::string(key));
    return find(key) != nullptr;
  }
  // Marks key as known without reading it (handled elsewhere).
  void know(std::string_view key) { known_.insert(std::string(key)); }

  std::optional<std::string> string(std::string_view key) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      error(key, "expected a string, found " + type_name(*v));
      return std::nullopt;
    }
    return v->as_string().str;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_integer()) {
      error(key, "expected an integer, found " + type_name(*v));
      return std::nullopt;
    }
    auto n = v->as_integer();
    if (n < min || n > max) {
      error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                     ", not " + std::to_string(n));
      return std::nullopt;
    }
    return n;
  }

  std::optional<bool> boolean(std::string_view key) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) {
      error(key, "expected true or false, found " + type_name(*v));
      return std::nullopt;
    }
    return v->as_boolean();
  }

  std::optional<Duration> duration(std::string_view key, Duration min, Duration max) {
    auto s = string(key);
    if (!s) {
      const TomlValue* v = find(key);
      if (v != nullptr && v->is_integer()) {
        p_.errors.back() += "; durations are strings like \"30s\", \"5m\", \"12h\", \"90d\"";
      }
      return std::nullopt;
    }
    auto d = parse_duration(*s);
    if (!d.ok()) {
      error(key, d.error().message);
      return std::nullopt;
    }
    if (*d < min || *d > max) {
      error(key, "must be between " + format_duration(min) + " and " + format_duration(max) +
                     ", not " + format_duration(*d));
      return std::nullopt;
    }
    return *d;
  }

  std::optional<Timestamp> time(std::string_view key) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_offset_datetime()) {
      // From the fields: toml11's own conversion goes through mktime and a nanosecond
      // system_clock, which overflows outside the years 1678-2262.
      const auto& dt = v->as_offset_datetime();
      return make_timestamp(dt.date.year, static_cast<unsigned>(dt.date.month) + 1, dt.date.day,
                            dt.time.hour, dt.time.minute, dt.time.second, dt.time.millisecond) -
             std::chrono::minutes(dt.offset.hour * 60 + dt.offset.minute);
    }
    if (v->is_local_date()) {
      const auto& d = v->as_local_date();
      return make_timestamp(d.year, static_cast<unsigned>(d.month) + 1, d.day);
    }
    if (v->is_local_datetime()) {
      error(key, "a date-time needs a time zone (append Z for UTC)");
      return std::nullopt;
    }
    if (v->is_string()) {
      auto t = parse_rfc3339(v->as_string().str);
      if (!t.ok()) {
        error(key, t.error().message);
        return std::nullopt;
      }
      return *t;
    }
    error(key, "expected a date-time (TOML datetime or RFC 3339 string), found " + type_name(*v));
    return std::nullopt;
  }

  std::optional<std::vector<std::string>> string_array(std::string_view key) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) {
      error(key,
            "expected an array of strings, e.g. [\"" + printable(v->as_string().str, 40) + "\"]");
      return std::nullopt;
    }
    if (!v->is_array()) {
      error(key, "expected an array of strings, found " + type_name(*v));
      return std::nullopt;
    }
    std::vector<std::string> out;
    std::size_t i = 0;
    for (const auto& e : v->as_array()) {
      if (!e.is_string()) {
        p_.errors.push_back(key_path(key) + "[" + std::to_string(i) +
                            "]: expected a string, found " + type_name(e) + line_of(e));
        return std::nullopt;
      }
      out.push_back(e.as_string().str);
      ++i;
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> string_table(std::string_view key) {
    know(key);
    const TomlValue* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_table()) {
      error(key, "expected a table like { env = \"prod\" }, found " + type_name(*v));
      return std::nullopt;
    }
    std::map<std::string, std::string> out;
    bool ok = true;
    for (const auto& [k, e] : v->as_table()) {
      if (!e.is_string()) {
        p_.errors.push_back(key_path(key) + "." + k + ": expected a string, found " + type_name(e) +
                            line_of(e));
        ok = false;
        continue;
      }
      out[k] = e.as_string().str;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Reports keys nobody asked for.
  void finish() {
    if (!table_.is_table()) return;
    for (const auto& [k, v] : table_.as_table()) {
      if (known_.contains(k)) continue;
      std::string msg = "unknown key";
      std::string best;
      std::size_t best_d = 3;
      for (const auto& candidate : known_) {
        auto d = edit_distance(k, candidate);
        if (d < best_d) {
          best_d = d;
          best = candidate;
        }
      }
      if (!best.empty()) msg += " (did you mean \"" + best + "\"?)";
      p_.errors.push_back(key_path(k) + ": " + msg + line_of(v));
    }
  }

 private:
  const TomlValue& table_;
  std::string path_;
  Problems& p_;
  std::set<std::string> known_;
};

bool valid_name(std::string_view s, bool allow_upper_dot) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (allow_upper_dot) ok = ok || (c >= 'A' && c <= 'Z') || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool valid_listen(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  return std::stoi(std::string(port)) <= 65535;
}

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || starts_with(host, "127.");
}

// An [alerting] URL. The message names the URL as --print shows it: a webhook's path is often
// its secret, and the error is logged and, on a reload, recorded in config_rejected.
void check_url(TableReader& r, std::string_view key, const std::string& url, bool keep_path) {
  if (url.empty()) return;
  auto u = influx::parse_url(url);
  if (u.ok()) return;
  // parse_url says `invalid URL "<url>": <why>`; keep the why, show the URL redacted.
  const std::string& message = u.error().message;
  auto split = message.rfind("\": ");
  std::string why =
      split == std::string::npos ? "not a valid http(s) URL" : message.substr(split + 3);
  if (why.ends_with(" (use token_file)")) why.resize(why.size() - 17);  // no token_file here
  r.error(key, "invalid URL \"" + printable(redact_url(url, keep_path), 200) + "\": " + why);
}

void read_daemon(const TomlValue* v, Config& c, Problems& p) {
  if (v == nullptr) return;
  TableReader r(*v, "daemon", p);
  if (!v->is_table()) {
    p.errors.push_back("daemon: expected a table [daemon]");
    return;
  }
  auto& d = c.daemon;
  if (auto s = r.string("database")) {
    if (s->empty())
      r.error("database", "must not be empty");
    else
      d.database = *s;
  }
  if (auto x = r.duration("poll_interval", std::chrono::seconds(1), std::chrono::hours(24 * 7))) {
    d.poll_interval = *x;
  }
  if (auto s = r.string("mode")) {
    if (auto m = policy::parse_mode(*s))
      d.mode = *m;
    else
      r.error("mode", "must be \"enforce\" or \"monitor\", not \"" + printable(*s, 40) + "\"");
  }
  if (auto s = r.string("log_level")) {
    if (auto l = parse_log_level(*s))
      d.log_level = *l;
    else
      r.error("log_level", "must be one of trace, debug, info, warn, error");
  }
  if (auto s = r.string("log_format")) {
    if (*s == "text")
      d.log_format = LogFormat::kText;
    else if (*s == "json")
      d.log_format = LogFormat::kJson;
    else
      r.error("log_format", "must be \"text\" or \"json\"");
  }
  if (auto n = r.integer("max_concurrent_polls", 1, 64))
    d.max_concurrent_polls = static_cast<int>(*n);
  if (auto x = r.duration("poll_jitter", Duration(0), std::chrono::hours(1))) d.poll_jitter = *x;
  r.finish();
}

void read_http(const TomlValue* v, Config& c, Problems& p) {
  if (v == nullptr) return;
  TableReader r(*v, "http", p);
  if (auto s = r.string("listen")) {
    if (!s->empty() && !valid_listen(*s)) {
      r.error("listen", "expected \"host:port\" (e.g. \"127.0.0.1:9464\") or \"\" to disable");
    } else {
      c.http.listen = *s;
    }
  }
  if (auto s = r.string("web_config")) c.http.web_config = *s;
  if (auto b = r.boolean("reuse_metrics_text")) c.http.reuse_metrics_text = *b;
  r.finish();
}

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {};
  return path.substr(0, slash + 1);
}

std::string resolve_relative(const std::string& file, const std::string& base_path) {
  if (file.empty() || file.front() == '/') return file;
  return directory_of(base_path) + file;
}

bool is_bcrypt_hash(std::string_view h) {
  if (h.size() != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$') return false;
  if (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') return false;
  if (!std::isdigit(static_cast<unsigned char>(h[4])) ||
      !std::isdigit(static_cast<unsigned char>(h[5])))
    return false;
  return std::all_of(h.begin() + 7, h.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '/';
  });
}

std::optional<metrics::WebConfig> parse_web_config(const std::string& text, const std::string& path,
                                                   const std::string& prefix,
                                                   std::vector<std::string>& errors) {
  TomlValue root;
  try {
    std::istringstream in(text);
    root = toml::parse(in, path);
  } catch (const std::exception& e) {
    // Only the first line of toml11's message, and the line number: the source excerpt would echo
    // the line, which may hold a password typed where a hash belongs (`alice = hunter2`).
    std::string_view what = trim(e.what());
    what = what.substr(0, what.find('\n'));
    if (starts_with(what, "[error] ")) what.remove_prefix(8);
    std::string line;
    if (const auto* t = dynamic_cast<const toml::exception*>(&e)) {
      line = " (line " + std::to_string(t->location().line()) + ")";
    }
    errors.push_back(prefix + ": " + path + ": TOML syntax error: " + std::string(what) + line);
    return std::nullopt;
  }
  Problems p;
  metrics::WebConfig web;
  TableReader top(root, "", p);
  top.know("tls");
  top.know("basic_auth");
  if (root.contains("tls")) {
    const auto& v = root.at("tls");
    TableReader r(v, "tls", p);
    if (!v.is_table()) {
      p.errors.push_back("tls: expected a table [tls]" + line_of(v));
    } else {
      if (auto s = r.string("cert_file")) web.tls_cert_file = resolve_relative(*s, path);
      if (auto s = r.string("key_file")) web.tls_key_file = resolve_relative(*s, path);
      if (auto s = r.string("client_ca_file")) web.tls_client_ca_file = resolve_relative(*s, path);
      if (web.tls_cert_file.empty() != web.tls_key_file.empty()) {
        p.errors.push_back("tls: cert_file and key_file must be set together");
      }
      if (!web.tls_client_ca_file.empty() && web.tls_cert_file.empty()) {
        p.errors.push_back(
            "tls.client_ca_file: needs cert_file and key_file (client certificates need TLS)");
      }
      for (const auto* f : {&web.tls_cert_file, &web.tls_key_file, &web.tls_client_ca_file}) {
        if (!f->empty() && ::access(f->c_str(), R_OK) != 0) {
          p.errors.push_back("tls: \"" + printable(*f, 200) +
                             "\" is not readable: " + std::strerror(errno));
        }
      }
      r.finish();
    }
  }
  if (root.contains("basic_auth")) {
    const auto& v = root.at("basic_auth");
    TableReader r(v, "basic_auth", p);
    // Not a table (`basic_auth = "…"`) would otherwise be read as "no users": auth silently off.
    if (!v.is_table())
      p.errors.push_back("basic_auth: expected a table [basic_auth.users]" + line_of(v));
    if (auto users = r.string_table("users")) {
      for (const auto& [name, hash] : *users) {
        if (name.empty() || name.find(':') != std::string::npos) {
          p.errors.push_back("basic_auth.users: \"" + printable(name, 64) +
                             "\" is not a valid user name (no ':')");
        } else if (!is_bcrypt_hash(hash)) {
          // Never echo the value: it might be a password typed where the hash belongs.
          p.errors.push_back("basic_auth.users." + name +
                             ": expected a bcrypt hash ($2y$…, 60 characters, e.g. from `htpasswd "
                             "-nBC 10 \"\" | tr -d ':'`)");
        } else {
          web.users[name] = hash;
        }
      }
    }
    r.finish();
  }
  top.finish();
  for (const auto& e : p.errors) errors.push_back(prefix + ": " + path + ": " + e);
  if (!p.errors.empty()) return std::nullopt;
  return web;
}

void read_safety(const TomlValue* v, Config& c, Problems& p) {
  if (v == nullptr) return;
  TableReader r(*v, "safety", p);
  if (auto n = r.integer("max_actions_per_cycle", 0, 1'000'000))
    c.safety.max_actions_per_cycle = static_cast<int>(*n);
  if (auto n = r.integer("max_actions_percent", 0, 100))
    c.safety.max_actions_percent = static_cast<int>(*n);
  if (auto n = r.integer("max_vanished_percent", 0, 100))
    c.safety.max_vanished_percent = static_cast<int>(*n);
  r.finish();
}

void read_alerting(const TomlValue* v, Config& c, Problems& p) {
  if (v == nullptr) return;
  TableReader r(*v, "alerting", p);
  if (auto s = r.string("alertmanager_url")) {
    check_url(r, "alertmanager_url", *s, true);
    c.alerting.alertmanager_url = *s;
  }
  if (auto s = r.string("webhook_url")) {
    check_url(r, "webhook_url", *s, false);
    c.alerting.webhook_url = *s;
  }
  r.finish();
}

const char* const kExportTypes = "syslog, journald or file";

void read_export_type(TableReader& r, ExportSinkConfig& e, bool& type_ok) {
  auto type = r.string("type");
  if (!type) {
    if (!r.has("type")) r.error("type", "is required (" + std::string(kExportTypes) + ")");
    return;
  }
  if (*type == "syslog") {
    e.type = ExportType::kSyslog;
  } else if (*type == "journald") {
    e.type = ExportType::kJournald;
  } else if (*type == "file") {
    e.type = ExportType::kFile;
  } else {
    r.error("type",
            "unknown export type \"" + printable(*type, 40) + "\" (expected " + kExportTypes + ")");
    return;
  }
  type_ok = true;
}

// Keys of one sink type: set for another type, they are errors.
void read_export_keys(TableReader& r, ExportSinkConfig& e, bool type_ok,
                      const std::string& origin) {
  auto only = [&](std::string_view key, ExportType type) {
    if (!r.has(key)) return false;
    if (type_ok && e.type != type) {
      r.error(key, "is not used by type " + std::string(to_string(e.type)) + " (only by " +
                       std::string(to_string(type)) + ")");
      return false;
    }
    return true;
  };
  if (only("address", ExportType::kSyslog)) {
    auto s = r.string("address");
    if (s && !valid_listen(*s)) {
      r.error("address", "expected \"host:port\" (e.g. \"logs.example.com:6514\")");
    } else if (s) {
      e.address = *s;
    }
  }
  if (only("tls", ExportType::kSyslog)) {
    if (auto b = r.boolean("tls")) e.tls = *b;
  }
  for (auto [key, out] : {std::pair<const char*, std::string*>{"ca_file", &e.ca_file},
                          {"cert_file", &e.cert_file},
                          {"key_file", &e.key_file}}) {
    if (!only(key, ExportType::kSyslog)) continue;
    if (auto s = r.string(key)) *out = resolve_relative(*s, origin);
  }
  if (only("path", ExportType::kFile)) {
    if (auto s = r.string("path")) e.path = resolve_relative(*s, origin);
  }
  if (only("socket", ExportType::kJournald)) {
    if (auto s = r.string("socket")) e.socket = *s;
  }
}

void check_export_sink(TableReader& r, const ExportSinkConfig& e) {
  if (e.type == ExportType::kSyslog && e.address.empty() && !r.has("address")) {
    r.error("address", "is required for type syslog (\"host:port\")");
  }
  if (e.type == ExportType::kFile && e.path.empty() && !r.has("path")) {
    r.error("path", "is required for type file");
  }
  if (e.type == ExportType::kSyslog && !e.tls) {
    for (const char* key : {"ca_file", "cert_file", "key_file"}) {
      if (r.has(key)) r.error(key, "is only used with tls = true");
    }
  }
  if (e.cert_file.empty() != e.key_file.empty()) {
    r.error(e.cert_file.empty() ? "cert_file" : "key_file",
            "cert_file and key_file go together (a client certificate and its key)");
  }
}

void read_export_sink(const TomlValue& v, std::size_t i, Config& c, Problems& p,
                      const std::string& origin) {
  TableReader r(v, "audit.export[" + std::to_string(i) + "]", p);
  if (!v.is_table()) {
    p.errors.push_back(r.key_path("") + ": expected a table" + line_of(v));
    return;
  }
  ExportSinkConfig e;
  if (auto name = r.string("name")) {
    if (!valid_identifier(*name, 64)) {
      r.error("name", "must be 1 to 64 letters, digits, '_', '.' or '-'");
    } else {
      for (const auto& other : c.audit.exports) {
        if (other.name == *name) r.error("name", "\"" + *name + "\" is used by another sink");
      }
      e.name = *name;
    }
  } else if (!r.has("name")) {
    r.error("name", "is required");
  }
  bool type_ok = false;
  read_export_type(r, e, type_ok);
  read_export_keys(r, e, type_ok, origin);
  if (type_ok) check_export_sink(r, e);
  for (const auto& other : c.audit.exports) {
    if (e.type == ExportType::kFile && other.type == ExportType::kFile && !e.path.empty() &&
        other.path == e.path) {
      r.error("path", "\"" + e.path + "\" is written by sink \"" + other.name + "\" already");
    }
  }
  r.finish();
  c.audit.exports.push_back(std::move(e));
}

void read_audit(const TomlValue* v, Config& c, Problems& p, const std::string& origin) {
  if (v == nullptr) return;
  TableReader r(*v, "audit", p);
  if (auto s = r.string("signing_key_file")) c.audit.signing_key_file = *s;
  if (auto s = r.string("public_key_file")) c.audit.public_key_file = resolve_relative(*s, origin);
  if (auto d =
          r.duration("checkpoint_interval", std::chrono::minutes(1), std::chrono::hours(24 * 7)))
    c.audit.checkpoint_interval = *d;
  if (auto n = r.integer("checkpoint_events", 1, 100'000'000)) c.audit.checkpoint_events = *n;
  if (auto b = r.boolean("require_export")) c.audit.require_export = *b;
  if (auto d = r.duration("export_max_lag", std::chrono::seconds(10), std::chrono::hours(24 * 7)))
    c.audit.export_max_lag = *d;
  r.know("export");
  if (const TomlValue* ex = r.find("export")) {
    if (!ex->is_array()) {
      p.errors.push_back("audit.export: expected an array of tables ([[audit.export]])" +
                         line_of(*ex));
    } else {
      std::size_t i = 0;
      for (const auto& e : ex->as_array()) read_export_sink(e, i++, c, p, origin);
    }
  }
  if (c.audit.require_export && c.audit.exports.empty()) {
    r.error("require_export", "needs at least one [[audit.export]] sink");
  }
  r.finish();
}

void read_ha_endpoints(TableReader& r, HaSection& ha) {
  auto endpoints = r.string_array("endpoints");
  if (!endpoints) {
    if (!r.has("endpoints")) r.error("endpoints", "is required (the etcd members' client URLs)");
    return;
  }
  if (endpoints->empty()) r.error("endpoints", "needs at least one etcd member's client URL");
  for (const auto& e : *endpoints) {
    auto u = influx::parse_url(e);
    if (!u.ok()) {
      r.error("endpoints", "\"" + printable(e, 100) + "\": " + u.error().message);
    } else if (!u->path.empty()) {
      r.error("endpoints",
              "\"" + printable(e, 100) + "\" must be http(s)://host:port without a path");
    } else if (!u->tls() && !is_loopback_host(u->host)) {
      r.warning("endpoints", "\"" + printable(e, 100) +
                                 "\" is plain HTTP to another host: use https (etcd --cert-file) "
                                 "so that leadership and intents cannot be forged on the way");
    }
  }
  ha.endpoints = std::move(*endpoints);
}

void read_ha(const TomlValue* v, Config& c, Problems& p, const std::string& origin) {
  if (v == nullptr) return;
  TableReader r(*v, "ha", p);
  HaSection& ha = c.ha;
  ha.enabled = true;
  if (auto b = r.string("backend")) {
    if (*b != "etcd") {
      r.error("backend",
              "must be \"etcd\" (the one backend so far), not \"" + printable(*b, 40) + "\"");
    }
    ha.backend = *b;
  }
  read_ha_endpoints(r, ha);
  if (auto s = r.string("ca_file")) ha.ca_file = resolve_relative(*s, origin);
  if (auto s = r.string("cert_file")) ha.cert_file = resolve_relative(*s, origin);
  if (auto s = r.string("key_file")) ha.key_file = resolve_relative(*s, origin);
  if (ha.cert_file.empty() != ha.key_file.empty()) {
    r.error(ha.cert_file.empty() ? "cert_file" : "key_file",
            "cert_file and key_file go together (a client certificate and its key)");
  }
  if (auto s = r.string("username")) {
    if (s->empty() || s->size() > 128 || !is_valid_utf8(*s) ||
        std::any_of(s->begin(), s->end(),
                    [](char ch) { return static_cast<unsigned char>(ch) < 0x20; })) {
      r.error("username", "must be 1-128 printable characters");
    }
    ha.username = *s;
  }
  if (auto s = r.string("password_file")) ha.password_file = *s;  // as written, like token_file
  if (ha.username.empty() != ha.password_file.empty()) {
    r.error(ha.username.empty() ? "username" : "password_file",
            "username and password_file go together (etcd's user and its password)");
  }
  if (auto d = r.duration("lease_ttl", std::chrono::seconds(2), std::chrono::minutes(10))) {
    if (*d % std::chrono::seconds(1) != Duration(0)) {
      r.error("lease_ttl", "must be whole seconds (etcd grants leases in seconds)");
    }
    ha.lease_ttl = *d;
  }
  if (auto s = r.string("instance")) {
    if (!valid_identifier(*s, 128)) {
      r.error("instance",
              "\"" + printable(*s, 64) + "\" must be 1-128 letters, digits, '_', '.' or '-'");
    }
    ha.instance = *s;
  } else {
    ha.instance = host_name();
  }
  if (auto s = r.string("key_prefix")) {
    if (s->size() < 2 || s->front() != '/' || s->back() != '/' || !is_valid_utf8(*s) ||
        s->find_first_of(std::string("\0\n\r", 3)) != std::string::npos) {
      r.error("key_prefix", "must start and end with '/', like \"/tokenwarden/\"");
    }
    ha.key_prefix = *s;
  }
  r.finish();
}

// A fenced action must finish inside the leader's lease: every cluster's timeout (one request)
// must be shorter than lease_ttl.
void check_ha_timeouts(const Config& c, Problems& p) {
  if (!c.ha.enabled) return;
  for (const auto& cl : c.clusters) {
    // An influxdb3 revocation is two requests (find the token's name, then DELETE it).
    const bool two = cl.source.type == influx::SourceType::kInfluxdb3;
    const Duration need = cl.source.timeout * (two ? 2 : 1);
    if (need >= c.ha.lease_ttl) {
      p.errors.push_back("ha.lease_ttl: " + format_duration(c.ha.lease_ttl) +
                         " must be longer than " + (two ? "twice " : "") +
                         "the timeout of cluster \"" + cl.name + "\" (" +
                         format_duration(cl.source.timeout) +
                         "): an action is only started when it can finish inside the leader's "
                         "lease; raise lease_ttl or lower the cluster's timeout");
    }
  }
}

// Keys that only some source types take: set for another type, they are errors.
struct SourceKeys {
  TableReader& r;
  std::optional<std::string> type;  // as written
  bool type_ok = false;             // a known type
  bool only_for(std::string_view key, bool allowed, std::string_view what) {
    if (type_ok && r.has(key) && !allowed) {
      r.error(key, "is not used by type " + *type + " (" + std::string(what) + ")");
      return false;
    }
    return allowed;
  }
};

void read_cluster_name(TableReader& r, ClusterConfig& cl) {
  auto name = r.string("name");
  if (!name) {
    if (!r.has("name")) r.error("name", "is required");
  } else if (!valid_name(*name, false)) {
    r.error("name",
            "\"" + printable(*name, 64) + "\" must be 1-64 characters of a-z, 0-9, _ and -");
  } else {
    cl.name = *name;
  }
  cl.source.cluster = cl.name;
}

void read_cluster_type(SourceKeys& k, ClusterConfig& cl) {
  static const std::vector<std::pair<std::string_view, influx::SourceType>> kTypes{
      {"clustered", influx::SourceType::kClustered},
      {"dedicated", influx::SourceType::kDedicated},
      {"influxctl", influx::SourceType::kInfluxctl},
      {"influxdb3", influx::SourceType::kInfluxdb3}};
  k.type = k.r.string("type");
  if (!k.type) {
    if (!k.r.has("type"))
      k.r.error("type", "is required (clustered, dedicated, influxctl or influxdb3)");
    return;
  }
  for (const auto& [name, type] : kTypes) {
    if (*k.type == name) {
      cl.source.type = type;
      k.type_ok = true;
      return;
    }
  }
  k.r.error("type", "must be clustered, dedicated, influxctl or influxdb3, not \"" +
                        printable(*k.type, 40) + "\"");
}

// url, token_file and ca_file: the Management API and InfluxDB 3 sources.
void read_rest_source(SourceKeys& k, ClusterConfig& cl) {
  TableReader& r = k.r;
  const bool rest = cl.source.type != influx::SourceType::kInfluxctl;
  auto url = r.string("url");
  if (k.only_for("url", rest, "influxctl reads its host from influxctl_config")) {
    if (!url) {
      if (k.type_ok && !r.has("url")) r.error("url", "is required for type " + *k.type);
    } else if (auto u = influx::parse_url(*url); !u.ok()) {
      r.error("url", u.error().message);
    } else {
      cl.source.url = *url;
      if (!u->tls() && !is_loopback_host(u->host)) {
        r.warning("url", "plain http sends the management token unencrypted; use https");
      }
    }
  }
  auto token_file = r.string("token_file");
  if (k.only_for("token_file", rest, "influxctl reads its credentials from influxctl_config")) {
    if (!token_file || token_file->empty()) {
      if (k.type_ok && !token_file)
        r.error("token_file", "is required for type " + *k.type);
      else if (k.type_ok)
        r.error("token_file", "must not be empty");
    } else {
      cl.source.token_file = *token_file;
    }
  }
  auto ca_file = r.string("ca_file");
  if (k.only_for("ca_file", rest, "set the CA in the influxctl profile") && ca_file) {
    cl.source.ca_file = *ca_file;
  }
}

// timeout, max_response_mib, poll_interval and labels: every type.
void read_cluster_limits(TableReader& r, const Config& c, ClusterConfig& cl) {
  // influxctl pages through the list itself, one API call per page, within one run.
  if (cl.source.type == influx::SourceType::kInfluxctl) cl.source.timeout = kInfluxctlTimeout;
  if (auto t = r.duration("timeout", std::chrono::milliseconds(100), std::chrono::minutes(10))) {
    cl.source.timeout = *t;
  }
  if (auto n = r.integer("max_response_mib", 1, 4096)) {
    cl.source.max_response_bytes = static_cast<std::size_t>(*n) << 20;
  }
  cl.poll_interval = c.daemon.poll_interval;
  if (auto t = r.duration("poll_interval", std::chrono::seconds(1), std::chrono::hours(24 * 7))) {
    cl.poll_interval = *t;
    cl.poll_interval_overridden = true;
  }
  if (auto labels = r.string_table("labels")) {
    for (const auto& [key, val] : *labels) {
      if (!valid_label_name(key)) {
        r.error("labels",
                "label name \"" + printable(key, 40) + "\" must match [a-zA-Z_][a-zA-Z0-9_]*");
      }
    }
    cl.labels = *labels;
  }
}

void read_dedicated_ids(SourceKeys& k, ClusterConfig& cl) {
  const bool dedicated = cl.source.type == influx::SourceType::kDedicated;
  for (const char* key : {"account_id", "cluster_id"}) {
    auto s = k.r.string(key);
    if (!k.only_for(key, dedicated, "only dedicated clusters have account and cluster ids"))
      continue;
    if (!s) {
      if (k.type_ok && !k.r.has(key)) k.r.error(key, "is required for type dedicated");
    } else if (!is_uuid(*s)) {
      k.r.error(key, "\"" + printable(*s, 64) + "\" is not a UUID");
    } else {
      (std::string_view(key) == "account_id" ? cl.source.account_id : cl.source.cluster_id) = *s;
    }
  }
}

void read_influxctl_source(SourceKeys& k, ClusterConfig& cl) {
  TableReader& r = k.r;
  const bool ctl = cl.source.type == influx::SourceType::kInfluxctl;
  auto path_s = r.string("influxctl_path");
  if (k.only_for("influxctl_path", ctl, "only for type influxctl") && path_s) {
    if (path_s->empty())
      r.error("influxctl_path", "must not be empty");
    else
      cl.source.influxctl_path = *path_s;
  }
  auto cfg = r.string("influxctl_config");
  if (k.only_for("influxctl_config", ctl, "only for type influxctl")) {
    if (!cfg || cfg->empty()) {
      if (k.type_ok) r.error("influxctl_config", "is required for type influxctl");
    } else {
      cl.source.influxctl_config = *cfg;
    }
  }
  auto profile = r.string("profile");
  if (k.only_for("profile", ctl, "only for type influxctl") && profile)
    cl.source.profile = *profile;
}

void read_cluster(const TomlValue& v, std::size_t index, Config& c, Problems& p) {
  std::string path = "clusters[" + std::to_string(index) + "]";
  if (!v.is_table()) {
    p.errors.push_back(path + ": expected a table");
    return;
  }
  TableReader r(v, path, p);
  ClusterConfig cl;
  read_cluster_name(r, cl);
  SourceKeys keys{r, std::nullopt, false};
  read_cluster_type(keys, cl);
  read_rest_source(keys, cl);
  read_cluster_limits(r, c, cl);
  read_dedicated_ids(keys, cl);
  read_influxctl_source(keys, cl);
  r.finish();
  c.clusters.push_back(std::move(cl));
}

void read_scope(const TomlValue& v, const std::string& path, policy::Scope& scope, Problems& p) {
  TableReader r(v, path, p);
  if (!v.is_table()) {
    p.errors.push_back(path + ": expected a table like { clusters = [\"prod-*\"] }");
    return;
  }
  if (auto cl = r.string_array("clusters")) scope.clusters = *cl;
  if (auto d = r.string("description")) {
    auto s = policy::validate_regex(*d);
    if (!s.ok()) r.error("description", s.error().message);
    scope.description = *d;
  }
  if (auto l = r.string_table("labels")) {
    for (const auto& [k, value] : *l) {
      if (!valid_label_name(k)) {
        r.error("labels",
                "label name \"" + printable(k, 40) + "\" must match [a-zA-Z_][a-zA-Z0-9_]*");
      }
    }
    scope.labels = *l;
  }
  r.finish();
}

constexpr const char* kPolicyKinds =
    "max_lifetime, max_age, forbidden_grant, all_databases_grant, max_databases, "
    "description_pattern, expires_soon, orphaned";

// The policy's name and kind; the kind is empty when it is missing or unknown.
std::optional<policy::Kind> read_policy_name_and_kind(TableReader& r, policy::PolicySpec& ps) {
  auto name = r.string("name");
  if (!name) {
    if (!r.has("name")) r.error("name", "is required");
  } else if (!valid_name(*name, true)) {
    r.error("name", "\"" + printable(*name, 64) +
                        "\" must be 1-64 characters of a-z, A-Z, 0-9, _, - and .");
  } else {
    ps.name = *name;
  }
  auto kind_s = r.string("kind");
  if (!kind_s) {
    if (!r.has("kind")) r.error("kind", std::string("is required (") + kPolicyKinds + ")");
    return std::nullopt;
  }
  auto kind = policy::parse_kind(*kind_s);
  if (!kind) {
    r.error("kind",
            "unknown policy kind \"" + printable(*kind_s, 40) + "\" (" + kPolicyKinds + ")");
    return std::nullopt;
  }
  ps.kind = *kind;
  return kind;
}

// The parameters of each kind: which keys a kind takes (others are errors).
class KindParameters {
 public:
  KindParameters(TableReader& r, std::optional<policy::Kind> kind) : r_(r), kind_(kind) {
    for (const auto& prm : kParams) {
      r_.know(prm.key);
      if (kind_ && !applies(prm.key) && r_.find(prm.key) != nullptr) {
        r_.error(prm.key, "is not a parameter of kind " + name());
      }
    }
  }
  bool applies(std::string_view key) const {
    for (const auto& prm : kParams) {
      if (prm.key == key) {
        return kind_ && std::find(prm.kinds.begin(), prm.kinds.end(), *kind_) != prm.kinds.end();
      }
    }
    return false;
  }
  // For a parameter of the kind: an error if it is missing; true if the kind takes it.
  bool required(const char* key) {
    if (!applies(key)) return false;
    if (!r_.has(key)) r_.error(key, "is required for kind " + name());
    return true;
  }

 private:
  struct Param {
    std::string_view key;
    std::vector<policy::Kind> kinds;
  };
  std::string name() const { return std::string(policy::to_string(*kind_)); }
  inline static const std::vector<Param> kParams{
      {"max_lifetime", {policy::Kind::kMaxLifetime}},
      {"require_expiry", {policy::Kind::kMaxLifetime}},
      {"max_age", {policy::Kind::kMaxAge}},
      {"actions", {policy::Kind::kForbiddenGrant, policy::Kind::kAllDatabasesGrant}},
      {"databases", {policy::Kind::kForbiddenGrant}},
      {"max", {policy::Kind::kMaxDatabases}},
      {"pattern", {policy::Kind::kDescriptionPattern}},
      {"within", {policy::Kind::kExpiresSoon}},
      {"notify_before", {policy::Kind::kExpiresSoon}},
      {"known_owners", {policy::Kind::kOrphaned}}};
  TableReader& r_;
  std::optional<policy::Kind> kind_;
};

void read_grant_parameters(TableReader& r, KindParameters& k, std::optional<policy::Kind> kind,
                           policy::PolicySpec& ps) {
  using policy::Kind;
  if (k.applies("actions")) {
    if (kind == Kind::kForbiddenGrant) k.required("actions");
    if (auto a = r.string_array("actions")) {
      if (a->empty()) r.error("actions", "must list at least one of \"read\", \"write\"");
      for (const auto& x : *a) {
        if (x != "read" && x != "write") {
          r.error("actions", "\"" + printable(x, 40) + "\" is not an action (read, write)");
        }
      }
      ps.actions = *a;
    } else if (kind == Kind::kAllDatabasesGrant) {
      ps.actions = {"read", "write"};
    }
  }
  if (k.required("databases")) {
    if (auto d = r.string_array("databases")) {
      if (d->empty()) r.error("databases", "must list at least one database name or glob");
      ps.databases = *d;
    }
  }
  if (k.required("max")) ps.max = r.integer("max", 0, 1'000'000);
}

// expires_soon: `within` and the notice ladder `notify_before` (within defaults to its largest
// threshold and must not be smaller).
void read_expiry_parameters(TableReader& r, KindParameters& k, policy::PolicySpec& ps) {
  if (!k.applies("within")) return;
  constexpr auto kDecade = std::chrono::hours(24 * 366 * 10);
  if (auto n = r.string_array("notify_before")) {
    if (n->empty()) r.error("notify_before", "must list at least one duration, e.g. [\"7d\"]");
    for (const auto& text : *n) {
      auto d = parse_duration(text);
      if (!d.ok()) {
        r.error("notify_before", d.error().message);
      } else if (*d < std::chrono::minutes(1) || *d > kDecade) {
        r.error("notify_before", "\"" + printable(text, 40) + "\" must be between 1m and " +
                                     format_duration(kDecade));
      } else if (std::find(ps.notify_before.begin(), ps.notify_before.end(), *d) !=
                 ps.notify_before.end()) {
        r.error("notify_before", "\"" + printable(text, 40) + "\" is listed twice");
      } else {
        ps.notify_before.push_back(*d);
      }
    }
  }
  if (ps.notify_before.empty() && !r.has("notify_before")) k.required("within");
  if (r.has("within")) ps.within = r.duration("within", std::chrono::minutes(1), kDecade);
  if (ps.within && !ps.notify_before.empty()) {
    const Duration largest = *std::max_element(ps.notify_before.begin(), ps.notify_before.end());
    if (*ps.within < largest) {
      r.error("within", format_duration(*ps.within) +
                            " is smaller than the largest notify_before threshold " +
                            format_duration(largest) + " (leave within out to use it)");
    }
  }
  if (!ps.within && !ps.notify_before.empty())
    ps.within = *std::max_element(ps.notify_before.begin(), ps.notify_before.end());
}

void read_kind_parameters(TableReader& r, std::optional<policy::Kind> kind,
                          policy::PolicySpec& ps) {
  KindParameters k(r, kind);
  constexpr auto kCentury = std::chrono::hours(24 * 366 * 100);
  if (k.required("max_lifetime")) {
    ps.max_lifetime = r.duration("max_lifetime", std::chrono::minutes(1), kCentury);
    if (auto b = r.boolean("require_expiry")) ps.require_expiry = *b;
  }
  if (k.required("max_age")) ps.max_age = r.duration("max_age", std::chrono::minutes(1), kCentury);
  read_grant_parameters(r, k, kind, ps);
  if (k.required("pattern")) {
    if (auto pat = r.string("pattern")) {
      auto s = policy::validate_regex(*pat);
      if (!s.ok()) r.error("pattern", s.error().message);
      ps.pattern = *pat;
    }
  }
  read_expiry_parameters(r, k, ps);
  if (k.applies("known_owners")) {
    if (auto o = r.string_array("known_owners")) {
      if (o->empty()) r.error("known_owners", "must list at least one owner (or be left out)");
      ps.known_owners = *o;
    }
  }
}

void read_policy_action(TableReader& r, std::optional<policy::Kind> kind, policy::PolicySpec& ps) {
  using policy::Kind;
  auto s = r.string("action");
  if (!s) return;
  auto a = policy::parse_action(*s);
  if (!a) {
    r.error("action", "must be alert, restrict or revoke");
    return;
  }
  ps.action = *a;
  if (kind && *a == policy::Action::kRestrict && *kind != Kind::kForbiddenGrant &&
      *kind != Kind::kAllDatabasesGrant) {
    r.error("action", "restrict is only possible for forbidden_grant and all_databases_grant");
  }
  if (kind && *kind == Kind::kExpiresSoon && *a != policy::Action::kAlert) {
    r.error("action", "expires_soon is a notice; its action must be alert");
  }
}

// What happens to a violation: severity, action, mode, grace, maturity, approval.
void read_policy_handling(TableReader& r, std::optional<policy::Kind> kind,
                          policy::PolicySpec& ps) {
  if (auto s = r.string("severity")) {
    if (auto sev = policy::parse_severity(*s))
      ps.severity = *sev;
    else
      r.error("severity", "must be info, warning or critical");
  }
  read_policy_action(r, kind, ps);
  if (auto s = r.string("mode")) {
    if (auto m = policy::parse_mode(*s))
      ps.mode = *m;
    else
      r.error("mode", "must be \"enforce\" or \"monitor\"");
  }
  if (auto d = r.duration("grace_period", Duration(0), std::chrono::hours(24 * 366)))
    ps.grace_period = *d;
  if (auto d = r.duration("min_token_age", Duration(0), std::chrono::hours(24 * 366)))
    ps.min_token_age = *d;
  if (auto b = r.boolean("require_approval")) ps.require_approval = *b;
}

void read_policy(const TomlValue& v, std::size_t index, Config& c, Problems& p) {
  std::string path = "policies[" + std::to_string(index) + "]";
  if (!v.is_table()) {
    p.errors.push_back(path + ": expected a table");
    return;
  }
  TableReader r(v, path, p);
  policy::PolicySpec ps;
  const auto kind = read_policy_name_and_kind(r, ps);
  read_kind_parameters(r, kind, ps);
  read_policy_handling(r, kind, ps);
  r.know("scope");
  if (const TomlValue* s = r.find("scope")) read_scope(*s, path + ".scope", ps.scope, p);
  r.finish();
  c.policies.push_back(std::move(ps));
}

void read_exemption(const TomlValue& v, std::size_t index, Config& c, Timestamp now, Problems& p) {
  std::string path = "exemptions[" + std::to_string(index) + "]";
  if (!v.is_table()) {
    p.errors.push_back(path + ": expected a table");
    return;
  }
  TableReader r(v, path, p);
  policy::ExemptionSpec e;
  if (auto s = r.string("policy")) {
    e.policy = *s;
  } else if (!r.has("policy")) {
    r.error("policy", "is required (a policy name or \"*\")");
  }
  auto token = r.string("token_id");
  auto desc = r.string("description");
  if (token && desc) {
    r.error("token_id", "give either token_id or description, not both");
  } else if (!token && !desc && !r.has("token_id") && !r.has("description")) {
    r.error("token_id", "an exemption needs token_id or description");
  }
  if (token) {
    if (token->empty()) r.error("token_id", "must not be empty");
    e.token_id = *token;
  }
  if (desc) {
    auto s = policy::validate_regex(*desc);
    if (!s.ok()) r.error("description", s.error().message);
    e.description = *desc;
  }
  if (auto s = r.string("cluster")) e.cluster = *s;
  if (auto s = r.string("reason")) {
    if (trim(*s).empty()) r.error("reason", "must say why the exemption exists");
    e.reason = *s;
  } else if (!r.has("reason")) {
    r.error("reason", "is required (why, and a ticket reference)");
  }
  if (auto t = r.time("expires")) {
    e.expires = *t;
    if (*t > now + std::chrono::hours(24 * 366)) {
      r.error("expires",
              format_timestamp(*t) +
                  " is more than one year ahead; exemptions must be renewed at least yearly");
    } else if (*t <= now) {
      r.warning("expires",
                "this exemption expired on " + format_timestamp(*t) + " and has no effect");
    }
  } else if (!r.has("expires")) {
    r.error("expires", "is required (at most one year ahead)");
  }
  r.finish();
  c.exemptions.push_back(std::move(e));
}

// Alert labels a rule adds: Prometheus label names that do not replace tokenwarden's own.
void check_owner_labels(TableReader& r, const std::map<std::string, std::string>& labels) {
  static constexpr std::string_view kReserved[] = {"alertname", "cluster", "policy", "severity",
                                                   "token_id",  "owner",   "team",   "threshold"};
  for (const auto& [k, value] : labels) {
    if (!valid_label_name(k) || k.starts_with("__")) {
      r.error("labels",
              "label name \"" + printable(k, 40) + "\" must match [a-zA-Z_][a-zA-Z0-9_]*");
    } else if (std::find(std::begin(kReserved), std::end(kReserved), k) != std::end(kReserved)) {
      r.error("labels", "label \"" + k + "\" is set by tokenwarden itself and cannot be assigned");
    }
    if (!policy::valid_owner_value(value)) {
      r.error("labels",
              "the value of \"" + printable(k, 40) + "\" must be one line of 1 to 128 characters");
    }
  }
}

// What an [[owners]] rule assigns: a static owner/team/contact, or named groups of its regex.
void read_owner_assignment(TableReader& r, policy::OwnerRuleSpec& o, bool captures) {
  for (auto [key, field] : {std::pair{"owner", &o.owner}, std::pair{"team", &o.team},
                            std::pair{"contact", &o.contact}}) {
    if (auto s = r.string(key)) {
      if (!policy::valid_owner_value(*s)) {
        r.error(key, "must be one line of 1 to 128 characters");
      }
      *field = std::string(trim(*s));
    }
  }
  if (auto l = r.string_table("labels")) {
    check_owner_labels(r, *l);
    o.labels = *l;
  }
  if (o.owner.empty() && o.team.empty() && !captures) {
    r.error("owner",
            "the rule assigns nobody: set owner or team, or capture them with named groups "
            "(?P<owner>…) / (?P<team>…) in description_regex");
  }
}

void read_owner_rule(const TomlValue& v, std::size_t index, Config& c, Problems& p) {
  std::string path = "owners[" + std::to_string(index) + "]";
  if (!v.is_table()) {
    p.errors.push_back(path + ": expected a table");
    return;
  }
  TableReader r(v, path, p);
  policy::OwnerRuleSpec o;
  o.name = path;
  if (auto s = r.string("name")) {
    if (!valid_name(*s, true)) r.error("name", "must be 1-64 characters of [a-zA-Z0-9_.-]");
    o.name = *s;
  }
  bool captures = false;
  if (auto s = r.string("token_id")) {
    if (s->empty()) r.error("token_id", "must not be empty");
    o.token_id = *s;
  }
  if (auto s = r.string("description_regex")) {
    auto st = policy::validate_regex(*s);
    if (!st.ok()) r.error("description_regex", st.error().message);
    captures = policy::captures_owner(*s);
    o.description_regex = *s;
  }
  if (auto s = r.string("description_glob")) o.description_glob = *s;
  if (auto cl = r.string_array("clusters")) o.clusters = *cl;
  if (o.token_id.empty() && o.description_regex.empty() && o.description_glob.empty() &&
      o.clusters.empty() && !r.has("token_id")) {
    r.error("token_id",
            "an owner rule needs a matcher: token_id, description_regex, description_glob or "
            "clusters");
  }
  read_owner_assignment(r, o, captures);
  for (const auto& other : c.owners) {
    if (other.name == o.name) r.error("name", "\"" + o.name + "\" is used by another owner rule");
  }
  r.finish();
  c.owners.push_back(std::move(o));
}

template <class F>
void read_array_of_tables(const TomlValue& root, const char* key, Problems& p, F&& read_one) {
  if (!root.contains(key)) return;
  const auto& v = root.at(key);
  if (!v.is_array()) {
    p.errors.push_back(std::string(key) + ": expected an array of tables ([[" + key + "]])" +
                       line_of(v));
    return;
  }
  std::size_t i = 0;
  for (const auto& e : v.as_array()) read_one(e, i++);
}

// A `restrict` policy in scope of a cluster whose source cannot restrict (influxdb3: no token
// update) would plan actions that can only fail: refused up front, naming both.
void check_restrict_support(const Config& c, Problems& p) {
  for (std::size_t i = 0; i < c.policies.size(); ++i) {
    const auto& ps = c.policies[i];
    if (ps.action != policy::Action::kRestrict) continue;
    for (std::size_t j = 0; j < c.clusters.size(); ++j) {
      const auto& cl = c.clusters[j];
      if (cl.source.type != influx::SourceType::kInfluxdb3) continue;
      if (!policy::scope_covers(ps.scope, policy::ClusterInfo{cl.name, cl.labels})) continue;
      p.errors.push_back("policies[" + std::to_string(i) + "].action: policy \"" + ps.name +
                         "\" restricts tokens, but cluster \"" + cl.name + "\" (clusters[" +
                         std::to_string(j) +
                         "], type influxdb3) cannot change a token's permissions; use revoke or "
                         "alert, or scope the policy away from that cluster");
    }
  }
}

// An orphaned policy without [[owners]] rules: every token would be orphaned — an error when the
// policy would revoke them all, a warning when it only alerts.
void check_orphaned_policies(const Config& c, Problems& p) {
  if (!c.owners.empty()) return;
  for (std::size_t i = 0; i < c.policies.size(); ++i) {
    if (c.policies[i].kind != policy::Kind::kOrphaned) continue;
    if (c.policies[i].action != policy::Action::kAlert) {
      p.errors.push_back("policies[" + std::to_string(i) + "]: policy \"" + c.policies[i].name +
                         "\" would revoke every token: it is of kind orphaned and no [[owners]] "
                         "rules are configured");
      continue;
    }
    p.warnings.push_back("policies[" + std::to_string(i) + "]: policy \"" + c.policies[i].name +
                         "\" is of kind orphaned, but no [[owners]] rules are configured: every "
                         "token is orphaned");
  }
}

void cross_checks(Config& c, Problems& p) {
  check_restrict_support(c, p);
  check_orphaned_policies(c, p);
  std::set<std::string> names;
  for (std::size_t i = 0; i < c.clusters.size(); ++i) {
    const auto& n = c.clusters[i].name;
    if (!n.empty() && !names.insert(n).second) {
      p.errors.push_back("clusters[" + std::to_string(i) + "].name: \"" + n +
                         "\" is used by another cluster");
    }
  }
  std::set<std::string> policies;
  for (std::size_t i = 0; i < c.policies.size(); ++i) {
    const auto& n = c.policies[i].name;
    if (!n.empty() && !policies.insert(n).second) {
      p.errors.push_back("policies[" + std::to_string(i) + "].name: \"" + n +
                         "\" is used by another policy");
    }
    for (const auto& glob : c.policies[i].scope.clusters) {
      bool any = std::any_of(c.clusters.begin(), c.clusters.end(),
                             [&](const ClusterConfig& cl) { return glob_match(glob, cl.name); });
      if (!any) {
        p.warnings.push_back("policies[" + std::to_string(i) + "].scope.clusters: \"" + glob +
                             "\" matches no configured cluster");
      }
    }
  }
  for (std::size_t i = 0; i < c.exemptions.size(); ++i) {
    const auto& e = c.exemptions[i];
    if (!e.policy.empty() && e.policy != "*" && !policies.contains(e.policy)) {
      p.errors.push_back("exemptions[" + std::to_string(i) + "].policy: no policy is named \"" +
                         printable(e.policy, 64) + "\"");
    }
    if (!e.cluster.empty() && !names.contains(e.cluster)) {
      p.errors.push_back("exemptions[" + std::to_string(i) + "].cluster: no cluster is named \"" +
                         printable(e.cluster, 64) + "\"");
    }
  }
  // An empty or truncated file must not quietly switch monitoring off (at start or on a reload).
  if (c.clusters.empty()) {
    p.errors.push_back(
        "clusters: no [[clusters]] configured; at least one is required, or nothing would be "
        "monitored");
  }
}

// `base` set: a policy file, which holds only [[policies]] and [[exemptions]]; the result is
// `base` with those replaced.
ConfigLoad load(std::string_view text, const std::string& origin, Timestamp now,
                const Config* base = nullptr) {
  ConfigLoad out;
  out.hash = sha256_hex(text);
  if (base == nullptr && trim(text).empty()) {
    out.errors.push_back(
        origin + ": the file is empty; a configuration needs at least one [[clusters]] table");
    return out;
  }
  // TOML documents are UTF-8. Checked here, before toml11 sees the text: toml11 3.7's report of
  // invalid UTF-8 inside a string reads past its buffer (found by fuzz/config_fuzz.cpp).
  if (auto bad = first_invalid_utf8(text)) {
    out.errors.push_back(origin + ": line " + std::to_string(bad->line) + ", column " +
                         std::to_string(bad->column) +
                         ": not valid UTF-8 (a TOML file must be UTF-8 text)");
    return out;
  }
  Problems p;
  TomlValue root;
  try {
    std::string s(text);
    std::istringstream in(s);
    root = toml::parse(in, origin);
  } catch (const toml::syntax_error& e) {
    // toml11's message spans several lines with a source excerpt; keep it, it points at the error.
    out.errors.push_back(origin + ": TOML syntax error: " + std::string(trim(e.what())));
    return out;
  } catch (const std::exception& e) {
    out.errors.push_back(origin + ": cannot parse: " + e.what());
    return out;
  }
  Config c;
  if (base != nullptr) {
    c = *base;
    c.policies.clear();
    c.exemptions.clear();
  } else {
    c.path = origin;
    c.hash = out.hash;
  }
  TableReader top(root, "", p);
  auto section = [&](const char* key) -> const TomlValue* {
    top.know(key);
    if (!root.contains(key)) return nullptr;
    const auto& v = root.at(key);
    if (!v.is_table()) {
      p.errors.push_back(std::string(key) + ": expected a table [" + key + "]" + line_of(v));
      return nullptr;
    }
    return &v;
  };
  if (base == nullptr) {
    read_daemon(section("daemon"), c, p);
    read_http(section("http"), c, p);
    read_safety(section("safety"), c, p);
    read_alerting(section("alerting"), c, p);
    read_audit(section("audit"), c, p, origin);
    read_ha(section("ha"), c, p, origin);
    if (!c.http.web_config.empty() && !c.http.listen.empty()) {
      auto web = load_web_config_file(resolve_relative(c.http.web_config, origin),
                                      "http.web_config", p.errors);
      if (web) c.http.web = std::move(*web);
    }
    top.know("clusters");
    read_array_of_tables(root, "clusters", p,
                         [&](const TomlValue& v, std::size_t i) { read_cluster(v, i, c, p); });
    check_ha_timeouts(c, p);
  }
  for (const char* key : {"policies", "exemptions"}) top.know(key);
  if (base == nullptr) top.know("owners");  // a policy file for `simulate` has no [[owners]]
  read_array_of_tables(root, "policies", p,
                       [&](const TomlValue& v, std::size_t i) { read_policy(v, i, c, p); });
  read_array_of_tables(root, "exemptions", p,
                       [&](const TomlValue& v, std::size_t i) { read_exemption(v, i, c, now, p); });
  if (base == nullptr) {
    read_array_of_tables(root, "owners", p,
                         [&](const TomlValue& v, std::size_t i) { read_owner_rule(v, i, c, p); });
  }
  top.finish();
  cross_checks(c, p);
  out.errors = std::move(p.errors);
  out.warnings = std::move(p.warnings);
  if (out.errors.empty()) out.config = std::move(c);
  return out;
}

void toml_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

void kv(std::string& out, std::string_view key, std::string_view value) {
  out += key;
  out += " = ";
  toml_string(out, value);
  out += '\n';
}

void kv_raw(std::string& out, std::string_view key, const std::string& value) {
  out += key;
  out += " = ";
  out += value;
  out += '\n';
}

std::string string_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ", ";
    toml_string(out, v[i]);
  }
  return out + "]";
}

std::string inline_table(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    out += first ? " " : ", ";
    first = false;
    toml_string(out, k);  // quoted keys are valid TOML whatever the name
    out += " = ";
    toml_string(out, v);
  }
  return out + (m.empty() ? "}" : " }");
}

// The whole file, or why not (a directory opens as an empty stream; say what it is instead).
std::optional<std::string> read_file(const std::string& path, std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    error = "is a directory, not a file";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    error = "read error";
    return std::nullopt;
  }
  return std::move(buf).str();
}

}  // namespace

const ClusterConfig* Config::find_cluster(std::string_view name) const {
  for (const auto& c : clusters) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

ConfigLoad load_config_file(const std::string& path, Timestamp now) {
  std::string why;
  auto text = read_file(path, why);
  if (!text) {
    ConfigLoad out;
    out.errors.push_back(path + ": cannot read the configuration file: " + why);
    return out;
  }
  return load(*text, path, now);
}

std::optional<metrics::WebConfig> load_web_config_file(const std::string& path,
                                                       const std::string& key_prefix,
                                                       std::vector<std::string>& errors) {
  std::string why;
  auto text = read_file(path, why);
  if (!text) {
    errors.push_back(key_prefix + ": cannot read \"" + printable(path, 200) + "\": " + why);
    return std::nullopt;
  }
  return parse_web_config(*text, path, key_prefix, errors);
}

ConfigLoad load_config_string(std::string_view text, const std::string& origin, Timestamp now) {
  return load(text, origin, now);
}

ConfigLoad load_policy_file(const std::string& path, const Config& base, Timestamp now) {
  std::string why;
  auto text = read_file(path, why);
  if (!text) {
    ConfigLoad out;
    out.errors.push_back(path + ": cannot read the policy file: " + why);
    return out;
  }
  return load(*text, path, now, &base);
}

std::string redact_url(std::string_view url, bool keep_path) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url.empty() ? "" : "[redacted]");
  std::string_view rest = url.substr(scheme_end + 3);
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  auto at = authority.rfind('@');
  std::string out(url.substr(0, scheme_end + 3));
  if (at != std::string_view::npos) out += "[redacted]@";
  out += authority.substr(at == std::string_view::npos ? 0 : at + 1);
  if (slash != std::string_view::npos) {
    std::string_view tail = rest.substr(slash);
    auto query = tail.find_first_of("?#");
    if (keep_path) {
      out += tail.substr(0, query);
      if (query != std::string_view::npos) out += "?[redacted]";
    } else if (tail.size() > 1) {
      out += "/[redacted]";
    }
  }
  return out;
}

std::string_view to_string(ExportType type) {
  switch (type) {
    case ExportType::kSyslog:
      return "syslog";
    case ExportType::kJournald:
      return "journald";
    case ExportType::kFile:
      return "file";
  }
  return "file";
}

std::string ExportSinkConfig::target() const {
  switch (type) {
    case ExportType::kSyslog:
      return std::string(tls ? "syslog+tls://" : "syslog://") + address;
    case ExportType::kJournald:
      return "journald:" + socket;
    case ExportType::kFile:
      return "file:" + path;
  }
  return {};
}

namespace {

void render_ha(std::string& out, const HaSection& ha) {
  if (!ha.enabled) return;
  out += "\n[ha]\n";
  kv(out, "backend", ha.backend);
  kv_raw(out, "endpoints", string_list(ha.endpoints));
  if (!ha.ca_file.empty()) kv(out, "ca_file", ha.ca_file);
  if (!ha.cert_file.empty()) kv(out, "cert_file", ha.cert_file);
  if (!ha.key_file.empty()) kv(out, "key_file", ha.key_file);
  if (!ha.username.empty()) {
    kv(out, "username", ha.username);
    kv(out, "password_file", ha.password_file);
  }
  kv(out, "lease_ttl", format_duration(ha.lease_ttl));
  kv(out, "instance", ha.instance);
  kv(out, "key_prefix", ha.key_prefix);
}

void render_audit(std::string& out, const AuditSection& a) {
  out += "\n[audit]\n";
  kv(out, "signing_key_file", a.signing_key_file);
  kv(out, "public_key_file", a.public_key_file);
  kv(out, "checkpoint_interval", format_duration(a.checkpoint_interval));
  kv_raw(out, "checkpoint_events", std::to_string(a.checkpoint_events));
  kv_raw(out, "require_export", a.require_export ? "true" : "false");
  kv(out, "export_max_lag", format_duration(a.export_max_lag));
  for (const auto& e : a.exports) {
    out += "\n[[audit.export]]\n";
    kv(out, "name", e.name);
    kv(out, "type", to_string(e.type));
    switch (e.type) {
      case ExportType::kSyslog:
        kv(out, "address", e.address);
        kv_raw(out, "tls", e.tls ? "true" : "false");
        if (e.tls) {
          kv(out, "ca_file", e.ca_file);
          kv(out, "cert_file", e.cert_file);
          kv(out, "key_file", e.key_file);
        }
        break;
      case ExportType::kJournald:
        kv(out, "socket", e.socket);
        break;
      case ExportType::kFile:
        kv(out, "path", e.path);
        break;
    }
  }
}

}  // namespace

std::string render_config(const Config& c) {
  std::string out = "# Effective configuration of " + c.path + " (sha256 " + c.hash + ")\n";
  out += "# Defaults are filled in; secrets are redacted.\n\n[daemon]\n";
  kv(out, "database", c.daemon.database);
  kv(out, "poll_interval", format_duration(c.daemon.poll_interval));
  kv(out, "mode", policy::to_string(c.daemon.mode));
  kv(out, "log_level", to_string(c.daemon.log_level));
  kv(out, "log_format", c.daemon.log_format == LogFormat::kJson ? "json" : "text");
  kv_raw(out, "max_concurrent_polls", std::to_string(c.daemon.max_concurrent_polls));
  kv(out, "poll_jitter", format_duration(c.daemon.poll_jitter));
  out += "\n[http]\n";
  kv(out, "listen", c.http.listen);
  kv(out, "web_config", c.http.web_config);
  kv_raw(out, "reuse_metrics_text", c.http.reuse_metrics_text ? "true" : "false");
  out += "\n[safety]\n";
  kv_raw(out, "max_actions_per_cycle", std::to_string(c.safety.max_actions_per_cycle));
  kv_raw(out, "max_actions_percent", std::to_string(c.safety.max_actions_percent));
  kv_raw(out, "max_vanished_percent", std::to_string(c.safety.max_vanished_percent));
  out += "\n[alerting]\n";
  kv(out, "alertmanager_url", redact_url(c.alerting.alertmanager_url, true));
  kv(out, "webhook_url", redact_url(c.alerting.webhook_url, false));
  render_audit(out, c.audit);
  render_ha(out, c.ha);
  for (const auto& cl : c.clusters) {
    out += "\n[[clusters]]\n";
    kv(out, "name", cl.name);
    const auto& s = cl.source;
    switch (s.type) {
      case influx::SourceType::kClustered:
        kv(out, "type", "clustered");
        break;
      case influx::SourceType::kDedicated:
        kv(out, "type", "dedicated");
        break;
      case influx::SourceType::kInfluxctl:
        kv(out, "type", "influxctl");
        break;
      case influx::SourceType::kInfluxdb3:
        kv(out, "type", "influxdb3");
        break;
    }
    if (s.type != influx::SourceType::kInfluxctl) {
      kv(out, "url", redact_url(s.url, true));
      kv(out, "token_file", s.token_file);
      kv(out, "ca_file", s.ca_file);
    }
    if (s.type == influx::SourceType::kDedicated) {
      kv(out, "account_id", s.account_id);
      kv(out, "cluster_id", s.cluster_id);
    }
    if (s.type == influx::SourceType::kInfluxctl) {
      kv(out, "influxctl_path", s.influxctl_path);
      kv(out, "influxctl_config", s.influxctl_config);
      kv(out, "profile", s.profile);
    }
    kv(out, "timeout", format_duration(s.timeout));
    kv_raw(out, "max_response_mib", std::to_string(s.max_response_bytes >> 20));
    kv(out, "poll_interval", format_duration(cl.poll_interval));
    kv_raw(out, "labels", inline_table(cl.labels));
  }
  for (const auto& ps : c.policies) {
    out += "\n[[policies]]\n";
    kv(out, "name", ps.name);
    kv(out, "kind", policy::to_string(ps.kind));
    if (ps.max_lifetime) {
      kv(out, "max_lifetime", format_duration(*ps.max_lifetime));
      kv_raw(out, "require_expiry", ps.require_expiry ? "true" : "false");
    }
    if (ps.max_age) kv(out, "max_age", format_duration(*ps.max_age));
    if (!ps.actions.empty()) kv_raw(out, "actions", string_list(ps.actions));
    if (!ps.databases.empty()) kv_raw(out, "databases", string_list(ps.databases));
    if (ps.max) kv_raw(out, "max", std::to_string(*ps.max));
    if (ps.kind == policy::Kind::kDescriptionPattern) kv(out, "pattern", ps.pattern);
    if (ps.within) kv(out, "within", format_duration(*ps.within));
    if (!ps.notify_before.empty()) {
      std::vector<std::string> ladder;
      for (Duration d : ps.notify_before) ladder.push_back(format_duration(d));
      kv_raw(out, "notify_before", string_list(ladder));
    }
    if (!ps.known_owners.empty()) kv_raw(out, "known_owners", string_list(ps.known_owners));
    kv(out, "severity", policy::to_string(ps.severity));
    kv(out, "action", policy::to_string(ps.action));
    kv(out, "mode", policy::to_string(ps.mode.value_or(c.daemon.mode)));
    kv(out, "grace_period", format_duration(ps.grace_period));
    kv(out, "min_token_age", format_duration(ps.min_token_age));
    kv_raw(out, "require_approval", ps.require_approval ? "true" : "false");
    std::string scope = "{ clusters = " + string_list(ps.scope.clusters) + ", description = ";
    toml_string(scope, ps.scope.description);
    scope += ", labels = " + inline_table(ps.scope.labels) + " }";
    kv_raw(out, "scope", scope);
  }
  for (const auto& e : c.exemptions) {
    out += "\n[[exemptions]]\n";
    kv(out, "policy", e.policy);
    if (!e.token_id.empty()) kv(out, "token_id", e.token_id);
    if (!e.description.empty()) kv(out, "description", e.description);
    if (!e.cluster.empty()) kv(out, "cluster", e.cluster);
    kv(out, "reason", e.reason);
    kv_raw(out, "expires", format_timestamp(e.expires));
  }
  for (const auto& o : c.owners) {
    out += "\n[[owners]]\n";
    if (!o.name.starts_with("owners[")) kv(out, "name", o.name);  // else the default, by position
    if (!o.token_id.empty()) kv(out, "token_id", o.token_id);
    if (!o.description_regex.empty()) kv(out, "description_regex", o.description_regex);
    if (!o.description_glob.empty()) kv(out, "description_glob", o.description_glob);
    if (!o.clusters.empty()) kv_raw(out, "clusters", string_list(o.clusters));
    if (!o.owner.empty()) kv(out, "owner", o.owner);
    if (!o.team.empty()) kv(out, "team", o.team);
    if (!o.contact.empty()) kv(out, "contact", o.contact);
    if (!o.labels.empty()) kv_raw(out, "labels", inline_table(o.labels));
  }
  return out;
}

}  // namespace tw::daemon
