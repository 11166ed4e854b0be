/*
 * memory: URIs.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/memory/memory.h"

int memory_uri_parse(const char *uri, char **out_dir, journal_fsync *out_policy)
{
	static const char prefix[] = "memory:";
	*out_dir = NULL;
	*out_policy = JOURNAL_FSYNC_ALWAYS;
	if (!uri || strncmp(uri, prefix, sizeof(prefix) - 1) != 0)
		return concert_sys_error(CONCERT_EINVAL, "memory URI must start with 'memory:'");
	const char *path = uri + sizeof(prefix) - 1;
	if (strncmp(path, "//", 2) == 0)
		path += 2;
	size_t len = strcspn(path, "?");
	const char *query = path[len] == '?' ? path + len + 1 : NULL;
	if (query) {
		if (strcmp(query, "fsync=always") == 0)
			*out_policy = JOURNAL_FSYNC_ALWAYS;
		else if (strcmp(query, "fsync=batch") == 0)
			*out_policy = JOURNAL_FSYNC_BATCH;
		else if (strcmp(query, "fsync=off") == 0)
			*out_policy = JOURNAL_FSYNC_OFF;
		else
			return concert_sys_errorf(CONCERT_EINVAL, "unknown memory URI option '%s'", query);
		if (len == 0)
			return concert_sys_error(CONCERT_EINVAL, "fsync= needs a journal directory");
	}
	if (len == 0)
		return 0;
	if (path[0] != '/')
		return concert_sys_error(CONCERT_EINVAL, "memory journal directory must be absolute");
	*out_dir = strndup(path, len);
	return *out_dir ? 0 : concert_sys_error(CONCERT_ENOMEM, NULL);
}
