#include "tests/support/fakes.h"

#include "core/sha256.h"

namespace tw::testing {

void FakeClusterState::put(Token t) {
  sort_permissions(t.permissions);
  std::string id = t.id;
  tokens.insert_or_assign(std::move(id), std::move(t));
}

std::vector<Token> FakeClusterState::list() const {
  std::vector<Token> out;
  for (const auto& [id, t] : tokens) out.push_back(t);
  return out;
}

int FakeClusterState::revoke_calls() const {
  int n = 0;
  for (const auto& [id, c] : revokes) n += c;
  return n;
}

int FakeClusterState::restrict_calls() const {
  int n = 0;
  for (const auto& [id, c] : restricts) n += c;
  return n;
}

int FakeClusterState::revokes_of(const std::string& id) const {
  auto it = revokes.find(id);
  return it == revokes.end() ? 0 : it->second;
}

Result<influx::TokenList> FakeCluster::list_tokens(const influx::CallContext& ctx) {
  ++state_->list_calls;
  state_->last_cancel = ctx.cancel;
  state_->last_known_digest = ctx.known_digest;
  clock_.advance(state_->fetch_time);
  if (!state_->script.empty()) {
    auto r = std::move(state_->script.front());
    state_->script.pop_front();
    // Behave like a real source: the same digest as the caller knows means "unchanged".
    if (r.ok() && !r->digest.empty() && r->digest == ctx.known_digest) {
      r->unchanged = true;
      r->tokens.clear();
    }
    return r;
  }
  if (state_->script_only) return make_error(ErrorCode::kInternal, "script exhausted");
  influx::TokenList l;
  l.tokens = state_->list();
  if (state_->use_digest) {
    std::string canonical;
    for (const auto& t : l.tokens) {
      canonical += t.id;
      append_token_state_json(canonical, t);
      canonical += '\n';
    }
    l.digest = sha256_hex(canonical);
    if (l.digest == ctx.known_digest) {
      l.unchanged = true;
      l.tokens.clear();
    }
  }
  return l;
}

Result<std::optional<Token>> FakeCluster::get_token(const std::string& id,
                                                    const influx::CallContext&) {
  ++state_->get_calls;
  ++state_->reads[id];
  if (state_->read_error) return *state_->read_error;
  auto it = state_->tokens.find(id);
  if (it == state_->tokens.end()) return std::optional<Token>();
  return std::optional<Token>(it->second);
}

Result<influx::RevokeOutcome> FakeCluster::revoke(const std::string& id,
                                                  const influx::CallContext&) {
  ++state_->revokes[id];
  state_->last_call_at = clock_.now();
  if (state_->fail_next > 0) {
    --state_->fail_next;
    Error e = make_error(ErrorCode::kHttpStatus, "DELETE /tokens/" + id + ": HTTP 503", 503);
    e.retry_after = state_->fail_retry_after;
    return e;
  }
  if (state_->already_gone) {
    if (state_->vanish_on_revoke) state_->tokens.erase(id);
    return influx::RevokeOutcome::kAlreadyGone;
  }
  auto it = state_->tokens.find(id);
  if (it != state_->tokens.end()) it->second.revoked_at = clock_.now();
  return influx::RevokeOutcome::kRevoked;
}

Status FakeCluster::restrict(const std::string& id, const std::vector<Permission>& permissions,
                             const influx::CallContext&) {
  ++state_->restricts[id];
  state_->restrict_targets[id] = permissions;
  state_->last_call_at = clock_.now();
  if (state_->fail_next > 0) {
    --state_->fail_next;
    Error e = make_error(ErrorCode::kHttpStatus, "PATCH /tokens/" + id + ": HTTP 503", 503);
    e.retry_after = state_->fail_retry_after;
    return e;
  }
  auto it = state_->tokens.find(id);
  if (it != state_->tokens.end()) {
    it->second.permissions = permissions;
    sort_permissions(it->second.permissions);
  }
  return ok_status();
}

Result<std::optional<influx::OwnCredential>> FakeCluster::own_credential(
    const influx::CallContext&) {
  ++state_->credential_calls;
  return state_->credential;
}

void FakeAlertSink::set_active(const std::string& cluster, std::vector<daemon::Alert> alerts) {
  ++set_active_calls;
  active[cluster] = std::move(alerts);
}

int FakeAlertSink::active_named(const std::string& alertname, const std::string& cluster) const {
  auto it = active.find(cluster);
  if (it == active.end()) return 0;
  int n = 0;
  for (const auto& a : it->second) {
    auto l = a.labels.find("alertname");
    if (l != a.labels.end() && l->second == alertname) ++n;
  }
  return n;
}

std::vector<std::string> FakeAlertSink::events() const {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(c.event);
  return out;
}

}  // namespace tw::testing
