/* SPDX-License-Identifier: MIT */
/* GLib contender: GSocketClient async connect, K in flight.
 *  - numeric HOST: g_socket_client_connect_async() to a GInetSocketAddress;
 *  - a name: g_socket_client_connect_to_host_async(), which resolves with
 *    GLib's threaded resolver and races addresses (Happy Eyeballs, a fixed
 *    250 ms attempt delay in GLib; -d cannot change it and is ignored).
 * Proxy lookup is disabled: with the default proxy resolver GLib may consult
 * libproxy (WPAD: name lookups off this machine), which the bench must never
 * do, and it is not part of a connect's cost. */
#include "bench_common.h"

#include <gio/gio.h>

typedef struct run {
  GMainLoop *main;
  GSocketClient *client;
  GSocketConnectable *target; /* numeric; NULL for a name */
  bench_args *a;
  long started, done;
  int failed;
} run;

static void start_one(run *r);

static void on_connected(GObject *src, GAsyncResult *res, gpointer data) {
  run *r = data;
  GError *err = NULL;
  GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &err);
  if (!conn) {
    fprintf(stderr, "glib: connect: %s\n", err->message);
    g_error_free(err);
    r->failed = 1;
    g_main_loop_quit(r->main);
    return;
  }
  g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
  g_object_unref(conn);
  if (++r->done == r->a->n) {
    g_main_loop_quit(r->main);
    return;
  }
  if (r->started < r->a->n)
    start_one(r);
}

static void start_one(run *r) {
  r->started++;
  if (r->target)
    g_socket_client_connect_async(r->client, r->target, NULL, on_connected, r);
  else
    g_socket_client_connect_to_host_async(r->client, r->a->host, (guint16)atoi(r->a->port), NULL,
                                          on_connected, r);
}

static gboolean on_bound(gpointer data) {
  run *r = data;
  fprintf(stderr, "glib: time bound of %lds hit after %ld connects\n", r->a->max_secs, r->done);
  r->failed = 1;
  g_main_loop_quit(r->main);
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  bench_args a;
  bench_parse(&a, argc, argv);
  run r = {.a = &a};
  r.main = g_main_loop_new(NULL, FALSE);
  r.client = g_socket_client_new();
  g_socket_client_set_enable_proxy(r.client, FALSE);
  GSocketAddress *sa = g_inet_socket_address_new_from_string(a.host, (guint)atoi(a.port));
  if (sa)
    r.target = G_SOCKET_CONNECTABLE(sa);
  guint bound = g_timeout_add_seconds((guint)a.max_secs, on_bound, &r);

  double cpu0 = bench_cpu_s(), t0 = bench_now_s();
  for (long i = 0; i < a.k; i++)
    start_one(&r);
  g_main_loop_run(r.main);
  double wall = bench_now_s() - t0, cpu = bench_cpu_s() - cpu0;
  if (r.failed)
    return 1;
  g_source_remove(bound);
  bench_report("glib", &a, wall, cpu);
  if (sa)
    g_object_unref(sa);
  g_object_unref(r.client);
  g_main_loop_unref(r.main);
  return 0;
}
