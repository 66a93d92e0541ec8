/// Unaligned vector loads and stores on Float buffers. The kernels are generic over the vector
/// type so that each instruction-set target specialises them with its own width and flags.
public typealias FloatVector = SIMD & BitwiseCopyable

extension UnsafeMutablePointer where Pointee == Float {
    @inlinable @inline(__always)
    public func loadVector<V: SIMD & BitwiseCopyable>(_: V.Type = V.self, at index: Int) -> V where V.Scalar == Float {
        UnsafeRawPointer(self + index).loadUnaligned(as: V.self)
    }

    @inlinable @inline(__always)
    public func storeVector<V: SIMD & BitwiseCopyable>(_ value: V, at index: Int) where V.Scalar == Float {
        UnsafeMutableRawPointer(self + index).storeBytes(of: value, as: V.self)
    }
}

extension UnsafePointer where Pointee == Float {
    @inlinable @inline(__always)
    public func loadVector<V: SIMD & BitwiseCopyable>(_: V.Type = V.self, at index: Int) -> V where V.Scalar == Float {
        UnsafeRawPointer(self + index).loadUnaligned(as: V.self)
    }
}
