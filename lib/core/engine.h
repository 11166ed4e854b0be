/*
 * Internal: the engine handle, shared by the files of lib/core.
 */
#ifndef CONCERT_CORE_ENGINE_H
#define CONCERT_CORE_ENGINE_H

#include <stdatomic.h>

#include "core/internal.h"

/* One slot of the admission-rate table behind estimated waits. */
typedef struct rate_slot {
	_Atomic int64_t concert_id;
	_Atomic int64_t sampled_at;      /* ms */
	_Atomic uint64_t sampled_total;  /* admitted_total at sampled_at */
	_Atomic uint64_t milli_rate;     /* admissions per 1000 s (fixed point) */
	atomic_flag busy;
} rate_slot;

#define RATE_SLOTS 64
#define KNOWN_CONCERT_SLOTS 256
#define STAT_STRIPES 8

struct concert_engine {
	uint64_t serial;                  /* unique per open engine in this process */
	concert_options opts;             /* defaults applied; strings below */
	char *store_uri;
	char *queue_uri;
	unsigned char *secret;
	size_t secret_len;

	concert_backend_env env;
	concert_queue_policy queue_policy;

	const concert_store_backend *store;
	void *store_ctx;
	const concert_queue_backend *queue;
	void *queue_ctx;
	const concert_lock_backend *lock;  /* NULL: no hot-seat filter */
	void *lock_ctx;
	char *lock_uri;
	/* The store checks (and, paying, ends) queue tokens in its own
	 * transactions: concert_store_backend.queue_shared said so at open. */
	int store_checks_tokens;

	/* Call counters, one stripe per thread slot so that threads do not
	 * share the cache lines they write on every call; summed on read. */
	struct {
		_Alignas(64) _Atomic uint64_t count[CONCERT_OP_COUNT][CONCERT_ERROR_COUNT];
	} stats[STAT_STRIPES];
	/* Concert ids seen to exist (concerts are never deleted): queue enter
	 * skips the store for them. Direct-mapped; a slot holds one id. */
	_Atomic int64_t known_concerts[KNOWN_CONCERT_SLOTS];
	rate_slot rates[RATE_SLOTS];
};

/* Starts a public call: clears the thread's last error. */
static inline void engine_begin(void)
{
	concert_error_clear();
}

/* Starts a call that needs an engine and an out pointer. */
#define REQUIRE_ENGINE(e, out)                                                        \
	do {                                                                          \
		engine_begin();                                                       \
		if (!(e) || !(out))                                                   \
			return concert_sys_error(CONCERT_EINVAL, "engine or out is NULL"); \
	} while (0)

/* Hands `message` to the host's log callback unless level is above log_level. */
void engine_log(concert_engine *e, int level, const char *message);

/* Ends a public call: counts it and makes sure the last error describes rc. */
int engine_finish(concert_engine *e, concert_op op, int rc);

/* Argument checks; each sets the last error and returns CONCERT_EINVAL. */
int check_user_id(const char *user_id);
int check_idem_key(const char *idem_key);
int check_id(int64_t id, const char *what);
int check_amount(int64_t amount);
int check_title(const char *title);
int check_venue(const char *venue);
int check_grade(const char *grade);
/* Validates 1..max seat numbers and writes them sorted into `sorted`. */
int check_seat_nos(const int32_t *seat_nos, size_t count, size_t max, int32_t *sorted);

/*
 * Token checks at time `now` (read once per call). token_claims: genuine
 * token (any kind, expired or not). token_active: genuine and ACTIVE in the
 * queue backend.
 */
int token_claims(concert_engine *e, concert_token_claims *claims, const char *token,
	concert_time now);
int token_active(concert_engine *e, concert_token_claims *claims, const char *token,
	int64_t concert_id, concert_time now);

/*
 * Returned by the helpers that let the store check the token itself when
 * the store did not find the token ACTIVE: nothing happened, take the
 * ordinary path (token_active first), whose answer is the queue's.
 */
#define ENGINE_ASK_QUEUE 1


#endif
