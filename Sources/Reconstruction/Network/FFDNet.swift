import Foundation
import Formats
import KernelCore
import SCICore

/// FFDNet (Zhang et al. 2018), the image denoiser of PnP-FFDNet (REFERENCE.md section 9): the
/// frame at half resolution (each 2x2 cell's four pixels as four channels) with a noise-level
/// map, 3x3 convolutions with ReLU (BatchNorm folded into them at load time), and the predicted
/// noise placed back at full resolution and subtracted.
///
/// Runs on the RevSCI engine's kernels as 3-D layers over one frame at a time: the 64 -> 64
/// layers are 3x3x3 convolutions whose outer time taps are zero, and with a single frame those
/// taps read the activation's zero padding and are skipped, so Winograd F(4x4) does exactly the
/// 2-D work. The first layer (5 or 15 input channels) runs as a direct 1x3x3 convolution.
public final class FFDNet: @unchecked Sendable {
    /// Colour channels: 1 (grayscale, `net_gray.pth`) or 3 (RGB, `net_rgb.pth`).
    public let colors: Int
    /// Features per hidden layer (64 gray, 96 RGB).
    public let features: Int
    let layers: [ConvLayer]

    /// Builds the network from a state dict (`module.` prefixes already removed, as
    /// `WeightsFile` does): `intermediate_dncnn.itermediate_dncnn.{k}.weight` convolutions,
    /// `{k}.{weight,bias,running_mean,running_var}` BatchNorms after every hidden one.
    public init(stateDict: [String: NumericArray]) throws {
        let prefix = "intermediate_dncnn.itermediate_dncnn."
        var indices: [Int] = []
        for key in stateDict.keys where key.hasPrefix(prefix) && key.hasSuffix(".weight") {
            let middle = key.dropFirst(prefix.count).dropLast(".weight".count)
            if let k = Int(middle), stateDict[key]?.shape.count == 4 { indices.append(k) }
        }
        indices.sort()
        guard indices.count >= 2, let first = stateDict[prefix + "\(indices[0]).weight"] else {
            throw SCIError("not an FFDNet state dict: no '\(prefix)<k>.weight' convolutions (the keys are \(stateDict.keys.sorted().prefix(4).joined(separator: ", ")), ...)")
        }
        let inputs = first.shape[1]
        guard inputs == 5 || inputs == 15 else {
            throw SCIError("FFDNet's first convolution takes \(inputs) channels; 5 (grayscale) or 15 (RGB) expected")
        }
        colors = inputs / 5
        features = first.shape[0]
        var layers: [ConvLayer] = []
        for (position, k) in indices.enumerated() {
            let key = prefix + "\(k)"
            let weight = stateDict[key + ".weight"]!
            let (o, i) = (weight.shape[0], weight.shape[1])
            guard weight.shape[2] == 3, weight.shape[3] == 3 else {
                throw SCIError("\(key).weight has shape \(weight.shape); FFDNet's convolutions are 3x3")
            }
            var w = weight.floats()
            var bias = [Float](repeating: 0, count: o)
            // BatchNorm in eval mode after the convolution: y = gamma (x - mean) / sqrt(var + eps) + beta.
            let bn = prefix + "\(k + 1)"
            if let gamma = stateDict[bn + ".weight"], let beta = stateDict[bn + ".bias"],
               let mean = stateDict[bn + ".running_mean"], let variance = stateDict[bn + ".running_var"] {
                guard [gamma, beta, mean, variance].allSatisfy({ $0.shape == [o] }) else {
                    throw SCIError("\(bn): BatchNorm parameters do not have \(o) values each")
                }
                let g = gamma.floats(), b = beta.floats(), m = mean.floats(), v = variance.floats()
                for oc in 0 ..< o {
                    let scale = g[oc] / (v[oc] + 1e-5).squareRoot()
                    for j in 0 ..< i * 9 { w[oc * i * 9 + j] *= scale }
                    bias[oc] = b[oc] - m[oc] * scale
                }
            }
            let expectedInputs = position == 0 ? inputs : features
            let expectedOutputs = position == indices.count - 1 ? 4 * colors : features
            guard i == expectedInputs, o == expectedOutputs else {
                throw SCIError("\(key).weight has shape \(weight.shape); expected [\(expectedOutputs), \(expectedInputs), 3, 3]")
            }
            let biasArray = NumericArray(shape: [o], float32: bias)
            if position == 0 {
                layers.append(try ConvLayer(name: key, weight: NumericArray(shape: [o, i, 1, 3, 3], float32: w), bias: biasArray))
            } else {
                // The 3x3 kernel in the middle time tap of a 3x3x3 one (see the type's comment).
                var w3 = [Float](repeating: 0, count: o * i * 27)
                for oc in 0 ..< o {
                    for ic in 0 ..< i {
                        for tap in 0 ..< 9 { w3[(oc * i + ic) * 27 + 9 + tap] = w[(oc * i + ic) * 9 + tap] }
                    }
                }
                layers.append(try ConvLayer(name: key, weight: NumericArray(shape: [o, i, 3, 3, 3], float32: w3), bias: biasArray))
            }
        }
        for layer in layers { layer.cachesWinograd4 = true }
        self.layers = layers
    }

    /// Loads `net_gray.pth` / `net_rgb.pth` (or the same tensors as .safetensors).
    public convenience init(contentsOf url: URL) throws {
        try self.init(stateDict: try WeightsFile.load(url))
    }

    /// The activations of one frame size, kept across calls: a PnP loop denoises frames of one
    /// size hundreds of times, and fresh activations cost a zeroed allocation (and its page
    /// faults) each. Every call overwrites their interiors whole; the padding stays zero.
    public final class Workspace: @unchecked Sendable {
        let height: Int, width: Int
        let input: Activation, hidden: [Activation], output: Activation

        public init(network: FFDNet, height: Int, width: Int) {
            self.height = height
            self.width = width
            let (h2, w2) = (height / 2, width / 2)
            input = Activation(frames: 1, height: h2, width: w2, channels: 5 * network.colors, pad: 1)
            hidden = (0 ..< 2).map { _ in Activation(frames: 1, height: h2, width: w2, channels: network.features, pad: 1) }
            output = Activation(frames: 1, height: h2, width: w2, channels: 4 * network.colors, pad: 1)
        }
    }

    /// Denoises one frame: `pixels` is C x H x W (channels first), H and W even; `sigma` is the
    /// noise level on the [0, 1] scale. Returns C x H x W. Pass a `workspace` of this size to
    /// reuse its activations.
    public func denoise(_ pixels: UnsafeBufferPointer<Float>, height: Int, width: Int, sigma: Float,
                        workspace: Workspace? = nil, kernels: KernelSet = .active) throws -> [Float] {
        guard height % 2 == 0, width % 2 == 0, height > 0, width > 0 else {
            throw SCIError("FFDNet needs an even height and width; this frame is \(height)x\(width)")
        }
        guard pixels.count == colors * height * width else {
            throw SCIError("FFDNet (\(colors) colour(s)) got \(pixels.count) values for a \(height)x\(width) frame")
        }
        let h2 = height / 2, w2 = width / 2
        // Input: C noise-map channels, then channel C + 4c + p = colour c at sub-position p
        // (p: (0,0), (0,1), (1,0), (1,1) of each 2x2 cell).
        let space = workspace.flatMap { $0.height == height && $0.width == width ? $0 : nil }
            ?? Workspace(network: self, height: height, width: width)
        let input = space.input
        do {
            let s = input.strides, origin = input.origin
            for r in 0 ..< h2 {
                for c in 0 ..< w2 {
                    let cell = origin + r * s.h + c * s.w
                    for color in 0 ..< colors {
                        cell[color] = sigma
                        let plane = color * height * width
                        for p in 0 ..< 4 {
                            cell[colors + 4 * color + p] = pixels[plane + (2 * r + p / 2) * width + 2 * c + p % 2]
                        }
                    }
                }
            }
        }
        // Hidden layers alternate between the two hidden activations; the last writes the output.
        var current = input
        for (index, layer) in layers.enumerated() {
            let last = index == layers.count - 1
            let output = last ? space.output : space.hidden[index % 2]
            layer.run(current.all, into: output.all, epilogue: .store, leakySlope: last ? nil : 0, kernels: kernels)
            current = output
        }
        // Output = x - predicted noise, placed back at full resolution.
        var out = [Float](repeating: 0, count: colors * height * width)
        let s = current.strides, origin = current.origin
        for r in 0 ..< h2 {
            for c in 0 ..< w2 {
                let cell = origin + r * s.h + c * s.w
                for color in 0 ..< colors {
                    let plane = color * height * width
                    for p in 0 ..< 4 {
                        let i = plane + (2 * r + p / 2) * width + 2 * c + p % 2
                        out[i] = pixels[i] - cell[4 * color + p]
                    }
                }
            }
        }
        return out
    }
}
