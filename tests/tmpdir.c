#define _GNU_SOURCE /* nftw */
#include "tmpdir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int tmpdir_make(char *out, size_t out_size, const char *name)
{
	const char *base = getenv("TMPDIR");
	int n = snprintf(out, out_size, "%s/%s-XXXXXX", base && *base ? base : "/tmp", name);
	if (n < 0 || (size_t)n >= out_size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return mkdtemp(out) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int tmpdir_remove(const char *dir)
{
	return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
