/*
 * libconcert — the prepaid points wallet.
 *
 * A wallet exists once charged; an unknown user has balance 0. The balance
 * is never negative and always equals the sum of the user's transactions.
 */
#ifndef CONCERT_WALLET_H
#define CONCERT_WALLET_H

#include "engine.h"

CONCERT_BEGIN_DECL

typedef enum concert_tx_kind {
	CONCERT_TX_CHARGE = 1,
	CONCERT_TX_PAYMENT = 2,   /**< amount is negative */
	CONCERT_TX_REFUND = 3
} concert_tx_kind;

/** "CHARGE", "PAYMENT", "REFUND"; "UNKNOWN" if out of range. */
CONCERT_EXTERN(const char *) concert_tx_kind_name(int kind);

typedef struct concert_wallet_tx {
	int64_t id;               /**< increases with time within a user */
	int32_t kind;             /**< concert_tx_kind */
	int64_t amount;           /**< signed: what the balance changed by */
	int64_t balance_after;
	int64_t ref_id;           /**< reservation id for PAYMENT/REFUND, else 0 */
	concert_time created_at;
} concert_wallet_tx;

typedef struct concert_wallet_tx_list {
	size_t count;
	concert_wallet_tx *items;  /**< newest first */
	int64_t next_cursor;       /**< pass to get the next page; 0 when no more */
} concert_wallet_tx_list;

/**
 * Adds `amount` (> 0) to the user's balance. With an `idem_key` (NULL for
 * none) a repeat has no second effect and returns the same balance_after;
 * the same key with another amount is CONCERT_EIDEMPOTENCY.
 * *out_balance (optional) gets the balance after the charge.
 * Errors: CONCERT_EINVAL, CONCERT_EOVERFLOW, CONCERT_EIDEMPOTENCY.
 */
CONCERT_EXTERN(int) concert_wallet_charge(concert_engine *engine, int64_t *out_balance,
	const char *user_id, int64_t amount, const char *idem_key);

/** The user's balance (0 if never charged). Errors: CONCERT_EINVAL. */
CONCERT_EXTERN(int) concert_wallet_balance(concert_engine *engine, int64_t *out_balance,
	const char *user_id);

/**
 * Up to `limit` (1..1000) transactions, newest first, older than `cursor`
 * (0: from the newest). *out owned by the caller (concert_free).
 */
CONCERT_EXTERN(int) concert_wallet_history(concert_engine *engine, concert_wallet_tx_list **out,
	const char *user_id, int64_t cursor, size_t limit);

CONCERT_END_DECL

#endif
