/*
 * libconcert — common definitions: version, export macro, basic types.
 *
 * The version lives here and only here; CMake reads it from this file.
 */
#ifndef CONCERT_COMMON_H
#define CONCERT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CONCERT_VERSION_MAJOR 0
#define CONCERT_VERSION_MINOR 1
#define CONCERT_VERSION_PATCH 0
#define CONCERT_VERSION "0.1.0"

#if defined(_WIN32) && defined(CONCERT_BUILDING)
#define CONCERT_EXTERN(type) __declspec(dllexport) type
#elif defined(__GNUC__)
#define CONCERT_EXTERN(type) __attribute__((visibility("default"))) type
#else
#define CONCERT_EXTERN(type) type
#endif

#ifdef __cplusplus
#define CONCERT_BEGIN_DECL extern "C" {
#define CONCERT_END_DECL }
#else
#define CONCERT_BEGIN_DECL
#define CONCERT_END_DECL
#endif

CONCERT_BEGIN_DECL

/** Longest user id, in bytes, without the terminating NUL. */
#define CONCERT_USER_ID_MAX 64
/** Longest concert title, in bytes, without the terminating NUL. */
#define CONCERT_TITLE_MAX 200
/** Longest venue name, in bytes, without the terminating NUL. */
#define CONCERT_VENUE_MAX 120
/** Longest seat grade ("VIP", "R", ...), in bytes, without the NUL. */
#define CONCERT_GRADE_MAX 15
/** Longest idempotency key, in bytes, without the terminating NUL. */
#define CONCERT_IDEM_KEY_MAX 64
/** Most seats in one hold. */
#define CONCERT_HOLD_SEATS_MAX 64

/**
 * Time is milliseconds since the UNIX epoch (UTC). The engine reads it from
 * its clock (see concert_options.clock), so tests can drive it.
 */
typedef int64_t concert_time;

/** Library version as "MAJOR.MINOR.PATCH"; static storage. */
CONCERT_EXTERN(const char *) concert_version(void);

/**
 * Frees any object the library returned through an `out` parameter
 * (lists, holds, statuses, ...). Each such object is one allocation, so one
 * call frees it with everything it points to. NULL is a no-op.
 */
CONCERT_EXTERN(void) concert_free(void *object);

CONCERT_END_DECL

#endif
