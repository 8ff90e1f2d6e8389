/* SPDX-License-Identifier: MIT */
/* Address descriptions: build, parse, format and compare ioa_addr values.
 *
 * Every input is treated as untrusted: explicit lengths throughout (so a NUL
 * byte is an error, never a silent cut), nothing is truncated, and every
 * failure carries a specific message.  Messages quote the offending input
 * escaped and capped, so they stay readable and bounded whatever it holds.
 */
#include "ioasync/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "addr_internal.h"
#include "alloc.h"
#include "ioasync/error.h"

#define UNIX_PATH_OFFSET offsetof(struct sockaddr_un, sun_path)
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

/* The kernel's socket type field is 4 bits wide (SOCK_TYPE_MASK). */
#define SOCKTYPE_MAX 15
#define PROTOCOL_MAX 255
#define PORT_MAX 65535

_Static_assert(IOA_ADDR_UNIX_PATH_MAX == SUN_PATH_SIZE - 1, "sun_path size changed");
_Static_assert(IOA_ADDR_UNIX_ABSTRACT_MAX == SUN_PATH_SIZE - 1, "sun_path size changed");

/* ---- error reporting ---- */

static int fail(ioa_errinfo *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(ioa_errinfo *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

static void clear_err(ioa_errinfo *err) {
  if (err) {
    err->code = 0;
    err->message[0] = '\0';
  }
}

/* Input echoed in a message: printable ASCII as is, other bytes as \xHH,
 * at most QUOTE_MAX input bytes then "...". */
#define QUOTE_MAX 40
typedef struct quoted {
  char s[QUOTE_MAX * 4 + 4];
} quoted;

static quoted quote(const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  quoted q;
  size_t o = 0;
  size_t lim = n > QUOTE_MAX ? QUOTE_MAX : n;
  for (size_t i = 0; i < lim; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      q.s[o++] = (char)c;
    } else {
      q.s[o++] = '\\';
      q.s[o++] = 'x';
      q.s[o++] = hex[c >> 4];
      q.s[o++] = hex[c & 15];
    }
  }
  if (lim < n) {
    memcpy(q.s + o, "...", 3);
    o += 3;
  }
  q.s[o] = '\0';
  return q;
}

#define Q(str, n) (quote((str), (n)).s)
#define QS(str) Q((str), strlen(str))

/* ---- small parsers ---- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int all_digits(const char *s, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!is_digit(s[i]))
      return 0;
  return 1;
}

enum { NUM_OK = 0, NUM_NOT_NUMBER = -1, NUM_RANGE = -2 };

/* Plain decimal digits only (leading zeros allowed, no sign or spaces). */
static int parse_uint(const char *s, size_t n, uint32_t max, uint32_t *out) {
  if (!all_digits(s, n))
    return NUM_NOT_NUMBER;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > max)
      return NUM_RANGE;
  }
  *out = (uint32_t)v;
  return NUM_OK;
}

static int check_socktype(int socktype, ioa_errinfo *err) {
  if (socktype < 0 || socktype > SOCKTYPE_MAX)
    return fail(err, IOA_EADDRSOCKTYPE, "socktype %d out of range 0-%d", socktype, SOCKTYPE_MAX);
  return 0;
}

static int check_protocol(int protocol, ioa_errinfo *err) {
  if (protocol < 0 || protocol > PROTOCOL_MAX)
    return fail(err, IOA_EADDRPROTOCOL, "protocol %d out of range 0-%d", protocol, PROTOCOL_MAX);
  return 0;
}

static int check_port(int port, ioa_errinfo *err) {
  if (port < 0 || port > PORT_MAX)
    return fail(err, IOA_EADDRPORT, "port '%d' out of range 0-%d", port, PORT_MAX);
  return 0;
}

/* One mapping for every service name (addresses and lookups alike). */
int ioa__service_port(const char *name, size_t len, int socktype, int *port) {
  char cname[IOA__SERVICE_NAME_MAX + 1];
  if (len == 0 || len > IOA__SERVICE_NAME_MAX)
    return -ENOENT;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
      return -ENOENT; /* names are printable ASCII (RFC 6335): never looked up */
  memcpy(cname, name, len);
  cname[len] = '\0';
  const char *proto = ioa__service_proto(socktype);
  /* glibc fails with ERANGE when an entry (any line it reads on the way)
   * does not fit: grow the buffer, within a bound. */
  char stack[1024], *heap = NULL, *buf = stack;
  size_t size = sizeof stack;
  int rc;
  for (;;) {
    struct servent ent, *res = NULL;
    int e = getservbyname_r(cname, proto, &ent, buf, size, &res);
    if (e == 0 && res) {
      *port = ntohs((uint16_t)res->s_port);
      rc = 0;
      break;
    }
    if (e != ERANGE) {
      rc = e == 0 || e == ENOENT ? -ENOENT : -e;
      break;
    }
    if (size >= IOA__SERVICE_BUF_MAX) {
      rc = -ERANGE;
      break;
    }
    size *= 2;
    ioa__free(heap);
    buf = heap = ioa__malloc(size);
    if (!heap) {
      rc = -ENOMEM;
      break;
    }
  }
  ioa__free(heap);
  return rc;
}

/* ioa__service_port's outcome as an address error: always IOA_EADDRSERVICE
 * (ioa_addr(3)), with what went wrong in the message. */
static int service_port(const char *s, size_t n, int socktype, int *port, ioa_errinfo *err) {
  const char *proto = ioa__service_proto(socktype);
  int e = ioa__service_port(s, n, socktype, port);
  if (e == 0)
    return 0;
  if (e == -ENOENT)
    return fail(err, IOA_EADDRSERVICE, "unknown service '%s'%s%s", Q(s, n), proto ? " for " : "",
                proto ? proto : "");
  if (e == -ERANGE)
    return fail(err, IOA_EADDRSERVICE,
                "service '%s': the services database has an entry over %d bytes", Q(s, n),
                IOA__SERVICE_BUF_MAX);
  return fail(err, IOA_EADDRSERVICE, "service '%s': cannot read the services database: %s",
              Q(s, n), ioa_strerror(e));
}

/* A port as text: decimal, or (with IOA_ADDR_PARSE_SERVICE) a service name
 * from /etc/services.  Service names begin with a letter (RFC 6335), so
 * "+80", " 80" and "80x" are junk in a number, never looked up. */
static int parse_port(const char *s, size_t n, unsigned flags, int socktype, int *port,
                      ioa_errinfo *err) {
  if (n == 0)
    return fail(err, IOA_EADDREMPTY, "port is empty");
  uint32_t v;
  int r = parse_uint(s, n, PORT_MAX, &v);
  if (r == NUM_OK) {
    *port = (int)v;
    return 0;
  }
  if (r == NUM_RANGE)
    return fail(err, IOA_EADDRPORT, "port '%s' out of range 0-%d", Q(s, n), PORT_MAX);
  if (!(flags & IOA_ADDR_PARSE_SERVICE) || !is_alpha(s[0]))
    return fail(err, IOA_EADDRPORT, "port '%s' is not a decimal number 0-%d%s", Q(s, n), PORT_MAX,
                is_alpha(s[0]) ? " (service names are not allowed here)" : "");
  return service_port(s, n, socktype, port, err);
}

static int has_nul(const char *s, size_t n, size_t *at) {
  const char *z = memchr(s, '\0', n);
  if (z && at)
    *at = (size_t)(z - s);
  return z != NULL;
}

/* IPv4: inet_pton, which takes only the strict dotted quad. */
static int parse_ip4(const char *s, size_t n, struct in_addr *out, ioa_errinfo *err) {
  char buf[INET_ADDRSTRLEN];
  size_t at;
  if (n == 0)
    return fail(err, IOA_EADDREMPTY, "IPv4 address is empty");
  if (has_nul(s, n, &at))
    return fail(err, IOA_EADDRNUL, "IPv4 address contains a NUL byte at offset %zu", at);
  if (n < sizeof buf) {
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out) == 1)
      return 0;
  }
  if (memchr(s, ':', n))
    return fail(err, IOA_EADDRIP, "'%s' is not an IPv4 address (IPv6 needs family inet6)",
                Q(s, n));
  for (size_t i = 0; i < n; i++)
    if (is_alpha(s[i]))
      return fail(err, IOA_EADDRIP,
                  "'%s' is not an IPv4 address (host names need the resolver)", Q(s, n));
  return fail(err, IOA_EADDRIP, "invalid IPv4 address '%s' (expected a dotted quad like 127.0.0.1)",
              Q(s, n));
}

/* Scope: a decimal interface index, or an interface name. */
static int parse_scope(const char *s, size_t n, uint32_t *out, ioa_errinfo *err) {
  if (n == 0)
    return fail(err, IOA_EADDREMPTY, "IPv6 scope is empty");
  size_t at;
  if (has_nul(s, n, &at))
    return fail(err, IOA_EADDRNUL, "IPv6 scope contains a NUL byte at offset %zu", at);
  int r = parse_uint(s, n, UINT32_MAX, out);
  if (r == NUM_OK)
    return 0;
  if (r == NUM_RANGE)
    return fail(err, IOA_EADDRSCOPE, "scope id '%s' out of range 0-%" PRIu32, Q(s, n),
                (uint32_t)UINT32_MAX);
  char name[IF_NAMESIZE];
  if (n >= sizeof name)
    return fail(err, IOA_EADDRSCOPE, "unknown interface '%s' (names are at most %d bytes)",
                Q(s, n), IF_NAMESIZE - 1);
  memcpy(name, s, n);
  name[n] = '\0';
  unsigned idx = if_nametoindex(name);
  if (idx == 0)
    return fail(err, IOA_EADDRSCOPE, "unknown interface '%s' for IPv6 scope", Q(s, n));
  *out = idx;
  return 0;
}

/* Just the literal, no scope. */
static int ip6_literal(const char *s, size_t n, struct in6_addr *out) {
  char buf[INET6_ADDRSTRLEN];
  if (n >= sizeof buf || has_nul(s, n, NULL))
    return 0;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return inet_pton(AF_INET6, buf, out) == 1;
}

/* IPv6 literal with optional "%scope". */
static int parse_ip6(const char *s, size_t n, struct in6_addr *out, uint32_t *scope,
                     int *has_scope, ioa_errinfo *err) {
  size_t at;
  if (n == 0)
    return fail(err, IOA_EADDREMPTY, "IPv6 address is empty");
  if (has_nul(s, n, &at))
    return fail(err, IOA_EADDRNUL, "IPv6 address contains a NUL byte at offset %zu", at);
  const char *pct = memchr(s, '%', n);
  size_t ipn = pct ? (size_t)(pct - s) : n;
  if (ipn == 0)
    return fail(err, IOA_EADDREMPTY, "IPv6 address before '%%' is empty");
  if (!ip6_literal(s, ipn, out)) {
    struct in_addr a4;
    char b4[INET_ADDRSTRLEN];
    if (ipn < sizeof b4) {
      memcpy(b4, s, ipn);
      b4[ipn] = '\0';
      if (inet_pton(AF_INET, b4, &a4) == 1)
        return fail(err, IOA_EADDRIP, "'%s' is not an IPv6 address (IPv4 needs family inet)",
                    Q(s, ipn));
    }
    return fail(err, IOA_EADDRIP, "invalid IPv6 address '%s'", Q(s, ipn));
  }
  *has_scope = pct != NULL;
  *scope = 0;
  if (pct)
    return parse_scope(pct + 1, n - ipn - 1, scope, err);
  return 0;
}

/* ---- constructors on parsed parts ---- */

static void init_addr(ioa_addr *a, int family, int socktype, int protocol) {
  memset(a, 0, sizeof *a);
  a->family = family;
  a->socktype = socktype;
  a->protocol = protocol;
}

static void make_inet(ioa_addr *a, struct in_addr ip, int port, int socktype, int protocol) {
  init_addr(a, AF_INET, socktype, protocol);
  struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
  sin->sin_family = AF_INET;
  sin->sin_port = htons((uint16_t)port);
  sin->sin_addr = ip;
  a->addrlen = sizeof *sin;
}

static void make_inet6(ioa_addr *a, const struct in6_addr *ip, int port, uint32_t scope,
                       uint32_t flowinfo, int socktype, int protocol) {
  init_addr(a, AF_INET6, socktype, protocol);
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons((uint16_t)port);
  sin6->sin6_flowinfo = htonl(flowinfo);
  sin6->sin6_addr = *ip;
  sin6->sin6_scope_id = scope;
  a->addrlen = sizeof *sin6;
}

static int make_unix(ioa_addr *a, const char *p, size_t n, int socktype, ioa_errinfo *err) {
  size_t at;
  if (n == 0)
    return fail(err, IOA_EADDREMPTY, "unix path is empty");
  if (has_nul(p, n, &at))
    return fail(err, IOA_EADDRNUL, "unix path contains a NUL byte at offset %zu", at);
  ioa_addr tmp;
  init_addr(&tmp, AF_UNIX, socktype, 0);
  struct sockaddr_un *sun = (struct sockaddr_un *)&tmp.addr;
  sun->sun_family = AF_UNIX;
  if (p[0] == '@') {
#ifdef __linux__
    size_t m = n - 1;
    if (m == 0)
      return fail(err, IOA_EADDREMPTY, "unix abstract name after '@' is empty");
    if (m > IOA_ADDR_UNIX_ABSTRACT_MAX)
      return fail(err, IOA_EADDRPATHLEN,
                  "unix abstract name is %zu bytes; sun_path holds at most %d after its "
                  "leading NUL",
                  m, IOA_ADDR_UNIX_ABSTRACT_MAX);
    sun->sun_path[0] = '\0';
    memcpy(sun->sun_path + 1, p + 1, m);
    tmp.addrlen = (socklen_t)(UNIX_PATH_OFFSET + 1 + m);
#else
    return fail(err, IOA_EADDRFAMILY, "abstract unix names ('@%s') exist only on Linux",
                Q(p + 1, n - 1));
#endif
  } else {
    if (n > IOA_ADDR_UNIX_PATH_MAX)
      return fail(err, IOA_EADDRPATHLEN, "unix path is %zu bytes; sun_path holds at most %d", n,
                  IOA_ADDR_UNIX_PATH_MAX);
    memcpy(sun->sun_path, p, n);
    sun->sun_path[n] = '\0';
    tmp.addrlen = (socklen_t)(UNIX_PATH_OFFSET + n + 1);
  }
  *a = tmp;
  return 0;
}

/* ---- family and socktype words ---- */

static const struct word {
  const char *name;
  int value;
} family_words[] = {
    {"inet", AF_INET}, {"ipv4", AF_INET}, {"inet6", AF_INET6}, {"ipv6", AF_INET6},
    {"unix", AF_UNIX}, {"unspec", AF_UNSPEC},
}, socktype_words[] = {
    {"stream", SOCK_STREAM},
    {"dgram", SOCK_DGRAM},
    {"raw", SOCK_RAW},
    {"seqpacket", SOCK_SEQPACKET},
};

#define NWORDS(t) (sizeof(t) / sizeof((t)[0]))

int ioa_family_from_name(const char *name) {
  if (!name)
    return IOA_EADDRFAMILY;
  for (size_t i = 0; i < NWORDS(family_words); i++)
    if (strcmp(name, family_words[i].name) == 0)
      return family_words[i].value;
  uint32_t v;
  if (parse_uint(name, strlen(name), INT_MAX, &v) == NUM_OK &&
      (v == AF_INET || v == AF_INET6 || v == AF_UNIX || v == AF_UNSPEC))
    return (int)v;
  return IOA_EADDRFAMILY;
}

const char *ioa_family_name(int family) {
  switch (family) {
  case AF_INET:
    return "inet";
  case AF_INET6:
    return "inet6";
  case AF_UNIX:
    return "unix";
  case AF_UNSPEC:
    return "unspec";
  default:
    return NULL;
  }
}

int ioa_socktype_from_name(const char *name) {
  if (!name)
    return IOA_EADDRSOCKTYPE;
  for (size_t i = 0; i < NWORDS(socktype_words); i++)
    if (strcmp(name, socktype_words[i].name) == 0)
      return socktype_words[i].value;
  uint32_t v;
  if (parse_uint(name, strlen(name), SOCKTYPE_MAX, &v) == NUM_OK)
    return (int)v;
  return IOA_EADDRSOCKTYPE;
}

const char *ioa_socktype_name(int socktype) {
  for (size_t i = 0; i < NWORDS(socktype_words); i++)
    if (socktype_words[i].value == socktype)
      return socktype_words[i].name;
  return NULL;
}

/* ---- building from fields ---- */

int ioa_addr_inet(const char *ip, int port, int socktype, int protocol, ioa_addr *out,
                  ioa_errinfo *err) {
  int r;
  clear_err(err);
  if (!out || !ip)
    return fail(err, IOA_EBADPARAM, "ioa_addr_inet: NULL %s", out ? "ip" : "out");
  if ((r = check_socktype(socktype, err)) || (r = check_protocol(protocol, err)) ||
      (r = check_port(port, err)))
    return r;
  struct in_addr a;
  if ((r = parse_ip4(ip, strlen(ip), &a, err)))
    return r;
  make_inet(out, a, port, socktype, protocol);
  return 0;
}

int ioa_addr_inet6(const char *ip, int port, const char *scope, uint32_t flowinfo, int socktype,
                   int protocol, ioa_addr *out, ioa_errinfo *err) {
  int r;
  clear_err(err);
  if (!out || !ip)
    return fail(err, IOA_EBADPARAM, "ioa_addr_inet6: NULL %s", out ? "ip" : "out");
  if ((r = check_socktype(socktype, err)) || (r = check_protocol(protocol, err)) ||
      (r = check_port(port, err)))
    return r;
  struct in6_addr a;
  uint32_t sid = 0, sid2 = 0;
  int has_sid = 0;
  if ((r = parse_ip6(ip, strlen(ip), &a, &sid, &has_sid, err)))
    return r;
  if (scope) {
    if ((r = parse_scope(scope, strlen(scope), &sid2, err)))
      return r;
    if (has_sid && sid != sid2)
      return fail(err, IOA_EADDRSCOPE,
                  "conflicting IPv6 scopes: '%s' in the address, '%s' given separately",
                  QS(strchr(ip, '%') + 1), QS(scope));
    sid = sid2;
  }
  make_inet6(out, &a, port, sid, flowinfo, socktype, protocol);
  return 0;
}

int ioa_addr_unix(const char *path, size_t len, int socktype, ioa_addr *out, ioa_errinfo *err) {
  int r;
  clear_err(err);
  if (!out || !path)
    return fail(err, IOA_EBADPARAM, "ioa_addr_unix: NULL %s", out ? "path" : "out");
  if ((r = check_socktype(socktype, err)))
    return r;
  if (len == IOA_NUL_TERMINATED)
    len = strlen(path);
  return make_unix(out, path, len, socktype, err);
}

/* ---- key/value form ---- */

enum {
  K_FAMILY,
  K_SOCKTYPE,
  K_PROTOCOL,
  K_IP,
  K_PORT,
  K_SCOPEID,
  K_FLOWINFO,
  K_PATH,
  K_COUNT_
};

static const char *const key_names[K_COUNT_] = {
    "family", "socktype", "protocol", "ip", "port", "scopeid", "flowinfo", "path",
};

#define KBIT(k) (1u << (k))
#define KEYS_COMMON (KBIT(K_FAMILY) | KBIT(K_SOCKTYPE) | KBIT(K_PROTOCOL))

static unsigned keys_for_family(int family) {
  switch (family) {
  case AF_INET:
    return KEYS_COMMON | KBIT(K_IP) | KBIT(K_PORT);
  case AF_INET6:
    return KEYS_COMMON | KBIT(K_IP) | KBIT(K_PORT) | KBIT(K_SCOPEID) | KBIT(K_FLOWINFO);
  default:
    return KEYS_COMMON | KBIT(K_PATH);
  }
}

static int key_index(const char *key) {
  for (int k = 0; k < K_COUNT_; k++)
    if (strcmp(key, key_names[k]) == 0)
      return k;
  return -1;
}

/* "Unrecognised 'inet' address keys: host, path" in the order given. */
static int unrecognised_keys(const char *const *kv, int family, unsigned allowed,
                             ioa_errinfo *err) {
  if (!err)
    return IOA_EADDRUNKNOWNKEY;
  char *m = err->message;
  size_t cap = sizeof err->message, o = 0;
  int n = snprintf(m, cap, "Unrecognised '%s' address keys: ", ioa_family_name(family));
  o = n > 0 ? (size_t)n : 0;
  int first = 1;
  for (size_t i = 0; kv[i] && kv[i + 1]; i += 2) {
    int k = key_index(kv[i]);
    if (k >= 0 && (allowed & KBIT(k)))
      continue;
    if (o < cap) {
      n = snprintf(m + o, cap - o, "%s%s", first ? "" : ", ", QS(kv[i]));
      o += n > 0 ? (size_t)n : 0;
    }
    first = 0;
  }
  if (o >= cap) /* the message only; mark that it was cut */
    memcpy(m + cap - 4, "...", 4);
  err->code = IOA_EADDRUNKNOWNKEY;
  return IOA_EADDRUNKNOWNKEY;
}

int ioa_addr_from_keys(const char *const *kv, ioa_addr *out, ioa_errinfo *err) {
  const char *val[K_COUNT_] = {0};
  int unknown = 0, r;
  clear_err(err);
  if (!out || !kv)
    return fail(err, IOA_EBADPARAM, "ioa_addr_from_keys: NULL %s", out ? "kv" : "out");

  for (size_t i = 0; kv[i]; i += 2) {
    if (!kv[i + 1])
      return fail(err, IOA_EADDRSYNTAX, "No value for address key '%s'", QS(kv[i]));
    int k = key_index(kv[i]);
    if (k < 0) {
      unknown = 1;
      continue;
    }
    if (val[k])
      return fail(err, IOA_EADDRDUPKEY, "Address key '%s' given twice", key_names[k]);
    val[k] = kv[i + 1];
  }

  if (!val[K_FAMILY])
    return fail(err, IOA_EADDRMISSING, "Expected 'family' in address keys");
  int family = ioa_family_from_name(val[K_FAMILY]);
  if (family < 0)
    return fail(err, IOA_EADDRFAMILY, "Unrecognised family name '%s'", QS(val[K_FAMILY]));
  if (family == AF_UNSPEC)
    return fail(err, IOA_EADDRFAMILY,
                "Family '%s' has no addresses; expected inet, inet6 or unix", QS(val[K_FAMILY]));

  unsigned allowed = keys_for_family(family);
  unsigned given = 0;
  for (int k = 0; k < K_COUNT_; k++)
    if (val[k])
      given |= KBIT(k);
  if (unknown || (given & ~allowed))
    return unrecognised_keys(kv, family, allowed, err);

  int socktype = 0, protocol = 0;
  if (val[K_SOCKTYPE]) {
    socktype = ioa_socktype_from_name(val[K_SOCKTYPE]);
    if (socktype < 0)
      return fail(err, IOA_EADDRSOCKTYPE, "Unrecognised socktype name '%s'", QS(val[K_SOCKTYPE]));
  }
  if (val[K_PROTOCOL]) {
    uint32_t v;
    if (parse_uint(val[K_PROTOCOL], strlen(val[K_PROTOCOL]), PROTOCOL_MAX, &v) != NUM_OK)
      return fail(err, IOA_EADDRPROTOCOL, "protocol '%s' is not a decimal number 0-%d",
                  QS(val[K_PROTOCOL]), PROTOCOL_MAX);
    protocol = (int)v;
  }

  const char *fname = ioa_family_name(family);
  if (family == AF_UNIX) {
    if (!val[K_PATH])
      return fail(err, IOA_EADDRMISSING, "Expected 'path' for family unix");
    return make_unix(out, val[K_PATH], strlen(val[K_PATH]), socktype, err);
  }

  if (!val[K_IP])
    return fail(err, IOA_EADDRMISSING, "Expected 'ip' for family %s", fname);
  if (!val[K_PORT])
    return fail(err, IOA_EADDRMISSING, "Expected 'port' for family %s", fname);
  int port;
  if ((r = parse_port(val[K_PORT], strlen(val[K_PORT]), 0, socktype, &port, err)))
    return r;

  if (family == AF_INET) {
    struct in_addr a;
    if ((r = parse_ip4(val[K_IP], strlen(val[K_IP]), &a, err)))
      return r;
    make_inet(out, a, port, socktype, protocol);
    return 0;
  }

  uint32_t flowinfo = 0;
  if (val[K_FLOWINFO]) {
    const char *f = val[K_FLOWINFO];
    if (parse_uint(f, strlen(f), UINT32_MAX, &flowinfo) != NUM_OK)
      return fail(err, IOA_EADDRFLOWINFO, "flowinfo '%s' is not a decimal number 0-%" PRIu32,
                  QS(f), (uint32_t)UINT32_MAX);
  }
  ioa_addr tmp;
  if ((r = ioa_addr_inet6(val[K_IP], port, val[K_SCOPEID], flowinfo, socktype, protocol, &tmp,
                          err)))
    return r;
  *out = tmp;
  return 0;
}

/* ---- raw sockaddr ---- */

int ioa_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, int socktype, int protocol,
                           ioa_addr *out) {
  if (!out || !sa)
    return IOA_EBADPARAM;
  if (socktype < 0 || socktype > SOCKTYPE_MAX)
    return IOA_EADDRSOCKTYPE;
  if (protocol < 0 || protocol > PROTOCOL_MAX)
    return IOA_EADDRPROTOCOL;
  if (len < sizeof(sa_family_t))
    return IOA_EADDRSYNTAX;
  ioa_addr tmp;
  switch (sa->sa_family) {
  case AF_INET: {
    struct sockaddr_in sin;
    if (len < sizeof sin)
      return IOA_EADDRSYNTAX;
    memcpy(&sin, sa, sizeof sin);
    make_inet(&tmp, sin.sin_addr, ntohs(sin.sin_port), socktype, protocol);
    break;
  }
  case AF_INET6: {
    struct sockaddr_in6 sin6;
    if (len < sizeof sin6)
      return IOA_EADDRSYNTAX;
    memcpy(&sin6, sa, sizeof sin6);
    make_inet6(&tmp, &sin6.sin6_addr, ntohs(sin6.sin6_port), sin6.sin6_scope_id,
               ntohl(sin6.sin6_flowinfo), socktype, protocol);
    break;
  }
  case AF_UNIX: {
    if (len > sizeof(struct sockaddr_un))
      return IOA_EADDRSYNTAX;
    init_addr(&tmp, AF_UNIX, socktype, protocol);
    struct sockaddr_un *sun = (struct sockaddr_un *)&tmp.addr;
    memcpy(sun, sa, len);
    size_t n = len > UNIX_PATH_OFFSET ? len - UNIX_PATH_OFFSET : 0;
    if (n > 0 && sun->sun_path[0] != '\0') {
      /* Filesystem path: the kernel may or may not count the NUL; keep the
       * path up to the first NUL and store the form ioa_addr_unix makes. */
      size_t pl = strnlen(sun->sun_path, n);
      memset(sun->sun_path + pl, 0, SUN_PATH_SIZE - pl);
      n = pl < SUN_PATH_SIZE ? pl + 1 : pl;
    }
    tmp.addrlen = (socklen_t)(UNIX_PATH_OFFSET + n);
    break;
  }
  default:
    return IOA_EADDRFAMILY;
  }
  *out = tmp;
  return 0;
}

/* ---- text ---- */

static int parse_unbracketed(ioa_addr *out, const char *s, size_t n, unsigned flags,
                             int socktype, int protocol, ioa_errinfo *err) {
  const char *colon = memchr(s, ':', n);
  if (!colon) {
    struct in_addr a;
    if (parse_ip4(s, n, &a, NULL) == 0)
      return fail(err, IOA_EADDRMISSING, "Expected ':port' after '%s'", Q(s, n));
    return fail(err, IOA_EADDRSYNTAX,
                "Expected IPv4:port, [IPv6]:port or unix:path, got '%s'", Q(s, n));
  }
  size_t hn = (size_t)(colon - s);
  if (memchr(colon + 1, ':', n - hn - 1)) {
    /* Two or more colons: an IPv6 literal, perhaps followed by a port. */
    const char *last = colon;
    for (const char *c = s + n - 1; c > colon; c--)
      if (*c == ':') {
        last = c;
        break;
      }
    struct in6_addr a6;
    const char *pct = memchr(s, '%', n);
    size_t whole = pct ? (size_t)(pct - s) : n;
    size_t before = (size_t)(last - s);
    if (pct && (size_t)(pct - s) < before)
      before = (size_t)(pct - s);
    if (ip6_literal(s, whole, &a6) || ip6_literal(s, before, &a6))
      return fail(err, IOA_EADDRBRACKETS, "IPv6 address with a port must be in brackets: '%s'",
                  Q(s, n));
    return fail(err, IOA_EADDRIP,
                "invalid address '%s' (expected IPv4:port, [IPv6]:port or unix:path)", Q(s, n));
  }
  if (hn == 0)
    return fail(err, IOA_EADDRMISSING, "Expected an IP address before ':' in '%s'", Q(s, n));
  int r, port;
  struct in_addr a;
  if ((r = parse_ip4(s, hn, &a, err)))
    return r;
  if ((r = parse_port(colon + 1, n - hn - 1, flags, socktype, &port, err)))
    return r;
  make_inet(out, a, port, socktype, protocol);
  return 0;
}

static int parse_bracketed(ioa_addr *out, const char *s, size_t n, unsigned flags, int socktype,
                           int protocol, ioa_errinfo *err) {
  const char *close = memchr(s, ']', n);
  if (!close)
    return fail(err, IOA_EADDRSYNTAX, "Missing ']' in '%s'", Q(s, n));
  size_t in = (size_t)(close - s) - 1;
  struct in6_addr a6;
  uint32_t scope = 0;
  int has_scope, r, port;
  if ((r = parse_ip6(s + 1, in, &a6, &scope, &has_scope, err)))
    return r;
  const char *rest = close + 1, *end = s + n;
  if (rest == end)
    return fail(err, IOA_EADDRMISSING, "Expected ':port' after ']' in '%s'", Q(s, n));
  if (*rest != ':')
    return fail(err, IOA_EADDRSYNTAX, "Unexpected '%s' after ']' in '%s'", Q(rest, 1), Q(s, n));
  if ((r = parse_port(rest + 1, (size_t)(end - rest - 1), flags, socktype, &port, err)))
    return r;
  make_inet6(out, &a6, port, scope, 0, socktype, protocol);
  return 0;
}

int ioa_addr_parse(const char *text, size_t len, unsigned flags, int socktype, int protocol,
                   ioa_addr *out, ioa_errinfo *err) {
  int r;
  clear_err(err);
  if (!out || !text)
    return fail(err, IOA_EBADPARAM, "ioa_addr_parse: NULL %s", out ? "text" : "out");
  if ((r = check_socktype(socktype, err)) || (r = check_protocol(protocol, err)))
    return r;
  if (len == IOA_NUL_TERMINATED)
    len = strlen(text);
  if (len == 0)
    return fail(err, IOA_EADDREMPTY, "Address is empty");
  size_t at;
  if (has_nul(text, len, &at))
    return fail(err, IOA_EADDRNUL, "Address '%s' contains a NUL byte at offset %zu",
                Q(text, len), at);

  ioa_addr tmp;
  if (len >= 5 && memcmp(text, "unix:", 5) == 0) {
    if (flags & IOA_ADDR_PARSE_NO_UNIX)
      return fail(err, IOA_EADDRFAMILY, "unix addresses are not accepted here: '%s'",
                  Q(text, len));
    if (protocol != 0)
      return fail(err, IOA_EADDRPROTOCOL, "protocol %d given for a unix address (must be 0)",
                  protocol);
    r = make_unix(&tmp, text + 5, len - 5, socktype, err);
  } else if (text[0] == '[') {
    r = parse_bracketed(&tmp, text, len, flags, socktype, protocol, err);
  } else {
    r = parse_unbracketed(&tmp, text, len, flags, socktype, protocol, err);
  }
  if (r == 0)
    *out = tmp;
  return r;
}

/* Appends to a bounded buffer; on overflow, remembers it and writes nothing more. */
typedef struct outbuf {
  char *p;
  size_t size, len;
  int overflow;
} outbuf;

static void put(outbuf *b, const char *s, size_t n) {
  if (b->overflow || b->len + n >= b->size) {
    b->overflow = 1;
    return;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(outbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_uint(outbuf *b, unsigned long v) {
  char num[24];
  int n = snprintf(num, sizeof num, "%lu", v);
  put(b, num, (size_t)n);
}

int ioa_addr_format(const ioa_addr *a, char *buf, size_t size) {
  if (!buf || size == 0)
    return -ENOSPC;
  buf[0] = '\0';
  if (!a)
    return IOA_EBADPARAM;
  outbuf b = {buf, size, 0, 0};
  char ip[INET6_ADDRSTRLEN];

  switch (a->family) {
  case AF_INET: {
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->addr;
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
    puts_(&b, ip);
    put(&b, ":", 1);
    put_uint(&b, ntohs(sin->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->addr;
    inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
    put(&b, "[", 1);
    puts_(&b, ip);
    if (sin6->sin6_scope_id) {
      char name[IF_NAMESIZE];
      put(&b, "%", 1);
      /* A name of digits would parse back as an index: use the number. */
      if (if_indextoname(sin6->sin6_scope_id, name) && !all_digits(name, strlen(name)))
        puts_(&b, name);
      else
        put_uint(&b, sin6->sin6_scope_id);
    }
    put(&b, "]:", 2);
    put_uint(&b, ntohs(sin6->sin6_port));
    break;
  }
  case AF_UNIX: {
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->addr;
    size_t n = a->addrlen > UNIX_PATH_OFFSET ? a->addrlen - UNIX_PATH_OFFSET : 0;
    if (n > SUN_PATH_SIZE)
      n = SUN_PATH_SIZE;
    put(&b, "unix:", 5);
    if (n == 0)
      break; /* unnamed */
    if (sun->sun_path[0] == '\0') {
      if (has_nul(sun->sun_path + 1, n - 1, NULL)) {
        buf[0] = '\0';
        return IOA_EADDRNUL;
      }
      put(&b, "@", 1);
      put(&b, sun->sun_path + 1, n - 1);
    } else {
      put(&b, sun->sun_path, strnlen(sun->sun_path, n));
    }
    break;
  }
  default:
    return IOA_EADDRFAMILY;
  }
  if (b.overflow) {
    buf[0] = '\0';
    return -ENOSPC;
  }
  return (int)b.len;
}

/* ---- helpers ---- */

int ioa_addr_port(const ioa_addr *a) {
  if (!a)
    return -1;
  if (a->family == AF_INET)
    return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
  if (a->family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
  return -1;
}

int ioa_addr_equal(const ioa_addr *a, const ioa_addr *b) {
  if (!a || !b)
    return a == b;
  if (a->family != b->family || a->socktype != b->socktype || a->protocol != b->protocol)
    return 0;
  switch (a->family) {
  case AF_INET: {
    const struct sockaddr_in *x = (const struct sockaddr_in *)&a->addr;
    const struct sockaddr_in *y = (const struct sockaddr_in *)&b->addr;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->addr;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->addr;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
           x->sin6_flowinfo == y->sin6_flowinfo &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  case AF_UNIX: {
    if (a->addrlen != b->addrlen)
      return 0;
    size_t n = a->addrlen > UNIX_PATH_OFFSET ? a->addrlen - UNIX_PATH_OFFSET : 0;
    if (n > SUN_PATH_SIZE)
      n = SUN_PATH_SIZE;
    const struct sockaddr_un *x = (const struct sockaddr_un *)&a->addr;
    const struct sockaddr_un *y = (const struct sockaddr_un *)&b->addr;
    return memcmp(x->sun_path, y->sun_path, n) == 0;
  }
  default:
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
  }
}

int ioa_addr_is_unspecified(const ioa_addr *a) {
  if (!a)
    return 0;
  if (a->family == AF_INET)
    return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (a->family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr);
  return 0;
}

void ioa_addr_for_peer(const ioa_addr *in, ioa_addr *out) {
  if (!out || !in)
    return;
  ioa_addr tmp = *in;
  if (ioa_addr_is_unspecified(&tmp)) {
    if (tmp.family == AF_INET)
      ((struct sockaddr_in *)&tmp.addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
      ((struct sockaddr_in6 *)&tmp.addr)->sin6_addr = in6addr_loopback;
  }
  *out = tmp;
}
