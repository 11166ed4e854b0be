/*
 * libconcert — the engine: one thread-safe handle over the storage backends.
 */
#ifndef CONCERT_ENGINE_H
#define CONCERT_ENGINE_H

#include "common.h"
#include "errors.h"

CONCERT_BEGIN_DECL

/** Opaque engine handle. One per process, shared by all threads. */
typedef struct concert_engine concert_engine;

/** Returns the current time in ms since the epoch. Must be thread-safe. */
typedef concert_time (*concert_clock_fn)(void *ctx);

typedef enum concert_log_level {
	CONCERT_LOG_ERROR = 0,
	CONCERT_LOG_WARN = 1,
	CONCERT_LOG_INFO = 2,
	CONCERT_LOG_DEBUG = 3
} concert_log_level;

/**
 * Receives the engine's log lines. Called from any thread; must not call
 * back into the library. `message` is valid only during the call.
 */
typedef void (*concert_log_fn)(void *ctx, int level, const char *message);

#define CONCERT_OPTIONS_VERSION 1

/**
 * Options for concert_engine_open(). Initialise with CONCERT_OPTIONS_INIT or
 * concert_options_init(); fields are only ever appended. Zero means "the
 * default" for every numeric field. Strings are copied by open.
 */
typedef struct concert_options {
	unsigned int version;

	/**
	 * Backends by URI. store: "memory:" (ephemeral, the default) or
	 * "memory:/dir" (durable journal in dir; add "?fsync=always|batch|off",
	 * default always). queue: the same schemes; NULL shares the store's
	 * memory instance. lock: NULL or "none" for no lock filter.
	 */
	const char *store;
	const char *queue;
	const char *lock;

	/** HMAC key for queue tokens. NULL: a random key for this engine only. */
	const unsigned char *secret;
	size_t secret_len;

	/** Clock; NULL uses CLOCK_REALTIME. */
	concert_clock_fn clock;
	void *clock_ctx;

	/** Log callback; NULL logs nothing. Lines above log_level are dropped. */
	concert_log_fn log;
	void *log_ctx;
	int log_level;

	/* queue policy */
	uint32_t max_active;          /**< ACTIVE tokens per concert (default 100) */
	uint32_t admit_per_second;    /**< admissions per concert per second; 0 = unlimited */
	concert_time wait_idle_ttl;   /**< WAITING token expires after this idle time (default 5 min) */
	concert_time active_ttl;      /**< ACTIVE token lifetime from admission (default 10 min) */

	/* hold policy */
	concert_time hold_ttl;            /**< hold lifetime and extension step (default 5 min) */
	concert_time hold_max_lifetime;   /**< extensions never pass created + this (default 15 min) */
	uint32_t hold_max_extensions;     /**< default 2 */
	uint32_t max_holds_per_user;      /**< live holds per user (default 4) */
	uint32_t max_seats_per_user;      /**< seats in live holds per user (default 8) */
} concert_options;

#define CONCERT_OPTIONS_INIT { CONCERT_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, \
	NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Initialises `opts` to defaults. Returns CONCERT_EVERSION if `version` is
 * not one this library knows.
 */
CONCERT_EXTERN(int) concert_options_init(concert_options *opts, unsigned int version);

/**
 * Opens an engine. On success *out is a new handle owned by the caller
 * (close it with concert_engine_close). On failure *out is NULL and
 * concert_error_last() says why: CONCERT_EINVAL (bad URI/option),
 * CONCERT_EVERSION, CONCERT_EUNAVAILABLE, CONCERT_ECORRUPT (journal damaged
 * before its tail), CONCERT_EIO.
 */
CONCERT_EXTERN(int) concert_engine_open(concert_engine **out, const concert_options *opts);

/** Closes the engine and its backends. NULL is a no-op. Not concurrent with other calls. */
CONCERT_EXTERN(void) concert_engine_close(concert_engine *engine);

/** The engine's current time (its clock). */
CONCERT_EXTERN(concert_time) concert_engine_now(concert_engine *engine);

/**
 * Checks each backend. 0 if all answer; CONCERT_EUNAVAILABLE otherwise, with
 * the failing slot in the message.
 */
CONCERT_EXTERN(int) concert_engine_health(concert_engine *engine);

/**
 * Removes expired holds and tokens now. Never needed for correctness (expiry
 * is enforced at every read and write); it frees memory and seat counters.
 * *out_swept (optional) gets the number of holds released.
 */
CONCERT_EXTERN(int) concert_engine_sweep(concert_engine *engine, uint64_t *out_swept);

/**
 * Compacts the durable memory store and queue: each writes a snapshot and
 * starts a new journal. A no-op for backends that need none.
 */
CONCERT_EXTERN(int) concert_engine_compact(concert_engine *engine);

/** Operations counted by the engine's statistics. */
typedef enum concert_op {
	CONCERT_OP_CONCERT_ADD = 0,
	CONCERT_OP_SCHEDULE_ADD,
	CONCERT_OP_SEATS_ADD,
	CONCERT_OP_CATALOG_READ,
	CONCERT_OP_QUEUE_ENTER,
	CONCERT_OP_QUEUE_STATUS,
	CONCERT_OP_QUEUE_LEAVE,
	CONCERT_OP_TOKEN_VALIDATE,
	CONCERT_OP_HOLD,
	CONCERT_OP_HOLD_RELEASE,
	CONCERT_OP_HOLD_EXTEND,
	CONCERT_OP_HOLD_READ,
	CONCERT_OP_CHARGE,
	CONCERT_OP_WALLET_READ,
	CONCERT_OP_PAY,
	CONCERT_OP_CANCEL,
	CONCERT_OP_RESERVATION_READ,
	CONCERT_OP_COUNT
} concert_op;

/** Stable lowercase name of an op ("hold", "pay", ...); "unknown" if out of range. */
CONCERT_EXTERN(const char *) concert_op_name(int op);

/**
 * Number of calls of `op` that returned `code` (0 for successes, a negative
 * CONCERT_E* code for failures) since the engine opened. Lock-free.
 */
CONCERT_EXTERN(uint64_t) concert_engine_stat(concert_engine *engine, int op, int code);

/** Totals for checking the money and seat invariants (DESIGN.md §2). */
typedef struct concert_audit {
	int64_t total_balance;      /**< sum of all wallet balances */
	int64_t total_charges;      /**< sum of CHARGE transactions */
	int64_t total_payments;     /**< amount paid by PAYMENT transactions (positive) */
	int64_t total_refunds;      /**< sum of REFUND transactions */
	int64_t wallets;            /**< number of wallets */
	int64_t wallet_mismatches;  /**< wallets whose balance != sum of their transactions, or < 0 */
	int64_t reserved_seats;     /**< seats in state RESERVED */
	int64_t seat_mismatches;    /**< RESERVED seats without exactly one confirmed reservation, and the converse */
	int64_t reservations;       /**< confirmed reservations */
	int64_t payment_mismatches; /**< reservations without exactly one payment */
} concert_audit;

/**
 * Computes the audit totals from the store in one consistent view; *out is
 * owned by the caller (concert_free). The invariants hold when all
 * *_mismatches are 0 and
 * total_balance + total_payments - total_refunds == total_charges.
 * Slow (scans everything): meant for tests and operators.
 */
CONCERT_EXTERN(int) concert_engine_audit(concert_engine *engine, concert_audit **out);

CONCERT_END_DECL

#endif
