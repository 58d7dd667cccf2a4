#include "tests/unit/sim/sim_test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace tw::sim::testing {

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate =
        base / ("tw-sim-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::error_code ec;
    if (std::filesystem::create_directory(candidate, ec)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  auto p = path_ / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  ::chmod(p.c_str(), 0600);
  return p.string();
}

std::unique_ptr<SimServer> start_sim(SimOptions options) {
  if (options.management_token.empty() && options.token_file.empty()) {
    options.management_token = kToken;
  }
  auto server = SimServer::start(std::move(options));
  if (!server.ok()) {
    ADD_FAILURE() << "SimServer::start: " << server.error().message;
    return nullptr;
  }
  return std::move(*server);
}

Result<influx::HttpResponse> call(const SimServer& server, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  const char* auth, Duration timeout, const std::string& ca_file) {
  auto url = influx::parse_url(server.root_url());
  if (!url.ok()) return url.take_error();
  influx::HttpRequest req;
  req.method = method;
  req.target = target;
  req.body = body;
  if (auth != nullptr) req.headers.emplace_back("Authorization", auth);
  req.headers.emplace_back("Accept", "application/json");
  influx::HttpOptions opts;
  opts.timeout = timeout;
  opts.ca_file = ca_file;
  return influx::http_request(*url, req, opts);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json parse_json(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    ADD_FAILURE() << "not JSON: " << body.substr(0, 300);
    return nullptr;
  }
  return j;
}

std::filesystem::path bin_dir() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path();
}

influx::ProcessResult run_binary(const std::string& program, const std::vector<std::string>& args,
                                 Duration timeout) {
  std::vector<std::string> argv{(bin_dir() / program).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  influx::ProcessOptions opts;
  opts.timeout = timeout;
  auto r = influx::run_process(argv, opts);
  if (!r.ok()) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << r.error().message;
    influx::ProcessResult failed;
    failed.exit_code = -1;
    return failed;
  }
  return std::move(*r);
}

TestCerts make_test_certs(const TempDir& dir) {
  TestCerts certs;
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    certs.why = "the openssl command-line tool is not installed";
    return certs;
  }
  dir.write("server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n");
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script =
      "cd '" + dir.path().string() +
      "' && "
      "openssl req -x509 " +
      ec +
      " -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=tokenwarden-test-ca -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign && "
      "openssl req " +
      ec +
      " -keyout server.key -out server.csr -subj /CN=localhost && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile server.ext";
  const std::string log_file = (dir.path() / "openssl.log").string();
  if (std::system(("(" + script + ") >'" + log_file + "' 2>&1").c_str()) != 0) {
    certs.why = "openssl failed: " + read_file(log_file);
    return certs;
  }
  certs.ok = true;
  certs.ca_file = (dir.path() / "ca.pem").string();
  certs.cert_file = (dir.path() / "server.pem").string();
  certs.key_file = (dir.path() / "server.key").string();
  return certs;
}

}  // namespace tw::sim::testing
