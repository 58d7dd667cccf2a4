#pragma once
// Helpers shared by the simulator tests: temp dirs, an in-process SimServer on port 0, HTTP
// calls through tw::influx::http_request, and the paths of the executables under test.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.h"
#include "influx/http_client.h"
#include "influx/subprocess.h"
#include "sim/server.h"

namespace tw::sim::testing {

inline constexpr const char* kToken = "test-management-token-5f2c";

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes a file (mode 0600) and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// A started server with the test token (clustered unless options say otherwise).
std::unique_ptr<SimServer> start_sim(SimOptions options = {});

// Calls the server. `target` is relative to the server root ("/api/v0/tokens", "/_sim/...").
// auth: the Authorization header value to send; nullptr sends none.
Result<influx::HttpResponse> call(const SimServer& server, const std::string& method,
                                  const std::string& target, const std::string& body = {},
                                  const char* auth = "Bearer test-management-token-5f2c",
                                  Duration timeout = std::chrono::seconds(10),
                                  const std::string& ca_file = {});

// The whole content of a file ("" if it cannot be read).
std::string read_file(const std::filesystem::path& path);

// Parses JSON or fails the current test (returns null then).
nlohmann::json parse_json(const std::string& body);

// Directory of the running test binary (the executables under test live beside it).
std::filesystem::path bin_dir();

// Runs bin_dir()/program with args (stdin /dev/null); fails the test if it cannot start.
influx::ProcessResult run_binary(const std::string& program, const std::vector<std::string>& args,
                                 Duration timeout = std::chrono::seconds(30));

// A self-signed CA and a server certificate for 127.0.0.1 and localhost, made with the openssl
// command-line tool. ok is false (and why says why) when openssl is unavailable.
struct TestCerts {
  bool ok = false;
  std::string why;
  std::string ca_file, cert_file, key_file;
};
TestCerts make_test_certs(const TempDir& dir);

}  // namespace tw::sim::testing
