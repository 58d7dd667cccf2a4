#pragma once
// Deterministic generation of realistic database tokens for seeding and churn.
//
// The same seed and the same `now` give the same tokens on every platform (SplitMix64, no
// <random> distributions, whose results differ between standard libraries). Generated tokens
// look like a real cluster's: Telegraf writers, Grafana readers, services, CI, people's ad-hoc
// tokens; about 10% hold a "*" grant, 20% never expire, some are already expired, 5% revoked;
// created over the two years before `now`.
//
// Thread safety: Rng is a value type (one per thread); the functions are pure.

#include <cstdint>
#include <string>
#include <vector>

#include "core/time.h"
#include "core/token.h"

namespace tw::sim {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n) { return next() % n; }
  // True with probability percent/100.
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  std::uint64_t state_;
};

// A random version-4 UUID in lower case.
std::string random_uuid(Rng& rng);

// One realistic token created within the two years before now (id from rng).
Token generate_token(Rng& rng, Timestamp now);
// A realistic permission list (may be empty, rarely) and description, for churn updates.
std::vector<Permission> generate_permissions(Rng& rng);
std::string generate_description(Rng& rng);

}  // namespace tw::sim
