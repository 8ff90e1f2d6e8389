/* SPDX-License-Identifier: MIT */
/* TLS through OpenSSL 3: the shared configuration (SSL_CTX, trust store,
 * session cache), the stream transport (an SSL object over a BIO whose
 * reads and writes are ioa__sys_read / ioa__sys_write: MSG_NOSIGNAL, and
 * the fault injector can fail them), and STARTTLS upgrades.
 *
 * OpenSSL keeps errors in a per-thread queue: every call into it here is
 * preceded by ERR_clear_error() and its errors are drained after it, so
 * nothing leaks into the next operation (or into the application's own
 * OpenSSL use on the same thread).
 */
#include "ioasync/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "abi.h"
#include "alloc.h"
#include "stream_internal.h"
#include "tls_internal.h"

void ioa_tls_options_init_size(ioa_tls_options *o, size_t size) {
  static const ioa_tls_options defaults = {.struct_size = sizeof defaults};
  IOA__INIT(o, size, &defaults);
}

void ioa_tls_upgrade_params_init_size(ioa_tls_upgrade_params *p, size_t size) {
  static const ioa_tls_upgrade_params defaults = {.struct_size = sizeof defaults};
  IOA__INIT(p, size, &defaults);
}

void ioa_tls_info_init_size(ioa_tls_info *i, size_t size) {
  static const ioa_tls_info defaults = {.struct_size = sizeof defaults};
  IOA__INIT(i, size, &defaults);
}

#if IOA_HAVE_TLS

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "list.h"
#include "sys.h"

#define DEFAULT_SESSION_CACHE 256u
/* Small writes are gathered into one record of up to this many bytes;
 * a write at least STAGE_MIN long goes straight to SSL_write. */
#define STAGE_SIZE (16u * 1024u)
#define STAGE_MIN 4096u
/* Encrypted records gathered for one send: four full records. */
#define OBUF_SIZE (4u * (16384u + 512u))
#define OBUF_FIRST 4096u

/* ------------------------------------------------------------ globals */

#ifdef IOA_FAULT_INJECTION
/* Fault builds route OpenSSL's allocations through the injector, so the
 * sweep fails them too.  It must happen before OpenSSL allocates anything:
 * a constructor runs before main. */
static void *crypto_malloc(size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  return ioa__fault_hit(IOA_FOP_SSL_MALLOC) ? NULL : malloc(n);
}
static void *crypto_realloc(void *p, size_t n, const char *file, int line) {
  (void)file;
  (void)line;
  return ioa__fault_hit(IOA_FOP_SSL_MALLOC) ? NULL : realloc(p, n);
}
static void crypto_free(void *p, const char *file, int line) {
  (void)file;
  (void)line;
  free(p);
}
__attribute__((constructor)) static void tls_fault_hooks(void) {
  (void)CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free);
}
#endif

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *bio_method; /* lives as long as the process */

static int bio_write(BIO *b, const char *buf, int len);
static int bio_read(BIO *b, char *buf, int len);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);
static int bio_create(BIO *b);

static void tls_global_init(void) {
  OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ioasync fd");
  if (m && (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
            !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create))) {
    BIO_meth_free(m);
    m = NULL;
  }
  bio_method = m;
  ERR_clear_error();
}

/* Global setup: 0 or -ENOMEM (then retried by the next caller). */
static int tls_init(void) {
  static pthread_mutex_t retry = PTHREAD_MUTEX_INITIALIZER;
  pthread_once(&tls_once, tls_global_init);
  if (bio_method)
    return 0;
  /* A failed first try (out of memory) is tried again, once at a time. */
  pthread_mutex_lock(&retry);
  if (!bio_method)
    tls_global_init();
  int ok = bio_method != NULL;
  pthread_mutex_unlock(&retry);
  return ok ? 0 : -ENOMEM;
}

int ioa_tls_available(void) { return 1; }

/* ------------------------------------------------------------ config */

typedef struct sess_entry {
  ioa__list node; /* in the config's LRU, most recent first */
  SSL_SESSION *sess;
  char key[];
} sess_entry;

struct ioa_tls_config {
  atomic_uint refs;
  SSL_CTX *ctx;
  int insecure;
  int cache_off;
  unsigned cache_cap;
  pthread_mutex_t lock; /* the session cache and the key log */
  ioa__list sessions;
  unsigned nsessions;
  FILE *keylog;
};

static int errinfo_set(ioa_errinfo *ei, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errinfo_set(ioa_errinfo *ei, int code, const char *fmt, ...) {
  if (ei) {
    ei->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ei->message, sizeof ei->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* OpenSSL's first queued reason, or what, and the queue emptied. */
static const char *ssl_reason(char *buf, size_t size, const char *what) {
  unsigned long e = ERR_peek_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  snprintf(buf, size, "%s", r ? r : what);
  if (e && ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
    snprintf(buf, size, "out of memory");
  ERR_clear_error();
  return buf;
}

/* A file named by an option: readable (the precise errno otherwise)? */
static int check_file(const char *what, const char *path, int want_dir, ioa_errinfo *ei) {
  struct stat st;
  if (stat(path, &st) < 0)
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: %s", what, path, strerror(errno));
  if (want_dir && !S_ISDIR(st.st_mode))
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: not a directory", what, path);
  if (!want_dir && S_ISDIR(st.st_mode))
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: is a directory", what, path);
  return 0;
}

/* Every certificate of every file in dir, now (a hashed directory would
 * otherwise be read lazily, during verifications on the loop thread).
 * Returns the certificates loaded or a negative code. */
static int load_dir(X509_STORE *store, const char *what, const char *dir, ioa_errinfo *ei) {
  DIR *d = opendir(dir);
  if (!d)
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: %s", what, dir, strerror(errno));
  int loaded = 0;
  char path[4096];
  X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
  if (!lu) {
    closedir(d);
    ERR_clear_error();
    return -ENOMEM;
  }
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path)
      continue;
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
      continue;
    ERR_clear_error();
    int n = X509_load_cert_crl_file(lu, path, X509_FILETYPE_PEM);
    if (n > 0)
      loaded += n;
    ERR_clear_error(); /* not every file there need be a certificate */
  }
  closedir(d);
  if (loaded == 0)
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: no certificates found", what, dir);
  return loaded;
}

static int load_file(X509_STORE *store, const char *what, const char *file, ioa_errinfo *ei) {
  int r = check_file(what, file, 0, ei);
  if (r < 0)
    return r;
  X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
  if (!lu) {
    ERR_clear_error();
    return -ENOMEM;
  }
  ERR_clear_error();
  int n = X509_load_cert_crl_file(lu, file, X509_FILETYPE_PEM);
  if (n <= 0) {
    char why[128];
    ssl_reason(why, sizeof why, "no certificates found");
    if (strcmp(why, "out of memory") == 0)
      return -ENOMEM;
    return errinfo_set(ei, IOA_ETLSCONFIG, "%s %s: %s", what, file, why);
  }
  return n;
}

static int load_trust(ioa_tls_config *c, const ioa_tls_options *o, ioa_errinfo *ei) {
  X509_STORE *store = SSL_CTX_get_cert_store(c->ctx);
  int r = 0;
  if (o->ca_file && (r = load_file(store, "ca_file", o->ca_file, ei)) < 0)
    return r;
  if (o->ca_path) {
    if ((r = check_file("ca_path", o->ca_path, 1, ei)) < 0)
      return r;
    if ((r = load_dir(store, "ca_path", o->ca_path, ei)) < 0)
      return r;
  }
  if (o->ca_file || o->ca_path)
    return 0;
  /* The system's: OpenSSL's default file (SSL_CERT_FILE overrides), else
   * its default directory (SSL_CERT_DIR), read whole now. */
  const char *file = getenv(X509_get_default_cert_file_env());
  if (!file || !*file)
    file = X509_get_default_cert_file();
  struct stat st;
  if (file && stat(file, &st) == 0 && S_ISREG(st.st_mode))
    return load_file(store, "system trust store", file, ei) < 0 ? -ENOMEM : 0;
  const char *dir = getenv(X509_get_default_cert_dir_env());
  if (!dir || !*dir)
    dir = X509_get_default_cert_dir();
  if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
    r = load_dir(store, "system trust store", dir, ei);
    return r < 0 ? r : 0;
  }
  return errinfo_set(ei, IOA_ETLSCONFIG,
                     "no system trust store (%s, %s): install ca-certificates or set ca_file",
                     file ? file : "-", dir ? dir : "-");
}

/* "h2,http/1.1" into ALPN's wire form (length-prefixed).  Returns the
 * length or IOA_EBADPARAM. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap) {
  size_t used = 0;
  const char *p = list;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0 || n > 255 || used + 1 + n > cap)
      return IOA_EBADPARAM;
    out[used++] = (unsigned char)n;
    memcpy(out + used, p, n);
    used += n;
    if (!end)
      return (int)used;
    p = end + 1;
  }
}

static int version_ok(int v) { return v == 0 || v == IOA_TLS_VERSION_1_2 || v == IOA_TLS_VERSION_1_3; }

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);
static void keylog_cb(const SSL *ssl, const char *line);

static void config_free(ioa_tls_config *c) {
  ioa_tls_config_flush_sessions(c);
  if (c->keylog)
    fclose(c->keylog);
  SSL_CTX_free(c->ctx);
  pthread_mutex_destroy(&c->lock);
  ioa__free(c);
}

static int config_setup(ioa_tls_config *c, const ioa_tls_options *o, ioa_errinfo *ei) {
  SSL_CTX *ctx = c->ctx;
  int min = o->min_version ? o->min_version : IOA_TLS_VERSION_1_2;
  if (!SSL_CTX_set_min_proto_version(ctx, min) ||
      (o->max_version && !SSL_CTX_set_max_proto_version(ctx, o->max_version)))
    return -ENOMEM;
  /* Partial writes and a moving buffer: the stream offers its queue as it
   * is at each flush.  Idle connections give their record buffers back. */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  /* Read what the socket has, not record by record. */
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_verify(ctx, c->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  if (!c->insecure) {
    int r = load_trust(c, o, ei);
    if (r < 0)
      return r;
  }
  if (o->cert_file) {
    int r = check_file("cert_file", o->cert_file, 0, ei);
    if (r < 0)
      return r;
    if ((r = check_file("key_file", o->key_file, 0, ei)) < 0)
      return r;
    char why[128];
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
      return errinfo_set(ei, IOA_ETLSCONFIG, "cert_file %s: %s", o->cert_file,
                         ssl_reason(why, sizeof why, "not a PEM certificate"));
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
      unsigned long e = ERR_peek_error();
      if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        return errinfo_set(ei, IOA_ETLSCONFIG, "key_file %s does not match cert_file %s",
                           o->key_file, o->cert_file);
      }
      return errinfo_set(ei, IOA_ETLSCONFIG, "key_file %s: %s", o->key_file,
                         ssl_reason(why, sizeof why, "not a PEM private key"));
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();
      return errinfo_set(ei, IOA_ETLSCONFIG, "key_file %s does not match cert_file %s",
                         o->key_file, o->cert_file);
    }
  }
  if (o->alpn) {
    unsigned char wire[1024];
    int n = alpn_wire(o->alpn, wire, sizeof wire);
    if (n < 0)
      return errinfo_set(ei, IOA_EBADPARAM, "alpn \"%s\": protocols are 1..255 bytes, "
                                            "comma-separated", o->alpn);
    if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) != 0)
      return -ENOMEM;
  }
  if (c->cache_off) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  } else {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  }
  if (o->keylog_file) {
    c->keylog = fopen(o->keylog_file, "ae");
    if (!c->keylog)
      return errinfo_set(ei, IOA_ETLSCONFIG, "keylog_file %s: %s", o->keylog_file,
                         strerror(errno));
    SSL_CTX_set_keylog_callback(ctx, keylog_cb);
  }
  return 0;
}

int ioa_tls_config_new(const ioa_tls_options *opts, ioa_tls_config **out, ioa_errinfo *ei) {
  if (ei) {
    ei->code = 0;
    ei->message[0] = '\0';
  }
  if (!out)
    return errinfo_set(ei, IOA_EBADPARAM, "out is NULL");
  *out = NULL;
  ioa_tls_options o;
  ioa_tls_options_init(&o);
  if (opts && IOA__IMPORT(&o, opts) < 0)
    return errinfo_set(ei, IOA_EBADPARAM, "options not initialised by ioa_tls_options_init");
  if (!version_ok(o.min_version) || !version_ok(o.max_version) ||
      (o.max_version && o.max_version < (o.min_version ? o.min_version : IOA_TLS_VERSION_1_2)))
    return errinfo_set(ei, IOA_EBADPARAM, "min_version/max_version: 0, IOA_TLS_VERSION_1_2 or "
                                          "_1_3, max not below min");
  if (!o.cert_file != !o.key_file)
    return errinfo_set(ei, IOA_EBADPARAM, "cert_file and key_file go together");
  if (o.session_cache_size > 1000000u)
    return errinfo_set(ei, IOA_EBADPARAM, "session_cache_size above 1000000");
  int r = tls_init();
  if (r < 0)
    return errinfo_set(ei, r, "out of memory");
  ioa_tls_config *c = ioa__calloc(1, sizeof *c);
  if (!c)
    return errinfo_set(ei, -ENOMEM, "out of memory");
  atomic_init(&c->refs, 1);
  c->insecure = o.insecure_skip_verify != 0;
  c->cache_off = o.disable_session_cache != 0;
  c->cache_cap = o.session_cache_size ? o.session_cache_size : DEFAULT_SESSION_CACHE;
  ioa__list_init(&c->sessions);
  pthread_mutex_init(&c->lock, NULL);
  ERR_clear_error();
  c->ctx = SSL_CTX_new(TLS_client_method());
  if (!c->ctx) {
    ERR_clear_error();
    config_free(c);
    return errinfo_set(ei, -ENOMEM, "out of memory");
  }
  SSL_CTX_set_app_data(c->ctx, c);
  r = config_setup(c, &o, ei);
  ERR_clear_error();
  if (r < 0) {
    config_free(c);
    if (r == -ENOMEM)
      errinfo_set(ei, r, "out of memory");
    return r;
  }
  *out = c;
  return 0;
}

ioa_tls_config *ioa_tls_config_ref(ioa_tls_config *c) {
  if (c)
    atomic_fetch_add(&c->refs, 1);
  return c;
}

void ioa_tls_config_unref(ioa_tls_config *c) {
  if (c && atomic_fetch_sub(&c->refs, 1) == 1)
    config_free(c);
}

void ioa_tls_config_flush_sessions(ioa_tls_config *c) {
  if (!c)
    return;
  pthread_mutex_lock(&c->lock);
  for (ioa__list *n; (n = ioa__list_first(&c->sessions));) {
    sess_entry *e = IOA__CONTAINER_OF(n, sess_entry, node);
    ioa__list_remove(n);
    SSL_SESSION_free(e->sess);
    ioa__free(e);
  }
  c->nsessions = 0;
  pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------ transport */

typedef struct tls_tr {
  ioa__transport base;
  ioa_tls_config *cfg;
  SSL *ssl;
  int fd;
  int sys_errno;       /* errno of the BIO's last failing syscall, 0 if none */
  const char *sys_op;  /* its name: "read" or "write" */
  int fatal;           /* the code of the error that ended the session (0: none) */
  int established;
  char *name;          /* server name checked (NULL: none) */
  char *key;           /* session cache key (NULL: no caching) */
  unsigned char *obuf;   /* records gathered for one send (up to OBUF_SIZE) */
  size_t olen, ooff;     /* bytes in it, bytes of them sent */
  size_t ocap;           /* its size: small for handshake flights, grown for bulk */
  unsigned char *stage; /* small writes gathered into one record */
  size_t stage_len;     /* bytes staged and handed to SSL_write, not yet accepted */
  /* ioa_tls_stream_info's strings, built on first use */
  int info_built;
  char *alpn, *subject, *issuer, *sans_buf;
  const char **sans;
  size_t nsans;
  char msg[256];
} tls_tr;

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/* Send what the BIO gathered: 0 when all is out, -EAGAIN, or -errno (the
 * failing syscall noted for tr_fail).  The buffer goes once empty, so an
 * idle connection keeps none. */
static int obuf_send(tls_tr *t) {
  while (t->ooff < t->olen) {
    ssize_t n = ioa__sys_write(t->fd, t->obuf + t->ooff, t->olen - t->ooff);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return -EAGAIN;
      t->sys_errno = errno;
      t->sys_op = "write";
      return -errno;
    }
    t->ooff += (size_t)n;
  }
  ioa__free(t->obuf);
  t->obuf = NULL;
  t->olen = t->ooff = t->ocap = 0;
  return 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)num;
  (void)ptr;
  if (cmd != BIO_CTRL_FLUSH)
    return 0;
  /* OpenSSL flushes at the end of each handshake flight and after an
   * alert: the flight leaves in one segment. */
  tls_tr *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  int r = obuf_send(t);
  if (r == 0)
    return 1;
  if (r == -EAGAIN)
    BIO_set_retry_write(b);
  return 0;
}

/* Records are gathered here and sent by obuf_send: one syscall per flush
 * rather than one per record (each would be a sub-MSS segment that Nagle's
 * algorithm holds behind the previous one's ACK). */
static int bio_write(BIO *b, const char *buf, int len) {
  tls_tr *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (t->olen == OBUF_SIZE) {
    int r = obuf_send(t);
    if (r == -EAGAIN)
      BIO_set_retry_write(b);
    if (r < 0)
      return -1;
  }
  if (t->olen == t->ocap) {
    /* Handshake flights are small: start small (no 64 KiB churn per flight)
     * and grow for bulk. */
    size_t cap = t->ocap ? t->ocap * 4 : OBUF_FIRST;
    if (cap < t->olen + (size_t)len)
      cap = t->olen + (size_t)len;
    if (cap > OBUF_SIZE)
      cap = OBUF_SIZE;
    unsigned char *nb = ioa__realloc(t->obuf, cap);
    if (!nb) {
      t->sys_errno = ENOMEM;
      t->sys_op = "write";
      return -1;
    }
    t->obuf = nb;
    t->ocap = cap;
  }
  size_t n = t->ocap - t->olen < (size_t)len ? t->ocap - t->olen : (size_t)len;
  memcpy(t->obuf + t->olen, buf, n);
  t->olen += n;
  return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
  tls_tr *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  ssize_t n;
  do
    n = ioa__sys_read(t->fd, buf, (size_t)len);
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    return (int)n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    BIO_set_retry_read(b);
  } else {
    t->sys_errno = errno;
    t->sys_op = "read";
  }
  return -1;
}

static void cache_drop(tls_tr *t);
static void tr_msg(tls_tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr_msg(tls_tr *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->msg, sizeof t->msg, fmt, ap);
  va_end(ap);
  t->base.err_message = t->msg;
}

/* Before each SSL call. */
static void tr_begin(tls_tr *t) {
  ERR_clear_error();
  t->sys_errno = 0;
}

/* An SSL call returned ret <= 0: classify, drain the error queue.  Returns
 * -EAGAIN (with *want), 0 for a clean close_notify, or a code with
 * err_syscall and err_message set. */
static int tr_fail(tls_tr *t, int ret, unsigned *want, const char *during) {
  int e = SSL_get_error(t->ssl, ret);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    *want = e == SSL_ERROR_WANT_READ ? IOA_READ : IOA_WRITE;
    return -EAGAIN;
  }
  if (e == SSL_ERROR_ZERO_RETURN && !during) {
    ERR_clear_error();
    return 0;
  }
  unsigned long code = ERR_get_error();
  int lib = code ? ERR_GET_LIB(code) : 0;
  int reason = code ? ERR_GET_REASON(code) : 0;
  const char *rs = code ? ERR_reason_error_string(code) : NULL;
  const char *ctx = during ? during : "";
  int err;
  t->base.err_syscall = "tls";
  if (t->sys_errno && (e == SSL_ERROR_SYSCALL || !code)) {
    /* The socket failed under it: report the syscall, as a plain stream
     * does ("read" ECONNRESET). */
    err = -t->sys_errno;
    t->base.err_syscall = t->sys_op;
    tr_msg(t, "%s%s: %s", t->sys_op, ctx, strerror(t->sys_errno));
  } else if (reason == ERR_R_MALLOC_FAILURE) {
    err = -ENOMEM;
    tr_msg(t, "out of memory%s", ctx);
  } else if (lib == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long v = SSL_get_verify_result(t->ssl);
    err = IOA_ETLSVERIFY;
    tr_msg(t, "%s (server name \"%s\")",
           v != X509_V_OK ? X509_verify_cert_error_string(v) : "certificate verify failed",
           t->name ? t->name : "");
  } else if (lib == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET &&
             reason < SSL_AD_REASON_OFFSET + 256) {
    err = IOA_ETLSALERT;
    tr_msg(t, "received alert \"%s\"%s (%s)",
           SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET), ctx,
           rs ? rs : "alert");
  } else if ((lib == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
             (e == SSL_ERROR_SYSCALL && !code) || e == SSL_ERROR_ZERO_RETURN) {
    err = IOA_ETLSEOF;
    tr_msg(t, during ? "the peer closed the connection%s" : "the peer closed the connection "
                                                            "without close_notify%s",
           ctx);
  } else {
    err = IOA_ETLSPROTO;
    tr_msg(t, "%s%s", rs ? rs : "TLS failure", ctx);
  }
  ERR_clear_error();
  t->fatal = err;
  if (ioa_err_is_tls(err) && err != IOA_ETLSEOF)
    cache_drop(t);
  return err;
}

/* The buffered records, sent as a transport operation would: 0, or
 * -EAGAIN with *want, or a failure (fatal: the stream is broken). */
static int tr_send(tls_tr *t, unsigned *want) {
  int r = obuf_send(t);
  if (r == 0)
    return 0;
  if (r == -EAGAIN) {
    *want = IOA_WRITE;
    return r;
  }
  t->base.err_syscall = t->sys_op;
  tr_msg(t, "%s: %s", t->sys_op, strerror(t->sys_errno));
  t->fatal = r;
  return r;
}

static int tr_handshake(ioa__transport *base, unsigned *want) {
  tls_tr *t = (tls_tr *)base;
  if (t->fatal)
    return t->fatal;
  tr_begin(t);
  int r = SSL_do_handshake(t->ssl);
  if (r == 1) {
    ERR_clear_error();
    /* Complete once the last flight is out (called again, the handshake
     * returns 1 at once and the rest is sent). */
    r = tr_send(t, want);
    if (r == 0)
      t->established = 1;
    return r;
  }
  r = tr_fail(t, r, want, " during the TLS handshake");
  return r == 0 ? IOA_ETLSEOF : r;
}

static ssize_t tr_read(ioa__transport *base, void *buf, size_t n, unsigned *want) {
  tls_tr *t = (tls_tr *)base;
  if (t->fatal)
    return t->fatal;
  size_t got = 0;
  tr_begin(t);
  if (SSL_read_ex(t->ssl, buf, n, &got) == 1)
    return (ssize_t)got;
  return tr_fail(t, 0, want, NULL);
}

/* One SSL_write_ex: 1 and *done, or tr_fail's code. */
static int tr_write1(tls_tr *t, const void *p, size_t len, size_t *done, unsigned *want) {
  for (;;) {
    tr_begin(t);
    if (SSL_write_ex(t->ssl, p, len, done) == 1)
      return 1;
    int r = tr_fail(t, 0, want, NULL);
    if (r == -EAGAIN && *want == IOA_WRITE && t->olen == OBUF_SIZE) {
      /* The gathering buffer is full: send it, then the same write again
       * (as OpenSSL requires after a retry). */
      r = tr_send(t, want);
      if (r == 0)
        continue;
    }
    return r == 0 ? IOA_ETLSEOF : r;
  }
}

static ssize_t tr_writev(ioa__transport *base, const struct iovec *iov, int iovcnt,
                         unsigned *want) {
  tls_tr *t = (tls_tr *)base;
  if (t->fatal)
    return t->fatal;
  /* Records from an earlier call first. */
  int r = tr_send(t, want);
  if (r < 0)
    return r;
  size_t total = 0;
  int i = 0;
  size_t off = 0; /* into iov[i] */
  while (i < iovcnt) {
    size_t left = iov[i].iov_len - off;
    if (left == 0) {
      i++;
      off = 0;
      continue;
    }
    const unsigned char *p = (const unsigned char *)iov[i].iov_base + off;
    size_t done = 0;
    if (t->stage_len == 0 && left >= STAGE_MIN) {
      /* Large enough for a record of its own. */
      r = tr_write1(t, p, left, &done, want);
    } else {
      if (t->stage_len == 0) {
        /* Gather small pieces (the front of the queue) into one record.
         * Once handed to SSL_write they stay staged until accepted: a
         * blocked write is retried with the same bytes, which are still
         * the front of the caller's queue. */
        if (!t->stage && !(t->stage = ioa__malloc(STAGE_SIZE))) {
          if (total)
            break;
          t->base.err_syscall = "tls";
          tr_msg(t, "out of memory");
          return -ENOMEM;
        }
        size_t k = 0, o = off;
        for (int j = i; j < iovcnt && k < STAGE_SIZE; j++, o = 0) {
          size_t m = iov[j].iov_len - o;
          if (m > STAGE_SIZE - k)
            m = STAGE_SIZE - k;
          memcpy(t->stage + k, (const unsigned char *)iov[j].iov_base + o, m);
          k += m;
        }
        t->stage_len = k;
      }
      r = tr_write1(t, t->stage, t->stage_len, &done, want);
      if (r == 1 && done < t->stage_len) {
        /* A record shorter than the stage: the rest is the next write. */
        memmove(t->stage, t->stage + done, t->stage_len - done);
        t->stage_len -= done;
      } else if (r == 1) {
        t->stage_len = 0;
        ioa__free(t->stage); /* idle streams keep no staging buffer */
        t->stage = NULL;
      }
    }
    if (r != 1) {
      if (total)
        break; /* report what was taken; the failure comes back next call */
      return r;
    }
    total += done;
    /* Advance over what was accepted. */
    while (done > 0 && i < iovcnt) {
      size_t m = iov[i].iov_len - off;
      if (done < m) {
        off += done;
        done = 0;
      } else {
        done -= m;
        i++;
        off = 0;
      }
    }
  }
  /* Out they go; what the socket does not take now waits for the stream's
   * flush, which it calls once its queue is empty. */
  unsigned ignore;
  (void)tr_send(t, &ignore);
  return (ssize_t)total;
}

static int tr_flush(ioa__transport *base, unsigned *want) {
  tls_tr *t = (tls_tr *)base;
  if (t->fatal)
    return t->olen ? t->fatal : 0;
  return tr_send(t, want);
}

static int tr_shutdown(ioa__transport *base, unsigned *want) {
  tls_tr *t = (tls_tr *)base;
  if (t->fatal || !t->established)
    return 0; /* after a fatal error a close_notify must not be sent */
  if (!(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
    tr_begin(t);
    int r = SSL_shutdown(t->ssl);
    if (r < 0) {
      r = tr_fail(t, r, want, " sending close_notify");
      if (r != -EAGAIN)
        return r == 0 ? IOA_ETLSEOF : r;
    }
    ERR_clear_error();
  }
  return tr_send(t, want);
}

static unsigned tr_pending(const ioa__transport *base) {
  const tls_tr *t = (const tls_tr *)base;
  if (t->fatal)
    return 0;
  return (SSL_has_pending(t->ssl) ? IOA__TR_IN : 0u) | (t->olen > t->ooff ? IOA__TR_OUT : 0u);
}

static void tr_free(ioa__transport *base) {
  tls_tr *t = (tls_tr *)base;
  SSL_free(t->ssl); /* and its BIO */
  ERR_clear_error();
  ioa_tls_config_unref(t->cfg);
  ioa__free(t->obuf);
  ioa__free(t->name);
  ioa__free(t->key);
  ioa__free(t->stage);
  ioa__free(t->alpn);
  ioa__free(t->subject);
  ioa__free(t->issuer);
  ioa__free(t->sans_buf);
  ioa__free(t->sans);
  ioa__free(t);
}

static const ioa__transport_ops tls_ops = {
    .handshake = tr_handshake,
    .read = tr_read,
    .writev = tr_writev,
    .shutdown = tr_shutdown,
    .flush = tr_flush,
    .pending = tr_pending,
    .free = tr_free,
};

/* ------------------------------------------------------------ sessions */

static sess_entry *cache_find(ioa_tls_config *c, const char *key) {
  IOA__LIST_FOREACH(n, &c->sessions) {
    sess_entry *e = IOA__CONTAINER_OF(n, sess_entry, node);
    if (strcmp(e->key, key) == 0)
      return e;
  }
  return NULL;
}

/* OpenSSL found a resumable session (a TLS 1.3 ticket arrives after the
 * handshake, from a read): keep a copy of the newest per key.  Copies, both
 * ways: OpenSSL marks a connection's session unusable when that connection
 * ends without close_notify or with an error, and the cache is read from
 * other threads, so it never shares a session object with a connection. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  tls_tr *t = SSL_get_app_data(ssl);
  if (!t || !t->key || !SSL_SESSION_is_resumable(sess))
    return 0;
  ioa_tls_config *c = t->cfg;
  size_t klen = strlen(t->key);
  SSL_SESSION *copy = SSL_SESSION_dup(sess);
  if (!copy) {
    ERR_clear_error();
    return 0; /* no resumption next time */
  }
  pthread_mutex_lock(&c->lock);
  sess_entry *e = cache_find(c, t->key);
  if (e) {
    SSL_SESSION_free(e->sess);
    ioa__list_remove(&e->node);
  } else {
    e = ioa__malloc(sizeof *e + klen + 1);
    if (!e) {
      pthread_mutex_unlock(&c->lock);
      SSL_SESSION_free(copy);
      return 0;
    }
    memcpy(e->key, t->key, klen + 1);
    c->nsessions++;
  }
  e->sess = copy;
  ioa__list_push_front(&c->sessions, &e->node);
  while (c->nsessions > c->cache_cap) {
    sess_entry *old = IOA__CONTAINER_OF(c->sessions.prev, sess_entry, node);
    ioa__list_remove(&old->node);
    SSL_SESSION_free(old->sess);
    ioa__free(old);
    c->nsessions--;
  }
  pthread_mutex_unlock(&c->lock);
  return 0; /* OpenSSL keeps its own reference */
}

/* A session that ended in a TLS error is not offered again. */
static void cache_drop(tls_tr *t) {
  if (!t->key)
    return;
  ioa_tls_config *c = t->cfg;
  pthread_mutex_lock(&c->lock);
  sess_entry *e = cache_find(c, t->key);
  if (e) {
    ioa__list_remove(&e->node);
    SSL_SESSION_free(e->sess);
    ioa__free(e);
    c->nsessions--;
  }
  pthread_mutex_unlock(&c->lock);
}

static void keylog_cb(const SSL *ssl, const char *line) {
  tls_tr *t = SSL_get_app_data(ssl);
  if (!t || !t->cfg->keylog)
    return;
  pthread_mutex_lock(&t->cfg->lock);
  fprintf(t->cfg->keylog, "%s\n", line);
  fflush(t->cfg->keylog);
  pthread_mutex_unlock(&t->cfg->lock);
}

/* ------------------------------------------------------------ new transport */

static char *dup_n(const char *s, size_t n) {
  char *d = ioa__malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* Is name an IP literal (an IPv6 one may carry a %scope)?  The address
 * part goes to ip (at least INET6_ADDRSTRLEN bytes). */
static int ip_literal(const char *name, char *ip, size_t cap) {
  unsigned char buf[sizeof(struct in6_addr)];
  size_t n = strcspn(name, "%");
  if (n >= cap)
    return 0;
  memcpy(ip, name, n);
  ip[n] = '\0';
  if (inet_pton(AF_INET, ip, buf) == 1)
    return name[n] == '\0';
  return inet_pton(AF_INET6, ip, buf) == 1;
}

int ioa__tls_check_name(const char *name) {
  if (!name)
    return 0;
  size_t n = strlen(name);
  if (n == 0 || n > 253 + 1)
    return IOA_EBADPARAM;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '\\')
      return IOA_EBADPARAM;
  }
  return 0;
}

int ioa__tls_transport_new(ioa_tls_config *c, int fd, const char *server_name,
                           const struct sockaddr *peer, socklen_t peerlen, ioa__transport **out) {
  *out = NULL;
  char ip[INET6_ADDRSTRLEN + 8];
  char port[16] = "";
  const char *name = server_name;
  if (peer && peer->sa_family == AF_INET && peerlen >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)peer;
    snprintf(port, sizeof port, "%u", ntohs(s4->sin_port));
    if (!name && inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip))
      name = ip;
  } else if (peer && peer->sa_family == AF_INET6 && peerlen >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)peer;
    snprintf(port, sizeof port, "%u", ntohs(s6->sin6_port));
    if (!name && inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip))
      name = ip;
  }
  if (!name && !c->insecure)
    return IOA_EBADPARAM; /* nothing to verify against */
  if (ioa__tls_check_name(name) < 0)
    return IOA_EBADPARAM;
  tls_tr *t = ioa__calloc(1, sizeof *t);
  if (!t)
    return -ENOMEM;
  if (peer && (peer->sa_family == AF_INET || peer->sa_family == AF_INET6)) {
    /* Records are gathered already; Nagle would only hold the first request
     * behind the ACK of the handshake's last flight (a delayed ACK: 40 ms).
     * Go, curl and asyncio set it too.  A failure costs only latency. */
    int one = 1;
    (void)ioa__sys_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  t->fd = fd;
  t->cfg = ioa_tls_config_ref(c);
  t->base.ops = &tls_ops;
  t->base.err_syscall = "tls";
  int r = -ENOMEM;
  size_t nlen = name ? strlen(name) : 0;
  if (nlen && name[nlen - 1] == '.')
    nlen--; /* "example.com." is example.com, for SNI and the check */
  char ipbuf[INET6_ADDRSTRLEN + 8];
  int is_ip = 0;
  if (name) {
    if (!(t->name = dup_n(name, nlen)))
      goto fail;
    is_ip = ip_literal(t->name, ipbuf, sizeof ipbuf);
    if (!c->cache_off) {
      size_t klen = nlen + 1 + strlen(port);
      if (!(t->key = ioa__malloc(klen + 1)))
        goto fail;
      snprintf(t->key, klen + 1, "%s:%s", t->name, port);
    }
  }
  ERR_clear_error();
  t->ssl = SSL_new(c->ctx);
  if (!t->ssl)
    goto fail_ssl;
  SSL_set_app_data(t->ssl, t);
  BIO *bio = BIO_new(bio_method);
  if (!bio)
    goto fail_ssl;
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  SSL_set_connect_state(t->ssl);
  if (t->name && !is_ip && SSL_set_tlsext_host_name(t->ssl, t->name) != 1)
    goto fail_ssl;
  if (t->name && !c->insecure) {
    if (is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ipbuf) != 1)
        goto fail_ssl;
    } else {
      SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (SSL_set1_host(t->ssl, t->name) != 1)
        goto fail_ssl;
    }
  }
  if (t->key) {
    pthread_mutex_lock(&c->lock);
    sess_entry *e = cache_find(c, t->key);
    SSL_SESSION *copy = NULL;
    if (e) {
      ioa__list_remove(&e->node);
      ioa__list_push_front(&c->sessions, &e->node);
      copy = SSL_SESSION_dup(e->sess);
    }
    pthread_mutex_unlock(&c->lock);
    if (copy) {
      (void)SSL_set_session(t->ssl, copy); /* takes its own reference */
      SSL_SESSION_free(copy);
    }
    ERR_clear_error(); /* a failed copy only costs the resumption */
  }
  ERR_clear_error();
  *out = &t->base;
  return 0;
fail_ssl:
  {
    unsigned long e = ERR_peek_error();
    r = e && ERR_GET_REASON(e) != ERR_R_MALLOC_FAILURE ? IOA_EBADPARAM : -ENOMEM;
  }
  ERR_clear_error();
fail:
  tr_free(&t->base);
  return r;
}

static int transport_for_fd(ioa_tls_config *c, int fd, const char *server_name,
                            ioa__transport **out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (ioa__sys_getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
    *out = NULL;
    return errno == ENOTSOCK ? IOA_EBADPARAM : -errno;
  }
  return ioa__tls_transport_new(c, fd, server_name, (struct sockaddr *)&ss, len, out);
}

/* ------------------------------------------------------------ info */

static const tls_tr *stream_tls(const ioa_stream *s) {
  const ioa__transport *t = s ? ioa__stream_transport(s) : NULL;
  return t && t->ops == &tls_ops ? (const tls_tr *)t : NULL;
}

int ioa_tls_stream_is_tls(const ioa_stream *s) { return stream_tls(s) != NULL; }

const char *ioa_tls_stream_error(const ioa_stream *s) {
  const tls_tr *t = stream_tls(s);
  return t && t->base.err_message ? t->base.err_message : NULL;
}

/* X509_NAME as RFC 2253 text, malloc'd. */
static char *name_text(const X509_NAME *n) {
  BIO *b = BIO_new(BIO_s_mem());
  if (!b)
    return NULL;
  char *out = NULL;
  if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
    char *p;
    long len = BIO_get_mem_data(b, &p);
    if (len >= 0)
      out = dup_n(p, (size_t)len);
  }
  BIO_free(b);
  return out;
}

/* "DNS:x", "IP:1.2.3.4", ... one after the other in one buffer. */
static int build_sans(tls_tr *t, X509 *cert) {
  GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  if (!gens)
    return 0;
  int n = sk_GENERAL_NAME_num(gens);
  size_t cap = 0;
  for (int i = 0; i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI)
      cap += 8 + (size_t)ASN1_STRING_length(g->d.ia5);
    else if (g->type == GEN_IPADD)
      cap += 8 + INET6_ADDRSTRLEN;
  }
  int r = 0;
  if (cap) {
    t->sans_buf = ioa__malloc(cap);
    t->sans = ioa__malloc((size_t)n * sizeof *t->sans);
    if (!t->sans_buf || !t->sans) {
      r = -ENOMEM;
      goto out;
    }
    size_t used = 0;
    for (int i = 0; i < n; i++) {
      const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
      char *dst = t->sans_buf + used;
      int k = -1;
      if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
        const char *pre = g->type == GEN_DNS ? "DNS" : g->type == GEN_EMAIL ? "email" : "URI";
        k = snprintf(dst, cap - used, "%s:%.*s", pre, ASN1_STRING_length(g->d.ia5),
                     (const char *)ASN1_STRING_get0_data(g->d.ia5));
      } else if (g->type == GEN_IPADD) {
        char ipt[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(g->d.ip);
        int fam = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
        if (fam && inet_ntop(fam, ASN1_STRING_get0_data(g->d.ip), ipt, sizeof ipt))
          k = snprintf(dst, cap - used, "IP:%s", ipt);
      }
      if (k < 0 || (size_t)k >= cap - used)
        continue;
      t->sans[t->nsans++] = dst;
      used += (size_t)k + 1;
    }
  }
out:
  GENERAL_NAMES_free(gens);
  return r;
}

static int build_info(tls_tr *t) {
  if (t->info_built)
    return 0;
  const unsigned char *alpn = NULL;
  unsigned alen = 0;
  SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
  if (alpn && alen && !(t->alpn = dup_n((const char *)alpn, alen)))
    return -ENOMEM;
  X509 *cert = SSL_get0_peer_certificate(t->ssl);
  if (cert) {
    ERR_clear_error();
    t->subject = name_text(X509_get_subject_name(cert));
    t->issuer = name_text(X509_get_issuer_name(cert));
    int r = build_sans(t, cert);
    ERR_clear_error();
    if (!t->subject || !t->issuer || r < 0)
      return -ENOMEM;
  }
  t->info_built = 1;
  return 0;
}

int ioa_tls_stream_info(const ioa_stream *s, ioa_tls_info *info) {
  tls_tr *t = (tls_tr *)(uintptr_t)stream_tls(s);
  if (!t || !info || info->struct_size < sizeof(size_t) || !t->established ||
      !ioa__stream_established(s))
    return IOA_EBADPARAM;
  if (!t->info_built) {
    /* Partial strings from a failed try are dropped before the next. */
    ioa__free(t->alpn);
    ioa__free(t->subject);
    ioa__free(t->issuer);
    ioa__free(t->sans_buf);
    ioa__free(t->sans);
    t->alpn = t->subject = t->issuer = t->sans_buf = NULL;
    t->sans = NULL;
    t->nsans = 0;
    int r = build_info(t);
    if (r < 0)
      return r;
  }
  ioa_tls_info v;
  memset(&v, 0, sizeof v);
  v.struct_size = sizeof v;
  v.version = SSL_get_version(t->ssl);
  v.cipher = SSL_get_cipher_name(t->ssl);
  v.alpn = t->alpn;
  v.resumed = SSL_session_reused(t->ssl);
  v.verify_result = SSL_get_verify_result(t->ssl);
  v.verify_message = X509_verify_cert_error_string(v.verify_result);
  v.verified = !t->cfg->insecure && v.verify_result == X509_V_OK;
  v.server_name = t->name;
  v.peer_subject = t->subject;
  v.peer_issuer = t->issuer;
  v.peer_sans = t->sans;
  v.npeer_sans = t->nsans;
  size_t n = info->struct_size < sizeof v ? info->struct_size : sizeof v;
  size_t caller = info->struct_size;
  memcpy(info, &v, n);
  info->struct_size = caller;
  return 0;
}

int ioa__tls_insecure(const ioa_tls_config *c) { return c->insecure; }

/* ------------------------------------------------------------ upgrade */

struct ioa_tls_upgrade {
  ioa_stream *s;
  ioa_timer timer;
  ioa_tls_done_cb cb;
  void *data;
  unsigned timeout_ms;
  int owns_stream; /* ioa_tls_upgrade_fd: the stream is ours until success */
  int in_cb;
};

static void upgrade_finish(ioa_tls_upgrade *u, int err, const char *msg, int stream_gone) {
  ioa_timer_stop(&u->timer);
  ioa_stream *s = u->s;
  if (err < 0 && !stream_gone) {
    ioa__stream_detach_handshake(s);
    if (u->owns_stream) {
      ioa_stream_free(s);
      s = NULL;
    } else {
      ioa_stream_close(s);
    }
  } else if (stream_gone) {
    s = NULL;
  }
  u->in_cb = 1;
  u->cb(u, s, err, err < 0 ? (msg ? msg : ioa_strerror(err)) : NULL, u->data);
  ioa__free(u);
}

static void upgrade_hs_done(ioa_stream *s, int err, const char *msg, void *data) {
  ioa_tls_upgrade *u = data;
  upgrade_finish(u, err, msg, ioa__stream_freed(s));
}

static void upgrade_timeout(ioa_timer *tm, void *data) {
  ioa_tls_upgrade *u = data;
  (void)tm;
  char msg[96];
  snprintf(msg, sizeof msg, "the TLS handshake did not finish within %u ms", u->timeout_ms);
  upgrade_finish(u, -ETIMEDOUT, msg, 0);
}

void ioa_tls_upgrade_cancel(ioa_tls_upgrade *u) {
  if (!u || u->in_cb)
    return;
  upgrade_finish(u, -ECANCELED, "the TLS upgrade was cancelled", 0);
}

static int upgrade_start(ioa_stream *s, int owns, const ioa_tls_upgrade_params *pp,
                         ioa_tls_upgrade **out) {
  ioa__transport *tr;
  int r = transport_for_fd(pp->config, ioa_stream_fd(s), pp->server_name, &tr);
  if (r < 0)
    return r;
  ioa_tls_upgrade *u = ioa__calloc(1, sizeof *u);
  if (!u) {
    tr->ops->free(tr);
    return -ENOMEM;
  }
  u->s = s;
  u->cb = pp->on_done;
  u->data = pp->data;
  u->owns_stream = owns;
  u->timeout_ms = pp->timeout_ms;
  ioa_timer_init(ioa_stream_loop(s), &u->timer, upgrade_timeout, u);
  if (pp->timeout_ms &&
      (r = ioa_timer_start(&u->timer, (uint64_t)pp->timeout_ms * 1000000u, 0)) < 0) {
    tr->ops->free(tr);
    ioa__free(u);
    return r;
  }
  r = ioa__stream_start_transport(s, tr, upgrade_hs_done, u);
  if (r < 0) {
    ioa_timer_stop(&u->timer);
    tr->ops->free(tr);
    ioa__free(u);
    return r;
  }
  if (out)
    *out = u;
  return 0;
}

static int upgrade_params(const ioa_tls_upgrade_params *p, ioa_tls_upgrade_params *pp) {
  ioa_tls_upgrade_params_init(pp);
  if (!p || IOA__IMPORT(pp, p) < 0 || !pp->config || !pp->on_done ||
      ioa__tls_check_name(pp->server_name) < 0)
    return IOA_EBADPARAM;
  return 0;
}

int ioa_tls_upgrade_stream(ioa_stream *s, const ioa_tls_upgrade_params *p, ioa_tls_upgrade **out) {
  if (out)
    *out = NULL;
  ioa_tls_upgrade_params pp;
  if (!s || upgrade_params(p, &pp) < 0 || ioa_stream_fd(s) < 0)
    return IOA_EBADPARAM;
  return upgrade_start(s, 0, &pp, out);
}

int ioa_tls_upgrade_fd(ioa_loop *loop, int fd, const ioa_stream_options *opts,
                       const ioa_tls_upgrade_params *p, ioa_tls_upgrade **out) {
  if (out)
    *out = NULL;
  ioa_tls_upgrade_params pp;
  if (!loop || fd < 0 || upgrade_params(p, &pp) < 0)
    return IOA_EBADPARAM;
  ioa_stream *s;
  int r = ioa_stream_new(loop, fd, opts, &s);
  if (r < 0)
    return r;
  r = upgrade_start(s, 1, &pp, out);
  if (r < 0) {
    /* The fd is still the caller's: take it back from the stream. */
    ioa__stream_release_fd(s);
    ioa_stream_free(s);
  }
  return r;
}

#else /* !IOA_HAVE_TLS */

int ioa_tls_available(void) { return 0; }

int ioa_tls_config_new(const ioa_tls_options *opts, ioa_tls_config **out, ioa_errinfo *err) {
  (void)opts;
  if (out)
    *out = NULL;
  if (err) {
    err->code = IOA_ENOTLS;
    snprintf(err->message, sizeof err->message, "%s", ioa_strerror(IOA_ENOTLS));
  }
  return IOA_ENOTLS;
}
ioa_tls_config *ioa_tls_config_ref(ioa_tls_config *c) { return c; }
void ioa_tls_config_unref(ioa_tls_config *c) { (void)c; }
void ioa_tls_config_flush_sessions(ioa_tls_config *c) { (void)c; }
int ioa_tls_stream_is_tls(const ioa_stream *s) {
  (void)s;
  return 0;
}
int ioa_tls_stream_info(const ioa_stream *s, ioa_tls_info *info) {
  (void)s;
  (void)info;
  return IOA_EBADPARAM;
}
const char *ioa_tls_stream_error(const ioa_stream *s) {
  (void)s;
  return NULL;
}
int ioa_tls_upgrade_stream(ioa_stream *s, const ioa_tls_upgrade_params *p, ioa_tls_upgrade **out) {
  (void)s;
  (void)p;
  if (out)
    *out = NULL;
  return IOA_ENOTLS;
}
int ioa_tls_upgrade_fd(ioa_loop *loop, int fd, const ioa_stream_options *opts,
                       const ioa_tls_upgrade_params *p, ioa_tls_upgrade **out) {
  (void)loop;
  (void)fd;
  (void)opts;
  (void)p;
  if (out)
    *out = NULL;
  return IOA_ENOTLS;
}
void ioa_tls_upgrade_cancel(ioa_tls_upgrade *u) { (void)u; }
int ioa__tls_transport_new(ioa_tls_config *c, int fd, const char *server_name,
                           const struct sockaddr *peer, socklen_t peerlen, ioa__transport **out) {
  (void)c;
  (void)fd;
  (void)server_name;
  (void)peer;
  (void)peerlen;
  *out = NULL;
  return IOA_ENOTLS;
}
int ioa__tls_check_name(const char *name) {
  (void)name;
  return 0;
}
int ioa__tls_insecure(const ioa_tls_config *c) {
  (void)c;
  return 0;
}

#endif
