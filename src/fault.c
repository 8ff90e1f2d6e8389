/* SPDX-License-Identifier: MIT */
/* Fault injector (only in IOA_FAULT_INJECTION builds; see fault.h).  Its
 * counters are process-global by nature: it exists to test the library, and
 * normal builds contain none of it. */
#include "fault.h"

#ifdef IOA_FAULT_INJECTION
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong fault_calls;
static atomic_ulong fault_op_calls[IOA_FOP_COUNT_];
static atomic_ulong fault_nth;
static atomic_ulong fault_mask;
static atomic_int fault_err;
static atomic_int fault_fired;
static atomic_ulong fault_fires;
static atomic_int fault_fired_op = -1;
static atomic_uint fault_flags;
static atomic_int fault_errno_override[IOA_FOP_COUNT_];
/* Each arming starts a generation; a thread is "the arming thread" when its
 * own copy matches, so no pthread_t has to be stored atomically. */
static atomic_ulong fault_gen;
static atomic_ulong fault_rng = 1;
static _Thread_local unsigned long fault_my_gen;

static const struct {
  const char *name;
  int err;
} fault_ops[IOA_FOP_COUNT_] = {
    [IOA_FOP_MALLOC] = {"malloc", ENOMEM},
    [IOA_FOP_SOCKET] = {"socket", EMFILE},
    [IOA_FOP_BIND] = {"bind", EADDRINUSE},
    [IOA_FOP_CONNECT] = {"connect", ENETUNREACH},
    [IOA_FOP_GETSOCKOPT] = {"getsockopt", ENOBUFS},
    [IOA_FOP_SETSOCKOPT] = {"setsockopt", ENOPROTOOPT},
    [IOA_FOP_GETSOCKNAME] = {"getsockname", ENOBUFS},
    [IOA_FOP_READ] = {"read", ECONNRESET},
    [IOA_FOP_WRITE] = {"write", EPIPE},
    [IOA_FOP_WRITEV] = {"writev", EPIPE},
    [IOA_FOP_RECVMSG] = {"recvmsg", ECONNREFUSED},
    [IOA_FOP_SENDMSG] = {"sendmsg", ENOBUFS},
    [IOA_FOP_SHUTDOWN] = {"shutdown", ENOTCONN},
    [IOA_FOP_EPOLL_CREATE] = {"epoll_create", EMFILE},
    [IOA_FOP_EPOLL_CTL] = {"epoll_ctl", ENOMEM},
    [IOA_FOP_EPOLL_WAIT] = {"epoll_wait", EINTR},
    [IOA_FOP_EVENTFD] = {"eventfd", EMFILE},
    [IOA_FOP_PTHREAD_CREATE] = {"pthread_create", EAGAIN},
    [IOA_FOP_GETADDRINFO] = {"getaddrinfo", EAI_AGAIN},
    [IOA_FOP_FCNTL] = {"fcntl", EBADF},
    [IOA_FOP_SSL_MALLOC] = {"ssl_malloc", ENOMEM},
    [IOA_FOP_OPEN] = {"open", EMFILE},
    [IOA_FOP_STAT] = {"stat", EIO},
};

int ioa__fault_errno(ioa__fault_op op) {
  if ((unsigned)op >= IOA_FOP_COUNT_)
    return EINVAL;
  int e = atomic_load(&fault_errno_override[op]);
  return e ? e : fault_ops[op].err;
}

void ioa__fault_set_errno(ioa__fault_op op, int err) {
  if ((unsigned)op < IOA_FOP_COUNT_)
    atomic_store(&fault_errno_override[op], err);
}

const char *ioa__fault_op_name(ioa__fault_op op) {
  return (unsigned)op < IOA_FOP_COUNT_ ? fault_ops[op].name : "unknown";
}

int ioa__fault_hit(ioa__fault_op op) {
  unsigned long nth = atomic_load(&fault_nth);
  if (nth == 0 || (unsigned)op >= IOA_FOP_COUNT_ || !(atomic_load(&fault_mask) & (1ul << op)))
    return 0;
  if ((atomic_load(&fault_flags) & IOA_FAULT_THIS_THREAD) &&
      fault_my_gen != atomic_load(&fault_gen))
    return 0;
  atomic_fetch_add(&fault_op_calls[op], 1);
  unsigned long n = atomic_fetch_add(&fault_calls, 1) + 1;
  /* IOA_FAULT_TRACE=1: list every counted call, to map a failing N to code. */
  static atomic_int trace = -1;
  int tr = atomic_load(&trace);
  if (tr < 0) {
    const char *e = getenv("IOA_FAULT_TRACE");
    tr = e && *e && strcmp(e, "0") != 0;
    atomic_store(&trace, tr);
  }
  if (tr)
    fprintf(stderr, "ioa__fault: #%lu %s\n", n, fault_ops[op].name);
  unsigned flags = atomic_load(&fault_flags);
  if (flags & IOA_FAULT_RANDOM) {
    /* xorshift64 stepped atomically: reproducible for one thread. */
    unsigned long x = atomic_load(&fault_rng), y;
    do {
      y = x;
      y ^= y << 13;
      y ^= y >> 7;
      y ^= y << 17;
    } while (!atomic_compare_exchange_weak(&fault_rng, &x, y));
    if (y % nth != 0)
      return 0;
  } else if (n != nth && !(n > nth && (flags & IOA_FAULT_STICKY))) {
    return 0;
  }
  if (tr)
    fprintf(stderr, "ioa__fault: #%lu %s FAILS\n", n, fault_ops[op].name);
  atomic_fetch_add(&fault_fires, 1);
  if (!atomic_exchange(&fault_fired, 1))
    atomic_store(&fault_fired_op, (int)op); /* the first one, when sticky */
  int err = atomic_load(&fault_err);
  return err ? err : ioa__fault_errno(op);
}

void ioa__fault_arm_ex(unsigned long nth, unsigned long mask, int err, unsigned flags) {
  atomic_store(&fault_nth, 0);
  atomic_store(&fault_calls, 0);
  for (int i = 0; i < IOA_FOP_COUNT_; i++)
    atomic_store(&fault_op_calls[i], 0);
  atomic_store(&fault_fired, 0);
  atomic_store(&fault_fires, 0);
  atomic_store(&fault_fired_op, -1);
  atomic_store(&fault_mask, mask);
  atomic_store(&fault_err, err);
  atomic_store(&fault_flags, flags);
  fault_my_gen = atomic_fetch_add(&fault_gen, 1) + 1;
  atomic_store(&fault_nth, nth);
}

void ioa__fault_arm(unsigned long nth, unsigned long mask, int err) {
  ioa__fault_arm_ex(nth, mask, err, 0);
}

void ioa__fault_seed(unsigned long seed) { atomic_store(&fault_rng, seed ? seed : 1); }

unsigned long ioa__fault_calls(void) { return atomic_load(&fault_calls); }
unsigned long ioa__fault_op_calls(ioa__fault_op op) {
  return (unsigned)op < IOA_FOP_COUNT_ ? atomic_load(&fault_op_calls[op]) : 0;
}
int ioa__fault_fired(void) { return atomic_load(&fault_fired); }
unsigned long ioa__fault_fires(void) { return atomic_load(&fault_fires); }
int ioa__fault_fired_op(void) { return atomic_load(&fault_fired_op); }
#else
typedef int ioa__fault_unused_;
#endif
