/*
 * libconcert — error codes and the thread-local last error.
 *
 * Every call returns 0 on success or one of the negative codes below. Codes
 * are never renumbered and a retired code keeps its slot: test the code,
 * never the message text.
 */
#ifndef CONCERT_ERRORS_H
#define CONCERT_ERRORS_H

#include "common.h"

CONCERT_BEGIN_DECL

typedef enum concert_error_code {
	CONCERT_OK = 0,
	CONCERT_EINVAL = -1,          /**< invalid argument (NULL, empty, too long, <= 0 ...) */
	CONCERT_ENOMEM = -2,          /**< out of memory */
	CONCERT_ENOTFOUND = -3,       /**< unknown id */
	CONCERT_EEXISTS = -4,         /**< the thing already exists (e.g. duplicate seat) */
	CONCERT_ESEAT_UNAVAILABLE = -5, /**< seats held or reserved by someone else; see conflicts */
	CONCERT_EEXPIRED = -6,        /**< hold or queue token expired */
	CONCERT_ETOKEN = -7,          /**< queue token missing, forged, malformed or for another concert */
	CONCERT_ENOT_ACTIVE = -8,     /**< queue token valid but not admitted (WAITING) */
	CONCERT_EFUNDS = -9,          /**< insufficient balance */
	CONCERT_EIDEMPOTENCY = -10,   /**< idempotency key reused with different parameters */
	CONCERT_ESTATE = -11,         /**< wrong state: hold already paid/released, reservation cancelled */
	CONCERT_ELIMIT = -12,         /**< a policy limit: holds per user, extensions, lifetime */
	CONCERT_ECLOSED = -13,        /**< outside the concert's reservation window */
	CONCERT_EOVERFLOW = -14,      /**< amount would overflow a balance */
	CONCERT_EUNAVAILABLE = -15,   /**< backend unreachable; retry later */
	CONCERT_ECORRUPT = -16,       /**< stored data failed its checksum or cannot be decoded */
	CONCERT_EIO = -17,            /**< I/O error (journal, snapshot) */
	CONCERT_EVERSION = -18,       /**< struct or backend version not supported */
	CONCERT_EFORBIDDEN = -19,     /**< the caller does not own the hold/reservation */
	CONCERT_EINTERNAL = -20       /**< a bug: please report it */
} concert_error_code;

/** Number of codes, for tables indexed by -code. */
#define CONCERT_ERROR_COUNT 21

/**
 * Detail of the last failed call on this thread. `conflicts` lists the
 * conflicting seat numbers after CONCERT_ESEAT_UNAVAILABLE.
 * Owned by the thread; valid until the next libconcert call on this thread.
 */
typedef struct concert_error {
	int code;
	const char *message;
	size_t conflict_count;
	const int32_t *conflicts;
} concert_error;

/** Fixed, static text for a code ("seat unavailable", ...). Never NULL. */
CONCERT_EXTERN(const char *) concert_strerror(int code);

/**
 * Short stable name of a code ("seat_unavailable", "insufficient_funds"),
 * as used in the HTTP API's error bodies. Never NULL.
 */
CONCERT_EXTERN(const char *) concert_error_name(int code);

/**
 * The last error on the calling thread; code 0 and message "" when the
 * last call succeeded. Never NULL.
 */
CONCERT_EXTERN(const concert_error *) concert_error_last(void);

CONCERT_END_DECL

#endif
