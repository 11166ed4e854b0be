/*
 * libconcert — paying holds and cancelling reservations.
 *
 * Paying is one atomic step: the wallet is debited, the seats become
 * RESERVED, a reservation and its payment are recorded, the hold is consumed
 * — all or nothing — and then the queue token is marked DONE.
 */
#ifndef CONCERT_PAYMENT_H
#define CONCERT_PAYMENT_H

#include "engine.h"

CONCERT_BEGIN_DECL

typedef enum concert_reservation_state {
	CONCERT_RESERVATION_CONFIRMED = 1,
	CONCERT_RESERVATION_CANCELLED = 2
} concert_reservation_state;

/** "CONFIRMED", "CANCELLED"; "UNKNOWN" if out of range. */
CONCERT_EXTERN(const char *) concert_reservation_state_name(int state);

typedef struct concert_payment {
	int64_t payment_id;
	int64_t reservation_id;
	int64_t hold_id;
	int64_t schedule_id;
	int64_t amount;
	int64_t balance;          /**< wallet balance right after the payment */
	concert_time created_at;
	char user_id[CONCERT_USER_ID_MAX + 1];
	size_t seat_count;
	int32_t *seat_nos;        /**< inside the same allocation */
} concert_payment;

typedef struct concert_reservation {
	int64_t id;
	int64_t schedule_id;
	int64_t payment_id;
	int64_t amount;
	int32_t state;            /**< concert_reservation_state */
	concert_time created_at;
	char user_id[CONCERT_USER_ID_MAX + 1];
	size_t seat_count;
	int32_t *seat_nos;        /**< inside the same allocation */
} concert_reservation;

/**
 * Pays a live hold with the token's user's wallet. With an `idem_key` (NULL
 * for none) a repeat returns the original payment with no second effect; the
 * same key for another hold is CONCERT_EIDEMPOTENCY. *out (optional) owned
 * by the caller.
 * Errors: CONCERT_ETOKEN, CONCERT_ENOT_ACTIVE, CONCERT_ENOTFOUND,
 * CONCERT_EFORBIDDEN, CONCERT_EEXPIRED (hold expired), CONCERT_ESTATE
 * (already paid or released), CONCERT_EFUNDS, CONCERT_ECLOSED,
 * CONCERT_EIDEMPOTENCY.
 */
CONCERT_EXTERN(int) concert_pay(concert_engine *engine, concert_payment **out,
	const char *token, int64_t hold_id, const char *idem_key);

/**
 * Cancels a confirmed reservation of `user_id`: the amount is refunded to the
 * wallet and the seats become AVAILABLE. *out_refunded and *out_balance are
 * optional. Errors: CONCERT_EINVAL, CONCERT_ENOTFOUND, CONCERT_EFORBIDDEN,
 * CONCERT_ESTATE (already cancelled), CONCERT_EOVERFLOW.
 */
CONCERT_EXTERN(int) concert_reservation_cancel(concert_engine *engine, int64_t *out_refunded,
	int64_t *out_balance, const char *user_id, int64_t reservation_id);

/** Reads a reservation. Errors: CONCERT_ENOTFOUND. *out owned by the caller. */
CONCERT_EXTERN(int) concert_reservation_get(concert_engine *engine, concert_reservation **out,
	int64_t reservation_id);

CONCERT_END_DECL

#endif
