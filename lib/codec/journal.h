/*
 * Internal: the append-only journal behind durable memory backends.
 *
 * Files in `dir`, for a journal named `name` and generation G:
 *   <name>.<G>.snapshot   state as of the start of generation G (absent for G = 0)
 *   <name>.<G>.journal    records appended since
 * Every record is framed as
 *   u32 length (LE) | u32 crc32c(payload) (LE) | u32 crc32c(first 8 bytes) (LE) | payload
 * On open the newest complete snapshot is replayed, then its journal. A torn
 * tail (an incomplete frame, or a bad payload CRC in the frame that ends the
 * file) is truncated and reported; any other damage is CONCERT_ECORRUPT and
 * the journal is not opened: data is never skipped.
 *
 * Durability (journal_commit): ALWAYS fsyncs before acknowledging, with
 * group commit (one fsync covers every record appended before it);
 * BATCH writes before acknowledging and fsyncs in the background every few
 * milliseconds; OFF writes before acknowledging and fsyncs only at close.
 * All three survive a kill -9 of the process once acknowledged.
 */
#ifndef CONCERT_CODEC_JOURNAL_H
#define CONCERT_CODEC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef enum journal_fsync {
	JOURNAL_FSYNC_ALWAYS = 0,
	JOURNAL_FSYNC_BATCH = 1,
	JOURNAL_FSYNC_OFF = 2
} journal_fsync;

typedef struct journal journal;

/** Applies one replayed record; returns 0, or a negative CONCERT_E* code to abort open. */
typedef int (*journal_apply_fn)(void *ctx, const uint8_t *payload, size_t len);

typedef struct journal_report {
	uint64_t snapshot_records;   /**< records replayed from the snapshot */
	uint64_t journal_records;    /**< records replayed from the journal */
	uint64_t truncated_bytes;    /**< torn tail removed (0 if none) */
	uint64_t generation;
} journal_report;

/**
 * Opens (creating `dir` and files as needed) and replays through `apply`.
 * Takes an exclusive flock on the journal: a second opener gets
 * CONCERT_EUNAVAILABLE. Errors also: CONCERT_EIO, CONCERT_ECORRUPT,
 * CONCERT_ENOMEM, or what `apply` returned. `report` is optional.
 */
int journal_open(journal **out, const char *dir, const char *name, journal_fsync policy,
	journal_apply_fn apply, void *apply_ctx, journal_report *report);

/**
 * Appends one record to the in-memory tail and returns its sequence number
 * (> 0). Call it while holding the locks that order the change, so journal
 * order is a valid serial order; it never blocks on I/O. 0 on ENOMEM or
 * when `len` exceeds 16 MiB.
 */
uint64_t journal_append(journal *j, const uint8_t *payload, size_t len);

/**
 * Waits until record `seq` (and all before it) is durable per the policy.
 * Call it after releasing the caller's locks. 0 or CONCERT_EIO (the journal
 * then refuses further appends and commits: the host must reopen).
 */
int journal_commit(journal *j, uint64_t seq);

/** Writes one record of a snapshot being built by journal_compact. */
typedef struct journal_snapshot journal_snapshot;
int journal_snapshot_put(journal_snapshot *snap, const uint8_t *payload, size_t len);

/** Emits the whole current state through journal_snapshot_put. */
typedef int (*journal_snapshot_fn)(void *ctx, journal_snapshot *snap);

/**
 * Writes a snapshot of generation G+1 via `emit`, starts an empty journal
 * G+1, then removes generation G. Crash-safe at every step. The caller must
 * stop appends during the call (hold all its locks). 0 or CONCERT_EIO.
 */
int journal_compact(journal *j, journal_snapshot_fn emit, void *emit_ctx);

/** Bytes in the current journal file (to decide when to compact). */
uint64_t journal_size(journal *j);

/** Flushes, fsyncs and closes. NULL is a no-op. */
void journal_close(journal *j);

/** CRC32C (Castagnoli) of `len` bytes, continuing from `crc` (0 to start). */
uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len);

#endif
