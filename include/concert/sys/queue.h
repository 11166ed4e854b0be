/*
 * libconcert — the queue backend vtable (waiting queue, token state,
 * admission).
 *
 * Every method is atomic on its own. enter/status/admit first expire what
 * has expired (WAITING idle past wait_idle_ttl, ACTIVE past active_until)
 * and admit waiting tokens in FIFO order while fewer than max_active are
 * ACTIVE (and within admit_per_second), then answer.
 */
#ifndef CONCERT_SYS_QUEUE_H
#define CONCERT_SYS_QUEUE_H

#include "backend.h"
#include "../queue.h"

CONCERT_BEGIN_DECL

#define CONCERT_QUEUE_BACKEND_VERSION 1

typedef struct concert_queue_policy {
	uint32_t max_active;
	uint32_t admit_per_second;   /**< 0: unlimited */
	concert_time wait_idle_ttl;
	concert_time active_ttl;
} concert_queue_policy;

/** A token's state as the backend sees it (caller-allocated). */
typedef struct concert_queue_entry {
	int64_t token_id;
	int64_t concert_id;
	int32_t state;             /**< concert_queue_state */
	int32_t created;           /**< enter: 1 if new */
	int64_t position;          /**< 1-based among WAITING, 0 otherwise; O(log n) or better */
	concert_time issued_at;
	concert_time expires_at;   /**< WAITING: idle deadline; ACTIVE: active_until */
	uint64_t admitted_total;   /**< admissions so far in this concert (for rate estimates) */
	char user_id[CONCERT_USER_ID_MAX + 1];
} concert_queue_entry;

typedef struct concert_queue_backend {
	unsigned int version;
	const char *scheme;

	int (*open)(void **out_ctx, const char *uri, const concert_backend_env *env);
	void (*close)(void *ctx);
	int (*health)(void *ctx);

	/** Returns the user's live token for the concert, or a new one at the back. */
	int (*enter)(void *ctx, concert_queue_entry *out, const char *user_id, int64_t concert_id,
		const concert_queue_policy *policy, concert_time now);
	/**
	 * State of a token; `touch` restarts a WAITING token's idle deadline.
	 * CONCERT_ETOKEN if unknown (or not of that concert); an EXPIRED or DONE
	 * token is returned with that state (not an error).
	 */
	int (*status)(void *ctx, concert_queue_entry *out, int64_t concert_id, int64_t token_id,
		int touch, const concert_queue_policy *policy, concert_time now);
	/** WAITING/ACTIVE -> EXPIRED. CONCERT_ETOKEN if unknown; CONCERT_EEXPIRED if not live. */
	int (*leave)(void *ctx, int64_t concert_id, int64_t token_id, concert_time now);
	/** ACTIVE -> DONE (after payment). CONCERT_ETOKEN if unknown; CONCERT_ESTATE if not ACTIVE. */
	int (*complete)(void *ctx, int64_t concert_id, int64_t token_id, concert_time now);
	int (*admit)(void *ctx, uint32_t *out_admitted, int64_t concert_id,
		const concert_queue_policy *policy, concert_time now);
	/** Optional: drop expired tokens everywhere. */
	int (*sweep)(void *ctx, concert_time now, uint64_t *out_swept);
	/**
	 * Optional: how many tokens of a concert are WAITING and ACTIVE at
	 * `now` (expired ones not counted); 0 and 0 for an unknown concert.
	 */
	int (*counts)(void *ctx, int64_t concert_id, concert_time now, uint64_t *out_waiting,
		uint64_t *out_active);
	/** Optional: snapshot + new journal (as concert_store_backend.compact). */
	int (*compact)(void *ctx);
} concert_queue_backend;

/** Registers a queue backend; same rules as concert_sys_store_register. */
CONCERT_EXTERN(int) concert_sys_queue_register(const concert_queue_backend *backend);

CONCERT_END_DECL

#endif
