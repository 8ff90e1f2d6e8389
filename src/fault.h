/* Internal fault injection.
 *
 * In a build with IOA_FAULT_INJECTION (the `fault` preset), every syscall and
 * allocation the library makes passes through ioa_fault_hit(), which counts
 * calls and makes the Nth matching one fail with a chosen errno.  Tests drive
 * it with ioa_fault_arm() to sweep N = 1, 2, 3, ... over a scenario.  In
 * normal builds the hooks compile to nothing and no state exists.
 */
#ifndef IOA_FAULT_H
#define IOA_FAULT_H

#include <errno.h>

#include "ioasync/common.h"

typedef enum ioa_fault_op {
  IOA_FOP_MALLOC,
  IOA_FOP_SOCKET,
  IOA_FOP_BIND,
  IOA_FOP_CONNECT,
  IOA_FOP_GETSOCKOPT,
  IOA_FOP_SETSOCKOPT,
  IOA_FOP_GETSOCKNAME,
  IOA_FOP_READ,
  IOA_FOP_WRITE,
  IOA_FOP_WRITEV,
  IOA_FOP_RECVMSG,
  IOA_FOP_SENDMSG,
  IOA_FOP_SHUTDOWN,
  IOA_FOP_EPOLL_CREATE,
  IOA_FOP_EPOLL_CTL,
  IOA_FOP_EPOLL_WAIT,
  IOA_FOP_EVENTFD,
  IOA_FOP_PTHREAD_CREATE,
  IOA_FOP_GETADDRINFO,
  IOA_FOP_FCNTL,
  IOA_FOP_COUNT_
} ioa_fault_op;

#ifdef IOA_FAULT_INJECTION
/* Returns 0, or the errno the caller must fail with. Thread-safe. */
IOA_EXPORT int ioa_fault_hit(ioa_fault_op op);
/* Arm: the nth (1-based) call of any op whose bit is in mask fails with err
 * (for IOA_FOP_MALLOC the allocation returns NULL; for getaddrinfo err is an
 * EAI_* value).  nth 0 disarms.  Resets the call counter. */
IOA_EXPORT void ioa_fault_arm(unsigned long nth, unsigned long mask, int err);
/* Calls seen since arming, and whether the armed failure was injected. */
IOA_EXPORT unsigned long ioa_fault_calls(void);
IOA_EXPORT int ioa_fault_fired(void);
#define IOA_FAULT_ALLOC(op)                                                    \
  do {                                                                         \
    if (ioa_fault_hit(op))                                                     \
      return NULL;                                                             \
  } while (0)
#define IOA_FAULT_SYS(op, failret)                                             \
  do {                                                                         \
    int ioa_fe_ = ioa_fault_hit(op);                                           \
    if (ioa_fe_) {                                                             \
      errno = ioa_fe_;                                                         \
      return failret;                                                          \
    }                                                                          \
  } while (0)
#else
#define IOA_FAULT_ALLOC(op) ((void)0)
#define IOA_FAULT_SYS(op, failret) ((void)0)
#endif

#endif
