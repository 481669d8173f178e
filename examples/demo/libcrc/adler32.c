/* Adler-32 (RFC 1950). */
#include "crc.h"

#define BASE 65521u /* largest prime below 2^16 */
#define NMAX 5552u  /* most bytes summed before b can overflow 32 bits */

uint32_t libcrc_adler32(uint32_t adler, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t a = adler & 0xFFFFu;
    uint32_t b = adler >> 16;
    while (len > 0) {
        size_t n = len < NMAX ? len : NMAX;
        len -= n;
        while (n--) {
            a += *p++;
            b += a;
        }
        a %= BASE;
        b %= BASE;
    }
    return (b << 16) | a;
}
