// Fuzzes what tokenwarden reads back of its own audit log from files anyone may have edited: the
// checkpoint detail (storage/checkpoint.h), the export line (storage/export_log.h) and a whole
// exported copy checked by verify_export (storage/export_verify.h, without a database; with a
// public key, so the checkpoint rows are checked too). Properties: a parsed checkpoint's detail
// parses back to the same fields; a parsed export line, written again, parses back to the same
// row; verify_export never fails (a broken copy is a result) and an intact copy covers
// last_seq - first_seq + 1 distinct events.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "core/ed25519.h"
#include "storage/checkpoint.h"
#include "storage/export_log.h"
#include "storage/export_verify.h"

namespace {

const std::vector<tw::ed25519::PublicKey>& keys() {
  static const std::vector<tw::ed25519::PublicKey> k = [] {
    auto key = tw::ed25519::PrivateKey::generate();
    return std::vector<tw::ed25519::PublicKey>{key->public_key()};
  }();
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto c = tw::storage::parse_checkpoint_detail(text)) {
    auto again = tw::storage::parse_checkpoint_detail(tw::storage::checkpoint_detail(*c));
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->head_seq == c->head_seq && again->head_hash == c->head_hash &&
               again->signed_at == c->signed_at && again->key_id == c->key_id &&
               again->host == c->host && again->signature == c->signature);
  }

  auto row = tw::storage::parse_export_line(text);
  if (row.ok()) {
    auto again = tw::storage::parse_export_line(tw::storage::export_line(*row));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->seq == row->seq && again->recorded_at == row->recorded_at &&
               again->cluster == row->cluster && again->token_id == row->token_id &&
               again->event == row->event && again->detail == row->detail &&
               again->prev_hash == row->prev_hash && again->hash == row->hash);
  }

  std::istringstream in{std::string(text)};
  tw::storage::ExportVerifyOptions o;
  o.keys = &keys();
  auto rep = tw::storage::verify_export(in, o);
  FUZZ_CHECK(rep.ok());
  if (rep->ok && rep->events > 0) FUZZ_CHECK(rep->events == rep->last_seq - rep->first_seq + 1);
  return 0;
}
