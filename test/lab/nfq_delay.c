/* SPDX-License-Identifier: MIT */
/* nfq_delay: add latency to packets queued by an NFQUEUE rule (tc netem is
 * not available on the lab machines).  Each packet of queue QUEUE is held
 * for DELAY_MS and then accepted, in arrival order.
 *
 * Usage: nfq_delay QUEUE DELAY_MS [READY_FILE]
 *   e.g. inside the lab namespace (test/lab/netns-run):
 *   iptables -A OUTPUT -d 127.0.0.10 -p tcp --syn -j NFQUEUE --queue-num 3
 *   nfq_delay 3 200 ready
 * Only ever used inside the lab's private network namespace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#define HELD_MAX 4096

typedef struct held {
  uint32_t id;
  uint64_t due_ms;
} held;

static held ring[HELD_MAX];
static size_t head, count;
static uint64_t delay_ms;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph)
    return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == HELD_MAX) /* full: let it through now rather than drop it */
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  ring[(head + count) % HELD_MAX] = (held){id, now_ms() + delay_ms};
  count++;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s QUEUE DELAY_MS [READY_FILE]\n", argv[0]);
    return 2;
  }
  uint16_t qnum = (uint16_t)atoi(argv[1]);
  delay_ms = (uint64_t)strtoull(argv[2], NULL, 10);
  struct nfq_handle *h = nfq_open();
  if (!h) {
    perror("nfq_open");
    return 1;
  }
  struct nfq_q_handle *qh = nfq_create_queue(h, qnum, on_packet, NULL);
  if (!qh) {
    perror("nfq_create_queue");
    return 1;
  }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    perror("nfq_set_mode");
    return 1;
  }
  int fd = nfq_fd(h);
  if (argc > 3) {
    FILE *f = fopen(argv[3], "w");
    if (f) {
      fprintf(f, "%u\n", qnum);
      fclose(f);
    }
  }
  char buf[4096] __attribute__((aligned));
  for (;;) {
    int timeout = -1;
    if (count) {
      uint64_t t = now_ms(), due = ring[head].due_ms;
      timeout = due > t ? (int)(due - t) : 0;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, timeout);
    if (n < 0 && errno != EINTR)
      return 1;
    if (n > 0) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0)
        nfq_handle_packet(h, buf, (int)r);
    }
    uint64_t t = now_ms();
    while (count && ring[head].due_ms <= t) {
      nfq_set_verdict(qh, ring[head].id, NF_ACCEPT, 0, NULL);
      head = (head + 1) % HELD_MAX;
      count--;
    }
  }
}
