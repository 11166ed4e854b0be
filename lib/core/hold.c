/*
 * Seat holds: the engine checks the token and the policy, the store makes
 * the change atomically.
 */
#include <string.h>

#include "core/engine.h"

const char *concert_hold_state_name(int state)
{
	static const char *const names[] = { "UNKNOWN", "HELD", "RELEASED", "PAID", "EXPIRED" };
	return (state >= CONCERT_HOLD_HELD && state <= CONCERT_HOLD_EXPIRED) ? names[state] : "UNKNOWN";
}

/* A genuine token whose user owns the hold; the queue state does not matter,
 * so a user can still release after the token expired. */
static int owner_claims(concert_engine *e, concert_token_claims *claims, const char *token,
			int64_t hold_id)
{
	int rc = check_id(hold_id, "hold_id");
	return rc < 0 ? rc : token_claims(e, claims, token);
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
	if (rc == 0)
		rc = token_active(e, &claims, token, 0);
	if (rc == 0) {
		concert_time now = concert_engine_now(e);
		concert_hold_request req = { claims.user_id, claims.concert_id, schedule_id, sorted,
			count, now, now + e->opts.hold_ttl, e->opts.max_holds_per_user,
			e->opts.max_seats_per_user };
		rc = e->store->hold_seats(e->store_ctx, &hold, &req);
	}
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
	int rc = owner_claims(e, &claims, token, hold_id);
	if (rc == 0 && count)
		rc = check_seat_nos(seat_nos, count, CONCERT_HOLD_SEATS_MAX, sorted);
	if (rc == 0) {
		concert_hold_change req = { claims.user_id, hold_id, count ? sorted : NULL, count,
			concert_engine_now(e), 0, 0, 0 };
		rc = e->store->hold_release(e->store_ctx, &req);
	}
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
	int rc = owner_claims(e, &claims, token, hold_id);
	if (rc == 0) {
		concert_hold_change req = { claims.user_id, hold_id, NULL, 0, concert_engine_now(e),
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
	int rc = owner_claims(e, &claims, token, hold_id);
	if (rc == 0)
		rc = e->store->hold_get(e->store_ctx, &hold, hold_id, concert_engine_now(e));
	if (rc == 0 && strcmp(hold->user_id, claims.user_id) != 0)
		rc = concert_sys_error(CONCERT_EFORBIDDEN, "hold belongs to another user");
	if (rc == 0)
		*out = hold;
	else
		concert_free(hold);
	return engine_finish(e, CONCERT_OP_HOLD_READ, rc);
}
