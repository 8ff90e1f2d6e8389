/* SPDX-License-Identifier: MIT */
/* Address module: every text form, field form and key form, every error
 * with its code and message, the sockaddrs being usable by the kernel, and a
 * round-trip property over generated addresses.  Only loopback and unix
 * sockets are touched. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define UNIX_OFF offsetof(struct sockaddr_un, sun_path)

/* Fails the test unless haystack contains needle (messages are checked by
 * their telling part, or exactly where the brief quotes them). */
static void assert_contains(const char *haystack, const char *needle) {
  if (!strstr(haystack, needle)) {
    print_error("message \"%s\" lacks \"%s\"\n", haystack, needle);
    fail();
  }
}

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static const char *fmt(const ioa_addr *a, char *buf) {
  int n = ioa_addr_format(a, buf, IOA_ADDR_STRLEN);
  assert_true(n >= 0);
  assert_int_equal((size_t)n, strlen(buf));
  return buf;
}

/* The loopback interface's name and index, for scope tests. */
static unsigned lo_index(void) {
  unsigned i = if_nametoindex("lo");
  assert_true(i > 0);
  return i;
}

/* ---- text: valid forms ---- */

struct parse_ok {
  const char *text;
  unsigned flags;
  int socktype;
  int family;
  int port;
  const char *canonical;
};

static void test_parse_valid(void **state) {
  (void)state;
  static const struct parse_ok cases[] = {
      {"127.0.0.1:80", 0, SOCK_STREAM, AF_INET, 80, "127.0.0.1:80"},
      {"0.0.0.0:0", 0, 0, AF_INET, 0, "0.0.0.0:0"},
      {"255.255.255.255:65535", 0, SOCK_DGRAM, AF_INET, 65535, "255.255.255.255:65535"},
      {"127.0.0.1:080", 0, 0, AF_INET, 80, "127.0.0.1:80"},
      {"127.0.0.1:00000000000000000080", 0, 0, AF_INET, 80, "127.0.0.1:80"},
      {"[::1]:80", 0, SOCK_STREAM, AF_INET6, 80, "[::1]:80"},
      {"[::]:0", 0, 0, AF_INET6, 0, "[::]:0"},
      {"[0:0:0:0:0:0:0:1]:443", 0, 0, AF_INET6, 443, "[::1]:443"},
      {"[FE80::ABCD]:1", 0, 0, AF_INET6, 1, "[fe80::abcd]:1"},
      {"[::ffff:127.0.0.1]:80", 0, 0, AF_INET6, 80, "[::ffff:127.0.0.1]:80"},
      {"[fe80::1%lo]:80", 0, 0, AF_INET6, 80, "[fe80::1%lo]:80"},
      {"[fe80::1%0]:80", 0, 0, AF_INET6, 80, "[fe80::1]:80"},
      {"[fe80::1%4000000000]:80", 0, 0, AF_INET6, 80, "[fe80::1%4000000000]:80"},
      {"unix:/tmp/echo.sock", 0, SOCK_STREAM, AF_UNIX, -1, "unix:/tmp/echo.sock"},
      {"unix:echo.sock", 0, 0, AF_UNIX, -1, "unix:echo.sock"},
      {"unix:unix:x", 0, 0, AF_UNIX, -1, "unix:unix:x"},
      {"unix:[::1]:80", 0, 0, AF_UNIX, -1, "unix:[::1]:80"},
      {"unix:@abstract-name", 0, SOCK_SEQPACKET, AF_UNIX, -1, "unix:@abstract-name"},
      {"unix:@@", 0, 0, AF_UNIX, -1, "unix:@@"},
      {"127.0.0.1:http", IOA_ADDR_PARSE_SERVICE, SOCK_STREAM, AF_INET, 80, "127.0.0.1:80"},
      {"[::1]:domain", IOA_ADDR_PARSE_SERVICE, SOCK_DGRAM, AF_INET6, 53, "[::1]:53"},
      {"127.0.0.1:echo", IOA_ADDR_PARSE_SERVICE, 0, AF_INET, 7, "127.0.0.1:7"},
      {"127.0.0.1:8001", IOA_ADDR_PARSE_SERVICE, 0, AF_INET, 8001, "127.0.0.1:8001"},
      {"127.0.0.1:8001", IOA_ADDR_PARSE_NO_UNIX, 0, AF_INET, 8001, "127.0.0.1:8001"},
  };
  char buf[IOA_ADDR_STRLEN];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const struct parse_ok *c = &cases[i];
    ioa_addr a, b;
    ioa_errinfo err;
    memset(&err, 0x55, sizeof err);
    int r = ioa_addr_parse(c->text, IOA_NUL_TERMINATED, c->flags, c->socktype, 0, &a, &err);
    if (r != 0)
      print_error("case %zu '%s': %s: %s\n", i, c->text, ioa_err_name(r), err.message);
    assert_int_equal(r, 0);
    assert_int_equal(err.code, 0); /* cleared on success */
    assert_string_equal(err.message, "");
    assert_int_equal(a.family, c->family);
    assert_int_equal(a.socktype, c->socktype);
    assert_int_equal(a.protocol, 0);
    assert_int_equal(ioa_addr_port(&a), c->port);
    assert_string_equal(fmt(&a, buf), c->canonical);
    /* explicit length gives the same result, and the canonical text parses
     * back to an equal address */
    assert_int_equal(ioa_addr_parse(c->text, strlen(c->text), c->flags, c->socktype, 0, &b, NULL), 0);
    assert_true(ioa_addr_equal(&a, &b));
    assert_int_equal(ioa_addr_parse(buf, IOA_NUL_TERMINATED, 0, c->socktype, 0, &b, NULL), 0);
    assert_true(ioa_addr_equal(&a, &b));
  }
}

static void test_parse_sockaddr_layout(void **state) {
  (void)state;
  ioa_addr a;
  assert_int_equal(ioa_addr_parse("127.0.0.1:8001", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 6, &a, NULL), 0);
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.addr;
  assert_int_equal(a.addrlen, sizeof *sin);
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(ntohs(sin->sin_port), 8001);
  assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
  assert_int_equal(a.protocol, 6);

  assert_int_equal(ioa_addr_parse("[fe80::1%lo]:443", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.addr;
  assert_int_equal(a.addrlen, sizeof *sin6);
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_int_equal(sin6->sin6_scope_id, lo_index());
  assert_int_equal(sin6->sin6_flowinfo, 0);
  assert_int_equal(ntohs(sin6->sin6_port), 443);

  /* scope by number formats by name when the interface exists */
  char text[64], buf[IOA_ADDR_STRLEN];
  snprintf(text, sizeof text, "[fe80::1%%%u]:443", lo_index());
  ioa_addr b;
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &b, NULL), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_string_equal(fmt(&b, buf), "[fe80::1%lo]:443");

  assert_int_equal(ioa_addr_parse("unix:/tmp/echo.sock", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.addr;
  assert_int_equal(sun->sun_family, AF_UNIX);
  assert_int_equal(a.addrlen, UNIX_OFF + strlen("/tmp/echo.sock") + 1);
  assert_string_equal(sun->sun_path, "/tmp/echo.sock");

  assert_int_equal(ioa_addr_parse("unix:@abc", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  assert_int_equal(a.addrlen, UNIX_OFF + 1 + 3);
  assert_int_equal(sun->sun_path[0], '\0');
  assert_memory_equal(sun->sun_path + 1, "abc", 3);
}

/* ---- text: every error ---- */

struct parse_err {
  const char *text;
  size_t len; /* 0: strlen */
  unsigned flags;
  int socktype, protocol;
  int code;
  const char *message; /* substring, or exact when exact is set */
  int exact;
};

static void check_parse_err(size_t i, const struct parse_err *c) {
  ioa_addr a, before;
  memset(&a, 0xAA, sizeof a);
  before = a;
  ioa_errinfo err;
  size_t len = c->len ? c->len : strlen(c->text);
  int r = ioa_addr_parse(c->text, len, c->flags, c->socktype, c->protocol, &a, &err);
  if (r != c->code || !strstr(err.message, c->message))
    print_error("case %zu '%s': got %s \"%s\", want %s \"%s\"\n", i, c->text, ioa_err_name(r),
                err.message, ioa_err_name(c->code), c->message);
  assert_int_equal(r, c->code);
  assert_int_equal(err.code, c->code);
  if (c->exact)
    assert_string_equal(err.message, c->message);
  else
    assert_contains(err.message, c->message);
  assert_memory_equal(&a, &before, sizeof a); /* untouched on failure */
  /* and without an errinfo the code is the same */
  assert_int_equal(ioa_addr_parse(c->text, len, c->flags, c->socktype, c->protocol, &a, NULL),
                   c->code);
}

static void test_parse_errors(void **state) {
  (void)state;
  static const struct parse_err cases[] = {
      {"", 0, 0, 0, 0, IOA_EADDREMPTY, "Address is empty", 1},
      {"127.0.0.1\0:80", 13, 0, 0, 0, IOA_EADDRNUL, "NUL byte at offset 9", 0},
      {"unix:/a\0b", 9, 0, 0, 0, IOA_EADDRNUL, "'unix:/a\\x00b' contains a NUL byte at offset 7", 0},
      {"127.0.0.1", 0, 0, 0, 0, IOA_EADDRMISSING, "Expected ':port' after '127.0.0.1'", 1},
      {"localhost", 0, 0, 0, 0, IOA_EADDRSYNTAX, "Expected IPv4:port, [IPv6]:port or unix:path, got 'localhost'", 1},
      {"localhost:80", 0, 0, 0, 0, IOA_EADDRIP, "'localhost' is not an IPv4 address (host names need the resolver)", 1},
      {"1.2:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address '1.2'", 0},
      {"127.1:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address '127.1'", 0},
      {"0x7f.0.0.1:80", 0, 0, 0, 0, IOA_EADDRIP, "'0x7f.0.0.1' is not an IPv4 address", 0},
      {"127.000.0.1:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address", 0},
      {"01.2.3.4:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address", 0},
      {"256.1.1.1:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address '256.1.1.1'", 0},
      {"1.2.3.4.5:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address", 0},
      {" 127.0.0.1:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address ' 127.0.0.1'", 0},
      {"127.0.0.1 :80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address", 0},
      {"1111111111111111111111.1.1.1:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address", 0},
      {":80", 0, 0, 0, 0, IOA_EADDRMISSING, "Expected an IP address before ':' in ':80'", 1},
      {"127.0.0.1:", 0, 0, 0, 0, IOA_EADDREMPTY, "port is empty", 1},
      {"127.0.0.1:70000", 0, 0, 0, 0, IOA_EADDRPORT, "port '70000' out of range 0-65535", 1},
      {"127.0.0.1:65536", 0, 0, 0, 0, IOA_EADDRPORT, "port '65536' out of range 0-65535", 1},
      {"127.0.0.1:99999999999999999999999", 0, 0, 0, 0, IOA_EADDRPORT, "out of range 0-65535", 0},
      {"127.0.0.1:-1", 0, 0, 0, 0, IOA_EADDRPORT, "port '-1' is not a decimal number 0-65535", 1},
      {"127.0.0.1:+80", 0, IOA_ADDR_PARSE_SERVICE, 0, 0, IOA_EADDRPORT, "port '+80' is not a decimal number", 0},
      {"127.0.0.1: 80", 0, 0, 0, 0, IOA_EADDRPORT, "port ' 80' is not", 0},
      {"127.0.0.1:80 ", 0, 0, 0, 0, IOA_EADDRPORT, "port '80 ' is not", 0},
      {"127.0.0.1:80x", 0, IOA_ADDR_PARSE_SERVICE, 0, 0, IOA_EADDRPORT, "port '80x' is not", 0},
      {"127.0.0.1:0x50", 0, 0, 0, 0, IOA_EADDRPORT, "port '0x50' is not", 0},
      {"127.0.0.1:http", 0, 0, SOCK_STREAM, 0, IOA_EADDRPORT, "port 'http' is not a decimal number 0-65535 (service names are not allowed here)", 1},
      {"127.0.0.1:no-such-service", 0, IOA_ADDR_PARSE_SERVICE, SOCK_STREAM, 0, IOA_EADDRSERVICE, "unknown service 'no-such-service' for tcp", 1},
      {"127.0.0.1:no-such-service", 0, IOA_ADDR_PARSE_SERVICE, SOCK_DGRAM, 0, IOA_EADDRSERVICE, "for udp", 0},
      {"127.0.0.1:http\x01", 0, IOA_ADDR_PARSE_SERVICE, 0, 0, IOA_EADDRSERVICE, "unknown service 'http\\x01'", 1},
      {"::1:80", 0, 0, 0, 0, IOA_EADDRBRACKETS, "IPv6 address with a port must be in brackets: '::1:80'", 1},
      {"::1", 0, 0, 0, 0, IOA_EADDRBRACKETS, "must be in brackets: '::1'", 0},
      {"fe80::1%lo:80", 0, 0, 0, 0, IOA_EADDRBRACKETS, "must be in brackets", 0},
      {"2001:db8::1:http", 0, 0, 0, 0, IOA_EADDRBRACKETS, "must be in brackets", 0},
      {"1.2.3.4:80:90", 0, 0, 0, 0, IOA_EADDRIP, "invalid address '1.2.3.4:80:90'", 0},
      {"[::1", 0, 0, 0, 0, IOA_EADDRSYNTAX, "Missing ']' in '[::1'", 1},
      {"[::1]", 0, 0, 0, 0, IOA_EADDRMISSING, "Expected ':port' after ']' in '[::1]'", 1},
      {"[::1]80", 0, 0, 0, 0, IOA_EADDRSYNTAX, "Unexpected '8' after ']' in '[::1]80'", 1},
      {"[::1]]:80", 0, 0, 0, 0, IOA_EADDRSYNTAX, "Unexpected ']' after ']'", 0},
      {"[::1]:", 0, 0, 0, 0, IOA_EADDREMPTY, "port is empty", 1},
      {"[::1]:65536", 0, 0, 0, 0, IOA_EADDRPORT, "port '65536' out of range 0-65535", 1},
      {"[]:80", 0, 0, 0, 0, IOA_EADDREMPTY, "IPv6 address is empty", 1},
      {"[127.0.0.1]:80", 0, 0, 0, 0, IOA_EADDRIP, "'127.0.0.1' is not an IPv6 address (IPv4 needs family inet)", 1},
      {"[::g]:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv6 address '::g'", 1},
      {"[1:2:3:4:5:6:7:8:9]:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv6 address", 0},
      {"[::1 ]:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv6 address '::1 '", 1},
      {"[fe80::1%nosuchif0]:80", 0, 0, 0, 0, IOA_EADDRSCOPE, "unknown interface 'nosuchif0' for IPv6 scope", 1},
      {"[fe80::1%aaaaaaaaaaaaaaaaaaaa]:80", 0, 0, 0, 0, IOA_EADDRSCOPE, "(names are at most 15 bytes)", 0},
      {"[fe80::1%99999999999]:80", 0, 0, 0, 0, IOA_EADDRSCOPE, "scope id '99999999999' out of range 0-4294967295", 1},
      {"[fe80::1%]:80", 0, 0, 0, 0, IOA_EADDREMPTY, "IPv6 scope is empty", 1},
      {"[%lo]:80", 0, 0, 0, 0, IOA_EADDREMPTY, "IPv6 address before '%' is empty", 1},
      {"unix:", 0, 0, 0, 0, IOA_EADDREMPTY, "unix path is empty", 1},
      {"unix:@", 0, 0, 0, 0, IOA_EADDREMPTY, "unix abstract name after '@' is empty", 1},
      {"unix:/tmp/x", 0, IOA_ADDR_PARSE_NO_UNIX, 0, 0, IOA_EADDRFAMILY, "unix addresses are not accepted here: 'unix:/tmp/x'", 1},
      {"unix:/tmp/x", 0, 0, 0, 6, IOA_EADDRPROTOCOL, "protocol 6 given for a unix address (must be 0)", 1},
      {"127.0.0.1:80", 0, 0, 16, 0, IOA_EADDRSOCKTYPE, "socktype 16 out of range 0-15", 1},
      {"127.0.0.1:80", 0, 0, -1, 0, IOA_EADDRSOCKTYPE, "socktype -1 out of range 0-15", 1},
      {"127.0.0.1:80", 0, 0, 0, 256, IOA_EADDRPROTOCOL, "protocol 256 out of range 0-255", 1},
      {"\xff\xfe:80", 0, 0, 0, 0, IOA_EADDRIP, "invalid IPv4 address '\\xff\\xfe'", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_parse_err(i, &cases[i]);
}

static void test_parse_path_limits(void **state) {
  (void)state;
  char text[300];
  ioa_addr a;
  ioa_errinfo err;
  /* 107 bytes fit (plus the NUL); 108 do not */
  char *p107 = repeat('p', 107), *p108 = repeat('p', 108), *p120 = repeat('q', 120);
  snprintf(text, sizeof text, "unix:%s", p107);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), 0);
  assert_int_equal(a.addrlen, sizeof(struct sockaddr_un));
  snprintf(text, sizeof text, "unix:%s", p108);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), IOA_EADDRPATHLEN);
  assert_string_equal(err.message, "unix path is 108 bytes; sun_path holds at most 107");
  snprintf(text, sizeof text, "unix:%s", p120);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), IOA_EADDRPATHLEN);
  assert_string_equal(err.message, "unix path is 120 bytes; sun_path holds at most 107");
  /* abstract: 107 bytes after the leading NUL, no NUL at the end */
  snprintf(text, sizeof text, "unix:@%s", p107);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), 0);
  assert_int_equal(a.addrlen, sizeof(struct sockaddr_un));
  char buf[IOA_ADDR_STRLEN];
  assert_string_equal(fmt(&a, buf), text);
  snprintf(text, sizeof text, "unix:@%s", p108);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), IOA_EADDRPATHLEN);
  assert_string_equal(err.message,
                      "unix abstract name is 108 bytes; sun_path holds at most 107 after its "
                      "leading NUL");
  /* a long input is quoted in messages capped, never overflowing them */
  char *junk = repeat('\x01', 5000);
  assert_int_equal(ioa_addr_parse(junk, IOA_NUL_TERMINATED, 0, 0, 0, &a, &err), IOA_EADDRSYNTAX);
  assert_contains(err.message, "\\x01\\x01");
  assert_true(strlen(err.message) < sizeof err.message);
  free(junk);
  free(p107);
  free(p108);
  free(p120);
}

/* ---- fields ---- */

static void test_inet_fields(void **state) {
  (void)state;
  ioa_addr a;
  ioa_errinfo err;
  char buf[IOA_ADDR_STRLEN];
  assert_int_equal(ioa_addr_inet("127.0.0.1", 8001, SOCK_STREAM, 0, &a, &err), 0);
  assert_string_equal(fmt(&a, buf), "127.0.0.1:8001");
  assert_int_equal(a.socktype, SOCK_STREAM);

  static const struct {
    const char *ip;
    int port, socktype, protocol, code;
    const char *message;
  } bad[] = {
      {"", 80, 0, 0, IOA_EADDREMPTY, "IPv4 address is empty"},
      {"::1", 80, 0, 0, IOA_EADDRIP, "'::1' is not an IPv4 address (IPv6 needs family inet6)"},
      {"10.0.0", 80, 0, 0, IOA_EADDRIP, "invalid IPv4 address '10.0.0' (expected a dotted quad like 127.0.0.1)"},
      {"example.com", 80, 0, 0, IOA_EADDRIP, "'example.com' is not an IPv4 address (host names need the resolver)"},
      {"127.0.0.1", 70000, 0, 0, IOA_EADDRPORT, "port '70000' out of range 0-65535"},
      {"127.0.0.1", -1, 0, 0, IOA_EADDRPORT, "port '-1' out of range 0-65535"},
      {"127.0.0.1", 80, 99, 0, IOA_EADDRSOCKTYPE, "socktype 99 out of range 0-15"},
      {"127.0.0.1", 80, 0, -6, IOA_EADDRPROTOCOL, "protocol -6 out of range 0-255"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = ioa_addr_inet(bad[i].ip, bad[i].port, bad[i].socktype, bad[i].protocol, &a, &err);
    assert_int_equal(r, bad[i].code);
    assert_int_equal(err.code, bad[i].code);
    assert_string_equal(err.message, bad[i].message);
  }
  assert_int_equal(ioa_addr_inet(NULL, 80, 0, 0, &a, &err), IOA_EBADPARAM);
  assert_int_equal(ioa_addr_inet("127.0.0.1", 80, 0, 0, NULL, NULL), IOA_EBADPARAM);
}

static void test_inet6_fields(void **state) {
  (void)state;
  ioa_addr a, b;
  ioa_errinfo err;
  char buf[IOA_ADDR_STRLEN], num[16];
  snprintf(num, sizeof num, "%u", lo_index());

  assert_int_equal(ioa_addr_inet6("::1", 8001, NULL, 0, SOCK_STREAM, 0, &a, &err), 0);
  assert_string_equal(fmt(&a, buf), "[::1]:8001");
  /* scope inside the literal, separately by name or number, or both agreeing */
  assert_int_equal(ioa_addr_inet6("fe80::1%lo", 1, NULL, 0, 0, 0, &a, &err), 0);
  assert_int_equal(ioa_addr_inet6("fe80::1", 1, "lo", 0, 0, 0, &b, &err), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_inet6("fe80::1", 1, num, 0, 0, 0, &b, &err), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_inet6("fe80::1%lo", 1, num, 0, 0, 0, &b, &err), 0);
  assert_true(ioa_addr_equal(&a, &b));
  /* flowinfo is stored in network order and counts for equality */
  assert_int_equal(ioa_addr_inet6("fe80::1%lo", 1, NULL, 0x12345, 0, 0, &b, &err), 0);
  assert_int_equal(ntohl(((struct sockaddr_in6 *)&b.addr)->sin6_flowinfo), 0x12345);
  assert_false(ioa_addr_equal(&a, &b));

  assert_int_equal(ioa_addr_inet6("fe80::1%lo", 1, "4000000000", 0, 0, 0, &b, &err),
                   IOA_EADDRSCOPE);
  assert_string_equal(err.message,
                      "conflicting IPv6 scopes: 'lo' in the address, '4000000000' given separately");
  assert_int_equal(ioa_addr_inet6("fe80::1", 1, "", 0, 0, 0, &b, &err), IOA_EADDREMPTY);
  assert_string_equal(err.message, "IPv6 scope is empty");
  assert_int_equal(ioa_addr_inet6("fe80::1", 1, "nosuchif0", 0, 0, 0, &b, &err), IOA_EADDRSCOPE);
  assert_int_equal(ioa_addr_inet6("127.0.0.1", 1, NULL, 0, 0, 0, &b, &err), IOA_EADDRIP);
  assert_string_equal(err.message, "'127.0.0.1' is not an IPv6 address (IPv4 needs family inet)");
  assert_int_equal(ioa_addr_inet6("[::1]", 1, NULL, 0, 0, 0, &b, &err), IOA_EADDRIP);
  assert_string_equal(err.message, "invalid IPv6 address '[::1]'");
  assert_int_equal(ioa_addr_inet6("", 1, NULL, 0, 0, 0, &b, &err), IOA_EADDREMPTY);
  assert_int_equal(ioa_addr_inet6("::1", 65536, NULL, 0, 0, 0, &b, &err), IOA_EADDRPORT);
  assert_string_equal(err.message, "port '65536' out of range 0-65535");
  assert_int_equal(ioa_addr_inet6(NULL, 1, NULL, 0, 0, 0, &b, &err), IOA_EBADPARAM);
}

static void test_unix_fields(void **state) {
  (void)state;
  ioa_addr a;
  ioa_errinfo err;
  char buf[IOA_ADDR_STRLEN];
  assert_int_equal(ioa_addr_unix("echo.sock", IOA_NUL_TERMINATED, SOCK_STREAM, &a, &err), 0);
  assert_int_equal(a.addrlen, UNIX_OFF + 10);
  assert_string_equal(fmt(&a, buf), "unix:echo.sock");
  assert_int_equal(a.protocol, 0);
  assert_int_equal(ioa_addr_port(&a), -1);

  assert_int_equal(ioa_addr_unix("@name", 5, SOCK_DGRAM, &a, &err), 0);
  assert_int_equal(a.addrlen, UNIX_OFF + 1 + 4);
  assert_string_equal(fmt(&a, buf), "unix:@name");

  /* explicit length: a NUL inside is caught, not a silent cut */
  assert_int_equal(ioa_addr_unix("ab\0cd", 5, 0, &a, &err), IOA_EADDRNUL);
  assert_string_equal(err.message, "unix path contains a NUL byte at offset 2");
  assert_int_equal(ioa_addr_unix("@ab\0cd", 6, 0, &a, &err), IOA_EADDRNUL);
  /* explicit length shorter than the string takes just that prefix */
  assert_int_equal(ioa_addr_unix("/tmp/xyz", 6, 0, &a, &err), 0);
  assert_string_equal(fmt(&a, buf), "unix:/tmp/x");

  char *p120 = repeat('x', 120);
  assert_int_equal(ioa_addr_unix(p120, IOA_NUL_TERMINATED, 0, &a, &err), IOA_EADDRPATHLEN);
  assert_string_equal(err.message, "unix path is 120 bytes; sun_path holds at most 107");
  free(p120);
  assert_int_equal(ioa_addr_unix("", IOA_NUL_TERMINATED, 0, &a, &err), IOA_EADDREMPTY);
  assert_int_equal(ioa_addr_unix("@", IOA_NUL_TERMINATED, 0, &a, &err), IOA_EADDREMPTY);
  assert_int_equal(ioa_addr_unix("x", IOA_NUL_TERMINATED, 16, &a, &err), IOA_EADDRSOCKTYPE);
  assert_int_equal(ioa_addr_unix(NULL, 0, 0, &a, &err), IOA_EBADPARAM);
}

/* ---- keys ---- */

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_keys_valid(void **state) {
  (void)state;
  ioa_addr a, b;
  ioa_errinfo err;
  char buf[IOA_ADDR_STRLEN];

  /* IO::Async's examples */
  assert_int_equal(ioa_addr_from_keys(KV("family", "inet", "socktype", "stream", "port", "8001",
                                             "ip", "127.0.0.1"), &a,
                                      &err),
                   0);
  assert_int_equal(ioa_addr_inet("127.0.0.1", 8001, SOCK_STREAM, 0, &b, NULL), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_string_equal(fmt(&a, buf), "127.0.0.1:8001");

  assert_int_equal(ioa_addr_from_keys(KV("family", "unix", "socktype", "stream", "path",
                                             "echo.sock"), &a,
                                      &err),
                   0);
  assert_int_equal(ioa_addr_unix("echo.sock", IOA_NUL_TERMINATED, SOCK_STREAM, &b, NULL), 0);
  assert_true(ioa_addr_equal(&a, &b));

  assert_int_equal(ioa_addr_from_keys(KV("family", "inet6", "ip", "fe80::2", "port", "0",
                                             "scopeid", "lo", "flowinfo", "7", "socktype", "dgram",
                                             "protocol", "17"), &a,
                                      &err),
                   0);
  assert_int_equal(ioa_addr_inet6("fe80::2", 0, "lo", 7, SOCK_DGRAM, 17, &b, NULL), 0);
  assert_true(ioa_addr_equal(&a, &b));

  /* families and socktypes by alias and number */
  assert_int_equal(ioa_addr_from_keys(KV("family", "ipv4", "ip", "1.2.3.4", "port", "1"), &a, &err), 0);
  assert_int_equal(a.family, AF_INET);
  assert_int_equal(a.socktype, 0);
  assert_int_equal(ioa_addr_from_keys(KV("family", "2", "ip", "1.2.3.4", "port", "1",
                                             "socktype", "2"), &a,
                                      &err),
                   0);
  assert_int_equal(a.socktype, SOCK_DGRAM);
  assert_int_equal(ioa_addr_from_keys(KV("family", "ipv6", "ip", "::", "port", "1",
                                             "socktype", "0"), &a,
                                      &err),
                   0);
  assert_int_equal(a.family, AF_INET6);
  assert_int_equal(ioa_addr_from_keys(KV("path", "@x", "family", "unix"), &a, &err), 0);
  assert_string_equal(fmt(&a, buf), "unix:@x");
}

struct keys_err {
  const char *const *kv;
  int code;
  const char *message;
};

static void test_keys_errors(void **state) {
  (void)state;
  char *p120 = repeat('z', 120);
  const struct keys_err cases[] = {
      {KV("ip", "127.0.0.1", "port", "80"), IOA_EADDRMISSING, "Expected 'family' in address keys"},
      {KV("family", "unix"), IOA_EADDRMISSING, "Expected 'path' for family unix"},
      {KV("family", "inet", "ip", "127.0.0.1"), IOA_EADDRMISSING, "Expected 'port' for family inet"},
      {KV("family", "inet", "port", "80"), IOA_EADDRMISSING, "Expected 'ip' for family inet"},
      {KV("family", "inet6", "port", "80"), IOA_EADDRMISSING, "Expected 'ip' for family inet6"},
      {KV("family", "inet", "host", "localhost", "ip", "127.0.0.1", "port", "80"),
       IOA_EADDRUNKNOWNKEY, "Unrecognised 'inet' address keys: host"},
      {KV("family", "inet", "host", "h", "ip", "127.0.0.1", "path", "/x", "scopeid", "1", "port", "1"),
       IOA_EADDRUNKNOWNKEY, "Unrecognised 'inet' address keys: host, path, scopeid"},
      {KV("family", "unix", "path", "/x", "port", "80"), IOA_EADDRUNKNOWNKEY,
       "Unrecognised 'unix' address keys: port"},
      {KV("family", "inet6", "ip", "::1", "port", "1", "service", "http"), IOA_EADDRUNKNOWNKEY,
       "Unrecognised 'inet6' address keys: service"},
      {KV("family", "inet", "port", "80", "port", "81", "ip", "127.0.0.1"), IOA_EADDRDUPKEY,
       "Address key 'port' given twice"},
      {(const char *const[]){"family", "inet", "port", NULL}, IOA_EADDRSYNTAX,
       "No value for address key 'port'"},
      {KV("family", "appletalk", "ip", "1.2.3.4", "port", "1"), IOA_EADDRFAMILY,
       "Unrecognised family name 'appletalk'"},
      {KV("family", "17", "ip", "1.2.3.4", "port", "1"), IOA_EADDRFAMILY,
       "Unrecognised family name '17'"},
      {KV("family", "unspec", "ip", "1.2.3.4", "port", "1"), IOA_EADDRFAMILY,
       "Family 'unspec' has no addresses; expected inet, inet6 or unix"},
      {KV("family", "INET", "ip", "1.2.3.4", "port", "1"), IOA_EADDRFAMILY,
       "Unrecognised family name 'INET'"},
      {KV("family", "inet", "socktype", "bogus", "ip", "1.2.3.4", "port", "1"), IOA_EADDRSOCKTYPE,
       "Unrecognised socktype name 'bogus'"},
      {KV("family", "inet", "socktype", "16", "ip", "1.2.3.4", "port", "1"), IOA_EADDRSOCKTYPE,
       "Unrecognised socktype name '16'"},
      {KV("family", "inet", "protocol", "tcp", "ip", "1.2.3.4", "port", "1"), IOA_EADDRPROTOCOL,
       "protocol 'tcp' is not a decimal number 0-255"},
      {KV("family", "inet", "protocol", "256", "ip", "1.2.3.4", "port", "1"), IOA_EADDRPROTOCOL,
       "protocol '256' is not a decimal number 0-255"},
      {KV("family", "inet6", "flowinfo", "x", "ip", "::1", "port", "1"), IOA_EADDRFLOWINFO,
       "flowinfo 'x' is not a decimal number 0-4294967295"},
      {KV("family", "inet6", "flowinfo", "4294967296", "ip", "::1", "port", "1"), IOA_EADDRFLOWINFO,
       "flowinfo '4294967296' is not a decimal number 0-4294967295"},
      {KV("family", "inet6", "scopeid", "nosuchif0", "ip", "fe80::1", "port", "1"), IOA_EADDRSCOPE,
       "unknown interface 'nosuchif0' for IPv6 scope"},
      {KV("family", "inet", "ip", "127.0.0.1", "port", "http"), IOA_EADDRPORT,
       "port 'http' is not a decimal number 0-65535 (service names are not allowed here)"},
      {KV("family", "inet", "ip", "127.0.0.1", "port", "70000"), IOA_EADDRPORT,
       "port '70000' out of range 0-65535"},
      {KV("family", "inet", "ip", "127.0.0.1", "port", ""), IOA_EADDREMPTY, "port is empty"},
      {KV("family", "inet", "ip", "", "port", "1"), IOA_EADDREMPTY, "IPv4 address is empty"},
      {KV("family", "inet", "ip", "::1", "port", "1"), IOA_EADDRIP,
       "'::1' is not an IPv4 address (IPv6 needs family inet6)"},
      {KV("family", "unix", "path", ""), IOA_EADDREMPTY, "unix path is empty"},
      {KV("family", "unix", "path", p120), IOA_EADDRPATHLEN,
       "unix path is 120 bytes; sun_path holds at most 107"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ioa_addr a;
    ioa_errinfo err;
    int r = ioa_addr_from_keys(cases[i].kv, &a, &err);
    if (r != cases[i].code || strcmp(err.message, cases[i].message) != 0)
      print_error("case %zu: got %s \"%s\", want %s \"%s\"\n", i, ioa_err_name(r), err.message,
                  ioa_err_name(cases[i].code), cases[i].message);
    assert_int_equal(r, cases[i].code);
    assert_int_equal(err.code, cases[i].code);
    assert_string_equal(err.message, cases[i].message);
    assert_int_equal(ioa_addr_from_keys(cases[i].kv, &a, NULL), cases[i].code);
  }
  free(p120);

  /* many unrecognised keys: the message ends in "..." but stays bounded */
  const char *many[80];
  size_t n = 0;
  many[n++] = "family";
  many[n++] = "inet";
  while (n < 78) {
    many[n++] = "some-rather-long-unknown-key";
    many[n++] = "v";
  }
  many[n] = NULL;
  ioa_addr a;
  ioa_errinfo err;
  assert_int_equal(ioa_addr_from_keys(many, &a, &err), IOA_EADDRUNKNOWNKEY);
  assert_true(strlen(err.message) == sizeof err.message - 1);
  assert_string_equal(err.message + sizeof err.message - 4, "...");
  assert_int_equal(ioa_addr_from_keys(NULL, &a, &err), IOA_EBADPARAM);
}

/* ---- words ---- */

static void test_words(void **state) {
  (void)state;
  assert_int_equal(ioa_family_from_name("inet"), AF_INET);
  assert_int_equal(ioa_family_from_name("ipv4"), AF_INET);
  assert_int_equal(ioa_family_from_name("inet6"), AF_INET6);
  assert_int_equal(ioa_family_from_name("ipv6"), AF_INET6);
  assert_int_equal(ioa_family_from_name("unix"), AF_UNIX);
  assert_int_equal(ioa_family_from_name("unspec"), AF_UNSPEC);
  assert_int_equal(ioa_family_from_name("0"), AF_UNSPEC);
  assert_int_equal(ioa_family_from_name("2"), AF_INET);
  assert_int_equal(ioa_family_from_name("10"), AF_INET6);
  assert_int_equal(ioa_family_from_name("1"), AF_UNIX);
  static const char *bad_family[] = {"", "inet4", "Inet", "17", "-2", " 2", "2 ", "99999999999", "local"};
  for (size_t i = 0; i < sizeof bad_family / sizeof bad_family[0]; i++)
    assert_int_equal(ioa_family_from_name(bad_family[i]), IOA_EADDRFAMILY);
  assert_int_equal(ioa_family_from_name(NULL), IOA_EADDRFAMILY);
  assert_string_equal(ioa_family_name(AF_INET), "inet");
  assert_string_equal(ioa_family_name(AF_INET6), "inet6");
  assert_string_equal(ioa_family_name(AF_UNIX), "unix");
  assert_string_equal(ioa_family_name(AF_UNSPEC), "unspec");
  assert_null(ioa_family_name(AF_PACKET));

  assert_int_equal(ioa_socktype_from_name("stream"), SOCK_STREAM);
  assert_int_equal(ioa_socktype_from_name("dgram"), SOCK_DGRAM);
  assert_int_equal(ioa_socktype_from_name("raw"), SOCK_RAW);
  assert_int_equal(ioa_socktype_from_name("seqpacket"), SOCK_SEQPACKET);
  assert_int_equal(ioa_socktype_from_name("0"), 0);
  assert_int_equal(ioa_socktype_from_name("1"), SOCK_STREAM);
  assert_int_equal(ioa_socktype_from_name("15"), 15);
  static const char *bad_type[] = {"", "Stream", "tcp", "16", "-1", "1x", "0x1"};
  for (size_t i = 0; i < sizeof bad_type / sizeof bad_type[0]; i++)
    assert_int_equal(ioa_socktype_from_name(bad_type[i]), IOA_EADDRSOCKTYPE);
  assert_int_equal(ioa_socktype_from_name(NULL), IOA_EADDRSOCKTYPE);
  assert_string_equal(ioa_socktype_name(SOCK_STREAM), "stream");
  assert_string_equal(ioa_socktype_name(SOCK_DGRAM), "dgram");
  assert_string_equal(ioa_socktype_name(SOCK_RAW), "raw");
  assert_string_equal(ioa_socktype_name(SOCK_SEQPACKET), "seqpacket");
  assert_null(ioa_socktype_name(0));
  assert_null(ioa_socktype_name(12));
  /* error codes have names and messages */
  assert_string_equal(ioa_err_name(IOA_EADDRDUPKEY), "IOA_EADDRDUPKEY");
  assert_string_equal(ioa_err_name(IOA_EADDRPROTOCOL), "IOA_EADDRPROTOCOL");
  assert_string_equal(ioa_err_name(IOA_EADDRFLOWINFO), "IOA_EADDRFLOWINFO");
}

/* ---- format ---- */

static void test_format(void **state) {
  (void)state;
  ioa_addr a;
  char buf[IOA_ADDR_STRLEN];
  assert_int_equal(ioa_addr_parse("127.0.0.1:80", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  /* exactly enough room, one byte short, none */
  assert_int_equal(ioa_addr_format(&a, buf, 13), 12);
  assert_string_equal(buf, "127.0.0.1:80");
  memset(buf, 'x', sizeof buf);
  assert_int_equal(ioa_addr_format(&a, buf, 12), -ENOSPC);
  assert_string_equal(buf, "");
  assert_int_equal(ioa_addr_format(&a, buf, 0), -ENOSPC);
  assert_int_equal(ioa_addr_format(&a, NULL, 10), -ENOSPC);

  /* the longest forms fit in IOA_ADDR_STRLEN */
  assert_int_equal(ioa_addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:65535",
                                  IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL),
                   0);
  assert_true(ioa_addr_format(&a, buf, sizeof buf) > 0);

  /* unknown family, unnamed unix socket, abstract name with a NUL */
  ioa_addr odd;
  memset(&odd, 0, sizeof odd);
  odd.family = AF_PACKET;
  assert_int_equal(ioa_addr_format(&odd, buf, sizeof buf), IOA_EADDRFAMILY);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, sizeof(sa_family_t), 0, 0, &odd), 0);
  assert_string_equal(fmt(&odd, buf), "unix:");
  memcpy(sun.sun_path, "\0a\0b", 4);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, (socklen_t)(UNIX_OFF + 4), 0, 0, &odd), 0);
  assert_int_equal(ioa_addr_format(&odd, buf, sizeof buf), IOA_EADDRNUL);
  assert_string_equal(buf, "");
}

/* ---- raw sockaddrs ---- */

static void test_from_sockaddr(void **state) {
  (void)state;
  ioa_addr a, b;
  char buf[IOA_ADDR_STRLEN];
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8001)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  memset(sin.sin_zero, 0x7f, sizeof sin.sin_zero); /* junk that must not matter */
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, SOCK_STREAM, 6, &a), 0);
  assert_string_equal(fmt(&a, buf), "127.0.0.1:8001");
  assert_int_equal(a.protocol, 6);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin - 1, 0, 0, &b),
                   IOA_EADDRSYNTAX);

  struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(9), .sin6_scope_id = 77,
                              .sin6_flowinfo = htonl(5)};
  sin6.sin6_addr = in6addr_loopback;
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, 0, 0, &a), 0);
  assert_int_equal(ioa_addr_inet6("::1%77", 9, NULL, 5, 0, 0, &b, NULL), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6 - 1, 0, 0, &b),
                   IOA_EADDRSYNTAX);

  /* a kernel path sockaddr with or without the NUL counted normalises */
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  strcpy(sun.sun_path, "/tmp/s");
  assert_int_equal(ioa_addr_unix("/tmp/s", IOA_NUL_TERMINATED, 0, &b, NULL), 0);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, (socklen_t)(UNIX_OFF + 6), 0, 0, &a), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, (socklen_t)(UNIX_OFF + 7), 0, 0, &a), 0);
  assert_true(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, sizeof sun, 0, 0, &a), 0);
  assert_true(ioa_addr_equal(&a, &b));
  /* a full 108-byte path without NUL (the kernel allows it) is kept whole */
  memset(sun.sun_path, 'y', sizeof sun.sun_path);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, sizeof sun, 0, 0, &a), 0);
  assert_int_equal(ioa_addr_format(&a, buf, sizeof buf), 5 + 108);

  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, sizeof sun + 1, 0, 0, &a), IOA_EADDRSYNTAX);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sun, 1, 0, 0, &a), IOA_EADDRSYNTAX);
  struct sockaddr_storage ss = {.ss_family = AF_PACKET};
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&ss, sizeof ss, 0, 0, &a), IOA_EADDRFAMILY);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, 16, 0, &a), IOA_EADDRSOCKTYPE);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, 0, 300, &a), IOA_EADDRPROTOCOL);
  assert_int_equal(ioa_addr_from_sockaddr(NULL, 0, 0, 0, &a), IOA_EBADPARAM);
}

/* ---- the kernel accepts what we build ---- */

static void test_kernel_accepts(void **state) {
  (void)state;
  ioa_addr a, got;
  char text[128], buf[IOA_ADDR_STRLEN];

  /* TCP connect to a loopback listener through a parsed address */
  int port;
  int lfd = ioa_test_listen_tcp(AF_INET, 8, &port);
  assert_true(lfd >= 0);
  snprintf(text, sizeof text, "127.0.0.1:%d", port);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL), 0);
  int fd = socket(a.family, a.socktype | SOCK_CLOEXEC, a.protocol);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&a.addr, a.addrlen), 0);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  assert_int_equal(getpeername(fd, (struct sockaddr *)&ss, &sl), 0);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&ss, sl, SOCK_STREAM, 0, &got), 0);
  assert_true(ioa_addr_equal(&a, &got));
  close(fd);
  close(lfd);

  /* unix filesystem socket: bind where the text says, getsockname agrees */
  char path[64];
  snprintf(path, sizeof path, "/tmp/ioa-test-addr-%ld.sock", (long)getpid());
  unlink(path);
  snprintf(text, sizeof text, "unix:%s", path);
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL), 0);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a.addr, a.addrlen), 0);
  assert_int_equal(access(path, F_OK), 0);
  sl = sizeof ss;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&ss, sl, SOCK_STREAM, 0, &got), 0);
  assert_true(ioa_addr_equal(&a, &got));
  assert_string_equal(fmt(&got, buf), text);
  close(fd);
  unlink(path);

  /* abstract name: the kernel reports exactly the bytes we gave, no NUL */
  snprintf(text, sizeof text, "unix:@ioa-test-addr-%ld", (long)getpid());
  assert_int_equal(ioa_addr_parse(text, IOA_NUL_TERMINATED, 0, SOCK_DGRAM, 0, &a, NULL), 0);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&a.addr, a.addrlen), 0);
  sl = sizeof ss;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
  assert_int_equal(sl, a.addrlen);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&ss, sl, SOCK_DGRAM, 0, &got), 0);
  assert_true(ioa_addr_equal(&a, &got));
  assert_string_equal(fmt(&got, buf), text);
  close(fd);

  /* an unnamed unix socket (socketpair) formats as "unix:" */
  int sp[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
  sl = sizeof ss;
  assert_int_equal(getsockname(sp[0], (struct sockaddr *)&ss, &sl), 0);
  assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&ss, sl, SOCK_STREAM, 0, &got), 0);
  assert_string_equal(fmt(&got, buf), "unix:");
  close(sp[0]);
  close(sp[1]);
}

/* ---- helpers ---- */

static void test_helpers(void **state) {
  (void)state;
  ioa_addr a, b, p;
  char buf[IOA_ADDR_STRLEN];
  assert_int_equal(ioa_addr_parse("0.0.0.0:8080", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 6, &a, NULL), 0);
  assert_true(ioa_addr_is_unspecified(&a));
  ioa_addr_for_peer(&a, &p);
  assert_string_equal(fmt(&p, buf), "127.0.0.1:8080");
  assert_false(ioa_addr_is_unspecified(&p));
  assert_int_equal(p.socktype, SOCK_STREAM);
  assert_int_equal(p.protocol, 6);

  assert_int_equal(ioa_addr_inet6("::", 9, "lo", 3, 0, 0, &a, NULL), 0);
  assert_true(ioa_addr_is_unspecified(&a));
  ioa_addr_for_peer(&a, &a); /* in place */
  assert_string_equal(fmt(&a, buf), "[::1%lo]:9");
  assert_int_equal(ntohl(((struct sockaddr_in6 *)&a.addr)->sin6_flowinfo), 3);

  /* other addresses are copied unchanged */
  assert_int_equal(ioa_addr_parse("10.1.2.3:1", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  ioa_addr_for_peer(&a, &p);
  assert_true(ioa_addr_equal(&a, &p));
  assert_int_equal(ioa_addr_parse("unix:/x", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  assert_false(ioa_addr_is_unspecified(&a));
  ioa_addr_for_peer(&a, &p);
  assert_true(ioa_addr_equal(&a, &p));
  assert_false(ioa_addr_is_unspecified(NULL));

  /* equality looks at every field that matters */
  assert_int_equal(ioa_addr_parse("127.0.0.1:1", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &a, NULL), 0);
  assert_int_equal(ioa_addr_parse("127.0.0.1:1", IOA_NUL_TERMINATED, 0, SOCK_DGRAM, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("127.0.0.1:1", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 6, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("127.0.0.1:2", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("127.0.0.2:1", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("[::ffff:127.0.0.1]:1", IOA_NUL_TERMINATED, 0, SOCK_STREAM, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("[fe80::1%lo]:1", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  assert_int_equal(ioa_addr_parse("[fe80::1]:1", IOA_NUL_TERMINATED, 0, 0, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("unix:@x", IOA_NUL_TERMINATED, 0, 0, 0, &a, NULL), 0);
  assert_int_equal(ioa_addr_parse("unix:x", IOA_NUL_TERMINATED, 0, 0, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_int_equal(ioa_addr_parse("unix:@xy", IOA_NUL_TERMINATED, 0, 0, 0, &b, NULL), 0);
  assert_false(ioa_addr_equal(&a, &b));
  assert_true(ioa_addr_equal(NULL, NULL));
  assert_false(ioa_addr_equal(&a, NULL));
  assert_int_equal(ioa_addr_port(NULL), -1);
}

/* ---- properties ---- */

/* xorshift64*: a fixed seed keeps every run identical. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static void random_addr(uint64_t *rng, ioa_addr *a, unsigned lo) {
  int socktype = (int)(rng_next(rng) % 16);
  int protocol = (int)(rng_next(rng) % 256);
  switch (rng_next(rng) % 3) {
  case 0: {
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = (uint32_t)rng_next(rng);
    sin.sin_port = (uint16_t)rng_next(rng);
    assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, socktype, protocol, a), 0);
    break;
  }
  case 1: {
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    uint64_t w[2] = {rng_next(rng), rng_next(rng)};
    memcpy(&sin6.sin6_addr, w, 16);
    /* runs of zero groups exercise "::" compression; v4-mapped the dotted tail */
    unsigned zeros = (unsigned)(rng_next(rng) % 9);
    unsigned at = (unsigned)(rng_next(rng) % 8);
    for (unsigned i = 0; i < zeros && at + i < 8; i++)
      sin6.sin6_addr.s6_addr16[at + i] = 0;
    if (rng_next(rng) % 8 == 0) {
      memset(&sin6.sin6_addr, 0, 10);
      sin6.sin6_addr.s6_addr16[5] = 0xffff;
    }
    sin6.sin6_port = (uint16_t)rng_next(rng);
    uint64_t sc = rng_next(rng) % 4;
    sin6.sin6_scope_id = sc == 0 ? 0 : sc == 1 ? lo : (uint32_t)(100000 + rng_next(rng) % 4000000000u);
    assert_int_equal(ioa_addr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, socktype, protocol, a), 0);
    break;
  }
  default: {
    char path[IOA_ADDR_UNIX_ABSTRACT_MAX + 1];
    size_t n = 1 + (size_t)(rng_next(rng) % IOA_ADDR_UNIX_PATH_MAX);
    for (size_t i = 0; i < n; i++)
      path[i] = (char)(1 + rng_next(rng) % 255);
    if (rng_next(rng) % 2) { /* abstract: one more byte after the '@' fits */
      path[0] = '@';
      if (n == 1 || rng_next(rng) % 4 == 0)
        path[n++] = 'z';
    } else if (path[0] == '@') {
      path[0] = '/';
    }
    ioa_errinfo err;
    int r = ioa_addr_unix(path, n, socktype, a, &err);
    if (r)
      print_error("unix path of %zu: %s\n", n, err.message);
    assert_int_equal(r, 0);
  }
  }
}

static void test_round_trip_property(void **state) {
  (void)state;
  uint64_t rng = 0x10a5adde5eedULL;
  unsigned lo = lo_index();
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    ioa_addr a, b;
    char t1[IOA_ADDR_STRLEN], t2[IOA_ADDR_STRLEN];
    ioa_errinfo err;
    random_addr(&rng, &a, lo);
    int n = ioa_addr_format(&a, t1, sizeof t1);
    assert_true(n > 0 && n < IOA_ADDR_STRLEN);
    int r = ioa_addr_parse(t1, (size_t)n, 0, a.socktype, a.protocol, &b, &err);
    if (r != 0 || !ioa_addr_equal(&a, &b))
      print_error("iteration %d: '%s': %s\n", i, t1, err.message);
    assert_int_equal(r, 0);
    assert_true(ioa_addr_equal(&a, &b));
    assert_int_equal(ioa_addr_format(&b, t2, sizeof t2), n);
    assert_memory_equal(t1, t2, (size_t)n);

    /* the key form reaches the same address, flowinfo included */
    if (a.family != AF_UNIX) {
      char ip[64], port[8], scope[16], flow[16], sock[8], proto[8];
      uint32_t fl = (uint32_t)rng_next(&rng);
      snprintf(port, sizeof port, "%d", ioa_addr_port(&a));
      snprintf(sock, sizeof sock, "%d", a.socktype);
      snprintf(proto, sizeof proto, "%d", a.protocol);
      snprintf(flow, sizeof flow, "%u", fl);
      if (a.family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&a.addr)->sin_addr, ip, sizeof ip);
        assert_int_equal(ioa_addr_from_keys(KV("family", "inet", "ip", ip, "port", port,
                                                   "socktype", sock, "protocol", proto), &b,
                                            &err),
                         0);
      } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.addr;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
        snprintf(scope, sizeof scope, "%u", sin6->sin6_scope_id);
        assert_int_equal(ioa_addr_from_keys(KV("family", "inet6", "ip", ip, "port", port,
                                                   "scopeid", scope, "flowinfo", flow,
                                                   "socktype", sock, "protocol", proto), &b,
                                            &err),
                         0);
        assert_false(ioa_addr_equal(&a, &b) && fl != 0);
        sin6->sin6_flowinfo = htonl(fl);
      }
      assert_true(ioa_addr_equal(&a, &b));
    }
  }
}

/* Random text over the parser's alphabet: never a crash, every failure has
 * its code in errinfo and a message, every success round-trips. */
static void test_random_text_property(void **state) {
  (void)state;
  static const char alphabet[] = "0123456789abcdefxyzlo:.[]%@/-unix\x01\x80 ";
  uint64_t rng = 0xfeedULL;
  int ok = 0;
  enum { N = 20000 };
  for (int i = 0; i < N; i++) {
    char text[48];
    size_t n = (size_t)(rng_next(&rng) % sizeof text);
    size_t k = 0;
    /* bias towards plausible starts so successes happen too */
    static const char *const starts[] = {"", "127.0.0.1:", "[::", "[fe80::1%", "unix:", "unix:@", "1.2.3.4"};
    const char *st = starts[rng_next(&rng) % (sizeof starts / sizeof starts[0])];
    for (; st[k] && k < n; k++)
      text[k] = st[k];
    for (; k < n; k++)
      text[k] = alphabet[rng_next(&rng) % (sizeof alphabet - 1)];
    ioa_addr a, b;
    ioa_errinfo err;
    int r = ioa_addr_parse(text, n, (unsigned)(rng_next(&rng) & 2), SOCK_STREAM, 0, &a, &err);
    if (r != 0) {
      assert_int_equal(err.code, r);
      assert_true(err.message[0] != '\0');
      assert_true(r <= IOA_EADDRFAMILY && r >= IOA_EADDRFLOWINFO);
      continue;
    }
    ok++;
    char t[IOA_ADDR_STRLEN];
    int m = ioa_addr_format(&a, t, sizeof t);
    assert_true(m > 0);
    assert_int_equal(ioa_addr_parse(t, (size_t)m, 0, SOCK_STREAM, 0, &b, NULL), 0);
    assert_true(ioa_addr_equal(&a, &b));
  }
  assert_true(ok > 100); /* the generator does reach the success paths */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_parse_valid),        IOA_TEST(test_parse_sockaddr_layout),
      IOA_TEST(test_parse_errors),       IOA_TEST(test_parse_path_limits),
      IOA_TEST(test_inet_fields),        IOA_TEST(test_inet6_fields),
      IOA_TEST(test_unix_fields),        IOA_TEST(test_keys_valid),
      IOA_TEST(test_keys_errors),        IOA_TEST(test_words),
      IOA_TEST(test_format),             IOA_TEST(test_from_sockaddr),
      IOA_TEST(test_kernel_accepts),     IOA_TEST(test_helpers),
      IOA_TEST(test_round_trip_property), IOA_TEST(test_random_text_property),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
