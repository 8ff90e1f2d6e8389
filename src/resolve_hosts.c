/* SPDX-License-Identifier: MIT */
/* The hosts table: names /etc/hosts holds, answered on the loop thread
 * exactly as getaddrinfo() would answer them, for every backend.
 *
 * glibc reads /etc/hosts again on every lookup (about 6,500 instructions
 * for a short file, plus a thread hop in the pool); c-ares reads it once per
 * family.  Like Go's resolver, this keeps an in-memory copy and looks at
 * the file again (stat: device, inode, size, times) at most every
 * IOA__HOSTS_CHECK_NS, together with the files that decide how getaddrinfo
 * uses it: /etc/nsswitch.conf (the table answers only where "hosts:"
 * starts with "files", so the system itself asks the file first),
 * /etc/host.conf ("multi"), and /etc/gai.conf (the sorter's tables).
 *
 * What getaddrinfo makes of the file, reproduced here (glibc 2.36, checked
 * by test_resolve_diff and fuzz_hosts against the real getaddrinfo):
 *  - AF_UNSPEC asks nss_files' gethostbyname4_r: the first line naming
 *    the host (its first name or an alias, ASCII case ignored) and, with
 *    "multi on" in host.conf (Debian's default; glibc's is off), every
 *    later one, in file order, each address read as IPv4 if it can be,
 *    else IPv6.
 *  - AF_INET and AF_INET6 ask gethostbyname3_r for that family: the first
 *    matching line whose address reads as that family, then ("multi on" in
 *    host.conf) every later one.  For AF_INET an IPv6 line of ::1 or a
 *    v4-mapped address counts as its IPv4 address; for AF_INET6 an IPv4
 *    line does not count.  AF_INET6 with AI_V4MAPPED adds the IPv4 answers
 *    as ::ffff:a.b.c.d when there is no IPv6 one (always with AI_ALL), and
 *    drops v4-mapped lines when there is.
 *  - AI_ADDRCONFIG narrows AF_UNSPEC to the one family configured (an
 *    address other than 127.0.0.1 / ::1), which changes the rules above.
 *  - Each address appears once per socket type and protocol the hints
 *    allow (SOCK_STREAM, SOCK_DGRAM and SOCK_RAW when they leave both 0),
 *    with the service's port; more than one address is sorted (addrsort).
 *  - AI_CANONNAME: the first name of the first matching line.
 * A name the file does not have for the family asked goes to the next
 * nsswitch source (DNS): the table declines and the backend answers.  It
 * declines too where exactness cannot be had: a gai.conf the sorter does
 * not model, a host.conf or nsswitch.conf it does not understand,
 * AI_IDN, RESOLV_* environment overrides.
 *
 * Loop thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr_internal.h"
#include "addrsort.h"
#include "alloc.h"
#include "resolve_internal.h"
#include "sys.h"

/* Larger files are not mirrored: parsing one would hold the loop thread
 * for milliseconds (about 5 ms per MiB here), so the backend reads them as
 * ever, on its own threads (c-ares: on the loop, as before). */
#define FILE_MAX (1u << 20)

enum { F_HOSTS, F_NSSWITCH, F_HOSTCONF, F_GAICONF, NFILES };
static const char *const paths[NFILES] = {"/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",
                                          "/etc/gai.conf"};

typedef struct stamp {
  int state; /* 0 unknown, 1 present, 2 absent */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtim, ctim;
} stamp;

/* One line of the hosts file, as each lookup family reads it. */
typedef struct hline {
  uint8_t fam_any;   /* AF_UNSPEC's reading: AF_INET, AF_INET6, or 0 (invalid) */
  uint8_t ok4, ok6;  /* valid for AF_INET / AF_INET6 lookups */
  uint8_t any[16];   /* the address as AF_UNSPEC reads it (4 or 16 bytes) */
  uint8_t a4[4];     /* as AF_INET reads it (::1 and v4-mapped folded) */
  uint8_t a6[16];
  uint32_t canon;    /* offset of the line's first name in text */
} hline;

/* A name and the lines that have it (a chain through links). */
typedef struct hname {
  uint32_t hash;
  uint32_t name; /* offset in text (the first spelling seen) */
  uint32_t first, last; /* links[], 1-based; 0 = none */
} hname;

typedef struct hlink {
  uint32_t line, next;
} hlink;

/* How a service expands: glibc's (socktype, protocol, port) tuples. */
typedef struct servtuple {
  int socktype, protocol, port;
} servtuple;
#define MAX_TUPLES 8

typedef struct serv_memo {
  char service[IOA__SERVICE_NAME_MAX + 1];
  int socktype, protocol;
  int n; /* -1: glibc failed it (the table declines) */
  servtuple t[MAX_TUPLES];
} serv_memo;
#define SERV_MEMOS 4

struct ioa__hosts {
  ioa__addrsort *sorter;
  uint64_t next_check_ns;
  int checked_once;
  uint32_t generation; /* changes whenever an answer might (ioa__hosts_generation) */
  stamp stamps[NFILES];
  /* the table */
  int table_ok;  /* hosts file read (or absent: an empty table) */
  char *text;    /* the file, tokens NUL-terminated in place */
  hline *lines;
  size_t nlines;
  hname *names;  /* open addressing; mask + 1 slots */
  uint32_t mask;
  hlink *links;
  size_t nlinks;
  /* what decides whether the table may answer */
  int files_first; /* nsswitch.conf "hosts:" starts with a plain "files" */
  int hostconf_ok; /* host.conf understood */
  int multi;       /* host.conf "multi on" */
  int env_ok;      /* no RESOLV_* override of host.conf */
  serv_memo memo[SERV_MEMOS];
  unsigned memo_next;
};

/* ------------------------------------------------------------ helpers */

static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int lower(int c) { return (unsigned)(c - 'A') < 26u ? c | 0x20 : c; }

static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a over the lower-cased name */
  for (; *s; s++) {
    h ^= (uint8_t)lower((unsigned char)*s);
    h *= 16777619u;
  }
  return h;
}

static int same_name(const char *a, const char *b) {
  if (strcmp(a, b) == 0) /* the usual case: spelt as in the file */
    return 1;
  for (; *a && lower((unsigned char)*a) == lower((unsigned char)*b); a++, b++)
    ;
  return lower((unsigned char)*a) == lower((unsigned char)*b);
}

/* The whole file into a NUL-terminated buffer: 0, -ENOENT, or another
 * negative code. */
static int read_file(const char *path, char **out, size_t *len) {
  int fd = ioa__sys_open_read(path);
  if (fd < 0)
    return -errno;
  struct stat st;
  size_t cap = 4096, n = 0;
  int sized = ioa__sys_fstat(fd, &st) == 0 && st.st_size > 0;
  if (sized && (uint64_t)st.st_size >= FILE_MAX) {
    ioa__sys_close(fd);
    return -EFBIG;
  }
  if (sized)
    cap = (size_t)st.st_size + 1;
  char *buf = ioa__malloc(cap + 1);
  int rc = buf ? 0 : -ENOMEM;
  while (rc == 0) {
    if (n == cap) {
      if (cap >= FILE_MAX) {
        rc = -EFBIG;
        break;
      }
      char *nb = ioa__realloc(buf, cap * 2 + 1);
      if (!nb) {
        rc = -ENOMEM;
        break;
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = ioa__sys_read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      rc = -errno;
    else if (r == 0)
      break;
    else
      n += (size_t)r;
  }
  ioa__sys_close(fd);
  if (rc < 0) {
    ioa__free(buf);
    return rc;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

/* ------------------------------------------------------- the hosts file */

static void table_clear(ioa__hosts *h) {
  ioa__free(h->text);
  ioa__free(h->lines);
  ioa__free(h->names);
  ioa__free(h->links);
  h->text = NULL;
  h->lines = NULL;
  h->names = NULL;
  h->links = NULL;
  h->nlines = h->nlinks = 0;
  h->mask = 0;
  h->table_ok = 0;
}

static hname *find_slot(ioa__hosts *h, const char *text, const char *name, uint32_t hash) {
  for (uint32_t i = hash & h->mask;; i = (i + 1) & h->mask) {
    hname *e = &h->names[i];
    if (!e->first || (e->hash == hash && same_name(text + e->name, name)))
      return e;
  }
}

/* The line's address read as each lookup family reads it (glibc's
 * files-hosts.c parser). */
static void read_address(hline *l, const char *addr) {
  uint8_t a[16];
  if (inet_pton(AF_INET, addr, a) == 1) {
    l->fam_any = AF_INET;
    memcpy(l->any, a, 4);
    l->ok4 = 1;
    memcpy(l->a4, a, 4);
    return; /* an IPv4 line never counts for AF_INET6 */
  }
  if (inet_pton(AF_INET6, addr, a) != 1)
    return; /* ignored by every family */
  l->fam_any = AF_INET6;
  memcpy(l->any, a, 16);
  l->ok6 = 1;
  memcpy(l->a6, a, 16);
  if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a)) {
    l->ok4 = 1;
    memcpy(l->a4, a + 12, 4);
  } else if (IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a)) {
    static const uint8_t lo[4] = {127, 0, 0, 1};
    l->ok4 = 1;
    memcpy(l->a4, lo, 4);
  }
}

/* Parse text (owned by h from now on) into lines and the name index. */
static int table_build(ioa__hosts *h, char *text, size_t len) {
  h->text = text;
  /* Upper bounds: a line per '\n', a name per whitespace run. */
  size_t maxlines = 1, maxnames = 1;
  for (size_t i = 0; i < len; i++) {
    maxlines += text[i] == '\n';
    maxnames += is_space((unsigned char)text[i]);
  }
  if (maxnames > UINT32_MAX / 4 || len >= UINT32_MAX)
    return -EFBIG;
  maxnames += maxlines; /* a line without names indexes "" */
  h->lines = ioa__malloc(maxlines * sizeof *h->lines);
  h->links = ioa__malloc(maxnames * sizeof *h->links);
  uint32_t slots = 16;
  while (slots < 2 * maxnames)
    slots <<= 1;
  h->names = ioa__calloc(slots, sizeof *h->names);
  if (!h->lines || !h->links || !h->names)
    return -ENOMEM;
  h->mask = slots - 1;
  for (size_t pos = 0; pos < len;) {
    /* A line as glibc's __nss_readline hands it over: read up to '\n'
     * (kept), seen up to a NUL byte, leading whitespace moved out by
     * memmove(buf, p, strlen(p)) -- which leaves the old last bytes in
     * place after the moved text.  A line ending in '\n' is cut there
     * anyway; one without (the file's unterminated last line, or a NUL
     * byte before the '\n') keeps as many of its last bytes twice as it
     * had leading spaces: " 1.2.3.4 ab" reads as "1.2.3.4 abb". */
    char *line = text + pos;
    char *nl = memchr(line, '\n', len - pos);
    size_t raw = nl ? (size_t)(nl - line) + 1 : len - pos;
    pos += raw;
    size_t slen = strnlen(line, raw); /* text[len] is NUL */
    size_t k = 0;
    while (k < slen && is_space((unsigned char)line[k]))
      k++;
    if (k == slen || line[k] == '#')
      continue;
    if (k)
      memmove(line, line + k, slen - k);
    size_t cut = 0; /* then parse_line cuts at '#' or '\n' */
    while (cut < slen && line[cut] != '#' && line[cut] != '\n')
      cut++;
    if (cut < slen)
      line[cut] = '\0';
    char *p = line;
    /* The address, then names separated by whitespace. */
    char *addr = p;
    while (*p && !is_space((unsigned char)*p))
      p++;
    if (*p)
      *p++ = '\0';
    hline *l = &h->lines[h->nlines];
    memset(l, 0, sizeof *l);
    read_address(l, addr);
    if (!l->fam_any)
      continue;
    while (is_space((unsigned char)*p))
      p++;
    l->canon = (uint32_t)(p - text); /* may be "" (an address alone) */
    uint32_t lineno = (uint32_t)h->nlines++;
    int first = 1;
    while (*p || first) {
      char *name = p;
      while (*p && !is_space((unsigned char)*p))
        p++;
      if (*p)
        *p++ = '\0';
      while (is_space((unsigned char)*p))
        p++;
      if (!*name && !first)
        continue;
      first = 0;
      uint32_t hh = hash_name(name);
      hname *e = find_slot(h, text, name, hh);
      if (e->first && h->links[e->last - 1].line == lineno)
        continue; /* the same name twice on one line matches once */
      h->links[h->nlinks] = (hlink){lineno, 0};
      uint32_t id = (uint32_t)++h->nlinks;
      if (!e->first) {
        e->hash = hh;
        e->name = (uint32_t)(name - text);
        e->first = id;
      } else {
        h->links[e->last - 1].next = id;
      }
      e->last = id;
    }
  }
  h->table_ok = 1;
  return 0;
}

int ioa__hosts_load(ioa__hosts *h, const char *text, size_t len, int multi) {
  h->generation++;
  table_clear(h);
  char *copy = ioa__malloc(len + 1);
  if (!copy)
    return -ENOMEM;
  memcpy(copy, text, len);
  copy[len] = '\0';
  int rc = table_build(h, copy, len);
  if (rc < 0)
    table_clear(h);
  /* A loaded table stands for the system's: no file is looked at again
   * until ioa__hosts_expire. */
  h->files_first = h->hostconf_ok = h->env_ok = 1;
  h->multi = multi;
  h->checked_once = 1;
  h->next_check_ns = UINT64_MAX;
  return rc;
}

/* --------------------------------------------- nsswitch.conf, host.conf */

/* The next line of text (up to len) at *pos, without its '\n' and
 * anything after a '#': 1, or 0 at the end. */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *ll) {
  if (*pos >= len)
    return 0;
  const char *p = text + *pos;
  const char *nl = memchr(p, '\n', len - *pos);
  size_t n = nl ? (size_t)(nl - p) : len - *pos;
  *pos += n + 1;
  const char *hash = memchr(p, '#', n);
  *line = p;
  *ll = hash ? (size_t)(hash - p) : n;
  return 1;
}

/* The whitespace-separated word at *p (before end): its length, *p moved
 * past it and the spaces after. */
static size_t next_word(const char **p, const char *end, const char **word) {
  while (*p < end && is_space((unsigned char)**p))
    (*p)++;
  *word = *p;
  while (*p < end && !is_space((unsigned char)**p))
    (*p)++;
  size_t n = (size_t)(*p - *word);
  while (*p < end && is_space((unsigned char)**p))
    (*p)++;
  return n;
}

static int word_is(const char *w, size_t n, const char *lit) {
  return n == strlen(lit) && strncmp(w, lit, n) == 0;
}

/* Whether "hosts:" starts with a plain "files", so that a name the file
 * has is answered from it alone.  Anything else ("dns files", an action
 * such as [SUCCESS=continue] after files, two hosts lines, no file: glibc
 * then uses "dns [!UNAVAIL=return] files") leaves every name to the
 * backend. */
static int parse_nsswitch(const char *text, size_t len) {
  int found = 0, ok = 0;
  const char *line;
  size_t ll;
  for (size_t pos = 0; next_line(text, len, &pos, &line, &ll);) {
    const char *p = line, *end = line + ll, *w;
    while (p < end && is_space((unsigned char)*p))
      p++;
    if ((size_t)(end - p) < 6 || strncmp(p, "hosts", 5) != 0)
      continue;
    p += 5;
    while (p < end && is_space((unsigned char)*p))
      p++;
    if (p == end || *p != ':')
      continue;
    if (found++)
      return 0;
    p++;
    size_t n = next_word(&p, end, &w);
    ok = word_is(w, n, "files") && (p == end || *p != '[');
  }
  return found == 1 && ok;
}

/* host.conf: 1 if every keyword is one that does not change what the
 * files source answers (*multi set from "multi"), 0 otherwise.  glibc's
 * default without the file is "multi off". */
static int parse_hostconf(const char *text, size_t len, int *multi) {
  *multi = 0;
  const char *line;
  size_t ll;
  for (size_t pos = 0; next_line(text, len, &pos, &line, &ll);) {
    const char *p = line, *end = line + ll, *kw, *arg;
    size_t kn = next_word(&p, end, &kw);
    if (kn == 0)
      continue;
    char k[16];
    if (kn >= sizeof k)
      return 0;
    for (size_t i = 0; i < kn; i++)
      k[i] = (char)lower((unsigned char)kw[i]);
    k[kn] = '\0';
    size_t an = next_word(&p, end, &arg);
    if (strcmp(k, "multi") == 0) {
      if (an >= 2 && (arg[0] == 'o' || arg[0] == 'O') && (arg[1] == 'n' || arg[1] == 'N'))
        *multi = 1;
      else if (an >= 3 && (arg[0] == 'o' || arg[0] == 'O') && lower(arg[1]) == 'f' &&
               lower(arg[2]) == 'f')
        *multi = 0;
      else
        return 0;
    } else if (strcmp(k, "order") != 0 && strcmp(k, "nospoof") != 0 &&
               strcmp(k, "spoof") != 0 && strcmp(k, "spoofalert") != 0) {
      return 0; /* trim, reorder, anything unknown: not modelled */
    }
  }
  return 1;
}

/* --------------------------------------------------------- the refresh */

/* Whether path differs from its stamp (updated). */
static int changed(stamp *st, const char *path) {
  struct stat sb;
  stamp now;
  memset(&now, 0, sizeof now);
  if (ioa__sys_stat(path, &sb) == 0) {
    now.state = 1;
    now.dev = sb.st_dev;
    now.ino = sb.st_ino;
    now.size = sb.st_size;
    now.mtim = sb.st_mtim;
    now.ctim = sb.st_ctim;
  } else if (errno == ENOENT || errno == ENOTDIR) {
    now.state = 2;
  } /* else unknown (state 0): always "changed", read again next time */
  int diff = now.state == 0 || memcmp(&now, st, sizeof now) != 0;
  *st = now;
  return diff;
}

/* Read one configuration file: 0 with *text (NULL when absent), or a
 * negative code (unknown). */
static int load(ioa__hosts *h, int f, char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  if (h->stamps[f].state == 2)
    return 0;
  int rc = read_file(paths[f], text, len);
  if (rc == -ENOENT)
    return 0;
  if (rc < 0 && rc != -EFBIG)
    h->stamps[f].state = 0; /* try again at the next check (too big: once changed) */
  return rc;
}

static void reload(ioa__hosts *h, int f) {
  char *text;
  size_t len;
  int rc = load(h, f, &text, &len);
  switch (f) {
  case F_HOSTS:
    table_clear(h);
    if (rc == 0 && !text) {
      h->table_ok = 1; /* no file: nothing is in it */
    } else if (rc == 0 && table_build(h, text, len) < 0) {
      table_clear(h);
      h->stamps[f].state = 0;
    }
    return; /* text is the table's now */
  case F_NSSWITCH:
    h->files_first = rc == 0 && text && parse_nsswitch(text, len);
    break;
  case F_HOSTCONF:
    h->hostconf_ok = rc == 0 && (!text || parse_hostconf(text, len, &h->multi));
    if (rc == 0 && !text)
      h->multi = 0;
    break;
  case F_GAICONF:
    if (rc < 0 || ioa__addrsort_config(h->sorter, text, len) < 0)
      ioa__addrsort_config(h->sorter, "unreadable", 10); /* declines until it is read */
    break;
  }
  ioa__free(text);
}

void ioa__hosts_refresh(ioa__hosts *h, uint64_t now_ns) {
  if (h->checked_once && now_ns < h->next_check_ns)
    return;
  h->checked_once = 1;
  h->next_check_ns = now_ns + IOA__HOSTS_CHECK_NS;
  h->generation++; /* whatever changed, if anything, is read now */
  for (int f = 0; f < NFILES; f++)
    if (changed(&h->stamps[f], paths[f]))
      reload(h, f);
  for (unsigned i = 0; i < SERV_MEMOS; i++)
    h->memo[i].service[0] = '\0'; /* /etc/services may have changed too */
  /* glibc reads host.conf's path and "multi" from these when set. */
  h->env_ok = !getenv("RESOLV_HOST_CONF") && !getenv("RESOLV_MULTI") &&
              !getenv("RESOLV_REORDER") && !getenv("RESOLV_ADD_TRIM_DOMAINS") &&
              !getenv("RESOLV_OVERRIDE_TRIM_DOMAINS");
}

void ioa__hosts_expire(ioa__hosts *h) {
  h->generation++;
  h->checked_once = 0;
  memset(h->stamps, 0, sizeof h->stamps);
}

/* ------------------------------------------------------------ services */

/* glibc's table of socket types and protocols (gaih_inet_typeproto). */
static const struct {
  int socktype, protocol;
  int any_protocol, no_service, by_default;
} typeproto[] = {
    {SOCK_STREAM, IPPROTO_TCP, 0, 0, 1},
    {SOCK_DGRAM, IPPROTO_UDP, 0, 0, 1},
    {SOCK_RAW, 0, 1, 1, 1},
};

/* The tuples for a numeric port (or none), for the common hints; 0, or -1
 * to ask glibc itself. */
static int tuples_numeric(const ioa_resolve_hints *hi, int port, servtuple *t, int *n,
                          int have_service) {
  *n = 0;
  if (hi->socktype == 0 && hi->protocol == 0) {
    for (size_t i = 0; i < sizeof typeproto / sizeof typeproto[0]; i++)
      t[(*n)++] = (servtuple){typeproto[i].socktype, typeproto[i].protocol, port};
    return 0;
  }
  for (size_t i = 0; i < sizeof typeproto / sizeof typeproto[0]; i++) {
    if ((hi->socktype == 0 || hi->socktype == typeproto[i].socktype) &&
        (hi->protocol == 0 || typeproto[i].any_protocol ||
         hi->protocol == typeproto[i].protocol)) {
      if (have_service && typeproto[i].no_service)
        return -1;
      t[(*n)++] = (servtuple){typeproto[i].socktype,
                              typeproto[i].any_protocol ? hi->protocol : typeproto[i].protocol,
                              port};
      return 0;
    }
  }
  return -1; /* DCCP, SCTP, UDP-Lite...: glibc's own answer below */
}

/* Everything else: what glibc makes of the service with a numeric host,
 * remembered (named services read /etc/services). */
static int tuples_glibc(ioa__hosts *h, const char *service, const ioa_resolve_hints *hi,
                        servtuple *t, int *n) {
  size_t sl = service ? strlen(service) : 0;
  if (sl >= sizeof h->memo[0].service)
    return -1;
  for (unsigned i = 0; i < SERV_MEMOS; i++) {
    serv_memo *m = &h->memo[i];
    if (m->service[0] && m->socktype == hi->socktype && m->protocol == hi->protocol &&
        strcmp(m->service, service ? service : "\x01") == 0) {
      memcpy(t, m->t, sizeof m->t);
      *n = m->n;
      return m->n < 0 ? -1 : 0;
    }
  }
  struct addrinfo hints = {.ai_family = AF_INET,
                           .ai_socktype = hi->socktype,
                           .ai_protocol = hi->protocol,
                           .ai_flags = AI_NUMERICHOST | (hi->flags & AI_NUMERICSERV)};
  struct addrinfo *res = NULL;
  int rc = ioa__sys_getaddrinfo("127.0.0.1", service, &hints, &res);
  if (rc == EAI_SYSTEM || rc == EAI_MEMORY)
    return -1; /* not an answer about the service: not remembered */
  serv_memo *m = &h->memo[h->memo_next++ % SERV_MEMOS];
  snprintf(m->service, sizeof m->service, "%s", service ? service : "\x01");
  m->socktype = hi->socktype;
  m->protocol = hi->protocol;
  m->n = rc == 0 ? 0 : -1;
  for (struct addrinfo *p = res; p && m->n >= 0; p = p->ai_next) {
    if (m->n == MAX_TUPLES) {
      m->n = -1;
      break;
    }
    m->t[m->n++] = (servtuple){p->ai_socktype, p->ai_protocol,
                               ntohs(((struct sockaddr_in *)p->ai_addr)->sin_port)};
  }
  if (res)
    freeaddrinfo(res);
  memcpy(t, m->t, sizeof m->t);
  *n = m->n;
  return m->n < 0 ? -1 : 0;
}

static int tuples_for(ioa__hosts *h, const char *service, int known_port,
                      const ioa_resolve_hints *hi, servtuple *t, int *n) {
  int port = 0;
  if (service && known_port >= 0) {
    port = known_port; /* the caller parsed the digits already */
  } else if (service) {
    size_t i = 0;
    for (; service[i] >= '0' && service[i] <= '9'; i++)
      port = port * 10 + (service[i] - '0');
    if (service[i] || i == 0 || port > 65535) { /* a name */
      if (hi->flags & AI_NUMERICSERV)
        return -1; /* EAI_NONAME from glibc: the backend says so */
      return tuples_glibc(h, service, hi, t, n);
    }
  }
  /* Other protocols come between UDP and raw sockets in glibc's table. */
  int plain = hi->protocol == 0 || hi->protocol == IPPROTO_TCP || hi->protocol == IPPROTO_UDP ||
              hi->socktype == SOCK_RAW;
  if (plain && tuples_numeric(hi, port, t, n, service != NULL) == 0)
    return 0;
  return tuples_glibc(h, service, hi, t, n);
}

/* -------------------------------------------------------------- lookup */

typedef struct tuple {
  int family;
  uint8_t a[16];
} tuple;

/* The lines matching host, in file order: count into *n, ids via links. */
static const hname *find_name(const ioa__hosts *h, const char *host) {
  if (!h->names)
    return NULL;
  uint32_t hh = hash_name(host);
  for (uint32_t i = hh & h->mask;; i = (i + 1) & h->mask) {
    const hname *e = &h->names[i];
    if (!e->first)
      return NULL;
    if (e->hash == hh && same_name(h->text + e->name, host))
      return e;
  }
}

/* gethostbyname3_r(family): the first valid line, then the rest with
 * "multi".  Appends to t; returns how many, *canon the first line's name. */
static size_t by_family(const ioa__hosts *h, const hname *e, int family, int map4, tuple *t,
                        const char **canon) {
  size_t n = 0;
  for (uint32_t id = e->first; id; id = h->links[id - 1].next) {
    const hline *l = &h->lines[h->links[id - 1].line];
    if (family == AF_INET ? !l->ok4 : !l->ok6)
      continue;
    if (n == 0 && !*canon)
      *canon = h->text + l->canon;
    tuple *x = &t[n++];
    memset(x, 0, sizeof *x);
    if (family == AF_INET6) {
      x->family = AF_INET6;
      memcpy(x->a, l->a6, 16);
    } else if (map4) { /* AF_INET6 with AI_V4MAPPED */
      x->family = AF_INET6;
      x->a[10] = x->a[11] = 0xff;
      memcpy(x->a + 12, l->a4, 4);
    } else {
      x->family = AF_INET;
      memcpy(x->a, l->a4, 4);
    }
    if (!h->multi)
      break;
  }
  return n;
}

static void fill_addr(ioa_addr *a, const tuple *t, const servtuple *st) {
  memset(a, 0, sizeof *a);
  a->family = t->family;
  a->socktype = st->socktype;
  a->protocol = st->protocol;
  if (t->family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)st->port);
    memcpy(&s4->sin_addr, t->a, 4);
    a->addrlen = sizeof *s4;
  } else {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)st->port);
    memcpy(&s6->sin6_addr, t->a, 16);
    a->addrlen = sizeof *s6;
  }
}

int ioa__hosts_lookup(ioa__hosts *h, const char *host, const char *service,
                      const ioa_resolve_hints *hints, ioa_addr **addrs, size_t *naddrs,
                      char **canonname) {
  return ioa__hosts_lookup_into(h, host, service, -1, hints, NULL, 0, addrs, naddrs, canonname);
}

int ioa__hosts_lookup_into(ioa__hosts *h, const char *host, const char *service, int port,
                           const ioa_resolve_hints *hints, ioa_addr *buf, size_t cap,
                           ioa_addr **addrs, size_t *naddrs, char **canonname) {
  *addrs = NULL;
  *naddrs = 0;
  *canonname = NULL;
  if (!host || !h->table_ok || (host[0] == '*' && !host[1])) /* glibc reads "*" as no host */
    return IOA__HOSTS_DECLINE;
  const hname *e = find_name(h, host);
  if (!e)
    return IOA__HOSTS_ABSENT;
  int flags = hints->flags;
  if (!h->files_first || !h->hostconf_ok || !h->env_ok ||
      (flags & ~(AI_PASSIVE | AI_CANONNAME | AI_ADDRCONFIG | AI_V4MAPPED | AI_ALL |
                 AI_NUMERICSERV)))
    return IOA__HOSTS_DECLINE; /* AI_IDN and co.: not modelled */
  int family = hints->family;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    return IOA__HOSTS_DECLINE;
  if (flags & AI_ADDRCONFIG) {
    int v4, v6;
    ioa__addrsort_families(h->sorter, &v4, &v6);
    if (family == AF_UNSPEC && v4 != v6)
      family = v4 ? AF_INET : AF_INET6;
    else if ((family == AF_INET && !v4) || (family == AF_INET6 && !v6))
      return IOA__HOSTS_DECLINE; /* EAI_NONAME whatever the name: the backend says so */
  }
  servtuple st[MAX_TUPLES];
  int nst = 0;
  if (tuples_for(h, service, port, hints, st, &nst) < 0 || nst == 0)
    return IOA__HOSTS_DECLINE;
  /* The addresses, as nss_files returns them to getaddrinfo. */
  size_t nlines = 0;
  for (uint32_t id = e->first; id; id = h->links[id - 1].next)
    nlines++;
  tuple small[8]; /* a name is rarely on more than four lines */
  tuple *t = 2 * nlines <= sizeof small / sizeof small[0] ? small
                                                          : ioa__malloc(2 * nlines * sizeof *t);
  if (!t)
    return -ENOMEM;
  const char *canon = NULL;
  size_t n = 0;
  if (family == AF_UNSPEC) { /* gethostbyname4_r: every line, both families */
    for (uint32_t id = e->first; id; id = h->links[id - 1].next) {
      const hline *l = &h->lines[h->links[id - 1].line];
      if (!canon)
        canon = h->text + l->canon;
      memset(&t[n], 0, sizeof t[n]);
      t[n].family = l->fam_any;
      memcpy(t[n].a, l->any, l->fam_any == AF_INET ? 4 : 16);
      n++;
      if (!h->multi)
        break; /* gethostbyname4_r honours "multi off" too */
    }
  } else if (family == AF_INET) {
    n = by_family(h, e, AF_INET, 0, t, &canon);
  } else {
    n = by_family(h, e, AF_INET6, 0, t, &canon);
    int got6 = n > 0;
    if ((flags & AI_V4MAPPED) && ((flags & AI_ALL) || !got6))
      n += by_family(h, e, AF_INET, 1, t + n, &canon);
    if (got6 && (flags & (AI_V4MAPPED | AI_ALL)) == AI_V4MAPPED) {
      size_t k = 0; /* glibc drops v4-mapped answers once it has IPv6 ones */
      for (size_t i = 0; i < n; i++)
        if (!IN6_IS_ADDR_V4MAPPED((struct in6_addr *)t[i].a))
          t[k++] = t[i];
      n = k;
    }
  }
  int rc = IOA__HOSTS_DECLINE; /* no line for this family: the next source's */
  ioa_addr *v = NULL;
  size_t nv = n * (size_t)nst;
  if (n > 0 && !(v = nv <= cap ? buf : ioa__malloc(nv * sizeof *v)))
    rc = -ENOMEM;
  if (v) {
    for (size_t i = 0; i < n; i++)
      for (int j = 0; j < nst; j++)
        fill_addr(&v[i * (size_t)nst + (size_t)j], &t[i], &st[j]);
    int s = 1;
    if (n > 1)
      s = ioa__addrsort_sort(h->sorter, v, nv);
    if (s == 1 && (flags & AI_CANONNAME)) {
      size_t cl = strlen(canon);
      *canonname = ioa__malloc(cl + 1);
      if (*canonname)
        memcpy(*canonname, canon, cl + 1);
      else
        s = -ENOMEM;
    }
    if (s == 1) {
      *addrs = v;
      *naddrs = nv;
      rc = IOA__HOSTS_ANSWERED;
    } else {
      if (v != buf)
        ioa__free(v);
      rc = s < 0 ? s : IOA__HOSTS_DECLINE; /* an unmodelled gai.conf */
    }
  }
  if (t != small)
    ioa__free(t);
  return rc;
}

/* ---------------------------------------------------------- lifecycle */

int ioa__hosts_new(ioa__hosts **out) {
  ioa__hosts *h = ioa__calloc(1, sizeof *h);
  if (!h)
    return -ENOMEM;
  if (ioa__addrsort_new(&h->sorter) < 0) {
    ioa__free(h);
    return -ENOMEM;
  }
  *out = h;
  return 0;
}

void ioa__hosts_free(ioa__hosts *h) {
  if (!h)
    return;
  table_clear(h);
  ioa__addrsort_free(h->sorter);
  ioa__free(h);
}

ioa__addrsort *ioa__hosts_sorter(ioa__hosts *h) { return h->sorter; }

uint32_t ioa__hosts_generation(const ioa__hosts *h) { return h->generation; }
