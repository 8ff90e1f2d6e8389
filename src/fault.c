/* Fault injector (only in IOA_FAULT_INJECTION builds; see fault.h).  Its
 * counters are process-global by nature: it exists to test the library, and
 * normal builds contain none of it. */
#include "fault.h"

#ifdef IOA_FAULT_INJECTION
#include <stdatomic.h>

static atomic_ulong fault_calls;
static atomic_ulong fault_nth;
static atomic_ulong fault_mask;
static atomic_int fault_err;
static atomic_int fault_fired;

int ioa_fault_hit(ioa_fault_op op) {
  unsigned long nth = atomic_load(&fault_nth);
  if (nth == 0 || !(atomic_load(&fault_mask) & (1ul << op)))
    return 0;
  unsigned long n = atomic_fetch_add(&fault_calls, 1) + 1;
  if (n != nth)
    return 0;
  atomic_store(&fault_fired, 1);
  return atomic_load(&fault_err);
}

void ioa_fault_arm(unsigned long nth, unsigned long mask, int err) {
  atomic_store(&fault_nth, 0);
  atomic_store(&fault_calls, 0);
  atomic_store(&fault_fired, 0);
  atomic_store(&fault_mask, mask);
  atomic_store(&fault_err, err);
  atomic_store(&fault_nth, nth);
}

unsigned long ioa_fault_calls(void) { return atomic_load(&fault_calls); }
int ioa_fault_fired(void) { return atomic_load(&fault_fired); }
#else
typedef int ioa_fault_unused_;
#endif
