#include "storage/checkpoint.h"

#include <nlohmann/json.hpp>

#include "core/json_writer.h"

namespace tw::storage {

std::string checkpoint_message(const Checkpoint& c) {
  std::string m = "tokenwarden checkpoint v1\n";
  m += "head_seq=" + std::to_string(c.head_seq) + "\n";
  m += "head_hash=" + c.head_hash + "\n";
  m += "signed_at=" + c.signed_at + "\n";
  m += "key_id=" + c.key_id + "\n";
  m += "host=" + c.host + "\n";
  return m;
}

std::string checkpoint_detail(const Checkpoint& c) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("head_seq");
  w.value(c.head_seq);
  w.key("head_hash");
  w.value(c.head_hash);
  w.key("signed_at");
  w.value(c.signed_at);
  w.key("key_id");
  w.value(c.key_id);
  w.key("host");
  w.value(c.host);
  w.key("signature");
  w.value(c.signature);
  w.end_object();
  return out;
}

std::optional<Checkpoint> parse_checkpoint_detail(std::string_view detail) {
  auto j = nlohmann::json::parse(detail, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto str = [&](const char* k) -> const std::string* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  auto seq = j.find("head_seq");
  if (seq == j.end() || !seq->is_number_integer()) return std::nullopt;
  const std::string* fields[] = {str("head_hash"), str("signed_at"), str("key_id"), str("host"),
                                 str("signature")};
  for (const auto* f : fields) {
    if (f == nullptr) return std::nullopt;
  }
  Checkpoint c;
  c.head_seq = seq->get<std::int64_t>();
  c.head_hash = *fields[0];
  c.signed_at = *fields[1];
  c.key_id = *fields[2];
  c.host = *fields[3];
  c.signature = *fields[4];
  return c;
}

}  // namespace tw::storage
