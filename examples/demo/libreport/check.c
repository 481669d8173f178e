/* `make check`: libreport's formatting, linked against the static libraries. */
#include <stdio.h>
#include <string.h>

#include "report.h"

static int failures;

static void expect(const char *what, const char *got, size_t got_len, const char *want)
{
    if (strcmp(got, want) != 0 || got_len != strlen(want)) {
        fprintf(stderr, "FAIL %s:\n  got  [%s] (%zu)\n  want [%s]\n", what, got, got_len, want);
        failures++;
    }
}

int main(void)
{
    char buf[256];
    size_t n;

    n = report_quote(buf, sizeof buf, "a\"b\\c\n\t\x01");
    expect("quote", buf, n, "\"a\\\"b\\\\c\\n\\t\\x01\"");

    n = report_checksums(buf, sizeof buf, "check", "123456789");
    expect("checksums", buf, n, "check: crc32(\"123456789\")=0xcbf43926 crc32c=0xe3069283 adler32=0x091e01de");

    /* Truncation: like snprintf, returns the full length and terminates. */
    char small[8];
    n = report_checksums(small, sizeof small, "check", "123456789");
    if (n != strlen(buf) || strcmp(small, "check: ") != 0) {
        fprintf(stderr, "FAIL truncation: [%s] %zu\n", small, n);
        failures++;
    }
    if (report_checksums(NULL, 0, "check", "123456789") != strlen(buf)) {
        fprintf(stderr, "FAIL size query\n");
        failures++;
    }

    if (failures) {
        fprintf(stderr, "libreport: %d check(s) failed\n", failures);
        return 1;
    }
    report_versions(buf, sizeof buf);
    printf("%s: all checks passed\n", buf);
    return 0;
}
