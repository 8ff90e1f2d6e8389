/* SPDX-License-Identifier: MIT */
/* TLS test fixtures: a throw-away PKI made at test time (no key is ever
 * committed) and loopback TLS servers on threads, well behaved or not. */
#ifndef IOA_TLS_FIXTURE_H
#define IOA_TLS_FIXTURE_H

#include <stddef.h>

/* Certificates (PEM files) in a fresh temporary directory: a test CA and
 * leaves it signed, plus the odd ones.  Every key is EC P-256. */
typedef struct tls_pki {
  char dir[64];
  char ca[96];                        /* the test CA (trust this) */
  char leaf[96], leaf_key[96];        /* localhost, 127.0.0.1, ::1 */
  char expired[96], expired_key[96];  /* as leaf, expired yesterday */
  char wrong[96], wrong_key[96];      /* wrong.test only (no IP) */
  char self[96], self_key[96];        /* localhost, self-signed */
  char chain[96], chain_key[96];      /* localhost from another CA, that CA in the file */
  char client[96], client_key[96];    /* CN=ioa-client, clientAuth, from the test CA */
  char other_ca[96];                  /* the other CA alone */
} tls_pki;

/* 0, or -1 after printing why. */
int tls_pki_create(tls_pki *p);
void tls_pki_destroy(tls_pki *p);

typedef enum tls_srv_mode {
  TLS_SRV_ECHO,          /* TLS, echo until close_notify, then answer it */
  TLS_SRV_SEND_TRUNC,    /* TLS, send "hello", close TCP without close_notify */
  TLS_SRV_CLOSE_MID,     /* read the ClientHello, close */
  TLS_SRV_RESET_MID,     /* read the ClientHello, reset (RST) */
  TLS_SRV_GARBAGE,       /* answer the ClientHello with an HTTP error */
  TLS_SRV_SILENT,        /* accept, read, never answer */
  TLS_SRV_STARTTLS,      /* "220 ready", wait "STARTTLS", "220 go ahead", then ECHO */
  TLS_SRV_STARTTLS_INJECT, /* as STARTTLS, with plaintext right after "220 go ahead" */
  TLS_SRV_STARTTLS_NOREPLY, /* wait "STARTTLS", then TLS at once, then ECHO */
} tls_srv_mode;

typedef struct tls_srv_opts {
  tls_srv_mode mode;
  const char *cert, *key; /* the server's certificate (chain) and key */
  const char *alpn;       /* protocols it accepts, comma-separated; NULL = none */
  const char *client_ca;  /* require a client certificate from this CA */
  int family;             /* AF_INET (default) or AF_INET6 */
  const char *addr;       /* AF_INET: a loopback address to listen on; NULL = 127.0.0.1 */
  int max_version;        /* 0 or TLS1_2_VERSION... */
  int no_tickets;         /* no session tickets */
} tls_srv_opts;

typedef struct tls_srv tls_srv;

/* A server on an ephemeral loopback port (of o->addr), serving one connection at a
 * time until stopped.  NULL on failure (printed). */
tls_srv *tls_srv_start(const tls_srv_opts *o);
int tls_srv_port(const tls_srv *s);
/* Counters, read after the client is done (they are atomic). */
int tls_srv_accepted(const tls_srv *s);
int tls_srv_handshakes(const tls_srv *s);
int tls_srv_resumed(const tls_srv *s);
int tls_srv_clean_closes(const tls_srv *s); /* close_notify received */
/* The last handshake's SNI (empty if none) and client certificate CN. */
void tls_srv_last_sni(tls_srv *s, char *buf, size_t size);
void tls_srv_last_client_cn(tls_srv *s, char *buf, size_t size);
/* Wait (bounded, ms) until the server has finished n connections. */
int tls_srv_wait_done(tls_srv *s, int n, unsigned max_ms);
/* Wait (bounded, ms) until no connection waits in the listen queue and
 * every accepted one is finished. */
int tls_srv_quiesce(tls_srv *s, unsigned max_ms);
void tls_srv_stop(tls_srv *s);

#endif
