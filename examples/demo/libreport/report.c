/* libreport: formatting on top of libcrc's checksums. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <crc.h>

#include "report.h"

/* A bounded output buffer that counts what would have been written. */
struct out {
    char *buf;
    size_t size;
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len < o->size) {
        size_t room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Terminates the buffer and returns the full length. */
static size_t finish(struct out *o)
{
    if (o->size > 0)
        o->buf[o->len < o->size ? o->len : o->size - 1] = '\0';
    return o->len;
}

static void quote(struct out *o, const char *text)
{
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        switch (*p) {
        case '"': put(o, "\\\"", 2); break;
        case '\\': put(o, "\\\\", 2); break;
        case '\n': put(o, "\\n", 2); break;
        case '\t': put(o, "\\t", 2); break;
        default:
            if (*p >= 0x20 && *p < 0x7F)
                put(o, (const char *)p, 1);
            else
                putf(o, "\\x%02x", *p);
        }
    }
    put(o, "\"", 1);
}

size_t report_quote(char *buf, size_t size, const char *text)
{
    struct out o = {buf, size, 0};
    quote(&o, text);
    return finish(&o);
}

size_t report_checksums(char *buf, size_t size, const char *label, const char *text)
{
    size_t n = strlen(text);
    struct out o = {buf, size, 0};
    put(&o, label, strlen(label));
    put(&o, ": crc32(", 8);
    quote(&o, text);
    putf(&o, ")=0x%08x crc32c=0x%08x adler32=0x%08x",
         (unsigned)libcrc_crc32(LIBCRC_CRC32_INIT, text, n),
         (unsigned)libcrc_crc32c(LIBCRC_CRC32C_INIT, text, n),
         (unsigned)libcrc_adler32(LIBCRC_ADLER32_INIT, text, n));
    return finish(&o);
}

size_t report_versions(char *buf, size_t size)
{
    struct out o = {buf, size, 0};
    putf(&o, "libreport %s, libcrc %s", LIBREPORT_VERSION, libcrc_version());
    return finish(&o);
}
