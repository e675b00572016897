/* SHA-256, HMAC-SHA256 and HKDF-SHA256 for the C client (see itp_crypto.c). */
#ifndef ITP_CRYPTO_H
#define ITP_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct itp_sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t fill; };

void itp_sha256_init(struct itp_sha256 *s);
void itp_sha256_update(struct itp_sha256 *s, const uint8_t *p, size_t n);
void itp_sha256_final(struct itp_sha256 *s, uint8_t out[32]);
/* HMAC-SHA256(key, a || b) */
void itp_hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen,
                     const uint8_t *b, size_t blen, uint8_t out[32]);
/* info_len at most 255 */
void itp_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                     const uint8_t *info, size_t info_len, uint8_t *out, size_t len);
int itp_tag_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
