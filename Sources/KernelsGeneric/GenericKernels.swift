import KernelCore

/// KernelCore's generic kernels specialised for the baseline instruction set (SSE2 on x86_64,
/// NEON on arm64): the path for CPUs without AVX2/FMA. Compiled with -Ounchecked even in debug builds.
public enum GenericKernels {
    public static let vectorWidth = 4
    /// Pixels (direct) or 2x2 tiles (Winograd) per register block.
    public typealias Block = InlineArray<2, Int>
    public static var blockPixels: Int { Block.count }

    public static func tvChambolleFrame(
        layout: TVFrameLayout, image: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
        p0: UnsafeMutablePointer<Float>, p1: UnsafeMutablePointer<Float>, validMask: UnsafePointer<Float>,
        weight: Float, maxIterations: Int, eps: Float
    ) -> Int {
        KernelCore.tvChambolleFrame(SIMD4<Float>.self, layout: layout, image: image, out: out, p0: p0, p1: p1,
                                    validMask: validMask, weight: weight, maxIterations: maxIterations, eps: eps)
    }

    public static func gapProjectionRows(
        layout: TVFrameLayout, frames: Int, rows: Range<Int>, y: UnsafePointer<Float>, y1: UnsafeMutablePointer<Float>,
        phiSum: UnsafePointer<Float>, phi: UnsafePointer<Float>, x: UnsafeMutablePointer<Float>, accelerate: Bool
    ) {
        KernelCore.gapProjectionRows(SIMD4<Float>.self, layout: layout, frames: frames, rows: rows, y: y, y1: y1,
                                     phiSum: phiSum, phi: phi, x: x, accelerate: accelerate)
    }

    /// Convolution rows with 2-pixel x 16-channel register blocks.
    public static func convRows(_ call: ConvCall, rows: Range<Int>) {
        KernelCore.convRows(SIMD16<Float>.self, pixels: Block.self, call, rows: rows)
    }

    /// Winograd F(2x2, 3x3) work items with 2-tile x 16-channel register blocks.
    public static func winogradConvItems(_ call: ConvCall, items: Range<Int>, scratch: UnsafeMutablePointer<Float>) {
        KernelCore.winogradConvItems(Winograd.self, SIMD16<Float>.self, tiles: Block.self, call, weights: call.winogradWeights!,
                                     items: items, scratch: scratch)
    }

    /// Winograd F(4x4, 3x3) work items (Block-count 4x4 tiles x 16 channels per register block).
    public static func winograd4ConvItems(_ call: ConvCall, weights: UnsafePointer<Float>, items: Range<Int>,
                                          scratch: UnsafeMutablePointer<Float>) {
        KernelCore.winogradConvItems(Winograd4.self, SIMD16<Float>.self, tiles: Block.self, call, weights: weights, items: items, scratch: scratch)
    }

    /// Winograd weight-gradient work items, Block-count input channels x 16 outputs per register block.
    public static func winogradWeightGradientItems(_ call: WeightGradientCall, items: Range<Int>, scratch: UnsafeMutablePointer<Float>,
                                                   accumulator: UnsafeMutablePointer<Float>) {
        KernelCore.winogradWeightGradientItems(Winograd.self, SIMD16<Float>.self, channels: Block.self, call, items: items,
                                               scratch: scratch, accumulator: accumulator)
    }

    /// Winograd F(4x4) weight-gradient work items, Block-count input channels x 16 outputs per register block.
    public static func winograd4WeightGradientItems(_ call: WeightGradientCall, items: Range<Int>, scratch: UnsafeMutablePointer<Float>,
                                                    accumulator: UnsafeMutablePointer<Float>) {
        KernelCore.winogradWeightGradientItems(Winograd4.self, SIMD16<Float>.self, channels: Block.self, call, items: items,
                                               scratch: scratch, accumulator: accumulator)
    }

    /// Weight-gradient rows (16-lane output blocks).
    public static func convWeightGradientRows(_ call: WeightGradientCall, rows: Range<Int>, acc: UnsafeMutablePointer<Float>) {
        KernelCore.convWeightGradientRows(SIMD16<Float>.self, call, rows: rows, acc: acc)
    }
}
