/*
 * Scratch directories of the tests and the benchmarks: each is made fresh
 * under $TMPDIR (/tmp if unset) and removed whole when its user is done,
 * so no run leaves anything behind.
 */
#ifndef CONCERT_TESTS_TMPDIR_H
#define CONCERT_TESTS_TMPDIR_H

#include <stddef.h>

/* Makes the directory TMPDIR/<name>-XXXXXX (the X's made unique) and writes
 * its path to out. Returns 0, or -1 with errno set (ENAMETOOLONG if the path
 * does not fit in out_size). */
int tmpdir_make(char *out, size_t out_size, const char *name);

/* Removes dir and everything under it, depth first, following no symbolic
 * link. Returns 0, or -1 if anything could not be removed. */
int tmpdir_remove(const char *dir);

#endif
