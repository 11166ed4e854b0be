/*
 * Seat holds: the engine checks the token and the policy, the store makes
 * the change atomically.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/engine.h"

const char *concert_hold_state_name(int state)
{
	static const char *const names[] = { "UNKNOWN", "HELD", "RELEASED", "PAID", "EXPIRED" };
	return (state >= CONCERT_HOLD_HELD && state <= CONCERT_HOLD_EXPIRED) ? names[state] : "UNKNOWN";
}

/* A genuine token whose user owns the hold; the queue state does not matter,
 * so a user can still release after the token expired. */
static int owner_claims(concert_engine *e, concert_token_claims *claims, const char *token,
			int64_t hold_id, concert_time now)
{
	int rc = check_id(hold_id, "hold_id");
	return rc < 0 ? rc : token_claims(e, claims, token, now);
}

/*
 * The hot-seat filter: lock the seats in the lock backend before asking the
 * store, so contenders for a taken seat are turned away without a store
 * round trip. The winner keeps its locks for the hold's lifetime. A lock
 * backend that is down only costs the filter: the store still decides.
 */
static int lock_seats(concert_engine *e, int64_t schedule_id, const int32_t *seats, size_t count,
		      char value[CONCERT_LOCK_VALUE_MAX + 1], int *locked)
{
	unsigned char nonce[16];
	*locked = 0;
	if (!e->lock)
		return 0;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return concert_sys_error(CONCERT_EINTERNAL, "no randomness for a lock value");
	for (size_t i = 0; i < sizeof(nonce); i++)
		snprintf(value + 2 * i, 3, "%02x", nonce[i]);
	int rc = e->lock->acquire(e->lock_ctx, schedule_id, seats, count, value, e->opts.hold_ttl);
	if (rc == CONCERT_EUNAVAILABLE) {
		engine_log(e, CONCERT_LOG_WARN, concert_error_last()->message);
		concert_error_clear();
		return 0;
	}
	*locked = rc == 0;
	return rc;
}

/* Unlocks seats after a failed hold (value) or after the store freed them (NULL). */
static void unlock_seats(concert_engine *e, int64_t schedule_id, const int32_t *seats, size_t count,
			 const char *value)
{
	concert_error saved = *concert_error_last();
	char message[256];
	concert_sys_strlcpy(message, saved.message, sizeof(message));
	if (e->lock->release(e->lock_ctx, schedule_id, seats, count, value) < 0)
		engine_log(e, CONCERT_LOG_WARN, concert_error_last()->message);
	/* The caller's outcome, conflicts included, is what the host must see. */
	if (saved.code == CONCERT_ESEAT_UNAVAILABLE)
		concert_sys_error_conflicts(saved.conflicts, saved.conflict_count);
	else if (saved.code)
		concert_sys_error(saved.code, message);
	else
		concert_error_clear();
}

/*
 * The store checks the token in the hold's own transaction: one round trip.
 * ENGINE_ASK_QUEUE when it did not find the token ACTIVE (nothing changed).
 */
static int hold_token_in_store(concert_engine *e, concert_hold **hold, concert_hold_request *req,
			       concert_token_claims *claims, const char *token)
{
	int rc = token_claims(e, claims, token, req->now);
	if (rc < 0)
		return rc;
	req->user_id = claims->user_id;
	req->concert_id = claims->concert_id;
	rc = e->store->hold_seats_token(e->store_ctx, hold, req, claims->token_id);
	if (rc != CONCERT_ENOT_ACTIVE)
		return rc;
	concert_error_clear();
	return ENGINE_ASK_QUEUE;
}

/* The queue checks the token (and may admit it), then the lock filter, then the store. */
static int hold_token_from_queue(concert_engine *e, concert_hold **hold, concert_hold_request *req,
				 concert_token_claims *claims, const char *token)
{
	int rc = token_active(e, claims, token, 0, req->now);
	if (rc < 0)
		return rc;
	req->user_id = claims->user_id;
	req->concert_id = claims->concert_id;
	char lock_value[CONCERT_LOCK_VALUE_MAX + 1];
	int locked = 0;
	rc = lock_seats(e, req->schedule_id, req->seat_nos, req->seat_count, lock_value, &locked);
	if (rc == 0) {
		rc = e->store->hold_seats(e->store_ctx, hold, req);
		if (rc < 0 && locked)
			unlock_seats(e, req->schedule_id, req->seat_nos, req->seat_count, lock_value);
	}
	return rc;
}

int concert_hold_seats(concert_engine *e, concert_hold **out, const char *token,
		       int64_t schedule_id, const int32_t *seat_nos, size_t count)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	if (out)
		*out = NULL;
	int32_t sorted[CONCERT_HOLD_SEATS_MAX];
	concert_token_claims claims;
	concert_hold *hold = NULL;
	int rc = check_id(schedule_id, "schedule_id");
	if (rc == 0)
		rc = check_seat_nos(seat_nos, count, CONCERT_HOLD_SEATS_MAX, sorted);
	concert_time now = concert_engine_now(e);
	concert_hold_request req = { NULL, 0, schedule_id, sorted, count, now,
		now + e->opts.hold_ttl, e->opts.max_holds_per_user, e->opts.max_seats_per_user };
	/* A lock filter must be taken only for an ACTIVE token, and its answer
	 * must not come before the token's: with one, the queue is asked first. */
	if (rc == 0)
		rc = e->store_checks_tokens && !e->lock
			     ? hold_token_in_store(e, &hold, &req, &claims, token)
			     : ENGINE_ASK_QUEUE;
	if (rc == ENGINE_ASK_QUEUE)
		rc = hold_token_from_queue(e, &hold, &req, &claims, token);
	if (rc == 0 && out)
		*out = hold;
	else
		concert_free(hold);
	return engine_finish(e, CONCERT_OP_HOLD, rc);
}

int concert_hold_release(concert_engine *e, const char *token, int64_t hold_id,
			 const int32_t *seat_nos, size_t count)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	int32_t sorted[CONCERT_HOLD_SEATS_MAX];
	concert_token_claims claims;
	concert_hold *hold = NULL;
	concert_time now = concert_engine_now(e);
	int rc = owner_claims(e, &claims, token, hold_id, now);
	if (rc == 0 && count)
		rc = check_seat_nos(seat_nos, count, CONCERT_HOLD_SEATS_MAX, sorted);
	/* With a lock filter, the seats to unlock must be known before they go. */
	if (rc == 0 && e->lock)
		rc = e->store->hold_get(e->store_ctx, &hold, hold_id, now);
	if (rc == 0) {
		concert_hold_change req = { claims.user_id, hold_id, count ? sorted : NULL, count,
			now, 0, 0, 0 };
		rc = e->store->hold_release(e->store_ctx, &req);
	}
	if (rc == 0 && hold)
		unlock_seats(e, hold->schedule_id, count ? sorted : hold->seat_nos,
			     count ? count : hold->seat_count, NULL);
	concert_free(hold);
	return engine_finish(e, CONCERT_OP_HOLD_RELEASE, rc);
}

int concert_hold_extend(concert_engine *e, concert_hold **out, const char *token, int64_t hold_id)
{
	engine_begin();
	if (!e)
		return concert_sys_error(CONCERT_EINVAL, "engine is NULL");
	if (out)
		*out = NULL;
	concert_token_claims claims;
	concert_hold *hold = NULL;
	concert_time now = concert_engine_now(e);
	int rc = owner_claims(e, &claims, token, hold_id, now);
	if (rc == 0) {
		concert_hold_change req = { claims.user_id, hold_id, NULL, 0, now,
			e->opts.hold_ttl, e->opts.hold_max_lifetime, e->opts.hold_max_extensions };
		rc = e->store->hold_extend(e->store_ctx, &hold, &req);
	}
	if (rc == 0 && out)
		*out = hold;
	else
		concert_free(hold);
	return engine_finish(e, CONCERT_OP_HOLD_EXTEND, rc);
}

int concert_hold_get(concert_engine *e, concert_hold **out, const char *token, int64_t hold_id)
{
	REQUIRE_ENGINE(e, out);
	*out = NULL;
	concert_token_claims claims;
	concert_hold *hold = NULL;
	concert_time now = concert_engine_now(e);
	int rc = owner_claims(e, &claims, token, hold_id, now);
	if (rc == 0)
		rc = e->store->hold_get(e->store_ctx, &hold, hold_id, now);
	if (rc == 0 && strcmp(hold->user_id, claims.user_id) != 0)
		rc = concert_sys_error(CONCERT_EFORBIDDEN, "hold belongs to another user");
	if (rc == 0)
		*out = hold;
	else
		concert_free(hold);
	return engine_finish(e, CONCERT_OP_HOLD_READ, rc);
}
