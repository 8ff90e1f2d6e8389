/* SPDX-License-Identifier: MIT */
/* Differential tests: the resolver's own answers against glibc's
 * getaddrinfo() on the same input.
 *
 *  - sort: the destination-address sorter (src/addrsort.c) against the
 *    order getaddrinfo() gives the same addresses read from /etc/hosts, for
 *    random mixes of IPv4 (public, private, loopback, link-local), IPv6
 *    (global, ULA, link-local, site-local, 6to4, Teredo, v4-mapped,
 *    v4-compatible, multicast, loopback), under several source-address
 *    setups (interfaces, deprecated and home addresses, routes) and several
 *    /etc/gai.conf files.
 *
 * NETWORK RULE: everything runs inside a network + mount namespace the
 * test makes (unshare -n -m): its interfaces (lo and a veth pair of its
 * own) and addresses exist only there, so any address may be used and no
 * packet can leave.  /etc/hosts and /etc/gai.conf are bind-mounted copies.
 * The sorter's probes are UDP connect()s, which send nothing. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addrsort.h"
#include "resolve_internal.h"

static int failed;
static const char *current_gaiconf; /* what fresh sorters are given */
static const char *current_label = ""; /* for failure messages */
static char workdir[256];

#define NS_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                         \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
      failed++;                                                                                    \
    }                                                                                              \
  } while (0)

/* A small deterministic generator: runs are reproducible from the seed
 * printed on failure. */
static unsigned long long rng_state;
static unsigned rnd(unsigned n) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (unsigned)((rng_state >> 33) % n);
}

static int sh(const char *cmd) {
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int write_file(const char *name, const char *content) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  FILE *f = fopen(path, "w"); /* same inode: the bind mount sees it */
  if (!f)
    return -1;
  fputs(content, f);
  return fclose(f);
}

static int bind_file(const char *name, const char *target) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  if (write_file(name, "") < 0)
    return -1;
  return mount(path, target, NULL, MS_BIND, NULL);
}

static const char *fmt_addr(const ioa_addr *a, char *buf, size_t size) {
  const void *p = a->family == AF_INET ? (const void *)&((const struct sockaddr_in *)&a->addr)->sin_addr
                                       : (const void *)&((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
  if (!inet_ntop(a->family, p, buf, (socklen_t)size))
    snprintf(buf, size, "?");
  return buf;
}

static int addr_from_text(const char *text, ioa_addr *a) {
  memset(a, 0, sizeof *a);
  a->socktype = SOCK_STREAM;
  a->protocol = IPPROTO_TCP;
  struct sockaddr_in *s4 = (struct sockaddr_in *)&a->addr;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->addr;
  if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
    a->family = s4->sin_family = AF_INET;
    a->addrlen = sizeof *s4;
    return 0;
  }
  if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
    a->family = s6->sin6_family = AF_INET6;
    a->addrlen = sizeof *s6;
    return 0;
  }
  return -1;
}

/* ------------------------------------------------------------ the sorter */

/* Destinations: every class the tables tell apart. */
static const char *const pool[] = {
    "127.0.0.1",     "127.0.0.5",   "10.0.0.7",       "10.9.9.9",        "10.0.0.1",
    "192.168.5.9",   "192.168.7.1", "172.16.3.3",     "169.254.7.7",     "100.64.0.9",
    "100.64.7.7",    "8.8.8.8",     "198.18.0.1",     "2001:db8:1::5",   "2001:db8:1::1",
    "2001:db8:2::5", "2001:db8:3::7", "2001:db8:1:0:8000::9", "fd00:1::5", "fd00:2::5",
    "fc00::9",       "fe80::5",     "::1",            "::ffff:10.0.0.7", "::ffff:127.0.0.1",
    "2002:a00:1::1", "2001:0:1::1", "fec0::1",        "::10.0.0.7",      "ff0e::1",
    "ff02::1",       "ff05::2",     "64:ff9b::a00:7", "3fff::1",         "2001:db8:4::1",
};
#define POOL_N (sizeof pool / sizeof pool[0])

/* One source-address setup: commands run in the namespace (after a reset
 * that leaves lo only). */
typedef struct setup {
  const char *name;
  const char *cmds;
} setup;

static const setup setups[] = {
    {"loopback only", ""},
    {"dual stack on a veth",
     "ip addr add 10.0.0.1/24 dev v0 && ip addr add 2001:db8:1::1/64 dev v0 nodad && "
     "ip addr add fd00:1::1/64 dev v0 nodad && ip route add default dev v0 && "
     "ip -6 route add default dev v0"},
    {"dual stack, deprecated and home addresses, a second interface",
     "ip addr add 10.0.0.1/24 dev v0 && ip addr add 2001:db8:1::1/64 dev v0 nodad && "
     "ip addr add 2001:db8:2::1/64 dev v1 nodad preferred_lft 0 && "
     "ip addr add 2001:db8:3::1/64 dev v1 nodad home && "
     "ip addr add 192.168.5.1/24 dev v1 && ip addr add 169.254.3.3/16 dev v1 && "
     "ip route add default dev v0 && ip -6 route add default dev v0"},
    {"IPv4 only, several subnets",
     "ip addr add 10.0.0.1/8 dev v0 && ip addr add 192.168.5.1/24 dev v1 && "
     "ip addr add 100.64.0.1/10 dev v0 && ip addr add 172.16.0.1/12 dev v1 && "
     "ip route add default via 100.64.0.2 dev v0"},
    {"IPv6 only, ULA and global on two links",
     "ip addr add fd00:1::1/48 dev v0 nodad && ip addr add 2001:db8:1::1/48 dev v1 nodad && "
     "ip addr add 2002:a00:1::9/48 dev v1 nodad && "
     "ip -6 route add default dev v0"},
    {"global IPv4, link-local-only IPv6",
     "ip addr add 100.64.0.1/10 dev v0 && ip -6 addr add fe80::1/64 dev v0 nodad && "
     "ip route add default dev v0 && ip -6 route add default dev v0"},
    /* No IPv6 address but ::1: glibc then keeps no interface list at all. */
    {"IPv4 only, no IPv6 address", "ip addr add 10.0.0.1/24 dev v0 && ip route add default dev v0"},
};
#define NSETUPS (sizeof setups / sizeof setups[0])

static int apply_setup(const setup *st) {
  /* A fresh veth pair: addresses and routes go with it. */
  sh("ip link del v0 2>/dev/null");
  /* No automatic link-local addresses: they would appear a moment later,
   * between getaddrinfo's look at the interfaces and the sorter's. */
  if (sh("ip link add v0 type veth peer name v1 && ip link set v0 addrgenmode none && "
         "ip link set v1 addrgenmode none && ip link set v0 up && ip link set v1 up") != 0)
    return -1;
  if (*st->cmds && sh(st->cmds) != 0)
    return -1;
  return 0;
}

/* getaddrinfo's answer for name: addresses into out (at most max). */
static int gai_order(const char *name, ioa_addr *out, size_t max, size_t *n) {
  struct addrinfo h = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo(name, NULL, &h, &res);
  if (rc != 0)
    return rc;
  *n = 0;
  for (struct addrinfo *p = res; p && *n < max; p = p->ai_next) {
    memset(&out[*n], 0, sizeof out[*n]);
    out[*n].family = p->ai_family;
    out[*n].socktype = p->ai_socktype;
    out[*n].protocol = p->ai_protocol;
    out[*n].addrlen = p->ai_addrlen;
    memcpy(&out[*n].addr, p->ai_addr, p->ai_addrlen);
    (*n)++;
  }
  freeaddrinfo(res);
  return 0;
}

static void dump_list(const char *what, const ioa_addr *v, size_t n) {
  char b[INET6_ADDRSTRLEN];
  fprintf(stderr, "  %s:", what);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, " %s", fmt_addr(&v[i], b, sizeof b));
  fprintf(stderr, "\n");
}

/* trials random address sets against getaddrinfo, with one long-lived
 * sorter (its probe cache across sorts) and a fresh one per trial. */
static int compare_sorts(ioa__addrsort *longlived, int trials, const char *label) {
  int mismatches = 0;
  for (int t = 0; t < trials; t++) {
    unsigned long long seed = rng_state;
    size_t n = 2 + rnd(7);
    ioa_addr in[16], want[16], got[16];
    char hosts[2048] = "127.0.0.1 localhost\n";
    size_t len = strlen(hosts);
    for (size_t i = 0; i < n; i++) {
      const char *a = pool[rnd(POOL_N)];
      addr_from_text(a, &in[i]);
      len += (size_t)snprintf(hosts + len, sizeof hosts - len, "%s sorted.test\n", a);
    }
    if (write_file("hosts", hosts) < 0)
      return -1;
    size_t nwant = 0;
    int rc = gai_order("sorted.test", want, 16, &nwant);
    if (rc != 0) {
      NS_CHECK(0, "%s: getaddrinfo failed: %s", label, gai_strerror(rc));
      continue;
    }
    for (int pass = 0; pass < 2; pass++) {
      ioa__addrsort *s = longlived;
      if (pass == 1 && ioa__addrsort_new(&s) < 0)
        return -1;
      if (pass == 1 && current_gaiconf)
        ioa__addrsort_config(s, current_gaiconf, strlen(current_gaiconf));
      memcpy(got, in, n * sizeof *in);
      int src = ioa__addrsort_sort(s, got, n);
      int same = src == 1 && nwant == n;
      for (size_t i = 0; same && i < n; i++)
        same = got[i].addrlen == want[i].addrlen &&
               memcmp(&got[i].addr, &want[i].addr, got[i].addrlen) == 0;
      if (!same) {
        mismatches++;
        if (mismatches <= 5) {
          fprintf(stderr, "FAIL %s: order differs (%s sorter, seed %llu, rc %d)\n", label,
                  pass ? "fresh" : "long-lived", seed, src);
          dump_list("input      ", in, n);
          dump_list("getaddrinfo", want, nwant);
          dump_list("sorter     ", got, n);
        }
      }
      if (pass == 1)
        ioa__addrsort_free(s);
    }
  }
  if (mismatches)
    failed++;
  fprintf(stderr, "sort %s: %d trials, %d mismatches\n", label, trials, mismatches);
  return 0;
}

/* This program (self) again, in a process of its own, for generated
 * configuration g of a kind ("gaiconf", "hostconf"): its wait status. */
static int rerun_self(const char *self, const char *kind, size_t g) {
  char arg[32];
  snprintf(arg, sizeof arg, "--%s=%zu", kind, g);
  pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, arg, workdir, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

/* gai.conf files; glibc reads the file once per process, so each runs in a
 * child of its own. */
static const char *const gaiconfs[] = {
    "# all defaults\n",
    "precedence ::ffff:0:0/96 100\n",
    "label ::1/128 0\nlabel ::/0 1\nlabel 2002::/16 2\nlabel ::/96 3\n"
    "label ::ffff:0:0/96 4\nlabel fec0::/10 5\nlabel fc00::/7 6\nlabel 2001:0::/32 7\n"
    "precedence ::1/128 50\nprecedence ::/0 40\nprecedence fc00::/7 30\n"
    "precedence ::ffff:0:0/96 35\nprecedence 2002::/16 30\n",
    "scopev4 ::ffff:169.254.0.0/112 2\nscopev4 ::ffff:127.0.0.0/104 2\n"
    "scopev4 ::ffff:0.0.0.0/96 14\n",
    "scopev4 10.0.0.0/8 14\nscopev4 100.64.0.0/10 5\n",
    "label 2001:db8:2::/48 9 # comment\nprecedence 2001:db8:2::/48 45\nreload yes\n"
    "bogus directive here\nlabel nonsense 3\nprecedence fd00::/8\n",
    "  label\t2001:db8::/32\t12   trailing words\nprecedence ::/0 +7\nprecedence ::1/128 -0\n",
    /* Not modelled: a prefix without a length makes glibc read an
     * uninitialised pointer (a crash for scopev4).  The sorter declines. */
    "label ::1 5\nprecedence 2001:db8:1::5 60\n",
};
#define GAICONF_UNMODELLED 7
#define NGAICONFS (sizeof gaiconfs / sizeof gaiconfs[0])

static int sort_scenario(void) {
  if (bind_file("hosts", "/etc/hosts") < 0 || bind_file("gai.conf", "/etc/gai.conf") < 0) {
    fprintf(stderr, "cannot bind-mount /etc/hosts and /etc/gai.conf\n");
    return IOA_TEST_NS_SETUP;
  }
  if (sh("ip link set lo up") != 0)
    return IOA_TEST_NS_SETUP;
  ioa__addrsort *longlived = NULL;
  if (ioa__addrsort_new(&longlived) < 0)
    return IOA_TEST_NS_SETUP;
  rng_state = 12345;
  for (size_t i = 0; i < NSETUPS; i++) {
    if (apply_setup(&setups[i]) < 0) {
      fprintf(stderr, "cannot build setup '%s' (veth needed)\n", setups[i].name);
      ioa__addrsort_free(longlived);
      return IOA_TEST_NS_SETUP;
    }
    compare_sorts(longlived, 300, setups[i].name);
  }
  /* Each gai.conf in a new process: glibc reads it once, at its first
   * sort (this one has sorted already). */
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0) {
    ioa__addrsort_free(longlived);
    return IOA_TEST_NS_SETUP;
  }
  self[sl] = '\0';
  for (size_t g = 0; g < NGAICONFS; g++) {
    if (write_file("gai.conf", gaiconfs[g]) < 0)
      break;
    int st = rerun_self(self, "gaiconf", g);
    NS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gai.conf #%zu: child status %d", g, st);
  }
  ioa__addrsort_free(longlived);
  return failed ? IOA_TEST_NS_FAIL : 0;
}

/* --------------------------------------------------------- hosts table */

static const char *const names[] = {"a", "B", "host.test", "Host.Test", "c-d", "x.y.z", "e"};
#define NNAMES (sizeof names / sizeof names[0])
static const char *const haddrs[] = {
    "127.0.0.1", "::1",       "10.0.0.7",        "2001:db8:1::5", "fd00:1::5",  "::ffff:10.0.0.9",
    "fe80::5",   "10.9.9.9",  "::ffff:127.0.0.1", "192.168.5.9",  "::",         "0.0.0.0",
    "1.2.3",     "01.2.3.4",  "1.2.3.4.5",       "::1%lo",        "garbage",    "2001:db8::1/64",
    "::10.0.0.7", "100.64.0.9", "2001:db8:2::5",  "255.255.255.255",
};
#define NHADDRS (sizeof haddrs / sizeof haddrs[0])
static const char *const seps[] = {" ", "\t", "  ", " \t ", "\r", "\v", "\f"};

/* A random hosts file: names in several spellings, odd and invalid
 * addresses, comments, blank and address-only lines. */
static size_t gen_hosts(char *buf, size_t size) {
  size_t len = 0;
  unsigned lines = 1 + rnd(12);
  for (unsigned i = 0; i < lines && len + 256 < size; i++) {
    unsigned kind = rnd(20);
    if (kind == 0) {
      len += (size_t)snprintf(buf + len, size - len, "# a comment %s\n", names[rnd(NNAMES)]);
      continue;
    }
    if (kind == 1) {
      len += (size_t)snprintf(buf + len, size - len, "%s\n", rnd(2) ? "" : "   ");
      continue;
    }
    if (rnd(4) == 0)
      len += (size_t)snprintf(buf + len, size - len, "%s", seps[rnd(3)]);
    len += (size_t)snprintf(buf + len, size - len, "%s", haddrs[rnd(NHADDRS)]);
    unsigned nn = rnd(5);
    for (unsigned k = 0; k < nn; k++)
      len += (size_t)snprintf(buf + len, size - len, "%s%s", seps[rnd(7)], names[rnd(NNAMES)]);
    if (rnd(6) == 0)
      len += (size_t)snprintf(buf + len, size - len, " #%s", names[rnd(NNAMES)]);
    if (rnd(8) == 0)
      len += (size_t)snprintf(buf + len, size - len, "%s", seps[rnd(7)]);
    if (i + 1 < lines || rnd(2))
      buf[len++] = '\n';
  }
  buf[len] = '\0';
  return len;
}

static const char *const services[] = {NULL, "80", "0", "http", "domain", "65535"};
#define NSERVICES (sizeof services / sizeof services[0])

/* Random hints of the kinds connects use, and odd ones. */
static void gen_hints(ioa_resolve_hints *h) {
  static const int fams[] = {AF_UNSPEC, AF_UNSPEC, AF_INET, AF_INET6};
  static const int types[] = {0, SOCK_STREAM, SOCK_STREAM, SOCK_DGRAM, SOCK_RAW};
  static const int protos[] = {0, 0, 0, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP};
  static const int flagbits[] = {AI_CANONNAME, AI_ADDRCONFIG, AI_V4MAPPED, AI_ALL,
                                 AI_NUMERICSERV, AI_PASSIVE};
  h->family = fams[rnd(4)];
  h->socktype = types[rnd(5)];
  h->protocol = protos[rnd(6)];
  h->flags = 0;
  for (size_t i = 0; i < sizeof flagbits / sizeof flagbits[0]; i++)
    if (rnd(3) == 0)
      h->flags |= flagbits[i];
}

typedef struct hosts_stats {
  unsigned answered, absent, declined, errors;
  unsigned missed; /* declined, though getaddrinfo answered from the file */
} hosts_stats;

/* One lookup both ways; 1 if they disagree. */
static int compare_lookup(ioa__hosts *h, const char *name, const char *service,
                          const ioa_resolve_hints *hi, hosts_stats *st, const char *file) {
  struct addrinfo gh = {.ai_family = hi->family,
                        .ai_socktype = hi->socktype,
                        .ai_protocol = hi->protocol,
                        .ai_flags = hi->flags};
  struct addrinfo *res = NULL;
  int grc = getaddrinfo(name, service, &gh, &res);
  ioa_addr *v = NULL;
  size_t n = 0;
  char *canon = NULL;
  int rc = ioa__hosts_lookup(h, name, service, hi, &v, &n, &canon);
  int bad = 0;
  char why[128] = "";
  if (rc == IOA__HOSTS_ANSWERED) {
    st->answered++;
    size_t i = 0;
    const struct addrinfo *p = res;
    for (; grc == 0 && p && i < n; p = p->ai_next, i++)
      if (p->ai_family != v[i].family || p->ai_socktype != v[i].socktype ||
          p->ai_protocol != v[i].protocol || p->ai_addrlen != v[i].addrlen ||
          memcmp(p->ai_addr, &v[i].addr, p->ai_addrlen) != 0)
        break;
    if (grc != 0)
      snprintf(why, sizeof why, "getaddrinfo failed (%s) but the table answered",
               gai_strerror(grc));
    else if (p || i != n)
      snprintf(why, sizeof why, "lists differ at entry %zu", i);
    else if ((hi->flags & AI_CANONNAME) &&
             (!canon || !res->ai_canonname || strcmp(canon, res->ai_canonname) != 0))
      snprintf(why, sizeof why, "canonical name %s, getaddrinfo %s", canon ? canon : "(none)",
               res->ai_canonname ? res->ai_canonname : "(none)");
    bad = why[0] != 0;
  } else if (rc == IOA__HOSTS_ABSENT) {
    st->absent++;
    /* nsswitch says "files" only: nothing else can answer a name the file
     * lacks (a numeric name never reaches the table). */
    if (grc == 0)
      snprintf(why, sizeof why, "the table says absent but getaddrinfo answered");
    bad = grc == 0;
  } else if (rc == IOA__HOSTS_DECLINE) {
    st->declined++;
    if (grc == 0) {
      st->missed++;
      if (getenv("IOA_DIFF_VERBOSE"))
        fprintf(stderr, "missed: %s %s fam %d type %d proto %d flags %#x\n", name,
                service ? service : "-", hi->family, hi->socktype, hi->protocol, hi->flags);
    }
  } else {
    st->errors++;
    snprintf(why, sizeof why, "lookup error %d", rc);
    bad = 1;
  }
  if (bad && failed < 10) {
    char b[INET6_ADDRSTRLEN];
    fprintf(stderr, "FAIL hosts (%s): %s\n  name %s service %s family %d socktype %d protocol %d "
                    "flags %#x\n--- hosts file:\n",
            current_label, why, name, service ? service : "(null)", hi->family, hi->socktype,
            hi->protocol, hi->flags);
    for (const char *c = file; *c; c++) /* control bytes made visible */
      if (*c == '\n' || (*c >= 0x20 && *c < 0x7f))
        fputc(*c, stderr);
      else
        fprintf(stderr, "\\x%02x", (unsigned char)*c);
    fprintf(stderr, "<EOF>\n---\n");
    fprintf(stderr, "  getaddrinfo:");
    for (const struct addrinfo *p = grc == 0 ? res : NULL; p; p = p->ai_next) {
      ioa_addr a = {.family = p->ai_family};
      memcpy(&a.addr, p->ai_addr, p->ai_addrlen);
      fprintf(stderr, " %s/%d/%d", fmt_addr(&a, b, sizeof b), p->ai_socktype, p->ai_protocol);
    }
    fprintf(stderr, "\n  table:      ");
    for (size_t i = 0; i < n; i++)
      fprintf(stderr, " %s/%d/%d", fmt_addr(&v[i], b, sizeof b), v[i].socktype, v[i].protocol);
    fprintf(stderr, "\n");
  }
  if (bad)
    failed++;
  if (res)
    freeaddrinfo(res);
  free(v);
  free(canon);
  return bad;
}

/* Random files and lookups: the table reads the real files (bind-mounted
 * copies), as the resolver does. */
static void compare_hosts(int trials, const char *label) {
  hosts_stats st = {0};
  ioa__hosts *h = NULL;
  if (ioa__hosts_new(&h) < 0)
    return;
  int before = failed;
  current_label = label;
  for (int t = 0; t < trials; t++) {
    char file[4096];
    gen_hosts(file, sizeof file);
    write_file("hosts", file);
    ioa__hosts_expire(h);
    ioa__hosts_refresh(h, 0);
    for (int k = 0; k < 8; k++) {
      ioa_resolve_hints hi;
      gen_hints(&hi);
      compare_lookup(h, names[rnd(NNAMES)], services[rnd(NSERVICES)], &hi, &st, file);
    }
  }
  ioa__hosts_free(h);
  fprintf(stderr,
          "hosts %s: %d files, %u answered, %u absent, %u declined (%u of them answered by "
          "getaddrinfo), %d mismatches\n",
          label, trials, st.answered, st.absent, st.declined, st.missed, failed - before);
  NS_CHECK(st.answered > (unsigned)trials, "%s: the table answered too rarely", label);
  /* With nsswitch "hosts: files", whatever getaddrinfo answers came from
   * the file: the table must have answered it too. */
  NS_CHECK(st.missed == 0, "%s: the table declined %u lookups the file answers", label,
           st.missed);
}

static const char *const hostconfs[] = {"multi on\n", "multi off\n", NULL, "order hosts,bind\n"};
#define NHOSTCONFS (sizeof hostconfs / sizeof hostconfs[0])

/* In a fresh process: host.conf #g is in place (glibc reads it once). */
static int hosts_scenario(size_t g) {
  if (g >= NHOSTCONFS)
    return IOA_TEST_NS_SETUP;
  rng_state = 4242 + g;
  char label[96];
  for (size_t i = 0; i < 4; i++) {
    /* AI_ADDRCONFIG sees: nothing, IPv4 only, IPv6 only, both. */
    static const char *const cmds[] = {
        "",
        "ip addr add 10.0.0.1/24 dev v0",
        "ip addr add 2001:db8:1::1/64 dev v0 nodad",
        ("ip addr add 10.0.0.1/24 dev v0 && ip addr add 2001:db8:1::1/64 dev v0 nodad && "
         "ip route add default dev v0 && ip -6 route add default dev v0"),
    };
    setup st = {"addrconfig", cmds[i]};
    if (apply_setup(&st) < 0)
      return IOA_TEST_NS_SETUP;
    snprintf(label, sizeof label, "host.conf #%zu, interfaces #%zu", g, i);
    compare_hosts(250, label);
  }
  return failed ? IOA_TEST_NS_FAIL : 0;
}

/* Runs each host.conf in a process of its own. */
static int hosts_main(void) {
  if (bind_file("hosts", "/etc/hosts") < 0 || bind_file("host.conf", "/etc/host.conf") < 0 ||
      bind_file("nsswitch.conf", "/etc/nsswitch.conf") < 0 ||
      bind_file("gai.conf", "/etc/gai.conf") < 0 || bind_file("resolv.conf", "/etc/resolv.conf") < 0)
    return IOA_TEST_NS_SETUP;
  /* "files" alone: a name the file lacks can only fail.  No DNS server. */
  if (write_file("nsswitch.conf", "hosts: files\n") < 0 ||
      write_file("resolv.conf", "nameserver 127.0.0.1\n") < 0 || sh("ip link set lo up") != 0)
    return IOA_TEST_NS_SETUP;
  char self[PATH_MAX];
  ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
  if (sl <= 0)
    return IOA_TEST_NS_SETUP;
  self[sl] = '\0';
  for (size_t g = 0; g < NHOSTCONFS; g++) {
    if (hostconfs[g])
      write_file("host.conf", hostconfs[g]);
    else
      umount("/etc/host.conf");
    int st = rerun_self(self, "hostconf", g);
    NS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "host.conf #%zu: child status %d", g, st);
  }
  return failed ? IOA_TEST_NS_FAIL : 0;
}

/* In a fresh process (same namespaces): gai.conf #g is in place. */
static int gaiconf_scenario(size_t g) {
  if (g >= NGAICONFS)
    return IOA_TEST_NS_SETUP;
  ioa__addrsort *s = NULL;
  if (ioa__addrsort_new(&s) < 0)
    return IOA_TEST_NS_SETUP;
  current_gaiconf = gaiconfs[g];
  int exact = ioa__addrsort_config(s, gaiconfs[g], strlen(gaiconfs[g]));
  if (g == GAICONF_UNMODELLED) {
    ioa_addr v[2];
    addr_from_text("127.0.0.1", &v[0]);
    addr_from_text("::1", &v[1]);
    NS_CHECK(exact == 0 && ioa__addrsort_exact(s) == 0, "gai.conf %zu claimed modelled", g);
    NS_CHECK(ioa__addrsort_sort(s, v, 2) == 0 && v[0].family == AF_INET,
             "unmodelled gai.conf: the sorter must decline and leave the order");
    ioa__addrsort_free(s);
    return failed ? IOA_TEST_NS_FAIL : 0;
  }
  NS_CHECK(exact == 1, "gai.conf %zu not modelled", g);
  char label[64];
  snprintf(label, sizeof label, "gai.conf #%zu", g);
  rng_state = 777 + g;
  for (size_t i = 1; i < 3; i++) { /* two dual-stack setups */
    if (apply_setup(&setups[i]) < 0) {
      ioa__addrsort_free(s);
      return IOA_TEST_NS_SETUP;
    }
    compare_sorts(s, 300, label);
  }
  ioa__addrsort_free(s);
  return failed ? IOA_TEST_NS_FAIL : 0;
}

/* ------------------------------------------------------------------ main */

/* The helpers bind-mount over /etc files and add interfaces: only ever in
 * namespaces of their own, never in the test's (run by hand, say).  The
 * test passes its namespaces' identities down in IOA_DIFF_OUTER_NS. */
static int ns_ids(unsigned long long *mnt, unsigned long long *net) {
  struct stat a, b;
  if (stat("/proc/self/ns/mnt", &a) != 0 || stat("/proc/self/ns/net", &b) != 0)
    return -1;
  *mnt = (unsigned long long)a.st_ino;
  *net = (unsigned long long)b.st_ino;
  return 0;
}

static void export_outer_ns(void) {
  unsigned long long mnt, net;
  char v[64];
  if (ns_ids(&mnt, &net) == 0) {
    snprintf(v, sizeof v, "%llu:%llu", mnt, net);
    setenv("IOA_DIFF_OUTER_NS", v, 1);
  }
}

static int in_private_namespaces(void) {
  const char *outer = getenv("IOA_DIFF_OUTER_NS");
  unsigned long long omnt, onet, mnt, net;
  if (!outer || sscanf(outer, "%llu:%llu", &omnt, &onet) != 2 || ns_ids(&mnt, &net) != 0)
    return 0;
  return mnt != omnt && net != onet;
}

static int helper(const char *scenario) {
  if (!in_private_namespaces()) {
    fprintf(stderr, "refusing: not inside a private mount and network namespace "
                    "(run the test itself, which uses unshare -n -m)\n");
    return IOA_TEST_NS_SETUP;
  }
  snprintf(workdir, sizeof workdir, "/tmp/ioa-diff.XXXXXX");
  if (!mkdtemp(workdir))
    return IOA_TEST_NS_SETUP;
  /* Private mounts: bind mounts stay in this namespace. */
  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  int rc = IOA_TEST_NS_SETUP;
  if (strcmp(scenario, "sort") == 0)
    rc = sort_scenario();
  else if (strcmp(scenario, "hosts") == 0)
    rc = hosts_main();
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", workdir);
  static const char *const mounted[] = {"/etc/hosts", "/etc/gai.conf", "/etc/host.conf",
                                        "/etc/nsswitch.conf", "/etc/resolv.conf"};
  for (size_t i = 0; i < sizeof mounted / sizeof mounted[0]; i++)
    umount(mounted[i]);
  sh(cmd);
  fprintf(stderr, "%s helper: %s\n", scenario, rc == 0 ? "all checks passed" : "FAILED");
  return rc;
}

static void test_hosts_vs_getaddrinfo(void **state) {
  (void)state;
  export_outer_ns();
  ioa_test_in_netns("--hosts", "the hosts table's answers differ from getaddrinfo's (see stderr)",
                    "unshare -n -m or veth unavailable here: differential hosts test");
}

static void test_sort_vs_getaddrinfo(void **state) {
  (void)state;
  export_outer_ns();
  ioa_test_in_netns("--sort", "the sorter's order differs from getaddrinfo's (see stderr)",
                    "unshare -n -m or veth unavailable here: differential sort test");
}

int main(int argc, char **argv) {
  if (argc > 2 && !in_private_namespaces())
    return IOA_TEST_NS_SETUP;
  if (argc > 2 && strncmp(argv[1], "--hostconf=", 11) == 0) {
    snprintf(workdir, sizeof workdir, "%s", argv[2]);
    return hosts_scenario(strtoul(argv[1] + 11, NULL, 10));
  }
  if (argc > 2 && strncmp(argv[1], "--gaiconf=", 10) == 0) {
    snprintf(workdir, sizeof workdir, "%s", argv[2]);
    return gaiconf_scenario(strtoul(argv[1] + 10, NULL, 10));
  }
  if (argc > 1 && strncmp(argv[1], "--", 2) == 0)
    return helper(argv[1] + 2);
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_sort_vs_getaddrinfo),
      IOA_TEST(test_hosts_vs_getaddrinfo),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
