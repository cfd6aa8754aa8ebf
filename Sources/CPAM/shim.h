#ifndef MAILHOST_CPAM_SHIM_H
#define MAILHOST_CPAM_SHIM_H
#include <security/pam_appl.h>
#endif
