#ifndef MAILHOST_CPAM_SHIM_H
#define MAILHOST_CPAM_SHIM_H
/*
 * The part of the Linux-PAM application interface MailHost uses, bound at run time with dlopen("libpam.so.0").
 *
 * Why not <security/pam_appl.h> and -lpam: those come from libpam0g-dev, which a fresh Debian machine does not
 * have, and installing it needs root; the README's quick start must build without root. The runtime library
 * (libpam0g) is always installed. The types and constants below are Linux-PAM's stable ABI (values checked
 * against Linux-PAM 1.5's _pam_types.h); if libpam.so.0 cannot be loaded, pam_start returns PAM_SYSTEM_ERR.
 */
#include <dlfcn.h>
#include <stddef.h>

#define PAM_SUCCESS 0
#define PAM_OPEN_ERR 1
#define PAM_SYMBOL_ERR 2
#define PAM_SERVICE_ERR 3
#define PAM_SYSTEM_ERR 4
#define PAM_BUF_ERR 5
#define PAM_PERM_DENIED 6
#define PAM_AUTH_ERR 7
#define PAM_CRED_INSUFFICIENT 8
#define PAM_AUTHINFO_UNAVAIL 9
#define PAM_USER_UNKNOWN 10
#define PAM_MAXTRIES 11
#define PAM_NEW_AUTHTOK_REQD 12
#define PAM_ACCT_EXPIRED 13
#define PAM_CONV_ERR 19
#define PAM_AUTHTOK_ERR 20
#define PAM_ABORT 26
#define PAM_AUTHTOK_EXPIRED 27

#define PAM_SILENT 0x8000U
#define PAM_DISALLOW_NULL_AUTHTOK 0x0001U

#define PAM_SERVICE 1
#define PAM_USER 2
#define PAM_RHOST 4
#define PAM_CONV 5
#define PAM_AUTHTOK 6
#define PAM_FAIL_DELAY 10

#define PAM_PROMPT_ECHO_OFF 1
#define PAM_PROMPT_ECHO_ON 2
#define PAM_ERROR_MSG 3
#define PAM_TEXT_INFO 4

#define PAM_MAX_NUM_MSG 32
#define PAM_MAX_MSG_SIZE 512
#define PAM_MAX_RESP_SIZE 512

typedef struct pam_handle pam_handle_t;

struct pam_message {
    int msg_style;
    const char *msg;
};

struct pam_response {
    char *resp;
    int resp_retcode;
};

struct pam_conv {
    int (*conv)(int num_msg, const struct pam_message **msg, struct pam_response **resp, void *appdata_ptr);
    void *appdata_ptr;
};

/* Looks a symbol up in libpam.so.0, loading it on first use (dlopen is thread-safe and reference-counted). */
static inline void *mailhost_pam_symbol(const char *name) {
    static void *library = NULL;
    void *handle = __atomic_load_n(&library, __ATOMIC_ACQUIRE);
    if (handle == NULL) {
        /* Two threads may both get here: dlopen returns the same reference-counted handle to each. */
        handle = dlopen("libpam.so.0", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) return NULL;
        __atomic_store_n(&library, handle, __ATOMIC_RELEASE);
    }
    return dlsym(handle, name);
}

static inline int pam_start(const char *service_name, const char *user, const struct pam_conv *pam_conversation,
                            pam_handle_t **pamh) {
    int (*function)(const char *, const char *, const struct pam_conv *, pam_handle_t **) =
        (int (*)(const char *, const char *, const struct pam_conv *, pam_handle_t **))mailhost_pam_symbol("pam_start");
    if (function == NULL) {
        if (pamh != NULL) *pamh = NULL;
        return PAM_SYSTEM_ERR;
    }
    return function(service_name, user, pam_conversation, pamh);
}

static inline int pam_end(pam_handle_t *pamh, int pam_status) {
    int (*function)(pam_handle_t *, int) = (int (*)(pam_handle_t *, int))mailhost_pam_symbol("pam_end");
    return function == NULL ? PAM_SYSTEM_ERR : function(pamh, pam_status);
}

static inline int pam_authenticate(pam_handle_t *pamh, int flags) {
    int (*function)(pam_handle_t *, int) = (int (*)(pam_handle_t *, int))mailhost_pam_symbol("pam_authenticate");
    return function == NULL ? PAM_SYSTEM_ERR : function(pamh, flags);
}

static inline int pam_acct_mgmt(pam_handle_t *pamh, int flags) {
    int (*function)(pam_handle_t *, int) = (int (*)(pam_handle_t *, int))mailhost_pam_symbol("pam_acct_mgmt");
    return function == NULL ? PAM_SYSTEM_ERR : function(pamh, flags);
}

static inline int pam_set_item(pam_handle_t *pamh, int item_type, const void *item) {
    int (*function)(pam_handle_t *, int, const void *) =
        (int (*)(pam_handle_t *, int, const void *))mailhost_pam_symbol("pam_set_item");
    return function == NULL ? PAM_SYSTEM_ERR : function(pamh, item_type, item);
}

static inline int pam_get_item(const pam_handle_t *pamh, int item_type, const void **item) {
    int (*function)(const pam_handle_t *, int, const void **) =
        (int (*)(const pam_handle_t *, int, const void **))mailhost_pam_symbol("pam_get_item");
    return function == NULL ? PAM_SYSTEM_ERR : function(pamh, item_type, item);
}

static inline const char *pam_strerror(pam_handle_t *pamh, int errnum) {
    const char *(*function)(pam_handle_t *, int) =
        (const char *(*)(pam_handle_t *, int))mailhost_pam_symbol("pam_strerror");
    return function == NULL ? "libpam.so.0 is not available" : function(pamh, errnum);
}

#endif
