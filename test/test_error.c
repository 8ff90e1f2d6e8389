/* SPDX-License-Identifier: MIT */
/* Error table: names, messages and getaddrinfo mapping. */
#include "testutil.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>

static void test_errno_names(void **state) {
  (void)state;
  assert_string_equal(ioa_err_name(-ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(ioa_err_name(-ETIMEDOUT), "ETIMEDOUT");
  assert_string_equal(ioa_err_name(-EAFNOSUPPORT), "EAFNOSUPPORT");
  assert_string_equal(ioa_err_name(0), "OK");
  assert_string_equal(ioa_strerror(0), "Success");
  assert_string_equal(ioa_strerror(-ECONNREFUSED), "Connection refused");
}

static void test_gai_codes_are_distinct_and_round_trip(void **state) {
  (void)state;
  const int natives[] = {EAI_AGAIN,  EAI_BADFLAGS, EAI_FAIL,     EAI_FAMILY,
                         EAI_MEMORY, EAI_NONAME,   EAI_SERVICE,  EAI_SOCKTYPE,
                         EAI_SYSTEM, EAI_OVERFLOW, EAI_ADDRFAMILY, EAI_NODATA};
  const size_t n = sizeof natives / sizeof natives[0];
  for (size_t i = 0; i < n; i++) {
    int code = ioa_err_from_gai(natives[i]);
    assert_true(code <= IOA_ERR_BASE);
    assert_true(ioa_err_is_resolver(code));
    assert_int_equal(ioa_err_to_gai(code), natives[i]);
    /* The real message, not a generic one. */
    assert_string_equal(ioa_strerror(code), gai_strerror(natives[i]));
    assert_int_equal(strncmp(ioa_err_name(code), "EAI_", 4), 0);
    for (size_t j = 0; j < i; j++)
      assert_int_not_equal(code, ioa_err_from_gai(natives[j]));
  }
  assert_string_equal(ioa_err_name(IOA_EAI_NONAME), "EAI_NONAME");
  assert_int_equal(ioa_err_from_gai(0), 0);
}

static void test_own_codes(void **state) {
  (void)state;
  assert_string_equal(ioa_err_name(IOA_EADDRPATHLEN), "IOA_EADDRPATHLEN");
  assert_string_equal(ioa_err_name(IOA_ENOCANDIDATES), "IOA_ENOCANDIDATES");
  assert_false(ioa_err_is_resolver(IOA_EADDRIP));
  assert_string_not_equal(ioa_strerror(IOA_EADDRIP), "Unknown error");
  /* Every own code has a distinct name. */
#define XX(name, off, msg) assert_string_equal(ioa_err_name(name), #name);
  IOA_OWN_ERRORS(XX)
#undef XX
}

static void test_unknown_codes(void **state) {
  (void)state;
  assert_string_equal(ioa_err_name(IOA_ERR_BASE - 98), "UNKNOWN");
  assert_string_equal(ioa_strerror(IOA_ERR_BASE - 98), "Unknown error");
  assert_string_equal(ioa_err_name(12345), "UNKNOWN");
  assert_non_null(ioa_strerror(-100000));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      IOA_TEST(test_errno_names),
      IOA_TEST(test_gai_codes_are_distinct_and_round_trip),
      IOA_TEST(test_own_codes),
      IOA_TEST(test_unknown_codes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
