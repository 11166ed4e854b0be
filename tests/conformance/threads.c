/*
 * Helpers for the threaded conformance tests (see threads.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance/threads.h"

static _Atomic int thread_failures;
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[512];

void record_failure(const char *fmt, ...)
{
	if (atomic_fetch_add(&thread_failures, 1) == 0) {
		va_list ap;
		va_start(ap, fmt);
		pthread_mutex_lock(&failure_lock);
		vsnprintf(first_failure, sizeof(first_failure), fmt, ap);
		pthread_mutex_unlock(&failure_lock);
		va_end(ap);
	}
}

void reset_failures(void)
{
	atomic_store(&thread_failures, 0);
	first_failure[0] = '\0';
}

void assert_no_thread_failures(void)
{
	int n = atomic_load(&thread_failures);
	if (n)
		fail_msg("%d failures in worker threads; first: %s", n, first_failure);
}

void run_threads(size_t n, thread_fn fn, void *args, size_t arg_size)
{
	pthread_t *threads = calloc(n, sizeof(*threads));
	assert_non_null(threads);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, fn, (char *)args + i * arg_size), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	free(threads);
}

/* Random subset of 1..max seats of 1..seats, ascending. */
size_t random_seats(unsigned *seed, int32_t *out, size_t max, int32_t seats)
{
	size_t n = 1 + (size_t)rand_r(seed) % max, count = 0;
	while (count < n) {
		int32_t s = 1 + rand_r(seed) % seats;
		size_t i = 0;
		while (i < count && out[i] < s)
			i++;
		if (i < count && out[i] == s)
			continue;
		memmove(&out[i + 1], &out[i], (count - i) * sizeof(*out));
		out[i] = s;
		count++;
	}
	return count;
}
