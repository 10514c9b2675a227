/*
 * hmac.c - HMAC-SHA256 via EVP_MAC.  Each call re-initializes the context
 * with the key, which for HMAC is cheap and keeps no state between
 * messages.
 */
#include "common/hmac.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>
#include <sys/uio.h>

static int mac_run_iov(EVP_MAC_CTX *ctx, const uint8_t *key, size_t key_len,
		       const struct iovec *iov, int n, uint8_t out[HMAC_SHA256_BYTES])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t out_len = 0;

	if (EVP_MAC_init(ctx, key, key_len, params) != 1)
		return -EIO;
	for (int i = 0; i < n; i++)
		if (iov[i].iov_len > 0 && EVP_MAC_update(ctx, iov[i].iov_base, iov[i].iov_len) != 1)
			return -EIO;
	if (EVP_MAC_final(ctx, out, &out_len, HMAC_SHA256_BYTES) != 1 || out_len != HMAC_SHA256_BYTES)
		return -EIO;
	return 0;
}

static int mac_run(EVP_MAC_CTX *ctx, const uint8_t *key, size_t key_len, const void *data,
		   size_t len, uint8_t out[HMAC_SHA256_BYTES])
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t out_len = 0;

	if (EVP_MAC_init(ctx, key, key_len, params) != 1 ||
	    EVP_MAC_update(ctx, data, len) != 1 ||
	    EVP_MAC_final(ctx, out, &out_len, HMAC_SHA256_BYTES) != 1 ||
	    out_len != HMAC_SHA256_BYTES)
		return -EIO;
	return 0;
}

int hmac_init(struct hmac_ctx *h, const uint8_t *secret, size_t secret_len, const char *label)
{
	EVP_MAC *mac;
	int ret;

	memset(h, 0, sizeof(*h));
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		return -ENOPROTOOPT;
	h->ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context holds its own reference */
	if (h->ctx == NULL)
		return -ENOMEM;
	ret = mac_run(h->ctx, secret, secret_len, label, strlen(label), h->key);
	if (ret < 0)
		hmac_free(h);
	return ret;
}

void hmac_free(struct hmac_ctx *h)
{
	if (h->ctx != NULL)
		EVP_MAC_CTX_free(h->ctx);
	OPENSSL_cleanse(h->key, sizeof(h->key));
	h->ctx = NULL;
}

int hmac_sha256(struct hmac_ctx *h, const void *data, size_t len, uint8_t out[HMAC_SHA256_BYTES])
{
	return mac_run(h->ctx, h->key, sizeof(h->key), data, len, out);
}

int hmac_sha256_iov(struct hmac_ctx *h, const struct iovec *iov, int n,
		    uint8_t out[HMAC_SHA256_BYTES])
{
	return mac_run_iov(h->ctx, h->key, sizeof(h->key), iov, n, out);
}

int hmac_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
