/* SPDX-License-Identifier: MIT */
/* loop_libev: ioasync on a libev loop (include/ioasync/adapters/libev.h).
 * ev_run() keeps going while ioasync has work and returns when it is done. */
#include "ioasync/adapters/libev.h"
#include "loop_common.h"

int main(void) {
  char port[16];
  int lfd = example_listen(port);
  struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
  ioa_loop *loop = NULL;
  if (lfd < 0 || !ev || ioa_ev_attach(ev, NULL, &loop) < 0)
    return 1;
  int ok = example_connect(loop, port, "loop_libev") == 0;
  ev_run(ev, 0);
  ioa_loop_free(loop); /* stops the adapter's watchers at once */
  ev_loop_destroy(ev);
  close(lfd);
  return ok ? 0 : 1;
}
