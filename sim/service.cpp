#include "sim/service.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <variant>

#include "core/json_writer.h"
#include "core/strings.h"
#include "sim/influxdb3_api.h"
#include "sim/wire.h"

namespace tw::sim {
namespace {

using json = nlohmann::json;

constexpr std::string_view kApiPrefix = "/api/v0/";
constexpr std::string_view kSimPrefix = "/_sim/";
constexpr std::size_t kMaxResourceChars = 64;
constexpr std::uint64_t kMaxGenerate = 10'000'000;

// --- responses -----------------------------------------------------------------------------

SimResponse json_response(int status, std::string body) {
  SimResponse r;
  r.status = status;
  r.body = std::make_shared<const std::string>(std::move(body));
  return r;
}

SimResponse error_response(int status, std::string_view message) {
  return json_response(status, error_body(status, message));
}

SimResponse error_response(int status) { return json_response(status, error_body(status)); }

// The Authorization header as an `echo_auth` fault quotes it.
std::string echoed(const std::string& authorization, const std::string& letter_case) {
  std::string out = authorization;
  if (letter_case == "upper") {
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  } else if (letter_case == "lower") {
    out = to_lower(out);
  }
  return out;
}

SimResponse method_not_allowed(std::string_view allow) {
  SimResponse r = error_response(405);
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

SimResponse no_content() {
  SimResponse r;
  r.status = 204;
  return r;
}

// An error carried from a parsing helper to the response: status and message.
struct HttpError {
  int status;
  std::string message;
};

template <class T>
using Parsed = std::variant<T, HttpError>;

HttpError bad_request(std::string message) { return HttpError{400, std::move(message)}; }

// --- request helpers -----------------------------------------------------------------------

std::size_t utf8_chars(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

Parsed<json> parse_body(const SimRequest& request) {
  if (trim(request.body).empty()) return bad_request("request body is required");
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return bad_request("request body is not valid JSON");
  return body;
}

Parsed<json> parse_object_body(const SimRequest& request) {
  auto body = parse_body(request);
  if (std::holds_alternative<HttpError>(body)) return body;
  if (!std::get<json>(body).is_object()) return bad_request("request body must be a JSON object");
  return body;
}

// Management API permissions: action a non-empty string, resource 1-64 characters or "*".
Parsed<std::vector<Permission>> api_permissions(const json& value) {
  if (!value.is_array()) return bad_request("permissions must be an array");
  std::vector<Permission> out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& p = value[i];
    std::string where = "permissions[" + std::to_string(i) + "]";
    if (!p.is_object()) return bad_request(where + " must be an object {action, resource}");
    auto action = p.find("action");
    auto resource = p.find("resource");
    if (action == p.end() || !action->is_string() ||
        action->get_ref<const std::string&>().empty()) {
      return bad_request(where + ".action must be a non-empty string (\"read\" or \"write\")");
    }
    if (resource == p.end() || !resource->is_string()) {
      return bad_request(where + ".resource must be a string (a database name or \"*\")");
    }
    const auto& res = resource->get_ref<const std::string&>();
    if (res.empty() || utf8_chars(res) > kMaxResourceChars) {
      return bad_request(where +
                         ".resource must be a database name of 1 to 64 characters or \"*\"");
    }
    out.push_back(Permission{action->get<std::string>(), res});
  }
  return out;
}

// An RFC 3339 timestamp field; absent or null: nullopt.
Parsed<std::optional<Timestamp>> timestamp_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<Timestamp>{};
  if (!it->is_string()) return bad_request(std::string(key) + " must be an RFC 3339 string");
  auto t = parse_rfc3339(it->get_ref<const std::string&>());
  if (!t.ok()) return bad_request(std::string(key) + ": " + t.error().message);
  return std::optional<Timestamp>{*t};
}

// A token object in API shape for the control API: any strings are accepted so that tests can
// seed what a misbehaving server might hold.
Parsed<Token> sim_token(const json& v, const std::string& where) {
  if (!v.is_object()) return bad_request(where + " must be a token object");
  Token t;
  if (auto it = v.find("id"); it != v.end() && !it->is_null()) {
    if (!it->is_string()) return bad_request(where + ".id must be a string");
    t.id = it->get<std::string>();
  }
  if (auto it = v.find("description"); it != v.end() && !it->is_null()) {
    if (!it->is_string()) return bad_request(where + ".description must be a string");
    t.description = it->get<std::string>();
  }
  if (auto it = v.find("permissions"); it != v.end() && !it->is_null()) {
    if (!it->is_array()) return bad_request(where + ".permissions must be an array");
    for (const auto& p : *it) {
      if (!p.is_object() || !p.contains("action") || !p.contains("resource") ||
          !p["action"].is_string() || !p["resource"].is_string()) {
        return bad_request(where +
                           ".permissions elements must be {\"action\": string, "
                           "\"resource\": string}");
      }
      t.permissions.push_back(
          Permission{p["action"].get<std::string>(), p["resource"].get<std::string>()});
    }
    sort_permissions(t.permissions);
  }
  for (auto [key, field] :
       {std::pair{"createdAt", &t.created_at}, std::pair{"expiresAt", &t.expires_at},
        std::pair{"revokedAt", &t.revoked_at}}) {
    auto ts = timestamp_field(v, key);
    if (auto* e = std::get_if<HttpError>(&ts)) return bad_request(where + "." + e->message);
    *field = std::get<std::optional<Timestamp>>(ts);
  }
  return t;
}

std::uint64_t seed_field(const json& body) {
  auto it = body.find("seed");
  if (it != body.end() && it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it != body.end() && it->is_number_integer()) {
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  }
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// Reads a non-negative integer field; nullopt if absent.
Parsed<std::optional<std::uint64_t>> count_field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::optional<std::uint64_t>{};
  if (it->is_number_unsigned()) return std::optional<std::uint64_t>{it->get<std::uint64_t>()};
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0) {
    return std::optional<std::uint64_t>{static_cast<std::uint64_t>(it->get<std::int64_t>())};
  }
  return bad_request(std::string(key) + " must be a non-negative integer");
}

std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::string(trim(ss.str()));
}

bool equal_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string clock_json(const TokenStore& store) {
  std::string out;
  JsonWriter w(out);
  w.begin_object()
      .field("now", store.now())
      .field("mode", to_string(store.clock_mode()))
      .end_object();
  return out;
}

std::string faults_json(const std::vector<Fault>& faults) {
  std::string out;
  JsonWriter w(out);
  w.begin_array();
  for (const auto& f : faults) {
    w.begin_object().field("id", f.id).field("kind", to_string(f.spec.kind));
    if (f.spec.kind == FaultKind::kStatus || f.spec.kind == FaultKind::kRedirect) {
      w.field("status", f.spec.status);
    }
    if (!f.spec.location.empty()) w.field("location", f.spec.location);
    if (!f.spec.retry_after.empty()) w.field("retry_after", f.spec.retry_after);
    w.field("delay", format_duration(f.spec.delay)).field("count", f.spec.count);
    w.field("hits", f.hits);
    w.key("method");
    f.spec.method.empty() ? w.null() : w.value(f.spec.method);
    w.key("path");
    f.spec.path.empty() ? w.null() : w.value(f.spec.path);
    if (!f.spec.echo_auth.empty()) w.field("echo_auth", f.spec.echo_auth);
    w.end_object();
  }
  w.end_array();
  return out;
}

std::string requests_json(const std::vector<RequestRecord>& records) {
  std::string out;
  out.reserve(records.size() * 160);
  JsonWriter w(out);
  w.begin_array();
  for (const auto& r : records) {
    w.begin_object().field("seq", r.seq).field("time", r.time).field("method", r.method);
    w.field("path", r.path);
    if (!r.query.empty()) w.field("query", r.query);
    w.field("status", r.status).field("auth", to_string(r.auth));
    w.key("fault");
    r.fault ? w.value(to_string(*r.fault)) : w.null();
    w.key("body");
    if (!r.body) {
      w.null();
    } else if (json::accept(*r.body)) {
      w.raw(trim(*r.body));  // valid JSON (and UTF-8): embedded as is
    } else {
      w.value(*r.body);
    }
    w.end_object();
  }
  w.end_array();
  return out;
}

// A header value a fault sends: printable ASCII, so it cannot break the response's framing.
bool header_safe(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// The body of POST /_sim/faults (docs/simulator.md "Faults").
Parsed<FaultSpec> fault_spec(const json& body) {
  FaultSpec spec;
  auto kind = body.find("kind");
  if (kind == body.end() || !kind->is_string() || !parse_fault_kind(kind->get<std::string>())) {
    return bad_request(std::string("kind must be one of: ") + fault_kind_names());
  }
  spec.kind = *parse_fault_kind(kind->get<std::string>());
  if (spec.kind == FaultKind::kRedirect) spec.status = 302;
  if (auto s = body.find("status"); s != body.end() && !s->is_null()) {
    if (!s->is_number_integer() || s->get<int>() < 200 || s->get<int>() > 599) {
      return bad_request("status must be an HTTP status code from 200 to 599");
    }
    spec.status = s->get<int>();
  }
  if (auto d = body.find("delay"); d != body.end() && !d->is_null()) {
    if (!d->is_string()) return bad_request("delay must be a duration string (\"3s\")");
    auto dur = parse_duration(d->get<std::string>());
    if (!dur.ok()) return bad_request("delay: " + dur.error().message);
    spec.delay = *dur;
  }
  auto count = count_field(body, "count");
  if (auto* e = std::get_if<HttpError>(&count)) return *e;
  spec.count = std::get<std::optional<std::uint64_t>>(count).value_or(0);
  for (auto [key, field] :
       {std::pair{"method", &spec.method}, std::pair{"path", &spec.path},
        std::pair{"echo_auth", &spec.echo_auth}, std::pair{"location", &spec.location}}) {
    if (auto it = body.find(key); it != body.end() && !it->is_null()) {
      if (!it->is_string()) return bad_request(std::string(key) + " must be a string");
      *field = it->get<std::string>();
    }
  }
  if (auto r = body.find("retry_after"); r != body.end() && !r->is_null()) {
    if (r->is_number_unsigned()) {
      spec.retry_after = std::to_string(r->get<std::uint64_t>());
    } else if (r->is_string()) {
      spec.retry_after = r->get<std::string>();
    } else {
      return bad_request("retry_after must be a number of seconds (0 or more) or a string");
    }
  }
  if (!spec.echo_auth.empty() && spec.echo_auth != "exact" && spec.echo_auth != "upper" &&
      spec.echo_auth != "lower") {
    return bad_request("echo_auth must be exact, upper or lower");
  }
  if (!spec.retry_after.empty() &&
      (spec.kind != FaultKind::kStatus || !header_safe(spec.retry_after))) {
    return bad_request("retry_after is for status faults and must be printable ASCII");
  }
  if (spec.kind == FaultKind::kRedirect) {
    const int st = spec.status;
    if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308) {
      return bad_request("a redirect's status must be 301, 302, 303, 307 or 308");
    }
    if (spec.location.empty() || !header_safe(spec.location)) {
      return bad_request("a redirect needs a location: an absolute URL or a path, printable ASCII");
    }
  } else if (!spec.location.empty()) {
    return bad_request("location is for redirect faults");
  }
  return spec;
}

// A malformed body: looks like the start of a token list, then is cut and garbled.
constexpr std::string_view kMalformedBody =
    R"([{"id":"6f1d3a2e-5b7c-4d8e-9f00-112233445566","description":"malformed)"
    "\n<html><body>502 Bad Gateway</body></html>\n";

// --- control API (/_sim/…): one function per endpoint ------------------------------------------

SimResponse ok_response() { return json_response(200, R"({"ok":true})"); }

SimResponse control_health(const SimRequest& request) {
  if (request.method != "GET") return method_not_allowed("GET");
  return ok_response();
}

SimResponse control_info(const SimRequest& request, const SimOptions& options,
                         const TokenStore& store) {
  if (request.method != "GET") return method_not_allowed("GET");
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("flavor", to_string(options.flavor));
  w.field("accountId", options.account_id).field("clusterId", options.cluster_id);
  w.field("tokens", static_cast<std::uint64_t>(store.size()));
  w.field("listIncludesRevoked", options.list_includes_revoked);
  if (options.flavor == Flavor::kInfluxdb3) w.field("withoutAuth", options.without_auth);
  w.end_object();
  return json_response(200, std::move(out));
}

SimResponse control_reset(const SimRequest& request, TokenStore& store) {
  if (request.method != "POST") return method_not_allowed("POST");
  store.reset();
  return ok_response();
}

// POST /_sim/tokens {"generate": N, "seed": S}.
SimResponse generate_tokens(const json& body, TokenStore& store) {
  auto n = count_field(body, "generate");
  if (auto* e = std::get_if<HttpError>(&n)) return error_response(400, e->message);
  std::uint64_t count = std::get<std::optional<std::uint64_t>>(n).value_or(0);
  if (count > kMaxGenerate) return error_response(400, "generate is limited to 10000000 tokens");
  store.generate(static_cast<std::size_t>(count), seed_field(body));
  return json_response(200, "{\"count\":" + std::to_string(count) + "}");
}

// POST /_sim/tokens with one token or an array of them: all or nothing.
SimResponse put_tokens(const json& body, TokenStore& store) {
  std::vector<Token> tokens;
  if (body.is_array()) {
    tokens.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
      auto t = sim_token(body[i], "[" + std::to_string(i) + "]");
      if (auto* e = std::get_if<HttpError>(&t)) return error_response(400, e->message);
      tokens.push_back(std::move(std::get<Token>(t)));
    }
  } else {
    auto t = sim_token(body, "token");
    if (auto* e = std::get_if<HttpError>(&t)) return error_response(400, e->message);
    tokens.push_back(std::move(std::get<Token>(t)));
  }
  for (auto& t : tokens) store.put(std::move(t));
  return json_response(200, "{\"count\":" + std::to_string(tokens.size()) + "}");
}

SimResponse control_tokens(const SimRequest& request, TokenStore& store) {
  if (request.method == "GET") {
    SimResponse r;
    r.body = store.list_json(true);
    return r;
  }
  if (request.method != "POST") return method_not_allowed("GET, POST");
  auto parsed = parse_body(request);
  if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
  const json& body = std::get<json>(parsed);
  if (body.is_object() && body.contains("generate")) return generate_tokens(body, store);
  return put_tokens(body, store);
}

SimResponse control_token(const SimRequest& request, const std::string& id, TokenStore& store) {
  if (request.method == "GET") {
    auto t = store.get(id);
    if (!t) return error_response(404, "token not found");
    return json_response(200, store.token_json(*t));
  }
  if (request.method == "DELETE") {
    if (!store.remove(id)) return error_response(404, "token not found");
    return ok_response();
  }
  if (request.method != "PUT") return method_not_allowed("GET, PUT, DELETE");
  auto parsed = parse_object_body(request);
  if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
  auto t = sim_token(std::get<json>(parsed), "token");
  if (auto* e = std::get_if<HttpError>(&t)) return error_response(400, e->message);
  Token& token = std::get<Token>(t);
  if (!token.id.empty() && token.id != id) {
    return error_response(400, "the id in the body differs from the id in the path");
  }
  token.id = id;
  if (!store.replace(token)) return error_response(404, "token not found");
  return json_response(200, store.token_json(*store.get(id)));
}

SimResponse control_churn(const SimRequest& request, TokenStore& store) {
  if (request.method != "POST") return method_not_allowed("POST");
  json body = json::object();
  if (!trim(request.body).empty()) {
    auto parsed = parse_object_body(request);
    if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
    body = std::get<json>(parsed);
  }
  double percent = 1.0;
  if (auto p = body.find("percent"); p != body.end()) {
    if (!p->is_number() || p->get<double>() <= 0 || p->get<double>() > 100) {
      return error_response(400, "percent must be a number in (0, 100]");
    }
    percent = p->get<double>();
  }
  ChurnResult r = store.churn(percent, seed_field(body));
  std::string out;
  JsonWriter w(out);
  w.begin_object().field("created", static_cast<std::uint64_t>(r.created));
  w.field("updated", static_cast<std::uint64_t>(r.updated));
  w.field("revoked", static_cast<std::uint64_t>(r.revoked)).end_object();
  return json_response(200, std::move(out));
}

// POST /_sim/clock: exactly one of {"now": RFC 3339}, {"advance": duration}, {"real": true}.
std::optional<HttpError> set_clock(const json& body, TokenStore& store) {
  int given = static_cast<int>(body.contains("now")) + static_cast<int>(body.contains("advance")) +
              static_cast<int>(body.contains("real"));
  if (given != 1) {
    return bad_request(
        "give exactly one of {\"now\": RFC 3339}, {\"advance\": duration}, {\"real\": true}");
  }
  if (body.contains("now")) {
    if (!body["now"].is_string()) return bad_request("now must be an RFC 3339 string");
    auto t = parse_rfc3339(body["now"].get<std::string>());
    if (!t.ok()) return bad_request("now: " + t.error().message);
    store.freeze_clock(*t);
  } else if (body.contains("advance")) {
    if (!body["advance"].is_string()) {
      return bad_request("advance must be a duration string such as \"36h\"");
    }
    auto d = parse_duration(body["advance"].get<std::string>());
    if (!d.ok()) return bad_request("advance: " + d.error().message);
    store.advance_clock(*d);
  } else {
    if (body["real"] != true) return bad_request("real must be true");
    store.use_real_clock();
  }
  return std::nullopt;
}

SimResponse control_clock(const SimRequest& request, TokenStore& store) {
  if (request.method == "GET") return json_response(200, clock_json(store));
  if (request.method != "POST") return method_not_allowed("GET, POST");
  auto parsed = parse_object_body(request);
  if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
  if (auto e = set_clock(std::get<json>(parsed), store)) return error_response(400, e->message);
  return json_response(200, clock_json(store));
}

SimResponse control_faults(const SimRequest& request, TokenStore& store) {
  if (request.method == "GET") return json_response(200, faults_json(store.faults()));
  if (request.method == "DELETE") {
    store.clear_faults();
    return ok_response();
  }
  if (request.method != "POST") return method_not_allowed("GET, POST, DELETE");
  auto parsed = parse_object_body(request);
  if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
  auto spec = fault_spec(std::get<json>(parsed));
  if (auto* e = std::get_if<HttpError>(&spec)) return error_response(e->status, e->message);
  std::uint64_t id = store.add_fault(std::move(std::get<FaultSpec>(spec)));
  return json_response(200, "{\"id\":" + std::to_string(id) + "}");
}

SimResponse control_fault(const SimRequest& request, const std::string& text, TokenStore& store) {
  if (request.method != "DELETE") return method_not_allowed("DELETE");
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || !store.remove_fault(id)) {
    return error_response(404, "fault not found");
  }
  return ok_response();
}

SimResponse control_requests(const SimRequest& request, TokenStore& store) {
  if (request.method == "GET") return json_response(200, requests_json(store.requests()));
  if (request.method != "DELETE") return method_not_allowed("GET, DELETE");
  store.clear_requests();
  return ok_response();
}

}  // namespace

Service::Service(SimOptions options, TokenStore& store)
    : options_(std::move(options)), store_(store) {}

AuthResult Service::check_auth(const std::optional<std::string>& header) const {
  if (options_.without_auth) return AuthResult::kOk;
  if (!header) return AuthResult::kMissing;
  std::string_view h = trim(*header);
  if (h.size() < 7 || to_lower(h.substr(0, 7)) != "bearer ") return AuthResult::kInvalid;
  std::string_view presented = trim(h.substr(7));
  std::string expected = options_.token_file.empty() ? options_.management_token
                                                     : read_token_file(options_.token_file);
  if (expected.empty() || presented.empty()) return AuthResult::kInvalid;
  return equal_secret(presented, expected) ? AuthResult::kOk : AuthResult::kInvalid;
}

SimResponse Service::handle(const SimRequest& request) {
  std::string path = request.target.substr(0, request.target.find('?'));
  if (starts_with(path, kSimPrefix) || path == "/_sim") {
    SimResponse resp = control(request, path);
    options_.logger.info("control request",
                         {{"method", request.method}, {"path", path}, {"status", resp.status}});
    return resp;
  }

  RequestRecord rec;
  rec.time = store_.now();
  rec.method = request.method;
  rec.path = path;
  if (auto q = request.target.find('?'); q != std::string::npos)
    rec.query = request.target.substr(q + 1);
  rec.auth = check_auth(request.authorization);
  if ((request.method == "POST" || request.method == "PATCH" || request.method == "PUT") &&
      !request.body_too_large) {
    rec.body = request.body;
  }

  SimResponse resp;
  if (auto fault = store_.take_fault(request.method, path)) {
    rec.fault = fault->kind;
    switch (fault->kind) {
      case FaultKind::kStatus:
        resp = fault->echo_auth.empty()
                   ? error_response(fault->status)
                   : error_response(
                         fault->status,
                         default_error_message(fault->status) + " (header was " +
                             echoed(request.authorization.value_or(""), fault->echo_auth) + ")");
        if (!fault->retry_after.empty())
          resp.headers.emplace_back("Retry-After", fault->retry_after);
        resp.delay = fault->delay;
        break;
      case FaultKind::kRedirect:
        resp = error_response(fault->status);
        resp.headers.emplace_back("Location", fault->location);
        resp.delay = fault->delay;
        break;
      case FaultKind::kTimeout:
        resp.status = 0;
        resp.fault = FaultKind::kTimeout;
        resp.delay = fault->delay.count() > 0 ? fault->delay : kDefaultTimeoutHold;
        break;
      case FaultKind::kSlow:
      case FaultKind::kTruncate:
        resp = management(request, path, rec.auth);
        resp.fault = fault->kind;
        resp.delay = fault->delay;
        break;
      case FaultKind::kMalformed:
        resp = json_response(200, std::string(kMalformedBody));
        resp.delay = fault->delay;
        break;
      case FaultKind::kEmpty:
        resp = json_response(200, "[]");
        resp.delay = fault->delay;
        break;
      case FaultKind::kReset:
        resp.status = 0;
        resp.fault = FaultKind::kReset;
        break;
      case FaultKind::kIgnore:
        resp = acknowledge_without_effect(request, path, rec.auth);
        break;
    }
  } else {
    resp = management(request, path, rec.auth);
  }
  rec.status = resp.status;
  std::optional<FaultKind> fault = rec.fault;
  store_.record(std::move(rec));
  if (fault) {
    options_.logger.info("request", {{"method", request.method},
                                     {"path", path},
                                     {"status", resp.status},
                                     {"fault", to_string(*fault)}});
  } else {
    options_.logger.info("request",
                         {{"method", request.method}, {"path", path}, {"status", resp.status}});
  }
  return resp;
}

SimResponse Service::acknowledge_without_effect(const SimRequest& request, const std::string& path,
                                                AuthResult auth) {
  if (options_.flavor == Flavor::kInfluxdb3) {
    return influxdb3_acknowledge_without_effect(request, path, auth, store_, options_);
  }
  // Carry the request out, answer with its result, then put the token back as it was.
  std::string id = path.substr(path.rfind('/') + 1);
  std::optional<Token> before = store_.get(id);
  SimResponse resp = management(request, path, auth);
  if (before) {
    store_.replace(*before);
  } else if (request.method == "DELETE" && resp.status == 404) {
    resp = SimResponse{};
    resp.status = 204;
  }
  return resp;
}

SimResponse Service::management(const SimRequest& request, const std::string& path,
                                AuthResult auth) {
  if (request.body_too_large) {
    return error_response(413, "request body is larger than 1 MiB");
  }
  if (options_.flavor == Flavor::kInfluxdb3) {
    return influxdb3_management(request, path, auth, store_, options_);
  }
  if (!starts_with(path, kApiPrefix)) return error_response(404);
  if (auth != AuthResult::kOk) return error_response(401);

  // Route: tokens[/{id}] or accounts/{a}/clusters/{c}/tokens[/{id}].
  std::vector<std::string> seg = split(std::string_view(path).substr(kApiPrefix.size()), '/');
  std::size_t base = 0;
  if (seg.size() >= 5 && seg[0] == "accounts" && seg[2] == "clusters" && seg[4] == "tokens") {
    if (!is_uuid(seg[1])) return error_response(400, "accountId must be a UUID");
    if (!is_uuid(seg[3])) return error_response(400, "clusterId must be a UUID");
    if (options_.flavor == Flavor::kDedicated &&
        (to_lower(seg[1]) != to_lower(options_.account_id) ||
         to_lower(seg[3]) != to_lower(options_.cluster_id))) {
      return error_response(404, "account or cluster not found");
    }
    base = 4;
  } else if (!seg.empty() && seg[0] == "tokens" && options_.flavor == Flavor::kClustered) {
    base = 0;
  } else {
    return error_response(404);
  }
  if (seg.size() > base + 2) return error_response(404);
  const std::string& method = request.method;

  if (seg.size() == base + 1) {  // the collection
    if (method == "GET") {
      SimResponse r;
      r.body = store_.list_json(options_.list_includes_revoked);
      return r;
    }
    if (method != "POST") return method_not_allowed("GET, POST");
    auto parsed = parse_object_body(request);
    if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
    const json& body = std::get<json>(parsed);
    auto desc = body.find("description");
    if (desc == body.end() || desc->is_null())
      return error_response(400, "description is required");
    if (!desc->is_string()) return error_response(400, "description must be a string");
    std::vector<Permission> perms;
    if (auto p = body.find("permissions"); p != body.end() && !p->is_null()) {
      auto parsed_perms = api_permissions(*p);
      if (auto* e = std::get_if<HttpError>(&parsed_perms)) return error_response(400, e->message);
      perms = std::move(std::get<std::vector<Permission>>(parsed_perms));
    }
    auto expires = timestamp_field(body, "expiresAt");
    if (auto* e = std::get_if<HttpError>(&expires)) return error_response(400, e->message);
    auto expires_at = std::get<std::optional<Timestamp>>(expires);
    if (auto type = body.find("expirationType"); type != body.end() && !type->is_null()) {
      if (*type == "datetime") {
        if (!expires_at) {
          return error_response(400, "expiresAt is required when expirationType is \"datetime\"");
        }
      } else if (*type == "noExpiration") {
        if (expires_at) {
          return error_response(400,
                                "expiresAt must not be set when expirationType is "
                                "\"noExpiration\"");
        }
      } else {
        return error_response(400, "expirationType must be \"datetime\" or \"noExpiration\"");
      }
    }
    CreatedToken created = store_.create(desc->get<std::string>(), std::move(perms), expires_at);
    return json_response(200, store_.token_json(created.token, &created.access_token));
  }

  // One token.
  const std::string& id = seg[base + 1];
  if (id.empty()) return error_response(404);
  if (method != "GET" && method != "PATCH" && method != "DELETE") {
    return method_not_allowed("GET, PATCH, DELETE");
  }
  if (!is_uuid(id)) return error_response(400, "tokenId must be a UUID");
  if (method == "GET") {
    auto token = store_.get(id);
    if (!token) return error_response(404, "token not found");
    return json_response(200, store_.token_json(*token));
  }
  if (method == "DELETE") {
    auto revoked = store_.revoke(id);
    if (!revoked.ok()) return error_response(revoked.error().http_status, revoked.error().message);
    return no_content();
  }
  // PATCH
  auto parsed = parse_object_body(request);
  if (auto* e = std::get_if<HttpError>(&parsed)) return error_response(e->status, e->message);
  const json& body = std::get<json>(parsed);
  if (body.contains("expiresAt") || body.contains("expirationType")) {
    return error_response(400, "expiresAt cannot be changed after creation; create a new token");
  }
  std::optional<std::string> description;
  std::optional<std::vector<Permission>> permissions;
  if (auto d = body.find("description"); d != body.end()) {
    if (!d->is_string()) return error_response(400, "description must be a string");
    description = d->get<std::string>();
  }
  if (auto p = body.find("permissions"); p != body.end()) {
    auto parsed_perms = api_permissions(*p);
    if (auto* e = std::get_if<HttpError>(&parsed_perms)) return error_response(400, e->message);
    permissions = std::move(std::get<std::vector<Permission>>(parsed_perms));
  }
  if (!description && !permissions) {
    return error_response(400, "the update must set description and/or permissions");
  }
  auto updated = store_.update(id, std::move(description), std::move(permissions));
  if (!updated.ok()) return error_response(updated.error().http_status, updated.error().message);
  return json_response(200, store_.token_json(*updated));
}

SimResponse Service::control(const SimRequest& request, const std::string& path) {
  if (request.body_too_large) return error_response(413, "request body is larger than 1 MiB");
  std::vector<std::string> seg = split(std::string_view(path).substr(1), '/');  // "_sim", …
  const std::string what = seg.size() >= 2 ? seg[1] : std::string();
  if (seg.size() == 2) {
    if (what == "health") return control_health(request);
    if (what == "info") return control_info(request, options_, store_);
    if (what == "reset") return control_reset(request, store_);
    if (what == "tokens") return control_tokens(request, store_);
    if (what == "churn") return control_churn(request, store_);
    if (what == "clock") return control_clock(request, store_);
    if (what == "faults") return control_faults(request, store_);
    if (what == "requests") return control_requests(request, store_);
  }
  if (seg.size() == 3 && what == "tokens" && !seg[2].empty()) {
    return control_token(request, seg[2], store_);
  }
  if (seg.size() == 3 && what == "faults") return control_fault(request, seg[2], store_);
  return error_response(404, "no such control endpoint (see docs/simulator.md)");
}

}  // namespace tw::sim
