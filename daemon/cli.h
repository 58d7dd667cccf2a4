#pragma once
// Command-line parsing for `tokenwarden` (CLI11); dispatches to commands.h.
//
// Thread safety: called once from main. Errors: usage errors print help and return 2.

namespace tw::daemon {

int run_cli(int argc, char** argv);

}  // namespace tw::daemon
