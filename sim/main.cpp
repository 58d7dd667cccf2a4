// tokenwarden-sim: a simulated InfluxDB 3 Clustered/Dedicated management API, or the token API
// of InfluxDB 3 Core/Enterprise (SPEC §7, docs/simulator.md).
//
// Start-up is an ordered list of steps; SIGINT and SIGTERM are blocked in every thread and
// taken with sigwait() by the main thread, which then stops the server cleanly (exit 0).

#include <CLI/CLI.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "core/log.h"
#include "core/strings.h"
#include "core/time.h"
#include "sim/server.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kDescription =
    "tokenwarden-sim - a simulated InfluxDB 3 management service for database tokens.\n"
    "\n"
    "Serves the Management API of InfluxDB 3 Clustered (/api/v0/tokens, and also the\n"
    "Dedicated-style /api/v0/accounts/{a}/clusters/{c}/tokens with any UUIDs) or of Cloud\n"
    "Dedicated (/api/v0/accounts/{account-id}/clusters/{cluster-id}/tokens only) as the\n"
    "published OpenAPI specs describe it: Bearer authentication, {\"code\",\"message\"} errors,\n"
    "200 on create, 204 on DELETE (a revoke: the token stays, with revokedAt).\n"
    "With --flavor influxdb3 it is an InfluxDB 3 Core/Enterprise server instead: the token\n"
    "table through GET /api/v3/query_sql (db=_internal, SELECT * FROM system.tokens), DELETE\n"
    "/api/v3/configure/token?token_name=N (the token is gone) and the token-creating POSTs.\n"
    "A control API under /_sim/ (no authentication) seeds tokens, sets the clock, injects faults\n"
    "and reads the request log. Prints one line 'tokenwarden-sim listening on <base-url>' on\n"
    "stdout, then logs one line per request on stderr (never a token).\n";

constexpr const char* kFooter =
    "\nNOTES:\n"
    "  Exactly one of --token-file and --token is required. The token file is re-read on every\n"
    "  request, so a test can rotate it; --token is visible to other users in ps.\n"
    "  --account-id and --cluster-id matter only with --flavor dedicated (the ids are logged).\n"
    "  --without-auth (influxdb3 only) accepts every request and leaves the hash column out.\n"
    "  The same --seed and clock (--now) generate the same tokens. Revoked tokens are listed\n"
    "  with revokedAt unless --hide-revoked; GET .../tokens/{id} always returns them.\n"
    "\n"
    "CONTROL API (no authentication; JSON in and out):\n"
    "  GET  /_sim/health                 {\"ok\":true}\n"
    "  POST /_sim/reset                  no tokens, faults or log; real clock\n"
    "  GET  /_sim/tokens                 every token, revoked ones included\n"
    "  POST /_sim/tokens                 [token, ...] or {\"generate\":N,\"seed\":S}\n"
    "  PUT|DELETE /_sim/tokens/{id}      replace a token's state | remove it entirely\n"
    "  POST /_sim/churn                  {\"percent\":1.0,\"seed\":S}\n"
    "  GET|POST /_sim/clock              {\"now\":RFC3339} | {\"advance\":\"36h\"} | "
    "{\"real\":true}\n"
    "  GET|POST|DELETE /_sim/faults      {\"kind\":K,\"status\":500,\"delay\":\"3s\",\"count\":N,\n"
    "                                     \"method\":\"GET\",\"path\":\"/tokens\"}; K is one of\n"
    "                                     status timeout slow truncate malformed empty reset\n"
    "                                     ignore redirect; status: \"retry_after\":30,\n"
    "                                     redirect: \"location\":URL-or-path\n"
    "  GET|DELETE /_sim/requests         the management request log\n"
    "\n"
    "EXAMPLES:\n"
    "  tokenwarden-sim --token-file /run/sim/token --seed-tokens 500\n"
    "  tokenwarden-sim --flavor dedicated --token-file tok --listen 127.0.0.1:8086 \\\n"
    "      --account-id 11111111-1111-4111-8111-111111111111 \\\n"
    "      --cluster-id 33333333-3333-4333-8333-333333333333\n"
    "  curl -s -H \"Authorization: Bearer $(cat tok)\" http://127.0.0.1:8086/api/v0/tokens\n"
    "  tokenwarden-sim --flavor influxdb3 --token-file tok --listen 127.0.0.1:8181\n"
    "  curl -s -G -H \"Authorization: Bearer $(cat tok)\" http://127.0.0.1:8181/api/v3/query_sql "
    "\\\n"
    "      --data-urlencode db=_internal --data-urlencode 'q=SELECT * FROM system.tokens'\n"
    "\n"
    "EXIT STATUS: 0 after SIGINT or SIGTERM, 1 when the server cannot start, 2 on usage errors.\n"
    "See docs/simulator.md for the full reference.";

bool write_port_file(const std::string& path, std::uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << '\n';
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "tokenwarden-sim"};
  app.footer(kFooter);
  app.get_formatter()->column_width(36);

  std::string listen = "127.0.0.1:0";
  std::string flavor = "clustered";
  std::string token_file, token, account_id, cluster_id, tls_cert, tls_key, port_file, now_text;
  std::size_t seed_tokens = 0;
  std::uint64_t seed = 1;
  bool hide_revoked = false;
  bool without_auth = false;
  bool quiet = false;

  app.add_option("--listen", listen, "Listen address; port 0 picks a free port [127.0.0.1:0]")
      ->type_name("HOST:PORT");
  app.add_option("--flavor,--flavour", flavor, "API to simulate [clustered]")
      ->check(CLI::IsMember({"clustered", "dedicated", "influxdb3"}).description(""))
      ->type_name("clustered|dedicated|influxdb3");
  auto* token_file_opt =
      app.add_option("--token-file", token_file, "Accepted Bearer token; re-read per request")
          ->check(CLI::ExistingFile.description(""))
          ->type_name("FILE");
  auto* token_opt = app.add_option("--token", token, "Accepted Bearer token (visible in ps!)")
                        ->type_name("TOKEN");
  token_file_opt->excludes(token_opt);
  app.add_option("--account-id", account_id, "Dedicated account id [random]")->type_name("UUID");
  app.add_option("--cluster-id", cluster_id, "Dedicated cluster id [random]")->type_name("UUID");
  auto* cert_opt = app.add_option("--tls-cert", tls_cert, "PEM certificate chain: HTTPS only")
                       ->check(CLI::ExistingFile.description(""))
                       ->type_name("FILE");
  auto* key_opt = app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")
                      ->check(CLI::ExistingFile.description(""))
                      ->type_name("FILE");
  cert_opt->needs(key_opt);
  key_opt->needs(cert_opt);
  app.add_option("--seed-tokens", seed_tokens, "Generate N realistic tokens at start [0]")
      ->type_name("N");
  app.add_option("--seed", seed, "Seed of --seed-tokens [1]")->type_name("S");
  app.add_option("--now", now_text, "Freeze the simulated clock at this time")
      ->type_name("RFC3339");
  app.add_flag("--hide-revoked", hide_revoked, "Leave revoked tokens out of GET .../tokens");
  app.add_flag("--without-auth", without_auth, "influxdb3: no authentication, no hash column");
  app.add_option("--port-file", port_file, "Write the port number here once listening")
      ->type_name("FILE");
  app.add_flag("-q,--quiet", quiet, "Do not log requests on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  tw::SystemClock clock;
  auto sink = std::make_shared<tw::StreamLogSink>(stderr, tw::LogFormat::kText, clock);
  if (quiet) sink->set_level(tw::LogLevel::kWarn);
  tw::Logger logger("sim", sink);

  if (token_file.empty() && token.empty()) {
    std::cerr << "tokenwarden-sim: one of --token-file or --token is required (see --help)\n";
    return kExitUsage;
  }
  if (!token.empty()) {
    logger.warn("--token is visible to other users in the process list; prefer --token-file");
  }

  if (without_auth && flavor != "influxdb3") {
    std::cerr << "tokenwarden-sim: --without-auth needs --flavor influxdb3\n";
    return kExitUsage;
  }
  tw::sim::SimOptions options;
  options.flavor = flavor == "dedicated"   ? tw::sim::Flavor::kDedicated
                   : flavor == "influxdb3" ? tw::sim::Flavor::kInfluxdb3
                                           : tw::sim::Flavor::kClustered;
  options.without_auth = without_auth;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    std::cerr << "tokenwarden-sim: --listen must be HOST:PORT, got \"" << tw::printable(listen)
              << "\"\n";
    return kExitUsage;
  }
  options.listen_host = listen.substr(0, colon);
  if (options.listen_host.size() >= 2 && options.listen_host.front() == '[' &&
      options.listen_host.back() == ']') {
    options.listen_host = options.listen_host.substr(1, options.listen_host.size() - 2);
  }
  std::string_view port_text = std::string_view(listen).substr(colon + 1);
  std::uint16_t port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size()) {
    std::cerr << "tokenwarden-sim: invalid port in --listen \"" << tw::printable(listen) << "\"\n";
    return kExitUsage;
  }
  options.port = port;
  options.management_token = token;
  options.token_file = token_file;
  options.account_id = account_id;
  options.cluster_id = cluster_id;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
  options.list_includes_revoked = !hide_revoked;
  options.logger = logger;

  std::optional<tw::Timestamp> frozen_at;
  if (!now_text.empty()) {
    auto t = tw::parse_rfc3339(now_text);
    if (!t.ok()) {
      std::cerr << "tokenwarden-sim: --now: " << t.error().message << "\n";
      return kExitUsage;
    }
    frozen_at = *t;
  }

  // Block the stop signals before any thread starts, so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto server = tw::sim::SimServer::start(std::move(options));
  if (!server.ok()) {
    logger.error("cannot start", {{"error", server.error().message}});
    return kExitFailure;
  }
  auto& sim = **server;
  if (frozen_at) sim.store().freeze_clock(*frozen_at);
  if (seed_tokens > 0) {
    sim.store().generate(seed_tokens, seed);
    logger.info("seeded tokens", {{"count", seed_tokens}, {"seed", seed}});
  }
  if (sim.flavor() == tw::sim::Flavor::kDedicated) {
    logger.info("dedicated flavour", {{"account_id", sim.account_id()},
                                      {"cluster_id", sim.cluster_id()},
                                      {"tokens_url", sim.tokens_url()}});
  }
  if (!port_file.empty() && !write_port_file(port_file, sim.port())) {
    logger.error("cannot write the port file", {{"path", port_file}});
    return kExitFailure;
  }
  std::cout << "tokenwarden-sim listening on " << sim.base_url() << std::endl;

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  logger.info("stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  sim.stop();
  return 0;
}
