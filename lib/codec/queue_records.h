/*
 * Internal: the journal records of the memory queue backend (msgpack).
 *
 * Every record is one msgpack array whose first element is its type:
 *   ENTER   [1, token_id, concert_id, seq, user_id, issued_at, deadline, wait_idle_ttl]
 *   ADMIT   [2, concert_id, active_until, [token_id...]]
 *   LEAVE   [3, concert_id, token_id, at]
 *   DONE    [4, concert_id, token_id, at]
 *   EXPIRE  [5, concert_id, token_id, at]
 *   TOKEN   [6, token_id, concert_id, seq, user_id, state, issued_at, expires_at, wait_idle_ttl]
 *   CONCERT [7, concert_id, last_seq, admitted_total]
 *   COUNTER [8, next_token_id]
 * ENTER..EXPIRE are journal records; TOKEN, CONCERT and COUNTER make up
 * snapshots. Types are never renumbered; a new field is only ever appended.
 */
#ifndef CONCERT_CODEC_QUEUE_RECORDS_H
#define CONCERT_CODEC_QUEUE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "concert/common.h"

typedef enum queue_record_type {
	QUEUE_RECORD_ENTER = 1,
	QUEUE_RECORD_ADMIT = 2,
	QUEUE_RECORD_LEAVE = 3,
	QUEUE_RECORD_DONE = 4,
	QUEUE_RECORD_EXPIRE = 5,
	QUEUE_RECORD_TOKEN = 6,
	QUEUE_RECORD_CONCERT = 7,
	QUEUE_RECORD_COUNTER = 8
} queue_record_type;

/* Most token ids in one ADMIT record; bigger admissions use several. */
#define QUEUE_ADMIT_BATCH 64

/* Upper bound of an encoded record, for stack buffers. */
#define QUEUE_RECORD_MAX 1024

/* One decoded record; each type uses the fields its layout above names. */
typedef struct queue_record {
	queue_record_type type;
	int64_t token_id;
	int64_t concert_id;
	int64_t seq;               /**< ENTER/TOKEN; CONCERT: last_seq */
	int32_t state;             /**< TOKEN */
	concert_time issued_at;
	concert_time expires_at;   /**< ENTER: deadline; ADMIT: active_until; TOKEN */
	concert_time wait_idle_ttl;
	concert_time at;           /**< LEAVE/DONE/EXPIRE */
	uint64_t counter;          /**< CONCERT: admitted_total; COUNTER: next_token_id */
	size_t id_count;           /**< ADMIT */
	int64_t ids[QUEUE_ADMIT_BATCH];
	char user_id[CONCERT_USER_ID_MAX + 1];
} queue_record;

/*
 * Encodes `r` into `buf` (at least QUEUE_RECORD_MAX bytes) and returns the
 * length, or 0 if `r` is malformed (unknown type, too many ids).
 */
size_t queue_record_encode(const queue_record *r, uint8_t *buf, size_t cap);

/* Decodes one record. 0, or CONCERT_ECORRUPT (with a message) if malformed. */
int queue_record_decode(queue_record *out, const uint8_t *payload, size_t len);

#endif
