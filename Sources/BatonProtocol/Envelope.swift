#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A DSSE v1 envelope (https://github.com/secure-systems-lab/dsse, `envelope.md`):
/// `{"payload": <base64>, "payloadType": <string>, "signatures": [{"keyid": <string>, "sig": <base64>}]}`.
///
/// Signatures are over the pre-authentication encoding of the payload type and the
/// payload *bytes*, so no JSON canonicalisation is ever needed. Input accepts standard
/// and URL-safe base64, with or without padding; output is standard base64 with padding.
/// Unknown fields are ignored, as the DSSE spec requires.
public struct Envelope: Sendable, Equatable {
    public var payloadType: String
    /// The exact payload bytes that were signed.
    public var payload: [UInt8]
    public var signatures: [Signature]

    public struct Signature: Sendable, Equatable {
        /// A hint only: never trusted to pick the key (every trusted key is tried).
        public var keyid: String?
        public var sig: [UInt8]

        public init(keyid: String?, sig: [UInt8]) {
            self.keyid = keyid
            self.sig = sig
        }
    }

    public init(payloadType: String, payload: [UInt8], signatures: [Signature] = []) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }

    /// The largest envelope accepted, in bytes: a 64 KiB payload in base64 plus room for
    /// signatures.
    public static let maxEnvelopeBytes = 128 * 1024
    /// More signatures than any sane approval policy needs; beyond it, `too_large`.
    public static let maxSignatures = 32

    /// DSSE's pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`,
    /// lengths as ASCII decimal byte counts.
    public static func preAuthenticationEncoding(payloadType: String, payload: [UInt8]) -> [UInt8] {
        let type = Array(payloadType.utf8)
        var out = Array("DSSEv1 \(type.count) ".utf8)
        out += type
        out += Array(" \(payload.count) ".utf8)
        out += payload
        return out
    }

    public var preAuthenticationEncoding: [UInt8] {
        Self.preAuthenticationEncoding(payloadType: payloadType, payload: payload)
    }

    /// SHA-256 of the payload bytes: the identity of the manifest. Two envelopes with the
    /// same payload are the same deployment even if one carries more signatures (a second
    /// approver signing later must not turn a resend into a conflict).
    public var payloadDigest: String { Digest.sha256Hex(payload) }

    // MARK: Wire form

    private struct Wire: Codable {
        var payload: String
        var payloadType: String
        var signatures: [WireSignature]
    }

    private struct WireSignature: Codable {
        var keyid: String?
        var sig: String
    }

    /// Parses envelope JSON. Throws `too_large` or `malformed`; does not verify anything.
    public static func parse<D: DataProtocol>(_ bytes: D) throws(VerificationError) -> Envelope {
        guard bytes.count <= maxEnvelopeBytes else {
            throw VerificationError(.tooLarge, "the envelope is \(bytes.count) bytes; at most \(maxEnvelopeBytes) are accepted")
        }
        let wire: Wire
        do {
            wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw VerificationError(.malformed, "not a DSSE envelope: \(error.batonSummary)")
        } catch {
            throw VerificationError(.malformed, "not a DSSE envelope: \(error)")
        }
        guard wire.signatures.count <= maxSignatures else {
            throw VerificationError(.tooLarge, "the envelope carries \(wire.signatures.count) signatures; at most \(maxSignatures)")
        }
        guard let payload = Base64.decode(wire.payload) else {
            throw VerificationError(.malformed, "the envelope's payload is not base64")
        }
        guard payload.count <= Manifest.maxPayloadBytes else {
            throw VerificationError(.tooLarge, "the payload is \(payload.count) bytes; at most \(Manifest.maxPayloadBytes) are accepted")
        }
        var signatures: [Signature] = []
        for (index, s) in wire.signatures.enumerated() {
            guard let sig = Base64.decode(s.sig) else {
                throw VerificationError(.malformed, "signature \(index) is not base64")
            }
            signatures.append(Signature(keyid: s.keyid, sig: sig))
        }
        return Envelope(payloadType: wire.payloadType, payload: payload, signatures: signatures)
    }

    /// The envelope as JSON (sorted keys, standard base64).
    public func serialized(pretty: Bool = true) -> Data {
        let wire = Wire(
            payload: Base64.encode(payload), payloadType: payloadType,
            signatures: signatures.map { WireSignature(keyid: $0.keyid, sig: Base64.encode($0.sig)) })
        // Encoding plain strings cannot fail.
        var data = (try? BatonJSON.encode(wire, pretty: pretty)) ?? Data()
        if pretty { data.append(0x0A) }
        return data
    }
}

/// Base64 as DSSE implementations write it: standard or URL-safe alphabet, padded or not.
public enum Base64 {
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        Data(bytes).base64EncodedString()
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 3)
        var sawStandard = false, sawURLSafe = false
        for scalar in text.unicodeScalars {
            switch scalar {
            case "-": sawURLSafe = true; standard.unicodeScalars.append("+")
            case "_": sawURLSafe = true; standard.unicodeScalars.append("/")
            case "+", "/": sawStandard = true; standard.unicodeScalars.append(scalar)
            default: standard.unicodeScalars.append(scalar)
            }
        }
        // One alphabet per string: a mix is not something any encoder produces.
        if sawStandard && sawURLSafe { return nil }
        // Padding only at the end, at most two characters of it.
        let body = standard.utf8.prefix { $0 != UInt8(ascii: "=") }
        let padding = standard.utf8.count - body.count
        if padding > 2 || standard.utf8.dropFirst(body.count).contains(where: { $0 != UInt8(ascii: "=") }) { return nil }
        let remainder = standard.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder != 0 { standard += String(repeating: "=", count: 4 - remainder) }
        guard let data = Data(base64Encoded: standard) else { return nil }
        return Array(data)
    }
}
