/// One parser under the fuzzer: what it reads, and a `run` that feeds it an input and checks
/// what comes out. Rejecting an input is fine; `run` throws only when an invariant is broken.
struct FuzzTarget: Sendable {
    var name: String
    var summary: String
    var run: @Sendable ([UInt8]) throws(InvariantFailure) -> Void

    /// Every target, in the order scripts/fuzz runs them. Names match Fuzz/corpus/<name>.
    static let all: [FuzzTarget] = kubernetesTargets + keyVaultTargets + pkiTargets

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

struct InvariantFailure: Error {
    let message: String
}

/// Throws `message` unless `condition` holds.
func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(InvariantFailure) {
    guard condition else { throw InvariantFailure(message: message()) }
}

/// Inputs are bytes; the parsers take strings as Swift (and Kubernetes) hand them over: valid UTF-8.
func text(_ input: [UInt8]) -> String {
    String(decoding: input, as: UTF8.self)
}
