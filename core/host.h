#pragma once
// This machine's name, for checkpoints and the default [ha] instance.
//
// Thread safety: safe. Errors: none; a machine without a name is "unknown".

#include <string>

namespace tw {

// gethostname, made printable; "unknown" if the machine has no name.
std::string host_name();

}  // namespace tw
