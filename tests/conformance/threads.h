/*
 * Helpers for the threaded conformance tests. Worker threads never use
 * cmocka assertions (they are not thread-safe): they CHECK, which records
 * the failure, and the main thread calls assert_no_thread_failures() after
 * joining them.
 */
#ifndef CONCERT_TEST_CONFORMANCE_THREADS_H
#define CONCERT_TEST_CONFORMANCE_THREADS_H

#include "conformance/harness.h"

/* Counts a failure; the first one's message is kept. Thread-safe. */
void record_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond, ...)                             \
	do {                                         \
		if (!(cond))                         \
			record_failure(__VA_ARGS__); \
	} while (0)

/* Forgets earlier failures (call at the start of each test). */
void reset_failures(void);
/* Fails the test (main thread) if a worker recorded a failure. */
void assert_no_thread_failures(void);

typedef void *(*thread_fn)(void *);

/* Runs fn on n threads, thread i getting (char *)args + i * arg_size; joins all. */
void run_threads(size_t n, thread_fn fn, void *args, size_t arg_size);

/* A random set of 1..max distinct seats of 1..seats, ascending, into out. */
size_t random_seats(unsigned *seed, int32_t *out, size_t max, int32_t seats);

#endif
