/* SPDX-License-Identifier: MIT */
/* Internal fault injection.
 *
 * In a build with IOA_FAULT_INJECTION (the `fault` preset), every syscall and
 * allocation the library makes passes through ioa__fault_hit(), which counts
 * calls and makes the Nth matching one fail with a chosen errno.  Tests drive
 * it with ioa__fault_arm() to sweep N = 1, 2, 3, ... over a scenario, until a
 * run ends with ioa__fault_fired() still 0 (the scenario made fewer than N
 * matching calls, so every failure point has been exercised).  In normal
 * builds the hooks compile to nothing and no state exists.
 */
#ifndef IOA_FAULT_H
#define IOA_FAULT_H

#include <errno.h>

#include "ioasync/common.h"

typedef enum ioa__fault_op {
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
  IOA_FOP_SSL_MALLOC, /* OpenSSL's own allocations (fault builds route them here) */
  IOA_FOP_OPEN,
  IOA_FOP_STAT,
  IOA_FOP_COUNT_
} ioa__fault_op;

#define IOA_FAULT_MASK(op) (1ul << (op))
#define IOA_FAULT_ALL ((1ul << IOA_FOP_COUNT_) - 1)
/* Count matching calls but never fail one: a dry run tells a sweep how many
 * failure points a scenario has. */
#define IOA_FAULT_COUNT_ONLY (~0ul)

/* Flags for ioa__fault_arm_ex. */
enum {
  /* Count and fail only calls made by the thread that armed the injector, so
   * a sweep over the loop thread is reproducible even while resolver threads
   * allocate concurrently.  Without it every thread counts. */
  IOA_FAULT_THIS_THREAD = 1u << 0,
  /* Fail the nth matching call and every one after it (a resource that
   * stays exhausted), instead of the nth alone. */
  IOA_FAULT_STICKY = 1u << 1,
  /* Chaos: nth is read as "one in nth": each matching call fails with that
   * probability (a seeded, reproducible generator; see ioa__fault_seed). */
  IOA_FAULT_RANDOM = 1u << 2,
};

#ifdef IOA_FAULT_INJECTION
/* Returns 0, or the errno the caller must fail with (for getaddrinfo, a
 * negative EAI_* value or a positive errno meaning EAI_SYSTEM). Thread-safe. */
IOA_EXPORT int ioa__fault_hit(ioa__fault_op op);
/* Arm: the nth (1-based) call of any op whose bit is in mask fails with err;
 * err 0 means each op's natural errno (ioa__fault_errno).  nth 0 disarms,
 * IOA_FAULT_COUNT_ONLY only counts.  Resets the counters.  _ex takes
 * IOA_FAULT_* flags. */
IOA_EXPORT void ioa__fault_arm(unsigned long nth, unsigned long mask, int err);
IOA_EXPORT void ioa__fault_arm_ex(unsigned long nth, unsigned long mask, int err, unsigned flags);
/* Seed for IOA_FAULT_RANDOM (default 1). */
IOA_EXPORT void ioa__fault_seed(unsigned long seed);
/* Per-op errno used when arming with err 0 (the most plausible real failure:
 * ENOMEM for malloc, EMFILE for socket, EINTR for epoll_wait, EAI_AGAIN for
 * getaddrinfo...).  err 0 restores the built-in choice. */
IOA_EXPORT void ioa__fault_set_errno(ioa__fault_op op, int err);
IOA_EXPORT int ioa__fault_errno(ioa__fault_op op);
/* Matching calls seen since arming (all ops, and per op), whether the armed
 * failure was injected, and into which op (-1 if none). */
IOA_EXPORT unsigned long ioa__fault_calls(void);
IOA_EXPORT unsigned long ioa__fault_op_calls(ioa__fault_op op);
IOA_EXPORT int ioa__fault_fired(void);
/* How many calls failed since arming (more than one when sticky/random). */
IOA_EXPORT unsigned long ioa__fault_fires(void);
IOA_EXPORT int ioa__fault_fired_op(void);
/* "malloc", "socket", ... */
IOA_EXPORT const char *ioa__fault_op_name(ioa__fault_op op);
#define IOA_FAULT_ALLOC(op)                                                    \
  do {                                                                         \
    if (ioa__fault_hit(op))                                                     \
      return NULL;                                                             \
  } while (0)
#define IOA_FAULT_SYS(op, failret)                                             \
  do {                                                                         \
    int ioa__fe_ = ioa__fault_hit(op);                                           \
    if (ioa__fe_) {                                                             \
      errno = ioa__fe_;                                                         \
      return failret;                                                          \
    }                                                                          \
  } while (0)
#else
#define IOA_FAULT_ALLOC(op) ((void)0)
#define IOA_FAULT_SYS(op, failret) ((void)0)
#endif

#endif
