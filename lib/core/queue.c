/*
 * The waiting queue as the engine presents it: tokens signed here, state in
 * the queue backend, estimated waits from the measured admission rate.
 */
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"

const char *concert_queue_state_name(int state)
{
	static const char *const names[] = { "UNKNOWN", "WAITING", "ACTIVE", "EXPIRED", "DONE" };
	return (state >= CONCERT_QUEUE_WAITING && state <= CONCERT_QUEUE_DONE) ? names[state] : "UNKNOWN";
}

/* Rates are refreshed at most once per window per concert. */
#define RATE_WINDOW_MS 1000

/*
 * Admissions per 1000 seconds for a concert, from successive samples of the
 * backend's admitted_total (which every engine sharing the backend sees),
 * smoothed; before any sample, the policy's own rate. Never 0.
 */
static uint64_t admission_rate(concert_engine *e, int64_t concert_id, uint64_t admitted_total)
{
	rate_slot *slot = &e->rates[(uint64_t)concert_id % RATE_SLOTS];
	concert_time now = concert_engine_now(e);
	if (!atomic_flag_test_and_set_explicit(&slot->busy, memory_order_acquire)) {
		int64_t id = atomic_load_explicit(&slot->concert_id, memory_order_relaxed);
		int64_t at = atomic_load_explicit(&slot->sampled_at, memory_order_relaxed);
		uint64_t total = atomic_load_explicit(&slot->sampled_total, memory_order_relaxed);
		if (id != concert_id || admitted_total < total) {
			atomic_store_explicit(&slot->concert_id, concert_id, memory_order_relaxed);
			atomic_store_explicit(&slot->sampled_at, now, memory_order_relaxed);
			atomic_store_explicit(&slot->sampled_total, admitted_total, memory_order_relaxed);
			atomic_store_explicit(&slot->milli_rate, 0, memory_order_relaxed);
		} else if (now - at >= RATE_WINDOW_MS) {
			uint64_t fresh = (admitted_total - total) * 1000000 / (uint64_t)(now - at);
			uint64_t old = atomic_load_explicit(&slot->milli_rate, memory_order_relaxed);
			uint64_t smoothed = old ? (old * 7 + fresh * 3) / 10 : fresh;
			atomic_store_explicit(&slot->milli_rate, smoothed, memory_order_relaxed);
			atomic_store_explicit(&slot->sampled_at, now, memory_order_relaxed);
			atomic_store_explicit(&slot->sampled_total, admitted_total, memory_order_relaxed);
		}
		atomic_flag_clear_explicit(&slot->busy, memory_order_release);
	}
	uint64_t rate = 0;
	if (atomic_load_explicit(&slot->concert_id, memory_order_relaxed) == concert_id)
		rate = atomic_load_explicit(&slot->milli_rate, memory_order_relaxed);
	if (rate == 0) {
		/* No measurement yet: every ACTIVE slot turns over once per active_ttl. */
		rate = (uint64_t)e->opts.max_active * 1000000 / (uint64_t)e->opts.active_ttl;
		if (e->opts.admit_per_second && rate > (uint64_t)e->opts.admit_per_second * 1000)
			rate = (uint64_t)e->opts.admit_per_second * 1000;
	}
	return rate ? rate : 1;
}

static int sign_status(concert_engine *e, concert_queue_status *st)
{
	concert_token_claims claims = { st->token_id, st->concert_id, st->issued_at, 0,
		CONCERT_TOKEN_WAITING, { 0 } };
	if (st->state == CONCERT_QUEUE_ACTIVE) {
		claims.kind = CONCERT_TOKEN_ACTIVE;
		claims.active_until = st->expires_at;
	}
	concert_sys_strlcpy(claims.user_id, st->user_id, sizeof(claims.user_id));
	return concert_token_sign(st->token, sizeof(st->token), NULL, &claims, e->secret, e->secret_len);
}

/*
 * `presented` is the token the caller showed, with its claims: when it
 * already says what signing the entry would say, it is handed back as is,
 * which saves an HMAC on every status poll.
 */
static int status_from_entry(concert_engine *e, concert_queue_status **out,
			     const concert_queue_entry *entry, const char *presented,
			     const concert_token_claims *claims)
{
	concert_queue_status *st = calloc(1, sizeof(*st));
	if (!st)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	st->token_id = entry->token_id;
	st->concert_id = entry->concert_id;
	st->state = entry->state;
	st->created = entry->created;
	st->issued_at = entry->issued_at;
	st->expires_at = entry->expires_at;
	memcpy(st->user_id, entry->user_id, sizeof(st->user_id));
	if (entry->state == CONCERT_QUEUE_WAITING) {
		st->position = entry->position;
		uint64_t rate = admission_rate(e, entry->concert_id, entry->admitted_total);
		st->estimated_wait_seconds = (int64_t)(((uint64_t)entry->position * 1000 + rate - 1) / rate);
	}
	int same = presented && (st->state == CONCERT_QUEUE_ACTIVE
			? claims->kind == CONCERT_TOKEN_ACTIVE && claims->active_until == st->expires_at
			: claims->kind == CONCERT_TOKEN_WAITING);
	int rc = 0;
	if (same)
		concert_sys_strlcpy(st->token, presented, sizeof(st->token));
	else
		rc = sign_status(e, st);
	if (rc < 0) {
		free(st);
		return rc;
	}
	*out = st;
	return 0;
}

/*
 * A host sees the same token again and again, and its claims are a pure
 * function of the token and the secret: remember the last few verified
 * tokens per thread and skip the HMAC for them. Entries are tagged with the
 * engine's serial so engines with different secrets never share them.
 */
#define TOKEN_CACHE_SIZE 4

typedef struct token_cache_entry {
	uint64_t engine_serial;
	size_t len;
	char token[CONCERT_TOKEN_MAX + 1];
	concert_token_claims claims;
} token_cache_entry;

static _Thread_local token_cache_entry token_cache[TOKEN_CACHE_SIZE];
static _Thread_local unsigned token_cache_next;

static const concert_token_claims *token_cache_find(uint64_t serial, const char *token, size_t len)
{
	for (int i = 0; i < TOKEN_CACHE_SIZE; i++) {
		token_cache_entry *c = &token_cache[i];
		if (c->engine_serial == serial && c->len == len && memcmp(c->token, token, len) == 0)
			return &c->claims;
	}
	return NULL;
}

static void token_cache_put(uint64_t serial, const char *token, size_t len,
			    const concert_token_claims *claims)
{
	token_cache_entry *c = &token_cache[token_cache_next++ % TOKEN_CACHE_SIZE];
	c->engine_serial = serial;
	c->len = len;
	memcpy(c->token, token, len);
	c->claims = *claims;
}

int token_claims(concert_engine *e, concert_token_claims *claims, const char *token,
		 concert_time now)
{
	if (!token || !*token)
		return concert_sys_error(CONCERT_ETOKEN, "missing queue token");
	size_t len = concert_strnlen(token, CONCERT_TOKEN_MAX);
	if (len > CONCERT_TOKEN_MAX)
		return concert_sys_error(CONCERT_ETOKEN, "queue token too long");
	const concert_token_claims *known = token_cache_find(e->serial, token, len);
	if (known) {
		*claims = *known;
		return 0;
	}
	int rc = concert_token_verify(claims, token, len, e->secret, e->secret_len, 0, now);
	/* Expired and waiting tokens are still genuine; the backend decides. */
	if (rc == CONCERT_EEXPIRED || rc == CONCERT_ENOT_ACTIVE)
		rc = 0;
	if (rc == 0)
		token_cache_put(e->serial, token, len, claims);
	return rc;
}

static int backend_state(concert_engine *e, concert_queue_entry *entry,
			 const concert_token_claims *claims, int touch, concert_time now)
{
	int rc = e->queue->status(e->queue_ctx, entry, claims->concert_id, claims->token_id, touch,
				  &e->queue_policy, now);
	if (rc == 0 && strcmp(entry->user_id, claims->user_id) != 0)
		rc = concert_sys_error(CONCERT_ETOKEN, "token does not match its queue entry");
	return rc;
}

int token_active(concert_engine *e, concert_token_claims *claims, const char *token,
		 int64_t concert_id, concert_time now)
{
	concert_queue_entry entry;
	int rc = token_claims(e, claims, token, now);
	if (rc < 0)
		return rc;
	if (concert_id && claims->concert_id != concert_id)
		return concert_sys_error(CONCERT_ETOKEN, "token is for another concert");
	rc = backend_state(e, &entry, claims, 0, now);
	if (rc < 0)
		return rc;
	switch (entry.state) {
	case CONCERT_QUEUE_ACTIVE:
		return 0;
	case CONCERT_QUEUE_WAITING:
		return concert_sys_errorf(CONCERT_ENOT_ACTIVE, "token is waiting at position %lld",
					  (long long)entry.position);
	case CONCERT_QUEUE_DONE:
		return concert_sys_error(CONCERT_EEXPIRED, "token already used for a payment");
	default:
		return concert_sys_error(CONCERT_EEXPIRED, "queue token expired");
	}
}

/* CONCERT_ENOTFOUND unless the concert exists; asks the store only once per id. */
static int concert_exists(concert_engine *e, int64_t concert_id)
{
	_Atomic int64_t *slot = &e->known_concerts[(uint64_t)concert_id % KNOWN_CONCERT_SLOTS];
	if (atomic_load_explicit(slot, memory_order_relaxed) == concert_id)
		return 0;
	concert_concert *concert = NULL;
	int rc = e->store->concert_get(e->store_ctx, &concert, concert_id);
	concert_free(concert);
	if (rc == 0)
		atomic_store_explicit(slot, concert_id, memory_order_relaxed);
	return rc;
}

int concert_queue_enter(concert_engine *e, concert_queue_status **out, const char *user_id,
			int64_t concert_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	concert_queue_entry entry;
	int rc = check_user_id(user_id);
	if (rc == 0)
		rc = check_id(concert_id, "concert_id");
	if (rc == 0)
		rc = concert_exists(e, concert_id);
	if (rc == 0)
		rc = e->queue->enter(e->queue_ctx, &entry, user_id, concert_id, &e->queue_policy,
				     concert_engine_now(e));
	if (rc == 0)
		rc = status_from_entry(e, out, &entry, NULL, NULL);
	return engine_finish(e, CONCERT_OP_QUEUE_ENTER, rc);
}

static int queue_status(concert_engine *e, concert_queue_status **out, const char *token, int touch)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	concert_token_claims claims;
	concert_queue_entry entry;
	concert_time now = concert_engine_now(e);
	int rc = token_claims(e, &claims, token, now);
	if (rc == 0)
		rc = backend_state(e, &entry, &claims, touch, now);
	if (rc == 0 && entry.state == CONCERT_QUEUE_EXPIRED)
		rc = concert_sys_error(CONCERT_EEXPIRED, "queue token expired");
	if (rc == 0)
		rc = status_from_entry(e, out, &entry, token, &claims);
	return engine_finish(e, CONCERT_OP_QUEUE_STATUS, rc);
}

int concert_queue_status_get(concert_engine *e, concert_queue_status **out, const char *token)
{
	return queue_status(e, out, token, 0);
}

int concert_queue_heartbeat(concert_engine *e, concert_queue_status **out, const char *token)
{
	return queue_status(e, out, token, 1);
}

int concert_queue_leave(concert_engine *e, const char *token)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	concert_token_claims claims;
	concert_time now = concert_engine_now(e);
	int rc = token_claims(e, &claims, token, now);
	if (rc == 0)
		rc = e->queue->leave(e->queue_ctx, claims.concert_id, claims.token_id, now);
	return engine_finish(e, CONCERT_OP_QUEUE_LEAVE, rc);
}

int concert_queue_validate(concert_engine *e, concert_token_claims *out, const char *token,
			   int64_t concert_id)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	concert_token_claims claims = { 0 };
	int rc = token_active(e, &claims, token, concert_id, concert_engine_now(e));
	if (out && rc != CONCERT_ETOKEN && rc != CONCERT_EUNAVAILABLE)
		*out = claims;
	return engine_finish(e, CONCERT_OP_TOKEN_VALIDATE, rc);
}

int concert_queue_admit(concert_engine *e, int64_t concert_id, uint32_t *out_admitted)
{
	uint32_t admitted = 0;
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int rc = check_id(concert_id, "concert_id");
	if (rc == 0)
		rc = e->queue->admit(e->queue_ctx, &admitted, concert_id, &e->queue_policy,
				     concert_engine_now(e));
	if (out_admitted)
		*out_admitted = admitted;
	return engine_finish(e, CONCERT_OP_QUEUE_STATUS, rc);
}

int concert_queue_counts(concert_engine *e, int64_t concert_id, uint64_t *out_waiting,
			 uint64_t *out_active)
{
	uint64_t waiting = 0, active = 0;
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int rc = check_id(concert_id, "concert_id");
	if (rc == 0 && !e->queue->counts)
		rc = concert_sys_error(CONCERT_EINVAL, "this queue backend cannot count its tokens");
	if (rc == 0)
		rc = e->queue->counts(e->queue_ctx, concert_id, concert_engine_now(e), &waiting, &active);
	if (out_waiting)
		*out_waiting = waiting;
	if (out_active)
		*out_active = active;
	return engine_finish(e, CONCERT_OP_QUEUE_STATUS, rc);
}
