/* SPDX-License-Identifier: MIT */
/* embed_poll: ioasync inside a hand-written poll() loop.
 *
 * The program's loop watches its own fds (here: standard input, read and
 * echoed) plus ioasync's one pollable fd, waits at most as long as ioasync's
 * next timer allows, and lets ioasync run whatever is ready without
 * blocking.  Three calls: ioa_loop_fd(), ioa_loop_timeout(),
 * ioa_loop_run(loop, IOA_RUN_NOWAIT).
 */
#include <errno.h>
#include <poll.h>

#include "loop_common.h"

int main(void) {
  char port[16];
  int lfd = example_listen(port);
  ioa_loop *loop = NULL;
  if (lfd < 0 || ioa_loop_new(NULL, &loop) < 0)
    return 1;
  if (example_connect(loop, port, "embed_poll") < 0)
    return 1;
  int stdin_open = 1;
  for (;;) {
    struct pollfd fds[2] = {{.fd = ioa_loop_fd(loop), .events = POLLIN},
                            {.fd = stdin_open ? 0 : -1, .events = POLLIN}};
    if (poll(fds, 2, ioa_loop_timeout(loop)) < 0 && errno != EINTR) {
      perror("poll");
      return 1;
    }
    if (fds[1].revents) { /* the program's own work */
      char buf[256];
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0)
        stdin_open = 0;
      else
        fwrite(buf, 1, (size_t)n, stdout);
    }
    /* ioasync's: returns 0 once it has nothing left to do */
    if (ioa_loop_run(loop, IOA_RUN_NOWAIT) == 0)
      break;
  }
  ioa_loop_free(loop);
  close(lfd);
  return 0;
}
