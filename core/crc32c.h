/* SPDX-License-Identifier: MIT */
/* CRC-32C (Castagnoli), the checksum of on-disk metadata. */
#ifndef WF_CORE_CRC32C_H
#define WF_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC-32C over @len bytes at @p; start with @crc = 0. Bitwise, no
 * table and no SSE4.2 (the rxe guest's CPU lacks it): metadata is small and rare.
 */
uint32_t wf_crc32c(uint32_t crc, const void *p, size_t len);

#endif /* WF_CORE_CRC32C_H */
