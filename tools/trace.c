/* SPDX-License-Identifier: MIT */
/* ioa-connect: tracing of the connect phase (see trace.h). */
#include "trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

#define WATERFALL_COLUMNS 50

uint64_t cli_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cli_trace_init(cli_trace *t, unsigned mode, FILE *out) {
  memset(t, 0, sizeof *t);
  t->mode = mode;
  t->out = out;
  t->t0_ns = cli_now_ns();
}

void cli_trace_free(cli_trace *t) {
  free(t->rows);
  t->rows = NULL;
  t->nrows = t->cap = 0;
}

/* ---------------------------------------------------------------- helpers */

static double since_ms(const cli_trace *t, uint64_t ns) {
  return ns >= t->t0_ns ? (double)(ns - t->t0_ns) / 1e6 : 0.0;
}

/* Addresses as text.  Never fails: an unformattable address says so. */
static const char *addr_text(const ioa_addr *a, char buf[IOA_ADDR_STRLEN]) {
  if (!a)
    return "(none)";
  if (ioa_addr_format(a, buf, IOA_ADDR_STRLEN) < 0)
    snprintf(buf, IOA_ADDR_STRLEN, "(family %d address)", a->family);
  return buf;
}

/* Human lines go to a terminal: control bytes and bytes that are not UTF-8
 * are shown as \xNN rather than sent raw.  Returns the columns used (one
 * per character), so the waterfall can align labels. */
static size_t put_human(FILE *f, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t left = strlen(s), cols = 0;
  while (left > 0) {
    size_t n = *p < 0x20 || *p == 0x7f ? 0 : cli_utf8_seq_len(p, left);
    if (n == 0) {
      if (f)
        fprintf(f, "\\x%02x", *p);
      cols += 4;
      n = 1;
    } else {
      if (f)
        fwrite(p, 1, n, f);
      cols += 1;
    }
    p += n;
    left -= n;
  }
  return cols;
}

static void human_prefix(cli_trace *t) { fprintf(t->out, "[%10.3f ms] ", since_ms(t, cli_now_ns())); }

/* Events are built without "t"; it is stamped (fixed notation, us
 * resolution) when the line is written.  The time is taken at creation. */
static json_t *event_new(cli_trace *t, const char *event) {
  json_t *o = json_object();
  if (!o)
    return NULL;
  uint64_t now = cli_now_ns();
  t->event_ns = now >= t->t0_ns ? now - t->t0_ns : 0;
  cli_json_set(o, "event", json_string(event));
  return o;
}

static void event_emit(cli_trace *t, json_t *o) {
  char *line = o ? cli_json_event_line((double)t->event_ns / 1e9, o) : NULL;
  if (line) {
    fprintf(t->out, "%s\n", line);
    free(line);
  } else {
    fprintf(t->out, "{\"t\":%.6f,\"event\":\"warning\",\"message\":\"out of memory while "
                    "tracing\"}\n",
            (double)t->event_ns / 1e9);
  }
  fflush(t->out);
  json_decref(o);
}

static json_t *json_addr(const ioa_addr *a) {
  if (!a)
    return json_null();
  char buf[IOA_ADDR_STRLEN];
  return cli_json_string(addr_text(a, buf));
}

/* An event whose fields are a peer ("addr") and a local address. */
static void emit_peer_local(cli_trace *t, const char *event, const ioa_addr *peer,
                            const ioa_addr *local) {
  json_t *o = event_new(t, event);
  if (o) {
    cli_json_set(o, "addr", json_addr(peer));
    cli_json_set(o, "local", json_addr(local));
  }
  event_emit(t, o);
}

static json_t *json_addr_array(const ioa_addr *addrs, size_t n) {
  json_t *arr = json_array();
  if (!arr)
    return NULL;
  for (size_t i = 0; i < n; i++)
    json_array_append_new(arr, json_addr(&addrs[i]));
  return arr;
}

/* "errno" is the symbolic name and "message" the text, as the issue shows. */
static void json_set_error(json_t *o, int err) {
  cli_json_set(o, "errno", cli_json_string(ioa_err_name(err)));
  cli_json_set(o, "message", cli_json_string(ioa_strerror(err)));
}

static json_t *json_family(int family) {
  const char *name = ioa_family_name(family);
  return name ? json_string(name) : json_integer(family);
}

static json_t *json_socktype(int socktype) {
  const char *name = ioa_socktype_name(socktype);
  return name ? json_string(name) : json_integer(socktype);
}

static cli_row *row_add(cli_trace *t, uint64_t start_ns) {
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    cli_row *rows = realloc(t->rows, cap * sizeof *rows);
    if (!rows) {
      t->oom = 1;
      return NULL;
    }
    t->rows = rows;
    t->cap = cap;
  }
  cli_row *r = &t->rows[t->nrows++];
  memset(r, 0, sizeof *r);
  r->start_ns = start_ns;
  return r;
}

static void row_label_attempt(cli_row *r) {
  char p[IOA_ADDR_STRLEN], l[IOA_ADDR_STRLEN];
  if (r->has_local)
    snprintf(r->label, sizeof r->label, "%s from %s", addr_text(&r->peer, p), addr_text(&r->local, l));
  else
    snprintf(r->label, sizeof r->label, "%s", addr_text(&r->peer, p));
}

static cli_row *row_new_attempt(cli_trace *t, uint64_t start_ns, const ioa_addr *peer,
                                const ioa_addr *local) {
  cli_row *r = row_add(t, start_ns);
  if (!r)
    return NULL;
  if (peer) {
    r->peer = *peer;
    r->has_peer = 1;
  }
  if (local) {
    r->local = *local;
    r->has_local = 1;
  }
  row_label_attempt(r);
  return r;
}

/* The newest attempt still open for this peer/local pair (any open attempt
 * when the library gives no peer). */
static cli_row *row_find_open(cli_trace *t, const ioa_addr *peer, const ioa_addr *local) {
  for (size_t i = t->nrows; i-- > 0;) {
    cli_row *r = &t->rows[i];
    if (r->is_resolve || r->state != CLI_ROW_OPEN)
      continue;
    if (!peer)
      return r;
    if (!r->has_peer || !ioa_addr_equal(&r->peer, peer))
      continue;
    if (local && (!r->has_local || !ioa_addr_equal(&r->local, local)))
      continue;
    return r;
  }
  return NULL;
}

static void rows_close_open(cli_trace *t, uint64_t now, const char *why) {
  for (size_t i = 0; i < t->nrows; i++) {
    cli_row *r = &t->rows[i];
    if (r->state != CLI_ROW_OPEN)
      continue;
    r->state = CLI_ROW_ABANDONED;
    r->end_ns = now;
    snprintf(r->result, sizeof r->result, "%s", why);
  }
}

/* ---------------------------------------------------------------- events */

void cli_trace_note(cli_trace *t, const char *fmt, ...) {
  if (!(t->mode & CLI_TRACE_HUMAN))
    return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *big = NULL;
  if (n >= (int)sizeof buf && (big = malloc((size_t)n + 1)) != NULL) {
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  human_prefix(t);
  put_human(t->out, big ? big : buf);
  fputc('\n', t->out);
  fflush(t->out);
  free(big);
}

void cli_trace_resolving(cli_trace *t, int is_local, const char *host, const char *service,
                         const char *hints) {
  cli_row *r = row_add(t, cli_now_ns());
  if (r) {
    r->is_resolve = 1;
    r->is_local_resolve = is_local;
    snprintf(r->label, sizeof r->label, "%s", is_local ? "resolve (local)" : "resolve");
  }
  cli_trace_note(t, "resolving %shost %s%s%s service %s%s%s (%s)", is_local ? "local " : "",
                 host ? "\"" : "", host ? host : "(none)", host ? "\"" : "",
                 service ? "\"" : "", service ? service : "(none)", service ? "\"" : "", hints);
}

void cli_trace_resolved(cli_trace *t, const ioa_addr *addrs, size_t n, int is_local) {
  uint64_t now = cli_now_ns();
  cli_row *r = NULL;
  for (size_t i = t->nrows; i-- > 0;) {
    if (t->rows[i].is_resolve && t->rows[i].is_local_resolve == is_local) {
      r = &t->rows[i];
      break;
    }
  }
  if (!r && (r = row_add(t, t->t0_ns)) != NULL) {
    r->is_resolve = 1;
    r->is_local_resolve = is_local;
    snprintf(r->label, sizeof r->label, "%s", is_local ? "resolve (local)" : "resolve");
  }
  if (r) {
    /* Partial answers (one family at a time) extend the same row. */
    r->state = CLI_ROW_OK;
    r->end_ns = now;
    r->count += n;
    /* Happy Eyeballs cares when each family's answers arrived. */
    const char *fam = n > 0 ? ioa_family_name(addrs[0].family) : NULL;
    size_t used = strlen(r->arrivals);
    if (used + 40 < sizeof r->arrivals)
      snprintf(r->arrivals + used, sizeof r->arrivals - used, "%s%s at %.3f", used ? ", " : "",
               fam ? fam : "?", since_ms(t, now));
    snprintf(r->result, sizeof r->result, "%zu address%s (%s)", r->count,
             r->count == 1 ? "" : "es", r->arrivals);
  }
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "resolved");
    if (o) {
      cli_json_set(o, "addrs", json_addr_array(addrs, n));
      if (is_local)
        cli_json_set(o, "local", json_true());
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fprintf(t->out, "resolved%s %zu address%s:", is_local ? " (local)" : "", n, n == 1 ? "" : "es");
    for (size_t i = 0; i < n; i++) {
      char buf[IOA_ADDR_STRLEN];
      fputc(' ', t->out);
      put_human(t->out, addr_text(&addrs[i], buf));
    }
    fputc('\n', t->out);
    fflush(t->out);
  }
}

void cli_trace_filter(cli_trace *t, const char *what, int family, const ioa_addr *kept,
                      size_t nkept, const ioa_addr *dropped, size_t ndropped) {
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "filter");
    if (o) {
      cli_json_set(o, "what", json_string(what));
      cli_json_set(o, "family", json_family(family));
      cli_json_set(o, "kept", json_addr_array(kept, nkept));
      cli_json_set(o, "dropped", json_addr_array(dropped, ndropped));
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    const char *fam = ioa_family_name(family);
    human_prefix(t);
    fprintf(t->out, "%s: keeping only %s addresses (%s), %zu kept, %zu dropped:",
            family == AF_INET6 ? "-6" : "-4", fam ? fam : "?", what, nkept, ndropped);
    for (size_t i = 0; i < ndropped; i++) {
      char buf[IOA_ADDR_STRLEN];
      fputc(' ', t->out);
      put_human(t->out, addr_text(&dropped[i], buf));
    }
    fputc('\n', t->out);
    fflush(t->out);
  }
}

void cli_trace_attempt(cli_trace *t, const ioa_addr *peer, const ioa_addr *local) {
  row_new_attempt(t, cli_now_ns(), peer, local);
  if (t->mode & CLI_TRACE_JSON) {
    emit_peer_local(t, "attempt", peer, local);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    char p[IOA_ADDR_STRLEN], l[IOA_ADDR_STRLEN];
    human_prefix(t);
    fputs("attempt   ", t->out);
    put_human(t->out, addr_text(peer, p));
    if (local) {
      fputs(" from ", t->out);
      put_human(t->out, addr_text(local, l));
    }
    fputc('\n', t->out);
    fflush(t->out);
  }
}

void cli_trace_fail(cli_trace *t, const ioa_attempt_failure *f) {
  uint64_t now = cli_now_ns();
  cli_row *r = row_find_open(t, f->peer, f->local);
  if (!r)
    r = row_new_attempt(t, f->start_ns ? f->start_ns : now, f->peer, f->local);
  if (r) {
    r->state = CLI_ROW_FAILED;
    /* Our clock, not f->end_ns: the loop's time is cached per iteration,
     * so it can lag the trace lines printed around it. */
    r->end_ns = now;
    if (f->syscall == IOA_SYSCALL_TLS && f->message)
      snprintf(r->result, sizeof r->result, "tls failed: %s (%s)", ioa_err_name(f->err),
               f->message);
    else
      snprintf(r->result, sizeof r->result, "%s failed: %s", ioa_syscall_name(f->syscall),
               ioa_err_name(f->err));
  }
  const char *sys = ioa_syscall_name(f->syscall);
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "fail");
    if (o) {
      cli_json_set(o, "syscall", json_string(sys));
      if (f->syscall == IOA_SYSCALL_SOCKET) {
        cli_json_set(o, "family", json_family(f->family));
        cli_json_set(o, "socktype", json_socktype(f->socktype));
        cli_json_set(o, "protocol", json_integer(f->protocol));
      } else if (f->syscall == IOA_SYSCALL_BIND) {
        cli_json_set(o, "addr", json_addr(f->local));
      } else {
        cli_json_set(o, "addr", json_addr(f->peer));
      }
      json_set_error(o, f->err);
      if (f->syscall == IOA_SYSCALL_TLS && f->message)
        cli_json_set(o, "reason", cli_json_string(f->message));
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    char buf[IOA_ADDR_STRLEN];
    human_prefix(t);
    fprintf(t->out, "fail      %s ", sys);
    if (f->syscall == IOA_SYSCALL_SOCKET) {
      const char *fam = ioa_family_name(f->family), *st = ioa_socktype_name(f->socktype);
      if (fam)
        fprintf(t->out, "(%s, ", fam);
      else
        fprintf(t->out, "(family %d, ", f->family);
      if (st)
        fprintf(t->out, "%s, ", st);
      else
        fprintf(t->out, "socktype %d, ", f->socktype);
      fprintf(t->out, "protocol %d)", f->protocol);
    } else {
      put_human(t->out, addr_text(f->syscall == IOA_SYSCALL_BIND ? f->local : f->peer, buf));
    }
    fprintf(t->out, ": %s (", ioa_err_name(f->err));
    put_human(t->out, f->syscall == IOA_SYSCALL_TLS && f->message ? f->message
                                                                  : ioa_strerror(f->err));
    fputs(")\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_connected(cli_trace *t, const ioa_addr *peer, const ioa_addr *local) {
  uint64_t now = cli_now_ns();
  cli_row *r = row_find_open(t, peer, NULL);
  if (!r)
    r = row_new_attempt(t, now, peer, NULL);
  if (r) {
    r->state = CLI_ROW_OK;
    r->end_ns = now;
    snprintf(r->result, sizeof r->result, "connected");
  }
  rows_close_open(t, now, "abandoned (another attempt won)");
  t->finish_ns = now;
  if (t->mode & CLI_TRACE_JSON) {
    emit_peer_local(t, "connected", peer, local);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    char p[IOA_ADDR_STRLEN], l[IOA_ADDR_STRLEN];
    human_prefix(t);
    fputs("connected ", t->out);
    put_human(t->out, addr_text(peer, p));
    fputs(" (local ", t->out);
    put_human(t->out, local ? addr_text(local, l) : "unnamed");
    fputs(")\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_handshake(cli_trace *t, const ioa_addr *peer, const ioa_addr *local) {
  uint64_t now = cli_now_ns();
  cli_row *r = row_find_open(t, peer, local);
  if (r)
    r->hs_ns = now;
  if (t->mode & CLI_TRACE_JSON)
    emit_peer_local(t, "handshake", peer, local);
  if (t->mode & CLI_TRACE_HUMAN) {
    char p[IOA_ADDR_STRLEN];
    human_prefix(t);
    fputs("handshake ", t->out);
    put_human(t->out, addr_text(peer, p));
    fputs(" (TCP connected, TLS begins)\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_tls(cli_trace *t, const ioa_tls_info *info) {
  const char *verify = info->verified ? "ok" : info->verify_message;
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "tls_handshake");
    if (o) {
      cli_json_set(o, "version", cli_json_string(info->version));
      cli_json_set(o, "cipher", cli_json_string(info->cipher));
      cli_json_set(o, "alpn", info->alpn ? cli_json_string(info->alpn) : json_null());
      cli_json_set(o, "resumed", json_boolean(info->resumed));
      cli_json_set(o, "verify", cli_json_string(info->verified ? "ok" : "skipped"));
      cli_json_set(o, "verify_result", cli_json_string(info->verify_message));
      cli_json_set(o, "server_name",
                   info->server_name ? cli_json_string(info->server_name) : json_null());
      cli_json_set(o, "peer_subject",
                   info->peer_subject ? cli_json_string(info->peer_subject) : json_null());
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fprintf(t->out, "tls       %s, %s, ALPN %s%s\n", info->version, info->cipher,
            info->alpn ? info->alpn : "(none)", info->resumed ? ", resumed" : "");
    human_prefix(t);
    fputs("tls       certificate ", t->out);
    put_human(t->out, info->peer_subject ? info->peer_subject : "(none)");
    fputs(info->verified ? ", verified for " : ", NOT verified (--insecure: ", t->out);
    put_human(t->out, info->verified ? (info->server_name ? info->server_name : "")
                                     : (verify ? verify : ""));
    fputs(info->verified ? "\n" : ")\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_connect_error(cli_trace *t, ioa_syscall syscall, int err) {
  uint64_t now = cli_now_ns();
  const char *why = "abandoned";
  if (err == -ECANCELED)
    why = "cancelled";
  else if (syscall == IOA_SYSCALL_NONE && err == -ETIMEDOUT)
    why = "overall timeout";
  rows_close_open(t, now, why);
  t->finish_ns = now;
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "connect_error");
    if (o) {
      cli_json_set(o, "syscall", json_string(ioa_syscall_name(syscall)));
      json_set_error(o, err);
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fprintf(t->out, "connect error (%s): %s (", ioa_syscall_name(syscall), ioa_err_name(err));
    put_human(t->out, ioa_strerror(err));
    fputs(")\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_resolve_error(cli_trace *t, int err, const char *message) {
  uint64_t now = cli_now_ns();
  if (!message || !*message)
    message = ioa_strerror(err);
  for (size_t i = 0; i < t->nrows; i++) {
    cli_row *r = &t->rows[i];
    if (r->is_resolve && r->state == CLI_ROW_OPEN) {
      r->state = CLI_ROW_FAILED;
      r->end_ns = now;
      snprintf(r->result, sizeof r->result, "%s", ioa_err_name(err));
    }
  }
  rows_close_open(t, now, "abandoned");
  t->finish_ns = now;
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "resolve_error");
    if (o) {
      cli_json_set(o, "errno", cli_json_string(ioa_err_name(err)));
      cli_json_set(o, "message", cli_json_string(message));
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fprintf(t->out, "resolve error: %s (", ioa_err_name(err));
    put_human(t->out, message);
    fputs(")\n", t->out);
    fflush(t->out);
  }
}

void cli_trace_warning(cli_trace *t, const char *message) {
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "warning");
    if (o)
      cli_json_set(o, "message", cli_json_string(message));
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fputs("warning: ", t->out);
    put_human(t->out, message ? message : "");
    fputc('\n', t->out);
    fflush(t->out);
  }
}

void cli_trace_io_error(cli_trace *t, const char *syscall, int err) {
  if (t->mode & CLI_TRACE_JSON) {
    json_t *o = event_new(t, "io_error");
    if (o) {
      cli_json_set(o, "syscall", cli_json_string(syscall));
      json_set_error(o, err);
    }
    event_emit(t, o);
  }
  if (t->mode & CLI_TRACE_HUMAN) {
    human_prefix(t);
    fprintf(t->out, "%s failed: %s (", syscall, ioa_err_name(err));
    put_human(t->out, ioa_strerror(err));
    fputs(")\n", t->out);
    fflush(t->out);
  }
}

/* ---------------------------------------------------------------- waterfall */

static size_t column_of(uint64_t offset_ns, uint64_t total_ns, int round_up) {
  /* 128-bit free: offsets are far below 2^64 / WATERFALL_COLUMNS. */
  uint64_t scaled = offset_ns * WATERFALL_COLUMNS;
  uint64_t c = scaled / total_ns + (round_up && scaled % total_ns ? 1 : 0);
  return c > WATERFALL_COLUMNS ? WATERFALL_COLUMNS : (size_t)c;
}

void cli_trace_waterfall(cli_trace *t) {
  if (!(t->mode & CLI_TRACE_HUMAN) || t->nrows == 0)
    return;
  uint64_t end = t->finish_ns ? t->finish_ns : cli_now_ns();
  for (size_t i = 0; i < t->nrows; i++)
    if (t->rows[i].end_ns > end)
      end = t->rows[i].end_ns;
  uint64_t total = end > t->t0_ns ? end - t->t0_ns : 1;
  int label_width = 8;
  for (size_t i = 0; i < t->nrows; i++) {
    int n = (int)put_human(NULL, t->rows[i].label);
    if (n > label_width)
      label_width = n;
  }
  FILE *f = t->out;
  fprintf(f, "\ntimeline: 0 to %.3f ms, one column = %.4f ms\n", (double)total / 1e6,
          (double)total / 1e6 / WATERFALL_COLUMNS);
  fprintf(f, "  %-*s %-*s %10s %10s\n", label_width, "", WATERFALL_COLUMNS + 2, "",
          "start ms", "end ms");
  for (size_t i = 0; i < t->nrows; i++) {
    const cli_row *r = &t->rows[i];
    uint64_t s = r->start_ns > t->t0_ns ? r->start_ns - t->t0_ns : 0;
    uint64_t rend = r->state == CLI_ROW_OPEN ? end : r->end_ns;
    uint64_t e = rend > t->t0_ns ? rend - t->t0_ns : 0;
    if (e < s)
      e = s;
    size_t c0 = column_of(s, total, 0), c1 = column_of(e, total, 1);
    if (c0 >= WATERFALL_COLUMNS)
      c0 = WATERFALL_COLUMNS - 1;
    if (c1 <= c0)
      c1 = c0 + 1;
    char bar[WATERFALL_COLUMNS + 1];
    memset(bar, ' ', WATERFALL_COLUMNS);
    bar[WATERFALL_COLUMNS] = '\0';
    char fill = r->is_resolve ? '#' : '=';
    for (size_t c = c0; c < c1; c++)
      bar[c] = fill;
    if (r->hs_ns > t->t0_ns) { /* the TLS handshake's part of the attempt */
      size_t ch = column_of(r->hs_ns - t->t0_ns, total, 0);
      for (size_t c = ch > c0 ? ch : c0; c < c1; c++)
        bar[c] = '~';
    }
    char mark = fill;
    switch (r->state) {
    case CLI_ROW_OK: mark = r->is_resolve ? '#' : '*'; break;
    case CLI_ROW_FAILED: mark = 'x'; break;
    case CLI_ROW_ABANDONED: mark = '-'; break;
    case CLI_ROW_OPEN: mark = '>'; break;
    }
    bar[c1 - 1] = mark;
    fputs("  ", f);
    int pad = label_width - (int)put_human(f, r->label);
    fprintf(f, "%*s |%s| %10.3f %10.3f  ", pad > 0 ? pad : 0, "", bar, (double)s / 1e6,
            (double)e / 1e6);
    put_human(f, r->state == CLI_ROW_OPEN ? "still running" : r->result);
    fputc('\n', f);
  }
  fputs("  legend: # resolving  = attempt in flight  ~ TLS handshake  * connected  x failed  "
        "- abandoned\n",
        f);
  if (t->oom)
    fputs("  (some events could not be recorded: out of memory)\n", f);
  fflush(f);
}
