import BatonPKI
import BatonProtocol
import Crypto
import Foundation
import X509

/// An agent's signed audit head as the controller recorded it.
public struct SeenAuditHead: Codable, Sendable, Equatable {
    public var host: String
    public var lines: Int
    public var hash: String
    /// When the agent signed it.
    public var time: Date
    public var signature: String
    /// When the controller saw it.
    public var seenAt: Date
    /// The verdict's code when it was seen (`accepted` when an operator took a problem
    /// head as the new baseline). Only heads without a problem, or accepted ones, are
    /// what later heads are checked against.
    public var verdict: String

    public init(host: String, lines: Int, hash: String, time: Date, signature: String, seenAt: Date, verdict: String) {
        self.host = host
        self.lines = lines
        self.hash = hash
        self.time = time
        self.signature = signature
        self.seenAt = seenAt
        self.verdict = verdict
    }

    public static let baselineVerdicts: Set<String> = ["first", "consistent", "accepted"]
}

/// What a host's audit head says compared with the last one the controller recorded.
public enum AuditHeadVerdict: Sendable, Equatable {
    /// No head was recorded before: this one is the first.
    case first
    /// The chain grew (or stayed) and still holds the recorded head at its place.
    case consistent(addedLines: Int)
    /// Fewer lines than recorded: lines were removed.
    case wentBackwards(from: Int, to: Int)
    /// The line where the recorded head was no longer hashes to it: rewritten.
    case forked(atLine: Int)
    /// The log is empty now although lines were recorded.
    case disappeared(recorded: Int)
    /// The agent itself reports its chain broken.
    case broken(String)
    /// The head is not signed by the key of the certificate the agent presented.
    case badSignature

    /// Stable codes, for JSON and exit statuses.
    public var code: String {
        switch self {
        case .first: "first"
        case .consistent: "consistent"
        case .wentBackwards: "went_backwards"
        case .forked: "forked"
        case .disappeared: "disappeared"
        case .broken: "chain_broken"
        case .badSignature: "bad_signature"
        }
    }

    public var isProblem: Bool {
        switch self {
        case .first, .consistent: false
        default: true
        }
    }

    public var explanation: String {
        switch self {
        case .first: "first head recorded"
        case .consistent(let added): added == 0 ? "unchanged" : "\(added) line(s) added; the recorded head is still in place"
        case .wentBackwards(let from, let to): "the log went backwards: \(from) line(s) were recorded, it has \(to) now"
        case .forked(let line): "the log was rewritten: line \(line) no longer hashes to the head recorded there"
        case .disappeared(let recorded): "the log is gone: \(recorded) line(s) were recorded, it has none now"
        case .broken(let problem): "the agent reports its chain broken: \(problem)"
        case .badSignature: "the head is not signed by the key of the certificate the agent presented"
        }
    }
}

/// Judges an agent's signed audit head against the one recorded before. Pure: the
/// caller fetched the head (with the hash of the recorded head's line) and the agent's
/// certificate.
public enum AuditHeadCheck {
    /// True when `head` is signed by the key of `certificate`.
    public static func signatureIsValid(_ head: SignedAuditHead, certificate: Certificate) -> Bool {
        guard let key = P256.Signing.PublicKey(certificate.publicKey),
            let der = Base64.decode(head.signature),
            let signature = try? P256.Signing.ECDSASignature(derRepresentation: der)
        else { return false }
        return key.isValidSignature(signature, for: head.signedText)
    }

    public static func judge(_ head: SignedAuditHead, previous: SeenAuditHead?, signatureValid: Bool) -> AuditHeadVerdict {
        guard signatureValid else { return .badSignature }
        if let previous {
            if head.lines == 0, previous.lines > 0 { return .disappeared(recorded: previous.lines) }
            if head.lines < previous.lines { return .wentBackwards(from: previous.lines, to: head.lines) }
            let atRecorded = head.lines == previous.lines ? head.hash : head.at.flatMap { $0.line == previous.lines ? $0.hash : nil }
            if previous.lines > 0, atRecorded != previous.hash { return .forked(atLine: previous.lines) }
        }
        if let problem = head.problem { return .broken(problem) }
        guard let previous else { return .first }
        return .consistent(addedLines: head.lines - previous.lines)
    }
}
