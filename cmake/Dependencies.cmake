# Every dependency comes from Debian packages (scripts/install-deps); nothing is downloaded.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(toml11 3.7 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
if(TW_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# Asio/Beast: header-only, separate compilation off; no deprecated APIs.
add_library(tw_asio INTERFACE)
target_link_libraries(tw_asio INTERFACE Boost::headers Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
target_compile_definitions(tw_asio INTERFACE BOOST_ASIO_NO_DEPRECATED)
