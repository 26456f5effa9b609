// SIGINT, SIGTERM and SIGHUP during a run: the first one only sets a flag that the run asks
// between samples and decode steps (so records are never cut mid-line); the run then stops,
// writes its summary marked as interrupted and exits 128 + the signal. A second one ends the
// process at once (default action).
#pragma once

namespace flexgen::cli {

// Installs the handlers (SA_RESTART: writes in progress complete).
void catch_interrupts();
// The signal that asked the run to stop, or 0.
int interrupt_signal();
// "SIGINT", "SIGTERM", "SIGHUP".
const char* signal_name(int signal);

}  // namespace flexgen::cli
