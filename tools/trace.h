/* SPDX-License-Identifier: MIT */
/* ioa-connect: tracing of the connect phase.
 *
 * Collects resolution and attempt events as the library reports them and
 * prints them either as human lines with a final waterfall timeline (-v) or
 * as one JSON object per line (--trace json), both on the given FILE. */
#ifndef IOA_CLI_TRACE_H
#define IOA_CLI_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "ioasync.h"

enum {
  CLI_TRACE_HUMAN = 1u << 0,
  CLI_TRACE_JSON = 1u << 1,
};

typedef enum cli_row_state {
  CLI_ROW_OPEN = 0,
  CLI_ROW_OK,
  CLI_ROW_FAILED,
  CLI_ROW_ABANDONED,
} cli_row_state;

/* One line of the waterfall: a resolution or a connection attempt. */
typedef struct cli_row {
  int is_resolve;
  int is_local_resolve;
  char label[2 * IOA_ADDR_STRLEN + 16];
  ioa_addr peer, local;
  int has_peer, has_local;
  uint64_t start_ns, end_ns;
  uint64_t hs_ns; /* --tls: when the TLS handshake began (0: none) */
  cli_row_state state;
  size_t count; /* addresses, for resolution rows */
  char arrivals[112]; /* resolution rows: when each batch of answers came */
  char result[160];
} cli_row;

typedef struct cli_trace {
  unsigned mode; /* CLI_TRACE_* bits; 0 = silent */
  FILE *out;
  uint64_t t0_ns; /* CLOCK_MONOTONIC at start: every "t" is relative to it */
  uint64_t finish_ns;
  uint64_t event_ns; /* time of the JSON event being built, since t0 */
  cli_row *rows;
  size_t nrows, cap;
  int oom; /* a row could not be recorded; the waterfall says so */
} cli_trace;

/* CLOCK_MONOTONIC in ns, the clock ioa_loop_now() uses. */
uint64_t cli_now_ns(void);

void cli_trace_init(cli_trace *t, unsigned mode, FILE *out);
void cli_trace_free(cli_trace *t);

/* Free-form human line (nothing in JSON mode). */
void cli_trace_note(cli_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void cli_trace_resolving(cli_trace *t, int is_local, const char *host, const char *service,
                         const char *hints);
void cli_trace_resolved(cli_trace *t, const ioa_addr *addrs, size_t n, int is_local);
/* -4/-6 with --addr or --local: which addresses were kept and dropped. */
void cli_trace_filter(cli_trace *t, const char *what, int family, const ioa_addr *kept,
                      size_t nkept, const ioa_addr *dropped, size_t ndropped);
void cli_trace_attempt(cli_trace *t, const ioa_addr *peer, const ioa_addr *local);
void cli_trace_fail(cli_trace *t, const ioa_attempt_failure *f);
/* local may be NULL (unnamed unix socket). */
void cli_trace_connected(cli_trace *t, const ioa_addr *peer, const ioa_addr *local);
void cli_trace_connect_error(cli_trace *t, ioa_syscall syscall, int err);
/* --tls: an attempt's TCP connect is done and its handshake begins; and what
 * the winner's handshake established ("tls_handshake" in JSON). */
void cli_trace_handshake(cli_trace *t, const ioa_addr *peer, const ioa_addr *local);
void cli_trace_tls(cli_trace *t, const ioa_tls_info *info);
void cli_trace_resolve_error(cli_trace *t, int err, const char *message);
void cli_trace_warning(cli_trace *t, const char *message);
/* An error after the connection was made (read/write/recv/send). */
void cli_trace_io_error(cli_trace *t, const char *syscall, int err);

/* Print the waterfall (human mode only). */
void cli_trace_waterfall(cli_trace *t);

#endif
