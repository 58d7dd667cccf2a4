#include "daemon/commands.h"

namespace tw::daemon {

int cmd_demo(const GlobalOptions&, const DemoOptions&) {
  print_error("demo needs the simulator, which is not built yet");
  return kExitFailure;
}

}  // namespace tw::daemon
