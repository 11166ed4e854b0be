/*
 * libconcert — the store backend vtable (catalog, holds, wallets,
 * reservations, payments).
 *
 * Each operation is an atomic domain primitive: the backend makes it
 * all-or-nothing with its native means (locks, a transaction). The engine
 * has already validated arguments (non-NULL, lengths, positive amounts,
 * seat numbers sorted ascending and unique, the token checked); the backend
 * checks everything that depends on stored state, against `now`.
 *
 * Versioning: the struct only grows by appending; fields added after
 * version 1 are marked with the version that added them, and the engine
 * reads them only from a backend that says that version or later.
 */
#ifndef CONCERT_SYS_STORE_H
#define CONCERT_SYS_STORE_H

#include "backend.h"
#include "queue.h"

CONCERT_BEGIN_DECL

#define CONCERT_STORE_BACKEND_VERSION 2

/** A request to hold seats, all or none. */
typedef struct concert_hold_request {
	const char *user_id;
	int64_t concert_id;       /**< from the token: the schedule must belong to it (else CONCERT_ETOKEN) */
	int64_t schedule_id;
	const int32_t *seat_nos;  /**< ascending, unique */
	size_t seat_count;
	concert_time now;
	concert_time expires_at;
	uint32_t max_holds_per_user;  /**< live holds of the user, this one included */
	uint32_t max_seats_per_user;  /**< seats in the user's live holds, these included */
} concert_hold_request;

/** A request to release or extend a hold. */
typedef struct concert_hold_change {
	const char *user_id;       /**< must own the hold (else CONCERT_EFORBIDDEN) */
	int64_t hold_id;
	const int32_t *seat_nos;   /**< release: ascending, unique; count 0 = all */
	size_t seat_count;
	concert_time now;
	concert_time ttl;          /**< extend: new expiry = min(now + ttl, created_at + max_lifetime) */
	concert_time max_lifetime;
	uint32_t max_extensions;
} concert_hold_change;

/** A request to pay a hold. */
typedef struct concert_pay_request {
	const char *user_id;       /**< must own the hold */
	int64_t concert_id;        /**< from the token: the hold's concert (else CONCERT_ETOKEN) */
	int64_t hold_id;
	const char *idem_key;      /**< NULL: none */
	concert_time now;
} concert_pay_request;

/**
 * The store vtable. All methods are called concurrently from many threads.
 * Optional methods may be NULL; the engine answers CONCERT_EINVAL for them.
 */
typedef struct concert_store_backend {
	unsigned int version;
	const char *scheme;   /**< URI scheme served, e.g. "memory", "postgresql" */

	/** Opens an instance for `uri`; *out_ctx is passed to every method. */
	int (*open)(void **out_ctx, const char *uri, const concert_backend_env *env);
	void (*close)(void *ctx);
	int (*health)(void *ctx);

	int (*concert_add)(void *ctx, int64_t *out_id, const char *title,
		concert_time opens_at, concert_time closes_at);
	int (*schedule_add)(void *ctx, int64_t *out_id, int64_t concert_id,
		concert_time starts_at, const char *venue);
	/** All or none; CONCERT_EEXISTS if a seat_no exists. specs' seat_nos are unique. */
	int (*seats_add)(void *ctx, int64_t schedule_id, const concert_seat_spec *specs, size_t count);
	int (*concerts_list)(void *ctx, concert_concert_list **out);
	int (*concert_get)(void *ctx, concert_concert **out, int64_t concert_id);
	int (*schedules_list)(void *ctx, concert_schedule_list **out, int64_t concert_id, concert_time now);
	int (*schedule_get)(void *ctx, concert_schedule **out, int64_t schedule_id, concert_time now);
	int (*seats_list)(void *ctx, concert_seat_list **out, int64_t schedule_id, concert_time now);

	/**
	 * Holds the seats or fails with CONCERT_ESEAT_UNAVAILABLE and the
	 * conflicting seats (concert_sys_error_conflicts). Also: CONCERT_ENOTFOUND
	 * (schedule or seat), CONCERT_ETOKEN, CONCERT_ECLOSED, CONCERT_ELIMIT.
	 * Seats held by an expired hold count as available.
	 */
	int (*hold_seats)(void *ctx, concert_hold **out, const concert_hold_request *req);
	int (*hold_release)(void *ctx, const concert_hold_change *req);
	/** CONCERT_ELIMIT when out of extensions or the lifetime cap gives no more time. */
	int (*hold_extend)(void *ctx, concert_hold **out, const concert_hold_change *req);
	int (*hold_get)(void *ctx, concert_hold **out, int64_t hold_id, concert_time now);

	int (*charge)(void *ctx, int64_t *out_balance, const char *user_id, int64_t amount,
		const char *idem_key, concert_time now);
	int (*balance)(void *ctx, int64_t *out_balance, const char *user_id);
	int (*history)(void *ctx, concert_wallet_tx_list **out, const char *user_id,
		int64_t cursor, size_t limit);

	/**
	 * Debits the wallet, reserves the seats, records reservation and payment,
	 * consumes the hold: all or nothing. A repeat with the same idem_key
	 * returns the original payment.
	 */
	int (*pay)(void *ctx, concert_payment **out, const concert_pay_request *req);
	int (*cancel)(void *ctx, int64_t *out_refunded, int64_t *out_balance, const char *user_id,
		int64_t reservation_id, concert_time now);
	int (*reservation_get)(void *ctx, concert_reservation **out, int64_t reservation_id);

	/** Optional: drop expired holds. */
	int (*sweep)(void *ctx, concert_time now, uint64_t *out_swept);
	/** Optional: snapshot + new journal. */
	int (*compact)(void *ctx);
	/** Computes concert_audit in one consistent view. */
	int (*audit)(void *ctx, concert_audit **out);

	/* version 2 */
	/**
	 * Optional, all three or none: checking queue tokens inside the
	 * store's own transactions. queue_shared answers 1 if this store can
	 * read and end the tokens of that queue instance (both live in one
	 * database), else 0; the engine asks once, when it opens. When it said
	 * 1, a hold or a payment is one call of hold_seats_token or pay_token
	 * instead of the queue's status call first (and, for a payment, its
	 * complete call after): one round trip instead of two or three.
	 */
	int (*queue_shared)(void *ctx, const concert_queue_backend *queue, void *queue_ctx);
	/**
	 * hold_seats, with the token checked in the same transaction and
	 * before anything else: it must be ACTIVE at req->now, of
	 * req->concert_id and req->user_id. Otherwise CONCERT_ENOT_ACTIVE and
	 * nothing changed; the engine then asks the queue as usual, so what the
	 * caller sees of a token that is not ACTIVE (a waiting position, an
	 * expiry, an admission on the way) is the queue's answer.
	 */
	int (*hold_seats_token)(void *ctx, concert_hold **out, const concert_hold_request *req,
		int64_t token_id);
	/**
	 * pay, with the token checked as in hold_seats_token and marked DONE
	 * in the payment's transaction (what concert_queue_backend.complete
	 * does): the payment and the token's end are one atomic change.
	 */
	int (*pay_token)(void *ctx, concert_payment **out, const concert_pay_request *req,
		int64_t token_id);
} concert_store_backend;

/**
 * Registers a store backend for its scheme (process-wide, thread-safe).
 * Errors: CONCERT_EVERSION (unknown version), CONCERT_EINVAL (missing
 * method or scheme), CONCERT_EEXISTS (scheme taken). The struct must stay
 * valid for the life of the process.
 */
CONCERT_EXTERN(int) concert_sys_store_register(const concert_store_backend *backend);

CONCERT_END_DECL

#endif
