/*
 * The append-only journal: framing, replay, group commit and compaction.
 * The contract is in journal.h; this comment records the choices made.
 *
 * Snapshot records carry one kind byte before the caller's payload ('R' for
 * a record, 'T' for the trailer), so the trailer can never be mistaken for a
 * record. The trailer holds the record count and the generation, so a cut
 * or misnamed snapshot is detected.
 *
 * Locking: `mu` guards the fields below it. One thread at a time (a commit
 * leader or compaction, flagged by `writing`) writes the file; the BATCH
 * syncer only fdatasyncs, which is safe beside a concurrent write.
 *
 * Committers that find a writer at work sleep on a futex word the writer
 * bumps when it is done; one FUTEX_WAKE wakes them all, and those its flush
 * made durable return without taking `mu` again (the durable point is
 * published in an atomic). A condition variable would make each of them
 * retake `mu` just to find itself done, and one wake per waiter (a
 * semaphore each) costs the writer a system call per committer: on two
 * cores those hand-offs, not the disk, bounded group commit.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "codec/journal.h"
#include "core/futex.h"
#include "core/internal.h"

#define RECORD_MAX (16u << 20)
#define HEADER_SIZE 12
#define TRAILER_SIZE 16          /* after the kind byte: u64 records, u64 generation */
#define SPARE_KEEP_MAX (4u << 20) /* a leader's buffer larger than this is freed */
#define BATCH_INTERVAL_NS 5000000L
#define GATHER_IDLE_NS 20000LL   /* a leader stops gathering after this long without a record */
#define SPIN_NS 20000LL          /* fsync=off/batch: a committer waits this long awake */
#define FILE_NAME_MAX 256
#define NAME_MAX_LEN 200

enum { KIND_RECORD = 'R', KIND_TRAILER = 'T' };

typedef struct frame_buffer {
	uint8_t *data;
	size_t len, cap;
} frame_buffer;

struct journal {
	char *dir, *name;
	int dir_fd, lock_fd;
	journal_fsync policy;
	pthread_t syncer;
	bool has_syncer;
	atomic_uint_fast64_t sync_count; /* for tests: fdatasyncs of journal files */

	pthread_mutex_t mu;
	pthread_cond_t done;   /* the writer or the syncer finished; compaction and close wait */
	pthread_cond_t wake;   /* wakes the BATCH syncer */
	pthread_cond_t grown;  /* a record was appended while a leader gathers */
	int fd;                /* current journal; replaced only by compaction */
	uint64_t generation;
	frame_buffer pending;  /* appended, not yet written */
	frame_buffer spare;    /* the leader's buffer while it writes */
	uint64_t appended_seq, written_seq, synced_seq;
	uint64_t last_batch, prev_batch; /* records the last two synced flushes carried */
	int64_t last_sync_ns;  /* how long the last fdatasync took */
	uint64_t file_size;
	_Atomic uint32_t wake_gen;          /* bumped when a writer is done; committers sleep on it */
	atomic_uint_fast32_t sleepers;      /* committers asleep on wake_gen */
	atomic_uint_fast64_t durable_pub;   /* durable_seq() as of the last writer, 0 after a failure */
	bool writing, compacting, syncing, gathering, failed, stop;
};

/*
 * Records inside an fdatasync right now, over every journal of the process.
 * A payment commits the store's journal and then the queue's: its threads
 * move from one journal's sync to the other's, and a leader that sees
 * records in another journal's sync knows committers are on their way.
 */
static atomic_uint_fast64_t records_syncing;

/*
 * Threads inside a commit under ALWAYS right now, over every journal of
 * the process, and the most there have been at once. A batch gathers no
 * more committers than that, so a leader that has them all stops waiting
 * instead of idling out. The peak never falls: after a burst of threads,
 * leaders idle out as they would without it.
 */
static atomic_uint_fast64_t committers, committers_peak;

struct journal_snapshot {
	FILE *f;
	uint64_t records;
	bool failed;
};

typedef enum frame_status { FRAME_OK, FRAME_END, FRAME_TORN } frame_status;

typedef struct reader {
	const journal *j;
	const char *file;
	FILE *f;
	uint64_t size, off;
	uint8_t *buf;
	size_t cap;
} reader;

enum file_kind { FILE_OTHER, FILE_SNAPSHOT, FILE_JOURNAL, FILE_TMP };

/* Test hook, deliberately not in the header. */
uint64_t journal_test_sync_count(journal *j);

uint32_t journal_crc32c(uint32_t crc, const void *data, size_t len)
{
	/* ISA-L neither inverts the seed nor the result; standard CRC32C does
	 * both, which is also what makes continuing from `crc` work. */
	unsigned int raw = ~crc;
	unsigned char *p = (unsigned char *)data;
	while (len) {
		int n = len > INT_MAX ? INT_MAX : (int)len;
		raw = crc32_iscsi(p, n, raw);
		p += n;
		len -= (size_t)n;
	}
	return ~raw;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void frame_header(uint8_t *h, uint32_t len, uint32_t payload_crc)
{
	put_le32(h, len);
	put_le32(h + 4, payload_crc);
	put_le32(h + 8, journal_crc32c(0, h, 8));
}

static int io_error(const journal *j, const char *what, const char *file)
{
	return concert_sys_errorf(CONCERT_EIO, "journal %s/%s: %s: %s", j->dir, file, what,
				  strerror(errno));
}

static int failed_error(void)
{
	return concert_sys_error(CONCERT_EIO, "journal failed after an I/O error; reopen it");
}

static void file_name(char *out, const journal *j, uint64_t gen, const char *suffix)
{
	snprintf(out, FILE_NAME_MAX, "%s.%" PRIu64 ".%s", j->name, gen, suffix);
}

static int fsync_dir(journal *j)
{
	return fsync(j->dir_fd) ? io_error(j, "fsync", ".") : 0;
}

static int sync_file(journal *j, int fd)
{
	if (fdatasync(fd))
		return io_error(j, "fdatasync", j->name);
	atomic_fetch_add_explicit(&j->sync_count, 1, memory_order_relaxed);
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n ? errno : EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int mkdir_p(const char *dir)
{
	char *path = strdup(dir);
	int rc = path ? 0 : concert_sys_error(CONCERT_ENOMEM, NULL);
	for (char *p = path; !rc; p++) {
		if (p == path || (*p && *p != '/'))
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			rc = concert_sys_errorf(CONCERT_EIO, "journal: mkdir %s: %s", path,
						strerror(errno));
		if (!c)
			break;
		*p = c;
	}
	free(path);
	return rc;
}

/* ---- replay ------------------------------------------------------------ */

static int corrupt(const reader *r, uint64_t off, const char *why)
{
	return concert_sys_errorf(CONCERT_ECORRUPT, "journal %s/%s: %s at offset %" PRIu64,
				  r->j->dir, r->file, why, off);
}

static int read_exact(reader *r, void *buf, size_t n)
{
	if (n && fread(buf, 1, n, r->f) != n) {
		errno = ferror(r->f) ? errno : EIO; /* EOF: the file shrank under our lock */
		return io_error(r->j, "read", r->file);
	}
	return 0;
}

/* Whether every byte from the current position to EOF is zero. */
static int rest_is_zero(reader *r, bool *zero)
{
	uint8_t chunk[4096];
	size_t n;
	*zero = true;
	while (*zero && (n = fread(chunk, 1, sizeof(chunk), r->f)) > 0)
		for (size_t i = 0; i < n && *zero; i++)
			*zero = chunk[i] == 0;
	return ferror(r->f) ? io_error(r->j, "read", r->file) : 0;
}

/*
 * Reads the frame at r->off. FRAME_TORN leaves r->off at its start. A bad
 * checksum is torn only when nothing but zeros follows it: a later frame
 * would mean the damage is in the middle, and data is never skipped.
 */
static int next_frame(reader *r, uint32_t max, uint32_t *out_len, frame_status *st)
{
	static const uint8_t zeros[HEADER_SIZE];
	uint64_t left = r->size - r->off;
	uint8_t h[HEADER_SIZE];
	bool zero = false;
	int rc;
	*st = left ? FRAME_TORN : FRAME_END;
	if (left < HEADER_SIZE || (rc = read_exact(r, h, HEADER_SIZE)))
		return left < HEADER_SIZE ? 0 : rc;
	if (get_le32(h + 8) != journal_crc32c(0, h, 8)) {
		if (!memcmp(h, zeros, HEADER_SIZE) && (rc = rest_is_zero(r, &zero)))
			return rc;
		return zero ? 0 : corrupt(r, r->off, "bad header checksum");
	}
	uint32_t len = get_le32(h);
	if (len > max)
		return corrupt(r, r->off, "record length over the limit");
	if (len > left - HEADER_SIZE)
		return 0;
	if (len > r->cap) {
		uint8_t *buf = realloc(r->buf, len);
		if (!buf)
			return concert_sys_error(CONCERT_ENOMEM, NULL);
		r->buf = buf;
		r->cap = len;
	}
	if ((rc = read_exact(r, r->buf, len)))
		return rc;
	if (get_le32(h + 4) != journal_crc32c(0, r->buf, len)) {
		if ((rc = rest_is_zero(r, &zero)))
			return rc;
		return zero ? 0 : corrupt(r, r->off, "bad record checksum");
	}
	r->off += HEADER_SIZE + (uint64_t)len;
	*out_len = len;
	*st = FRAME_OK;
	return 0;
}

/* Takes ownership of fd. */
static int reader_open(reader *r, const journal *j, const char *file, int fd)
{
	struct stat sb;
	memset(r, 0, sizeof(*r));
	r->j = j;
	r->file = file;
	if (fd < 0 || fstat(fd, &sb) || !(r->f = fdopen(fd, "rb"))) {
		int rc = io_error(j, "open", file);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	r->size = (uint64_t)sb.st_size;
	return 0;
}

static void reader_close(reader *r)
{
	if (r->f)
		fclose(r->f);
	free(r->buf);
}

/* A snapshot record's kind byte: strips it, or checks the trailer. */
static int snapshot_record(reader *r, uint64_t off, const uint64_t *count, const uint8_t **p,
			   uint32_t *len, bool *trailer)
{
	*trailer = *len && **p == KIND_TRAILER;
	if (*trailer && (*len != 1 + TRAILER_SIZE || get_le64(*p + 1) != *count ||
			 get_le64(*p + 9) != r->j->generation || r->off != r->size))
		return corrupt(r, off, "bad snapshot trailer");
	if (!*trailer && (!*len || **p != KIND_RECORD))
		return corrupt(r, off, "unknown snapshot record kind");
	(*p)++;
	(*len)--;
	return 0;
}

/*
 * Replays one file through `apply`. The snapshot was renamed into place
 * whole, so any defect there is damage; a journal's torn tail is cut.
 */
static int replay_file(journal *j, const char *file, int fd, bool snapshot,
		       journal_apply_fn apply, void *ctx, journal_report *rep)
{
	uint64_t *count = snapshot ? &rep->snapshot_records : &rep->journal_records;
	frame_status st = FRAME_END;
	bool trailer = false;
	uint32_t len;
	reader r;
	int rc = reader_open(&r, j, file, fd);
	while (!rc && !trailer) {
		uint64_t off = r.off;
		if ((rc = next_frame(&r, snapshot ? RECORD_MAX + 1 : RECORD_MAX, &len, &st)) ||
		    st != FRAME_OK)
			break;
		const uint8_t *p = r.buf;
		if (snapshot && ((rc = snapshot_record(&r, off, count, &p, &len, &trailer)) || trailer))
			break;
		rc = apply(ctx, p, len);
		rc = rc > 0 ? CONCERT_EINTERNAL : rc;
		*count += !rc;
	}
	if (!rc && snapshot && !trailer) {
		rc = corrupt(&r, r.off, st == FRAME_END ? "snapshot without trailer"
							: "damaged snapshot record");
	} else if (!rc && st == FRAME_TORN) {
		if (ftruncate(j->fd, (off_t)r.off) || fsync(j->fd))
			rc = io_error(j, "truncate torn tail", file);
		rep->truncated_bytes = r.size - r.off;
	}
	if (!snapshot)
		j->file_size = r.off;
	reader_close(&r);
	return rc;
}

/* ---- generations ------------------------------------------------------- */

static enum file_kind parse_file(const journal *j, const char *file, uint64_t *gen)
{
	size_t n = strlen(j->name);
	const char *p = file + n + 1;
	if (strncmp(file, j->name, n) != 0 || file[n] != '.' || *p < '0' || *p > '9')
		return FILE_OTHER;
	for (*gen = 0; *p >= '0' && *p <= '9'; p++) {
		if (*gen > (UINT64_MAX - 9) / 10)
			return FILE_OTHER;
		*gen = *gen * 10 + (uint64_t)(*p - '0');
	}
	if (!strcmp(p, ".snapshot"))
		return FILE_SNAPSHOT;
	if (!strcmp(p, ".snapshot.tmp"))
		return FILE_TMP;
	return strcmp(p, ".journal") ? FILE_OTHER : FILE_JOURNAL;
}

/* Without `cleanup`: picks the generation. With it: removes what is stale. */
static int scan_dir(journal *j, bool cleanup, bool *has_snapshot)
{
	uint64_t max_journal = 0, gen = 0;
	bool any_journal = false, removed = false;
	int fd = dup(j->dir_fd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return io_error(j, "opendir", ".");
	}
	rewinddir(d); /* the dup shares the directory offset */
	if (!cleanup) {
		*has_snapshot = false;
		j->generation = 0;
	}
	for (struct dirent *e; (e = readdir(d));) {
		enum file_kind kind = parse_file(j, e->d_name, &gen);
		if (cleanup) {
			bool stale = kind == FILE_TMP || (kind != FILE_OTHER && gen < j->generation);
			removed |= stale && unlinkat(j->dir_fd, e->d_name, 0) == 0;
		} else if (kind == FILE_SNAPSHOT && (!*has_snapshot || gen > j->generation)) {
			j->generation = gen;
			*has_snapshot = true;
		} else if (kind == FILE_JOURNAL && gen >= max_journal) {
			max_journal = gen;
			any_journal = true;
		}
	}
	closedir(d);
	if (cleanup)
		return removed ? fsync_dir(j) : 0;
	/* Journal G+1 is only created once snapshot G+1 is durable. */
	if (any_journal && max_journal > j->generation)
		return concert_sys_errorf(CONCERT_ECORRUPT, "journal %s/%s.%" PRIu64
					  ".journal has no snapshot", j->dir, j->name, max_journal);
	return 0;
}

static int open_journal_file(journal *j, const char *file, int *out_fd)
{
	bool existed = faccessat(j->dir_fd, file, F_OK, 0) == 0;
	int fd = openat(j->dir_fd, file, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_error(j, "open", file);
	int rc = existed ? 0 : fsync_dir(j);
	if (rc)
		close(fd);
	else
		*out_fd = fd;
	return rc;
}

static int lock_dir(journal *j)
{
	char file[FILE_NAME_MAX];
	snprintf(file, sizeof(file), "%s.lock", j->name);
	j->lock_fd = openat(j->dir_fd, file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0)
		return io_error(j, "open", file);
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK)
		return concert_sys_errorf(CONCERT_EUNAVAILABLE,
					  "journal in use by another process (%s/%s)", j->dir, file);
	return io_error(j, "flock", file);
}

/* ---- commit ------------------------------------------------------------ */

static int64_t monotonic_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Group commit under ALWAYS, called by a leader with mu held and `writing`
 * set. When the last syncs carried the records of several threads, those
 * threads are back at work and about to append again; a leader that synced
 * at once would take only the few that made it, and the rest would wait a
 * whole fdatasync for the next one: with 16 committers on two cores the
 * batches settle into two alternating halves. So, as PostgreSQL's
 * commit_delay does, the leader first waits while its batch still grows:
 * until it holds as many records as the last two syncs did (or as there
 * have ever been committers at once), or no record came for
 * GATHER_IDLE_NS, or, while another journal's sync holds records whose
 * threads come here next, for at most one sync of its own. A lone
 * committer never waits: its last batch was one record.
 */
static void gather(journal *j)
{
	if (j->last_batch < 2)
		return;
	uint64_t peak = atomic_load_explicit(&committers_peak, memory_order_relaxed);
	uint64_t want = j->written_seq + j->last_batch + j->prev_batch;
	if (want > j->written_seq + peak)
		want = j->written_seq + peak;
	uint64_t seen = j->appended_seq;
	int64_t now = monotonic_ns();
	int64_t idle_until = now + GATHER_IDLE_NS;
	int64_t cap = now + (j->last_sync_ns > GATHER_IDLE_NS ? j->last_sync_ns : GATHER_IDLE_NS);
	j->gathering = true;
	while (j->appended_seq < want) {
		if (atomic_load_explicit(&records_syncing, memory_order_relaxed)) {
			/* Committers are blocked in another sync: sleep until one
			 * appends here, or for one sync of our own at most. */
			if (now >= cap)
				break;
			struct timespec ts = { cap / 1000000000LL, cap % 1000000000LL };
			pthread_cond_timedwait(&j->grown, &j->mu, &ts);
		} else {
			/* Committers are on a CPU: let them run. A timed sleep would
			 * oversleep by the timer slack (50 us), longer than they need. */
			if (now >= idle_until || now >= cap)
				break;
			pthread_mutex_unlock(&j->mu);
			sched_yield();
			pthread_mutex_lock(&j->mu);
		}
		now = monotonic_ns();
		if (j->appended_seq != seen) {
			seen = j->appended_seq;
			idle_until = now + GATHER_IDLE_NS;
		}
	}
	j->gathering = false;
}

/* Called with mu held and no writer; writes (and syncs) all appended so far. */
static int lead_flush(journal *j, bool sync)
{
	j->writing = true;
	if (sync)
		gather(j);
	frame_buffer out = j->pending;
	uint64_t upto = j->appended_seq, batch = upto - j->written_seq;
	int fd = j->fd, rc = 0;
	j->pending = j->spare;
	j->spare = out;
	pthread_mutex_unlock(&j->mu);

	int64_t started = monotonic_ns();
	if (write_all(fd, out.data, out.len)) {
		rc = io_error(j, "write", j->name);
	} else if (sync) {
		atomic_fetch_add_explicit(&records_syncing, batch, memory_order_relaxed);
		rc = sync_file(j, fd);
		atomic_fetch_sub_explicit(&records_syncing, batch, memory_order_relaxed);
	}

	pthread_mutex_lock(&j->mu);
	j->writing = false;
	j->failed |= rc != 0;
	if (!rc) {
		if (sync) {
			j->prev_batch = j->last_batch;
			j->last_batch = batch;
			j->last_sync_ns = monotonic_ns() - started;
		}
		j->written_seq = upto;
		j->synced_seq = sync ? upto : j->synced_seq;
		j->file_size += out.len;
	}
	j->spare.len = 0;
	if (j->spare.cap > SPARE_KEEP_MAX) {
		free(j->spare.data);
		j->spare = (frame_buffer){ 0 };
	}
	pthread_cond_broadcast(&j->done);
	pthread_cond_signal(&j->wake);
	return rc;
}

/* Room for `more` bytes; doubling keeps appends amortised O(1). */
static int buffer_reserve(frame_buffer *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	if (b->cap - b->len >= more)
		return 0;
	while (cap - b->len < more)
		cap *= 2;
	uint8_t *data = realloc(b->data, cap);
	if (!data)
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	b->data = data;
	b->cap = cap;
	return 0;
}

uint64_t journal_append(journal *j, const uint8_t *payload, size_t len)
{
	uint8_t h[HEADER_SIZE];
	uint64_t seq = 0;
	if (len > RECORD_MAX) {
		concert_sys_error(CONCERT_EINVAL, "journal record over 16 MiB");
		return 0;
	}
	/* Checksum outside the lock: it is the only per-byte work. */
	frame_header(h, (uint32_t)len, journal_crc32c(0, payload, len));
	pthread_mutex_lock(&j->mu);
	frame_buffer *b = &j->pending;
	if (j->failed) {
		failed_error();
	} else if (!buffer_reserve(b, HEADER_SIZE + len)) {
		memcpy(b->data + b->len, h, HEADER_SIZE);
		if (len)
			memcpy(b->data + b->len + HEADER_SIZE, payload, len);
		b->len += HEADER_SIZE + len;
		seq = ++j->appended_seq;
		if (j->gathering)
			pthread_cond_signal(&j->grown);
	}
	pthread_mutex_unlock(&j->mu);
	return seq;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static uint64_t durable_seq(const journal *j)
{
	return j->policy == JOURNAL_FSYNC_ALWAYS ? j->synced_seq : j->written_seq;
}

/* Called with mu held when a writer is done: publishes the durable point and
 * tells whether committers sleep (wake_committers after unlocking mu). */
static bool writer_done(journal *j)
{
	atomic_store_explicit(&j->durable_pub, j->failed ? 0 : durable_seq(j), memory_order_release);
	atomic_fetch_add_explicit(&j->wake_gen, 1, memory_order_release);
	return atomic_load_explicit(&j->sleepers, memory_order_relaxed) > 0;
}

static void wake_committers(journal *j)
{
	concert_futex_wake_all(&j->wake_gen);
}

/* Called with mu held and a writer at work; returns with mu unlocked, and
 * whether seq is durable (otherwise: look again under mu). */
static bool wait_for_writer(journal *j, uint64_t seq)
{
	uint32_t gen = atomic_load_explicit(&j->wake_gen, memory_order_relaxed);
	atomic_fetch_add_explicit(&j->sleepers, 1, memory_order_relaxed);
	pthread_mutex_unlock(&j->mu);
	/* Without fsync the writer is done within a write() (a few µs): wait for
	 * it awake rather than pay two context switches to sleep. */
	int64_t spin_until = j->policy == JOURNAL_FSYNC_ALWAYS ? 0 : monotonic_ns() + SPIN_NS;
	for (unsigned i = 1; atomic_load_explicit(&j->wake_gen, memory_order_acquire) == gen; i++) {
		if (spin_until && (i % 64 || monotonic_ns() < spin_until))
			cpu_relax();
		else
			concert_futex_wait(&j->wake_gen, gen);
	}
	atomic_fetch_sub_explicit(&j->sleepers, 1, memory_order_relaxed);
	return atomic_load_explicit(&j->durable_pub, memory_order_acquire) >= seq;
}

static void count_committer(void)
{
	uint64_t inside = atomic_fetch_add_explicit(&committers, 1, memory_order_relaxed) + 1;
	uint64_t peak = atomic_load_explicit(&committers_peak, memory_order_relaxed);
	while (inside > peak && !atomic_compare_exchange_weak_explicit(&committers_peak, &peak, inside,
								   memory_order_relaxed,
								   memory_order_relaxed))
		;
}

static int commit(journal *j, uint64_t seq)
{
	bool wake = false;
	int rc = 0;
	pthread_mutex_lock(&j->mu);
	if (seq > j->appended_seq)
		rc = concert_sys_error(CONCERT_EINVAL, "journal_commit: unknown sequence number");
	while (!rc) {
		if (j->failed) {
			rc = failed_error();
		} else if (durable_seq(j) >= seq) {
			break;
		} else if (j->writing) {
			if (wait_for_writer(j, seq))
				return 0;
			pthread_mutex_lock(&j->mu);
		} else {
			/* Takes whatever others appended too. */
			rc = lead_flush(j, j->policy == JOURNAL_FSYNC_ALWAYS);
			wake |= writer_done(j);
		}
	}
	pthread_mutex_unlock(&j->mu);
	if (wake)
		wake_committers(j);
	return rc;
}

int journal_commit(journal *j, uint64_t seq)
{
	if (j->policy != JOURNAL_FSYNC_ALWAYS)
		return commit(j, seq);
	count_committer();
	int rc = commit(j, seq);
	atomic_fetch_sub_explicit(&committers, 1, memory_order_relaxed);
	return rc;
}

static void *batch_syncer(void *arg)
{
	journal *j = arg;
	struct timespec until;
	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		if (j->failed || j->compacting || j->synced_seq >= j->written_seq) {
			pthread_cond_wait(&j->wake, &j->mu);
			continue;
		}
		uint64_t target = j->written_seq;
		int fd = j->fd;
		j->syncing = true;
		pthread_mutex_unlock(&j->mu);
		int rc = sync_file(j, fd);
		pthread_mutex_lock(&j->mu);
		j->syncing = false;
		j->failed |= rc != 0;
		if (!rc && target > j->synced_seq)
			j->synced_seq = target;
		pthread_cond_broadcast(&j->done);
		/* Pace the syncs so that one covers a batch of commits. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (until.tv_nsec + BATCH_INTERVAL_NS) / 1000000000L;
		until.tv_nsec = (until.tv_nsec + BATCH_INTERVAL_NS) % 1000000000L;
		while (!j->stop && pthread_cond_timedwait(&j->wake, &j->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* ---- open / close ------------------------------------------------------ */

static void journal_free(journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd); /* also releases the flock */
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	pthread_cond_destroy(&j->done);
	pthread_cond_destroy(&j->wake);
	pthread_cond_destroy(&j->grown);
	pthread_mutex_destroy(&j->mu);
	free(j->pending.data);
	free(j->spare.data);
	free(j->dir);
	free(j);
}

static journal *journal_alloc(const char *dir, const char *name, journal_fsync policy)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	journal *j = calloc(1, sizeof(*j));
	pthread_condattr_t attr;
	if (!j || !(j->dir = malloc(dlen + nlen + 2))) {
		free(j);
		return NULL;
	}
	memcpy(j->dir, dir, dlen + 1);
	j->name = j->dir + dlen + 1;
	memcpy(j->name, name, nlen + 1);
	j->dir_fd = j->lock_fd = j->fd = -1;
	j->policy = policy;
	/* These cannot fail on Linux: they allocate nothing. The BATCH pacing
	 * uses the monotonic clock so that it does not jump with the wall clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->wake, &attr);
	pthread_cond_init(&j->grown, &attr);
	pthread_cond_init(&j->done, NULL);
	pthread_condattr_destroy(&attr);
	return j;
}

static int open_files(journal *j, journal_apply_fn apply, void *ctx, journal_report *rep)
{
	char file[FILE_NAME_MAX];
	bool has_snapshot = false;
	int rc;
	if ((rc = mkdir_p(j->dir)))
		return rc;
	j->dir_fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dir_fd < 0)
		return concert_sys_errorf(CONCERT_EIO, "journal: open %s: %s", j->dir,
					  strerror(errno));
	if ((rc = lock_dir(j)) || (rc = scan_dir(j, false, &has_snapshot)))
		return rc;
	if (has_snapshot) {
		file_name(file, j, j->generation, "snapshot");
		int fd = openat(j->dir_fd, file, O_RDONLY | O_CLOEXEC);
		if ((rc = replay_file(j, file, fd, true, apply, ctx, rep)))
			return rc;
	}
	file_name(file, j, j->generation, "journal");
	if ((rc = open_journal_file(j, file, &j->fd)) ||
	    (rc = replay_file(j, file, dup(j->fd), false, apply, ctx, rep)))
		return rc;
	rep->generation = j->generation;
	/* Only now, with the chosen generation read whole, is older data stale. */
	return scan_dir(j, true, &has_snapshot);
}

int journal_open(journal **out, const char *dir, const char *name, journal_fsync policy,
		 journal_apply_fn apply, void *apply_ctx, journal_report *report)
{
	journal_report rep = { 0 };
	journal *j;
	int rc;
	if (!out)
		return concert_sys_error(CONCERT_EINVAL, "journal_open: out is NULL");
	*out = NULL;
	if (!dir || !*dir || !name || !*name || strchr(name, '/') || !apply ||
	    strlen(name) > NAME_MAX_LEN || (unsigned)policy > JOURNAL_FSYNC_OFF)
		return concert_sys_error(CONCERT_EINVAL, "journal_open: bad argument");
	if (!(j = journal_alloc(dir, name, policy)))
		return concert_sys_error(CONCERT_ENOMEM, NULL);
	if ((rc = open_files(j, apply, apply_ctx, &rep))) {
		journal_free(j);
		return rc;
	}
	if (policy == JOURNAL_FSYNC_BATCH) {
		if (pthread_create(&j->syncer, NULL, batch_syncer, j)) {
			journal_free(j);
			return concert_sys_error(CONCERT_ENOMEM, "journal: cannot start syncer");
		}
		j->has_syncer = true;
	}
	if (report)
		*report = rep;
	*out = j;
	return 0;
}

void journal_close(journal *j)
{
	if (!j)
		return;
	pthread_mutex_lock(&j->mu);
	j->stop = true;
	pthread_cond_broadcast(&j->wake);
	pthread_mutex_unlock(&j->mu);
	if (j->has_syncer)
		pthread_join(j->syncer, NULL);
	pthread_mutex_lock(&j->mu);
	while (j->writing)
		pthread_cond_wait(&j->done, &j->mu);
	if (!j->failed && j->pending.len)
		lead_flush(j, false);
	pthread_mutex_unlock(&j->mu);
	/* An error here has no one left to tell; the next open reads the file. */
	if (!j->failed)
		fsync(j->fd);
	journal_free(j);
}

uint64_t journal_size(journal *j)
{
	pthread_mutex_lock(&j->mu);
	uint64_t size = j->file_size;
	pthread_mutex_unlock(&j->mu);
	return size;
}

uint64_t journal_test_sync_count(journal *j)
{
	return atomic_load(&j->sync_count);
}

/* ---- compaction -------------------------------------------------------- */

static int put_frame(FILE *f, uint8_t kind, const uint8_t *payload, size_t len)
{
	uint8_t h[HEADER_SIZE];
	frame_header(h, (uint32_t)len + 1, journal_crc32c(journal_crc32c(0, &kind, 1), payload, len));
	if (fwrite(h, 1, HEADER_SIZE, f) != HEADER_SIZE || fputc(kind, f) == EOF ||
	    (len && fwrite(payload, 1, len, f) != len))
		return concert_sys_errorf(CONCERT_EIO, "snapshot write: %s", strerror(errno));
	return 0;
}

int journal_snapshot_put(journal_snapshot *snap, const uint8_t *payload, size_t len)
{
	if (len > RECORD_MAX)
		return concert_sys_error(CONCERT_EINVAL, "snapshot record over 16 MiB");
	if (snap->failed)
		return concert_sys_error(CONCERT_EIO, "snapshot write failed earlier");
	snap->failed = put_frame(snap->f, KIND_RECORD, payload, len) != 0;
	snap->records += !snap->failed;
	return snap->failed ? CONCERT_EIO : 0;
}

/* Writes and fsyncs `tmp` with emit's records and the trailer. */
static int write_snapshot(journal *j, const char *tmp, uint64_t gen, journal_snapshot_fn emit,
			  void *ctx)
{
	uint8_t trailer[TRAILER_SIZE];
	journal_snapshot snap = { 0 };
	int rc, fd = openat(j->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(snap.f = fdopen(fd, "wb"))) {
		rc = io_error(j, "open", tmp);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	setvbuf(snap.f, NULL, _IOFBF, 1 << 18);
	rc = emit(ctx, &snap);
	rc = rc > 0 ? CONCERT_EINTERNAL : rc;
	if (!rc && snap.failed)
		rc = concert_sys_error(CONCERT_EIO, "snapshot write failed");
	put_le64(trailer, snap.records);
	put_le64(trailer + 8, gen);
	if (!rc && (rc = put_frame(snap.f, KIND_TRAILER, trailer, TRAILER_SIZE)) == 0 &&
	    (fflush(snap.f) || fsync(fd)))
		rc = io_error(j, "write", tmp);
	if (fclose(snap.f) && !rc)
		rc = io_error(j, "close", tmp);
	return rc;
}

static void mark_failed(journal *j)
{
	pthread_mutex_lock(&j->mu);
	j->failed = true;
	pthread_mutex_unlock(&j->mu);
}

/* The crash-safe order: snapshot G+1 durable, then journal G+1, then drop G. */
static int switch_generation(journal *j, journal_snapshot_fn emit, void *ctx)
{
	char tmp[FILE_NAME_MAX], snap[FILE_NAME_MAX], file[FILE_NAME_MAX];
	uint64_t old = j->generation, next = old + 1;
	int fd = -1, old_fd = j->fd;
	file_name(tmp, j, next, "snapshot.tmp");
	file_name(snap, j, next, "snapshot");
	file_name(file, j, next, "journal");
	int rc = write_snapshot(j, tmp, next, emit, ctx);
	if (!rc && renameat(j->dir_fd, tmp, j->dir_fd, snap))
		rc = io_error(j, "rename", tmp);
	if (rc) {
		unlinkat(j->dir_fd, tmp, 0);
		return rc;
	}
	if ((rc = fsync_dir(j)) || (rc = open_journal_file(j, file, &fd))) {
		/* Undo, or a reopen would pick G+1 and drop what G gets next. */
		unlinkat(j->dir_fd, file, 0);
		if (unlinkat(j->dir_fd, snap, 0) || fsync(j->dir_fd))
			mark_failed(j);
		return rc;
	}
	pthread_mutex_lock(&j->mu);
	j->fd = fd;
	j->generation = next;
	j->file_size = 0;
	j->written_seq = j->synced_seq = j->appended_seq; /* all in the snapshot */
	pthread_mutex_unlock(&j->mu);
	close(old_fd);
	/* Leftovers are harmless: the next open removes them. */
	file_name(file, j, old, "journal");
	unlinkat(j->dir_fd, file, 0);
	file_name(file, j, old, "snapshot");
	unlinkat(j->dir_fd, file, 0);
	fsync(j->dir_fd);
	return 0;
}

int journal_compact(journal *j, journal_snapshot_fn emit, void *emit_ctx)
{
	int rc = 0;
	pthread_mutex_lock(&j->mu);
	while (!j->failed && (j->writing || j->syncing))
		pthread_cond_wait(&j->done, &j->mu);
	if (j->failed) {
		pthread_mutex_unlock(&j->mu);
		return failed_error();
	}
	j->compacting = true; /* keeps the syncer off the fd we replace */
	if (j->pending.len)
		rc = lead_flush(j, false);
	j->writing = true;
	pthread_mutex_unlock(&j->mu);

	if (!rc)
		rc = switch_generation(j, emit, emit_ctx);

	pthread_mutex_lock(&j->mu);
	j->writing = false;
	j->compacting = false;
	bool wake = writer_done(j);
	pthread_cond_broadcast(&j->done);
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->mu);
	if (wake)
		wake_committers(j);
	return rc;
}
