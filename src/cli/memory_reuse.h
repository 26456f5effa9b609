// How the process's heap treats the large buffers a run allocates and frees every step (logits of
// every row, MLP activations, attention scratch): kept for reuse instead of handed back to the
// system and faulted in again, zeroed, on the next step.
#pragma once

namespace flexgen::cli {

// Sets the C library's heap to serve allocations below 256 MB from the heap (not a fresh mapping
// each time) and to return freed memory to the system only past 512 MB free at its top. No effect
// on any value computed; peak memory is unchanged (a step's buffers come back the next step). A
// no-op where the C library is not glibc. Called once, before a command runs.
void keep_freed_memory_for_reuse();

}  // namespace flexgen::cli
