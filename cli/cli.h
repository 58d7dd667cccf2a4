#pragma once
// Command-line parsing for `tokenwarden` (CLI11); dispatches to commands.h.
//
// Thread safety: called once from main. Errors: usage errors print help and return 2.

namespace tw::cli {

int run_cli(int argc, char** argv);

// Process-wide settings every tokenwarden process wants (called by run_cli; benchmarks call it
// too): buffers of 1 MiB and more — token-list bodies — are mapped and unmapped on their own,
// so the memory of a 100k-token poll returns to the system instead of fragmenting the heap.
void configure_process();

}  // namespace tw::cli
