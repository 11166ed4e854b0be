/*
 * libconcert — temporary seat holds.
 *
 * A hold takes 1..CONCERT_HOLD_SEATS_MAX seats of one schedule, all or none,
 * until expires_at. An expired hold blocks nobody and cannot be paid; this
 * is judged at every read and write, so no sweeper is needed.
 * All calls authorise with an ACTIVE queue token for the schedule's concert
 * (release and get accept any genuine token of the hold's owner).
 */
#ifndef CONCERT_HOLD_H
#define CONCERT_HOLD_H

#include "engine.h"

CONCERT_BEGIN_DECL

typedef enum concert_hold_state {
	CONCERT_HOLD_HELD = 1,
	CONCERT_HOLD_RELEASED = 2,
	CONCERT_HOLD_PAID = 3,
	CONCERT_HOLD_EXPIRED = 4
} concert_hold_state;

/** "HELD", "RELEASED", "PAID", "EXPIRED"; "UNKNOWN" if out of range. */
CONCERT_EXTERN(const char *) concert_hold_state_name(int state);

typedef struct concert_hold {
	int64_t id;
	int64_t schedule_id;
	int64_t concert_id;
	int64_t amount;              /**< sum of the held seats' prices */
	concert_time created_at;
	concert_time expires_at;
	int32_t state;               /**< concert_hold_state, expiry applied */
	uint32_t extensions;
	char user_id[CONCERT_USER_ID_MAX + 1];
	size_t seat_count;
	int32_t *seat_nos;           /**< ascending; inside the same allocation */
} concert_hold;

/**
 * Holds `count` seats of `schedule_id` for the token's user, all or none.
 * *out (optional) gets the hold, owned by the caller (concert_free).
 * Errors: CONCERT_EINVAL (no seats, too many, duplicates), CONCERT_ETOKEN,
 * CONCERT_ENOT_ACTIVE, CONCERT_EEXPIRED (token), CONCERT_ENOTFOUND (schedule
 * or a seat number), CONCERT_ECLOSED, CONCERT_ELIMIT (per-user holds/seats),
 * CONCERT_ESEAT_UNAVAILABLE (concert_error_last()->conflicts lists the seats).
 */
CONCERT_EXTERN(int) concert_hold_seats(concert_engine *engine, concert_hold **out,
	const char *token, int64_t schedule_id, const int32_t *seat_nos, size_t count);

/**
 * Releases `count` seats of a hold, or all of them when count is 0 (the hold
 * becomes RELEASED when no seat is left). The amount shrinks accordingly.
 * Errors: CONCERT_ETOKEN, CONCERT_ENOTFOUND, CONCERT_EFORBIDDEN (not the
 * owner), CONCERT_EINVAL (a seat not in the hold), CONCERT_ESTATE (paid or
 * released), CONCERT_EEXPIRED.
 */
CONCERT_EXTERN(int) concert_hold_release(concert_engine *engine, const char *token,
	int64_t hold_id, const int32_t *seat_nos, size_t count);

/**
 * Extends a hold by hold_ttl from now, never past created_at +
 * hold_max_lifetime nor more than hold_max_extensions times. *out optional.
 * Errors: as release, plus CONCERT_ELIMIT.
 */
CONCERT_EXTERN(int) concert_hold_extend(concert_engine *engine, concert_hold **out,
	const char *token, int64_t hold_id);

/** Reads a hold (state with expiry applied). Errors: CONCERT_ETOKEN, CONCERT_ENOTFOUND, CONCERT_EFORBIDDEN. */
CONCERT_EXTERN(int) concert_hold_get(concert_engine *engine, concert_hold **out,
	const char *token, int64_t hold_id);

CONCERT_END_DECL

#endif
