/*
 * hello: prints a checksum report of its argument (default "stackci") through
 * libreport, and the versions of the libraries it loaded.
 *
 *   $ hello
 *   hello from stackci: crc32("stackci")=0x... crc32c=0x... adler32=0x...
 *   libreport 0.3.0, libcrc 1.2.0
 */
#include <stdio.h>
#include <stdlib.h>

#include <report.h>

#define LABEL "hello from stackci"

int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: hello [TEXT]\n");
        return 2;
    }
    const char *text = argc == 2 ? argv[1] : "stackci";

    size_t need = report_checksums(NULL, 0, LABEL, text);
    char *line = malloc(need + 1);
    if (line == NULL) {
        perror("hello");
        return 1;
    }
    report_checksums(line, need + 1, LABEL, text);
    char versions[128];
    report_versions(versions, sizeof versions);

    int rc = puts(line) < 0 || puts(versions) < 0 || fflush(stdout) != 0;
    free(line);
    if (rc) {
        perror("hello: write");
        return 1;
    }
    return 0;
}
