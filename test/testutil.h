/* SPDX-License-Identifier: MIT */
/* Shared test helpers: fd-leak checks, loopback fixtures, bounded loop runs.
 * Tests only ever touch loopback addresses and unix sockets. */
#ifndef IOA_TESTUTIL_H
#define IOA_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the above first */
#include <cmocka.h>

#include "ioasync.h"

/* Entries of a directory other than "." and "..", or -1 if it cannot be
 * opened (the DIR's own fd is counted if dir is /proc/self/fd). */
int ioa_test_dir_entries(const char *dir);
/* Open fds of this process (from /proc/self/fd). */
int ioa_test_fd_count(void);

/* cmocka setup/teardown pair: teardown fails the test if the fd count differs
 * from the one setup recorded. */
int ioa_test_fd_setup(void **state);
int ioa_test_fd_teardown(void **state);
#define IOA_TEST(fn) cmocka_unit_test_setup_teardown(fn, ioa_test_fd_setup, ioa_test_fd_teardown)

/* A listening TCP socket on the loopback address of family (AF_INET:
 * 127.0.0.1, AF_INET6: ::1) at an ephemeral port; *port gets the port.
 * backlog as for listen().  Returns the fd or -errno. */
int ioa_test_listen_tcp(int family, int backlog, int *port);
/* The loopback address of family (AF_INET: 127.0.0.1, AF_INET6: ::1) at
 * port into *ss; returns its length. */
socklen_t ioa_test_loopback(int family, int port, struct sockaddr_storage *ss);
/* A loopback port on which nothing listens (bound then released). */
int ioa_test_closed_port(int family);
/* Non-zero if ::1 is usable on this machine. */
int ioa_test_have_ipv6(void);

/* The loopback black hole: a listener on 127.0.0.1 whose accept queue is
 * full (backlog 0, one connection queued and never accepted), so SYNs to
 * its port are dropped and connects hang in SYN_SENT until a timeout.
 * Returns 0 (fills b) or -1 (nothing left open). */
typedef struct ioa_test_blackhole {
  int lfd, filler, port;
} ioa_test_blackhole;
int ioa_test_blackhole_open(ioa_test_blackhole *b);
/* The same at a given loopback IPv4 address (127.0.0.0/8: any of them
 * answers on lo) and port (0: ephemeral, stored in b->port). */
int ioa_test_blackhole_open_at(ioa_test_blackhole *b, const char *ipv4, int port);
void ioa_test_blackhole_close(ioa_test_blackhole *b);

/* Run the loop with IOA_RUN_ONCE until *flag is non-zero, the loop has no
 * more work, or max_ms of wall time passed.  Returns 0 if *flag was set,
 * -ETIMEDOUT otherwise. */
int ioa_test_run_until(ioa_loop *loop, const int *flag, unsigned max_ms);
/* A timer callback that does nothing: a repeating timer with it keeps a
 * loop waking up. */
void ioa_test_wake_cb(ioa_timer *t, void *data);
/* As ioa_test_run_until, with a 20 ms repeating timer armed meanwhile so a
 * loop with nothing else to do still wakes (and the bound is kept). */
int ioa_test_run_ticking(ioa_loop *loop, const int *flag, unsigned max_ms);
/* ioa_test_run_ticking for ms with no condition: lets whatever is pending
 * happen, so a test can then show nothing else did. */
void ioa_test_run_for(ioa_loop *loop, unsigned ms);

/* A new loop with default options; fails the test if that fails. */
ioa_loop *ioa_test_new_loop(void);

/* 1 if this process has network and mount namespaces of its own (not its
 * parent's): the namespace helpers below refuse to work otherwise. */
int ioa_test_in_own_namespaces(void);
/* Inside a namespace helper: hide nscd (a tmpfs over /run/nscd) so that
 * lookups read the files bind-mounted over /etc.  0 or -1. */
int ioa_test_ns_hide_nscd(void);
/* Namespace tests: the binary re-runs itself as `unshare -n -m SELF ARG`
 * (private loopback and mount table, so resolver files can be replaced).
 * The helper process exits 0 if its checks pass, IOA_TEST_NS_FAIL if one
 * failed, IOA_TEST_NS_SETUP (or anything else) if the namespace or its
 * premise could not be set up. */
#define IOA_TEST_NS_FAIL 3
#define IOA_TEST_NS_SETUP 77
/* Write content to dir/name and bind-mount it over target (inside the
 * namespace).  Returns 0 or -1. */
int ioa_test_ns_bind(const char *dir, const char *name, const char *content, const char *target);
/* Run `unshare -n -m SELF helper_arg` and wait: returns if it passed,
 * fails the test with failed_msg if it exited IOA_TEST_NS_FAIL, and skips
 * it (printing "SKIP_WHY (status N): skipped") otherwise. */
void ioa_test_in_netns(const char *helper_arg, const char *failed_msg, const char *skip_why);

#endif
