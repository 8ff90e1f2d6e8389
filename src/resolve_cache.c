/* SPDX-License-Identifier: MIT */
/* The resolver's answer cache (opt-in: ioa_resolver_options.cache_ttl_ms).
 *
 * glibc keeps no answers (without nscd), so each connect to a DNS name pays
 * a lookup.  curl keeps resolved names for 60 s by default; this is the
 * same idea: complete successful answers only (a failure, or an answer one
 * of whose families failed, is asked again next time), kept for the
 * configured time on the loop's clock -- or the records' DNS TTL where the
 * backend knows it (c-ares), whichever is shorter -- the least recently
 * used dropped beyond a bound.  Loop thread only.
 *
 * A key is a byte string: the hints, then the host (ASCII case-folded: DNS
 * and /etc/hosts compare names without case) and the service, each behind
 * a presence byte.  ioa_resolve() rejects NUL bytes in either, so the NUL
 * after the host makes the encoding unambiguous. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "resolve_internal.h"

typedef struct rc_entry rc_entry;
struct rc_entry {
  rc_entry *hnext; /* bucket chain */
  ioa__list lru;   /* c->lru, the most recently used first */
  uint64_t expires_ns;
  uint32_t hash, keylen;
  const unsigned char *key; /* stored after addrs[] */
  const char *canon;        /* after the key, or NULL */
  size_t naddrs;
  ioa_addr addrs[];
};

struct ioa__rcache {
  rc_entry **buckets;
  uint32_t mask;
  uint32_t n, max;
  uint64_t ttl_ns;
  ioa__list lru; /* rc_entry.lru */
};

static uint32_t hash_bytes(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

static void put_int(unsigned char *p, int v) {
  uint32_t u = (uint32_t)v;
  memcpy(p, &u, sizeof u);
}

size_t ioa__rcache_key(unsigned char *buf, const char *host, size_t hlen, const char *service,
                       size_t slen, const ioa_resolve_hints *h) {
  unsigned char *p = buf;
  put_int(p, h->family);
  put_int(p + 4, h->socktype);
  put_int(p + 8, h->protocol);
  put_int(p + 12, h->flags);
  p += 16;
  *p++ = host != NULL;
  for (size_t i = 0; host && i < hlen; i++) {
    unsigned char ch = (unsigned char)host[i];
    *p++ = ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
  }
  *p++ = '\0';
  *p++ = service != NULL;
  if (service) {
    memcpy(p, service, slen);
    p += slen;
  }
  return (size_t)(p - buf);
}

int ioa__rcache_new(unsigned ttl_ms, unsigned max, ioa__rcache **out) {
  ioa__rcache *c = ioa__calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  c->max = max ? max : IOA_RESOLVER_DEFAULT_CACHE_MAX;
  c->ttl_ns = (uint64_t)ttl_ms * 1000000u;
  uint32_t nb = 16;
  while (nb < c->max && nb < (1u << 20))
    nb <<= 1; /* load factor at most 1 up to a million entries */
  c->buckets = ioa__calloc(nb, sizeof *c->buckets);
  if (!c->buckets) {
    ioa__free(c);
    return -ENOMEM;
  }
  c->mask = nb - 1;
  ioa__list_init(&c->lru);
  *out = c;
  return 0;
}

static void lru_touch(ioa__rcache *c, rc_entry *e) {
  ioa__list_remove(&e->lru);
  ioa__list_push_front(&c->lru, &e->lru);
}

/* The chain link pointing at key's entry (at the chain's end if absent). */
static rc_entry **find_link(ioa__rcache *c, const unsigned char *key, size_t keylen,
                            uint32_t hash) {
  rc_entry **link = &c->buckets[hash & c->mask];
  for (; *link; link = &(*link)->hnext) {
    rc_entry *e = *link;
    if (e->hash == hash && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
      break;
  }
  return link;
}

static void remove_at(ioa__rcache *c, rc_entry **link) {
  rc_entry *e = *link;
  *link = e->hnext;
  ioa__list_remove(&e->lru);
  c->n--;
  ioa__free(e);
}

int ioa__rcache_get(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                    ioa_addr **addrs, size_t *n, char **canon) {
  uint32_t hash = hash_bytes(key, keylen);
  rc_entry **link = find_link(c, key, keylen, hash);
  rc_entry *e = *link;
  if (!e)
    return 0;
  if (now >= e->expires_ns) {
    remove_at(c, link);
    return 0;
  }
  /* Copies: the entry may be evicted or flushed before the answer is
   * delivered on the next loop iteration. */
  size_t cl = e->canon ? strlen(e->canon) + 1 : 0;
  ioa_addr *copy = ioa__malloc(e->naddrs * sizeof *copy);
  char *ccopy = cl ? ioa__malloc(cl) : NULL;
  if (!copy || (cl && !ccopy)) {
    ioa__free(copy);
    ioa__free(ccopy);
    return -ENOMEM;
  }
  memcpy(copy, e->addrs, e->naddrs * sizeof *copy);
  if (cl)
    memcpy(ccopy, e->canon, cl);
  *canon = ccopy;
  lru_touch(c, e);
  *addrs = copy;
  *n = e->naddrs;
  return 1;
}

void ioa__rcache_put(ioa__rcache *c, const unsigned char *key, size_t keylen, uint64_t now,
                     const ioa__answer *a) {
  size_t n = a->naddrs;
  if (n == 0 || a->status != 0 || a->incomplete || a->ttl_s == 0)
    return;
  uint64_t life = c->ttl_ns;
  if (a->ttl_s != IOA__TTL_UNKNOWN && (uint64_t)a->ttl_s * 1000000000u < life)
    life = (uint64_t)a->ttl_s * 1000000000u;
  size_t cl = a->canonname ? strlen(a->canonname) + 1 : 0;
  uint32_t hash = hash_bytes(key, keylen);
  rc_entry **link = find_link(c, key, keylen, hash);
  if (*link) {
    rc_entry *old = *link;
    if (old->naddrs == n && memcmp(old->addrs, a->addrs, n * sizeof a->addrs[0]) == 0 &&
        !old->canon == !a->canonname && (!cl || strcmp(old->canon, a->canonname) == 0)) {
      /* The same answer again (every waiter of one shared lookup stores
       * it): only its lifetime and recency change. */
      old->expires_ns = now + life;
      lru_touch(c, old);
      return;
    }
    remove_at(c, link); /* the newer answer replaces it */
  }
  rc_entry *e = ioa__malloc(sizeof *e + n * sizeof e->addrs[0] + keylen + cl);
  if (!e)
    return; /* only an optimisation: the next lookup asks again */
  e->hash = hash;
  e->keylen = (uint32_t)keylen;
  e->expires_ns = now + life;
  e->naddrs = n;
  memcpy(e->addrs, a->addrs, n * sizeof e->addrs[0]);
  unsigned char *k = (unsigned char *)(e->addrs + n);
  memcpy(k, key, keylen);
  e->key = k;
  e->canon = cl ? memcpy(k + keylen, a->canonname, cl) : NULL;
  if (c->n >= c->max) { /* drop the least recently used */
    rc_entry *lru = IOA__CONTAINER_OF(c->lru.prev, rc_entry, lru);
    remove_at(c, find_link(c, lru->key, lru->keylen, lru->hash));
  }
  rc_entry **head = &c->buckets[hash & c->mask];
  e->hnext = *head;
  *head = e;
  ioa__list_push_front(&c->lru, &e->lru);
  c->n++;
}

size_t ioa__rcache_count(const ioa__rcache *c) { return c ? c->n : 0; }

void ioa__rcache_flush(ioa__rcache *c) {
  if (!c)
    return;
  IOA__LIST_FOREACH_SAFE(n, &c->lru)
    ioa__free(IOA__CONTAINER_OF(n, rc_entry, lru));
  memset(c->buckets, 0, ((size_t)c->mask + 1) * sizeof *c->buckets);
  ioa__list_init(&c->lru);
  c->n = 0;
}

void ioa__rcache_free(ioa__rcache *c) {
  if (!c)
    return;
  ioa__rcache_flush(c);
  ioa__free(c->buckets);
  ioa__free(c);
}
