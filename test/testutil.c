/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int ioa_test_dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

int ioa_test_fd_count(void) {
  int n = ioa_test_dir_entries("/proc/self/fd");
  return n < 0 ? -1 : n - 1; /* the DIR's own fd */
}

int ioa_test_fd_setup(void **state) {
  int *baseline = malloc(sizeof *baseline);
  if (!baseline)
    return -1;
  *baseline = ioa_test_fd_count();
  *state = baseline;
  return 0;
}

int ioa_test_fd_teardown(void **state) {
  int *baseline = *state;
  int now = ioa_test_fd_count();
  int before = *baseline;
  free(baseline);
  if (now != before) {
    print_error("fd leak: %d open before the test, %d after\n", before, now);
    return -1;
  }
  return 0;
}

socklen_t ioa_test_loopback(int family, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_loopback;
    s6->sin6_port = htons((uint16_t)port);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s4->sin_port = htons((uint16_t)port);
  return sizeof *s4;
}

static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return -errno;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int ioa_test_listen_tcp(int family, int backlog, int *port) {
  struct sockaddr_storage ss;
  socklen_t len = ioa_test_loopback(family, 0, &ss);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  *port = bound_port(fd);
  return fd;
}

int ioa_test_closed_port(int family) {
  struct sockaddr_storage ss;
  socklen_t len = ioa_test_loopback(family, 0, &ss);
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int port = -1;
  if (bind(fd, (struct sockaddr *)&ss, len) == 0)
    port = bound_port(fd);
  close(fd);
  return port;
}

int ioa_test_have_ipv6(void) {
  int port = 0;
  int fd = ioa_test_listen_tcp(AF_INET6, 1, &port);
  if (fd < 0)
    return 0;
  close(fd);
  return 1;
}

int ioa_test_blackhole_open_at(ioa_test_blackhole *b, const char *ipv4, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, ipv4, &sa.sin_addr) != 1 || ntohl(sa.sin_addr.s_addr) >> 24 != 127)
    return -1; /* loopback only */
  b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (b->lfd < 0)
    return -1;
  socklen_t len = sizeof sa;
  if (bind(b->lfd, (struct sockaddr *)&sa, len) < 0 || listen(b->lfd, 0) < 0 ||
      getsockname(b->lfd, (struct sockaddr *)&sa, &len) < 0) {
    close(b->lfd);
    return -1;
  }
  b->port = ntohs(sa.sin_port);
  b->filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct pollfd pfd = {.fd = b->filler, .events = POLLOUT};
  if (b->filler < 0 || (connect(b->filler, (struct sockaddr *)&sa, len) < 0 &&
                        errno != EINPROGRESS) ||
      poll(&pfd, 1, 2000) != 1) { /* the one queued connection is established */
    if (b->filler >= 0)
      close(b->filler);
    close(b->lfd);
    return -1;
  }
  return 0;
}

int ioa_test_blackhole_open(ioa_test_blackhole *b) {
  return ioa_test_blackhole_open_at(b, "127.0.0.1", 0);
}

void ioa_test_blackhole_close(ioa_test_blackhole *b) {
  close(b->filler);
  close(b->lfd);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int ioa_test_run_until(ioa_loop *loop, const int *flag, unsigned max_ms) {
  uint64_t end = wall_ms() + max_ms;
  while (!*flag && wall_ms() < end) {
    int r = ioa_loop_run(loop, IOA_RUN_NOWAIT);
    if (*flag)
      break;
    if (r == 0 && ioa_loop_active(loop) == 0)
      break;
    /* Block briefly for events without overshooting the wall-clock bound. */
    if (r > 0)
      (void)ioa_loop_run(loop, IOA_RUN_ONCE);
  }
  return *flag ? 0 : -ETIMEDOUT;
}

void ioa_test_wake_cb(ioa_timer *t, void *data) {
  (void)t;
  (void)data;
}

int ioa_test_run_ticking(ioa_loop *loop, const int *flag, unsigned max_ms) {
  ioa_timer t;
  ioa_timer_init(loop, &t, ioa_test_wake_cb, NULL);
  assert_int_equal(ioa_timer_start(&t, 20u * 1000000u, 20u * 1000000u), 0);
  int r = ioa_test_run_until(loop, flag, max_ms);
  ioa_timer_stop(&t);
  return r;
}

void ioa_test_run_for(ioa_loop *loop, unsigned ms) {
  int never = 0;
  (void)ioa_test_run_ticking(loop, &never, ms);
}

ioa_loop *ioa_test_new_loop(void) {
  ioa_loop *loop = NULL;
  assert_int_equal(ioa_loop_new(NULL, &loop), 0);
  assert_non_null(loop);
  return loop;
}

int ioa_test_in_own_namespaces(void) {
  const char *kinds[2] = {"net", "mnt"};
  for (int i = 0; i < 2; i++) {
    char self[64], parent[64], a[128] = "", b[128] = "";
    snprintf(self, sizeof self, "/proc/self/ns/%s", kinds[i]);
    snprintf(parent, sizeof parent, "/proc/%d/ns/%s", (int)getppid(), kinds[i]);
    if (readlink(self, a, sizeof a - 1) <= 0 || readlink(parent, b, sizeof b - 1) <= 0 ||
        strcmp(a, b) == 0)
      return 0;
  }
  return 1;
}

int ioa_test_ns_hide_nscd(void) {
  if (!ioa_test_in_own_namespaces())
    return -1;
  if (access("/run/nscd", F_OK) != 0)
    return 0;
  return mount("tmpfs", "/run/nscd", "tmpfs", 0, NULL);
}

int ioa_test_ns_bind(const char *dir, const char *name, const char *content, const char *target) {
  /* Never over the machine's own files: a helper run by hand, outside the
   * namespaces its test makes, once left /etc/hosts bind-mounted. */
  if (!ioa_test_in_own_namespaces()) {
    fprintf(stderr, "refusing to bind-mount over %s outside a namespace of our own\n", target);
    return -1;
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(content, f);
  fclose(f);
  return mount(path, target, NULL, MS_BIND, NULL);
}

void ioa_test_in_netns(const char *helper_arg, const char *failed_msg, const char *skip_why) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  assert_true(n > 0);
  self[n] = '\0';
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execlp("unshare", "unshare", "-n", "-m", self, helper_arg, (char *)NULL);
    _exit(127);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return;
  if (WIFEXITED(st) && WEXITSTATUS(st) == IOA_TEST_NS_FAIL)
    fail_msg("%s", failed_msg);
  print_message("%s (status %d): skipped\n", skip_why, st);
  skip();
}
