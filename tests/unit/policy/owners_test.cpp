// Owner attribution rules (policy/owners.h): first match wins, every matcher of a rule must
// match, named groups capture owner/team, hostile captures do not count, no match is orphaned.
#include "policy/owners.h"

#include <gtest/gtest.h>

#include <string>

namespace tw::policy {
namespace {

Token token(std::string id, std::string description) {
  Token t;
  t.id = std::move(id);
  t.description = std::move(description);
  return t;
}

std::shared_ptr<const OwnerRules> compile(std::vector<OwnerRuleSpec> rules) {
  auto r = OwnerRules::compile(std::move(rules));
  EXPECT_TRUE(r.ok()) << r.error().message;
  return *r;
}

OwnerRuleSpec regex_rule() {
  OwnerRuleSpec r;
  r.name = "by-description";
  r.description_regex = R"(\(owner: (?P<owner>[^)]+)\)(?: team=(?P<team>\w+))?)";
  r.team = "data";
  r.contact = "data@example.com";
  r.labels = {{"pager", "data-oncall"}};
  return r;
}

TEST(OwnerRules, NamedGroupsCaptureOwnerAndTeamWithTheRuleAsFallback) {
  auto rules = compile({regex_rule()});
  Ownership o = rules->resolve("prod", token("t1", "loader (owner: alice) team=ingest"));
  EXPECT_EQ(o.owner, "alice");
  EXPECT_EQ(o.team, "ingest");
  EXPECT_EQ(o.contact, "data@example.com");
  EXPECT_EQ(o.rule, "by-description");
  o = rules->resolve("prod", token("t2", "loader (owner:  bob )"));
  EXPECT_EQ(o.owner, "bob") << "trimmed";
  EXPECT_EQ(o.team, "data") << "the group did not take part: the rule's own team";
}

TEST(OwnerRules, FirstMatchingRuleWinsAndEveryMatcherOfARuleMustMatch) {
  OwnerRuleSpec pinned;
  pinned.name = "pinned";
  pinned.token_id = "t1";
  pinned.clusters = {"prod-*"};
  pinned.owner = "bob";
  OwnerRuleSpec ci;
  ci.name = "ci";
  ci.description_glob = "ci-*";
  ci.team = "platform";
  auto rules = compile({pinned, regex_rule(), ci});
  EXPECT_EQ(rules->resolve("prod-eu", token("t1", "x (owner: alice)")).rule, "pinned");
  EXPECT_EQ(rules->resolve("staging", token("t1", "x (owner: alice)")).rule, "by-description")
      << "pinned only on prod-* clusters";
  EXPECT_EQ(rules->resolve("staging", token("t3", "ci-nightly")).team, "platform");
  EXPECT_EQ(rules->resolve("staging", token("t3", "nightly ci-job")).rule, "")
      << "a glob matches the whole description";
}

TEST(OwnerRules, NoMatchIsOrphaned) {
  auto rules = compile({regex_rule()});
  Ownership o = rules->resolve("prod", token("t9", "no owner here"));
  EXPECT_FALSE(o.matched());
  EXPECT_EQ(o, Ownership{});
  EXPECT_FALSE(compile({})->resolve("prod", token("t9", "x")).matched());
}

TEST(OwnerRules, HostileCapturesDoNotCount) {
  OwnerRuleSpec only_capture;
  only_capture.name = "capture";
  only_capture.description_regex = R"(owner=(?P<owner>.*))";
  OwnerRuleSpec rest;
  rest.name = "rest";
  rest.description_glob = "*";
  rest.team = "admins";
  auto rules = compile({only_capture, rest});
  for (const std::string& bad :
       {std::string("owner=\x1b[31mred"), std::string("owner=a\tb"),
        std::string("owner=") + std::string(kMaxOwnerValue + 1, 'x'), std::string("owner=   ")}) {
    Ownership o = rules->resolve("c", token("t", bad));
    EXPECT_EQ(o.rule, "rest") << "a capture that is not one short line does not match";
    EXPECT_EQ(o.owner, "");
  }
  Ownership ok = rules->resolve("c", token("t", "owner=" + std::string(kMaxOwnerValue, 'y')));
  EXPECT_EQ(ok.rule, "capture");
  EXPECT_EQ(ok.owner.size(), kMaxOwnerValue);
  // A regex run on a very long description stays linear (RE2) and still finds the owner.
  Ownership long_one = rules->resolve("c", token("t", std::string(100000, 'a') + "owner=zed"));
  EXPECT_EQ(long_one.owner, "zed");
}

TEST(OwnerRules, ValidOwnerValue) {
  EXPECT_TRUE(valid_owner_value("alice@example.com"));
  EXPECT_TRUE(valid_owner_value("Team Data (EU)"));
  EXPECT_FALSE(valid_owner_value(""));
  EXPECT_FALSE(valid_owner_value("  "));
  EXPECT_FALSE(valid_owner_value("a\tb"));
  EXPECT_FALSE(valid_owner_value("a\x7f"));
  EXPECT_FALSE(
      valid_owner_value("a\xc2\x85"
                        "b"))
      << "C1 NEL";
  EXPECT_FALSE(valid_owner_value("bidi \xe2\x80\xaetxt")) << "U+202E";
  EXPECT_FALSE(
      valid_owner_value("a\xe2\x80\xa8"
                        "b"))
      << "U+2028";
  EXPECT_FALSE(
      valid_owner_value("a\xe2\x81\xa7"
                        "b"))
      << "U+2067";
  EXPECT_TRUE(valid_owner_value("caf\xc3\xa9 \xe2\x80\x94 team")) << "e-acute and an em dash";
  EXPECT_TRUE(captures_owner("(?P<team>x)"));
  EXPECT_FALSE(captures_owner("(?P<other>x)"));
  EXPECT_FALSE(captures_owner("(?P<owner>["));
}

TEST(OwnerRules, IdentityChangesWithAnyField) {
  auto a = compile({regex_rule()});
  auto b = compile({regex_rule()});
  EXPECT_EQ(a->identity(), b->identity());
  OwnerRuleSpec changed = regex_rule();
  changed.labels["pager"] = "other";
  EXPECT_NE(compile({changed})->identity(), a->identity());
  changed = regex_rule();
  changed.contact = "x@example.com";
  EXPECT_NE(compile({changed})->identity(), a->identity());
  ASSERT_NE(a->find("by-description"), nullptr);
  EXPECT_EQ(a->find("by-description")->labels.at("pager"), "data-oncall");
  EXPECT_EQ(a->find("nope"), nullptr);
}

TEST(OwnerRules, ABadRegexIsRefusedNamingTheRule) {
  OwnerRuleSpec bad = regex_rule();
  bad.description_regex = "(?P<owner>[";
  auto r = OwnerRules::compile({bad});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("by-description"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace tw::policy
