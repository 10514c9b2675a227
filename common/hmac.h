/*
 * hmac.h - HMAC-SHA256 through OpenSSL's EVP_MAC, with keys derived from
 * the cluster secret per purpose, so quorum messages and RPC frames never
 * share a key.
 */
#ifndef FUSEFS_HMAC_H
#define FUSEFS_HMAC_H

#include <stddef.h>
#include <stdint.h>

#define HMAC_SHA256_BYTES 32

struct hmac_ctx {
	void *ctx; /* EVP_MAC_CTX */
	uint8_t key[HMAC_SHA256_BYTES];
};

/* key = HMAC-SHA256(secret, label); then ready for hmac_sha256(). 0 or -errno. */
int hmac_init(struct hmac_ctx *h, const uint8_t *secret, size_t secret_len, const char *label);
void hmac_free(struct hmac_ctx *h);
/* out = HMAC-SHA256(key, data).  0 or -EIO. */
int hmac_sha256(struct hmac_ctx *h, const void *data, size_t len, uint8_t out[HMAC_SHA256_BYTES]);
/* The same over the concatenation of n pieces. */
struct iovec;
int hmac_sha256_iov(struct hmac_ctx *h, const struct iovec *iov, int n,
		    uint8_t out[HMAC_SHA256_BYTES]);
/* Constant-time comparison of two tags. */
int hmac_equal(const uint8_t *a, const uint8_t *b, size_t len);

#endif
