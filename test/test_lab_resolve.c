/* SPDX-License-Identifier: MIT */
/* Resolver lab: RFC 8305's resolution delay with the default resolver (the
 * getaddrinfo pool), end to end.
 *
 * Usage: test_lab_resolve SCENARIO   (inside test/lab/netns-run)
 *
 * The scenario starts a DNS server of its own (test/lab/dnsd.py) on
 * 127.0.0.54:53 that answers A at once and AAAA 400 ms late (late.test) or
 * never (never.test), and bind-mounts a resolv.conf naming only it (glibc's
 * own timeout 3 s, one attempt).  A connect by name through the loop's
 * default resolver must go over IPv4 once the 50 ms resolution delay has
 * passed, neither waiting for the late AAAA answer nor for glibc to give up
 * on the missing one: the pool looks the two families up apart.  The time
 * to connect is printed for the record (build/lab/report.txt); the checks
 * are about order, not speed.
 *
 *   gai_late_aaaa   late.test: IPv4 first, connected before the AAAA answer
 *   gai_no_aaaa     never.test: IPv4, well before glibc's 3 s timeout
 *
 * Like test_lab, it refuses to run unless it is inside netns-run's
 * namespace (only lo, IOA_LAB_INSIDE set).  Exit 77 means skipped. */
#include "testutil.h"
#include "lab_check.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IOA_LAB_DNSD
#define IOA_LAB_DNSD "test/lab/dnsd.py"
#endif

/* ------------------------------------------------ the DNS server */

static pid_t dnsd = -1;
static char workdir[64];

static int start_dns(void) {
  snprintf(workdir, sizeof workdir, "/tmp/ioa-lab-resolve.XXXXXX");
  if (!mkdtemp(workdir))
    return -1;
  char ready[128], resolv[128];
  snprintf(ready, sizeof ready, "%s/dns.ready", workdir);
  snprintf(resolv, sizeof resolv, "%s/resolv.conf", workdir);
  if (system("ip addr add 127.0.0.54/8 dev lo 2>/dev/null || true") < 0)
    return -1;
  dnsd = fork();
  if (dnsd == 0) {
    execlp("python3", "python3", IOA_LAB_DNSD, "--listen", "127.0.0.54", "--port", "53",
           "--ready", ready, "--record", "late.test=127.0.0.1", "--record", "late.test=::1",
           "--delay-aaaa", "400", "--record", "never.test=127.0.0.1", "--record",
           "never.test=::1", "--drop-aaaa", "never.test", (char *)NULL);
    _exit(127);
  }
  if (dnsd < 0)
    return -1;
  struct stat st;
  for (int i = 0; i < 200 && (stat(ready, &st) != 0 || st.st_size == 0); i++)
    usleep(25000);
  if (stat(ready, &st) != 0 || st.st_size == 0)
    return -1;
  FILE *f = fopen(resolv, "w");
  if (!f)
    return -1;
  fputs("nameserver 127.0.0.54\noptions timeout:3 attempts:1\n", f);
  fclose(f);
  return mount(resolv, "/etc/resolv.conf", NULL, MS_BIND, NULL);
}

static void stop_dns(void) {
  umount("/etc/resolv.conf");
  if (dnsd > 0) {
    kill(dnsd, SIGTERM);
    waitpid(dnsd, NULL, 0);
  }
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rm -rf %s", workdir);
  if (workdir[0] && system(cmd) < 0)
    fprintf(stderr, "cannot remove %s\n", workdir);
}

/* ------------------------------------------------------ one connect */

typedef struct run {
  uint64_t start_ns, connected_ns;
  int done, family, first_family, nattempt;
  int err;
} run;

static void on_attempt(ioa_connect_req *req, const ioa_addr *peer, const ioa_addr *local,
                       void *data) {
  run *r = data;
  if (r->nattempt++ == 0)
    r->first_family = peer->family;
  char a[IOA_ADDR_STRLEN];
  ioa_addr_format(peer, a, sizeof a);
  fprintf(stderr, "  attempt %s at +%.1f ms\n", a, (double)(mono_ns() - r->start_ns) / 1e6);
}

static void on_connected(ioa_connect_req *req, int fd, const ioa_addr *peer, void *data) {
  run *r = data;
  r->connected_ns = mono_ns();
  r->family = peer->family;
  r->done = 1;
  close(fd);
}

static void on_error(ioa_connect_req *req, ioa_syscall s, int err, void *data) {
  run *r = data;
  r->err = err;
  r->done = 1;
}

static void on_resolve_error(ioa_connect_req *req, int err, const char *msg, void *data) {
  run *r = data;
  fprintf(stderr, "  resolve error %s: %s\n", ioa_err_name(err), msg);
  r->err = err;
  r->done = 1;
}

/* Connect to host:port by name through the loop's default resolver. */
static void connect_by_name(const char *host, int port, run *r) {
  ioa_loop *loop = NULL;
  if (ioa_loop_new(NULL, &loop) < 0) {
    CHECK(0, "ioa_loop_new");
    return;
  }
  char service[16];
  snprintf(service, sizeof service, "%d", port);
  ioa_connect_params p;
  ioa_connect_params_init(&p);
  p.host = host;
  p.service = service;
  p.socktype = SOCK_STREAM;
  p.mode = IOA_CONNECT_RACE;
  p.timeout_ms = 10000;
  p.on_connected = on_connected;
  p.on_connect_error = on_error;
  p.on_resolve_error = on_resolve_error;
  p.on_attempt = on_attempt;
  p.data = r;
  memset(r, 0, sizeof *r);
  r->start_ns = mono_ns();
  int rc = ioa_connect(loop, &p, NULL);
  CHECK(rc == 0, "ioa_connect: %s", ioa_err_name(rc));
  if (rc == 0)
    CHECK(ioa_test_run_until(loop, &r->done, 15000) == 0, "no completion");
  ioa_loop_free(loop); /* and the default resolver: waits for the AAAA lookup */
  if (r->connected_ns)
    fprintf(stderr, "  %s: connected over %s in %.1f ms\n", host,
            r->family == AF_INET ? "IPv4" : "IPv6", (double)(r->connected_ns - r->start_ns) / 1e6);
}

static int listen_v4(int *port) {
  int fd = ioa_test_listen_tcp(AF_INET, 16, port);
  CHECK(fd >= 0, "listen: %s", strerror(-fd));
  return fd;
}

/* AAAA 400 ms late: IPv4 after the 50 ms resolution delay, not IPv6 after
 * the AAAA answer. */
static void sc_gai_late_aaaa(void) {
  int port;
  int l4 = listen_v4(&port);
  run r;
  connect_by_name("late.test", port, &r);
  CHECK(r.err == 0, "failed: %s", ioa_err_name(r.err));
  CHECK(r.first_family == AF_INET, "the first attempt was not IPv4: the AAAA answer was waited for");
  CHECK(r.family == AF_INET, "not connected over IPv4");
  if (l4 >= 0)
    close(l4);
}

/* AAAA never answered: IPv4 without waiting for glibc's 3 s timeout. */
static void sc_gai_no_aaaa(void) {
  int port;
  int l4 = listen_v4(&port);
  run r;
  connect_by_name("never.test", port, &r);
  CHECK(r.err == 0, "failed: %s", ioa_err_name(r.err));
  CHECK(r.first_family == AF_INET, "the first attempt was not IPv4");
  CHECK(r.family == AF_INET, "not connected over IPv4");
  CHECK(r.connected_ns && r.connected_ns - r.start_ns < 2500000000u,
        "the connect waited for the AAAA lookup to time out (glibc's 3 s)");
  if (l4 >= 0)
    close(l4);
}

int main(int argc, char **argv) {
  if (argc != 2) { /* run bare (scripts/lab's valgrind pass): nothing to do here */
    fprintf(stderr, "SKIP: usage: test/lab/netns-run %s gai_late_aaaa|gai_no_aaaa\n", argv[0]);
    return 77;
  }
  signal(SIGPIPE, SIG_IGN);
  if (!lab_inside_namespace()) {
    fprintf(stderr, "SKIP: %s must run inside test/lab/netns-run (a private network namespace "
                    "with only lo); refusing to touch a real network\n", argv[1]);
    return 77;
  }
  if (start_dns() < 0) {
    fprintf(stderr, "SKIP: cannot start the lab's DNS server on 127.0.0.54:53\n");
    stop_dns();
    return 77;
  }
  int fd0 = ioa_test_fd_count();
  if (strcmp(argv[1], "gai_late_aaaa") == 0)
    sc_gai_late_aaaa();
  else if (strcmp(argv[1], "gai_no_aaaa") == 0)
    sc_gai_no_aaaa();
  else
    fprintf(stderr, "unknown scenario %s\n", argv[1]), failures++;
  int fd1 = ioa_test_fd_count();
  CHECK(fd1 == fd0, "fd count %d before, %d after", fd0, fd1);
  stop_dns();
  fprintf(stderr, "%s: %s\n", argv[1], failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
