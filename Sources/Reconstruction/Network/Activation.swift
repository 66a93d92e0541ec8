import KernelCore

/// A channels-last activation (T, H, W, C) with `pad` zero cells around T, H and W, allocated
/// zeroed once. The padding is what a consuming convolution reads past the edges; writers only
/// ever touch the interior, so it stays zero.
public final class Activation: @unchecked Sendable {
    public let frames: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    public let pad: Int
    public let storage: UnsafeMutablePointer<Float>
    public let count: Int

    public init(frames: Int, height: Int, width: Int, channels: Int, pad: Int) {
        self.frames = frames
        self.height = height
        self.width = width
        self.channels = channels
        self.pad = pad
        count = (frames + 2 * pad) * (height + 2 * pad) * (width + 2 * pad) * channels
        storage = .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { storage.deallocate() }

    public var strides: (t: Int, h: Int, w: Int) {
        let w = channels, h = (width + 2 * pad) * channels
        return (t: (height + 2 * pad) * h, h: h, w: w)
    }

    /// Address of interior element (0, 0, 0, 0).
    public var origin: UnsafeMutablePointer<Float> {
        let s = strides
        return storage + pad * (s.t + s.h + s.w)
    }

    /// Channels `range` of this activation, for grouped reads and writes.
    public func view(_ range: Range<Int>) -> ActivationView { ActivationView(activation: self, channelOffset: range.lowerBound, channels: range.count) }
    public var all: ActivationView { view(0 ..< channels) }

    /// Sets the interior to zero (padding is already zero).
    public func zero() { storage.update(repeating: 0, count: count) }

    /// Copies a (C, T, H, W) channel-major array into the interior.
    public func load(channelMajor values: UnsafePointer<Float>, channels c: Int, channelOffset: Int = 0) {
        let s = strides, plane = frames * height * width
        for ch in 0 ..< c {
            for t in 0 ..< frames {
                for h in 0 ..< height {
                    let src = values + ch * plane + (t * height + h) * width
                    let dst = origin + t * s.t + h * s.h + channelOffset + ch
                    for w in 0 ..< width { dst[w * s.w] = src[w] }
                }
            }
        }
    }

    /// The interior as a (C, T, H, W) channel-major array, for channels `range`.
    public func channelMajor(_ range: Range<Int>) -> [Float] {
        let s = strides, plane = frames * height * width
        var out = [Float](repeating: 0, count: range.count * plane)
        for (k, ch) in range.enumerated() {
            for t in 0 ..< frames {
                for h in 0 ..< height {
                    let src = origin + t * s.t + h * s.h + ch
                    let base = k * plane + (t * height + h) * width
                    for w in 0 ..< width { out[base + w] = src[w * s.w] }
                }
            }
        }
        return out
    }
}

/// A contiguous run of channels of an activation.
public struct ActivationView: @unchecked Sendable {
    public let activation: Activation
    public let channelOffset: Int
    public let channels: Int

    public var size: (t: Int, h: Int, w: Int) { (activation.frames, activation.height, activation.width) }
    public var strides: (t: Int, h: Int, w: Int) { activation.strides }
    public var origin: UnsafeMutablePointer<Float> { activation.origin + channelOffset }
}
