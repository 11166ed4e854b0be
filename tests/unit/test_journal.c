/*
 * Unit tests for lib/codec/journal.c: framing, replay, torn tails,
 * corruption, compaction, locking and group commit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec/journal.h"
#include "core/internal.h"
#include "tmpdir.h"

/* Test hook defined in journal.c, not part of its header. */
uint64_t journal_test_sync_count(journal *j);

#define NAME "t"
#define MAX_RECORDS 4096

/* What a replay delivered, in order. */
typedef struct replay_log {
	size_t count;
	size_t len[MAX_RECORDS];
	uint8_t *data[MAX_RECORDS];
	int fail_at; /* 1-based record that makes apply fail; 0 never */
} replay_log;

static int collect(void *ctx, const uint8_t *payload, size_t len)
{
	replay_log *log = ctx;
	if (!log)
		return 0;
	if (log->fail_at && (int)log->count + 1 == log->fail_at)
		return CONCERT_ENOMEM;
	assert_true(log->count < MAX_RECORDS);
	log->data[log->count] = malloc(len ? len : 1);
	memcpy(log->data[log->count], payload, len);
	log->len[log->count++] = len;
	return 0;
}

static void log_reset(replay_log *log)
{
	for (size_t i = 0; i < log->count; i++)
		free(log->data[i]);
	memset(log, 0, sizeof(*log));
}

static replay_log *log_new(void)
{
	replay_log *log = calloc(1, sizeof(*log));
	assert_non_null(log);
	return log;
}

static void log_free(replay_log *log)
{
	log_reset(log);
	free(log);
}

/* Record i is "rec-<i>" followed by i % 50 filler bytes (record 0 is short). */
static size_t make_record(uint8_t *buf, int i)
{
	int n = sprintf((char *)buf, "rec-%d", i);
	memset(buf + n, 'a' + i % 26, (size_t)(i % 50));
	return (size_t)n + (size_t)(i % 50);
}

static void assert_record(const replay_log *log, size_t at, int i)
{
	uint8_t want[128];
	size_t n = make_record(want, i);
	assert_int_equal(log->len[at], n);
	assert_memory_equal(log->data[at], want, n);
}

static char *make_dir(void)
{
	char *dir = malloc(256);
	assert_non_null(dir);
	assert_int_equal(tmpdir_make(dir, 256, "test_journal"), 0);
	return dir;
}

static void remove_dir(char *dir)
{
	assert_int_equal(tmpdir_remove(dir), 0);
	free(dir);
}

static void path_of(char *out, const char *dir, const char *file)
{
	snprintf(out, 512, "%s/%s", dir, file);
}

static int file_exists(const char *dir, const char *file)
{
	char path[512];
	path_of(path, dir, file);
	return access(path, F_OK) == 0;
}

static long file_size(const char *dir, const char *file)
{
	char path[512];
	struct stat sb;
	path_of(path, dir, file);
	assert_int_equal(stat(path, &sb), 0);
	return (long)sb.st_size;
}

static uint8_t *read_all(const char *dir, const char *file, long *size)
{
	char path[512];
	path_of(path, dir, file);
	*size = file_size(dir, file);
	uint8_t *buf = malloc((size_t)*size + 1);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, (size_t)*size, f), (size_t)*size);
	fclose(f);
	return buf;
}

static void write_all_file(const char *dir, const char *file, const void *data, long size)
{
	char path[512];
	path_of(path, dir, file);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, (size_t)size, f), (size_t)size);
	fclose(f);
}

static void truncate_file(const char *dir, const char *file, long size)
{
	char path[512];
	path_of(path, dir, file);
	assert_int_equal(truncate(path, size), 0);
}

static void patch_file(const char *dir, const char *file, long off, uint8_t xor_mask)
{
	long size;
	uint8_t *buf = read_all(dir, file, &size);
	assert_true(off < size);
	buf[off] ^= xor_mask;
	write_all_file(dir, file, buf, size);
	free(buf);
}

static void append_file(const char *dir, const char *file, uint8_t byte, long count)
{
	char path[512];
	path_of(path, dir, file);
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	for (long i = 0; i < count; i++)
		fputc(byte, f);
	fclose(f);
}

/* Appends records first..last-1 and commits each one. */
static void append_range(journal *j, int first, int last)
{
	uint8_t buf[128];
	for (int i = first; i < last; i++) {
		size_t n = make_record(buf, i);
		uint64_t seq = journal_append(j, buf, n);
		assert_true(seq > 0);
		assert_int_equal(journal_commit(j, seq), 0);
	}
}

/* Opens, expects `code`, and closes straight away on success. */
static int open_close(const char *dir, journal_fsync policy, replay_log *log, journal_report *rep)
{
	journal *j;
	int rc = journal_open(&j, dir, NAME, policy, collect, log, rep);
	if (rc == 0)
		journal_close(j);
	else
		assert_null(j);
	return rc;
}

/* A journal of `count` records in generation 0; returns the frame offsets. */
static char *journal_with(int count, long *offsets)
{
	char *dir = make_dir();
	journal *j;
	uint8_t buf[128];
	long off = 0;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	for (int i = 0; i < count; i++) {
		size_t n = make_record(buf, i);
		if (offsets)
			offsets[i] = off;
		off += 12 + (long)n;
		assert_int_equal(journal_commit(j, journal_append(j, buf, n)), 0);
	}
	if (offsets)
		offsets[count] = off;
	journal_close(j);
	assert_int_equal(file_size(dir, NAME ".0.journal"), off);
	return dir;
}

/* ---- CRC ---------------------------------------------------------------- */

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(journal_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(journal_crc32c(journal_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	assert_int_equal(journal_crc32c(0, NULL, 0), 0);
	assert_int_equal(journal_crc32c(0xE3069283u, "", 0), 0xE3069283u);
	/* RFC 3720 B.4: 32 bytes of zeros. */
	uint8_t zeros[32] = { 0 };
	assert_int_equal(journal_crc32c(0, zeros, sizeof(zeros)), 0x8A9136AAu);
}

/* ---- round trip ---------------------------------------------------------- */

static void roundtrip(journal_fsync policy)
{
	char *parent = make_dir();
	char dir[512];
	replay_log *log = log_new();
	journal_report rep;
	journal *j;
	snprintf(dir, sizeof(dir), "%s/a/b", parent); /* exercises mkdir -p */

	assert_int_equal(journal_open(&j, dir, NAME, policy, collect, log, &rep), 0);
	assert_int_equal(rep.journal_records + rep.snapshot_records + rep.truncated_bytes, 0);
	assert_int_equal(journal_size(j), 0);
	append_range(j, 0, 300);
	/* An empty record and one committed with its predecessors. */
	uint64_t s1 = journal_append(j, NULL, 0);
	uint64_t s2 = journal_append(j, (const uint8_t *)"last", 4);
	assert_int_equal(s2, s1 + 1);
	assert_int_equal(journal_commit(j, s2), 0);
	assert_int_equal(journal_commit(j, s1), 0);
	assert_true(journal_size(j) > 300u * 12);
	journal_close(j);

	struct stat sb;
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);

	assert_int_equal(open_close(dir, policy, log, &rep), 0);
	assert_int_equal(rep.journal_records, 302);
	assert_int_equal(rep.snapshot_records, 0);
	assert_int_equal(rep.truncated_bytes, 0);
	assert_int_equal(rep.generation, 0);
	assert_int_equal(log->count, 302);
	for (int i = 0; i < 300; i++)
		assert_record(log, (size_t)i, i);
	assert_int_equal(log->len[300], 0);
	assert_int_equal(log->len[301], 4);
	assert_memory_equal(log->data[301], "last", 4);
	log_free(log);
	remove_dir(parent);
}

static void test_roundtrip_always(void **state)
{
	(void)state;
	roundtrip(JOURNAL_FSYNC_ALWAYS);
}

static void test_roundtrip_batch(void **state)
{
	(void)state;
	roundtrip(JOURNAL_FSYNC_BATCH);
}

static void test_roundtrip_off(void **state)
{
	(void)state;
	roundtrip(JOURNAL_FSYNC_OFF);
}

static void test_batch_syncs_in_background(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_BATCH, collect, NULL, NULL), 0);
	append_range(j, 0, 10);
	/* Not a timing assertion: only waits (up to 10 s) for the syncer to run. */
	for (int i = 0; i < 1000 && journal_test_sync_count(j) == 0; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	assert_true(journal_test_sync_count(j) > 0);
	journal_close(j);
	remove_dir(dir);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j = (journal *)1;
	assert_int_equal(journal_open(&j, dir, "a/b", JOURNAL_FSYNC_OFF, collect, NULL, NULL),
			 CONCERT_EINVAL);
	assert_null(j);
	assert_int_equal(journal_open(&j, dir, "", JOURNAL_FSYNC_OFF, collect, NULL, NULL),
			 CONCERT_EINVAL);
	assert_int_equal(journal_open(&j, dir, NAME, (journal_fsync)7, collect, NULL, NULL),
			 CONCERT_EINVAL);
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_OFF, collect, NULL, NULL), 0);
	static uint8_t small[1];
	/* The length check comes before the payload is read. */
	assert_int_equal(journal_append(j, small, (16u << 20) + 1), 0);
	assert_int_equal(concert_error_last()->code, CONCERT_EINVAL);
	assert_int_equal(journal_commit(j, 99), CONCERT_EINVAL);
	journal_close(j);
	journal_close(NULL);
	remove_dir(dir);
}

static void test_apply_error_aborts_open(void **state)
{
	(void)state;
	char *dir = journal_with(5, NULL);
	replay_log *log = log_new();
	log->fail_at = 3;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_OFF, log, NULL), CONCERT_ENOMEM);
	log_free(log);
	remove_dir(dir);
}

/* ---- torn tails ---------------------------------------------------------- */

/*
 * Damages a 5-record journal with `damage`, expects the reopen to replay
 * `kept` records and cut `cut` bytes, then checks a later append survives.
 */
static void torn_case(void (*damage)(const char *dir, const long *off), int kept, long cut_from_end)
{
	long off[6];
	char *dir = journal_with(5, off);
	replay_log *log = log_new();
	journal_report rep;
	journal *j;
	damage(dir, off);
	long damaged_size = file_size(dir, NAME ".0.journal");
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, log, &rep), 0);
	assert_int_equal(rep.journal_records, kept);
	assert_int_equal(rep.truncated_bytes, damaged_size - off[kept]);
	if (cut_from_end >= 0)
		assert_int_equal(rep.truncated_bytes, cut_from_end);
	assert_int_equal(file_size(dir, NAME ".0.journal"), off[kept]);
	assert_int_equal(journal_size(j), off[kept]);
	for (int i = 0; i < kept; i++)
		assert_record(log, (size_t)i, i);
	append_range(j, 100, 101);
	journal_close(j);

	log_reset(log);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.truncated_bytes, 0);
	assert_int_equal(rep.journal_records, kept + 1);
	assert_record(log, (size_t)kept, 100);
	log_free(log);
	remove_dir(dir);
}

static void cut_mid_header(const char *dir, const long *off)
{
	truncate_file(dir, NAME ".0.journal", off[4] + 5);
}

static void cut_mid_payload(const char *dir, const long *off)
{
	truncate_file(dir, NAME ".0.journal", off[4] + 14);
}

static void cut_after_header(const char *dir, const long *off)
{
	truncate_file(dir, NAME ".0.journal", off[4] + 12);
}

static void zero_tail(const char *dir, const long *off)
{
	(void)off;
	append_file(dir, NAME ".0.journal", 0, 100);
}

static void short_garbage_tail(const char *dir, const long *off)
{
	(void)off;
	append_file(dir, NAME ".0.journal", 0xA5, 11);
}

static void garbage_last_payload(const char *dir, const long *off)
{
	patch_file(dir, NAME ".0.journal", off[4] + 13, 0x40);
}

static void zeroed_last_payload_and_tail(const char *dir, const long *off)
{
	/* The file size grew but the last frame's data never reached the disk. */
	long size;
	uint8_t *buf = read_all(dir, NAME ".0.journal", &size);
	memset(buf + off[4] + 12, 0, (size_t)(off[5] - off[4] - 12));
	write_all_file(dir, NAME ".0.journal", buf, size);
	free(buf);
	append_file(dir, NAME ".0.journal", 0, 4096);
}

static void zeroed_last_two_frames(const char *dir, const long *off)
{
	truncate_file(dir, NAME ".0.journal", off[3]);
	truncate_file(dir, NAME ".0.journal", off[5]);
}

static void test_torn_mid_header(void **state)
{
	(void)state;
	torn_case(cut_mid_header, 4, 5);
}

static void test_torn_mid_payload(void **state)
{
	(void)state;
	torn_case(cut_mid_payload, 4, 14);
}

static void test_torn_after_header(void **state)
{
	(void)state;
	torn_case(cut_after_header, 4, 12);
}

static void test_torn_zero_tail(void **state)
{
	(void)state;
	torn_case(zero_tail, 5, 100);
}

static void test_torn_short_garbage(void **state)
{
	(void)state;
	torn_case(short_garbage_tail, 5, 11);
}

static void test_torn_garbage_last_frame(void **state)
{
	(void)state;
	torn_case(garbage_last_payload, 4, -1);
}

static void test_torn_zeroed_frame_and_tail(void **state)
{
	(void)state;
	torn_case(zeroed_last_payload_and_tail, 4, -1);
}

static void test_torn_zeroed_frames(void **state)
{
	(void)state;
	torn_case(zeroed_last_two_frames, 3, -1);
}

/* ---- corruption ---------------------------------------------------------- */

static void corrupt_case(long (*where)(const long *off), uint8_t mask, long extra_garbage)
{
	long off[6], before_size, after_size;
	char *dir = journal_with(5, off);
	replay_log *log = log_new();
	journal *j = (journal *)1;
	patch_file(dir, NAME ".0.journal", where(off), mask);
	if (extra_garbage)
		append_file(dir, NAME ".0.journal", 0x5A, extra_garbage);
	uint8_t *before = read_all(dir, NAME ".0.journal", &before_size);

	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, log, NULL),
			 CONCERT_ECORRUPT);
	assert_null(j);
	const concert_error *e = concert_error_last();
	assert_int_equal(e->code, CONCERT_ECORRUPT);
	assert_non_null(strstr(e->message, NAME ".0.journal"));
	assert_non_null(strstr(e->message, "offset"));

	uint8_t *after = read_all(dir, NAME ".0.journal", &after_size);
	assert_int_equal(after_size, before_size);
	assert_memory_equal(after, before, (size_t)before_size);
	free(before);
	free(after);
	log_free(log);
	remove_dir(dir);
}

static long middle_payload(const long *off)
{
	return off[2] + 14;
}

static long middle_length(const long *off)
{
	return off[2];
}

static long middle_header_crc(const long *off)
{
	return off[2] + 9;
}

static long last_header(const long *off)
{
	return off[4] + 1;
}

static void test_corrupt_middle_payload(void **state)
{
	(void)state;
	corrupt_case(middle_payload, 0x01, 0);
}

static void test_corrupt_middle_header(void **state)
{
	(void)state;
	corrupt_case(middle_length, 0x10, 0);
	corrupt_case(middle_header_crc, 0x80, 0);
}

static void test_corrupt_last_header_with_garbage(void **state)
{
	(void)state;
	corrupt_case(last_header, 0x02, 20);
}

/* ---- compaction ---------------------------------------------------------- */

typedef struct emit_state {
	int from, to; /* emits records from..to-1 */
	int fail;
} emit_state;

static int emit_range(void *ctx, journal_snapshot *snap)
{
	emit_state *st = ctx;
	uint8_t buf[128];
	for (int i = st->from; i < st->to; i++) {
		int rc = journal_snapshot_put(snap, buf, make_record(buf, i));
		if (rc)
			return rc;
	}
	return st->fail;
}

/* Generation 1: snapshot of records 0..9, journal of 10..12. */
static char *compacted_dir(void)
{
	char *dir = make_dir();
	journal *j;
	emit_state st = { 0, 10, 0 };
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	append_range(j, 0, 8);
	/* Appended, not committed: compaction must flush them first. */
	uint8_t buf[128];
	assert_true(journal_append(j, buf, make_record(buf, 8)) > 0);
	uint64_t seq = journal_append(j, buf, make_record(buf, 9));
	uint64_t syncs = journal_test_sync_count(j);
	assert_int_equal(journal_compact(j, emit_range, &st), 0);
	/* Durable through the snapshot: no further fdatasync needed. */
	assert_int_equal(journal_commit(j, seq), 0);
	assert_int_equal(journal_test_sync_count(j), syncs);
	assert_int_equal(journal_size(j), 0);
	append_range(j, 10, 13);
	journal_close(j);
	return dir;
}

static void assert_gen1(const char *dir)
{
	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.generation, 1);
	assert_int_equal(rep.snapshot_records, 10);
	assert_int_equal(rep.journal_records, 3);
	assert_int_equal(log->count, 13);
	for (int i = 0; i < 13; i++)
		assert_record(log, (size_t)i, i);
	log_free(log);
}

static void test_compact(void **state)
{
	(void)state;
	char *dir = compacted_dir();
	assert_true(file_exists(dir, NAME ".1.snapshot"));
	assert_true(file_exists(dir, NAME ".1.journal"));
	assert_false(file_exists(dir, NAME ".0.journal"));
	assert_false(file_exists(dir, NAME ".1.snapshot.tmp"));
	assert_gen1(dir);

	/* A second compaction from a reopened journal removes generation 1. */
	journal *j;
	emit_state st = { 0, 13, 0 };
	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_BATCH, collect, log, NULL), 0);
	assert_int_equal(journal_compact(j, emit_range, &st), 0);
	journal_close(j);
	assert_false(file_exists(dir, NAME ".1.snapshot"));
	assert_false(file_exists(dir, NAME ".1.journal"));
	log_reset(log);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_OFF, log, &rep), 0);
	assert_int_equal(rep.generation, 2);
	assert_int_equal(rep.snapshot_records, 13);
	assert_int_equal(rep.journal_records, 0);
	log_free(log);
	remove_dir(dir);
}

static void test_compact_emit_failure_keeps_generation(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	emit_state st = { 0, 3, CONCERT_ENOMEM };
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	append_range(j, 0, 3);
	assert_int_equal(journal_compact(j, emit_range, &st), CONCERT_ENOMEM);
	assert_false(file_exists(dir, NAME ".1.snapshot.tmp"));
	assert_false(file_exists(dir, NAME ".1.snapshot"));
	append_range(j, 3, 5);
	journal_close(j);

	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.generation, 0);
	assert_int_equal(rep.journal_records, 5);
	log_free(log);
	remove_dir(dir);
}

/*
 * Ignores put's error, as a careless emitter would, and lifts the file size
 * limit again so that only the failed put can tell.
 */
static int emit_big_ignoring_errors(void *ctx, journal_snapshot *snap)
{
	static uint8_t big[65536];
	assert_int_equal(journal_snapshot_put(snap, big, sizeof(big)), CONCERT_EIO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, ctx), 0);
	return 0;
}

static void test_compact_write_failure_keeps_generation(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	struct rlimit old, lim;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	append_range(j, 0, 3);
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 16384;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = journal_compact(j, emit_big_ignoring_errors, &old);
	signal(SIGXFSZ, old_handler);
	assert_int_equal(rc, CONCERT_EIO);
	assert_false(file_exists(dir, NAME ".1.snapshot.tmp"));
	assert_false(file_exists(dir, NAME ".1.snapshot"));
	append_range(j, 3, 5);
	journal_close(j);

	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.generation, 0);
	assert_int_equal(rep.journal_records, 5);
	log_free(log);
	remove_dir(dir);
}

static void test_compact_crash_leftovers(void **state)
{
	(void)state;
	char *dir = compacted_dir();
	/* Crash mid-compaction to generation 2, and before generation 0 was removed. */
	write_all_file(dir, NAME ".2.snapshot.tmp", "partial", 7);
	write_all_file(dir, NAME ".0.journal", "stale data that is not even framed", 34);
	write_all_file(dir, "other.0.journal", "not ours", 8);
	assert_gen1(dir);
	assert_false(file_exists(dir, NAME ".2.snapshot.tmp"));
	assert_false(file_exists(dir, NAME ".0.journal"));
	assert_true(file_exists(dir, "other.0.journal"));
	remove_dir(dir);
}

static void test_compact_crash_before_new_journal(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	emit_state st = { 0, 4, 0 };
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	append_range(j, 0, 4);
	long size;
	uint8_t *old = read_all(dir, NAME ".0.journal", &size);
	assert_int_equal(journal_compact(j, emit_range, &st), 0);
	journal_close(j);
	/* As if the crash came after the snapshot rename, before journal 1. */
	char path[512];
	path_of(path, dir, NAME ".1.journal");
	assert_int_equal(unlink(path), 0);
	write_all_file(dir, NAME ".0.journal", old, size);
	free(old);

	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.generation, 1);
	assert_int_equal(rep.snapshot_records, 4);
	assert_int_equal(rep.journal_records, 0);
	assert_true(file_exists(dir, NAME ".1.journal"));
	assert_false(file_exists(dir, NAME ".0.journal"));
	log_free(log);
	remove_dir(dir);
}

static void test_snapshot_damage_is_corrupt(void **state)
{
	(void)state;
	char *dir = compacted_dir();
	long size;
	uint8_t *snap = read_all(dir, NAME ".1.snapshot", &size);

	/* Cut at a frame boundary: only the missing trailer tells. */
	truncate_file(dir, NAME ".1.snapshot", size - 29);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);
	assert_non_null(strstr(concert_error_last()->message, "trailer"));
	truncate_file(dir, NAME ".1.snapshot", size - 40);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);

	write_all_file(dir, NAME ".1.snapshot", snap, size);
	patch_file(dir, NAME ".1.snapshot", 20, 0x04);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);

	/* Anything after the trailer, or a record missing before it. */
	write_all_file(dir, NAME ".1.snapshot", snap, size);
	append_file(dir, NAME ".1.snapshot", 0, 1);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);
	long first = 12 + 1 + 5; /* record 0 is "rec-0" */
	write_all_file(dir, NAME ".1.snapshot", snap + first, size - first);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);
	assert_non_null(strstr(concert_error_last()->message, "trailer"));

	/* A snapshot renamed to another generation does not pass either. */
	write_all_file(dir, NAME ".1.snapshot", snap, size);
	write_all_file(dir, NAME ".2.snapshot", snap, size);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);
	char path[512];
	path_of(path, dir, NAME ".2.snapshot");
	unlink(path);

	/* Nothing was removed by the failed opens. */
	assert_true(file_exists(dir, NAME ".1.journal"));
	assert_gen1(dir);
	free(snap);
	remove_dir(dir);
}

static void test_journal_without_snapshot_is_corrupt(void **state)
{
	(void)state;
	char *dir = compacted_dir();
	write_all_file(dir, NAME ".2.journal", "", 0);
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, NULL, NULL), CONCERT_ECORRUPT);
	assert_true(file_exists(dir, NAME ".1.snapshot"));
	remove_dir(dir);
}

/* ---- locking ------------------------------------------------------------- */

static void test_second_opener_unavailable(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *a, *b = (journal *)1;
	assert_int_equal(journal_open(&a, dir, NAME, JOURNAL_FSYNC_OFF, collect, NULL, NULL), 0);
	/* flock belongs to the open file description, so this conflicts even
	 * within one process. */
	assert_int_equal(journal_open(&b, dir, NAME, JOURNAL_FSYNC_OFF, collect, NULL, NULL),
			 CONCERT_EUNAVAILABLE);
	assert_null(b);
	assert_non_null(strstr(concert_error_last()->message, "in use by another process"));
	/* Another name in the same directory is independent. */
	assert_int_equal(journal_open(&b, dir, "u", JOURNAL_FSYNC_OFF, collect, NULL, NULL), 0);
	journal_close(b);
	journal_close(a);
	assert_int_equal(journal_open(&b, dir, NAME, JOURNAL_FSYNC_OFF, collect, NULL, NULL), 0);
	journal_close(b);
	remove_dir(dir);
}

/* ---- I/O failure ----------------------------------------------------------- */

static void test_write_failure_fails_journal(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	struct rlimit old, lim;
	uint8_t big[8192] = { 0 };
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	append_range(j, 0, 2);
	/* A file size limit makes the next write fail with EFBIG. */
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint64_t seq = journal_append(j, big, sizeof(big));
	assert_true(seq > 0);
	int rc = journal_commit(j, seq);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	assert_int_equal(rc, CONCERT_EIO);
	assert_int_equal(journal_append(j, big, 1), 0);
	assert_int_equal(journal_commit(j, seq), CONCERT_EIO);
	assert_int_equal(journal_compact(j, emit_range, &(emit_state){ 0, 1, 0 }), CONCERT_EIO);
	journal_close(j);

	/* The partial frame is a torn tail; the acknowledged records remain. */
	replay_log *log = log_new();
	journal_report rep;
	assert_int_equal(open_close(dir, JOURNAL_FSYNC_ALWAYS, log, &rep), 0);
	assert_int_equal(rep.journal_records, 2);
	log_free(log);
	remove_dir(dir);
}

/* ---- group commit ---------------------------------------------------------- */

#define THREADS 16
#define PER_THREAD 200

typedef struct worker {
	journal *j;
	int id;
	int failures;
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	uint8_t rec[8];
	for (int i = 0; i < PER_THREAD; i++) {
		rec[0] = (uint8_t)w->id;
		memcpy(rec + 1, &i, sizeof(i));
		uint64_t seq = journal_append(w->j, rec, 5);
		if (!seq || journal_commit(w->j, seq))
			w->failures++;
	}
	return NULL;
}

/* THREADS workers running fn on j, started together and joined. */
static void run_workers(journal *j, worker *workers, void *(*fn)(void *))
{
	pthread_t threads[THREADS];
	for (int t = 0; t < THREADS; t++) {
		workers[t] = (worker){ j, t, 0 };
		assert_int_equal(pthread_create(&threads[t], NULL, fn, &workers[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(threads[t], NULL), 0);
}

static void test_group_commit_one_sync_for_many(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	uint8_t buf[128];
	uint64_t seq = 0;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	for (int i = 0; i < 100; i++)
		seq = journal_append(j, buf, make_record(buf, i));
	assert_int_equal(journal_test_sync_count(j), 0);
	assert_int_equal(journal_commit(j, seq), 0);
	assert_int_equal(journal_test_sync_count(j), 1);
	assert_int_equal(journal_commit(j, 1), 0); /* already durable */
	assert_int_equal(journal_test_sync_count(j), 1);
	journal_close(j);
	remove_dir(dir);
}

static void group_commit_threads(journal_fsync policy)
{
	char *dir = make_dir();
	journal *j;
	worker workers[THREADS];
	assert_int_equal(journal_open(&j, dir, NAME, policy, collect, NULL, NULL), 0);
	run_workers(j, workers, work);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(workers[t].failures, 0);
	uint64_t syncs = journal_test_sync_count(j);
	if (policy == JOURNAL_FSYNC_ALWAYS) {
		print_message("group commit: %d records, %llu fdatasyncs\n", THREADS * PER_THREAD,
			      (unsigned long long)syncs);
		assert_true(syncs >= 1 && syncs <= (uint64_t)THREADS * PER_THREAD);
	}
	journal_close(j);

	replay_log *log = log_new();
	journal_report rep;
	int next[THREADS] = { 0 };
	assert_int_equal(open_close(dir, policy, log, &rep), 0);
	assert_int_equal(rep.journal_records, THREADS * PER_THREAD);
	for (size_t k = 0; k < log->count; k++) {
		int i;
		assert_int_equal(log->len[k], 5);
		assert_true(log->data[k][0] < THREADS);
		memcpy(&i, log->data[k] + 1, sizeof(i));
		assert_int_equal(i, next[log->data[k][0]]++); /* each thread's order kept */
	}
	log_free(log);
	remove_dir(dir);
}

static void test_group_commit_threads(void **state)
{
	(void)state;
	group_commit_threads(JOURNAL_FSYNC_ALWAYS);
}

/* Without fsync, committers still queue behind the thread that writes. */
static void test_group_commit_threads_off(void **state)
{
	(void)state;
	group_commit_threads(JOURNAL_FSYNC_OFF);
}

static void *work_until_failure(void *arg)
{
	worker *w = arg;
	uint8_t rec[1024] = { 0 };
	for (;;) {
		uint64_t seq = journal_append(w->j, rec, sizeof(rec));
		if (!seq || journal_commit(w->j, seq)) {
			w->failures++;
			return NULL;
		}
	}
}

/* A failed flush reaches every committer queued behind it: none hangs. */
static void test_group_commit_failure_reaches_all(void **state)
{
	(void)state;
	char *dir = make_dir();
	journal *j;
	worker workers[THREADS];
	struct rlimit old, lim;
	assert_int_equal(journal_open(&j, dir, NAME, JOURNAL_FSYNC_ALWAYS, collect, NULL, NULL), 0);
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 << 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	run_workers(j, workers, work_until_failure);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(workers[t].failures, 1);
	journal_close(j);
	remove_dir(dir);
}

/*
 * Commits racing a compactor, the way the memory backend uses the journal:
 * append and state change under the engine lock, commit outside it, and
 * compaction with the engine lock held.
 */
typedef struct engine {
	journal *j;
	pthread_mutex_t lock;
	uint8_t records[THREADS * PER_THREAD][5];
	size_t count;
	int compactions_left;
	int failures;
} engine;

typedef struct engine_worker {
	engine *e;
	int id;
} engine_worker;

static int emit_engine(void *ctx, journal_snapshot *snap)
{
	engine *e = ctx;
	for (size_t k = 0; k < e->count; k++)
		if (journal_snapshot_put(snap, e->records[k], 5))
			return CONCERT_EIO;
	return 0;
}

static void *engine_work(void *arg)
{
	engine_worker *w = arg;
	engine *e = w->e;
	for (int i = 0; i < PER_THREAD; i++) {
		pthread_mutex_lock(&e->lock);
		uint8_t *rec = e->records[e->count++];
		rec[0] = (uint8_t)w->id;
		memcpy(rec + 1, &i, sizeof(i));
		uint64_t seq = journal_append(e->j, rec, 5);
		if (w->id == 0 && i % 40 == 39 && e->compactions_left-- > 0 &&
		    journal_compact(e->j, emit_engine, e))
			e->failures++;
		pthread_mutex_unlock(&e->lock);
		if (!seq || journal_commit(e->j, seq)) {
			pthread_mutex_lock(&e->lock);
			e->failures++;
			pthread_mutex_unlock(&e->lock);
		}
	}
	return NULL;
}

static void commits_racing_compaction(journal_fsync policy)
{
	char *dir = make_dir();
	engine *e = calloc(1, sizeof(*e));
	pthread_t threads[THREADS];
	engine_worker workers[THREADS];
	assert_non_null(e);
	pthread_mutex_init(&e->lock, NULL);
	e->compactions_left = 4;
	assert_int_equal(journal_open(&e->j, dir, NAME, policy, collect, NULL, NULL), 0);
	for (int t = 0; t < THREADS; t++) {
		workers[t] = (engine_worker){ e, t };
		assert_int_equal(pthread_create(&threads[t], NULL, engine_work, &workers[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(threads[t], NULL), 0);
	assert_int_equal(e->failures, 0);
	journal_close(e->j);

	replay_log *log = log_new();
	journal_report rep;
	static uint8_t seen[THREADS][PER_THREAD];
	memset(seen, 0, sizeof(seen));
	assert_int_equal(open_close(dir, policy, log, &rep), 0);
	assert_int_equal(rep.generation, 4);
	assert_int_equal(rep.snapshot_records + rep.journal_records, THREADS * PER_THREAD);
	for (size_t k = 0; k < log->count; k++) {
		int i;
		memcpy(&i, log->data[k] + 1, sizeof(i));
		assert_true(log->data[k][0] < THREADS && i >= 0 && i < PER_THREAD);
		assert_int_equal(seen[log->data[k][0]][i]++, 0);
	}
	log_free(log);
	pthread_mutex_destroy(&e->lock);
	free(e);
	remove_dir(dir);
}

static void test_commits_racing_compaction_always(void **state)
{
	(void)state;
	commits_racing_compaction(JOURNAL_FSYNC_ALWAYS);
}

static void test_commits_racing_compaction_batch(void **state)
{
	(void)state;
	commits_racing_compaction(JOURNAL_FSYNC_BATCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_roundtrip_always),
		cmocka_unit_test(test_roundtrip_batch),
		cmocka_unit_test(test_roundtrip_off),
		cmocka_unit_test(test_batch_syncs_in_background),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_apply_error_aborts_open),
		cmocka_unit_test(test_torn_mid_header),
		cmocka_unit_test(test_torn_mid_payload),
		cmocka_unit_test(test_torn_after_header),
		cmocka_unit_test(test_torn_zero_tail),
		cmocka_unit_test(test_torn_short_garbage),
		cmocka_unit_test(test_torn_garbage_last_frame),
		cmocka_unit_test(test_torn_zeroed_frame_and_tail),
		cmocka_unit_test(test_torn_zeroed_frames),
		cmocka_unit_test(test_corrupt_middle_payload),
		cmocka_unit_test(test_corrupt_middle_header),
		cmocka_unit_test(test_corrupt_last_header_with_garbage),
		cmocka_unit_test(test_compact),
		cmocka_unit_test(test_compact_emit_failure_keeps_generation),
		cmocka_unit_test(test_compact_write_failure_keeps_generation),
		cmocka_unit_test(test_compact_crash_leftovers),
		cmocka_unit_test(test_compact_crash_before_new_journal),
		cmocka_unit_test(test_snapshot_damage_is_corrupt),
		cmocka_unit_test(test_journal_without_snapshot_is_corrupt),
		cmocka_unit_test(test_second_opener_unavailable),
		cmocka_unit_test(test_write_failure_fails_journal),
		cmocka_unit_test(test_group_commit_one_sync_for_many),
		cmocka_unit_test(test_group_commit_threads),
		cmocka_unit_test(test_group_commit_threads_off),
		cmocka_unit_test(test_group_commit_failure_reaches_all),
		cmocka_unit_test(test_commits_racing_compaction_always),
		cmocka_unit_test(test_commits_racing_compaction_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
