/* SPDX-License-Identifier: MIT */
/* Internal syscall wrappers.
 *
 * Every syscall the library makes goes through here, for two reasons: every
 * fd is created non-blocking and close-on-exec in one place, and the fault
 * injector (fault.h) can fail any of them.  They keep the syscalls' own
 * convention (-1 and errno).  Send paths use MSG_NOSIGNAL: no SIGPIPE, ever.
 */
#ifndef IOA_SYS_H
#define IOA_SYS_H

#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

static inline int ioa__sys_socket(int domain, int type, int protocol) {
  IOA_FAULT_SYS(IOA_FOP_SOCKET, -1);
  return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}
static inline int ioa__sys_bind(int fd, const struct sockaddr *sa, socklen_t len) {
  IOA_FAULT_SYS(IOA_FOP_BIND, -1);
  return bind(fd, sa, len);
}
static inline int ioa__sys_connect(int fd, const struct sockaddr *sa, socklen_t len) {
  IOA_FAULT_SYS(IOA_FOP_CONNECT, -1);
  return connect(fd, sa, len);
}
static inline int ioa__sys_getsockopt(int fd, int level, int name, void *val, socklen_t *len) {
  IOA_FAULT_SYS(IOA_FOP_GETSOCKOPT, -1);
  return getsockopt(fd, level, name, val, len);
}
static inline int ioa__sys_setsockopt(int fd, int level, int name, const void *val,
                                     socklen_t len) {
  IOA_FAULT_SYS(IOA_FOP_SETSOCKOPT, -1);
  return setsockopt(fd, level, name, val, len);
}
static inline int ioa__sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len) {
  IOA_FAULT_SYS(IOA_FOP_GETSOCKNAME, -1);
  return getsockname(fd, sa, len);
}
static inline int ioa__sys_getpeername(int fd, struct sockaddr *sa, socklen_t *len) {
  IOA_FAULT_SYS(IOA_FOP_GETSOCKNAME, -1);
  return getpeername(fd, sa, len);
}
static inline ssize_t ioa__sys_read(int fd, void *buf, size_t n) {
  IOA_FAULT_SYS(IOA_FOP_READ, -1);
  return read(fd, buf, n);
}
/* writev() for non-sockets (pipes), which have no MSG_NOSIGNAL: SIGPIPE is
 * blocked in this thread around the call (a write raises it at the writing
 * thread) and the one the write raised is taken back; one the application
 * already had pending is left alone. */
static inline ssize_t ioa__sys_writev_nosigpipe(int fd, const struct iovec *iov, int iovcnt) {
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  int was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t r = writev(fd, iov, iovcnt);
  int e = errno;
  if (r < 0 && e == EPIPE && !was_pending) {
    static const struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
      ;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return r;
}
/* For sockets: send() with MSG_NOSIGNAL so a closed peer gives EPIPE, not
 * SIGPIPE.  Falls back to a SIGPIPE-free write() for non-sockets (pipes). */
static inline ssize_t ioa__sys_write(int fd, const void *buf, size_t n) {
  IOA_FAULT_SYS(IOA_FOP_WRITE, -1);
  ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
  if (r < 0 && errno == ENOTSOCK) {
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = n};
    r = ioa__sys_writev_nosigpipe(fd, &iov, 1);
  }
  return r;
}
static inline ssize_t ioa__sys_writev(int fd, const struct iovec *iov, int iovcnt) {
  IOA_FAULT_SYS(IOA_FOP_WRITEV, -1);
  struct msghdr mh = {0};
  mh.msg_iov = (struct iovec *)iov;
  mh.msg_iovlen = (size_t)iovcnt;
  ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
  if (r < 0 && errno == ENOTSOCK)
    r = ioa__sys_writev_nosigpipe(fd, iov, iovcnt);
  return r;
}
static inline ssize_t ioa__sys_recvmsg(int fd, struct msghdr *mh, int flags) {
  IOA_FAULT_SYS(IOA_FOP_RECVMSG, -1);
  return recvmsg(fd, mh, flags | MSG_CMSG_CLOEXEC);
}
static inline int ioa__sys_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags) {
  IOA_FAULT_SYS(IOA_FOP_RECVMSG, -1);
  return recvmmsg(fd, v, n, flags | MSG_CMSG_CLOEXEC, NULL);
}
static inline ssize_t ioa__sys_sendmsg(int fd, const struct msghdr *mh, int flags) {
  IOA_FAULT_SYS(IOA_FOP_SENDMSG, -1);
  return sendmsg(fd, mh, flags | MSG_NOSIGNAL);
}
static inline int ioa__sys_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags) {
  IOA_FAULT_SYS(IOA_FOP_SENDMSG, -1);
  return sendmmsg(fd, v, n, flags | MSG_NOSIGNAL);
}
static inline int ioa__sys_shutdown(int fd, int how) {
  IOA_FAULT_SYS(IOA_FOP_SHUTDOWN, -1);
  return shutdown(fd, how);
}
static inline int ioa__sys_epoll_create(void) {
  IOA_FAULT_SYS(IOA_FOP_EPOLL_CREATE, -1);
  return epoll_create1(EPOLL_CLOEXEC);
}
static inline int ioa__sys_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
  IOA_FAULT_SYS(IOA_FOP_EPOLL_CTL, -1);
  return epoll_ctl(ep, op, fd, ev);
}
static inline int ioa__sys_epoll_wait(int ep, struct epoll_event *evs, int n, int timeout) {
  IOA_FAULT_SYS(IOA_FOP_EPOLL_WAIT, -1);
  return epoll_wait(ep, evs, n, timeout);
}
static inline int ioa__sys_eventfd(void) {
  IOA_FAULT_SYS(IOA_FOP_EVENTFD, -1);
  return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}
/* Returns 0 or an errno value, like pthread_create. */
static inline int ioa__sys_pthread_create(pthread_t *t, const pthread_attr_t *attr,
                                         void *(*fn)(void *), void *arg) {
#ifdef IOA_FAULT_INJECTION
  int e = ioa__fault_hit(IOA_FOP_PTHREAD_CREATE);
  if (e)
    return e;
#endif
  return pthread_create(t, attr, fn, arg);
}
/* Returns getaddrinfo's value; an injected fault returns EAI_SYSTEM with errno
 * set, or the injected EAI value if it is negative. */
static inline int ioa__sys_getaddrinfo(const char *host, const char *serv,
                                      const struct addrinfo *hints, struct addrinfo **res) {
#ifdef IOA_FAULT_INJECTION
  int e = ioa__fault_hit(IOA_FOP_GETADDRINFO);
  if (e) {
    if (e < 0)
      return e;
    errno = e;
    return EAI_SYSTEM;
  }
#endif
  return getaddrinfo(host, serv, hints, res);
}
/* Configuration files (/etc/hosts, ...): read-only, close-on-exec. */
static inline int ioa__sys_open_read(const char *path) {
  IOA_FAULT_SYS(IOA_FOP_OPEN, -1);
  return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}
static inline int ioa__sys_stat(const char *path, struct stat *st) {
  IOA_FAULT_SYS(IOA_FOP_STAT, -1);
  return stat(path, st);
}
static inline int ioa__sys_fstat(int fd, struct stat *st) {
  IOA_FAULT_SYS(IOA_FOP_STAT, -1);
  return fstat(fd, st);
}
/* Make an fd we did not create (user-supplied) non-blocking and close-on-exec. */
static inline int ioa__sys_set_nonblock_cloexec(int fd) {
  IOA_FAULT_SYS(IOA_FOP_FCNTL, -1);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0)
    return -1;
  if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -1;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0)
    return -1;
  if (!(fdfl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
    return -1;
  return 0;
}
/* close() is never injected: a failure there cannot be acted upon, and on
 * Linux the fd is released even when close reports EINTR. */
static inline void ioa__sys_close(int fd) {
  if (fd >= 0)
    (void)close(fd);
}

#endif
