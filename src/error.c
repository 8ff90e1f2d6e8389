/* SPDX-License-Identifier: MIT */
/* Error codes: names and messages for errno values and the project's table. */
#include "ioasync/error.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>

/* Messages and names of errno values come from the C library: glibc >= 2.32
 * has thread-safe, non-localised lookups for both (strerrordesc_np,
 * strerrorname_np).  Another C library gives its strerror() text and no
 * symbolic name. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define IOA_HAVE_STRERRORNAME_NP 1
#endif

#ifndef EAI_ADDRFAMILY
#define EAI_ADDRFAMILY (-9)
#endif
#ifndef EAI_NODATA
#define EAI_NODATA (-5)
#endif
#ifndef EAI_CANCELED
#define EAI_CANCELED (-101)
#endif
#ifndef EAI_OVERFLOW
#define EAI_OVERFLOW (-12)
#endif

static const struct gai_map {
  int code;
  int native;
} gai_map[] = {
    {IOA_EAI_ADDRFAMILY, EAI_ADDRFAMILY}, {IOA_EAI_AGAIN, EAI_AGAIN},
    {IOA_EAI_BADFLAGS, EAI_BADFLAGS},     {IOA_EAI_FAIL, EAI_FAIL},
    {IOA_EAI_FAMILY, EAI_FAMILY},         {IOA_EAI_MEMORY, EAI_MEMORY},
    {IOA_EAI_NODATA, EAI_NODATA},         {IOA_EAI_NONAME, EAI_NONAME},
    {IOA_EAI_SERVICE, EAI_SERVICE},       {IOA_EAI_SOCKTYPE, EAI_SOCKTYPE},
    {IOA_EAI_SYSTEM, EAI_SYSTEM},         {IOA_EAI_OVERFLOW, EAI_OVERFLOW},
    {IOA_EAI_CANCELED, EAI_CANCELED},
};

int ioa_err_from_gai(int gai_error) {
  if (gai_error == 0)
    return 0;
  for (size_t i = 0; i < sizeof gai_map / sizeof gai_map[0]; i++)
    if (gai_map[i].native == gai_error)
      return gai_map[i].code;
  return IOA_EAI_FAIL;
}

int ioa_err_to_gai(int err) {
  for (size_t i = 0; i < sizeof gai_map / sizeof gai_map[0]; i++)
    if (gai_map[i].code == err)
      return gai_map[i].native;
  return 0;
}

int ioa_err_is_resolver(int err) { return ioa_err_to_gai(err) != 0; }

int ioa_err_is_input(int err) {
  switch (err) {
#define XX(name, off, msg) case name:
    IOA_ADDR_ERRORS(XX)
#undef XX
  case IOA_EHOSTNAME:
  case IOA_EBADPARAM:
  case IOA_ETLSCONFIG:
    return 1;
  default:
    return 0;
  }
}

int ioa_err_is_tls(int err) {
  switch (err) {
#define XX(name, off, msg) case name:
    IOA_TLS_ERRORS(XX)
#undef XX
    return 1;
  default:
    return 0;
  }
}

static const char *own_message(int err) {
  switch (err) {
#define XX(name, off, msg)                                                     \
  case IOA_##name:                                                             \
    return msg;
    IOA_GAI_ERRORS(XX)
#undef XX
#define XX(name, off, msg)                                                     \
  case name:                                                                   \
    return msg;
    IOA_OWN_ERRORS(XX)
#undef XX
  default:
    return NULL;
  }
}

const char *ioa_strerror(int err) {
  if (err == 0)
    return "Success";
  const char *own = own_message(err);
  if (own) {
    int native = ioa_err_to_gai(err);
    /* gai_strerror returns constant strings in glibc and musl. */
    if (native != 0 && err != IOA_EAI_CANCELED) {
      const char *g = gai_strerror(native);
      if (g && *g)
        return g;
    }
    return own;
  }
  if (err < 0 && err > IOA_ERR_BASE) {
#ifdef IOA_HAVE_STRERRORNAME_NP
    const char *d = strerrordesc_np(-err);
    if (d)
      return d;
#else
    return strerror(-err);
#endif
  }
  return "Unknown error";
}

const char *ioa_err_name(int err) {
  if (err == 0)
    return "OK";
  switch (err) {
#define XX(name, off, msg)                                                     \
  case IOA_##name:                                                             \
    return #name;
    IOA_GAI_ERRORS(XX)
#undef XX
#define XX(name, off, msg)                                                     \
  case name:                                                                   \
    return #name;
    IOA_OWN_ERRORS(XX)
#undef XX
  default:
    break;
  }
  if (err < 0 && err > IOA_ERR_BASE) {
#ifdef IOA_HAVE_STRERRORNAME_NP
    const char *n = strerrorname_np(-err);
    if (n)
      return n;
#endif
  }
  return "UNKNOWN";
}
