/* SPDX-License-Identifier: MIT */
/* GLib's GTlsConnection (glib-networking) in bench_tls: GSocketClient with
 * TLS, k connections in flight on the main loop, the same CA file and server
 * name as tlspeer_raw.
 *
 *   tlspeer_glib MODE PORT N K CAFILE LABEL    (MODE: hs | bulk)
 */
#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static GMainLoop *ml;
static GSocketClient *client;
static GSocketConnectable *target;
static GTlsDatabase *db;
static long n, k, started, finished;
static int bulk;
static long bulk_mib;
static guint64 got_total;

typedef struct conn {
  GIOStream *io;
  char buf[65536];
} conn;

static void start(void);

static void finish_one(conn *c) {
  g_io_stream_close(c->io, NULL, NULL);
  g_object_unref(c->io);
  g_free(c);
  finished++;
  if (started < n)
    start();
  else if (finished == n)
    g_main_loop_quit(ml);
}

static void on_read(GObject *src, GAsyncResult *res, gpointer data) {
  conn *c = data;
  GError *err = NULL;
  gssize r = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &err);
  if (r < 0) {
    fprintf(stderr, "tlspeer_glib: read: %s\n", err->message);
    exit(1);
  }
  if (r == 0) {
    finish_one(c);
    return;
  }
  got_total += (guint64)r;
  g_input_stream_read_async(g_io_stream_get_input_stream(c->io), c->buf, sizeof c->buf,
                            G_PRIORITY_DEFAULT, NULL, on_read, c);
}

static void on_written(GObject *src, GAsyncResult *res, gpointer data) {
  conn *c = data;
  GError *err = NULL;
  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &err)) {
    fprintf(stderr, "tlspeer_glib: write: %s\n", err->message);
    exit(1);
  }
  g_input_stream_read_async(g_io_stream_get_input_stream(c->io), c->buf, sizeof c->buf,
                            G_PRIORITY_DEFAULT, NULL, on_read, c);
}

static void on_connected(GObject *src, GAsyncResult *res, gpointer data) {
  (void)data;
  GError *err = NULL;
  GSocketConnection *sc = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &err);
  if (!sc) {
    fprintf(stderr, "tlspeer_glib: connect: %s\n", err->message);
    exit(1);
  }
  conn *c = g_new0(conn, 1);
  c->io = G_IO_STREAM(sc);
  static char req[32];
  int len = bulk ? snprintf(req, sizeof req, "bulk %ld\n", bulk_mib) : snprintf(req, sizeof req, "ping\n");
  g_output_stream_write_all_async(g_io_stream_get_output_stream(c->io), req, (gsize)len,
                                  G_PRIORITY_DEFAULT, NULL, on_written, c);
}

/* The TLS connection, before its handshake: our CA and the server name. */
static void on_event(GSocketClient *cl, GSocketClientEvent ev, GSocketConnectable *conn_target,
                     GIOStream *io, gpointer data) {
  (void)cl;
  (void)conn_target;
  (void)data;
  if (ev == G_SOCKET_CLIENT_CONNECTED) { /* TCP_NODELAY, as the other contenders have */
    GSocket *sock = g_socket_connection_get_socket(G_SOCKET_CONNECTION(io));
    g_socket_set_option(sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
    return;
  }
  if (ev != G_SOCKET_CLIENT_TLS_HANDSHAKING)
    return;
  g_tls_connection_set_database(G_TLS_CONNECTION(io), db);
  GSocketConnectable *name = g_network_address_new("localhost", 0);
  g_tls_client_connection_set_server_identity(G_TLS_CLIENT_CONNECTION(io), name);
  g_object_unref(name);
}

static void start(void) {
  started++;
  g_socket_client_connect_async(client, target, NULL, on_connected, NULL);
}

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: tlspeer_glib hs|bulk PORT N K CAFILE LABEL\n");
    return 64;
  }
  bulk = strcmp(argv[1], "bulk") == 0;
  n = atol(argv[3]);
  bulk_mib = n;
  k = atol(argv[4]);
  long conns = bulk ? 1 : n;
  GError *err = NULL;
  if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
    fprintf(stderr, "tlspeer_glib: no TLS backend (apt-get install glib-networking)\n");
    return 1;
  }
  db = g_tls_file_database_new(argv[5], &err);
  if (!db) {
    fprintf(stderr, "tlspeer_glib: %s\n", err->message);
    return 1;
  }
  ml = g_main_loop_new(NULL, FALSE);
  client = g_socket_client_new();
  g_socket_client_set_tls(client, TRUE);
  g_signal_connect(client, "event", G_CALLBACK(on_event), NULL);
  target = g_network_address_new("127.0.0.1", (guint16)atoi(argv[2]));
  gint64 t0 = g_get_monotonic_time();
  long saved_n = n;
  n = conns;
  for (long i = 0; i < k && i < n; i++)
    start();
  g_main_loop_run(ml);
  double dt = (double)(g_get_monotonic_time() - t0) / 1e6;
  if (bulk)
    printf("{\"contender\":\"glib\",\"workload\":\"%s\",\"bulk_mb_s\":%.1f}\n", argv[6],
           (double)got_total / 1e6 / dt);
  else
    printf("{\"contender\":\"glib\",\"workload\":\"%s\",\"handshakes_per_s\":%.1f}\n", argv[6],
           (double)saved_n / dt);
  return 0;
}
