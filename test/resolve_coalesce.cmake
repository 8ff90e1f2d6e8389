# SPDX-License-Identifier: MIT
# The getaddrinfo pool's coalescing of identical queued lookups (white-box).
ioa_test(test_resolve_coalesce)
