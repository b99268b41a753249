//  zm_crc - CRC-32C (Castagnoli), the checksum of the replica log and
//  snapshot records: table-driven, no allocation, any alignment.
#ifndef ZM_CRC_H_INCLUDED
#define ZM_CRC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Continues crc over size bytes of data; start a new checksum with crc 0.
//  zm_crc32c(0, "123456789", 9) is 0xE3069283, the standard check value.
uint32_t zm_crc32c(uint32_t crc, const void *data, size_t size);

#endif
