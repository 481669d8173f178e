/*
 * libreport: one-line checksum reports, built on libcrc.
 *
 * The functions write into a caller's buffer like snprintf: they never write more
 * than size bytes, always terminate the string when size > 0, and return the length
 * the full text needs (excluding the terminating NUL), so a caller can size a buffer
 * with a first call of size 0.
 */
#ifndef LIBREPORT_REPORT_H
#define LIBREPORT_REPORT_H

#include <stddef.h>

#define LIBREPORT_VERSION "0.3.0"

#if defined(__GNUC__)
#define LIBREPORT_API __attribute__((visibility("default")))
#else
#define LIBREPORT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* TEXT as a C string literal: quotes added; quote, backslash and bytes outside
 * printable ASCII escaped (\", \\, \n, \t, \xHH). */
LIBREPORT_API size_t report_quote(char *buf, size_t size, const char *text);

/* `LABEL: crc32(QUOTED)=0x%08x crc32c=0x%08x adler32=0x%08x` of the bytes of TEXT. */
LIBREPORT_API size_t report_checksums(char *buf, size_t size, const char *label, const char *text);

/* `libreport X, libcrc Y`: the versions of the libraries actually loaded. */
LIBREPORT_API size_t report_versions(char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif
