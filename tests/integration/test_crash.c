/*
 * Durability under kill -9, through the public engine API only.
 *
 * A child process charges wallets, holds seats and pays on a durable memory
 * store ("memory:<dir>?fsync=always", or CONCERT_CRASH_FSYNC) and reports every acknowledged result
 * on a pipe before going on. The parent SIGKILLs it after a random number of
 * acknowledgements (seeded: CONCERT_CRASH_SEED reproduces a run), reopens
 * the store and checks that everything acknowledged is there and that the
 * audit invariants hold; 20 rounds on one directory. Then the journal is
 * damaged on purpose: a torn tail (truncation at any byte) must open with
 * the invariants intact, one flipped bit before the tail must refuse to
 * open with CONCERT_ECORRUPT and leave the file as it was.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "concert.h"
#include "tmpdir.h"

#define ROUNDS 20
#define SEATS_PER_ROUND 100
#define USERS_PER_ROUND 3
#define MAX_ACKS 4096
#define CHARGE_AMOUNT 5000

static const unsigned char secret[] = "libconcert crash test secret, 32+ bytes";

static char dir[256];
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* xorshift64*: reproducible from the printed seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static uint64_t rng_below(uint64_t n)
{
	return rng_next() % n;
}

/* ---- what the child acknowledged ---------------------------------------- */

typedef struct ack {
	char kind;                 /* 'C' charge, 'H' hold, 'P' payment */
	char user[CONCERT_USER_ID_MAX + 1];
	char key[CONCERT_IDEM_KEY_MAX + 1];
	int64_t amount;
	int64_t balance;           /* C: balance after */
	int64_t payment_id;        /* P */
	int64_t reservation_id;    /* P */
	int32_t seat;              /* H, P */
	char token[CONCERT_TOKEN_MAX + 1];  /* P: the ACTIVE token it used */
} ack;

static ack acks[MAX_ACKS];
static size_t ack_count;
static int64_t concert_id, schedule_id;

/* always (default), batch or off: journal.h promises all three survive kill -9. */
static const char *fsync_policy = "always";

static int open_engine(concert_engine **out, const char *path)
{
	char uri[1024];
	concert_options opts;
	snprintf(uri, sizeof(uri), "memory:%s?fsync=%s", path, fsync_policy);
	assert_int_equal(concert_options_init(&opts, CONCERT_OPTIONS_VERSION), 0);
	opts.store = uri;
	opts.secret = secret;
	opts.secret_len = sizeof(secret) - 1;
	opts.max_active = 1000000;
	opts.max_holds_per_user = 1000;
	opts.max_seats_per_user = 100000;
	return concert_engine_open(out, &opts);
}

/* ---- the child ------------------------------------------------------------ */

static void child_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void child_say(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line (< PIPE_BUF): a kill never leaves half a line. */
	if (n <= 0 || write(fd, line, (size_t)n) != n)
		_exit(4);
}

static void child_check(int fd, int rc, const char *what)
{
	if (rc == 0)
		return;
	child_say(fd, "X %s: %s (%s)\n", what, concert_error_name(rc), concert_error_last()->message);
	_exit(3);
}

static void child_run(int fd, int round)
{
	concert_engine *e = NULL;
	child_check(fd, open_engine(&e, dir), "open");
	if (round == 0) {
		concert_time now = concert_engine_now(e);
		child_check(fd, concert_concert_add(e, &concert_id, "crash test", now - 86400000LL,
						    now + 30 * 86400000LL), "concert_add");
		child_check(fd, concert_schedule_add(e, &schedule_id, concert_id, now + 86400000LL,
						     "hall"), "schedule_add");
		concert_seat_spec specs[SEATS_PER_ROUND];
		for (int r = 0; r < ROUNDS; r++) {
			for (int i = 0; i < SEATS_PER_ROUND; i++) {
				specs[i].seat_no = r * SEATS_PER_ROUND + i + 1;
				specs[i].price = 1000 + 1000 * (i % 3);
				specs[i].grade = "R";
			}
			child_check(fd, concert_seats_add(e, schedule_id, specs, SEATS_PER_ROUND),
				    "seats_add");
		}
		child_say(fd, "S %" PRId64 " %" PRId64 "\n", concert_id, schedule_id);
	}
	for (int i = 0; i < SEATS_PER_ROUND; i++) {
		char user[64], key[64];
		snprintf(user, sizeof(user), "crash-r%d-u%d", round, i % USERS_PER_ROUND);

		snprintf(key, sizeof(key), "r%d-c%d", round, i);
		int64_t balance = 0;
		child_check(fd, concert_wallet_charge(e, &balance, user, CHARGE_AMOUNT, key), "charge");
		child_say(fd, "C %s %s %d %" PRId64 "\n", user, key, CHARGE_AMOUNT, balance);

		concert_queue_status *entered = NULL, *status = NULL;
		child_check(fd, concert_queue_enter(e, &entered, user, concert_id), "queue_enter");
		child_check(fd, concert_queue_status_get(e, &status, entered->token), "queue_status");
		if (status->state != CONCERT_QUEUE_ACTIVE)
			child_check(fd, CONCERT_ENOT_ACTIVE, "queue token not ACTIVE");
		int32_t seat = round * SEATS_PER_ROUND + i + 1;
		concert_hold *hold = NULL;
		child_check(fd, concert_hold_seats(e, &hold, status->token, schedule_id, &seat, 1), "hold");
		child_say(fd, "H %s %d\n", user, (int)seat);
		snprintf(key, sizeof(key), "r%d-p%d", round, i);
		concert_payment *p = NULL;
		child_check(fd, concert_pay(e, &p, status->token, hold->id, key), "pay");
		child_say(fd, "P %s %s %" PRId64 " %" PRId64 " %" PRId64 " %d %s\n", user, key, p->amount,
			  p->payment_id, p->reservation_id, (int)seat, status->token);
		concert_free(p);
		concert_free(hold);
		concert_free(status);
		concert_free(entered);
		/* Compact now and then, so kills also land in and around compaction. */
		if (i % 7 == 3)
			child_check(fd, concert_engine_compact(e), "compact");
	}
	concert_engine_close(e);
	_exit(0);
}

/* ---- the parent --------------------------------------------------------------- */

static void parse_line(const char *line)
{
	ack a;
	memset(&a, 0, sizeof(a));
	if (line[0] == 'X')
		fail_msg("child failed: %s", line);
	if (line[0] == 'S') {
		assert_int_equal(sscanf(line, "S %" SCNd64 " %" SCNd64, &concert_id, &schedule_id), 2);
		return;
	}
	assert_true(ack_count < MAX_ACKS);
	a.kind = line[0];
	if (a.kind == 'C') {
		assert_int_equal(sscanf(line, "C %64s %64s %" SCNd64 " %" SCNd64, a.user, a.key,
					&a.amount, &a.balance), 4);
	} else if (a.kind == 'H') {
		int seat = 0;
		assert_int_equal(sscanf(line, "H %64s %d", a.user, &seat), 2);
		a.seat = seat;
	} else if (a.kind == 'P') {
		int seat = 0;
		assert_int_equal(sscanf(line, "P %64s %64s %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %255s",
					a.user, a.key, &a.amount, &a.payment_id, &a.reservation_id,
					&seat, a.token), 7);
		a.seat = seat;
	} else {
		fail_msg("unexpected line from the child: %s", line);
	}
	acks[ack_count++] = a;
}

/* Runs one child; kills it after `kill_after` acknowledgements. Returns the
 * number of acknowledgements this round. */
static size_t run_round(int round, size_t kill_after)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_run(fds[1], round);
	}
	close(fds[1]);
	FILE *in = fdopen(fds[0], "r");
	assert_non_null(in);
	char line[1024];
	size_t before = ack_count, killed = 0;
	while (fgets(line, sizeof(line), in)) {
		parse_line(line);
		if (!killed && ack_count - before >= kill_after) {
			kill(pid, SIGKILL);
			killed = 1;
		}
	}
	/* Everything read until EOF was acknowledged, killed or not. */
	fclose(in);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (killed)
		assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
			    (WIFEXITED(status) && WEXITSTATUS(status) == 0));
	else
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return ack_count - before;
}

static void check_audit(concert_engine *e)
{
	concert_audit *a = NULL;
	assert_int_equal(concert_engine_audit(e, &a), 0);
	if (a->wallet_mismatches || a->seat_mismatches || a->payment_mismatches ||
	    a->total_balance + a->total_payments - a->total_refunds != a->total_charges ||
	    a->total_balance < 0) {
		concert_audit c = *a;
		concert_free(a);
		fail_msg("audit: balance %" PRId64 " + payments %" PRId64 " - refunds %" PRId64
			 " != charges %" PRId64 "; mismatches %" PRId64 "/%" PRId64 "/%" PRId64,
			 c.total_balance, c.total_payments, c.total_refunds, c.total_charges,
			 c.wallet_mismatches, c.seat_mismatches, c.payment_mismatches);
	}
	concert_free(a);
}

/* Every acknowledged result is still there. */
static void check_acks(concert_engine *e)
{
	static int32_t seat_states[ROUNDS * SEATS_PER_ROUND + 1];
	if (schedule_id) {
		concert_seat_list *seats = NULL;
		assert_int_equal(concert_seats_list(e, &seats, schedule_id), 0);
		assert_int_equal(seats->count, ROUNDS * SEATS_PER_ROUND);
		for (size_t i = 0; i < seats->count; i++)
			seat_states[seats->items[i].seat_no] = seats->items[i].state;
		concert_free(seats);
	}
	for (size_t i = 0; i < ack_count; i++) {
		const ack *a = &acks[i];
		if (a->kind == 'C') {
			/* The repeat answers the original balance and changes nothing. */
			int64_t before = -1, after = -1, repeat = -1;
			assert_int_equal(concert_wallet_balance(e, &before, a->user), 0);
			int rc = concert_wallet_charge(e, &repeat, a->user, a->amount, a->key);
			if (rc != 0 || repeat != a->balance)
				fail_msg("acknowledged charge %s of %s lost: rc %d, balance %" PRId64
					 " (acknowledged %" PRId64 ")", a->key, a->user, rc, repeat,
					 a->balance);
			assert_int_equal(concert_wallet_balance(e, &after, a->user), 0);
			assert_int_equal(after, before);
		} else if (a->kind == 'H') {
			/* Held (holds live 5 minutes of real time) or since paid. */
			assert_true(seat_states[a->seat] == CONCERT_SEAT_HELD ||
				    seat_states[a->seat] == CONCERT_SEAT_RESERVED);
		} else {
			concert_reservation *r = NULL;
			int rc = concert_reservation_get(e, &r, a->reservation_id);
			if (rc != 0)
				fail_msg("acknowledged payment %" PRId64 " (reservation %" PRId64
					 ") lost: %s", a->payment_id, a->reservation_id,
					 concert_error_name(rc));
			assert_int_equal(r->payment_id, a->payment_id);
			assert_int_equal(r->state, CONCERT_RESERVATION_CONFIRMED);
			assert_int_equal(r->amount, a->amount);
			assert_string_equal(r->user_id, a->user);
			assert_int_equal(r->seat_count, 1);
			assert_int_equal(r->seat_nos[0], a->seat);
			concert_free(r);
			assert_int_equal(seat_states[a->seat], CONCERT_SEAT_RESERVED);
			/* The token it paid with was used up, durably too. */
			concert_queue_status *st = NULL;
			rc = concert_queue_status_get(e, &st, a->token);
			if (rc != 0 || st->state != CONCERT_QUEUE_DONE)
				fail_msg("token of acknowledged payment %" PRId64 ": rc %s, state %s",
					 a->payment_id, concert_error_name(rc),
					 st ? concert_queue_state_name(st->state) : "-");
			concert_free(st);
		}
	}
	if (schedule_id) {
		concert_schedule *s = NULL;
		assert_int_equal(concert_schedule_get(e, &s, schedule_id), 0);
		size_t payments = 0;
		for (size_t i = 0; i < ack_count; i++)
			payments += acks[i].kind == 'P';
		assert_int_equal(s->total_seats, ROUNDS * SEATS_PER_ROUND);
		assert_true((size_t)s->reserved_seats >= payments);
		concert_free(s);
	}
}

static void test_kill9_rounds(void **state)
{
	(void)state;
	for (int round = 0; round < ROUNDS; round++) {
		size_t kill_after = 1 + rng_below(SEATS_PER_ROUND);
		size_t got = run_round(round, kill_after);
		if (round == 0)
			assert_true(schedule_id > 0);
		concert_engine *e = NULL;
		int rc = open_engine(&e, dir);
		if (rc != 0)
			fail_msg("round %d (killed after %zu acks): reopen failed: %s (%s)", round,
				 kill_after, concert_error_name(rc), concert_error_last()->message);
		check_acks(e);
		check_audit(e);
		concert_engine_close(e);
		print_message("round %2d: %3zu acknowledged, %zu in all\n", round, got, ack_count);
	}
}

/* ---- journal damage --------------------------------------------------------- */

/* The newest store journal of `path`: store.<G>.journal with the largest G. */
static void find_journal(const char *path, char *out, size_t out_size)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	long best = -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		long g;
		char tail[16];
		if (sscanf(de->d_name, "store.%ld.%15s", &g, tail) == 2 && strcmp(tail, "journal") == 0 &&
		    g > best)
			best = g;
	}
	closedir(d);
	if (best < 0)
		fail_msg("no store.<G>.journal in %s", path);
	snprintf(out, out_size, "%s/store.%ld.journal", path, best);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/* A fresh copy of the crash directory's files; returns its path. */
static void copy_dir(char *out, size_t out_size)
{
	snprintf(out, out_size, "%s-copy-XXXXXX", dir);
	assert_non_null(mkdtemp(out));
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		char from[768], to[768];
		struct stat st;
		snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
		if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		snprintf(to, sizeof(to), "%s/%s", out, de->d_name);
		copy_file(from, to);
	}
	closedir(d);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define FRAME_HEADER 12

/* Frame start offsets of a journal (u32 len | u32 crc | u32 hcrc | payload). */
static size_t frames_of(const char *path, uint64_t *starts, size_t max, uint64_t *size)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	struct stat st;
	assert_int_equal(fstat(fileno(f), &st), 0);
	*size = (uint64_t)st.st_size;
	size_t n = 0;
	uint64_t off = 0;
	uint8_t h[FRAME_HEADER];
	while (off + FRAME_HEADER <= *size && n < max) {
		assert_int_equal(fseeko(f, (off_t)off, SEEK_SET), 0);
		assert_int_equal(fread(h, 1, FRAME_HEADER, f), FRAME_HEADER);
		starts[n++] = off;
		off += FRAME_HEADER + le32(h);
	}
	fclose(f);
	return n;
}

/* After the rounds the newest journal may be short (a compaction just
 * before the kill): append enough records for the damage tests. */
static void fill_journal(void)
{
	static int filled;
	if (filled++)
		return;
	concert_engine *e = NULL;
	assert_int_equal(open_engine(&e, dir), 0);
	for (int i = 0; i < 40; i++) {
		char key[64];
		snprintf(key, sizeof(key), "fill-%d", i);
		assert_int_equal(concert_wallet_charge(e, NULL, "crash-filler", 100 + i, key), 0);
	}
	check_audit(e);
	concert_engine_close(e);
}

static void test_torn_tail(void **state)
{
	(void)state;
	fill_journal();
	char journal[512];
	find_journal(dir, journal, sizeof(journal));
	static uint64_t starts[65536];
	uint64_t size;
	size_t frames = frames_of(journal, starts, 65536, &size);
	assert_true(frames >= 8);
	/* Random cuts, plus one inside a header and one inside a payload. */
	uint64_t cuts[10];
	for (int i = 0; i < 8; i++)
		cuts[i] = rng_below(size);
	cuts[8] = starts[frames / 2] + 5;
	cuts[9] = starts[frames - 1] + FRAME_HEADER + 1;
	for (size_t i = 0; i < 10; i++) {
		char copy[512], copied_journal[512];
		copy_dir(copy, sizeof(copy));
		find_journal(copy, copied_journal, sizeof(copied_journal));
		assert_int_equal(truncate(copied_journal, (off_t)cuts[i]), 0);
		for (int open_twice = 0; open_twice < 2; open_twice++) {
			concert_engine *e = NULL;
			int rc = open_engine(&e, copy);
			if (rc != 0)
				fail_msg("journal cut at %" PRIu64 " of %" PRIu64 ": open failed: %s (%s)",
					 cuts[i], size, concert_error_name(rc),
					 concert_error_last()->message);
			check_audit(e);
			concert_engine_close(e);
		}
		tmpdir_remove(copy);
	}
}

static void flip_and_open(const char *what, const char *suffix, uint64_t offset, int bit)
{
	char copy[512], journal[512];
	copy_dir(copy, sizeof(copy));
	find_journal(copy, journal, sizeof(journal));
	if (suffix) {
		/* store.<G>.journal -> store.<G>.<suffix> */
		char *dot = strrchr(journal, '.');
		snprintf(dot + 1, sizeof(journal) - (size_t)(dot + 1 - journal), "%s", suffix);
	}
	int fd = open(journal, O_RDWR);
	assert_true(fd >= 0);
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, (off_t)offset), 1);
	byte ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)offset), 1);
	struct stat before, after;
	assert_int_equal(fstat(fd, &before), 0);
	close(fd);

	static char sentinel;
	concert_engine *e = (concert_engine *)&sentinel;
	int rc = open_engine(&e, copy);
	if (rc != CONCERT_ECORRUPT)
		fail_msg("bit %d flipped at %" PRIu64 " (%s): open gave %d %s (%s), expected corrupt",
			 bit, offset, what, rc, concert_error_name(rc), concert_error_last()->message);
	assert_null(e);
	/* Data is never skipped: the damaged journal is left as it was. */
	assert_int_equal(stat(journal, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	fd = open(journal, O_RDONLY);
	uint8_t again;
	assert_int_equal(pread(fd, &again, 1, (off_t)offset), 1);
	assert_int_equal(again, byte);
	close(fd);
	tmpdir_remove(copy);
}

static void test_bit_flip(void **state)
{
	(void)state;
	fill_journal();
	char journal[512];
	find_journal(dir, journal, sizeof(journal));
	static uint64_t starts[65536];
	uint64_t size;
	size_t frames = frames_of(journal, starts, 65536, &size);
	assert_true(frames >= 8);
	size_t mid = frames / 2;
	uint64_t payload_len = starts[mid + 1] - starts[mid] - FRAME_HEADER;
	assert_true(payload_len > 0);
	flip_and_open("middle of the file", NULL, size / 2, (int)rng_below(8));
	flip_and_open("payload of a middle frame", NULL,
		      starts[mid] + FRAME_HEADER + payload_len / 2, (int)rng_below(8));
	flip_and_open("length of a middle frame", NULL, starts[mid], (int)rng_below(8));
	flip_and_open("payload CRC of a middle frame", NULL, starts[mid] + 4, (int)rng_below(8));
	flip_and_open("first frame", NULL, starts[0] + FRAME_HEADER, (int)rng_below(8));

	/* The snapshot beside it (the rounds compacted) is never a torn tail. */
	char snapshot[512];
	struct stat st;
	snprintf(snapshot, sizeof(snapshot), "%.*ssnapshot", (int)(strlen(journal) - strlen("journal")),
		 journal);
	assert_int_equal(stat(snapshot, &st), 0);
	assert_true(st.st_size > 2 * FRAME_HEADER);
	flip_and_open("middle of the snapshot", "snapshot", (uint64_t)st.st_size / 2,
		      (int)rng_below(8));
}

static int group_setup(void **state)
{
	(void)state;
	const char *seed_env = getenv("CONCERT_CRASH_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	if (!seed)
		seed = 1;
	rng_state = seed;
	const char *policy = getenv("CONCERT_CRASH_FSYNC");
	if (policy && *policy)
		fsync_policy = policy;
	print_message("CONCERT_CRASH_SEED=%" PRIu64 " CONCERT_CRASH_FSYNC=%s\n", seed, fsync_policy);
	return tmpdir_make(dir, sizeof(dir), "concert-crash");
}

static int group_teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_rounds),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_bit_flip),
	};
	return cmocka_run_group_tests_name("integration.crash", tests, group_setup, group_teardown);
}
