#include "CCPUFeatures.h"

#if defined(__x86_64__) || defined(__i386__)
int revsci_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
int revsci_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("fma");
}
#else
int revsci_cpu_has_avx2_fma(void) { return 0; }
int revsci_cpu_has_avx512(void) { return 0; }
#endif
