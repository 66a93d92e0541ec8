import CCPUFeatures
import Foundation
import SCICore
import KernelCore
import KernelsAVX2
import KernelsAVX512
import KernelsGeneric

/// The instruction set the kernels run with, chosen once per process from the CPU's features.
/// `REVSCI_ISA=generic|avx2|avx512` overrides the choice (for tests and comparisons); asking
/// for one the CPU lacks falls back to the best available one.
public enum KernelSet: String, Sendable, CaseIterable {
    case avx512
    case avx2
    case generic

    public static let supported: [KernelSet] = {
        var sets: [KernelSet] = []
        if revsci_cpu_has_avx512() != 0 { sets.append(.avx512) }
        if revsci_cpu_has_avx2_fma() != 0 { sets.append(.avx2) }
        sets.append(.generic)
        return sets
    }()

    public static let active: KernelSet = {
        if let name = ProcessInfo.processInfo.environment["REVSCI_ISA"], let wanted = KernelSet(rawValue: name),
           supported.contains(wanted) {
            return wanted
        }
        return supported[0]
    }()

    /// Work items per core for row-parallel kernels: more than one lets Dispatch rebalance when
    /// one core is slowed (shared machines). `REVSCI_CHUNKS_PER_CORE` overrides.
    static let chunksPerCore: Int = {
        ProcessInfo.processInfo.environment["REVSCI_CHUNKS_PER_CORE"].flatMap(Int.init).map { max(1, min($0, 64)) } ?? 4
    }()

    public var vectorWidth: Int {
        switch self {
        case .avx512: return AVX512Kernels.vectorWidth
        case .avx2: return AVX2Kernels.vectorWidth
        case .generic: return GenericKernels.vectorWidth
        }
    }

    func tvChambolleFrame(layout: TVFrameLayout, image: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                          p0: UnsafeMutablePointer<Float>, p1: UnsafeMutablePointer<Float>,
                          validMask: UnsafePointer<Float>, weight: Float, maxIterations: Int, eps: Float) -> Int {
        switch self {
        case .avx512:
            return AVX512Kernels.tvChambolleFrame(layout: layout, image: image, out: out, p0: p0, p1: p1, validMask: validMask,
                                                  weight: weight, maxIterations: maxIterations, eps: eps)
        case .avx2:
            return AVX2Kernels.tvChambolleFrame(layout: layout, image: image, out: out, p0: p0, p1: p1, validMask: validMask,
                                                weight: weight, maxIterations: maxIterations, eps: eps)
        case .generic:
            return GenericKernels.tvChambolleFrame(layout: layout, image: image, out: out, p0: p0, p1: p1, validMask: validMask,
                                                   weight: weight, maxIterations: maxIterations, eps: eps)
        }
    }

    func gapProjectionRows(layout: TVFrameLayout, frames: Int, rows: Range<Int>, y: UnsafePointer<Float>,
                           y1: UnsafeMutablePointer<Float>, phiSum: UnsafePointer<Float>, phi: UnsafePointer<Float>,
                           x: UnsafeMutablePointer<Float>, accelerate: Bool) {
        switch self {
        case .avx512:
            AVX512Kernels.gapProjectionRows(layout: layout, frames: frames, rows: rows, y: y, y1: y1, phiSum: phiSum,
                                            phi: phi, x: x, accelerate: accelerate)
        case .avx2:
            AVX2Kernels.gapProjectionRows(layout: layout, frames: frames, rows: rows, y: y, y1: y1, phiSum: phiSum,
                                          phi: phi, x: x, accelerate: accelerate)
        case .generic:
            GenericKernels.gapProjectionRows(layout: layout, frames: frames, rows: rows, y: y, y1: y1, phiSum: phiSum,
                                             phi: phi, x: x, accelerate: accelerate)
        }
    }

    /// Runs a convolution on all cores, splitting its output rows. With `inPlace` (a 1x1x1,
    /// stride-1 layer whose output overwrites its input), each row is computed into a per-thread
    /// scratch row and copied back, since a row's outputs depend on that row's inputs alone.
    public func conv(_ call: ConvCall, inPlace: Bool = false) {
        if call.usesWinograd && Self.winogradEnabled && !inPlace { return winogradConv(call) }
        let rows = call.rowCount
        let chunks = min(Parallel.coreCount * Self.chunksPerCore, rows)
        Parallel.forEach(chunks) { k in
            let range = (k * rows / chunks) ..< ((k + 1) * rows / chunks)
            guard inPlace else { return convRows(call, rows: range) }
            let width = call.outputSize.w, pixelStride = call.outputStrides.w
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: width * pixelStride)
            defer { scratch.deallocate() }
            for row in range {
                let t = row % call.outputSize.t, h = row / call.outputSize.t
                var one = call
                one.input = call.input + t * call.inputStrides.t + h * call.inputStrides.h
                one.output = scratch
                one.outputSize = (1, 1, width)
                convRows(one, rows: 0 ..< 1)
                let dst = call.output + t * call.outputStrides.t + h * call.outputStrides.h
                for w in 0 ..< width {
                    (dst + w * pixelStride).update(from: scratch + w * pixelStride, count: call.outputChannels)
                }
            }
        }
    }

    /// Winograd for eligible 3x3x3 layers. `REVSCI_WINOGRAD=0` turns it off (every layer then
    /// runs the direct kernel), for comparisons.
    public static let winogradEnabled: Bool = ProcessInfo.processInfo.environment["REVSCI_WINOGRAD"] != "0"

    /// Winograd F(4x4, 3x3), forward and weight gradient, where the output height and width are
    /// multiples of 4 (F(2x2) otherwise). `REVSCI_WINOGRAD4=0` keeps every Winograd layer on
    /// F(2x2), for comparisons.
    public static let winograd4Enabled: Bool = ProcessInfo.processInfo.environment["REVSCI_WINOGRAD4"] != "0"

    /// A Winograd forward call: F(4x4) with weights transformed for this call, or F(2x2) with the
    /// layer's stored ones.
    func winogradConv(_ call: ConvCall) {
        let f4 = Self.winograd4Enabled && Winograd4.isEligible(call)
        let cached = f4 ? call.winograd4Weights : nil
        let transformed = f4 && cached == nil ? UnsafeMutablePointer<Float>.allocate(capacity: Winograd4.weightCount(call)) : nil
        defer { transformed?.deallocate() }
        if let transformed { Winograd4.transformWeights(call, into: transformed) }
        let weights = cached ?? transformed.map { UnsafePointer($0) } ?? call.winogradWeights!
        let tiling: any WinogradTiling.Type = f4 ? Winograd4.self : Winograd.self
        let items = tiling.itemCount(outputSize: call.outputSize, blockTiles: blockPixels)
        let chunks = min(Parallel.coreCount * Self.chunksPerCore, items)
        let scratchCount = tiling.scratchCount(inputChannels: call.inputChannels, outputSize: call.outputSize)
        Parallel.forEach(chunks) { k in
            let range = (k * items / chunks) ..< ((k + 1) * items / chunks)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            switch (self, f4) {
            case (.avx512, false): AVX512Kernels.winogradConvItems(call, items: range, scratch: scratch)
            case (.avx2, false): AVX2Kernels.winogradConvItems(call, items: range, scratch: scratch)
            case (.generic, false): GenericKernels.winogradConvItems(call, items: range, scratch: scratch)
            case (.avx512, true): AVX512Kernels.winograd4ConvItems(call, weights: weights, items: range, scratch: scratch)
            case (.avx2, true): AVX2Kernels.winograd4ConvItems(call, weights: weights, items: range, scratch: scratch)
            case (.generic, true): GenericKernels.winograd4ConvItems(call, weights: weights, items: range, scratch: scratch)
            }
        }
    }

    /// The weight gradient of a Winograd-eligible layer: threads sum their items' products into
    /// private accumulators, merged, then transformed back to 3x3x3 taps.
    func winogradWeightGradient(_ call: WeightGradientCall, into gradient: UnsafeMutablePointer<Float>) {
        let f4 = Self.winograd4Enabled && Winograd4.isEligible(call)
        let tiling: any WinogradTiling.Type = f4 ? Winograd4.self : Winograd.self
        let items = tiling.itemCount(outputSize: call.outputSize, blockTiles: blockPixels)
        let chunks = min(Parallel.coreCount, items)
        let n = tiling.weightGradientAccumulatorCount(call), scratchCount = tiling.weightGradientScratchCount(call)
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * n)
        partial.initialize(repeating: 0, count: chunks * n)
        defer { partial.deallocate() }
        Parallel.forEach(chunks) { k in
            let range = (k * items / chunks) ..< ((k + 1) * items / chunks)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchCount)
            defer { scratch.deallocate() }
            let acc = partial + k * n
            switch (self, f4) {
            case (.avx512, false): AVX512Kernels.winogradWeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            case (.avx2, false): AVX2Kernels.winogradWeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            case (.generic, false): GenericKernels.winogradWeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            case (.avx512, true): AVX512Kernels.winograd4WeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            case (.avx2, true): AVX2Kernels.winograd4WeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            case (.generic, true): GenericKernels.winograd4WeightGradientItems(call, items: range, scratch: scratch, accumulator: acc)
            }
        }
        // Merge and transform on every core too: serial, these took about 5% of a training step.
        Self.mergePartials(partial, chunks: chunks, count: n)
        let cin = call.inputChannels, parts = min(cin, Parallel.coreCount * 4)
        Parallel.forEach(parts) { j in
            tiling.finishWeightGradient(call, accumulator: partial, into: gradient, channels: (j * cin / parts) ..< ((j + 1) * cin / parts))
        }
    }

    /// Adds threads' private accumulators 1..<chunks (each `count` floats, back to back) into
    /// the first, element ranges split across cores; each element sums in thread order.
    static func mergePartials(_ partial: UnsafeMutablePointer<Float>, chunks: Int, count n: Int) {
        guard chunks > 1 else { return }
        let parts = min(n, Parallel.coreCount * 4)
        Parallel.forEach(parts) { j in
            for k in 1 ..< chunks { for i in (j * n / parts) ..< ((j + 1) * n / parts) { partial[i] += partial[k * n + i] } }
        }
    }

    /// Pixels (or Winograd tiles) per register block of this instruction set's kernels.
    var blockPixels: Int {
        switch self {
        case .avx512: return AVX512Kernels.blockPixels
        case .avx2: return AVX2Kernels.blockPixels
        case .generic: return GenericKernels.blockPixels
        }
    }

    func convRows(_ call: ConvCall, rows: Range<Int>) {
        switch self {
        case .avx512: AVX512Kernels.convRows(call, rows: rows)
        case .avx2: AVX2Kernels.convRows(call, rows: rows)
        case .generic: GenericKernels.convRows(call, rows: rows)
        }
    }

    /// Adds the weight gradient of `call` to `gradient` ([out][in][kT][kH][kW], PyTorch order).
    /// Threads sum their rows into private accumulators, merged at the end.
    public func convWeightGradient(_ call: WeightGradientCall, into gradient: UnsafeMutablePointer<Float>) {
        if Self.winogradEnabled && Winograd.isEligible(call) { return winogradWeightGradient(call, into: gradient) }
        let rows = call.rowCount
        let chunks = min(Parallel.coreCount, rows)
        let n = call.accumulatorCount
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * n)
        partial.initialize(repeating: 0, count: chunks * n)
        defer { partial.deallocate() }
        Parallel.forEach(chunks) { k in
            let range = (k * rows / chunks) ..< ((k + 1) * rows / chunks)
            switch self {
            case .avx512: AVX512Kernels.convWeightGradientRows(call, rows: range, acc: partial + k * n)
            case .avx2: AVX2Kernels.convWeightGradientRows(call, rows: range, acc: partial + k * n)
            case .generic: GenericKernels.convWeightGradientRows(call, rows: range, acc: partial + k * n)
            }
        }
        Self.mergePartials(partial, chunks: chunks, count: n)
        // [tap][c][o (padded)] -> [o][c][tap]
        let taps = call.taps, cin = call.inputChannels, width = call.outputBlocks * 16
        for o in 0 ..< call.outputChannels {
            for c in 0 ..< cin {
                for tap in 0 ..< taps { gradient[(o * cin + c) * taps + tap] += partial[(tap * cin + c) * width + o] }
            }
        }
    }
}
