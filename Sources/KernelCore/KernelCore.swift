// KernelCore
