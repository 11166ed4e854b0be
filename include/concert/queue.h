/*
 * libconcert — the waiting queue.
 *
 * A user enters a concert's queue and gets a signed token. Tokens are
 * admitted in FIFO order while fewer than max_active are ACTIVE (and at most
 * admit_per_second per second). Admission and expiry happen lazily inside
 * every queue call, so no background thread is needed; concert_queue_admit
 * lets a host drive admission explicitly.
 */
#ifndef CONCERT_QUEUE_H
#define CONCERT_QUEUE_H

#include "engine.h"
#include "token.h"

CONCERT_BEGIN_DECL

typedef enum concert_queue_state {
	CONCERT_QUEUE_WAITING = 1,
	CONCERT_QUEUE_ACTIVE = 2,
	CONCERT_QUEUE_EXPIRED = 3,   /**< idle too long, active_ttl passed, or left */
	CONCERT_QUEUE_DONE = 4       /**< paid */
} concert_queue_state;

/** "WAITING", "ACTIVE", "EXPIRED", "DONE"; "UNKNOWN" if out of range. */
CONCERT_EXTERN(const char *) concert_queue_state_name(int state);

typedef struct concert_queue_status {
	int64_t token_id;
	int64_t concert_id;
	int32_t state;                 /**< concert_queue_state */
	int32_t created;               /**< enter: 1 if new, 0 if the live token was returned */
	int64_t position;              /**< 1-based among WAITING; 0 when not WAITING */
	int64_t estimated_wait_seconds;/**< from the measured admission rate; 0 when not WAITING */
	concert_time issued_at;
	concert_time expires_at;       /**< WAITING: idle deadline; ACTIVE: active_until */
	char user_id[CONCERT_USER_ID_MAX + 1];
	char token[CONCERT_TOKEN_MAX + 1]; /**< the token to present; re-signed ACTIVE once admitted */
} concert_queue_status;

/**
 * Enters `user_id` into the queue of `concert_id`. Idempotent: a user with a
 * live (WAITING or ACTIVE) token gets that token back with created = 0.
 * *out is owned by the caller (concert_free).
 * Errors: CONCERT_EINVAL, CONCERT_ENOTFOUND (no such concert), CONCERT_EUNAVAILABLE.
 */
CONCERT_EXTERN(int) concert_queue_enter(concert_engine *engine, concert_queue_status **out,
	const char *user_id, int64_t concert_id);

/**
 * Current state and position of a token. While ACTIVE, out->token is the
 * ACTIVE token to present from then on. Does not count as activity for the
 * idle TTL (see heartbeat).
 * Errors: CONCERT_ETOKEN (forged/unknown), CONCERT_EEXPIRED.
 */
CONCERT_EXTERN(int) concert_queue_status_get(concert_engine *engine, concert_queue_status **out,
	const char *token);

/** Like concert_queue_status_get, and restarts a WAITING token's idle TTL. */
CONCERT_EXTERN(int) concert_queue_heartbeat(concert_engine *engine, concert_queue_status **out,
	const char *token);

/** Leaves the queue: the token becomes EXPIRED. Errors: CONCERT_ETOKEN, CONCERT_EEXPIRED. */
CONCERT_EXTERN(int) concert_queue_leave(concert_engine *engine, const char *token);

/**
 * Checks that `token` is genuine, for `concert_id` (0: any) and ACTIVE in
 * the backend (not left, expired or used). `out` (optional) gets its claims.
 * Errors: CONCERT_ETOKEN, CONCERT_ENOT_ACTIVE, CONCERT_EEXPIRED.
 */
CONCERT_EXTERN(int) concert_queue_validate(concert_engine *engine, concert_token_claims *out,
	const char *token, int64_t concert_id);

/**
 * Expires idle/stale tokens and admits waiting ones of a concert now.
 * *out_admitted (optional) gets how many were admitted.
 */
CONCERT_EXTERN(int) concert_queue_admit(concert_engine *engine, int64_t concert_id,
	uint32_t *out_admitted);

/**
 * How many tokens of a concert are WAITING and ACTIVE now, for monitoring.
 * Either out pointer may be NULL. Errors: CONCERT_EINVAL (bad id, or a queue
 * backend that cannot count), CONCERT_EUNAVAILABLE.
 */
CONCERT_EXTERN(int) concert_queue_counts(concert_engine *engine, int64_t concert_id,
	uint64_t *out_waiting, uint64_t *out_active);

CONCERT_END_DECL

#endif
