/*
 * libconcert — the lock backend vtable: an optional hot-seat filter in front
 * of the store.
 *
 * Before the store is asked to hold seats, the engine locks them here (all
 * or none) with a random value; contenders that find a seat locked are
 * answered CONCERT_ESEAT_UNAVAILABLE without a store round trip. A lock
 * never authorises anything: the store's own state check decides, so a lock
 * that expired while its holder stalled cannot let two holds win.
 */
#ifndef CONCERT_SYS_LOCK_H
#define CONCERT_SYS_LOCK_H

#include "backend.h"

CONCERT_BEGIN_DECL

#define CONCERT_LOCK_BACKEND_VERSION 1

/** Longest lock value, without the NUL. */
#define CONCERT_LOCK_VALUE_MAX 63

typedef struct concert_lock_backend {
	unsigned int version;
	const char *scheme;

	int (*open)(void **out_ctx, const char *uri, const concert_backend_env *env);
	void (*close)(void *ctx);
	int (*health)(void *ctx);

	/**
	 * Locks every seat (ascending, unique) of the schedule with `value` for
	 * `ttl` ms, or none: CONCERT_ESEAT_UNAVAILABLE with the locked seats
	 * (concert_sys_error_conflicts). CONCERT_EUNAVAILABLE when unreachable.
	 */
	int (*acquire)(void *ctx, int64_t schedule_id, const int32_t *seat_nos, size_t count,
		const char *value, concert_time ttl);
	/**
	 * Unlocks the seats whose lock still has `value` (compare-and-delete);
	 * with `value` NULL, unlocks them whatever their value (the store has
	 * just freed those seats).
	 */
	int (*release)(void *ctx, int64_t schedule_id, const int32_t *seat_nos, size_t count,
		const char *value);
} concert_lock_backend;

/** Registers a lock backend; same rules as concert_sys_store_register. */
CONCERT_EXTERN(int) concert_sys_lock_register(const concert_lock_backend *backend);

CONCERT_END_DECL

#endif
