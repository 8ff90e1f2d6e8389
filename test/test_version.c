/* SPDX-License-Identifier: MIT */
/* The three places the version lives agree: CMake's project(VERSION) (which
 * names the SONAME and the installed packages), the IOA_VERSION_* macros, and
 * what the library reports at run time. */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static void test_runtime_matches_headers(void **state) {
  (void)state;
  assert_string_equal(ioa_version(), IOA_VERSION_STRING);
  assert_int_equal(ioa_version_number(), IOA_VERSION_HEX);
  /* the same static string every time: callers may keep the pointer */
  assert_ptr_equal(ioa_version(), ioa_version());
}

static void test_macros_agree(void **state) {
  (void)state;
  char text[32];
  snprintf(text, sizeof text, "%d.%d.%d", IOA_VERSION_MAJOR, IOA_VERSION_MINOR, IOA_VERSION_PATCH);
  assert_string_equal(text, IOA_VERSION_STRING);
  assert_int_equal(IOA_VERSION_HEX >> 16, IOA_VERSION_MAJOR);
  assert_int_equal((IOA_VERSION_HEX >> 8) & 0xff, IOA_VERSION_MINOR);
  assert_int_equal(IOA_VERSION_HEX & 0xff, IOA_VERSION_PATCH);
#if IOA_VERSION_HEX < 0x010000
#error "IOA_VERSION_HEX must be usable in #if"
#endif
}

static void test_cmake_agrees(void **state) {
  (void)state;
  assert_string_equal(ioa_version(), IOA_TEST_PROJECT_VERSION);
  assert_int_equal(IOA_VERSION_MAJOR, IOA_TEST_PROJECT_VERSION_MAJOR);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_runtime_matches_headers),
      IOA_TEST(test_macros_agree),
      IOA_TEST(test_cmake_agrees),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
