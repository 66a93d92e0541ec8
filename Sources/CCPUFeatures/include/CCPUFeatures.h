#ifndef CCPUFEATURES_H
#define CCPUFEATURES_H
/// 1 when the running CPU (and OS) can execute AVX2+FMA code, else 0.
int revsci_cpu_has_avx2_fma(void);
/// 1 when the running CPU (and OS) can execute AVX-512 F/BW/DQ/VL code, else 0.
int revsci_cpu_has_avx512(void);
#endif
