#pragma once
// What the enforcer asks before it acts when [ha] is configured (docs/high-availability.md):
// does this instance lead, are the intents an earlier term left open reconciled, and may this
// action start — with its intent written, fenced on the leader key, before the first request.
// The real one is daemon/ha.h's HaCoordinator; `tokenwarden poll` with [ha] gets a fence that
// never leads (a one-shot process takes no part in the election, so it never acts).
//
// Thread safety: implementations are called from poll threads concurrently.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"
#include "core/time.h"
#include "influx/token_source.h"
#include "storage/enforcement.h"

namespace tw::daemon {

struct ActionTicket {
  std::int64_t term = 0;
  std::string key;    // the intent's key
  std::string value;  // the intent as written (may_send writes it again, fenced, as its proof)
};

class ActionFence {
 public:
  virtual ~ActionFence() = default;
  // This instance leads: it may act (after reconcile()) and its alerts are delivered.
  virtual bool leading() const = 0;
  // The term action events carry: ours while leading, else the last leader's seen (0: none).
  virtual std::int64_t term() const = 0;
  // Reads back, with `client`, every token whose intent an earlier term left open on `cluster`
  // and writes what it found; true when nothing is left open (actions may run now).
  virtual bool reconcile(const std::string& cluster, influx::ClusterClient& client,
                         const influx::CallContext& ctx) = 0;
  // Before an action's first request: its intent, written only while we lead and the lease
  // outlasts `deadline`. An error (one sentence) means: do not act.
  virtual Result<ActionTicket> begin(const std::string& cluster, const storage::ActionRow& a,
                                     Duration deadline) = 0;
  // Right before the request that changes the token: leadership proven *now* by the coordination
  // service (the lease renewed, the intent rewritten fenced on the leader key) and the lease
  // outlasting `deadline`. A process frozen past its lease — SIGSTOP, a suspended VM whose clocks
  // stopped too — is refused here by the service, whatever its own clock says.
  virtual bool may_send(const ActionTicket& ticket, Duration deadline) = 0;
  // Whether this instance still leads in the ticket's term, by its own reckoning (no call to the
  // coordination service).
  virtual bool holds(const ActionTicket& ticket) const {
    return leading() && term() == ticket.term;
  }
  // After the read-back: the attempt's outcome (best effort; a later leader reconciles).
  virtual void finish(const ActionTicket& ticket, const std::string& cluster,
                      const storage::ActionRow& a, std::string_view state, std::string_view outcome,
                      std::string_view error) = 0;
};

// `tokenwarden poll` with [ha]: never leads, so never acts.
class NoLeadership final : public ActionFence {
 public:
  bool leading() const override { return false; }
  std::int64_t term() const override { return 0; }
  bool reconcile(const std::string&, influx::ClusterClient&, const influx::CallContext&) override {
    return false;
  }
  Result<ActionTicket> begin(const std::string&, const storage::ActionRow&, Duration) override {
    return make_error(ErrorCode::kUnsupported,
                      "[ha] is configured: only the leading daemon acts, not a one-shot poll");
  }
  bool may_send(const ActionTicket&, Duration) override { return false; }
  void finish(const ActionTicket&, const std::string&, const storage::ActionRow&, std::string_view,
              std::string_view, std::string_view) override {}
};

}  // namespace tw::daemon
