// HTTPS with a CA and server certificate made at test time (openssl CLI).
#include <gtest/gtest.h>

#include "sim/server.h"
#include "tests/unit/sim/sim_test_util.h"

namespace tw::sim {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    certs_ = new testing::TestCerts(testing::make_test_certs(*dir_));
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete dir_;
    certs_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!certs_->ok) GTEST_SKIP() << certs_->why;
    SimOptions o;
    o.tls_cert_file = certs_->cert_file;
    o.tls_key_file = certs_->key_file;
    server_ = testing::start_sim(std::move(o));
    ASSERT_TRUE(server_);
  }

  static testing::TempDir* dir_;
  static testing::TestCerts* certs_;
  std::unique_ptr<SimServer> server_;
};

testing::TempDir* TlsTest::dir_ = nullptr;
testing::TestCerts* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, ServesHttpsVerifiedAgainstTheCa) {
  EXPECT_EQ(server_->base_url().rfind("https://127.0.0.1:", 0), 0u);
  server_->store().generate(20, 1);
  auto r = testing::call(*server_, "GET", "/api/v0/tokens", {}, "Bearer test-management-token-5f2c",
                         std::chrono::seconds(10), certs_->ca_file);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(testing::parse_json(r->body).size(), 20u);
  auto del =
      testing::call(*server_, "DELETE", "/api/v0/tokens/" + server_->store().list()[0].id, {},
                    "Bearer test-management-token-5f2c", std::chrono::seconds(10), certs_->ca_file);
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_EQ(del->status, 204);
}

TEST_F(TlsTest, UntrustedCertificateIsRejected) {
  auto r = testing::call(*server_, "GET", "/api/v0/tokens");  // system CAs only
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("certificate"), std::string::npos) << r.error().message;
}

TEST_F(TlsTest, PlainHttpIsNotServed) {
  auto url = influx::parse_url("http://127.0.0.1:" + std::to_string(server_->port()));
  ASSERT_TRUE(url.ok());
  influx::HttpRequest req;
  req.target = "/_sim/health";
  influx::HttpOptions opts;
  opts.timeout = std::chrono::seconds(5);
  auto r = influx::http_request(*url, req, opts);
  EXPECT_TRUE(!r.ok() || r->status != 200);
}

TEST_F(TlsTest, InfluxctlLookAlikeTrustsTheProfileCa) {
  server_->store().generate(3, 1);
  std::string config = dir_->write("influxctl-tls.toml",
                                   "[[profile]]\n"
                                   "  name = \"default\"\n"
                                   "  product = \"clustered\"\n"
                                   "  host = \"localhost\"\n"
                                   "  port = " +
                                       std::to_string(server_->port()) +
                                       "\n"
                                       "  mgmt_token = \"test-management-token-5f2c\"\n"
                                       "  [profile.tls]\n"
                                       "    ca = \"" +
                                       certs_->ca_file + "\"\n");
  auto r = testing::run_binary("tokenwarden-influxctl",
                               {"--config", config, "token", "list", "--format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto list = testing::parse_json(r.out);
  EXPECT_EQ(list.size(), server_->store().list(false).size());  // revoked ones hidden
}

}  // namespace
}  // namespace tw::sim
