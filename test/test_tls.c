/* SPDX-License-Identifier: MIT */
/* TLS (src/tls.c, include/ioasync/tls.h): the configuration, TLS streams
 * through STARTTLS upgrades, and their failures, against loopback servers
 * of tls_fixture.c with certificates made for the run. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tls_fixture.h"

static tls_pki pki;

/* ------------------------------------------------------------ helpers */

/* A blocking TCP connect to the loopback of family, port: the fd. */
static int tcp_connect(int family, int port) {
  struct sockaddr_storage ss;
  socklen_t len = ioa_test_loopback(family, port, &ss);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
  return fd;
}

static ioa_tls_config *config_with(const char *ca, ioa_tls_options *extra) {
  ioa_tls_options o;
  if (extra)
    o = *extra;
  else
    ioa_tls_options_init(&o);
  o.ca_file = ca;
  ioa_tls_config *c = NULL;
  ioa_errinfo ei;
  int r = ioa_tls_config_new(&o, &c, &ei);
  if (r < 0)
    fail_msg("ioa_tls_config_new: %s: %s", ioa_err_name(r), ei.message);
  return c;
}

/* One client: an upgrade, then an echo exchange, all on one loop. */
typedef struct client {
  ioa_loop *loop;
  ioa_stream *s;
  ioa_tls_upgrade *up;
  int done;     /* upgrade completed */
  int err;      /* its code */
  char msg[256];
  int finished; /* the whole exchange is over (closed, error, or enough) */
  /* reading */
  uint8_t *got;
  size_t ngot, cap;
  int eof;
  int read_err;
  char read_sys[16];
  char read_msg[256];
  int closed;
  uint64_t sum_in;   /* checksum of bytes received */
  size_t want_bytes; /* finish once this many arrived (0: at EOF/close) */
  int keep_all;      /* keep every byte in got */
} client;

static size_t on_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  client *c = data;
  (void)s;
  for (size_t i = 0; i < len; i++)
    c->sum_in = c->sum_in * 31 + buf[i];
  if (c->keep_all && len) {
    if (c->ngot + len > c->cap) {
      c->cap = (c->ngot + len) * 2;
      c->got = realloc(c->got, c->cap);
      assert_non_null(c->got);
    }
    memcpy(c->got + c->ngot, buf, len);
  }
  c->ngot += len;
  if (eof)
    c->eof = 1;
  if (c->want_bytes && c->ngot >= c->want_bytes)
    c->finished = 1;
  return len;
}

static void on_error(ioa_stream *s, const char *sys, int err, void *data) {
  client *c = data;
  c->read_err = err;
  snprintf(c->read_sys, sizeof c->read_sys, "%s", sys);
  const char *m = ioa_tls_stream_error(s);
  snprintf(c->read_msg, sizeof c->read_msg, "%s", m ? m : "");
}

static void on_closed(ioa_stream *s, void *data) {
  client *c = data;
  (void)s;
  c->closed = 1;
  c->finished = 1;
}

static void set_cbs(client *c) {
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = on_read;
  cb.on_error = on_error;
  cb.on_closed = on_closed;
  assert_int_equal(ioa_stream_set_callbacks(c->s, &cb, c), 0);
}

static void on_done(ioa_tls_upgrade *u, ioa_stream *s, int err, const char *msg, void *data) {
  client *c = data;
  (void)u;
  if (c->done++)
    fail_msg("on_done ran twice");
  c->err = err;
  c->up = NULL;
  if (err < 0) {
    assert_non_null(msg);
    assert_true(msg[0] != '\0');
    snprintf(c->msg, sizeof c->msg, "%s", msg);
  } else {
    assert_null(msg);
    assert_non_null(s);
  }
  if (s)
    c->s = s;
}

static void client_init(client *c) {
  memset(c, 0, sizeof *c);
  c->loop = ioa_test_new_loop();
}

static void client_free(client *c) {
  if (c->s)
    ioa_stream_free(c->s);
  ioa_loop_run(c->loop, IOA_RUN_NOWAIT);
  ioa_loop_free(c->loop);
  free(c->got);
}

/* ioa_tls_upgrade_fd on a fresh TCP connection; runs until on_done. */
static int upgrade_fd(client *c, ioa_tls_config *cfg, int family, int port, const char *name,
                      unsigned timeout_ms) {
  int fd = tcp_connect(family, port);
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  p.server_name = name;
  p.timeout_ms = timeout_ms;
  p.on_done = on_done;
  p.data = c;
  int r = ioa_tls_upgrade_fd(c->loop, fd, NULL, &p, &c->up);
  if (r < 0) {
    close(fd);
    return r;
  }
  assert_int_equal(c->done, 0); /* never from inside the call */
  assert_int_equal(ioa_test_run_until(c->loop, &c->done, 20000), 0);
  return c->err;
}

/* A fresh client whose plain TCP connection to srv on 127.0.0.1 was
 * upgraded to TLS for the name "localhost" (the test PKI's leaf). */
static void client_upgraded(client *c, ioa_tls_config *cfg, tls_srv *srv) {
  client_init(c);
  assert_int_equal(upgrade_fd(c, cfg, AF_INET, tls_srv_port(srv), "localhost", 0), 0);
}

static tls_srv *server(tls_srv_mode mode, const char *cert, const char *key) {
  tls_srv_opts o = {.mode = mode, .cert = cert, .key = key};
  tls_srv *s = tls_srv_start(&o);
  assert_non_null(s);
  return s;
}

/* Write msg, wait for its echo. */
static void echo_roundtrip(client *c, const char *msg) {
  size_t n = strlen(msg);
  c->keep_all = 1;
  c->ngot = 0;
  c->want_bytes = n;
  c->finished = 0;
  assert_int_equal(ioa_stream_write(c->s, msg, n), 0);
  assert_int_equal(ioa_test_run_until(c->loop, &c->finished, 20000), 0);
  assert_int_equal(c->ngot, n);
  assert_memory_equal(c->got, msg, n);
}

/* ------------------------------------------------------------ config */

static void test_available(void **state) {
  (void)state;
  assert_true(ioa_tls_available());
  assert_true(ioa_err_is_tls(IOA_ETLSVERIFY));
  assert_false(ioa_err_is_tls(-ECONNRESET));
  assert_string_equal(ioa_err_name(IOA_ETLSEOF), "IOA_ETLSEOF");
  assert_true(ioa_err_is_input(IOA_ETLSCONFIG));
}

static void expect_config_error(ioa_tls_options *o, int code, const char *needle) {
  ioa_tls_config *c = (ioa_tls_config *)1;
  ioa_errinfo ei;
  int r = ioa_tls_config_new(o, &c, &ei);
  if (r != code)
    fail_msg("expected %s, got %s (%s)", ioa_err_name(code), ioa_err_name(r), ei.message);
  assert_null(c);
  assert_int_equal(ei.code, code);
  if (needle && !strstr(ei.message, needle))
    fail_msg("message \"%s\" lacks \"%s\"", ei.message, needle);
}

static void test_config_errors(void **state) {
  (void)state;
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_file = "/nonexistent/ca.pem";
  expect_config_error(&o, IOA_ETLSCONFIG, "No such file or directory");
  ioa_tls_options_init(&o);
  o.ca_file = pki.leaf_key; /* a key, no certificate */
  expect_config_error(&o, IOA_ETLSCONFIG, pki.leaf_key);
  ioa_tls_options_init(&o);
  o.ca_path = pki.ca; /* a file */
  expect_config_error(&o, IOA_ETLSCONFIG, "not a directory");
  ioa_tls_options_init(&o);
  o.cert_file = pki.client;
  expect_config_error(&o, IOA_EBADPARAM, "go together");
  ioa_tls_options_init(&o);
  o.ca_file = pki.ca;
  o.cert_file = pki.client;
  o.key_file = pki.leaf_key;
  expect_config_error(&o, IOA_ETLSCONFIG, "does not match");
  ioa_tls_options_init(&o);
  o.alpn = "h2,,http/1.1";
  expect_config_error(&o, IOA_EBADPARAM, "alpn");
  ioa_tls_options_init(&o);
  o.min_version = IOA_TLS_VERSION_1_3;
  o.max_version = IOA_TLS_VERSION_1_2;
  expect_config_error(&o, IOA_EBADPARAM, "max");
  ioa_tls_options_init(&o);
  o.min_version = 0x0301; /* TLS 1.0: refused */
  expect_config_error(&o, IOA_EBADPARAM, NULL);
  ioa_tls_options_init(&o);
  o.keylog_file = "/nonexistent/dir/keys.log";
  o.ca_file = pki.ca;
  expect_config_error(&o, IOA_ETLSCONFIG, "keylog_file");
  /* A struct from a newer header with unknown fields set. */
  struct {
    ioa_tls_options o;
    int future;
  } big;
  memset(&big, 0, sizeof big);
  ioa_tls_options_init_size(&big.o, sizeof big);
  big.future = 1;
  expect_config_error(&big.o, IOA_EBADPARAM, NULL);
  assert_int_equal(ioa_tls_config_new(NULL, NULL, NULL), IOA_EBADPARAM);
}

static void test_config_default_and_refs(void **state) {
  (void)state;
  /* The system trust store: present on this machine or said clearly. */
  ioa_tls_config *c = NULL;
  ioa_errinfo ei;
  int r = ioa_tls_config_new(NULL, &c, &ei);
  if (r == IOA_ETLSCONFIG) {
    assert_non_null(strstr(ei.message, "trust store"));
  } else {
    assert_int_equal(r, 0);
    assert_ptr_equal(ioa_tls_config_ref(c), c);
    ioa_tls_config_unref(c);
    ioa_tls_config_flush_sessions(c);
    ioa_tls_config_unref(c);
  }
  /* A directory of CA files is read whole. */
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.ca_path = pki.dir;
  assert_int_equal(ioa_tls_config_new(&o, &c, &ei), 0);
  ioa_tls_config_unref(c);
}

/* ------------------------------------------------------------ success */

static void check_info(ioa_stream *s, const char *name, int expect_resumed) {
  ioa_tls_info info;
  ioa_tls_info_init(&info);
  assert_int_equal(ioa_tls_stream_info(s, &info), 0);
  assert_string_equal(info.version, "TLSv1.3");
  assert_non_null(info.cipher);
  assert_true(strncmp(info.cipher, "TLS_", 4) == 0);
  assert_int_equal(info.verified, 1);
  assert_int_equal(info.verify_result, 0);
  assert_string_equal(info.verify_message, "ok");
  assert_int_equal(info.resumed, expect_resumed);
  if (name)
    assert_string_equal(info.server_name, name);
  assert_non_null(info.peer_subject);
  assert_non_null(strstr(info.peer_subject, "CN=localhost"));
  assert_non_null(strstr(info.peer_issuer, "CN=ioasync test CA"));
  int dns = 0, ip4 = 0, ip6 = 0;
  for (size_t i = 0; i < info.npeer_sans; i++) {
    dns |= strcmp(info.peer_sans[i], "DNS:localhost") == 0;
    ip4 |= strcmp(info.peer_sans[i], "IP:127.0.0.1") == 0;
    ip6 |= strcmp(info.peer_sans[i], "IP:::1") == 0;
  }
  assert_true(dns && ip4 && ip6);
  assert_true(ioa_tls_stream_is_tls(s));
  assert_null(ioa_tls_stream_error(s));
}

static void test_by_name(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_upgraded(&c, cfg, srv);
  check_info(c.s, "localhost", 0);
  set_cbs(&c);
  echo_roundtrip(&c, "hello over TLS\n");
  char sni[64];
  tls_srv_last_sni(srv, sni, sizeof sni);
  assert_string_equal(sni, "localhost");
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void by_address(int family) {
  tls_srv_opts o = {.mode = TLS_SRV_ECHO, .cert = pki.leaf, .key = pki.leaf_key, .family = family};
  tls_srv *srv = tls_srv_start(&o);
  assert_non_null(srv);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_init(&c);
  /* No name: the peer's address is checked against the IP SANs. */
  assert_int_equal(upgrade_fd(&c, cfg, family, tls_srv_port(srv), NULL, 0), 0);
  check_info(c.s, family == AF_INET6 ? "::1" : "127.0.0.1", 0);
  set_cbs(&c);
  echo_roundtrip(&c, "by address");
  char sni[64];
  tls_srv_last_sni(srv, sni, sizeof sni);
  assert_string_equal(sni, ""); /* no SNI for an IP address */
  client_free(&c);
  /* The same address given as the name. */
  client_init(&c);
  assert_int_equal(upgrade_fd(&c, cfg, family, tls_srv_port(srv),
                              family == AF_INET6 ? "::1" : "127.0.0.1", 0),
                   0);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void test_by_address(void **state) {
  (void)state;
  by_address(AF_INET);
  if (ioa_test_have_ipv6())
    by_address(AF_INET6);
}

static void test_alpn(void **state) {
  (void)state;
  tls_srv_opts so = {.mode = TLS_SRV_ECHO, .cert = pki.leaf, .key = pki.leaf_key,
                     .alpn = "http/1.1,spdy/1"};
  tls_srv *srv = tls_srv_start(&so);
  assert_non_null(srv);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.alpn = "h2,http/1.1";
  ioa_tls_config *cfg = config_with(pki.ca, &o);
  client c;
  client_upgraded(&c, cfg, srv);
  ioa_tls_info info;
  ioa_tls_info_init(&info);
  assert_int_equal(ioa_tls_stream_info(c.s, &info), 0);
  assert_non_null(info.alpn);
  assert_string_equal(info.alpn, "http/1.1");
  client_free(&c);
  ioa_tls_config_unref(cfg);
  /* Without ALPN offered, none is negotiated. */
  cfg = config_with(pki.ca, NULL);
  client_upgraded(&c, cfg, srv);
  ioa_tls_info_init(&info);
  assert_int_equal(ioa_tls_stream_info(c.s, &info), 0);
  assert_null(info.alpn);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* A full handshake, then a resumed one (the ticket arrives with the first
 * connection's data), then a full one again once the cache is flushed. */
static void test_resumption(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  for (int round = 0; round < 3; round++) {
    if (round == 2)
      ioa_tls_config_flush_sessions(cfg);
    client c;
    client_upgraded(&c, cfg, srv);
    check_info(c.s, "localhost", round == 1);
    set_cbs(&c);
    echo_roundtrip(&c, "ticket please");
    client_free(&c);
    assert_int_equal(tls_srv_wait_done(srv, round + 1, 20000), 0);
  }
  assert_int_equal(tls_srv_resumed(srv), 1);
  ioa_tls_config_unref(cfg);
  /* A config without a session cache never resumes. */
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.disable_session_cache = 1;
  cfg = config_with(pki.ca, &o);
  for (int round = 0; round < 2; round++) {
    client c;
    client_upgraded(&c, cfg, srv);
    check_info(c.s, "localhost", 0);
    set_cbs(&c);
    echo_roundtrip(&c, "no ticket");
    client_free(&c);
  }
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* shutdown_write sends close_notify (the server sees a clean close), the
 * server answers with its own, which is EOF here, not an error. */
static void test_close_notify(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_upgraded(&c, cfg, srv);
  set_cbs(&c);
  echo_roundtrip(&c, "bye soon");
  c.want_bytes = 0;
  c.finished = 0;
  assert_int_equal(ioa_stream_write(c.s, "last", 4), 0);
  assert_int_equal(ioa_stream_shutdown_write(c.s), 0);
  assert_int_equal(ioa_stream_write(c.s, "more", 4), -EPIPE);
  assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
  assert_int_equal(c.eof, 1);
  assert_int_equal(c.read_err, 0);
  assert_int_equal(c.ngot, strlen("bye soon") + 4); /* "last" came back before EOF */
  assert_int_equal(tls_srv_wait_done(srv, 1, 20000), 0);
  assert_int_equal(tls_srv_clean_closes(srv), 1);
  client_free(&c);
  /* close_when_empty sends close_notify too.  (Nothing written: an echo
   * arriving after our close would make the kernel answer with a reset,
   * which may overtake the close_notify at the server.) */
  client_upgraded(&c, cfg, srv);
  set_cbs(&c);
  ioa_stream_close_when_empty(c.s);
  assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
  assert_int_equal(tls_srv_wait_done(srv, 2, 20000), 0);
  assert_int_equal(tls_srv_clean_closes(srv), 2);
  client_free(&c);
  /* An abrupt close does not: the peer must not take it for a clean end. */
  client_upgraded(&c, cfg, srv);
  set_cbs(&c);
  echo_roundtrip(&c, "abrupt");
  ioa_stream_close(c.s);
  assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
  assert_int_equal(tls_srv_wait_done(srv, 3, 20000), 0);
  assert_int_equal(tls_srv_clean_closes(srv), 2);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* A TCP close without close_notify after data: the data is delivered, then
 * the truncation is an error, not EOF. */
static void test_truncation(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_SEND_TRUNC, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_upgraded(&c, cfg, srv);
  c.keep_all = 1;
  set_cbs(&c);
  assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
  assert_int_equal(c.ngot, 5);
  assert_memory_equal(c.got, "hello", 5);
  assert_int_equal(c.eof, 0);
  assert_int_equal(c.read_err, IOA_ETLSEOF);
  assert_string_equal(c.read_sys, "tls");
  assert_non_null(strstr(c.read_msg, "without close_notify"));
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* 64 MiB each way (IOA_TLS_BULK_MIB overrides: valgrind runs use less),
 * written with back-pressure, checksums equal. */
typedef struct bulk {
  client c;
  uint8_t *src;
  size_t total, sent;
  uint64_t sum_out;
  int paused;
} bulk;

static void bulk_fill(bulk *b) {
  while (!b->paused && b->sent < b->total) {
    size_t n = b->total - b->sent < 65536 ? b->total - b->sent : 65536;
    const uint8_t *p = b->src + b->sent % (1u << 20);
    assert_int_equal(ioa_stream_write(b->c.s, p, n), 0);
    for (size_t i = 0; i < n; i++)
      b->sum_out = b->sum_out * 31 + p[i];
    b->sent += n;
  }
}
static void bulk_high(ioa_stream *s, void *data) {
  (void)s;
  ((bulk *)data)->paused = 1;
}
static void bulk_low(ioa_stream *s, void *data) {
  (void)s;
  bulk *b = data;
  b->paused = 0;
  bulk_fill(b);
}

static void test_bulk(void **state) {
  (void)state;
  const char *env = getenv("IOA_TLS_BULK_MIB");
  size_t mib = env ? strtoul(env, NULL, 10) : 64;
  if (mib == 0)
    mib = 1;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  bulk b;
  memset(&b, 0, sizeof b);
  client_init(&b.c);
  b.total = mib << 20;
  b.src = malloc((size_t)1 << 20);
  assert_non_null(b.src);
  for (size_t i = 0; i < ((size_t)1 << 20); i++)
    b.src[i] = (uint8_t)(i * 2654435761u >> 13);
  assert_int_equal(upgrade_fd(&b.c, cfg, AF_INET, tls_srv_port(srv), "localhost", 0), 0);
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_read = on_read;
  cb.on_error = on_error;
  cb.on_closed = on_closed;
  cb.on_high_water = bulk_high;
  cb.on_low_water = bulk_low;
  /* on_read gets &b.c (the first member), the water marks get &b. */
  assert_int_equal(ioa_stream_set_callbacks(b.c.s, &cb, &b), 0);
  b.c.want_bytes = b.total;
  bulk_fill(&b);
  assert_int_equal(ioa_test_run_until(b.c.loop, &b.c.finished, 120000), 0);
  assert_int_equal(b.c.read_err, 0);
  assert_int_equal(b.sent, b.total);
  assert_int_equal(b.c.ngot, b.total);
  assert_true(b.c.sum_in == b.sum_out);
  free(b.src);
  client_free(&b.c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* ------------------------------------------------------------ failures */

static void expect_fail(tls_srv_mode mode, const char *cert, const char *key, const char *name,
                        int code, const char *needle, unsigned timeout_ms) {
  tls_srv *srv = server(mode, cert, key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_init(&c);
  int r = upgrade_fd(&c, cfg, AF_INET, tls_srv_port(srv), name, timeout_ms);
  if (r != code)
    fail_msg("expected %s, got %s (%s)", ioa_err_name(code), ioa_err_name(r), c.msg);
  assert_null(c.s); /* the _fd variant's stream is gone, its fd closed */
  if (needle && !strstr(c.msg, needle))
    fail_msg("message \"%s\" lacks \"%s\"", c.msg, needle);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void test_verify_failures(void **state) {
  (void)state;
  expect_fail(TLS_SRV_ECHO, pki.wrong, pki.wrong_key, "localhost", IOA_ETLSVERIFY,
              "hostname mismatch", 0);
  expect_fail(TLS_SRV_ECHO, pki.leaf, pki.leaf_key, "wrong.test", IOA_ETLSVERIFY,
              "hostname mismatch", 0);
  expect_fail(TLS_SRV_ECHO, pki.wrong, pki.wrong_key, NULL, IOA_ETLSVERIFY, "IP address mismatch",
              0);
  expect_fail(TLS_SRV_ECHO, pki.expired, pki.expired_key, "localhost", IOA_ETLSVERIFY,
              "certificate has expired", 0);
  expect_fail(TLS_SRV_ECHO, pki.self, pki.self_key, "localhost", IOA_ETLSVERIFY,
              "self-signed certificate", 0);
  expect_fail(TLS_SRV_ECHO, pki.chain, pki.chain_key, "localhost", IOA_ETLSVERIFY,
              "self-signed certificate in certificate chain", 0);
}

static void test_insecure(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.self, pki.self_key);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.insecure_skip_verify = 1;
  ioa_tls_config *cfg = config_with(NULL, &o);
  client c;
  client_init(&c);
  assert_int_equal(upgrade_fd(&c, cfg, AF_INET, tls_srv_port(srv), "any.name", 0), 0);
  ioa_tls_info info;
  ioa_tls_info_init(&info);
  assert_int_equal(ioa_tls_stream_info(c.s, &info), 0);
  assert_int_equal(info.verified, 0);
  assert_int_not_equal(info.verify_result, 0);
  assert_non_null(strstr(info.verify_message, "self-signed"));
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void test_network_failures(void **state) {
  (void)state;
  expect_fail(TLS_SRV_CLOSE_MID, NULL, NULL, "localhost", IOA_ETLSEOF, "closed", 0);
  expect_fail(TLS_SRV_RESET_MID, NULL, NULL, "localhost", -ECONNRESET, "reset", 0);
  expect_fail(TLS_SRV_GARBAGE, NULL, NULL, "localhost", IOA_ETLSPROTO, NULL, 0);
  expect_fail(TLS_SRV_SILENT, NULL, NULL, "localhost", -ETIMEDOUT, "within 200 ms", 200);
}

static void test_version_and_alert(void **state) {
  (void)state;
  /* We want 1.3, the server stops at 1.2: its alert, by name. */
  tls_srv_opts so = {.mode = TLS_SRV_ECHO, .cert = pki.leaf, .key = pki.leaf_key,
                     .max_version = TLS1_2_VERSION};
  tls_srv *srv = tls_srv_start(&so);
  assert_non_null(srv);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.min_version = IOA_TLS_VERSION_1_3;
  ioa_tls_config *cfg = config_with(pki.ca, &o);
  client c;
  client_init(&c);
  int r = upgrade_fd(&c, cfg, AF_INET, tls_srv_port(srv), "localhost", 0);
  assert_int_equal(r, IOA_ETLSALERT);
  assert_non_null(strstr(c.msg, "protocol version"));
  client_free(&c);
  ioa_tls_config_unref(cfg);
  /* TLS 1.2 is accepted by default, and resumes too. */
  cfg = config_with(pki.ca, NULL);
  for (int round = 0; round < 2; round++) {
    client_upgraded(&c, cfg, srv);
    ioa_tls_info info;
    ioa_tls_info_init(&info);
    assert_int_equal(ioa_tls_stream_info(c.s, &info), 0);
    assert_string_equal(info.version, "TLSv1.2");
    assert_int_equal(info.resumed, round);
    client_free(&c);
  }
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void test_client_cert(void **state) {
  (void)state;
  tls_srv_opts so = {.mode = TLS_SRV_ECHO, .cert = pki.leaf, .key = pki.leaf_key,
                     .client_ca = pki.ca};
  tls_srv *srv = tls_srv_start(&so);
  assert_non_null(srv);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.cert_file = pki.client;
  o.key_file = pki.client_key;
  ioa_tls_config *cfg = config_with(pki.ca, &o);
  client c;
  client_upgraded(&c, cfg, srv);
  set_cbs(&c);
  echo_roundtrip(&c, "with a client certificate");
  char cn[64];
  tls_srv_last_client_cn(srv, cn, sizeof cn);
  assert_string_equal(cn, "ioa-client");
  client_free(&c);
  ioa_tls_config_unref(cfg);
  /* Without one: TLS 1.3 finishes the client's handshake first; the
   * server's alert arrives as a stream error. */
  cfg = config_with(pki.ca, NULL);
  client_init(&c);
  int r = upgrade_fd(&c, cfg, AF_INET, tls_srv_port(srv), "localhost", 0);
  if (r == 0) {
    set_cbs(&c);
    assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
    assert_int_equal(c.read_err, IOA_ETLSALERT);
    assert_string_equal(c.read_sys, "tls");
    assert_non_null(strstr(c.read_msg, "certificate required"));
  } else {
    assert_int_equal(r, IOA_ETLSALERT);
  }
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

static void test_keylog(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/keys.log", pki.dir);
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  o.keylog_file = path;
  ioa_tls_config *cfg = config_with(pki.ca, &o);
  client c;
  client_upgraded(&c, cfg, srv);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[512];
  int secrets = 0;
  while (fgets(line, sizeof line, f))
    secrets += strncmp(line, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ", 32) == 0;
  fclose(f);
  unlink(path);
  assert_int_equal(secrets, 1);
  tls_srv_stop(srv);
}

/* ------------------------------------------------------------ STARTTLS */

typedef struct starttls {
  client c;
  int phase; /* 0: wait "220 ready", 1: wait "220 go ahead", 2: upgrading */
  int noreply;
  int upgrade_rc;
} starttls;

static void starttls_go(starttls *t) {
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  p.server_name = "localhost";
  p.on_done = on_done;
  p.data = &t->c;
  t->upgrade_rc = ioa_tls_upgrade_stream(t->c.s, &p, &t->c.up);
  ioa_tls_config_unref(cfg); /* the stream holds its own reference */
  t->phase = 2;
  if (t->upgrade_rc < 0)
    t->c.done = 1;
}

/* Plaintext lines, one per call (the rest stays buffered). */
static size_t starttls_read(ioa_stream *s, const uint8_t *buf, size_t len, int eof, void *data) {
  starttls *t = data;
  if (t->phase == 2)
    return on_read(s, buf, len, eof, &t->c); /* encrypted from here on */
  if (t->phase == 3)
    return 0; /* whatever follows "220 go ahead" stays buffered */
  const uint8_t *nl = memchr(buf, '\n', len);
  if (!nl)
    return 0;
  size_t n = (size_t)(nl - buf) + 1;
  if (t->phase == 0) {
    assert_true(n == 11 && memcmp(buf, "220 ready\r\n", 11) == 0);
    assert_int_equal(ioa_stream_write(s, "STARTTLS\r\n", 10), 0);
    t->phase = 1;
    return n;
  }
  assert_true(n == 14 && memcmp(buf, "220 go ahead\r\n", 14) == 0);
  /* What was consumed is gone; starting TLS now takes the stream over. */
  t->phase = 3; /* consumed; upgrade after on_read returns */
  return n;
}

static void test_starttls(void **state) {
  (void)state;
  for (int variant = 0; variant < 3; variant++) {
    tls_srv_mode mode = variant == 0   ? TLS_SRV_STARTTLS
                        : variant == 1 ? TLS_SRV_STARTTLS_NOREPLY
                                       : TLS_SRV_STARTTLS_INJECT;
    tls_srv *srv = server(mode, pki.leaf, pki.leaf_key);
    starttls t;
    memset(&t, 0, sizeof t);
    client_init(&t.c);
    int fd = tcp_connect(AF_INET, tls_srv_port(srv));
    assert_int_equal(ioa_stream_new(t.c.loop, fd, NULL, &t.c.s), 0);
    if (mode == TLS_SRV_STARTTLS_NOREPLY) {
      /* Queued plaintext goes out first, the handshake follows it. */
      assert_int_equal(ioa_stream_write(t.c.s, "STARTTLS\r\n", 10), 0);
      starttls_go(&t);
      assert_int_equal(t.upgrade_rc, 0);
    } else {
      ioa_stream_callbacks cb;
      ioa_stream_callbacks_init(&cb);
      cb.on_read = starttls_read;
      cb.on_error = on_error;
      assert_int_equal(ioa_stream_set_callbacks(t.c.s, &cb, &t), 0);
      int three = 0;
      for (int i = 0; i < 2000 && t.phase != 3 && !t.c.read_err; i++)
        ioa_loop_run(t.c.loop, IOA_RUN_ONCE);
      three = t.phase == 3;
      assert_true(three);
      if (mode == TLS_SRV_STARTTLS_INJECT) {
        /* Wait until the injected line is buffered unread, then refuse. */
        for (int i = 0; i < 200; i++)
          ioa_loop_run(t.c.loop, IOA_RUN_NOWAIT);
        ioa_test_run_for(t.c.loop, 50);
        starttls_go(&t);
        assert_int_equal(t.upgrade_rc, IOA_ETLSPROTO);
        assert_null(t.c.up);
        client_free(&t.c);
        tls_srv_stop(srv);
        continue;
      }
      starttls_go(&t);
      assert_int_equal(t.upgrade_rc, 0);
    }
    assert_int_equal(ioa_test_run_until(t.c.loop, &t.c.done, 20000), 0);
    assert_int_equal(t.c.err, 0);
    check_info(t.c.s, "localhost", 0);
    ioa_stream_callbacks cb;
    ioa_stream_callbacks_init(&cb);
    cb.on_read = on_read;
    cb.on_error = on_error;
    cb.on_closed = on_closed;
    assert_int_equal(ioa_stream_set_callbacks(t.c.s, &cb, &t.c), 0);
    echo_roundtrip(&t.c, "after STARTTLS");
    client_free(&t.c);
    tls_srv_stop(srv);
  }
}

/* Writes made during the handshake are held and sent encrypted after it. */
static void test_write_during_handshake(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_init(&c);
  int fd = tcp_connect(AF_INET, tls_srv_port(srv));
  assert_int_equal(ioa_stream_new(c.loop, fd, NULL, &c.s), 0);
  c.keep_all = 1;
  set_cbs(&c);
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  p.server_name = "localhost";
  p.on_done = on_done;
  p.data = &c;
  assert_int_equal(ioa_tls_upgrade_stream(c.s, &p, &c.up), 0);
  assert_int_equal(ioa_stream_write(c.s, "early bird", 10), 0);
  /* A second upgrade is refused, the first goes on. */
  assert_int_equal(ioa_tls_upgrade_stream(c.s, &p, NULL), IOA_EBADPARAM);
  c.want_bytes = 10;
  assert_int_equal(ioa_test_run_until(c.loop, &c.finished, 20000), 0);
  assert_int_equal(c.done, 1);
  assert_int_equal(c.err, 0);
  assert_memory_equal(c.got, "early bird", 10);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* ------------------------------------------------------------ cancel */

/* Cancel (or close, or free the stream) at each point of the handshake:
 * before it ran at all, with the ClientHello out and nothing back, and
 * halfway (the server's flight read).  on_done runs once, before cancel
 * returns; fds are all closed (checked by the teardown). */
static void cancel_at(tls_srv_mode mode, int loop_turns, int how) {
  tls_srv *srv = server(mode, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_init(&c);
  int fd = tcp_connect(AF_INET, tls_srv_port(srv));
  assert_int_equal(ioa_stream_new(c.loop, fd, NULL, &c.s), 0);
  set_cbs(&c);
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  p.server_name = "localhost";
  p.on_done = on_done;
  p.data = &c;
  assert_int_equal(ioa_tls_upgrade_stream(c.s, &p, &c.up), 0);
  ioa_tls_config_unref(cfg);
  /* Non-blocking turns, a moment apart: a silent server never wakes us. */
  for (int i = 0; i < loop_turns && !c.done; i++) {
    ioa_loop_run(c.loop, IOA_RUN_NOWAIT);
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  if (c.done) {
    /* The handshake won the race with us: nothing left to cancel. */
    if (c.err != 0)
      fail_msg("mode %d, %d turns, how %d: %s: %s", (int)mode, loop_turns, how,
               ioa_err_name(c.err), c.msg);
  } else if (how == 0) {
    ioa_tls_upgrade_cancel(c.up);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.err, -ECANCELED);
    ioa_tls_upgrade_cancel(NULL);
    assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 5000), 0);
  } else if (how == 1) {
    ioa_stream_close(c.s);
    assert_int_equal(ioa_test_run_until(c.loop, &c.done, 5000), 0);
    assert_int_equal(c.err, -ECANCELED);
  } else {
    ioa_stream *s = c.s;
    c.s = NULL;
    ioa_stream_free(s);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.err, -ECANCELED);
    assert_null(c.s);
  }
  client_free(&c);
  tls_srv_stop(srv);
}

static void test_cancel(void **state) {
  (void)state;
  for (int how = 0; how < 3; how++) {
    cancel_at(TLS_SRV_SILENT, 0, how); /* not started */
    cancel_at(TLS_SRV_SILENT, 3, how); /* ClientHello out, waiting */
    for (int turns = 1; turns <= 4; turns++)
      cancel_at(TLS_SRV_ECHO, turns, how); /* somewhere in the exchange */
  }
}

/* ------------------------------------------------------------ threads */

/* One config, several loops on several threads at once (TSan watches the
 * session cache and the reference count). */
typedef struct thread_job {
  ioa_tls_config *cfg;
  int port;
  int ok;
} thread_job;

static void *thread_main(void *arg) {
  thread_job *j = arg;
  for (int i = 0; i < 4; i++) {
    client c;
    client_init(&c);
    if (upgrade_fd(&c, j->cfg, AF_INET, j->port, "localhost", 0) == 0) {
      set_cbs(&c);
      echo_roundtrip(&c, "threaded");
      j->ok++;
    }
    client_free(&c);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  pthread_t th[3];
  thread_job jobs[3];
  for (int i = 0; i < 3; i++) {
    jobs[i] = (thread_job){.cfg = cfg, .port = tls_srv_port(srv)};
    assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
  }
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(jobs[i].ok, 4);
  }
  assert_true(tls_srv_resumed(srv) >= 1);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* No SIGPIPE from a TLS write to a peer that went away. */
static void test_no_sigpipe(void **state) {
  (void)state;
  struct sigaction old, dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old);
  tls_srv *srv = server(TLS_SRV_SEND_TRUNC, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  client c;
  client_upgraded(&c, cfg, srv);
  assert_int_equal(tls_srv_wait_done(srv, 1, 20000), 0);
  static uint8_t junk[1 << 16];
  ioa_stream_callbacks cb;
  ioa_stream_callbacks_init(&cb);
  cb.on_error = on_error;
  cb.on_closed = on_closed;
  assert_int_equal(ioa_stream_set_callbacks(c.s, &cb, &c), 0);
  for (int i = 0; i < 64 && !c.closed; i++) {
    if (ioa_stream_write(c.s, junk, sizeof junk) < 0)
      break;
    ioa_test_run_for(c.loop, 5);
  }
  assert_int_equal(ioa_test_run_until(c.loop, &c.closed, 20000), 0);
  assert_true(c.read_err == -EPIPE || c.read_err == -ECONNRESET);
  client_free(&c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
  sigaction(SIGPIPE, &old, NULL);
}

static void test_bad_params(void **state) {
  (void)state;
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  ioa_loop *loop = ioa_test_new_loop();
  ioa_tls_upgrade_params p;
  ioa_tls_upgrade_params_init(&p);
  p.config = cfg;
  ioa_tls_upgrade *u = (ioa_tls_upgrade *)1;
  /* No on_done, no config, bad names, bad fd, a unix peer without name. */
  assert_int_equal(ioa_tls_upgrade_fd(loop, 0, NULL, &p, &u), IOA_EBADPARAM);
  assert_null(u);
  p.on_done = on_done;
  p.server_name = "bad name";
  assert_int_equal(ioa_tls_upgrade_fd(loop, 0, NULL, &p, &u), IOA_EBADPARAM);
  p.server_name = "";
  assert_int_equal(ioa_tls_upgrade_fd(loop, 0, NULL, &p, &u), IOA_EBADPARAM);
  p.server_name = NULL;
  assert_int_equal(ioa_tls_upgrade_fd(loop, -1, NULL, &p, &u), IOA_EBADPARAM);
  assert_int_equal(ioa_tls_upgrade_fd(NULL, 0, NULL, &p, &u), IOA_EBADPARAM);
  assert_int_equal(ioa_tls_upgrade_stream(NULL, &p, &u), IOA_EBADPARAM);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  assert_int_equal(ioa_tls_upgrade_fd(loop, sv[0], NULL, &p, &u), IOA_EBADPARAM);
  /* The fd is still ours after a refusal. */
  assert_true(fcntl(sv[0], F_GETFD) >= 0);
  p.config = NULL;
  p.server_name = "localhost";
  assert_int_equal(ioa_tls_upgrade_fd(loop, sv[0], NULL, &p, &u), IOA_EBADPARAM);
  close(sv[0]);
  close(sv[1]);
  /* Info of a plain stream. */
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ioa_stream *s;
  assert_int_equal(ioa_stream_new(loop, sv[0], NULL, &s), 0);
  ioa_tls_info info;
  ioa_tls_info_init(&info);
  assert_int_equal(ioa_tls_stream_info(s, &info), IOA_EBADPARAM);
  assert_false(ioa_tls_stream_is_tls(s));
  assert_null(ioa_tls_stream_error(s));
  ioa_stream_free(s);
  close(sv[1]);
  ioa_loop_free(loop);
  ioa_tls_config_unref(cfg);
}

/* ------------------------------------------------------------ ioa_connect */

typedef struct conn {
  client c; /* the stream handed over lands in c.s */
  int completed;
  int err;
  ioa_syscall sys;
  int fails;
  ioa_syscall fail_sys[8];
  int fail_err[8];
  uint32_t fail_ip[8]; /* an IPv4 peer's address (host order), else 0 */
  char fail_msg[8][160];
  int handshakes;
  int cancel_in_handshake; /* cancel from the nth on_handshake */
  int cancel_in_fail;      /* cancel from the first on_fail */
  int attempts;            /* on_attempt calls (when set) */
  uint32_t attempt_ip[32]; /* their IPv4 peers, as fail_ip */
  ioa_connect_req *req;
} conn;

static void c_stream(ioa_connect_req *req, ioa_stream *s, const ioa_addr *peer, void *data) {
  conn *k = data;
  (void)req;
  (void)peer;
  assert_int_equal(k->completed++, 0);
  k->c.s = s;
}
static void c_error(ioa_connect_req *req, ioa_syscall sys, int err, void *data) {
  conn *k = data;
  assert_int_equal(k->completed++, 0);
  k->err = err;
  k->sys = sys;
  /* The failure list (with messages) is readable until this returns. */
  const ioa_attempt_failure *f;
  size_t n = ioa_connect_failures(req, &f);
  assert_int_equal((int)n, k->fails);
  for (size_t i = 0; i < n; i++) {
    assert_non_null(f[i].message);
    assert_string_equal(f[i].message, k->fail_msg[i]);
  }
}
static uint32_t ipv4_of(const ioa_addr *a) {
  if (a->family != AF_INET)
    return 0;
  return ntohl(((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr.s_addr);
}

static void c_fail(ioa_connect_req *req, const ioa_attempt_failure *f, void *data) {
  conn *k = data;
  assert_non_null(f->message);
  assert_true(f->message[0] != '\0');
  if (k->fails < 8) {
    k->fail_sys[k->fails] = f->syscall;
    k->fail_err[k->fails] = f->err;
    snprintf(k->fail_msg[k->fails], sizeof k->fail_msg[0], "%s", f->message);
    k->fail_ip[k->fails] = ipv4_of(f->peer);
  }
  if (f->syscall == IOA_SYSCALL_TLS)
    assert_true(f->fd >= 0 && fcntl(f->fd, F_GETFD) >= 0); /* open during on_fail */
  k->fails++;
  if (k->cancel_in_fail && k->fails == 1)
    ioa_connect_cancel(req);
}
static void c_handshake(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                        void *data) {
  conn *k = data;
  (void)peer;
  (void)local;
  if (++k->handshakes == k->cancel_in_handshake)
    ioa_connect_cancel(req);
}

static ioa_addr loopback_addr(int family, int port) {
  char text[64];
  snprintf(text, sizeof text, family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d", port);
  ioa_addr a;
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL), 0);
  return a;
}

static void conn_params(conn *k, ioa_connect_params *p, ioa_tls_config *cfg) {
  memset(k, 0, sizeof *k);
  client_init(&k->c);
  ioa_connect_params_init(p);
  p->tls = cfg;
  p->on_stream = c_stream;
  p->on_connect_error = c_error;
  p->on_fail = c_fail;
  p->on_handshake = c_handshake;
  p->data = k;
}

static void conn_run(conn *k, ioa_connect_params *p) {
  assert_int_equal(ioa_connect(k->c.loop, p, &k->req), 0);
  assert_int_equal(k->completed, 0);
  assert_int_equal(ioa_test_run_until(k->c.loop, &k->completed, 20000), 0);
}

/* By name, racing: ::1 refuses (nothing listens there), 127.0.0.1 wins
 * after its handshake; the stream is verified for "localhost". */
static void test_connect_by_name(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  for (int round = 0; round < 2; round++) {
    conn k;
    ioa_connect_params p;
    conn_params(&k, &p, cfg);
    char port[16];
    snprintf(port, sizeof port, "%d", tls_srv_port(srv));
    p.host = "localhost";
    p.service = port;
    conn_run(&k, &p);
    assert_non_null(k.c.s);
    check_info(k.c.s, "localhost", round == 1); /* the second one resumes */
    assert_true(k.handshakes >= 1);
    set_cbs(&k.c);
    echo_roundtrip(&k.c, "through ioa_connect");
    client_free(&k.c);
    assert_int_equal(tls_srv_wait_done(srv, round + 1, 20000), 0);
  }
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* By address: the peer's IP against the IP SANs, no SNI; the request holds
 * its own reference to the config. */
static void test_connect_by_address(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  conn k;
  ioa_connect_params p;
  conn_params(&k, &p, cfg);
  ioa_addr a = loopback_addr(AF_INET, tls_srv_port(srv));
  p.addr = &a;
  assert_int_equal(ioa_connect(k.c.loop, &p, &k.req), 0);
  ioa_tls_config_unref(cfg);
  assert_int_equal(ioa_test_run_until(k.c.loop, &k.completed, 20000), 0);
  check_info(k.c.s, "127.0.0.1", 0);
  char sni[64];
  tls_srv_last_sni(srv, sni, sizeof sni);
  assert_string_equal(sni, "");
  client_free(&k.c);
  tls_srv_stop(srv);
}

/* A verification failure ends the request at once: the second address
 * (the same server) is not tried; "tls" and the X509 reason. */
static void test_connect_verify_failure(void **state) {
  (void)state;
  tls_srv *srv = server(TLS_SRV_ECHO, pki.expired, pki.expired_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  conn k;
  ioa_connect_params p;
  conn_params(&k, &p, cfg);
  ioa_addr a[2] = {loopback_addr(AF_INET, tls_srv_port(srv)),
                   loopback_addr(AF_INET, tls_srv_port(srv))};
  p.addrs = a;
  p.naddrs = 2;
  p.tls_server_name = "localhost";
  conn_run(&k, &p);
  assert_null(k.c.s);
  assert_int_equal(k.sys, IOA_SYSCALL_TLS);
  assert_int_equal(k.err, IOA_ETLSVERIFY);
  assert_string_equal(ioa_syscall_name(k.sys), "tls");
  assert_int_equal(k.fails, 1);
  assert_non_null(strstr(k.fail_msg[0], "certificate has expired"));
  assert_int_equal(tls_srv_accepted(srv), 1);
  client_free(&k.c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(srv);
}

/* A server that closes or resets mid-handshake, or never answers (attempt
 * timeout): reported as "tls" failures, and the next address wins. */
static void connect_then_next(tls_srv_mode bad_mode, int err, const char *needle,
                              unsigned attempt_timeout_ms) {
  tls_srv *bad = server(bad_mode, NULL, NULL);
  tls_srv *good = server(TLS_SRV_ECHO, pki.leaf, pki.leaf_key);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  conn k;
  ioa_connect_params p;
  conn_params(&k, &p, cfg);
  ioa_addr a[2] = {loopback_addr(AF_INET, tls_srv_port(bad)),
                   loopback_addr(AF_INET, tls_srv_port(good))};
  p.addrs = a;
  p.naddrs = 2;
  p.mode = IOA_CONNECT_SEQUENTIAL;
  p.attempt_timeout_ms = attempt_timeout_ms;
  conn_run(&k, &p);
  assert_non_null(k.c.s);
  assert_int_equal(k.fails, 1);
  assert_int_equal(k.fail_sys[0], IOA_SYSCALL_TLS);
  if (k.fail_err[0] != err)
    fail_msg("expected %s, got %s (%s)", ioa_err_name(err), ioa_err_name(k.fail_err[0]),
             k.fail_msg[0]);
  assert_non_null(strstr(k.fail_msg[0], needle));
  assert_int_equal(k.handshakes, 2);
  check_info(k.c.s, "127.0.0.1", 0);
  client_free(&k.c);
  ioa_tls_config_unref(cfg);
  tls_srv_stop(good);
  tls_srv_stop(bad);
}

static void test_connect_network_failures_move_on(void **state) {
  (void)state;
  connect_then_next(TLS_SRV_CLOSE_MID, IOA_ETLSEOF, "closed", 0);
  connect_then_next(TLS_SRV_RESET_MID, -ECONNRESET, "reset", 0);
  connect_then_next(TLS_SRV_SILENT, -ETIMEDOUT, "TLS handshake", 300);
}

/* Cancel at each point: from on_handshake (before the stream exists),
 * while the handshake waits on a silent server, from on_fail.  One
 * completion, every fd closed (the teardown counts them). */
static void test_connect_cancel(void **state) {
  (void)state;
  tls_srv *silent = server(TLS_SRV_SILENT, NULL, NULL);
  tls_srv *bad = server(TLS_SRV_RESET_MID, NULL, NULL);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  for (int how = 0; how < 3; how++) {
    conn k;
    ioa_connect_params p;
    conn_params(&k, &p, cfg);
    ioa_addr a = loopback_addr(AF_INET, tls_srv_port(how == 2 ? bad : silent));
    p.addr = &a;
    k.cancel_in_handshake = how == 0 ? 1 : 0;
    k.cancel_in_fail = how == 2;
    assert_int_equal(ioa_connect(k.c.loop, &p, &k.req), 0);
    if (how == 1) {
      for (int i = 0; i < 200 && k.handshakes == 0; i++)
        ioa_loop_run(k.c.loop, IOA_RUN_ONCE);
      ioa_test_run_for(k.c.loop, 30); /* ClientHello out, nothing back */
      assert_int_equal(k.completed, 0);
      ioa_connect_cancel(k.req);
      assert_int_equal(k.completed, 1);
    }
    assert_int_equal(ioa_test_run_until(k.c.loop, &k.completed, 20000), 0);
    assert_int_equal(k.err, -ECANCELED);
    assert_null(k.c.s);
    ioa_test_run_for(k.c.loop, 10);
    assert_int_equal(k.completed, 1);
    client_free(&k.c);
  }
  ioa_tls_config_unref(cfg);
  tls_srv_stop(bad);
  tls_srv_stop(silent);
}

static void test_connect_bad_params(void **state) {
  (void)state;
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  ioa_loop *loop = ioa_test_new_loop();
  ioa_connect_params p;
  ioa_connect_req *req;
  ioa_addr a = loopback_addr(AF_INET, 9), u;
  assert_int_equal(ioa_addr_parse("unix:/tmp/none", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &u,
                                  NULL),
                   0);
  /* TLS hands over a stream, nothing else. */
  ioa_connect_params_init(&p);
  p.addr = &a;
  p.tls = cfg;
  p.on_connected = (ioa_connected_cb)(void (*)(void))c_stream;
  p.on_connect_error = c_error;
  assert_int_equal(ioa_connect(loop, &p, &req), IOA_EBADPARAM);
  /* A unix peer has no address to verify; a name makes it usable. */
  p.on_connected = NULL;
  p.on_stream = c_stream;
  p.addr = &u;
  assert_int_equal(ioa_connect(loop, &p, &req), IOA_EBADPARAM);
  p.tls_server_name = "bad name";
  assert_int_equal(ioa_connect(loop, &p, &req), IOA_EBADPARAM);
  /* A server name or handshake hook without TLS. */
  p.tls = NULL;
  p.tls_server_name = "localhost";
  p.addr = &a;
  assert_int_equal(ioa_connect(loop, &p, &req), IOA_EBADPARAM);
  ioa_loop_free(loop);
  ioa_tls_config_unref(cfg);
}

/* --------------------------------------- racing past black holes
 *
 * A TLS connect by name races with the connector's policy: 18 addresses
 * that drop SYNs (full-backlog listeners) before a TLS server, a 10 ms
 * attempt delay.  At most 16 attempts are in flight, so the oldest is
 * abandoned for each new one and the server gets its turn: 19 attempts in
 * the resolver's order, the 3 oldest reported abandoned ("connect",
 * IOA_EABANDONED), one handshake, a verified stream.  The name comes from
 * an /etc/hosts of the test's own inside `unshare -n -m`: a private
 * loopback where every 127.0.0.x answers, and nothing leaves it. */

#define RACE_HOLES 18
#define RACE_NAME "race.ioa-test"
static int race_setup_failed; /* the helper's premise could not be set up */

static void c_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                      void *data) {
  conn *k = data;
  (void)req;
  (void)local;
  if (k->attempts < 32)
    k->attempt_ip[k->attempts] = ipv4_of(peer);
  k->attempts++;
}

static void race_past_black_holes(void **state) {
  (void)state;
  /* getaddrinfo's order (RFC 6724 may sort the file's): the server takes
   * the last address, the black holes the others. */
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  char text[RACE_HOLES + 1][INET_ADDRSTRLEN];
  uint32_t order[RACE_HOLES + 1];
  int n = 0;
  if (getaddrinfo(RACE_NAME, NULL, &hints, &ai) == 0)
    for (const struct addrinfo *e = ai; e && n <= RACE_HOLES; e = e->ai_next, n++) {
      const struct sockaddr_in *sa = (const struct sockaddr_in *)(const void *)e->ai_addr;
      order[n] = ntohl(sa->sin_addr.s_addr);
      inet_ntop(AF_INET, &sa->sin_addr, text[n], sizeof text[n]);
    }
  if (ai)
    freeaddrinfo(ai);
  if (n != RACE_HOLES + 1) {
    print_message("getaddrinfo(%s) gave %d addresses, not %d\n", RACE_NAME, n, RACE_HOLES + 1);
    race_setup_failed = 1;
    skip();
  }
  tls_srv_opts so = {
      .mode = TLS_SRV_ECHO, .cert = pki.leaf, .key = pki.leaf_key, .addr = text[RACE_HOLES]};
  tls_srv *srv = tls_srv_start(&so);
  assert_non_null(srv);
  ioa_test_blackhole holes[RACE_HOLES];
  for (int i = 0; i < RACE_HOLES; i++)
    assert_int_equal(ioa_test_blackhole_open_at(&holes[i], text[i], tls_srv_port(srv)), 0);
  ioa_tls_config *cfg = config_with(pki.ca, NULL);
  conn k;
  ioa_connect_params p;
  conn_params(&k, &p, cfg);
  char port[16];
  snprintf(port, sizeof port, "%d", tls_srv_port(srv));
  p.host = RACE_NAME;
  p.service = port;
  p.tls_server_name = "localhost"; /* the test leaf's name */
  p.attempt_delay_ms = 10;
  p.on_attempt = c_attempt;
  conn_run(&k, &p);
  if (!k.c.s)
    fail_msg("no stream: %s (%s) after %d attempts", ioa_err_name(k.err),
             ioa_syscall_name(k.sys), k.attempts);
  /* Every address in the resolver's order, the server last. */
  assert_int_equal(k.attempts, RACE_HOLES + 1);
  for (int i = 0; i <= RACE_HOLES; i++)
    assert_int_equal(k.attempt_ip[i], order[i]);
  /* The oldest made room, in turn; the rest were closed unreported. */
  assert_int_equal(k.fails, RACE_HOLES + 1 - IOA_CONNECT_MAX_INFLIGHT);
  for (int i = 0; i < k.fails; i++) {
    assert_int_equal(k.fail_sys[i], IOA_SYSCALL_CONNECT);
    assert_int_equal(k.fail_err[i], IOA_EABANDONED);
    assert_int_equal(k.fail_ip[i], order[i]);
  }
  assert_int_equal(k.handshakes, 1);
  check_info(k.c.s, "localhost", 0);
  set_cbs(&k.c);
  echo_roundtrip(&k.c, "past eighteen black holes");
  client_free(&k.c);
  assert_int_equal(tls_srv_wait_done(srv, 1, 20000), 0);
  assert_int_equal(tls_srv_accepted(srv), 1);
  ioa_tls_config_unref(cfg);
  for (int i = 0; i < RACE_HOLES; i++)
    ioa_test_blackhole_close(&holes[i]);
  tls_srv_stop(srv);
}

/* Runs as `unshare -n -m test_tls --race-helper` (ioa_test_in_netns). */
static int race_helper(void) {
  alarm(60);
  signal(SIGPIPE, SIG_IGN);
  char hosts[RACE_HOLES * 40 + 64] = "";
  for (int i = 0; i <= RACE_HOLES; i++) /* 127.0.0.2 .. 127.0.0.20 */
    snprintf(hosts + strlen(hosts), sizeof hosts - strlen(hosts), "127.0.0.%d %s\n", i + 2,
             RACE_NAME);
  char dir[] = "/tmp/ioa-tls-ns-XXXXXX";
  if (system("ip link set lo up") != 0 || !mkdtemp(dir) || ioa_test_ns_hide_nscd() != 0 ||
      ioa_test_ns_bind(dir, "hosts", hosts, "/etc/hosts") != 0 ||
      ioa_test_ns_bind(dir, "nsswitch.conf", "hosts: files\nservices: files\n",
                       "/etc/nsswitch.conf") != 0 ||
      tls_pki_create(&pki) != 0)
    return IOA_TEST_NS_SETUP;
  const struct CMUnitTest tests[] = {IOA_TEST(race_past_black_holes)};
  int failed = cmocka_run_group_tests_name("test_tls race helper", tests, NULL, NULL);
  tls_pki_destroy(&pki);
  char path[sizeof dir + 16];
  snprintf(path, sizeof path, "%s/hosts", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/nsswitch.conf", dir);
  unlink(path);
  rmdir(dir);
  return race_setup_failed ? IOA_TEST_NS_SETUP : failed ? IOA_TEST_NS_FAIL : 0;
}

static void test_connect_race_black_holes(void **state) {
  (void)state;
  ioa_test_in_netns("--race-helper",
                    "a TLS connect by name did not race past the black holes (see above)",
                    "unshare -n -m or the hosts-file premise unavailable");
}

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  return tls_pki_create(&pki);
}

static int group_teardown(void **state) {
  (void)state;
  tls_pki_destroy(&pki);
  return 0;
}

int main(int argc, char **argv) {
  if (!ioa_tls_available()) {
    printf("test_tls: skipped: built without TLS (OpenSSL)\n");
    return 77;
  }
  if (argc > 1 && strcmp(argv[1], "--race-helper") == 0)
    return race_helper();
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_available),
      IOA_TEST(test_config_errors),
      IOA_TEST(test_config_default_and_refs),
      IOA_TEST(test_by_name),
      IOA_TEST(test_by_address),
      IOA_TEST(test_alpn),
      IOA_TEST(test_resumption),
      IOA_TEST(test_close_notify),
      IOA_TEST(test_truncation),
      IOA_TEST(test_bulk),
      IOA_TEST(test_verify_failures),
      IOA_TEST(test_insecure),
      IOA_TEST(test_network_failures),
      IOA_TEST(test_version_and_alert),
      IOA_TEST(test_client_cert),
      IOA_TEST(test_keylog),
      IOA_TEST(test_starttls),
      IOA_TEST(test_write_during_handshake),
      IOA_TEST(test_cancel),
      IOA_TEST(test_threads),
      IOA_TEST(test_no_sigpipe),
      IOA_TEST(test_bad_params),
      IOA_TEST(test_connect_by_name),
      IOA_TEST(test_connect_by_address),
      IOA_TEST(test_connect_verify_failure),
      IOA_TEST(test_connect_network_failures_move_on),
      IOA_TEST(test_connect_cancel),
      IOA_TEST(test_connect_bad_params),
      IOA_TEST(test_connect_race_black_holes),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
