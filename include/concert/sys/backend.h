/*
 * libconcert — backend author API: what every backend gets and may call.
 *
 * Stable within a minor version (weaker than the public API). A backend
 * reports failures by returning a negative CONCERT_E* code; it may attach a
 * message and conflicting seats with concert_sys_error*() first, which the
 * engine passes on through concert_error_last().
 */
#ifndef CONCERT_SYS_BACKEND_H
#define CONCERT_SYS_BACKEND_H

#include "../engine.h"
#include "../catalog.h"
#include "../hold.h"
#include "../wallet.h"
#include "../payment.h"

CONCERT_BEGIN_DECL

#define CONCERT_BACKEND_ENV_VERSION 1

/** What the engine hands a backend at open. Valid until the backend closes. */
typedef struct concert_backend_env {
	unsigned int version;
	concert_clock_fn clock;   /**< never NULL */
	void *clock_ctx;
	concert_log_fn log;       /**< never NULL (a no-op when the host set none) */
	void *log_ctx;
	int log_level;
} concert_backend_env;

/**
 * Sets the calling thread's last error and returns `code`, so a backend can
 * write `return concert_sys_error(CONCERT_ENOTFOUND, "no such hold");`.
 * `message` is copied (truncated to 255 bytes); NULL means the fixed text.
 */
CONCERT_EXTERN(int) concert_sys_error(int code, const char *message);

/** Like concert_sys_error, with a printf-style message (internal use only). */
CONCERT_EXTERN(int) concert_sys_errorf(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/**
 * Sets CONCERT_ESEAT_UNAVAILABLE with the conflicting seats (at most
 * CONCERT_HOLD_SEATS_MAX are kept) and returns CONCERT_ESEAT_UNAVAILABLE.
 */
CONCERT_EXTERN(int) concert_sys_error_conflicts(const int32_t *seat_nos, size_t count);

/*
 * Allocators for results. Each returns one zeroed block, freed by
 * concert_free, with the items/seat_nos pointer set into the same block.
 * NULL when out of memory.
 */
CONCERT_EXTERN(concert_concert *) concert_sys_concert_alloc(void);
CONCERT_EXTERN(concert_concert_list *) concert_sys_concert_list_alloc(size_t count);
CONCERT_EXTERN(concert_schedule *) concert_sys_schedule_alloc(void);
CONCERT_EXTERN(concert_schedule_list *) concert_sys_schedule_list_alloc(size_t count);
CONCERT_EXTERN(concert_seat_list *) concert_sys_seat_list_alloc(size_t count);
CONCERT_EXTERN(concert_wallet_tx_list *) concert_sys_tx_list_alloc(size_t count);
CONCERT_EXTERN(concert_hold *) concert_sys_hold_alloc(size_t seat_count);
CONCERT_EXTERN(concert_payment *) concert_sys_payment_alloc(size_t seat_count);
CONCERT_EXTERN(concert_reservation *) concert_sys_reservation_alloc(size_t seat_count);
CONCERT_EXTERN(concert_audit *) concert_sys_audit_alloc(void);

/**
 * Copies a NUL-terminated string into a fixed-size field, truncating;
 * the field is always NUL-terminated.
 */
CONCERT_EXTERN(void) concert_sys_strlcpy(char *dst, const char *src, size_t dst_size);

CONCERT_END_DECL

#endif
