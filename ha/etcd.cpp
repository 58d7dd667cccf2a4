#include "ha/etcd.h"

#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/strings.h"

namespace tw::ha {

namespace {

using json = nlohmann::json;

// int64 fields come as JSON strings ("42") from the gateway; accept numbers too. Absent: 0.
std::int64_t int_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    try {
      std::size_t used = 0;
      auto v = std::stoll(s, &used);
      if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error(std::string("field \"") + name + "\" is not an integer");
}

std::string bytes_field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return {};
  if (!it->is_string()) throw std::runtime_error(std::string("field \"") + name + "\" is not text");
  auto decoded = base64_decode(it->get_ref<const std::string&>());
  if (!decoded) throw std::runtime_error(std::string("field \"") + name + "\" is not base64");
  return *decoded;
}

std::int64_t header_revision(const json& j) {
  auto it = j.find("header");
  return it != j.end() && it->is_object() ? int_field(*it, "revision") : 0;
}

KeyValue key_value(const json& kv) {
  KeyValue out;
  out.key = bytes_field(kv, "key");
  out.value = bytes_field(kv, "value");
  out.create_revision = int_field(kv, "create_revision");
  out.mod_revision = int_field(kv, "mod_revision");
  out.lease = int_field(kv, "lease");
  return out;
}

std::vector<KeyValue> kvs_of(const json& range) {
  std::vector<KeyValue> out;
  auto it = range.find("kvs");
  if (it == range.end()) return out;
  if (!it->is_array()) throw std::runtime_error("\"kvs\" is not an array");
  for (const auto& kv : *it) out.push_back(key_value(kv));
  return out;
}

std::string b64(const std::string& s) { return base64_encode(s); }

// Parses an answer with `read`, turning a malformed one into kParse naming the call.
template <typename T, typename F>
Result<T> parse_answer(const char* op, const std::string& body, F read) {
  try {
    auto j = json::parse(body);
    if (!j.is_object()) throw std::runtime_error("the answer is not a JSON object");
    return read(j);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kParse, std::string("etcd answered ") + op +
                                             " with something unreadable: " + e.what());
  }
}

}  // namespace

EtcdCoordination::EtcdCoordination(EtcdOptions options, CallObserver* observer)
    : options_(std::move(options)), observer_(observer) {}

Result<std::string> EtcdCoordination::auth_token(bool renew) {
  std::lock_guard lock(auth_mu_);
  if (!token_.empty() && !renew) return token_;
  json j{{"name", options_.username}, {"password", options_.password}};
  auto body = call_once("authenticate", "/v3/auth/authenticate", j.dump(), "");
  if (!body.ok()) {
    return make_error(body.error().code, "cannot log in to etcd as \"" +
                                             printable(options_.username, 64) +
                                             "\": " + body.error().message);
  }
  auto a = json::parse(*body, nullptr, false);
  if (!a.is_object() || !a.contains("token") || !a["token"].is_string() ||
      a["token"].get<std::string>().empty()) {
    return make_error(ErrorCode::kParse, "etcd answered the login without a token");
  }
  token_ = a["token"].get<std::string>();
  return token_;
}

Result<std::string> EtcdCoordination::call(const char* op, const char* path,
                                           const std::string& body) {
  if (options_.username.empty()) return call_once(op, path, body, "");
  auto token = auth_token(false);
  if (!token.ok()) return token.take_error();
  auto r = call_once(op, path, body, *token);
  // etcd's simple tokens expire after a while without use, and a restarted member forgets them.
  if (!r.ok() && r.error().http_status == 401) {
    token = auth_token(true);
    if (!token.ok()) return token.take_error();
    r = call_once(op, path, body, *token);
  }
  return r;
}

Result<std::string> EtcdCoordination::call_once(const char* op, const char* path,
                                                const std::string& body,
                                                const std::string& auth_token) {
  const auto n = options_.endpoints.size();
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "no etcd endpoint is configured");
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + options_.timeout;
  const std::size_t first = current_.load();
  std::string last_error;
  for (std::size_t i = 0; i < n; ++i) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    const std::size_t index = (first + i) % n;
    const influx::Url& url = options_.endpoints[index];
    influx::HttpOptions http;
    http.ca_file = options_.ca_file;
    http.cert_file = options_.cert_file;
    http.key_file = options_.key_file;
    // Each endpoint left gets an equal share of the time left, so a member that drops packets
    // cannot use up the whole call while another would answer.
    http.timeout =
        std::chrono::duration_cast<Duration>((deadline - now) / static_cast<long>(n - i));
    http.max_body_bytes = std::size_t{64} << 20;
    http.max_redirects = 0;
    influx::HttpRequest req;
    req.method = "POST";
    req.target = path;
    req.body = body;
    if (!auth_token.empty()) req.headers.emplace_back("Authorization", auth_token);
    auto r = influx::http_request(url, req, http);
    if (r.ok() && r->status >= 200 && r->status < 300) {
      current_.store(index);
      if (observer_ != nullptr) observer_->etcd_call(op, true);
      return std::move(r->body);
    }
    if (r.ok()) {
      // etcd's own refusal ({"error": …, "message": …}): another member would say the same,
      // except for 5xx (unavailable member, no leader), where the next one may do better.
      std::string why;
      auto j = json::parse(r->body, nullptr, false);
      if (j.is_object() && j.contains("message") && j["message"].is_string()) {
        why = j["message"].get<std::string>();
      } else if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        why = j["error"].get<std::string>();
      } else {
        why = "HTTP " + std::to_string(r->status);
      }
      last_error = "etcd at " + url.to_string() + " refused " + op + ": " + printable(why, 200);
      if (r->status < 500) {
        if (observer_ != nullptr) observer_->etcd_call(op, false);
        return make_error(ErrorCode::kHttpStatus, last_error, r->status);
      }
    } else {
      last_error = r.error().message;
    }
  }
  current_.store((first + 1) % n);  // the next call starts elsewhere
  if (observer_ != nullptr) observer_->etcd_call(op, false);
  const bool timed_out = std::chrono::steady_clock::now() >= deadline;
  return make_error(timed_out ? ErrorCode::kTimeout : ErrorCode::kNetwork,
                    std::string("no etcd endpoint answered ") + op + " within " +
                        format_duration(options_.timeout) +
                        (last_error.empty() ? std::string() : " (last: " + last_error + ")"));
}

Result<Lease> EtcdCoordination::grant(Duration ttl) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(ttl).count();
  auto body = call("grant", "/v3/lease/grant", json{{"TTL", std::to_string(seconds)}}.dump());
  if (!body.ok()) return body.take_error();
  return parse_answer<Lease>("grant", *body, [](const json& j) -> Result<Lease> {
    if (j.contains("error") && j["error"].is_string() && !j["error"].get<std::string>().empty())
      return make_error(ErrorCode::kHttpStatus,
                        "etcd refused a lease: " + printable(j["error"].get<std::string>(), 200));
    Lease l;
    l.id = int_field(j, "ID");
    l.ttl = std::chrono::seconds(int_field(j, "TTL"));
    l.revision = header_revision(j);
    if (l.id == 0 || l.ttl <= Duration(0)) throw std::runtime_error("no lease in the answer");
    return l;
  });
}

Result<Renewal> EtcdCoordination::keep_alive(LeaseId lease) {
  auto body = call("keepalive", "/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump());
  if (!body.ok()) return body.take_error();
  return parse_answer<Renewal>("keepalive", *body, [](const json& j) -> Result<Renewal> {
    // A stream's message comes wrapped: {"result": {...}} (or {"error": {...}}).
    if (j.contains("error")) {
      const auto& e = j["error"];
      std::string why = e.is_object() && e.contains("message") && e["message"].is_string()
                            ? e["message"].get<std::string>()
                            : e.dump();
      return make_error(ErrorCode::kHttpStatus,
                        "etcd refused the keep-alive: " + printable(why, 200));
    }
    const json& r = j.contains("result") ? j["result"] : j;
    if (!r.is_object()) throw std::runtime_error("\"result\" is not an object");
    Renewal out;
    out.ttl = std::chrono::seconds(int_field(r, "TTL"));  // absent: the lease expired
    out.revision = header_revision(r);
    return out;
  });
}

Status EtcdCoordination::revoke(LeaseId lease) {
  auto body = call("revoke", "/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump());
  return body.ok() ? Status() : Status(body.take_error());
}

std::string EtcdCoordination::campaign_body(const std::string& key, const std::string& value,
                                            LeaseId lease) {
  json j;
  j["compare"] = json::array({json{
      {"key", b64(key)}, {"target", "CREATE"}, {"result", "EQUAL"}, {"create_revision", "0"}}});
  j["success"] = json::array(
      {json{{"request_put",
             json{{"key", b64(key)}, {"value", b64(value)}, {"lease", std::to_string(lease)}}}}});
  j["failure"] = json::array({json{{"request_range", json{{"key", b64(key)}}}}});
  return j.dump();
}

Result<Campaign> EtcdCoordination::campaign(const std::string& key, const std::string& value,
                                            LeaseId lease) {
  auto body = call("campaign", "/v3/kv/txn", campaign_body(key, value, lease));
  if (!body.ok()) return body.take_error();
  auto out = parse_answer<Campaign>("campaign", *body, [&](const json& j) -> Result<Campaign> {
    Campaign c;
    c.won = j.value("succeeded", false);
    c.revision = header_revision(j);
    if (c.won) {
      KeyValue kv;
      kv.key = key;
      kv.value = value;
      kv.create_revision = kv.mod_revision = c.revision;  // the put's revision
      kv.lease = lease;
      c.leader = kv;
      return c;
    }
    auto responses = j.find("responses");
    if (responses != j.end() && responses->is_array() && !responses->empty()) {
      const auto& first = (*responses)[0];
      if (first.contains("response_range")) {
        auto kvs = kvs_of(first["response_range"]);
        if (!kvs.empty()) c.leader = kvs.front();
      }
    }
    return c;
  });
  return out;
}

Status EtcdCoordination::put(const std::string& key, const std::string& value, LeaseId lease) {
  json j{{"key", b64(key)}, {"value", b64(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  auto body = call("put", "/v3/kv/put", j.dump());
  return body.ok() ? Status() : Status(body.take_error());
}

std::string EtcdCoordination::fenced_put_body(const std::string& key, const std::string& value,
                                              const std::string& fence_key,
                                              std::int64_t fence_revision) {
  json j;
  j["compare"] = json::array({json{{"key", b64(fence_key)},
                                   {"target", "CREATE"},
                                   {"result", "EQUAL"},
                                   {"create_revision", std::to_string(fence_revision)}}});
  j["success"] =
      json::array({json{{"request_put", json{{"key", b64(key)}, {"value", b64(value)}}}}});
  j["failure"] = json::array();
  return j.dump();
}

Result<FencedWrite> EtcdCoordination::put_fenced(const std::string& key, const std::string& value,
                                                 const std::string& fence_key,
                                                 std::int64_t fence_revision) {
  auto body = call("txn", "/v3/kv/txn", fenced_put_body(key, value, fence_key, fence_revision));
  if (!body.ok()) return body.take_error();
  return parse_answer<FencedWrite>("txn", *body, [](const json& j) -> Result<FencedWrite> {
    FencedWrite w;
    w.ok = j.value("succeeded", false);
    w.revision = header_revision(j);
    return w;
  });
}

std::string EtcdCoordination::prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

Result<Range> EtcdCoordination::range_prefix(const std::string& prefix,
                                             std::int64_t min_mod_revision) {
  json j{{"key", b64(prefix)}, {"range_end", b64(prefix_end(prefix))}};
  if (min_mod_revision > 0) j["min_mod_revision"] = std::to_string(min_mod_revision);
  auto body = call("range", "/v3/kv/range", j.dump());
  if (!body.ok()) return body.take_error();
  return parse_answer<Range>("range", *body, [](const json& a) -> Result<Range> {
    Range r;
    r.kvs = kvs_of(a);
    r.revision = header_revision(a);
    return r;
  });
}

Result<std::optional<KeyValue>> EtcdCoordination::get(const std::string& key) {
  auto body = call("get", "/v3/kv/range", json{{"key", b64(key)}}.dump());
  if (!body.ok()) return body.take_error();
  return parse_answer<std::optional<KeyValue>>(
      "get", *body, [](const json& a) -> Result<std::optional<KeyValue>> {
        auto kvs = kvs_of(a);
        if (kvs.empty()) return std::optional<KeyValue>();
        return std::optional<KeyValue>(kvs.front());
      });
}

}  // namespace tw::ha
