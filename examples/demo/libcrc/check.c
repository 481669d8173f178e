/* `make check`: known-answer tests for libcrc, linked against the static library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"

static int failures;

static void expect(const char *what, uint32_t got, uint32_t want)
{
    if (got != want) {
        fprintf(stderr, "FAIL %s: got 0x%08x, want 0x%08x\n", what, (unsigned)got, (unsigned)want);
        failures++;
    }
}

/* Adler-32 by the definition, one modulo per byte. */
static uint32_t adler32_slow(const unsigned char *p, size_t len)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < len; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

int main(void)
{
    const char *nine = "123456789";
    expect("crc32 check value", libcrc_crc32(LIBCRC_CRC32_INIT, nine, 9), 0xCBF43926u);
    expect("crc32c check value", libcrc_crc32c(LIBCRC_CRC32C_INIT, nine, 9), 0xE3069283u);
    expect("adler32 of Wikipedia", libcrc_adler32(LIBCRC_ADLER32_INIT, "Wikipedia", 9), 0x11E60398u);
    expect("crc32 of nothing", libcrc_crc32(LIBCRC_CRC32_INIT, "", 0), 0);
    expect("adler32 of nothing", libcrc_adler32(LIBCRC_ADLER32_INIT, "", 0), 1);
    expect("crc32 in two parts", libcrc_crc32(libcrc_crc32(LIBCRC_CRC32_INIT, nine, 4), nine + 4, 5),
           0xCBF43926u);

    /* Long input: exercises Adler-32's deferred modulo. */
    size_t len = 100000;
    unsigned char *big = malloc(len);
    if (big == NULL) {
        perror("malloc");
        return 1;
    }
    memset(big, 0xFF, len);
    expect("adler32 of 100000 x 0xFF", libcrc_adler32(LIBCRC_ADLER32_INIT, big, len), adler32_slow(big, len));
    free(big);

    if (strcmp(libcrc_version(), LIBCRC_VERSION) != 0) {
        fprintf(stderr, "FAIL version: %s\n", libcrc_version());
        failures++;
    }
    if (failures) {
        fprintf(stderr, "libcrc: %d check(s) failed\n", failures);
        return 1;
    }
    printf("libcrc %s: all checks passed\n", libcrc_version());
    return 0;
}
