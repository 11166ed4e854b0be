/*
 * Internal: shared by lib/core and the built-in backends. Not installed.
 */
#ifndef CONCERT_CORE_INTERNAL_H
#define CONCERT_CORE_INTERNAL_H

#include "concert.h"
#include "concert/sys/store.h"
#include "concert/sys/queue.h"
#include "concert/sys/lock.h"

/* errors.c: sets the thread's last error to success. */
void concert_error_clear(void);

/* registry.c: the backend serving a URI's scheme ("memory:/x" -> "memory"),
 * registering the built-in backends on first use. NULL if none. */
const concert_store_backend *concert_registry_store(const char *uri);
const concert_queue_backend *concert_registry_queue(const char *uri);
const concert_lock_backend *concert_registry_lock(const char *uri);

/* The built-in memory backend (lib/storage/memory). */
extern const concert_store_backend concert_memory_store_backend;
extern const concert_queue_backend concert_memory_queue_backend;
#ifdef CONCERT_WITH_POSTGRES
/* lib/storage/postgres */
extern const concert_store_backend concert_postgres_store_backend;
extern const concert_queue_backend concert_postgres_queue_backend;
#endif
#ifdef CONCERT_WITH_REDIS
/* lib/storage/redis */
extern const concert_queue_backend concert_redis_queue_backend;
extern const concert_lock_backend concert_redis_lock_backend;
#endif

/* String length bounded by max + 1; returns max + 1 when longer. */
size_t concert_strnlen(const char *s, size_t max);

#endif
