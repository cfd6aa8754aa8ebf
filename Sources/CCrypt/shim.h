#ifndef MAILHOST_CCRYPT_SHIM_H
#define MAILHOST_CCRYPT_SHIM_H
/* libxcrypt's crypt(3) (Debian libcrypt-dev, which libc6-dev depends on, so it is present wherever gcc is). */
#include <crypt.h>
#endif
