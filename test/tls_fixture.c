/* SPDX-License-Identifier: MIT */
/* TLS test fixtures (see tls_fixture.h).  Everything here is the test's
 * own plumbing: raw syscalls and OpenSSL, never the library under test. */
#include "tls_fixture.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------ the PKI */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if (!ext)
    return -1;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

/* A certificate for key, signed by issuer/issuer_key (self-signed if
 * issuer is NULL), valid from..to days around now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       int is_ca, long from_days, long to_days, const char *san, int client) {
  static long serial = 1;
  X509 *x = X509_new();
  if (!x)
    return NULL;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++ + (long)time(NULL) % 100000 * 100);
  X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
  X509_set_pubkey(x, key);
  X509_NAME *name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"ioasync test", -1,
                             -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509 *iss = issuer ? issuer : x;
  int bad = 0;
  bad |= add_ext(x, iss, NID_subject_key_identifier, "hash");
  bad |= add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
  if (is_ca) {
    bad |= add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    bad |= add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    bad |= add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
    bad |= add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
    bad |= add_ext(x, iss, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
  }
  if (san)
    bad |= add_ext(x, iss, NID_subject_alt_name, san);
  if (bad || !X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
    X509_free(x);
    return NULL;
  }
  return x;
}

static int write_pem(const char *path, X509 *c1, X509 *c2, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  int ok = 1;
  if (c1)
    ok &= PEM_write_X509(f, c1);
  if (c2)
    ok &= PEM_write_X509(f, c2);
  if (key)
    ok &= PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  return fclose(f) == 0 && ok ? 0 : -1;
}

#define PKI_PATH(p, field, name) snprintf((p)->field, sizeof (p)->field, "%s/%s", (p)->dir, name)

/* One leaf: key and certificate into cert_path / key_path. */
static int leaf(const char *cert_path, const char *key_path, const char *cn, const char *san,
                X509 *ca, EVP_PKEY *ca_key, long from, long to, int client, X509 *extra) {
  EVP_PKEY *k = EVP_EC_gen("P-256");
  if (!k)
    return -1;
  X509 *x = make_cert(k, cn, ca, ca_key, 0, from, to, san, client);
  int r = x && write_pem(cert_path, x, extra, NULL) == 0 && write_pem(key_path, NULL, NULL, k) == 0
              ? 0
              : -1;
  X509_free(x);
  EVP_PKEY_free(k);
  return r;
}

int tls_pki_create(tls_pki *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->dir, sizeof p->dir, "/tmp/ioa-tls-XXXXXX");
  if (!mkdtemp(p->dir)) {
    perror("mkdtemp");
    return -1;
  }
  PKI_PATH(p, ca, "ca.pem");
  PKI_PATH(p, other_ca, "other-ca.pem");
  PKI_PATH(p, leaf, "leaf.pem");
  PKI_PATH(p, leaf_key, "leaf.key");
  PKI_PATH(p, expired, "expired.pem");
  PKI_PATH(p, expired_key, "expired.key");
  PKI_PATH(p, wrong, "wrong.pem");
  PKI_PATH(p, wrong_key, "wrong.key");
  PKI_PATH(p, self, "self.pem");
  PKI_PATH(p, self_key, "self.key");
  PKI_PATH(p, chain, "chain.pem");
  PKI_PATH(p, chain_key, "chain.key");
  PKI_PATH(p, client, "client.pem");
  PKI_PATH(p, client_key, "client.key");
  const char *san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  EVP_PKEY *ca_key = EVP_EC_gen("P-256");
  EVP_PKEY *other_key = EVP_EC_gen("P-256");
  X509 *ca = ca_key ? make_cert(ca_key, "ioasync test CA", NULL, NULL, 1, -1, 30, NULL, 0) : NULL;
  X509 *other =
      other_key ? make_cert(other_key, "ioasync other CA", NULL, NULL, 1, -1, 30, NULL, 0) : NULL;
  int r = -1;
  if (ca && other && write_pem(p->ca, ca, NULL, NULL) == 0 &&
      write_pem(p->other_ca, other, NULL, NULL) == 0 &&
      leaf(p->leaf, p->leaf_key, "localhost", san, ca, ca_key, -1, 30, 0, NULL) == 0 &&
      leaf(p->expired, p->expired_key, "localhost", san, ca, ca_key, -10, -1, 0, NULL) == 0 &&
      leaf(p->wrong, p->wrong_key, "wrong.test", "DNS:wrong.test", ca, ca_key, -1, 30, 0,
           NULL) == 0 &&
      leaf(p->self, p->self_key, "localhost", san, NULL, NULL, -1, 30, 0, NULL) == 0 &&
      leaf(p->chain, p->chain_key, "localhost", san, other, other_key, -1, 30, 0, other) == 0 &&
      leaf(p->client, p->client_key, "ioa-client", NULL, ca, ca_key, -1, 30, 1, NULL) == 0)
    r = 0;
  X509_free(ca);
  X509_free(other);
  EVP_PKEY_free(ca_key);
  EVP_PKEY_free(other_key);
  ERR_clear_error();
  if (r < 0) {
    fprintf(stderr, "tls_pki_create: making certificates failed\n");
    tls_pki_destroy(p);
  }
  return r;
}

void tls_pki_destroy(tls_pki *p) {
  const char *files[] = {p->ca,     p->other_ca,   p->leaf,   p->leaf_key, p->expired,
                         p->expired_key, p->wrong, p->wrong_key, p->self, p->self_key,
                         p->chain, p->chain_key, p->client, p->client_key};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    if (files[i][0])
      unlink(files[i]);
  if (p->dir[0])
    rmdir(p->dir);
  memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ servers */

struct tls_srv {
  tls_srv_opts o;
  SSL_CTX *ctx;
  unsigned char alpn[256];
  size_t alpn_len;
  int lfd, port;
  int stop_pipe[2];
  pthread_t thread;
  pthread_mutex_t lock;
  atomic_int accepted, handshakes, resumed, clean_closes, done;
  char sni[256], client_cn[128];
};

#define IO_WAIT_MS 10000

/* Wait until fd is ready for events, or the server stops.  0 or -1. */
static int wait_fd(tls_srv *s, int fd, short events) {
  struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = s->stop_pipe[0], .events = POLLIN}};
  for (;;) {
    int r = poll(p, 2, IO_WAIT_MS);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0 || p[1].revents)
      return -1;
    return 0;
  }
}

/* An SSL call that may block: retried while it wants I/O. */
static int ssl_wait(tls_srv *s, SSL *ssl, int ret) {
  int e = SSL_get_error(ssl, ret);
  if (e == SSL_ERROR_WANT_READ)
    return wait_fd(s, SSL_get_fd(ssl), POLLIN);
  if (e == SSL_ERROR_WANT_WRITE)
    return wait_fd(s, SSL_get_fd(ssl), POLLOUT);
  return -1;
}

static int raw_read(tls_srv *s, int fd, char *buf, size_t n) {
  for (;;) {
    ssize_t r = read(fd, buf, n);
    if (r >= 0)
      return (int)r;
    if (errno != EAGAIN || wait_fd(s, fd, POLLIN) < 0)
      return -1;
  }
}

static int raw_write(tls_srv *s, int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno != EAGAIN || wait_fd(s, fd, POLLOUT) < 0)
        return -1;
      continue;
    }
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

/* Read one line (up to \n) byte by byte, so nothing after it is taken. */
static int raw_line(tls_srv *s, int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    int r = raw_read(s, fd, buf + n, 1);
    if (r <= 0)
      return -1;
    if (buf[n++] == '\n')
      break;
  }
  buf[n] = '\0';
  return (int)n;
}

static int ssl_write_all(tls_srv *s, SSL *ssl, const char *buf, size_t n) {
  while (n > 0) {
    size_t w = 0;
    int r = SSL_write_ex(ssl, buf, n, &w);
    if (r <= 0) {
      if (ssl_wait(s, ssl, r) < 0)
        return -1;
      continue;
    }
    buf += w;
    n -= w;
  }
  return 0;
}

static void serve_tls(tls_srv *s, int fd) {
  SSL *ssl = SSL_new(s->ctx);
  if (!ssl)
    return;
  SSL_set_fd(ssl, fd);
  int r;
  while ((r = SSL_accept(ssl)) <= 0)
    if (ssl_wait(s, ssl, r) < 0)
      goto out;
  atomic_fetch_add(&s->handshakes, 1);
  if (SSL_session_reused(ssl))
    atomic_fetch_add(&s->resumed, 1);
  pthread_mutex_lock(&s->lock);
  const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  snprintf(s->sni, sizeof s->sni, "%s", sni ? sni : "");
  X509 *peer = SSL_get0_peer_certificate(ssl);
  s->client_cn[0] = '\0';
  if (peer)
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, s->client_cn,
                              sizeof s->client_cn);
  pthread_mutex_unlock(&s->lock);
  if (s->o.mode == TLS_SRV_SEND_TRUNC) {
    ssl_write_all(s, ssl, "hello", 5);
    goto out; /* TCP close without close_notify */
  }
  static _Thread_local char buf[65536];
  for (;;) {
    size_t got = 0;
    r = SSL_read_ex(ssl, buf, sizeof buf, &got);
    if (r <= 0) {
      int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_ZERO_RETURN) {
        atomic_fetch_add(&s->clean_closes, 1);
        while ((r = SSL_shutdown(ssl)) < 0)
          if (ssl_wait(s, ssl, r) < 0)
            break;
        break;
      }
      if (ssl_wait(s, ssl, r) < 0)
        break;
      continue;
    }
    if (ssl_write_all(s, ssl, buf, got) < 0)
      break;
  }
out:
  SSL_free(ssl);
  ERR_clear_error();
}

static void serve(tls_srv *s, int fd) {
  char buf[4096];
  switch (s->o.mode) {
  case TLS_SRV_ECHO:
  case TLS_SRV_SEND_TRUNC:
    serve_tls(s, fd);
    break;
  case TLS_SRV_CLOSE_MID:
    (void)raw_read(s, fd, buf, sizeof buf);
    break;
  case TLS_SRV_RESET_MID: {
    (void)raw_read(s, fd, buf, sizeof buf);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    break;
  }
  case TLS_SRV_GARBAGE:
    if (raw_read(s, fd, buf, sizeof buf) > 0)
      (void)raw_write(s, fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
    while (raw_read(s, fd, buf, sizeof buf) > 0)
      ;
    break;
  case TLS_SRV_SILENT:
    while (raw_read(s, fd, buf, sizeof buf) > 0)
      ;
    break;
  case TLS_SRV_STARTTLS:
  case TLS_SRV_STARTTLS_INJECT:
  case TLS_SRV_STARTTLS_NOREPLY:
    if (s->o.mode != TLS_SRV_STARTTLS_NOREPLY && raw_write(s, fd, "220 ready\r\n", 11) < 0)
      break;
    if (raw_line(s, fd, buf, sizeof buf) < 0 || strcmp(buf, "STARTTLS\r\n") != 0)
      break;
    if (s->o.mode == TLS_SRV_STARTTLS_INJECT) {
      (void)raw_write(s, fd, "220 go ahead\r\nINJECTED\r\n", 24);
      while (raw_read(s, fd, buf, sizeof buf) > 0)
        ;
      break;
    }
    if (s->o.mode == TLS_SRV_STARTTLS && raw_write(s, fd, "220 go ahead\r\n", 14) < 0)
      break;
    serve_tls(s, fd);
    break;
  }
}

static void *srv_main(void *arg) {
  tls_srv *s = arg;
  /* OpenSSL's socket BIO writes without MSG_NOSIGNAL: a client that went
   * away must not kill the test with SIGPIPE (blocked here, it stays
   * pending on this thread and dies with it). */
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
  for (;;) {
    struct pollfd p[2] = {{.fd = s->lfd, .events = POLLIN},
                          {.fd = s->stop_pipe[0], .events = POLLIN}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 || p[1].revents)
      break;
    int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
      continue;
    atomic_fetch_add(&s->accepted, 1);
    /* The server answers at once: a test waits on no delayed ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    serve(s, fd);
    close(fd);
    atomic_fetch_add(&s->done, 1);
  }
  return NULL;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg) {
  tls_srv *s = arg;
  (void)ssl;
  unsigned char *o;
  if (SSL_select_next_proto(&o, outlen, s->alpn, (unsigned)s->alpn_len, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

tls_srv *tls_srv_start(const tls_srv_opts *o) {
  tls_srv *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->o = *o;
  s->lfd = -1;
  s->stop_pipe[0] = s->stop_pipe[1] = -1;
  pthread_mutex_init(&s->lock, NULL);
  int fam = o->family ? o->family : AF_INET;
  s->ctx = SSL_CTX_new(TLS_server_method());
  if (!s->ctx)
    goto fail;
  if (o->cert && (SSL_CTX_use_certificate_chain_file(s->ctx, o->cert) != 1 ||
                  SSL_CTX_use_PrivateKey_file(s->ctx, o->key, SSL_FILETYPE_PEM) != 1)) {
    fprintf(stderr, "tls_srv_start: cannot load %s / %s\n", o->cert, o->key);
    goto fail;
  }
  if (o->max_version)
    SSL_CTX_set_max_proto_version(s->ctx, o->max_version);
  if (o->no_tickets) {
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(s->ctx, 0);
  }
  if (o->client_ca) {
    SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (SSL_CTX_load_verify_locations(s->ctx, o->client_ca, NULL) != 1)
      goto fail;
  }
  if (o->alpn) {
    const char *p = o->alpn;
    while (*p && s->alpn_len < sizeof s->alpn - 1) {
      size_t n = strcspn(p, ",");
      if (s->alpn_len + 1 + n > sizeof s->alpn)
        break;
      s->alpn[s->alpn_len++] = (unsigned char)n;
      memcpy(s->alpn + s->alpn_len, p, n);
      s->alpn_len += n;
      p += n + (p[n] == ',');
    }
    SSL_CTX_set_alpn_select_cb(s->ctx, alpn_select, s);
  }
  s->lfd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->lfd < 0)
    goto fail;
  int one = 1;
  setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t len = ioa_test_loopback(fam, 0, &ss);
  if (fam == AF_INET && o->addr) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET, o->addr, &s4->sin_addr) != 1 ||
        ntohl(s4->sin_addr.s_addr) >> 24 != 127)
      goto fail; /* loopback only */
  }
  if (bind(s->lfd, (struct sockaddr *)&ss, len) < 0 || listen(s->lfd, 64) < 0 ||
      getsockname(s->lfd, (struct sockaddr *)&ss, &len) < 0)
    goto fail;
  s->port = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                  : ((struct sockaddr_in *)&ss)->sin_port);
  if (pipe2(s->stop_pipe, O_CLOEXEC) < 0)
    goto fail;
  if (pthread_create(&s->thread, NULL, srv_main, s) != 0)
    goto fail;
  ERR_clear_error();
  return s;
fail:
  ERR_print_errors_fp(stderr);
  if (s->lfd >= 0)
    close(s->lfd);
  if (s->stop_pipe[0] >= 0) {
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
  }
  SSL_CTX_free(s->ctx);
  pthread_mutex_destroy(&s->lock);
  free(s);
  return NULL;
}

int tls_srv_port(const tls_srv *s) { return s->port; }
int tls_srv_accepted(const tls_srv *s) { return atomic_load(&s->accepted); }
int tls_srv_handshakes(const tls_srv *s) { return atomic_load(&s->handshakes); }
int tls_srv_resumed(const tls_srv *s) { return atomic_load(&s->resumed); }
int tls_srv_clean_closes(const tls_srv *s) { return atomic_load(&s->clean_closes); }

void tls_srv_last_sni(tls_srv *s, char *buf, size_t size) {
  pthread_mutex_lock(&s->lock);
  snprintf(buf, size, "%s", s->sni);
  pthread_mutex_unlock(&s->lock);
}

void tls_srv_last_client_cn(tls_srv *s, char *buf, size_t size) {
  pthread_mutex_lock(&s->lock);
  snprintf(buf, size, "%s", s->client_cn);
  pthread_mutex_unlock(&s->lock);
}

int tls_srv_wait_done(tls_srv *s, int n, unsigned max_ms) {
  for (unsigned waited = 0; atomic_load(&s->done) < n; waited += 5) {
    if (waited >= max_ms)
      return -1;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  return 0;
}

int tls_srv_quiesce(tls_srv *s, unsigned max_ms) {
  for (unsigned waited = 0;; waited++) {
    struct pollfd p = {.fd = s->lfd, .events = POLLIN};
    int queued = poll(&p, 1, 0) > 0;
    if (!queued && atomic_load(&s->done) >= atomic_load(&s->accepted))
      return 0;
    if (waited >= max_ms)
      return -1;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

void tls_srv_stop(tls_srv *s) {
  if (!s)
    return;
  (void)!write(s->stop_pipe[1], "x", 1);
  pthread_join(s->thread, NULL);
  close(s->lfd);
  close(s->stop_pipe[0]);
  close(s->stop_pipe[1]);
  SSL_CTX_free(s->ctx);
  pthread_mutex_destroy(&s->lock);
  free(s);
}
