// tw-contract-probe: drives tokenwarden's clients (tw::influx) directly, so the contract tests
// can run list, revoke and restrict against Prism and through Prism's validating proxy, and
// the influxdb3 client against schema-checked bodies (TYPE clustered, dedicated or influxdb3).
//
//   tw-contract-probe TYPE URL TOKEN_FILE ACCOUNT CLUSTER list
//   tw-contract-probe TYPE URL TOKEN_FILE ACCOUNT CLUSTER revoke ID
//   tw-contract-probe TYPE URL TOKEN_FILE ACCOUNT CLUSTER restrict ID ACTION:RESOURCE...
//
// Prints one JSON object: {"ok":true,...} or {"ok":false,"error":"..."}; exit 0 either way,
// 2 on bad usage.
#include <cstdio>
#include <string>
#include <vector>

#include "core/json_writer.h"
#include "influx/source_config.h"

int main(int argc, char** argv) {
  using namespace tw;
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s TYPE URL TOKEN_FILE ACCOUNT CLUSTER list|revoke|restrict ...\n",
                 argv[0]);
    return 2;
  }
  influx::SourceConfig cfg;
  std::string type = argv[1];
  cfg.type = type == "dedicated"   ? influx::SourceType::kDedicated
             : type == "influxdb3" ? influx::SourceType::kInfluxdb3
                                   : influx::SourceType::kClustered;
  cfg.url = argv[2];
  cfg.token_file = argv[3];
  cfg.account_id = argv[4];
  cfg.cluster_id = argv[5];
  cfg.timeout = std::chrono::seconds(20);
  auto client = influx::make_cluster_client(cfg, "");
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  if (!client.ok()) {
    w.field("ok", false).field("error", client.error().message).end_object();
    std::puts(out.c_str());
    return 0;
  }
  std::string op = argv[6];
  influx::CallContext ctx;
  if (op == "list") {
    auto r = (*client)->list_tokens(ctx);
    if (r.ok()) {
      w.field("ok", true).key("tokens").begin_array();
      for (const auto& t : r->tokens) {
        w.begin_object()
            .field("id", t.id)
            .field("description", t.description)
            .field("created_at", t.created_at)
            .field("expires_at", t.expires_at)
            .field("revoked_at", t.revoked_at)
            .key("permissions")
            .raw(permissions_json(t.permissions))
            .end_object();
      }
      w.end_array();
    } else {
      w.field("ok", false).field("error", r.error().message);
    }
  } else if (op == "revoke" && argc >= 8) {
    auto r = (*client)->revoke(argv[7], ctx);
    if (r.ok()) {
      w.field("ok", true)
          .field("outcome", *r == influx::RevokeOutcome::kRevoked ? "revoked" : "already_gone");
    } else {
      w.field("ok", false)
          .field("error", r.error().message)
          .field("http_status", r.error().http_status);
    }
  } else if (op == "restrict" && argc >= 8) {
    std::vector<Permission> perms;
    for (int i = 8; i < argc; ++i) {
      std::string p = argv[i];
      auto colon = p.find(':');
      perms.push_back({p.substr(0, colon), colon == std::string::npos ? "" : p.substr(colon + 1)});
    }
    auto r = (*client)->restrict(argv[7], perms, ctx);
    if (r.ok()) {
      w.field("ok", true);
    } else {
      w.field("ok", false)
          .field("error", r.error().message)
          .field("http_status", r.error().http_status);
    }
  } else {
    std::fprintf(stderr, "unknown operation %s\n", op.c_str());
    return 2;
  }
  w.end_object();
  std::puts(out.c_str());
  return 0;
}
