#include "daemon/alerts.h"

#include <algorithm>

#include "core/json_writer.h"
#include "core/version.h"
#include "daemon/config.h"
#include "influx/http_client.h"

namespace tw::daemon {
namespace {

std::string fingerprint(const Alert& a) {
  std::string f;
  for (const auto& [k, v] : a.labels) {
    f += k;
    f += '=';
    f += v;
    f += '\n';
  }
  return f;
}

}  // namespace

AlertDispatcher::AlertDispatcher(AlertingOptions options, const Clock& clock, Logger log)
    : options_(std::move(options)), clock_(clock), log_(std::move(log)) {
  worker_ = std::thread([this] { run(); });
}

AlertDispatcher::~AlertDispatcher() { stop(); }

void AlertDispatcher::stop() {
  {
    std::unique_lock lock(mu_);
    if (stopping_) {
      if (worker_.joinable() && std::this_thread::get_id() != worker_.get_id()) {
        lock.unlock();
        worker_.join();
      }
      return;
    }
    // Give queued deliveries a moment (resolved alerts, last state changes).
    cv_.wait_for(lock, std::chrono::seconds(2), [this] { return quiet(); });
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool AlertDispatcher::idle(Duration timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return quiet(); });
}

bool AlertDispatcher::quiet() const {
  return !busy_ && !wake_ && webhook_queue_.empty() && resolved_.empty() && !post_active_now_;
}

void AlertDispatcher::wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

bool AlertDispatcher::wanted() const {
  std::lock_guard lock(mu_);
  return !options_.alertmanager_url.empty() || !options_.webhook_url.empty();
}

void AlertDispatcher::reconfigure(const std::string& alertmanager_url,
                                  const std::string& webhook_url) {
  {
    std::lock_guard lock(mu_);
    options_.alertmanager_url = alertmanager_url;
    options_.webhook_url = webhook_url;
    if (alertmanager_url.empty()) active_.clear();
    post_active_now_ = !active_.empty();
  }
  cv_.notify_all();
}

void AlertDispatcher::set_muted(bool muted) {
  {
    std::lock_guard lock(mu_);
    if (muted_ == muted) return;
    muted_ = muted;
    if (muted) {
      resolved_.clear();  // the leader resolves what it sees resolved
      webhook_queue_.clear();
    } else {
      post_active_now_ = !active_.empty();
    }
  }
  cv_.notify_all();
}

bool AlertDispatcher::muted() const {
  std::lock_guard lock(mu_);
  return muted_;
}

void AlertDispatcher::set_active(const std::string& cluster, std::vector<Alert> alerts) {
  {
    std::lock_guard lock(mu_);
    if (options_.alertmanager_url.empty()) return;
    auto& current = active_[cluster];
    std::map<std::string, const Alert*> next;
    for (const auto& a : alerts) next[fingerprint(a)] = &a;
    for (const auto& a : current) {
      if (!next.contains(fingerprint(a))) resolved_.push_back(a);
    }
    bool changed = current.size() != alerts.size() || !resolved_.empty();
    if (!changed) {
      std::map<std::string, bool> old;
      for (const auto& a : current) old[fingerprint(a)] = true;
      for (const auto& [f, a] : next) changed = changed || !old.contains(f);
    }
    current = std::move(alerts);
    if (muted_) resolved_.clear();
    if (changed && !muted_) post_active_now_ = true;
  }
  cv_.notify_all();
}

void AlertDispatcher::state_changed(const StateChange& c) {
  {
    std::lock_guard lock(mu_);
    if (options_.webhook_url.empty() || muted_) return;
  }
  std::string body;
  JsonWriter w(body);
  w.begin_object()
      .field("source", "tokenwarden")
      .field("version", kVersion)
      .field("event", c.event)
      .field("at", c.at)
      .field("cluster", c.cluster)
      .field("token_id", c.token_id)
      .field("policy", c.policy)
      .field("severity", c.severity)
      .field("violation_id", c.violation_id)
      .field("state", c.state);
  // Who to tell: null when no [[owners]] rule gives it.
  w.field_or_null("owner", c.owner).field_or_null("team", c.team);
  w.field_or_null("contact", c.contact);
  w.key("detail").raw(c.detail.empty() ? "{}" : c.detail).end_object();
  {
    std::lock_guard lock(mu_);
    if (webhook_queue_.size() >= options_.queue_capacity) {
      webhook_queue_.pop_front();
      ++counters_.dropped;
      log_.warn("alert queue full: the oldest webhook message was dropped",
                {{"receiver", "webhook"},
                 {"capacity", static_cast<std::int64_t>(options_.queue_capacity)},
                 {"dropped_total", counters_.dropped.load()}});
    }
    webhook_queue_.push_back(std::move(body));
  }
  cv_.notify_all();
}

std::string AlertDispatcher::alertmanager_body(const std::vector<Alert>& alerts,
                                               Timestamp ends_at) {
  std::string body;
  JsonWriter w(body);
  w.begin_array();
  for (const auto& a : alerts) {
    w.begin_object();
    w.key("labels").begin_object();
    for (const auto& [k, v] : a.labels) w.field(k, v);
    w.end_object();
    w.key("annotations").begin_object();
    for (const auto& [k, v] : a.annotations) w.field(k, v);
    w.end_object();
    w.field("startsAt", a.starts_at).field("endsAt", ends_at).field("generatorURL", "");
    w.end_object();
  }
  w.end_array();
  return body;
}

bool AlertDispatcher::post(const std::string& url, const std::string& body, const char* receiver) {
  auto parsed = influx::parse_url(url);
  if (!parsed.ok()) {
    log_.error("cannot deliver alerts: invalid URL",
               {{"receiver", receiver}, {"error", parsed.error().message}});
    return false;
  }
  std::string target = std::string(receiver) == "alertmanager" ? "/api/v2/alerts" : "";
  influx::HttpRequest req;
  req.method = "POST";
  req.target = target;
  req.body = body;
  req.headers.emplace_back("Accept", "application/json");
  influx::HttpOptions opts;
  opts.timeout = options_.timeout;
  opts.max_body_bytes = 1 << 20;
  std::string last_error;
  for (int attempt = 1; attempt <= options_.attempts; ++attempt) {
    auto r = influx::http_request(*parsed, req, opts);
    if (r.ok() && r->status >= 200 && r->status < 300) return true;
    last_error = r.ok() ? "answered " + std::to_string(r->status) : r.error().message;
    if (attempt == options_.attempts) break;  // no back-off after the last attempt
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.retry_backoff * (1 << (attempt - 1)),
                     [this] { return stopping_; }))
      break;
  }
  log_.warn("alert delivery failed", {{"receiver", receiver},
                                      {"url", redact_url(url, receiver[0] == 'a')},
                                      {"error", last_error}});
  return false;
}

void AlertDispatcher::run() {
  Timestamp last_repost = clock_.now();
  std::unique_lock lock(mu_);
  while (true) {
    // Sleeps until there is something to send or the next repost is due: an idle daemon
    // without active alerts never wakes this thread.
    auto work = [this] {
      return stopping_ || wake_ || !webhook_queue_.empty() || !resolved_.empty() ||
             post_active_now_;
    };
    const bool any_active = std::any_of(active_.begin(), active_.end(),
                                        [](const auto& kv) { return !kv.second.empty(); });
    if (!any_active || muted_) {
      cv_.wait(lock, work);
    } else {
      Duration left = last_repost + options_.repost - clock_.now();
      left = std::clamp<Duration>(left, std::chrono::milliseconds(100), options_.repost);
      cv_.wait_for(lock, left, work);
    }
    if (stopping_) return;
    const Timestamp now = clock_.now();
    bool repost_due = !muted_ && !active_.empty() && now - last_repost >= options_.repost;
    if (wake_) {
      wake_ = false;
      cv_.notify_all();  // idle() waits for the wake to be handled
    }
    if (muted_) post_active_now_ = false;
    if (webhook_queue_.empty() && resolved_.empty() && !post_active_now_ && !repost_due) continue;
    busy_ = true;
    std::vector<Alert> resolved = std::move(resolved_);
    resolved_.clear();
    std::vector<Alert> active;
    if (post_active_now_ || repost_due) {
      for (const auto& [cluster, alerts] : active_)
        active.insert(active.end(), alerts.begin(), alerts.end());
      post_active_now_ = false;
      last_repost = now;
    }
    std::deque<std::string> hooks = std::move(webhook_queue_);
    webhook_queue_.clear();
    const std::string alertmanager_url = options_.alertmanager_url;
    const std::string webhook_url = options_.webhook_url;
    lock.unlock();

    auto deliver_alerts = [&](const std::vector<Alert>& alerts, Timestamp ends_at) {
      for (std::size_t i = 0; i < alerts.size(); i += 500) {  // bounded bodies
        std::vector<Alert> chunk(
            alerts.begin() + static_cast<std::ptrdiff_t>(i),
            alerts.begin() + static_cast<std::ptrdiff_t>(std::min(alerts.size(), i + 500)));
        bool ok = post(alertmanager_url, alertmanager_body(chunk, ends_at), "alertmanager");
        (ok ? counters_.alertmanager_ok : counters_.alertmanager_failed) +=
            static_cast<std::int64_t>(chunk.size());
      }
    };
    if (!alertmanager_url.empty()) {
      if (!resolved.empty()) deliver_alerts(resolved, now);
      if (!active.empty()) deliver_alerts(active, now + 3 * options_.repost);
    }
    for (const auto& body : hooks) {
      if (webhook_url.empty()) break;
      bool ok = post(webhook_url, body, "webhook");
      ++(ok ? counters_.webhook_ok : counters_.webhook_failed);
    }
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace tw::daemon
