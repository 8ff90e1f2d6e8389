/* SPDX-License-Identifier: MIT */
/* One service-name lookup (ioa__service_port) behind addresses and lookups:
 * ioa_addr_parse() with IOA_ADDR_PARSE_SERVICE and ioa_resolve() give the
 * same port for every name the services database knows and both refuse a
 * name it does not, each with its documented code.  Inside a private mount
 * namespace with our own /etc/services: an entry larger than the first
 * 1 KiB buffer resolves on both paths, and one over the 64 KiB bound is an
 * error of its own on both.  Only the numeric host 127.0.0.1 is resolved. */
#include "testutil.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr_internal.h"

/* ------------------------------------------------------------- helpers */

/* The port ioa_addr_parse gives "127.0.0.1:name", or its error code. */
static int addr_port(const char *name, int socktype, ioa_errinfo *err) {
  char text[512];
  snprintf(text, sizeof text, "127.0.0.1:%s", name);
  ioa_addr a;
  int rc = ioa_addr_parse(text, IOA_NUL_TERMINATED, IOA_ADDR_PARSE_SERVICE, socktype, 0, &a, err);
  return rc < 0 ? rc : ioa_addr_port(&a);
}

typedef struct answer {
  int done, status, port;
} answer;

static void on_done(ioa_resolve_req *req, const ioa_resolve_result *res, void *data) {
  answer *a = data;
  a->done = 1;
  a->status = res->status;
  a->port = res->status == 0 && res->naddrs > 0 ? ioa_addr_port(&res->addrs[0]) : -1;
}

/* The port ioa_resolve gives 127.0.0.1 + name, or its error code (from
 * ioa_resolve itself or from the answer). */
static int resolve_port(ioa_loop *loop, ioa_resolver *r, const char *name, int socktype) {
  ioa_resolve_params p;
  ioa_resolve_params_init(&p);
  p.host = "127.0.0.1";
  p.service = name;
  p.hints.family = AF_INET;
  p.hints.socktype = socktype;
  p.on_done = on_done;
  answer a = {0};
  p.data = &a;
  int rc = ioa_resolve(r, &p, NULL);
  if (rc < 0)
    return rc;
  if (ioa_test_run_until(loop, &a.done, 5000) < 0)
    return -ETIMEDOUT;
  return a.status < 0 ? a.status : a.port;
}

static int core_port(const char *name, int socktype) {
  int port = -1;
  int rc = ioa__service_port(name, strlen(name), socktype, &port);
  return rc < 0 ? rc : port;
}

static int socktype_of(const char *proto) {
  return strcmp(proto, "tcp") == 0 ? SOCK_STREAM : strcmp(proto, "udp") == 0 ? SOCK_DGRAM : -1;
}

/* ------------------------------------------------ the system's database */

/* Every tcp/udp name in the system's services database (up to 40) gets
 * its listed port on all three paths. */
static void test_same_port_both_paths(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, NULL, &r), 0);
  struct servent ent, *se;
  char buf[4096];
  int checked = 0;
  setservent(0);
  while (checked < 40 && getservent_r(&ent, buf, sizeof buf, &se) == 0 && se) {
    int socktype = socktype_of(se->s_proto);
    if (socktype < 0 || strlen(se->s_name) > IOA__SERVICE_NAME_MAX)
      continue;
    int want = ntohs((uint16_t)se->s_port);
    ioa_errinfo err;
    if (core_port(se->s_name, socktype) != want)
      fail_msg("%s/%s: ioa__service_port %d, listed %d", se->s_name, se->s_proto,
               core_port(se->s_name, socktype), want);
    assert_int_equal(addr_port(se->s_name, socktype, &err), want);
    assert_int_equal(resolve_port(loop, r, se->s_name, socktype), want);
    checked++;
  }
  endservent();
  if (checked == 0) {
    print_message("no tcp/udp services listed here: skipped\n");
    skip();
  }
  ioa_resolver_free(r);
  ioa_loop_free(loop);
}

/* Names the database cannot have are refused alike, before any thread. */
static void test_unknown_refused_both_paths(void **state) {
  ioa_loop *loop = ioa_test_new_loop();
  ioa_resolver *r = NULL;
  assert_int_equal(ioa_resolver_new(loop, NULL, &r), 0);
  static const char *const names[] = {"ioa-no-such-service", "http\x01", "ht tp", "h\xc3\xa9"};
  ioa_resolver_stats before, after;
  ioa_resolver_get_stats(r, &before);
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    ioa_errinfo err;
    assert_int_equal(core_port(names[i], SOCK_STREAM), -ENOENT);
    assert_int_equal(addr_port(names[i], SOCK_STREAM, &err), IOA_EADDRSERVICE);
    assert_non_null(strstr(err.message, "unknown service '"));
    assert_int_equal(resolve_port(loop, r, names[i], SOCK_STREAM), IOA_EAI_SERVICE);
  }
  ioa_resolver_get_stats(r, &after);
  assert_true(after.lookups == before.lookups); /* refused at the start */
  ioa_resolver_free(r);
  ioa_loop_free(loop);
}

/* ------------------------------- our own /etc/services in a namespace */

#define NS_CHECK(cond, ...)                                                                \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "service helper: check failed: %s: ", #cond);                        \
      fprintf(stderr, __VA_ARGS__);                                                        \
      fprintf(stderr, "\n");                                                               \
      failed = 1;                                                                          \
    }                                                                                      \
  } while (0)

/* "name port/proto" with aliases up to about size bytes. */
static char *services_line(const char *name, const char *port_proto, size_t size) {
  char *s = malloc(size + 64);
  if (!s)
    return NULL;
  size_t n = (size_t)sprintf(s, "%s %s", name, port_proto);
  for (unsigned i = 0; n + 16 < size; i++)
    n += (size_t)sprintf(s + n, " ioa-alias-%05u", i);
  strcpy(s + n, "\n");
  return s;
}

static int bind_services(const char *dir, const char *name, const char *content) {
  umount("/etc/services"); /* the previous one, if any */
  return ioa_test_ns_bind(dir, name, content, "/etc/services");
}

/* One entry of 3 KiB (the first buffer is 1 KiB) and one after it. */
static int check_long_entry(const char *dir, ioa_loop *loop, ioa_resolver *r) {
  int failed = 0;
  char *line = services_line("ioa-long", "4242/tcp", 3000);
  if (!line)
    return IOA_TEST_NS_SETUP;
  char content[4096 + 64];
  snprintf(content, sizeof content, "%sioa-after 4243/udp\n", line);
  free(line);
  if (bind_services(dir, "services-long", content) != 0)
    return IOA_TEST_NS_SETUP;
  ioa_errinfo err;
  NS_CHECK(core_port("ioa-long", SOCK_STREAM) == 4242, "%d", core_port("ioa-long", SOCK_STREAM));
  NS_CHECK(addr_port("ioa-long", SOCK_STREAM, &err) == 4242, "%s", err.message);
  int rp = resolve_port(loop, r, "ioa-long", SOCK_STREAM);
  NS_CHECK(rp == 4242, "resolve: %d %s", rp, ioa_err_name(rp));
  NS_CHECK(core_port("ioa-after", SOCK_DGRAM) == 4243, "after the long one");
  NS_CHECK(addr_port("ioa-after", SOCK_DGRAM, &err) == 4243, "%s", err.message);
  rp = resolve_port(loop, r, "ioa-after", SOCK_DGRAM);
  NS_CHECK(rp == 4243, "resolve after: %d %s", rp, ioa_err_name(rp));
  /* listed for udp only: unknown for tcp on both paths */
  NS_CHECK(addr_port("ioa-after", SOCK_STREAM, &err) == IOA_EADDRSERVICE, "%s", err.message);
  NS_CHECK(resolve_port(loop, r, "ioa-after", SOCK_STREAM) == IOA_EAI_SERVICE, "udp only");
  return failed;
}

/* An entry over the 64 KiB bound: a clear error, not "unknown". */
static int check_huge_entry(const char *dir, ioa_loop *loop, ioa_resolver *r) {
  int failed = 0;
  char *line = services_line("ioa-huge", "4244/tcp", IOA__SERVICE_BUF_MAX + 4096);
  int e = line ? bind_services(dir, "services-huge", line) : -1;
  free(line);
  if (e != 0)
    return IOA_TEST_NS_SETUP;
  ioa_errinfo err;
  NS_CHECK(core_port("ioa-huge", SOCK_STREAM) == -ERANGE, "%d", core_port("ioa-huge", SOCK_STREAM));
  NS_CHECK(addr_port("ioa-huge", SOCK_STREAM, &err) == IOA_EADDRSERVICE, "addr code");
  NS_CHECK(strstr(err.message, "entry over 65536 bytes") != NULL, "addr message: %s", err.message);
  int rp = resolve_port(loop, r, "ioa-huge", SOCK_STREAM);
  NS_CHECK(rp == IOA_EAI_OVERFLOW, "resolve: %d %s", rp, ioa_err_name(rp));
  return failed;
}

/* Runs inside `unshare -n -m`. */
static int services_helper(void) {
  alarm(60);
  char dir[] = "/tmp/ioa-service-ns-XXXXXX";
  if (!mkdtemp(dir))
    return IOA_TEST_NS_SETUP;
  /* nscd would answer from the outer namespace's files: hide its socket. */
  if (ioa_test_ns_hide_nscd() != 0)
    return IOA_TEST_NS_SETUP;
  if (ioa_test_ns_bind(dir, "nsswitch.conf", "hosts: files\nservices: files\n",
                       "/etc/nsswitch.conf") != 0)
    return IOA_TEST_NS_SETUP;
  ioa_loop *loop = NULL;
  ioa_resolver *r = NULL;
  if (ioa_loop_new(NULL, &loop) < 0 || ioa_resolver_new(loop, NULL, &r) < 0)
    return IOA_TEST_NS_SETUP;
  int rc = check_long_entry(dir, loop, r);
  if (rc == 0)
    rc = check_huge_entry(dir, loop, r);
  ioa_resolver_free(r);
  ioa_loop_free(loop);
  umount("/etc/services");
  umount("/etc/nsswitch.conf");
  const char *files[] = {"services-long", "services-huge", "nsswitch.conf"};
  for (size_t i = 0; i < 3; i++) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  rmdir(dir);
  fprintf(stderr, "service helper: %s\n", rc ? "FAILED" : "all checks passed");
  return rc == 1 ? IOA_TEST_NS_FAIL : rc;
}

static void test_services_file_entries(void **state) {
  ioa_test_in_netns("--services-helper", "checks inside the namespace failed (see stderr)",
                    "unshare -n -m unavailable here: namespace test");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--services-helper") == 0)
    return services_helper();
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_same_port_both_paths),
      IOA_TEST(test_unknown_refused_both_paths),
      IOA_TEST(test_services_file_entries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
