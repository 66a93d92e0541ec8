import CCPUFeatures
import Foundation
import SCICore
import KernelCore
import KernelsAVX2
import KernelsAVX512

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

    public var vectorWidth: Int {
        switch self {
        case .avx512: return AVX512Kernels.vectorWidth
        case .avx2: return AVX2Kernels.vectorWidth
        case .generic: return 4
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
            return KernelCore.tvChambolleFrame(SIMD4<Float>.self, layout: layout, image: image, out: out, p0: p0, p1: p1,
                                               validMask: validMask, weight: weight, maxIterations: maxIterations, eps: eps)
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
            KernelCore.gapProjectionRows(SIMD4<Float>.self, layout: layout, frames: frames, rows: rows, y: y, y1: y1,
                                         phiSum: phiSum, phi: phi, x: x, accelerate: accelerate)
        }
    }

    /// Runs a convolution on all cores, splitting its output rows.
    public func conv(_ call: ConvCall) {
        let rows = call.rowCount
        let chunks = min(Parallel.coreCount, rows)
        Parallel.forEach(chunks) { k in
            let range = (k * rows / chunks) ..< ((k + 1) * rows / chunks)
            switch self {
            case .avx512: AVX512Kernels.convRows(call, rows: range)
            case .avx2: AVX2Kernels.convRows(call, rows: range)
            case .generic: KernelCore.convRows(SIMD16<Float>.self, pixels: InlineArray<2, Int>.self, call, rows: range)
            }
        }
    }
}
