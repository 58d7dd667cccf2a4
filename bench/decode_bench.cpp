// tw-bench-decode: how fast each source's token list is read — the REST Management API's
// camelCase objects with RFC 3339 times, influxctl's snake_case objects with {seconds,nanos}
// times and nil-UUID permission ids, and InfluxDB 3's system.tokens rows (zone-less times,
// permission strings) — from a body held in memory.
//
//   tw-bench-decode --tokens N [--runs K]
//
// The tokens are the simulator's realistic ones (sim/generator.h, fixed seed), so every shape
// carries the same inventory. Prints one JSON object per shape; bench/run formats the table.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "core/json_writer.h"
#include "core/time.h"
#include "core/token.h"
#include "influx/codec.h"
#include "influx/influxdb3_codec.h"
#include "sim/generator.h"

namespace {

using namespace tw;

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void rest_time(std::string& out, const char* key, const std::optional<Timestamp>& t) {
  if (!t) return;
  out += ",\"";
  out += key;
  out += "\":\"";
  append_timestamp(out, *t);
  out += '"';
}

void proto_time(std::string& out, const char* key, const std::optional<Timestamp>& t) {
  if (!t) return;
  const std::int64_t ms = t->time_since_epoch().count();
  out += ",\"";
  out += key;
  out += "\":{\"seconds\":" + std::to_string(ms / 1000);
  if (ms % 1000 != 0) out += ",\"nanos\":" + std::to_string((ms % 1000) * 1'000'000);
  out += '}';
}

std::string rest_body(const std::vector<Token>& tokens) {
  std::string out = "[";
  for (const auto& t : tokens) {
    if (out.size() > 1) out += ',';
    out += "{\"id\":";
    append_json_string(out, t.id);
    out += ",\"description\":";
    append_json_string(out, t.description);
    out += ",\"permissions\":";
    append_permissions_json(out, t.permissions);
    rest_time(out, "createdAt", t.created_at);
    rest_time(out, "expiresAt", t.expires_at);
    rest_time(out, "revokedAt", t.revoked_at);
    out += '}';
  }
  return out + "]";
}

std::string influxctl_body(const std::vector<Token>& tokens) {
  const std::string nil = "00000000-0000-0000-0000-000000000000";
  std::string out = "[";
  for (const auto& t : tokens) {
    if (out.size() > 1) out += ',';
    out += "{\"account_id\":\"" + nil + "\",\"cluster_id\":\"" + nil + "\",\"id\":";
    append_json_string(out, t.id);
    if (!t.description.empty()) {
      out += ",\"description\":";
      append_json_string(out, t.description);
    }
    if (!t.permissions.empty()) {
      out += ",\"permissions\":[";
      for (std::size_t i = 0; i < t.permissions.size(); ++i) {
        if (i > 0) out += ',';
        out += "{\"id\":\"" + nil + "\",\"action\":";
        append_json_string(out, t.permissions[i].action);
        out += ",\"resource\":";
        append_json_string(out, t.permissions[i].resource);
        out += '}';
      }
      out += ']';
    }
    proto_time(out, "created_at", t.created_at);
    proto_time(out, "expires_at", t.expires_at);
    proto_time(out, "revoked_at", t.revoked_at);
    out += '}';
  }
  return out + "]";
}

// A naive (zone-less) time as InfluxDB 3 prints it: "2025-04-18T14:02:45.331".
void naive_time(std::string& out, const char* key, const std::optional<Timestamp>& t) {
  if (!t) return;
  std::string z = format_timestamp(*t);  // "…T14:02:45.331Z"
  z.pop_back();
  out += ",\"";
  out += key;
  out += "\":\"" + z + '"';
}

// The same inventory as rows of system.tokens (ids numbered, names unique, revoked ones absent:
// that server deletes). Returns the body and sets `rows`.
std::string influxdb3_body(const std::vector<Token>& tokens, std::size_t& rows) {
  std::string out = "[";
  rows = 0;
  for (const auto& t : tokens) {
    if (t.revoked_at) continue;
    if (out.size() > 1) out += ',';
    out += "{\"token_id\":" + std::to_string(rows) + ",\"name\":";
    append_json_string(out, t.description + " #" + std::to_string(rows));
    out += ",\"hash\":\"1a2b3c4d5\"";
    naive_time(out, "created_at", t.created_at);
    naive_time(out, "expiry", t.expires_at);
    std::string reads, writes;
    for (const auto& p : t.permissions) {
      std::string& list = p.action == "read" ? reads : writes;
      if (!list.empty()) list += ',';
      list += p.resource;
    }
    std::string perms = reads.empty() ? std::string() : "db:" + reads + ":read";
    if (!writes.empty())
      perms += (perms.empty() ? "" : ";") + std::string("db:") + writes + ":write";
    if (perms.empty() || perms.find("*,") != std::string::npos ||
        perms.find(",*") != std::string::npos) {
      perms = "*:*:*";  // a mixed "*" list is not expressible: make it an admin token
    }
    out += ",\"permissions\":";
    append_json_string(out, perms);
    out += '}';
    ++rows;
  }
  return out + "]";
}

struct Shape {
  const char* name;
  std::string body;
  std::function<std::size_t(const std::string&)> decode;  // tokens read; exits on failure
  std::size_t expect = 0;
};

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "tw-bench-decode: %s\n", m.c_str());
  std::exit(1);
}

std::size_t decoded_count(Result<influx::DecodedList> r) {
  if (!r.ok()) die(r.error().message);
  return r->tokens.size();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = 100000;
  int runs = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--tokens")
      n = std::strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else
      die("unknown option " + a);
  }
  sim::Rng rng(42);
  const Timestamp now = Timestamp(std::chrono::seconds(1764979200));  // 2025-12-06
  std::vector<Token> tokens;
  tokens.reserve(n);
  for (std::size_t i = 0; i < n; ++i) tokens.push_back(sim::generate_token(rng, now));

  std::vector<Shape> shapes;
  shapes.push_back(
      {"rest", rest_body(tokens),
       [](const std::string& b) { return decoded_count(influx::decode_token_list(b)); }, n});
  shapes.push_back({"influxctl", influxctl_body(tokens),
                    [](const std::string& b) {
                      return decoded_count(
                          influx::decode_token_list(b, influx::EmptyList::kNullOrArray));
                    },
                    n});
  std::size_t rows = 0;
  std::string table = influxdb3_body(tokens, rows);
  shapes.push_back({"influxdb3 (revoked ones absent)", std::move(table),
                    [](const std::string& b) {
                      auto r = influx::decode_influxdb3_rows(b);
                      if (!r.ok()) die(r.error().message);
                      return r->list.tokens.size();
                    },
                    rows});
  for (const auto& s : shapes) {
    std::vector<double> cpu;
    for (int r = 0; r < runs; ++r) {
      const double start = thread_cpu_ms();
      if (s.decode(s.body) != s.expect) die(std::string(s.name) + ": wrong token count");
      cpu.push_back(thread_cpu_ms() - start);
    }
    std::sort(cpu.begin(), cpu.end());
    const double median = cpu[cpu.size() / 2];
    std::printf(
        "{\"shape\":\"%s\",\"tokens\":%zu,\"body_bytes\":%zu,\"median_cpu_ms\":%.1f,"
        "\"mb_per_s\":%.0f}\n",
        s.name, s.expect, s.body.size(), median,
        static_cast<double>(s.body.size()) / 1e6 / (median / 1e3));
  }
  return 0;
}
