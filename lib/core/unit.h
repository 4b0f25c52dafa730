/* unit.h: the tiny harness of Coffer's C unit tests. Each check prints a line only on failure;
 * main() ends with UNIT_DONE(), which prints "N passed, N failed" and sets the exit code. */
#ifndef COFFER_CORE_UNIT_H
#define COFFER_CORE_UNIT_H
#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define UNIT_CHECK(cond) do { \
    if (cond) unit_passed++; \
    else { unit_failed++; fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define UNIT_EQ_INT(a, b) do { \
    long long unit_a = (long long)(a), unit_b = (long long)(b); \
    if (unit_a == unit_b) unit_passed++; \
    else { unit_failed++; fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
                                  __FILE__, __LINE__, #a, unit_a, #b, unit_b); } \
} while (0)

#define UNIT_EQ_STR(a, b) do { \
    const char *unit_a = (a), *unit_b = (b); \
    if (unit_a && unit_b && !strcmp(unit_a, unit_b)) unit_passed++; \
    else { unit_failed++; fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", \
                                  __FILE__, __LINE__, #a, unit_a ? unit_a : "(null)", \
                                  unit_b ? unit_b : "(null)"); } \
} while (0)

#define UNIT_DONE() do { \
    printf("%d passed, %d failed\n", unit_passed, unit_failed); \
    return unit_failed ? 1 : 0; \
} while (0)

#endif
