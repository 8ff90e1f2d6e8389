/* SPDX-License-Identifier: MIT */
/* ioa-connect: JSON helpers (see json.h). */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence starting at s (at most len bytes
 * available), or 0 if the first byte does not start one.  The ranges are
 * those of the Unicode standard, table 3-7. */
size_t cli_utf8_seq_len(const unsigned char *s, size_t len) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    else if (c == 0xED)
      hi = 0x9F; /* UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
  }
  if (len < need)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < need; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return need;
}

char *cli_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
  const unsigned char *in = (const unsigned char *)s;
  /* Worst case every byte becomes the 3-byte U+FFFD. */
  if (len > (SIZE_MAX - 1) / 3)
    return NULL;
  char *out = malloc(len * 3 + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = cli_utf8_seq_len(in + i, len - i);
    if (n == 0) {
      out[o++] = (char)0xEF;
      out[o++] = (char)0xBF;
      out[o++] = (char)0xBD;
      i++;
    } else {
      memcpy(out + o, in + i, n);
      o += n;
      i += n;
    }
  }
  out[o] = '\0';
  if (out_len)
    *out_len = o;
  return out;
}

json_t *cli_json_stringn(const char *s, size_t len) {
  size_t n;
  char *clean = cli_utf8_sanitize(s, len, &n);
  if (!clean)
    return NULL;
  json_t *j = json_stringn(clean, n);
  free(clean);
  return j;
}

json_t *cli_json_string(const char *s) {
  if (!s)
    return json_null();
  return cli_json_stringn(s, strlen(s));
}

int cli_json_set(json_t *obj, const char *key, json_t *value) {
  if (!value)
    return -1;
  return json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

char *cli_json_dump_line(const json_t *obj) {
  /* Times are rounded to microseconds before they get here, so 10
   * significant digits print them exactly up to 9999 s. */
  return json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER |
                             JSON_REAL_PRECISION(10));
}

int cli_json_print(FILE *f, const json_t *obj) {
  char *line = cli_json_dump_line(obj);
  if (!line)
    return -1;
  int rc = fprintf(f, "%s\n", line) < 0 ? -1 : 0;
  free(line);
  if (fflush(f) != 0)
    rc = -1;
  return rc;
}

char *cli_json_event_line(double t_seconds, const json_t *obj) {
  char *body = cli_json_dump_line(obj);
  if (!body)
    return NULL;
  if (t_seconds < 0 || t_seconds != t_seconds)
    t_seconds = 0;
  char tbuf[64];
  int tn = snprintf(tbuf, sizeof tbuf, "{\"t\":%.6f", t_seconds);
  /* body is "{}" or "{...}": splice t in as the first member. */
  const char *rest = body[1] == '}' ? "}" : body + 1;
  size_t len = (size_t)tn + (body[1] == '}' ? 1 : 1 + strlen(rest));
  char *line = malloc(len + 1);
  if (line)
    snprintf(line, len + 1, "%s%s%s", tbuf, body[1] == '}' ? "" : ",", rest);
  free(body);
  return line;
}
