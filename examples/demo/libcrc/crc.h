/*
 * libcrc: CRC-32 (IEEE 802.3, as in zlib, gzip and PNG), CRC-32C (Castagnoli,
 * as in iSCSI and ext4) and Adler-32 checksums.
 *
 * Every function takes the running value and returns the updated one, so data
 * can be fed in pieces:
 *
 *     uint32_t c = LIBCRC_CRC32_INIT;
 *     c = libcrc_crc32(c, part1, len1);
 *     c = libcrc_crc32(c, part2, len2);
 */
#ifndef LIBCRC_CRC_H
#define LIBCRC_CRC_H

#include <stddef.h>
#include <stdint.h>

#define LIBCRC_VERSION "1.2.0"

/* Start values. */
#define LIBCRC_CRC32_INIT 0u
#define LIBCRC_CRC32C_INIT 0u
#define LIBCRC_ADLER32_INIT 1u

#if defined(__GNUC__)
#define LIBCRC_API __attribute__((visibility("default")))
#else
#define LIBCRC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32 of len bytes at data, continuing from crc. */
LIBCRC_API uint32_t libcrc_crc32(uint32_t crc, const void *data, size_t len);

/* CRC-32C of len bytes at data, continuing from crc. */
LIBCRC_API uint32_t libcrc_crc32c(uint32_t crc, const void *data, size_t len);

/* Adler-32 of len bytes at data, continuing from adler. */
LIBCRC_API uint32_t libcrc_adler32(uint32_t adler, const void *data, size_t len);

/* The version of the library actually loaded (LIBCRC_VERSION is the one compiled against). */
LIBCRC_API const char *libcrc_version(void);

#ifdef __cplusplus
}
#endif

#endif
