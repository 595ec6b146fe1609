/*
 * fuzz.h: what every libFuzzer target under tests/fuzz shares. Each target is one parser of
 * outside input, driven through the library's own public functions (see README "Fuzzing").
 */
#ifndef CRM_FUZZ_H
#define CRM_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Optional: the targets that need a setup (a secret, a config) define it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The n bytes at data as a malloc'd C string of exactly n + 1 bytes, so AddressSanitizer sees
 * any read past its end. Bytes after an embedded NUL are unreachable, as they are for a header
 * or a parameter that arrives as a C string. Aborts when out of memory.
 */
char *fuzz_cstr(const uint8_t *data, size_t n);

/* Aborts with msg when ok is 0: a broken property is a finding, like a crash. */
void fuzz_check(int ok, const char *msg);

#endif
