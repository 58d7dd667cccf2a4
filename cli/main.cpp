// tokenwarden: the one executable; everything else lives in the libraries.
#include <cstdio>
#include <exception>

#include "cli/cli.h"

int main(int argc, char** argv) {
  try {
    return tw::cli::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tokenwarden: fatal: %s\n", e.what());
    return 1;
  }
}
