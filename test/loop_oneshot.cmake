# SPDX-License-Identifier: MIT
# One-shot fd watchers (loop_internal.h), which the connector uses.
ioa_test(test_loop_oneshot)
