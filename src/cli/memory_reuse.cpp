// keep_freed_memory_for_reuse (memory_reuse.h). With glibc's defaults every allocation above the
// (adaptive, at most 32 MB) mmap threshold is a mapping of its own: a CPU decode step of 80 rows
// maps its 41 MB of logits afresh each step, and the kernel faulted in and zeroed those pages.
// perf of a CPU `avg` run (the 2-core VM, 16 WebQA samples, batch 16): kernel time 9.5% -> 5.7%
// of the samples, clear_page 3.0% -> 0.1%; wall time 1.5% less on average over 3 + 3 runs of
// `avg` and `flex` (the VM's noise is about as large); records identical.
#include "memory_reuse.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace flexgen::cli {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace flexgen::cli
