#ifndef MAILHOST_CZLIB_SHIM_H
#define MAILHOST_CZLIB_SHIM_H
/* zlib (Debian zlib1g-dev) for COMPRESS=DEFLATE (RFC 4978). */
#include <zlib.h>

/* deflateInit2 and inflateInit2 are macros that pass the library's version and the stream size; Swift cannot call
   macros. */
static inline int mailhost_deflate_init(z_streamp stream, int level, int window_bits, int mem_level) {
    return deflateInit2(stream, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
}

static inline int mailhost_inflate_init(z_streamp stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
#endif
