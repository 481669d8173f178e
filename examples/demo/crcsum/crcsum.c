/*
 * crcsum: print CRC-32, CRC-32C, Adler-32 and size of files, standard input or a string.
 *
 *   crcsum [FILE...]      one line per FILE (standard input when none, or for "-")
 *   crcsum -s STRING      the checksums of STRING's bytes
 *
 * Output: `CRC32 CRC32C ADLER32 SIZE NAME`, checksums as 8 lowercase hex digits.
 * Linked statically (libcrc.a and the C library), so it runs in an empty image.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <crc.h>

struct sums {
    uint32_t crc32, crc32c, adler32;
    unsigned long long size;
};

static void add(struct sums *s, const void *data, size_t len)
{
    s->crc32 = libcrc_crc32(s->crc32, data, len);
    s->crc32c = libcrc_crc32c(s->crc32c, data, len);
    s->adler32 = libcrc_adler32(s->adler32, data, len);
    s->size += len;
}

static void print(const struct sums *s, const char *name)
{
    printf("%08x %08x %08x %llu %s\n", (unsigned)s->crc32, (unsigned)s->crc32c, (unsigned)s->adler32, s->size,
           name);
}

/* Checksums one stream; returns 0, or -1 after reporting a read error. */
static int sum_file(FILE *f, const char *name)
{
    struct sums s = {LIBCRC_CRC32_INIT, LIBCRC_CRC32C_INIT, LIBCRC_ADLER32_INIT, 0};
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        add(&s, buf, n);
    if (ferror(f)) {
        fprintf(stderr, "crcsum: %s: read error\n", name);
        return -1;
    }
    print(&s, name);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-s") == 0) {
        struct sums s = {LIBCRC_CRC32_INIT, LIBCRC_CRC32C_INIT, LIBCRC_ADLER32_INIT, 0};
        add(&s, argv[2], strlen(argv[2]));
        print(&s, argv[2]);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] != '\0') {
        fprintf(stderr, "usage: crcsum [FILE...] | crcsum -s STRING\n");
        return 2;
    }
    int rc = 0;
    if (argc == 1)
        rc |= sum_file(stdin, "-") != 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            rc |= sum_file(stdin, "-") != 0;
            continue;
        }
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            fprintf(stderr, "crcsum: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
            continue;
        }
        rc |= sum_file(f, argv[i]) != 0;
        fclose(f);
    }
    if (fflush(stdout) != 0) {
        perror("crcsum: write");
        rc = 1;
    }
    return rc;
}
