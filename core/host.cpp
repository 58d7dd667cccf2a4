#include "core/host.h"

#include <unistd.h>

#include "core/strings.h"

namespace tw {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "unknown";
  return printable(buf, 255);
}

}  // namespace tw
