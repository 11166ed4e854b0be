/*
 * Internal: shared by the memory store and the memory queue.
 */
#ifndef CONCERT_MEMORY_H
#define CONCERT_MEMORY_H

#include "codec/journal.h"
#include "core/internal.h"

/*
 * Parses "memory:" (ephemeral: *out_dir = NULL) or "memory:/dir[?fsync=
 * always|batch|off]" (durable; default always). *out_dir is malloc'd.
 * Errors: CONCERT_EINVAL with a message, CONCERT_ENOMEM.
 */
int memory_uri_parse(const char *uri, char **out_dir, journal_fsync *out_policy);

#endif
