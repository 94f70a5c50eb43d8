/* SPDX-License-Identifier: MIT */
#include "core/crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82f63b78u

uint32_t wf_crc32c(uint32_t crc, const void *p, size_t len)
{
	const uint8_t *b = p;

	crc = ~crc;
	while (len--) {
		crc ^= *b++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (CRC32C_POLY_REFLECTED & -(crc & 1));
	}
	return ~crc;
}
