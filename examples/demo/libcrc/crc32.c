/* CRC-32 and CRC-32C, table driven; the tables are generated at build time by crcgen. */
#include "crc.h"

extern const uint32_t libcrc_crc32_table[256];
extern const uint32_t libcrc_crc32c_table[256];

/* A reflected CRC with pre- and post-inversion, one table lookup per byte. */
static uint32_t reflected(const uint32_t table[256], uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

uint32_t libcrc_crc32(uint32_t crc, const void *data, size_t len)
{
    return reflected(libcrc_crc32_table, crc, data, len);
}

uint32_t libcrc_crc32c(uint32_t crc, const void *data, size_t len)
{
    return reflected(libcrc_crc32c_table, crc, data, len);
}

const char *libcrc_version(void)
{
    return LIBCRC_VERSION;
}
