/// Adam (Kingma & Ba), as PyTorch's torch.optim.Adam without weight decay: per element
///     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
///     p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
public struct Adam: Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public private(set) var step = 0
    /// First and second moments, keyed like the parameters.
    public var m: [String: [Float]] = [:]
    public var v: [String: [Float]] = [:]

    public init(learningRate: Float) { self.learningRate = learningRate }

    public init(learningRate: Float, step: Int, m: [String: [Float]], v: [String: [Float]]) {
        self.learningRate = learningRate
        self.step = step
        self.m = m
        self.v = v
    }

    /// Applies one update to every parameter that has a gradient.
    public mutating func update(_ parameters: inout [String: [Float]], gradients: [String: [Float]]) {
        step += 1
        let c1 = 1 - Float(Double(beta1).power(step)), c2 = 1 - Float(Double(beta2).power(step))
        for (name, g) in gradients {
            guard var p = parameters[name] else { continue }
            var mm = m[name] ?? [Float](repeating: 0, count: g.count)
            var vv = v[name] ?? [Float](repeating: 0, count: g.count)
            for i in 0 ..< g.count {
                mm[i] = beta1 * mm[i] + (1 - beta1) * g[i]
                vv[i] = beta2 * vv[i] + (1 - beta2) * g[i] * g[i]
                p[i] -= learningRate * (mm[i] / c1) / ((vv[i] / c2).squareRoot() + epsilon)
            }
            parameters[name] = p
            m[name] = mm
            v[name] = vv
        }
    }
}

extension Double {
    func power(_ n: Int) -> Double {
        var r = 1.0
        for _ in 0 ..< n { r *= self }
        return r
    }
}
