/* SPDX-License-Identifier: MIT */
/* ioa-connect: JSON helpers on top of jansson.
 *
 * jansson refuses strings that are not valid UTF-8 (json_string returns
 * NULL), but the text we print comes from the outside world: unix socket
 * paths, abstract names and error messages may hold any byte.  Everything
 * goes through cli_json_stringn(), which replaces each byte that does not
 * belong to a well-formed UTF-8 sequence by U+FFFD, so the output is always
 * valid JSON. */
#ifndef IOA_CLI_JSON_H
#define IOA_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* Copy s[0..len) into a new NUL-terminated buffer holding valid UTF-8:
 * ill-formed bytes (stray continuation bytes, overlong forms, surrogates,
 * code points above U+10FFFF, truncated sequences) become U+FFFD, one per
 * byte.  Embedded NUL bytes are kept; *out_len (optional) gets the length.
 * Returns NULL only when memory runs out. */
char *cli_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* Length of the well-formed UTF-8 sequence at s (len bytes available), or
 * 0 if the first byte does not start one. */
size_t cli_utf8_seq_len(const unsigned char *s, size_t len);

/* A JSON string for s[0..len) (sanitized).  NULL only on ENOMEM. */
json_t *cli_json_stringn(const char *s, size_t len);
/* Same for a C string; NULL s gives JSON null. */
json_t *cli_json_string(const char *s);

/* Set key to value, taking the reference (json_object_set_new), and
 * remember an allocation failure in the object so the caller notices it at
 * dump time.  Returns 0 or -1. */
int cli_json_set(json_t *obj, const char *key, json_t *value);

/* One compact, ASCII-only line (non-ASCII escaped as \uXXXX), reals with
 * microsecond-friendly precision.  Returns a malloc'd string (free()) or NULL. */
char *cli_json_dump_line(const json_t *obj);

/* Dump obj as one line to f, flushing it.  Returns 0 or -1. */
int cli_json_print(FILE *f, const json_t *obj);

/* One trace event line: {"t":<seconds>, ...obj's members}.  t is printed
 * in fixed notation with microsecond resolution ("0.001234", never
 * "1.234e-3").  Returns a malloc'd string (free()) or NULL. */
char *cli_json_event_line(double t_seconds, const json_t *obj);

#endif
