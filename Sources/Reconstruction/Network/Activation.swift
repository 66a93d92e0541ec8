import Foundation
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
        storage = ActivationStorage.take(count) ?? .allocate(capacity: count)
        storage.initialize(repeating: 0, count: count)
    }

    deinit { ActivationStorage.give(storage, count: count) }

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

/// Optional recycling of activation storage. Training allocates and frees the same few hundred
/// MB every sample; fresh pages from the kernel cost a fault and zeroing each (measured at
/// 128x128x8, 18 blocks: about 117,000 faults and a quarter of a step's CPU time in the kernel).
/// With recycling on (`enable`, used by the training commands), freed buffers are kept, up to
/// a byte cap, and handed to the next activation of the same size. Off by default, so a
/// long-running server returns memory as before.
public enum ActivationStorage {
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    nonisolated(unsafe) private static var cachedFloats = 0
    nonisolated(unsafe) private static var capFloats = 0
    private static let lock = NSLock()

    /// Keeps up to `maxBytes` of freed activation storage for reuse; 0 turns recycling off and
    /// releases what is kept.
    public static func enable(maxBytes: Int) {
        lock.lock(); defer { lock.unlock() }
        capFloats = maxBytes / MemoryLayout<Float>.stride
        if capFloats == 0 {
            free.values.forEach { $0.forEach { $0.deallocate() } }
            free = [:]
            cachedFloats = 0
        }
    }

    /// Bytes of freed storage currently kept.
    public static var cachedBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return cachedFloats * MemoryLayout<Float>.stride
    }

    static func take(_ count: Int) -> UnsafeMutablePointer<Float>? {
        lock.lock(); defer { lock.unlock() }
        guard capFloats > 0, let p = free[count]?.popLast() else { return nil }
        cachedFloats -= count
        return p
    }

    static func give(_ p: UnsafeMutablePointer<Float>, count: Int) {
        lock.lock()
        if capFloats > 0, cachedFloats + count <= capFloats {
            free[count, default: []].append(p)
            cachedFloats += count
            lock.unlock()
            return
        }
        lock.unlock()
        p.deallocate()
    }
}
