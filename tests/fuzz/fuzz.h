/*
 * What every libFuzzer target in tests/fuzz defines: libFuzzer's entry
 * point, called once per input with DATA (SIZE bytes, not kept). It
 * returns 0; a crash, a sanitizer report or an abort() is a finding.
 */
#ifndef ZOS_FUZZ_H
#define ZOS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* ZOS_FUZZ_H */
