/* SPDX-License-Identifier: MIT */
/* ioa-connect's JSON output: whatever bytes go in (quotes, control bytes,
 * invalid UTF-8, NUL), what comes out is one line of valid JSON that parses
 * back to the sanitized text. */
#include <string.h>

#include "testutil.h"

#include "json.h"

/* Dump {"s": text[0..len)} as ioa-connect does, check it is one ASCII line
 * that jansson parses back, and return the parsed string (caller frees). */
static char *roundtrip(const char *text, size_t len, size_t *out_len) {
  json_t *o = json_object();
  assert_non_null(o);
  assert_int_equal(cli_json_set(o, "s", cli_json_stringn(text, len)), 0);
  char *line = cli_json_dump_line(o);
  json_decref(o);
  assert_non_null(line);
  for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
    /* JSON requires escaping below 0x20; non-ASCII is escaped by us. */
    assert_true(*p >= 0x20 && *p <= 0x7f);
  }
  json_error_t jerr;
  json_t *back = json_loads(line, JSON_ALLOW_NUL, &jerr);
  if (!back)
    fail_msg("invalid JSON %s: %s", line, jerr.text);
  free(line);
  json_t *s = json_object_get(back, "s");
  assert_true(json_is_string(s));
  size_t n = json_string_length(s);
  char *copy = malloc(n + 1);
  assert_non_null(copy);
  memcpy(copy, json_string_value(s), n + 1);
  json_decref(back);
  *out_len = n;
  return copy;
}

static void expect_roundtrip(const char *in, size_t in_len, const char *want, size_t want_len) {
  size_t n;
  char *got = roundtrip(in, in_len, &n);
  assert_int_equal(n, want_len);
  assert_memory_equal(got, want, want_len);
  free(got);
}

#define FFFD "\xef\xbf\xbd"

static void test_quotes_and_backslashes(void **state) {
  (void)state;
  const char *s = "say \"hi\" \\ back/slash";
  expect_roundtrip(s, strlen(s), s, strlen(s));
  size_t n;
  json_t *o = json_object();
  cli_json_set(o, "m", cli_json_string("a\"b"));
  char *line = cli_json_dump_line(o);
  assert_string_equal(line, "{\"m\":\"a\\\"b\"}");
  free(line);
  json_decref(o);
  (void)n;
}

static void test_control_bytes(void **state) {
  (void)state;
  const char s[] = "\x01\x02\t\n\r\x1b[31m\x1f\x7f end";
  expect_roundtrip(s, sizeof s - 1, s, sizeof s - 1);
}

static void test_embedded_nul(void **state) {
  (void)state;
  const char s[] = "unix:@a\0b";
  expect_roundtrip(s, sizeof s - 1, s, sizeof s - 1);
}

static void test_valid_utf8_kept(void **state) {
  (void)state;
  const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf";
  expect_roundtrip(s, strlen(s), s, strlen(s));
}

static void test_invalid_utf8_replaced(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"\xff", FFFD},                                  /* never valid */
      {"a\xfe" "b", "a" FFFD "b"},
      {"\x80", FFFD},                                  /* stray continuation */
      {"\xc0\xaf", FFFD FFFD},                         /* overlong '/' */
      {"\xc1\xbf", FFFD FFFD},                         /* overlong */
      {"\xe0\x80\xaf", FFFD FFFD FFFD},                /* overlong 3-byte */
      {"\xed\xa0\x80", FFFD FFFD FFFD},                /* UTF-16 surrogate */
      {"\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD},       /* overlong 4-byte */
      {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD},       /* above U+10FFFF */
      {"\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD},       /* lead byte out of range */
      {"\xe2\x82", FFFD FFFD},                         /* truncated at the end */
      {"\xe2\x82" "x", FFFD FFFD "x"},                 /* truncated in the middle */
      {"ok\xc3\xa9\xc3", "ok\xc3\xa9" FFFD},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_roundtrip(cases[i].in, strlen(cases[i].in), cases[i].want, strlen(cases[i].want));
}

static void test_sanitize_direct(void **state) {
  (void)state;
  size_t n = 99;
  char *s = cli_utf8_sanitize("", 0, &n);
  assert_non_null(s);
  assert_int_equal(n, 0);
  assert_string_equal(s, "");
  free(s);
  s = cli_utf8_sanitize("\xff\xff", 2, &n);
  assert_int_equal(n, 6);
  assert_string_equal(s, FFFD FFFD);
  free(s);
}

static void test_null_string_is_json_null(void **state) {
  (void)state;
  json_t *j = cli_json_string(NULL);
  assert_true(json_is_null(j));
  json_decref(j);
}

static void test_event_line(void **state) {
  (void)state;
  json_t *o = json_object();
  cli_json_set(o, "t", json_real(0.001234));
  cli_json_set(o, "event", json_string("fail"));
  cli_json_set(o, "message", cli_json_stringn("bad \xff\n", 6));
  char *line = cli_json_dump_line(o);
  json_decref(o);
  /* Key order as inserted, times printed exactly, \ufffd escaped. */
  assert_string_equal(line, "{\"t\":0.001234,\"event\":\"fail\",\"message\":\"bad \\uFFFD\\n\"}");
  free(line);
}

static void test_event_line_time(void **state) {
  (void)state;
  json_t *o = json_object();
  cli_json_set(o, "event", json_string("attempt"));
  cli_json_set(o, "local", json_null());
  char *line = cli_json_event_line(0.0000964, o);
  assert_string_equal(line, "{\"t\":0.000096,\"event\":\"attempt\",\"local\":null}");
  free(line);
  json_decref(o);
  o = json_object();
  line = cli_json_event_line(12.5, o);
  assert_string_equal(line, "{\"t\":12.500000}");
  free(line);
  json_decref(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_quotes_and_backslashes), IOA_TEST(test_control_bytes),
      IOA_TEST(test_embedded_nul),           IOA_TEST(test_valid_utf8_kept),
      IOA_TEST(test_invalid_utf8_replaced),  IOA_TEST(test_sanitize_direct),
      IOA_TEST(test_null_string_is_json_null), IOA_TEST(test_event_line),
      IOA_TEST(test_event_line_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
