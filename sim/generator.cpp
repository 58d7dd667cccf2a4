#include "sim/generator.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <string_view>

namespace tw::sim {
namespace {

using std::chrono::hours;
constexpr Duration kDay = std::chrono::duration_cast<Duration>(hours(24));
constexpr Duration kHistory = 730 * kDay;

template <class T, std::size_t N>
const T& pick(Rng& rng, const std::array<T, N>& items) {
  return items[static_cast<std::size_t>(rng.below(N))];
}

Duration random_duration(Rng& rng, Duration max) {
  if (max.count() <= 0) return Duration(0);
  return Duration(static_cast<Duration::rep>(rng.below(static_cast<std::uint64_t>(max.count()))));
}

constexpr std::array<std::string_view, 14> kDatabases{
    "sensors", "metrics",      "telemetry_eu",    "telemetry_us", "iot",     "app_logs", "billing",
    "k8s",     "prod_metrics", "staging_metrics", "edge",         "weather", "fleet",    "audit"};
constexpr std::array<std::string_view, 8> kHostGroups{
    "sensors-eu", "sensors-us",  "factory-3",        "edge-gw",
    "k8s-prod",   "k8s-staging", "weather-stations", "fleet-trucks"};
constexpr std::array<std::string_view, 5> kTeams{"sre", "billing", "iot", "data-science", "ops"};
constexpr std::array<std::string_view, 6> kServices{"ingest", "export",   "alerting",
                                                    "rollup", "backfill", "forecast"};
constexpr std::array<std::string_view, 4> kPipelines{
    "ci pipeline", "ci pipeline (integration tests)", "github actions deploy", "jenkins nightly"};
constexpr std::array<std::string_view, 9> kPeople{
    "jane.doe",   "john.smith",   "akira.tanaka", "maria.garcia",
    "li.wei",     "olga.ivanova", "sam.okafor",   "j\xc3\xbcrgen.m\xc3\xbcller",
    "priya.patel"};
constexpr std::array<std::string_view, 4> kPersonal{"ad-hoc", "debugging", "notebook",
                                                    "temporary access"};
constexpr std::array<std::string_view, 5> kMiscDescriptions{
    "backup exporter", "kapacitor alerts", "legacy migration 2023", "replication to dr-site",
    "iot gateway"};
constexpr std::array<Duration, 6> kLifetimes{30 * kDay,  90 * kDay,  180 * kDay,
                                             365 * kDay, 730 * kDay, 7 * kDay};

enum class Kind { kTelegraf, kGrafana, kService, kCi, kPerson, kMisc };

Kind pick_kind(Rng& rng) {
  auto r = rng.below(100);
  if (r < 25) return Kind::kTelegraf;
  if (r < 45) return Kind::kGrafana;
  if (r < 65) return Kind::kService;
  if (r < 75) return Kind::kCi;
  if (r < 90) return Kind::kPerson;
  return Kind::kMisc;
}

std::string db(Rng& rng) { return std::string(pick(rng, kDatabases)); }

void add(std::vector<Permission>& perms, std::string_view action, std::string resource) {
  for (const auto& p : perms) {
    if (p.action == action && p.resource == resource) return;
  }
  perms.push_back(Permission{std::string(action), std::move(resource)});
}

std::string description_for(Rng& rng, Kind kind) {
  switch (kind) {
    case Kind::kTelegraf:
      return "telegraf writer " + std::string(pick(rng, kHostGroups));
    case Kind::kGrafana:
      if (rng.chance(50)) return "grafana dashboards (read-only)";
      return "grafana " + std::string(pick(rng, kTeams));
    case Kind::kService:
      return "svc-" + std::string(pick(rng, kServices)) + "-" + std::to_string(rng.below(40) + 1);
    case Kind::kCi:
      return std::string(pick(rng, kPipelines));
    case Kind::kPerson:
      return std::string(pick(rng, kPeople)) + " " + std::string(pick(rng, kPersonal));
    case Kind::kMisc:
      break;
  }
  std::string d(pick(rng, kMiscDescriptions));
  if (d == "iot gateway") d += " site-" + std::to_string(rng.below(20) + 1);
  return d;
}

std::vector<Permission> permissions_for(Rng& rng, Kind kind) {
  std::vector<Permission> perms;
  switch (kind) {
    case Kind::kTelegraf:
      add(perms, "write", db(rng));
      if (rng.chance(30)) add(perms, "write", db(rng));
      break;
    case Kind::kGrafana:
      for (std::uint64_t i = 0, n = rng.below(4) + 1; i < n; ++i) add(perms, "read", db(rng));
      break;
    case Kind::kService: {
      std::string d = db(rng);
      add(perms, "write", d);
      if (rng.chance(50)) add(perms, "read", d);
      break;
    }
    case Kind::kCi:
      add(perms, "read", "staging_metrics");
      add(perms, "write", "staging_metrics");
      if (rng.chance(20)) add(perms, "read", db(rng));
      break;
    case Kind::kPerson:
      for (std::uint64_t i = 0, n = rng.below(3) + 1; i < n; ++i) {
        add(perms, rng.chance(60) ? "read" : "write", db(rng));
      }
      break;
    case Kind::kMisc:
      if (rng.chance(10)) break;  // a "no access" token
      add(perms, "read", db(rng));
      if (rng.chance(40)) add(perms, "read", db(rng));
      break;
  }
  if (rng.chance(10)) {
    bool writer = kind == Kind::kTelegraf || kind == Kind::kService || rng.chance(30);
    add(perms, writer ? "write" : "read", std::string(kAllDatabases));
  }
  sort_permissions(perms);
  return perms;
}

}  // namespace

std::uint64_t Rng::next() {
  state_ += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string random_uuid(Rng& rng) {
  std::uint64_t hi = rng.next();
  std::uint64_t lo = rng.next();
  hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10xx
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::vector<Permission> generate_permissions(Rng& rng) {
  return permissions_for(rng, pick_kind(rng));
}

std::string generate_description(Rng& rng) { return description_for(rng, pick_kind(rng)); }

Token generate_token(Rng& rng, Timestamp now) {
  Token t;
  t.id = random_uuid(rng);
  Kind kind = pick_kind(rng);
  t.description = description_for(rng, kind);
  t.permissions = permissions_for(rng, kind);
  if (rng.chance(20)) {
    t.created_at = now - random_duration(rng, kHistory);
  } else {
    Duration lifetime = pick(rng, kLifetimes);
    if (rng.chance(15) && lifetime < kHistory) {
      // Already expired: created more than `lifetime` ago.
      t.created_at = now - lifetime - Duration(1) - random_duration(rng, kHistory - lifetime);
    } else {
      t.created_at = now - random_duration(rng, std::min(lifetime, kHistory));
    }
    t.expires_at = *t.created_at + lifetime;
  }
  if (rng.chance(5)) t.revoked_at = *t.created_at + random_duration(rng, now - *t.created_at);
  return t;
}

}  // namespace tw::sim
