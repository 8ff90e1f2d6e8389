/* SPDX-License-Identifier: MIT */
/* loop_libuv: ioasync on a libuv loop (include/ioasync/adapters/libuv.h).
 * uv_run() keeps going while ioasync has work and returns when it is done. */
#include "ioasync/adapters/libuv.h"
#include "loop_common.h"

int main(void) {
  char port[16];
  int lfd = example_listen(port);
  uv_loop_t *uv = uv_default_loop();
  ioa_loop *loop = NULL;
  if (lfd < 0 || ioa_uv_attach(uv, NULL, &loop) < 0)
    return 1;
  int ok = example_connect(loop, port, "loop_libuv") == 0;
  uv_run(uv, UV_RUN_DEFAULT);
  ioa_loop_free(loop);
  uv_run(uv, UV_RUN_DEFAULT); /* libuv finishes closing the adapter's handles */
  uv_loop_close(uv);
  close(lfd);
  return ok ? 0 : 1;
}
