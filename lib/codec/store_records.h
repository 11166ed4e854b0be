/*
 * Internal: the journal and snapshot records of the memory store (msgpack).
 *
 * Every record is one msgpack array whose first element is its type. The
 * rest follows the type's layout below, where a tx is the array
 * [id, kind, amount, balance_after, ref_id, created_at] and a seat is
 * [seat_no, price, grade] (SEATS) or [seat_no, price, grade, state, version,
 * owner, hold_expires_at] (SEAT_STATE):
 *
 *   CONCERT     [1, id, title, opens_at, closes_at]
 *   SCHEDULE    [2, id, concert_id, starts_at, venue]
 *   SEATS       [3, schedule_id, [seat...]]
 *   HOLD        [4, hold_id, schedule_id, user_id, created_at, expires_at, amount, [seat_no...]]
 *   RELEASE     [5, hold_id, amount_left, [seat_no released...]]
 *   EXTEND      [6, hold_id, expires_at, extensions]
 *   CHARGE      [7, user_id, idem_key|nil, tx]
 *   PAY         [8, reservation_id, hold_id, payment_id, idem_key|nil, tx]
 *   CANCEL      [9, reservation_id, tx]
 *   DROP        [10, [hold_id...]]
 *   SEAT_STATE  [11, schedule_id, [seat...]]
 *   HOLD_STATE  [12, hold_id, schedule_id, user_id, created_at, expires_at, amount,
 *                [seat_no...], state, extensions]
 *   WALLET      [13, user_id, balance, [tx...]]
 *   IDEM        [14, user_id, op, key, amount, balance, hold_id, reservation_id]
 *   RESERVATION [15, id, schedule_id, user_id, hold_id, payment_id, amount, state,
 *                created_at, balance_after, [seat_no...]]
 *   COUNTERS    [16, [next id of each store_counter...]]
 *
 * CONCERT..DROP are redo records: the state a mutation produced, replayed
 * without validation. CONCERT, SCHEDULE and SEAT_STATE..COUNTERS make up
 * snapshots. Types are never renumbered.
 */
#ifndef CONCERT_CODEC_STORE_RECORDS_H
#define CONCERT_CODEC_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "concert/common.h"

typedef enum store_record_type {
	STORE_RECORD_CONCERT = 1,
	STORE_RECORD_SCHEDULE = 2,
	STORE_RECORD_SEATS = 3,
	STORE_RECORD_HOLD = 4,
	STORE_RECORD_RELEASE = 5,
	STORE_RECORD_EXTEND = 6,
	STORE_RECORD_CHARGE = 7,
	STORE_RECORD_PAY = 8,
	STORE_RECORD_CANCEL = 9,
	STORE_RECORD_DROP = 10,
	STORE_RECORD_SEAT_STATE = 11,
	STORE_RECORD_HOLD_STATE = 12,
	STORE_RECORD_WALLET = 13,
	STORE_RECORD_IDEM = 14,
	STORE_RECORD_RESERVATION = 15,
	STORE_RECORD_COUNTERS = 16
} store_record_type;

/* The id sequences, in the order of the COUNTERS record. */
typedef enum store_counter {
	STORE_COUNTER_CONCERT = 0,
	STORE_COUNTER_SCHEDULE,
	STORE_COUNTER_HOLD,
	STORE_COUNTER_RESERVATION,
	STORE_COUNTER_PAYMENT,
	STORE_COUNTER_TX,
	STORE_COUNTER_COUNT
} store_counter;

/* Idempotency key namespaces (IDEM.op). */
typedef enum store_idem_op {
	STORE_IDEM_CHARGE = 1,
	STORE_IDEM_PAY = 2
} store_idem_op;

typedef struct store_tx_record {
	int64_t id;
	int32_t kind;
	int64_t amount;
	int64_t balance_after;
	int64_t ref_id;
	concert_time created_at;
} store_tx_record;

/* SEATS uses seat_no, price and grade only. */
typedef struct store_seat_record {
	int32_t seat_no;
	int32_t state;
	int64_t price;
	int64_t version;
	int64_t owner;             /* hold id (HELD) or reservation id (RESERVED) */
	concert_time hold_expires_at;
	const char *grade;
} store_seat_record;

/*
 * One record; each type uses the fields its layout names. Decoded strings
 * and arrays live in the reader and stay valid until its next decode.
 */
typedef struct store_record {
	store_record_type type;
	int64_t id;                /* concert, schedule, hold or reservation id */
	int64_t concert_id;
	int64_t schedule_id;
	int64_t hold_id;
	int64_t payment_id;
	int64_t amount;
	int64_t balance;
	concert_time opens_at;     /* CONCERT */
	concert_time closes_at;    /* CONCERT */
	concert_time starts_at;    /* SCHEDULE */
	concert_time created_at;
	concert_time expires_at;
	int32_t state;
	int32_t op;                /* IDEM: store_idem_op */
	uint32_t extensions;
	const char *title;
	const char *venue;
	const char *user_id;
	const char *idem_key;      /* NULL: none */
	store_tx_record tx;
	size_t seat_count;
	const int32_t *seat_nos;   /* at most CONCERT_HOLD_SEATS_MAX */
	size_t count;              /* items of seats, txs or ids */
	const store_seat_record *seats;
	const store_tx_record *txs;
	const int64_t *ids;
	int64_t counters[STORE_COUNTER_COUNT];
} store_record;

/* Encoded records that fit here need no allocation. */
#define STORE_RECORD_LOCAL 1024

/* An output buffer; not copyable (it may point into itself). */
typedef struct store_record_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool oom;
	uint8_t local[STORE_RECORD_LOCAL];
} store_record_buf;

void store_record_buf_init(store_record_buf *buf);
void store_record_buf_free(store_record_buf *buf);

/*
 * Encodes `r` into `buf`, replacing its contents. 0, CONCERT_ENOMEM, or
 * CONCERT_EINVAL for an unknown type or too many seat numbers.
 */
int store_record_encode(store_record_buf *buf, const store_record *r);

/* Decodes records; holds what the last decoded record points to. */
typedef struct store_record_reader {
	msgpack_unpacked unpacked;
} store_record_reader;

void store_record_reader_init(store_record_reader *rd);
void store_record_reader_free(store_record_reader *rd);

/*
 * Decodes exactly one record filling the whole payload. 0, CONCERT_ENOMEM,
 * or CONCERT_ECORRUPT (with a message) for anything not of its type's shape:
 * wrong element count or type, out-of-range numbers, over-long strings.
 */
int store_record_decode(store_record_reader *rd, store_record *out, const uint8_t *payload,
	size_t len);

#endif
