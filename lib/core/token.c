/*
 * Signed queue tokens, format 1: "<claims>.<mac>", both base64url without
 * padding. claims is the msgpack array [1, token_id, user_id, concert_id,
 * issued_at, kind, active_until]; mac is HMAC-SHA-256(secret, "<claims>").
 *
 * Both calls run per request at the edge, so they work in fixed stack
 * buffers. The one thing kept between calls is a per-thread HMAC context:
 * OpenSSL 3 has no stack-allocated MAC context, and fetching one per call
 * (what HMAC() does) costs about three times the MAC itself. OpenSSL 3.0
 * still mallocs inside EVP_MAC_init/final (it duplicates digest contexts);
 * nothing here does.
 */
#include <pthread.h>
#include <stdalign.h>
#include <string.h>

#include <msgpack.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/internal.h"
#include "concert/token.h"

#define TOKEN_FORMAT 1
#define CLAIM_COUNT 7
#define MAC_SIZE 32
/* Base64 length of n bytes without padding, and the bytes behind n chars. */
#define B64_LEN(n) (((n) * 4 + 2) / 3)
#define B64_BYTES(n) ((n) * 3 / 4)
#define MAC_B64_LEN B64_LEN(MAC_SIZE)
/* The longest claims part a token can carry, and its decoded size. */
#define CLAIMS_B64_MAX (CONCERT_TOKEN_MAX - 1 - MAC_B64_LEN)
#define CLAIMS_MAX 160
/* EVP_EncodeBlock writes whole padded quads plus a NUL. */
#define B64_BUF(n) (((n) + 2) / 3 * 4 + 1)

_Static_assert(B64_BYTES(CLAIMS_B64_MAX + 3) <= CLAIMS_MAX,
	"a maximal claims part must decode into the claims buffer");
_Static_assert(B64_LEN(1 + 1 + 9 + 2 + CONCERT_USER_ID_MAX + 9 + 9 + 1 + 9) <= CLAIMS_B64_MAX,
	"the largest claims sign can pack must fit in a token");

/* --- HMAC ------------------------------------------------------------- */

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_key;
static int mac_key_ready;
static _Thread_local EVP_MAC_CTX *thread_mac;
/* The key the thread's context was last keyed with: re-keying costs more
 * than the MAC of a token, and a process almost always has one secret. */
#define CACHED_KEY_MAX 64
static _Thread_local unsigned char thread_key[CACHED_KEY_MAX];
static _Thread_local size_t thread_key_len;

static void mac_context_free(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(thread_key, sizeof(thread_key));
	thread_key_len = 0;
}

/* The key only exists so that a thread's context is freed when it exits. */
static void mac_key_create(void)
{
	mac_key_ready = pthread_key_create(&mac_key, mac_context_free) == 0;
}

static EVP_MAC_CTX *mac_context(void)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;

	if (thread_mac)
		return thread_mac;
	pthread_once(&mac_once, mac_key_create);
	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);  /* the context holds its own reference */
	if (!ctx || !mac_key_ready || !EVP_MAC_CTX_set_params(ctx, params)
			|| pthread_setspecific(mac_key, ctx) != 0) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	thread_mac = ctx;
	return ctx;
}

static int mac_compute(unsigned char mac[MAC_SIZE], const unsigned char *secret,
	size_t secret_len, const char *data, size_t len)
{
	EVP_MAC_CTX *ctx = mac_context();
	size_t mac_len = 0;
	int same_key = thread_key_len == secret_len && memcmp(thread_key, secret, secret_len) == 0;

	if (!ctx || !EVP_MAC_init(ctx, same_key ? NULL : secret, same_key ? 0 : secret_len, NULL)) {
		thread_key_len = 0;
		return 0;
	}
	if (!same_key) {
		thread_key_len = secret_len <= CACHED_KEY_MAX ? secret_len : 0;
		memcpy(thread_key, secret, thread_key_len);
	}
	return EVP_MAC_update(ctx, (const unsigned char *)data, len)
		&& EVP_MAC_final(ctx, mac, &mac_len, MAC_SIZE) && mac_len == MAC_SIZE;
}

/* --- base64url -------------------------------------------------------- */

/*
 * Encodes n bytes into dst (room for B64_BUF(n)); returns the unpadded
 * length. The URL alphabet is mapped with selects, not branches: '+' and
 * '/' come at random, and the mispredicted branches cost ~40 ns a token.
 */
static size_t b64url_encode(char *dst, const unsigned char *src, size_t n)
{
	size_t len = (size_t)EVP_EncodeBlock((unsigned char *)dst, src, (int)n);

	while (len > 0 && dst[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++) {
		char c = dst[i];
		dst[i] = c == '+' ? '-' : c == '/' ? '_' : c;
	}
	dst[len] = '\0';
	return len;
}

/*
 * Decodes exactly the canonical unpadded base64url text src[0..len) into
 * dst; returns the byte count or -1. EVP_DecodeBlock skips white space and
 * cannot tell padding from data, so the alphabet is checked here and the
 * input is padded with 'A' (zero bits): whatever it decodes beyond the real
 * bytes must then be zero, which rejects set trailing bits.
 */
static int b64url_decode(unsigned char *dst, size_t dst_size, const char *src, size_t len)
{
	unsigned char text[CLAIMS_B64_MAX + 3];
	unsigned char bytes[B64_BYTES(sizeof(text))];
	size_t n = B64_BYTES(len), padded = (len + 3) / 4 * 4;

	if (len == 0 || len % 4 == 1 || padded > sizeof(text) || n > dst_size)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return -1;
		text[i] = (unsigned char)c;
	}
	memset(text + len, 'A', padded - len);
	if (EVP_DecodeBlock(bytes, text, (int)padded) != (int)B64_BYTES(padded))
		return -1;
	for (size_t i = n; i < B64_BYTES(padded); i++)
		if (bytes[i])
			return -1;
	memcpy(dst, bytes, n);
	return (int)n;
}

/* --- claims ----------------------------------------------------------- */

/* Length of the NUL-terminated user id, or 0 when empty or unterminated. */
static size_t user_id_length(const concert_token_claims *claims)
{
	const char *end = memchr(claims->user_id, '\0', sizeof(claims->user_id));
	return end ? (size_t)(end - claims->user_id) : 0;
}

/* Sign and verify share this, so a verified token is one sign could make. */
static int claims_valid(const concert_token_claims *c)
{
	if (c->token_id <= 0 || c->concert_id <= 0 || c->issued_at < 0 || user_id_length(c) == 0)
		return 0;
	if (c->kind == CONCERT_TOKEN_WAITING)
		return c->active_until == 0;
	return c->kind == CONCERT_TOKEN_ACTIVE && c->active_until > 0;
}

typedef struct pack_buffer {
	unsigned char data[CLAIMS_MAX];
	size_t len;
} pack_buffer;

static int pack_write(void *ctx, const char *buf, size_t len)
{
	pack_buffer *b = ctx;

	if (len > sizeof(b->data) - b->len)
		return -1;
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

static int claims_pack(pack_buffer *b, const concert_token_claims *c)
{
	size_t user_len = user_id_length(c);
	msgpack_packer pk;

	b->len = 0;
	msgpack_packer_init(&pk, b, pack_write);
	return msgpack_pack_array(&pk, CLAIM_COUNT) == 0
		&& msgpack_pack_int(&pk, TOKEN_FORMAT) == 0
		&& msgpack_pack_int64(&pk, c->token_id) == 0
		&& msgpack_pack_str(&pk, user_len) == 0
		&& msgpack_pack_str_body(&pk, c->user_id, user_len) == 0
		&& msgpack_pack_int64(&pk, c->concert_id) == 0
		&& msgpack_pack_int64(&pk, c->issued_at) == 0
		&& msgpack_pack_int32(&pk, c->kind) == 0
		&& msgpack_pack_int64(&pk, c->active_until) == 0;
}

/* Every number in a valid token is non-negative, so msgpack-c unpacks it
 * as a positive integer; anything else is malformed. */
static int object_int(const msgpack_object *o, int64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX)
		return 0;
	*out = (int64_t)o->via.u64;
	return 1;
}

static int claims_from_array(concert_token_claims *c, const msgpack_object *root)
{
	const msgpack_object *f = root->via.array.ptr;
	int64_t format, kind;

	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != CLAIM_COUNT)
		return 0;
	if (!object_int(&f[0], &format) || format != TOKEN_FORMAT
			|| !object_int(&f[1], &c->token_id) || f[2].type != MSGPACK_OBJECT_STR
			|| !object_int(&f[3], &c->concert_id) || !object_int(&f[4], &c->issued_at)
			|| !object_int(&f[5], &kind) || kind > INT32_MAX
			|| !object_int(&f[6], &c->active_until))
		return 0;
	/* A NUL inside would make the C string name another user. */
	if (f[2].via.str.size > CONCERT_USER_ID_MAX
			|| memchr(f[2].via.str.ptr, '\0', f[2].via.str.size))
		return 0;
	memcpy(c->user_id, f[2].via.str.ptr, f[2].via.str.size);
	c->user_id[f[2].via.str.size] = '\0';
	c->kind = (int32_t)kind;
	return claims_valid(c);
}

/*
 * msgpack-c has no zone over caller memory, but the zone's fast path is
 * inline in zone.h: it only bumps chunk_list.ptr and .free. Seeding those
 * with a stack arena holds the 7-object array, so a well-formed token never
 * reaches the heap. Only a payload signed with our secret yet nesting
 * containers could make msgpack-c add a heap chunk; those chunks link from
 * chunk_list.head and msgpack_zone_destroy frees them.
 */
static int claims_unpack(concert_token_claims *c, const unsigned char *data, size_t len)
{
	alignas(max_align_t) char arena[CLAIM_COUNT * sizeof(msgpack_object) + 64];
	msgpack_zone zone;
	msgpack_object root;
	size_t offset = 0;
	int ok;

	memset(&zone, 0, sizeof(zone));
	zone.chunk_list.ptr = arena;
	zone.chunk_list.free = sizeof(arena);
	/* SUCCESS, unlike EXTRA_BYTES, means nothing trails the array. */
	ok = msgpack_unpack((const char *)data, len, &offset, &zone, &root) == MSGPACK_UNPACK_SUCCESS
		&& claims_from_array(c, &root);
	if (zone.chunk_list.head)
		msgpack_zone_destroy(&zone);
	return ok;
}

/* --- API -------------------------------------------------------------- */

int concert_token_sign(char *out, size_t out_size, size_t *out_len,
	const concert_token_claims *claims, const unsigned char *secret, size_t secret_len)
{
	char token[B64_BUF(CLAIMS_MAX) + 1 + B64_BUF(MAC_SIZE)];
	unsigned char mac[MAC_SIZE];
	pack_buffer packed;
	size_t len;

	if (!out || !claims || !secret || secret_len == 0)
		return concert_sys_error(CONCERT_EINVAL, "token sign needs out, claims and a secret");
	if (!claims_valid(claims))
		return concert_sys_error(CONCERT_EINVAL, "invalid token claims");
	if (!claims_pack(&packed, claims))
		return concert_sys_error(CONCERT_EINTERNAL, "token claims do not fit");
	len = b64url_encode(token, packed.data, packed.len);
	if (!mac_compute(mac, secret, secret_len, token, len))
		return concert_sys_error(CONCERT_ENOMEM, "cannot compute the token HMAC");
	token[len++] = '.';
	len += b64url_encode(token + len, mac, sizeof(mac));
	if (out_size < len + 1)
		return concert_sys_error(CONCERT_EINVAL, "token buffer too small");
	memcpy(out, token, len + 1);
	if (out_len)
		*out_len = len;
	concert_error_clear();
	return 0;
}

int concert_token_verify(concert_token_claims *out, const char *token,
	size_t token_len, const unsigned char *secret, size_t secret_len,
	int64_t concert_id, concert_time now)
{
	char expected[B64_BUF(MAC_SIZE)];
	unsigned char mac[MAC_SIZE], packed[CLAIMS_MAX];
	concert_token_claims claims;
	const char *dot;
	size_t claims_len;
	int packed_len;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!secret || secret_len == 0)
		return concert_sys_error(CONCERT_EINVAL, "token verify needs a secret");
	if (!token || token_len == 0)
		return concert_sys_error(CONCERT_ETOKEN, "missing token");
	if (token_len > CONCERT_TOKEN_MAX)
		return concert_sys_error(CONCERT_ETOKEN, "token too long");
	/* The MAC part has a fixed length, so the one dot has a fixed place;
	 * a dot anywhere else fails the alphabet or the MAC check below. */
	dot = memchr(token, '.', token_len);
	if (!dot || dot == token || token_len - (size_t)(dot - token) - 1 != MAC_B64_LEN)
		return concert_sys_error(CONCERT_ETOKEN, "malformed token");
	claims_len = (size_t)(dot - token);
	if (!mac_compute(mac, secret, secret_len, token, claims_len))
		return concert_sys_error(CONCERT_ENOMEM, "cannot compute the token HMAC");
	/* Comparing encodings also refuses a non-canonical MAC part. */
	b64url_encode(expected, mac, sizeof(mac));
	if (CRYPTO_memcmp(expected, dot + 1, MAC_B64_LEN) != 0)
		return concert_sys_error(CONCERT_ETOKEN, "token signature mismatch");
	memset(&claims, 0, sizeof(claims));
	packed_len = b64url_decode(packed, sizeof(packed), token, claims_len);
	if (packed_len < 0 || !claims_unpack(&claims, packed, (size_t)packed_len))
		return concert_sys_error(CONCERT_ETOKEN, "malformed token claims");
	if (out)
		*out = claims;
	if (concert_id != 0 && claims.concert_id != concert_id)
		return concert_sys_error(CONCERT_ETOKEN, "token for another concert");
	if (claims.kind == CONCERT_TOKEN_WAITING)
		return concert_sys_error(CONCERT_ENOT_ACTIVE, "token still waiting in the queue");
	if (claims.active_until <= now)
		return concert_sys_error(CONCERT_EEXPIRED, "token expired");
	concert_error_clear();
	return 0;
}
