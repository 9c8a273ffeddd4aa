#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Envelope {
    /// `manifest` as a DSSE envelope with `key`'s signature, serialized compactly: what a
    /// controller sends to agents (a `baton deploy`, a revert, a rollback).
    public static func signing(_ manifest: Manifest, with key: SigningKey) throws -> [UInt8] {
        var envelope = Envelope(payloadType: Manifest.payloadType, payload: Array(try BatonJSON.encode(manifest)))
        envelope.sign(with: key)
        return Array(envelope.serialized(pretty: false))
    }
}
