/* SPDX-License-Identifier: MIT */
/* loop_glib: ioasync as a GSource on a GLib main context
 * (include/ioasync/adapters/glib.h).  A GLib application runs its own
 * GMainLoop and quits it when it is done; this one, with nothing else on
 * its context, iterates it until ioasync is done (ioa_glib_run). */
#include "ioasync/adapters/glib.h"
#include "loop_common.h"

int main(void) {
  char port[16];
  int lfd = example_listen(port);
  GMainContext *context = g_main_context_new();
  ioa_loop *loop = NULL;
  if (lfd < 0 || ioa_glib_attach(context, NULL, &loop) < 0)
    return 1;
  int ok = example_connect(loop, port, "loop_glib") == 0;
  ioa_glib_run(context, loop);
  ioa_loop_free(loop); /* destroys the adapter's GSource */
  g_main_context_unref(context);
  close(lfd);
  return ok ? 0 : 1;
}
