/*
 * Sleeping on a 32-bit word until another thread changes it (Linux futex,
 * private to the process): for waits where a condition variable would make
 * the woken thread take a mutex again (journal.c, the Redis queue's line of
 * enters).
 */
#ifndef CONCERT_CORE_FUTEX_H
#define CONCERT_CORE_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Sleeps while *word == expected (returns at once if it is not; may return spuriously). */
static inline void concert_futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

/* Wakes the threads sleeping on `word`. Only the address is used: it may be
 * called after the word's owner stopped waiting and let it go. */
static inline void concert_futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif
