/* SPDX-License-Identifier: MIT */
/* loop_libevent: ioasync on a libevent event_base
 * (include/ioasync/adapters/libevent.h).  event_base_dispatch() keeps going
 * while ioasync has work and returns when it is done; libevent's threading
 * need not be enabled. */
#include "ioasync/adapters/libevent.h"
#include "loop_common.h"

int main(void) {
  char port[16];
  int lfd = example_listen(port);
  struct event_base *base = event_base_new();
  ioa_loop *loop = NULL;
  if (lfd < 0 || !base || ioa_event_attach(base, NULL, &loop) < 0)
    return 1;
  int ok = example_connect(loop, port, "loop_libevent") == 0;
  event_base_dispatch(base);
  ioa_loop_free(loop); /* deletes the adapter's events at once */
  event_base_free(base);
  close(lfd);
  return ok ? 0 : 1;
}
