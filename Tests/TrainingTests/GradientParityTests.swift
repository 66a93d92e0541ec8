import Foundation
import Formats
import Reconstruction
import SCICore
import TestSupport
@testable import Training
import XCTest

/// Gradients of the MSE loss against PyTorch autograd (shared/fixtures/*/grads*.safetensors), in
/// both backprop modes: atol 1e-6 per element (the fixture README's bound) and loss rtol 1e-6.
/// Per tensor the README recommends max |diff| <= 1e-3 x max |reference|; we allow 2e-3 because
/// of one measured LeakyReLU kink: in revsci_paper_g2_nb2, block 1's f_1 hidden pre-activation
/// at index 10575 is 4.6e-7, within float32 summation-order noise of zero, so its derivative
/// (1 or 0.01) can differ from PyTorch's; that one element moves layers.1.f.1.nn_layer.0.weight
/// by 1.1e-7 (1.07e-3 of its max 1.0e-4). Every other tensor is within 4e-4 (most near 1e-7).
final class GradientParityTests: XCTestCase {
    let fixtures = [("revsci_cacti_nb2", "revsci_nb2.safetensors", "grads_mse_nb2.safetensors"),
                    ("revsci_paper_g2_nb2", "weights.safetensors", "grads.safetensors"),
                    ("revsci_paper_g4_nb2", "weights.safetensors", "grads.safetensors")]

    func testGradientsMatchPyTorchInBothModes() throws {
        for (folder, weightsFile, gradsFile) in fixtures {
            let weights = try SafetensorsFile.decode(SharedData.bytes("fixtures/\(folder)/\(weightsFile)"))
            let expected = try SafetensorsFile.decode(SharedData.bytes("fixtures/\(folder)/\(gradsFile)"))
            let net = try RevSCINetwork(weights: Dictionary(uniqueKeysWithValues: weights.tensors.map { ($0.name, $0.array) }))
            let x = try NPY.decode(SharedData.bytes("fixtures/\(folder)/input_x.npy"))
            let video = try NPY.decode(SharedData.bytes("fixtures/\(folder)/video.npy"))
            let (t, h, w) = (x.shape[2], x.shape[3], x.shape[4])
                let expectedLoss = Double(expected.metadata["loss"] ?? "")
            for mode in BackpropMode.allCases {
                let graph = TrainingGraph(network: net)
                var grads = graph.zeroGradients()
                let (loss, _) = try graph.accumulate(input: x.floats(), target: video.floats(), frames: t, height: h, width: w,
                                                     mode: mode, into: &grads)
                if let expectedLoss { XCTAssertEqual(loss, expectedLoss, accuracy: 1e-6 * expectedLoss, "\(folder) \(mode) loss") }
                XCTAssertEqual(grads.count * 2, expected.tensors.count, "\(folder): every parameter has a gradient")
                for (name, ref) in expected.tensors {
                    let layer = String(name.dropLast(name.hasSuffix(".weight") ? 7 : 5))
                    guard let g = grads[layer] else { XCTFail("no gradient for \(name)"); continue }
                    let got = name.hasSuffix(".weight") ? g.weight : g.bias
                    let want = ref.floats()
                    XCTAssertEqual(got.count, want.count, name)
                    let maxRef = want.map(abs).max() ?? 0
                    let err = zip(got, want).map { abs($0 - $1) }.max() ?? 0
                    if ProcessInfo.processInfo.environment["REVSCI_PRINT_GRAD_ERRORS"] != nil { print("GRADERR \(folder) \(mode) \(name) \(err) \(maxRef)") }
                    XCTAssertLessThanOrEqual(err, 1e-6, "\(folder) \(mode) \(name): max |diff| \(err)")
                    XCTAssertLessThanOrEqual(err, 2e-3 * maxRef, "\(folder) \(mode) \(name): relative to max |ref| \(maxRef)")
                }
            }
        }
    }
}
