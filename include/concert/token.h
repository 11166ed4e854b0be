/*
 * libconcert — signed queue tokens.
 *
 * A token is "<claims>.<mac>", both base64url without padding: claims is a
 * msgpack array [format, token_id, user_id, concert_id, issued_at, kind,
 * active_until] and mac is HMAC-SHA-256(secret, "<claims>"). Verifying needs
 * only the secret and the clock, so an edge can reject forged, foreign and
 * expired tokens without asking a backend. Revocation (a token that left the
 * queue or was used to pay) needs the backend: see concert_queue_validate.
 *
 * These functions are safe from any thread. They make no allocations of
 * their own; each thread keeps one HMAC context, created on its first call
 * and freed when the thread exits (so do not dlclose the library while
 * threads that verified tokens are alive).
 */
#ifndef CONCERT_TOKEN_H
#define CONCERT_TOKEN_H

#include "common.h"
#include "errors.h"

CONCERT_BEGIN_DECL

/** Longest token string, without the NUL. */
#define CONCERT_TOKEN_MAX 255

typedef enum concert_token_kind {
	CONCERT_TOKEN_WAITING = 1,  /**< in the queue, not yet admitted */
	CONCERT_TOKEN_ACTIVE = 2    /**< admitted until active_until */
} concert_token_kind;

/**
 * The claims of a token (format 1). Caller-allocated; its layout is tied to
 * the token format and never changes: a new format gets a new struct.
 */
typedef struct concert_token_claims {
	int64_t token_id;
	int64_t concert_id;
	concert_time issued_at;
	concert_time active_until;  /**< 0 for WAITING tokens */
	int32_t kind;               /**< concert_token_kind */
	char user_id[CONCERT_USER_ID_MAX + 1];
} concert_token_claims;

/**
 * Signs `claims` into `out` (NUL-terminated) of `out_size` bytes; *out_len
 * (optional) gets the length. Errors: CONCERT_EINVAL (NULL, empty secret,
 * bad claims, buffer smaller than the token + 1).
 */
CONCERT_EXTERN(int) concert_token_sign(char *out, size_t out_size, size_t *out_len,
	const concert_token_claims *claims, const unsigned char *secret, size_t secret_len);

/**
 * Verifies `token` (`token_len` bytes, need not be NUL-terminated) with the
 * secret and the time `now`, with a constant-time MAC comparison. When
 * `concert_id` is not 0 the token must be for that concert.
 *
 * Returns 0 for a valid ACTIVE token whose active_until is after `now`;
 * CONCERT_ENOT_ACTIVE for a valid WAITING token; CONCERT_EEXPIRED for a valid
 * ACTIVE token past active_until; CONCERT_ETOKEN for anything malformed,
 * truncated, tampered, signed with another secret or for another concert.
 * `out` (optional) gets the claims whenever the signature is valid.
 */
CONCERT_EXTERN(int) concert_token_verify(concert_token_claims *out, const char *token,
	size_t token_len, const unsigned char *secret, size_t secret_len,
	int64_t concert_id, concert_time now);

CONCERT_END_DECL

#endif
