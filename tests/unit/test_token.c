/*
 * Unit tests for signed queue tokens (lib/core/token.c).
 *
 * The forging helpers below build tokens with OpenSSL's HMAC() directly, so
 * a claims part that is not ours can still carry a valid MAC: that is how
 * the claims decoder is reached with hostile bytes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "concert.h"

#define SECRET ((const unsigned char *)"correct horse battery staple")
#define SECRET_LEN (sizeof("correct horse battery staple") - 1)
#define CONCERT 42
#define T0 INT64_C(1700000000000)
#define TTL 600000
#define TOKEN_BUF (CONCERT_TOKEN_MAX + 1)

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static concert_token_claims make_claims(concert_token_kind kind)
{
	concert_token_claims c;

	memset(&c, 0, sizeof(c));
	c.token_id = 123456789;
	c.concert_id = CONCERT;
	c.issued_at = T0;
	c.kind = kind;
	c.active_until = kind == CONCERT_TOKEN_ACTIVE ? T0 + TTL : 0;
	strcpy(c.user_id, "user-7");
	return c;
}

static size_t sign(char *out, const concert_token_claims *c)
{
	size_t len = 0;

	assert_int_equal(concert_token_sign(out, TOKEN_BUF, &len, c, SECRET, SECRET_LEN), 0);
	assert_int_equal(strlen(out), len);
	return len;
}

static int verify_at(const char *token, size_t len, concert_time now)
{
	return concert_token_verify(NULL, token, len, SECRET, SECRET_LEN, CONCERT, now);
}

static void assert_claims_equal(const concert_token_claims *a, const concert_token_claims *b)
{
	assert_int_equal(a->token_id, b->token_id);
	assert_int_equal(a->concert_id, b->concert_id);
	assert_int_equal(a->issued_at, b->issued_at);
	assert_int_equal(a->active_until, b->active_until);
	assert_int_equal(a->kind, b->kind);
	assert_string_equal(a->user_id, b->user_id);
}

/* --- forging helpers ------------------------------------------------------ */

static size_t b64url(char *dst, const unsigned char *src, size_t n)
{
	size_t len = (size_t)EVP_EncodeBlock((unsigned char *)dst, src, (int)n);

	while (len && dst[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++)
		dst[i] = dst[i] == '+' ? '-' : dst[i] == '/' ? '_' : dst[i];
	dst[len] = '\0';
	return len;
}

/* "<text>.<base64url HMAC(secret, text)>" for any claims text. */
static size_t forge_text(char *out, const char *text)
{
	unsigned char mac[32];
	unsigned int mac_len = 0;
	size_t len = strlen(text);

	assert_non_null(HMAC(EVP_sha256(), SECRET, (int)SECRET_LEN,
		(const unsigned char *)text, len, mac, &mac_len));
	assert_int_equal(mac_len, 32);
	memcpy(out, text, len);
	out[len++] = '.';
	return len + b64url(out + len, mac, mac_len);
}

static size_t forge_bytes(char *out, const void *payload, size_t n)
{
	char text[1024];

	assert_true(n < 700);
	b64url(text, payload, n);
	return forge_text(out, text);
}

static size_t forge_sbuf(char *out, msgpack_sbuffer *sb)
{
	size_t len = forge_bytes(out, sb->data, sb->size);

	msgpack_sbuffer_destroy(sb);
	return len;
}

/* Packs the format-1 array, letting a test replace one field with `pack_bad`. */
typedef void (*field_fn)(msgpack_packer *pk);

static void pack_claims(msgpack_packer *pk, size_t count, int bad_index, field_fn pack_bad)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	size_t ulen = strlen(c.user_id);

	msgpack_pack_array(pk, count);
	for (size_t i = 0; i < count; i++) {
		if ((int)i == bad_index) {
			pack_bad(pk);
			continue;
		}
		switch (i) {
		case 0: msgpack_pack_int(pk, 1); break;
		case 1: msgpack_pack_int64(pk, c.token_id); break;
		case 2: msgpack_pack_str(pk, ulen); msgpack_pack_str_body(pk, c.user_id, ulen); break;
		case 3: msgpack_pack_int64(pk, c.concert_id); break;
		case 4: msgpack_pack_int64(pk, c.issued_at); break;
		case 5: msgpack_pack_int(pk, c.kind); break;
		default: msgpack_pack_int64(pk, c.active_until); break;
		}
	}
}

static size_t forge_claims(char *out, size_t count, int bad_index, field_fn pack_bad, const char *tail)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_claims(&pk, count, bad_index, pack_bad);
	if (tail)
		msgpack_sbuffer_write(&sb, tail, strlen(tail));
	return forge_sbuf(out, &sb);
}

static void bad_format(msgpack_packer *pk) { msgpack_pack_int(pk, 2); }
static void bad_kind0(msgpack_packer *pk) { msgpack_pack_int(pk, 0); }
static void bad_kind3(msgpack_packer *pk) { msgpack_pack_int(pk, 3); }
static void bad_negative(msgpack_packer *pk) { msgpack_pack_int64(pk, -5); }
static void bad_huge(msgpack_packer *pk) { msgpack_pack_uint64(pk, UINT64_MAX); }
static void bad_float(msgpack_packer *pk) { msgpack_pack_double(pk, 1.0); }
static void bad_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void bad_int_as_str(msgpack_packer *pk) { msgpack_pack_str(pk, 1); msgpack_pack_str_body(pk, "1", 1); }
static void bad_empty_user(msgpack_packer *pk) { msgpack_pack_str(pk, 0); }
static void bad_bin_user(msgpack_packer *pk) { msgpack_pack_bin(pk, 3); msgpack_pack_bin_body(pk, "abc", 3); }
static void bad_nul_user(msgpack_packer *pk) { msgpack_pack_str(pk, 3); msgpack_pack_str_body(pk, "a\0b", 3); }

static void bad_long_user(msgpack_packer *pk)
{
	char user[CONCERT_USER_ID_MAX + 1];

	memset(user, 'u', sizeof(user));
	msgpack_pack_str(pk, sizeof(user));
	msgpack_pack_str_body(pk, user, sizeof(user));
}

/* Nesting makes msgpack-c outgrow token.c's stack arena and take a heap
 * chunk: ASan/valgrind check that it is freed. */
static void bad_nested(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 40);
	for (int i = 0; i < 40; i++)
		msgpack_pack_int(pk, i);
}

static void bad_map(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
}

/* --- tests ---------------------------------------------------------------- */

static void test_round_trip_waiting(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_WAITING), out;
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, CONCERT, T0),
		CONCERT_ENOT_ACTIVE);
	assert_claims_equal(&out, &c);
	assert_int_equal(concert_error_last()->code, CONCERT_ENOT_ACTIVE);
}

static void test_round_trip_active(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), out;
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, CONCERT, T0), 0);
	assert_claims_equal(&out, &c);
	assert_int_equal(concert_error_last()->code, 0);
	/* concert_id 0 accepts any concert; the token need not be NUL-terminated. */
	token[len] = 'X';
	assert_int_equal(concert_token_verify(NULL, token, len, SECRET, SECRET_LEN, 0, T0), 0);
}

static void test_user_id_limits(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), out;
	char token[TOKEN_BUF];
	size_t len;

	(void)state;
	memset(c.user_id, 'u', CONCERT_USER_ID_MAX);
	c.user_id[CONCERT_USER_ID_MAX] = '\0';
	c.token_id = INT64_MAX;
	c.concert_id = INT64_MAX;
	c.issued_at = INT64_MAX - 1;
	c.active_until = INT64_MAX;
	len = sign(token, &c);
	assert_true(len <= CONCERT_TOKEN_MAX);
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, INT64_MAX, T0), 0);
	assert_claims_equal(&out, &c);

	/* 65 bytes: no room for the NUL in the claims struct. */
	memset(c.user_id, 'u', sizeof(c.user_id));
	assert_int_equal(concert_token_sign(token, sizeof(token), NULL, &c, SECRET, SECRET_LEN),
		CONCERT_EINVAL);
	c.user_id[0] = '\0';
	assert_int_equal(concert_token_sign(token, sizeof(token), NULL, &c, SECRET, SECRET_LEN),
		CONCERT_EINVAL);
}

static void test_every_byte_change_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF], copy[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	for (size_t pos = 0; pos < len; pos++) {
		for (const char *r = alphabet; *r; r++) {
			if (*r == token[pos])
				continue;
			memcpy(copy, token, len + 1);
			copy[pos] = *r;
			assert_int_equal(verify_at(copy, len, T0), CONCERT_ETOKEN);
		}
	}
}

static void test_every_truncation_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(verify_at(token, n, T0), CONCERT_ETOKEN);
		/* Dropping a prefix must fail as well. */
		assert_int_equal(verify_at(token + len - n, n, T0), CONCERT_ETOKEN);
	}
}

static void test_other_secret_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	assert_int_equal(concert_token_verify(NULL, token, len,
		(const unsigned char *)"another secret", 14, CONCERT, T0), CONCERT_ETOKEN);
	assert_int_equal(concert_token_verify(NULL, token, len, SECRET, SECRET_LEN - 1, CONCERT, T0),
		CONCERT_ETOKEN);
}

static void test_foreign_concert(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), out;
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, CONCERT + 1, T0),
		CONCERT_ETOKEN);
	assert_claims_equal(&out, &c);
}

static void test_expiry(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), out;
	char token[TOKEN_BUF];
	size_t len = sign(token, &c);

	(void)state;
	assert_int_equal(verify_at(token, len, c.active_until - 1), 0);
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, CONCERT,
		c.active_until), CONCERT_EEXPIRED);
	assert_claims_equal(&out, &c);
	assert_int_equal(verify_at(token, len, c.active_until + 1), CONCERT_EEXPIRED);
	assert_int_equal(verify_at(token, len, INT64_MAX), CONCERT_EEXPIRED);
}

static void test_malformed_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), out;
	char token[TOKEN_BUF], bad[2 * TOKEN_BUF];
	size_t len = sign(token, &c);
	size_t dot = (size_t)(strchr(token, '.') - token);

	(void)state;
	assert_int_equal(concert_token_verify(NULL, NULL, 10, SECRET, SECRET_LEN, 0, T0), CONCERT_ETOKEN);
	assert_string_equal(concert_error_last()->message, "missing token");
	assert_int_equal(verify_at("", 0, T0), CONCERT_ETOKEN);
	assert_int_equal(concert_token_verify(NULL, token, len, NULL, 0, 0, T0), CONCERT_EINVAL);
	assert_int_equal(concert_token_verify(NULL, token, len, SECRET, 0, 0, T0), CONCERT_EINVAL);
	assert_int_equal(verify_at(".", 1, T0), CONCERT_ETOKEN);

	/* No dot: the dot replaced by an alphabet char, or simply removed. */
	memcpy(bad, token, len + 1);
	bad[dot] = 'A';
	assert_int_equal(verify_at(bad, len, T0), CONCERT_ETOKEN);
	memmove(bad + dot, token + dot + 1, len - dot);
	assert_int_equal(verify_at(bad, len - 1, T0), CONCERT_ETOKEN);

	/* Two dots, and a dot before the claims. */
	snprintf(bad, sizeof(bad), "%.*s.%s", (int)dot, token, token + dot);
	assert_int_equal(verify_at(bad, strlen(bad), T0), CONCERT_ETOKEN);
	snprintf(bad, sizeof(bad), ".%s", token);
	assert_int_equal(verify_at(bad, strlen(bad), T0), CONCERT_ETOKEN);
	snprintf(bad, sizeof(bad), "%s.", token);
	assert_int_equal(verify_at(bad, strlen(bad), T0), CONCERT_ETOKEN);

	/* Padding on either part. */
	snprintf(bad, sizeof(bad), "%s=", token);
	assert_int_equal(verify_at(bad, strlen(bad), T0), CONCERT_ETOKEN);
	snprintf(bad, sizeof(bad), "%.*s=%s", (int)dot, token, token + dot);
	assert_int_equal(verify_at(bad, strlen(bad), T0), CONCERT_ETOKEN);

	/* Characters outside base64url, anywhere. */
	static const char outside[] = { '+', '/', '=', ' ', '\n', '\0', '.', '*', (char)0xff };
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t k = 0; k < sizeof(outside); k++) {
			if (pos == dot && outside[k] == '.')
				continue;
			memcpy(bad, token, len + 1);
			bad[pos] = outside[k];
			assert_int_equal(verify_at(bad, len, T0), CONCERT_ETOKEN);
		}
	}

	/* Over-long: the valid token, then anything. */
	memset(bad, 'A', sizeof(bad));
	memcpy(bad, token, len);
	assert_int_equal(verify_at(bad, CONCERT_TOKEN_MAX + 1, T0), CONCERT_ETOKEN);
	assert_int_equal(verify_at(bad, sizeof(bad), T0), CONCERT_ETOKEN);

	/* A failed verify leaves no stale claims behind. */
	memcpy(&out, &c, sizeof(out));
	assert_int_equal(concert_token_verify(&out, "x.y", 3, SECRET, SECRET_LEN, 0, T0), CONCERT_ETOKEN);
	assert_int_equal(out.token_id, 0);
}

static void test_forge_helper_is_sound(void **state)
{
	concert_token_claims out;
	char token[1024];
	size_t len = forge_claims(token, 7, -1, NULL, NULL);

	(void)state;
	/* The helper's own token is accepted, so the cases below fail on content. */
	assert_int_equal(concert_token_verify(&out, token, len, SECRET, SECRET_LEN, CONCERT, T0), 0);
	assert_int_equal(out.token_id, 123456789);
}

static void test_signed_garbage_rejected(void **state)
{
	static const struct {
		size_t count;
		int index;
		field_fn fn;
		const char *tail;
	} cases[] = {
		{ 6, -1, NULL, NULL }, { 8, -1, NULL, NULL }, { 0, -1, NULL, NULL },
		{ 7, -1, NULL, "\x01" },
		{ 7, 0, bad_format, NULL }, { 7, 5, bad_kind0, NULL }, { 7, 5, bad_kind3, NULL },
		{ 7, 1, bad_negative, NULL }, { 7, 3, bad_negative, NULL }, { 7, 6, bad_negative, NULL },
		{ 7, 1, bad_huge, NULL }, { 7, 5, bad_huge, NULL }, { 7, 4, bad_float, NULL },
		{ 7, 3, bad_nil, NULL }, { 7, 1, bad_int_as_str, NULL },
		{ 7, 2, bad_empty_user, NULL }, { 7, 2, bad_bin_user, NULL },
		{ 7, 2, bad_nul_user, NULL }, { 7, 2, bad_long_user, NULL },
		{ 7, 2, bad_nested, NULL }, { 7, 6, bad_map, NULL }, { 7, 1, bad_kind0, NULL },
	};
	/* Raw bytes; "\xdc\xff\xff" declares 65535 elements and stops. */
	static const char *const raw[] = { "hello, world", "\x97", "\xc1", "\xdc\xff\xff" };
	char token[1024];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = forge_claims(token, cases[i].count, cases[i].index, cases[i].fn, cases[i].tail);
		assert_int_equal(verify_at(token, len, T0), CONCERT_ETOKEN);
		assert_string_equal(concert_error_last()->message, "malformed token claims");
	}
	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		len = forge_bytes(token, raw[i], strlen(raw[i]));
		assert_int_equal(verify_at(token, len, T0), CONCERT_ETOKEN);
	}
}

static void test_waiting_with_deadline_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_WAITING);
	char token[TOKEN_BUF];

	(void)state;
	c.active_until = T0;
	assert_int_equal(concert_token_sign(token, sizeof(token), NULL, &c, SECRET, SECRET_LEN),
		CONCERT_EINVAL);
	c = make_claims(CONCERT_TOKEN_ACTIVE);
	c.active_until = 0;
	assert_int_equal(concert_token_sign(token, sizeof(token), NULL, &c, SECRET, SECRET_LEN),
		CONCERT_EINVAL);
}

/* The same bytes spelled with trailing bits set: a valid MAC over
 * non-canonical base64url must still be refused. */
static void test_noncanonical_base64_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF], text[TOKEN_BUF], forged[TOKEN_BUF];
	int tested = 0;

	(void)state;
	for (int ulen = 1; ulen <= 4; ulen++) {
		memset(c.user_id, 'u', (size_t)ulen);
		c.user_id[ulen] = '\0';
		sign(token, &c);
		size_t dot = (size_t)(strchr(token, '.') - token);
		if (dot % 4 == 0)
			continue;
		memcpy(text, token, dot);
		text[dot] = '\0';
		size_t v = (size_t)(strchr(alphabet, text[dot - 1]) - alphabet);
		text[dot - 1] = alphabet[v | 1];
		size_t len = forge_text(forged, text);
		assert_int_equal(verify_at(forged, len, T0), CONCERT_ETOKEN);
		strcat(text, "==");
		len = forge_text(forged, text);
		assert_int_equal(verify_at(forged, len, T0), CONCERT_ETOKEN);
		tested++;
	}
	assert_true(tested > 0);
}

/* Standard base64 ('+', '/') and white space, even under a valid MAC. */
static void test_wrong_alphabet_rejected(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF], text[TOKEN_BUF], forged[TOKEN_BUF];
	int tested = 0;

	(void)state;
	for (c.token_id = 1; c.token_id < 1000 && tested < 3; c.token_id++) {
		sign(token, &c);
		size_t dot = (size_t)(strchr(token, '.') - token);
		if (!memchr(token, '-', dot) && !memchr(token, '_', dot))
			continue;
		for (size_t i = 0; i < dot; i++)
			text[i] = token[i] == '-' ? '+' : token[i] == '_' ? '/' : token[i];
		text[dot] = '\0';
		assert_int_equal(verify_at(forged, forge_text(forged, text), T0), CONCERT_ETOKEN);
		tested++;
	}
	assert_int_equal(tested, 3);
	sign(token, &c);
	snprintf(text, sizeof(text), " %.*s", (int)(strchr(token, '.') - token), token);
	assert_int_equal(verify_at(forged, forge_text(forged, text), T0), CONCERT_ETOKEN);
	text[0] = 'A';
	text[4] = '\n';
	assert_int_equal(verify_at(forged, forge_text(forged, text), T0), CONCERT_ETOKEN);
}

static void test_sign_arguments(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE), bad;
	char token[TOKEN_BUF], small[TOKEN_BUF];
	size_t len = sign(token, &c), got = 0;

	(void)state;
	assert_int_equal(concert_token_sign(NULL, 10, NULL, &c, SECRET, SECRET_LEN), CONCERT_EINVAL);
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, NULL, SECRET, SECRET_LEN), CONCERT_EINVAL);
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &c, NULL, 5), CONCERT_EINVAL);
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &c, SECRET, 0), CONCERT_EINVAL);
	for (size_t n = 0; n <= len; n++)
		assert_int_equal(concert_token_sign(small, n, NULL, &c, SECRET, SECRET_LEN), CONCERT_EINVAL);
	assert_int_equal(concert_token_sign(small, len + 1, &got, &c, SECRET, SECRET_LEN), 0);
	assert_int_equal(got, len);
	assert_string_equal(small, token);

	bad = c; bad.kind = 3;
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &bad, SECRET, SECRET_LEN), CONCERT_EINVAL);
	bad = c; bad.token_id = 0;
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &bad, SECRET, SECRET_LEN), CONCERT_EINVAL);
	bad = c; bad.concert_id = -1;
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &bad, SECRET, SECRET_LEN), CONCERT_EINVAL);
	bad = c; bad.issued_at = -1;
	assert_int_equal(concert_token_sign(small, sizeof(small), NULL, &bad, SECRET, SECRET_LEN), CONCERT_EINVAL);
}

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_random_strings_never_verify(void **state)
{
	char s[CONCERT_TOKEN_MAX + 16];

	(void)state;
	for (int i = 0; i < 100000; i++) {
		size_t len = rng() % sizeof(s);
		int shaped = i % 2;
		for (size_t k = 0; k < len; k++)
			s[k] = (char)(shaped ? alphabet[rng() % 64] : (char)rng());
		/* Half get the right shape, so they reach the MAC check. */
		if (shaped && len > 44)
			s[len - 44] = '.';
		assert_int_equal(verify_at(s, len, T0), CONCERT_ETOKEN);
	}
}

static void *verify_in_thread(void *arg)
{
	const char *token = arg;

	for (int i = 0; i < 200; i++)
		if (verify_at(token, strlen(token), T0) != 0)
			return (void *)1;
	return NULL;
}

/* Each thread gets its own HMAC context; it must not leak when it exits. */
static void test_threads(void **state)
{
	concert_token_claims c = make_claims(CONCERT_TOKEN_ACTIVE);
	char token[TOKEN_BUF];
	pthread_t threads[4];
	void *result;

	(void)state;
	sign(token, &c);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, verify_in_thread, token), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(threads[i], &result), 0);
		assert_null(result);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_waiting),
		cmocka_unit_test(test_round_trip_active),
		cmocka_unit_test(test_user_id_limits),
		cmocka_unit_test(test_every_byte_change_rejected),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_other_secret_rejected),
		cmocka_unit_test(test_foreign_concert),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_malformed_rejected),
		cmocka_unit_test(test_forge_helper_is_sound),
		cmocka_unit_test(test_signed_garbage_rejected),
		cmocka_unit_test(test_waiting_with_deadline_rejected),
		cmocka_unit_test(test_noncanonical_base64_rejected),
		cmocka_unit_test(test_wrong_alphabet_rejected),
		cmocka_unit_test(test_sign_arguments),
		cmocka_unit_test(test_random_strings_never_verify),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
