/*
 * crc32c.h - CRC-32C (Castagnoli), standard initial value ~0 and final
 * inversion, so results match RFC 3720 appendix B.4.
 */
#ifndef FUSEFS_CRC32C_H
#define FUSEFS_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t bd_crc32c(const void *buf, size_t len);
/* Continue a crc: bd_crc32c(ab) == bd_crc32c_update(bd_crc32c(a), b). */
uint32_t bd_crc32c_update(uint32_t crc, const void *buf, size_t len);
/* The two implementations on the raw register, exposed for tests and benchmarks. */
uint32_t bd_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t bd_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool bd_crc32c_hw_available(void);

#endif
