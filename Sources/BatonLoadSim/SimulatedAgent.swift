import BatonProtocol
import Crypto
import Foundation
import NIOCore
import Synchronization

/// A refusal as the real agent answers it: an HTTP status and an `ErrorDocument`.
struct AgentRefusal: Error {
    var status: Int
    var info: ErrorInfo

    init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        info = ErrorInfo(code: code, message: message)
    }
}

/// One simulated agent: what a real agent keeps about its apps, deployments, artifacts and
/// audit chain, in memory, answering with the real wire types (BatonProtocol). Envelopes
/// are checked by the real `ManifestVerifier` against the trust policy, with this host's
/// serials and held releases as history, so replays, stale serials and returns are
/// accepted or refused as a real agent would. Artifacts are counted, not hashed or kept.
final class SimulatedAgent: Sendable {
    let hostID: String
    let environment: String
    let settings: SimulationSettings
    let policy: TrustPolicy
    /// The key of this agent's fleet certificate: it signs receipts and the audit head.
    let signingKey: P256.Signing.PrivateKey
    let certificatePEM: String
    let startedAt = Date()
    private let state = Mutex(State())

    /// One app's state on the host, as the agent's state file holds it.
    struct App {
        var name: String
        var current: String?
        var previous: String?
        var lastSerial: UInt64?
        var lastPayloadDigest: String?
        var lastDeploymentID: String?
        var active: String?
        var releases: [String] = []
        var succeeded: [String] = []
        var artifacts: [String: ArtifactReference] = [:]
        var held: [HeldRelease] = []
        var live: [LiveRelease] = []
        var updatedAt: Date?
    }

    struct State {
        var apps: [String: App] = [:]
        var deployments: [String: ScriptedDeployment] = [:]
        var artifacts: [String: UInt64] = [:]
        /// The audit chain: the hash of every line, in order.
        var audit: [String] = []

        mutating func appendAudit(_ line: String) {
            let previous = audit.last ?? String(repeating: "0", count: 64)
            audit.append(Digest.sha256Hex(Array("\(previous)\n\(line)".utf8)))
        }

        var auditPosition: Receipt.AuditPosition {
            Receipt.AuditPosition(lines: audit.count, head: audit.last ?? String(repeating: "0", count: 64))
        }

        /// Applies the end of every deployment whose last event is due.
        mutating func settle(now: NIODeadline) {
            for (name, app) in apps {
                guard let id = app.active, let deployment = deployments[id], deployment.endsAt <= now else { continue }
                var app = app
                let record = deployment.final
                app.active = nil
                app.updatedAt = record.finishedAt
                if record.phase == .succeeded {
                    let release = record.release
                    if app.current != release { app.previous = app.current }
                    app.current = release
                    app.releases.removeAll { $0 == release }
                    app.releases.insert(release, at: 0)
                    if !app.succeeded.contains(release) { app.succeeded.insert(release, at: 0) }
                    app.artifacts[release] = deployment.manifest.artifact
                    if !record.isRollback {
                        app.held.removeAll { $0.release == release }
                        app.held.insert(
                            HeldRelease(
                                release: release, approved: deployment.manifest, approvedPayloadDigest: record.payloadDigest,
                                approvedBy: record.signers),
                            at: 0)
                    }
                    app.live.insert(LiveRelease(release: release, since: record.finishedAt ?? record.updatedAt, deploymentID: id), at: 0)
                    app.live = Array(app.live.prefix(10))
                    // Retention: the newest `keep`, never the live one or the way back.
                    let keep = deployment.manifest.effectiveKeep
                    let kept = app.releases.enumerated().filter { $0.offset < keep || $0.element == app.previous }.map(\.element)
                    app.releases = kept
                    app.succeeded = app.succeeded.filter { kept.contains($0) }
                    app.held = app.held.filter { kept.contains($0.release) }
                    app.artifacts = app.artifacts.filter { kept.contains($0.key) }
                }
                apps[name] = app
                appendAudit("deployment \(id) \(record.phase.rawValue)")
            }
        }
    }

    init(hostID: String, environment: String, settings: SimulationSettings, policy: TrustPolicy,
         signingKey: P256.Signing.PrivateKey, certificatePEM: String) {
        self.hostID = hostID
        self.environment = environment
        self.settings = settings
        self.policy = policy
        self.signingKey = signingKey
        self.certificatePEM = certificatePEM
    }

    /// Runs `body` on the state, after settling every deployment that has ended by now.
    private func withState<T: Sendable>(_ body: (inout State) throws(AgentRefusal) -> T) throws(AgentRefusal) -> T {
        let now = NIODeadline.now()
        return try state.withLock { state throws(AgentRefusal) -> T in
            state.settle(now: now)
            return try body(&state)
        }
    }

    // MARK: Answers

    func health() -> AgentHealth {
        let position = (try? withState { $0.auditPosition }) ?? Receipt.AuditPosition(lines: 0, head: "")
        return AgentHealth(
            hostID: hostID, environment: environment, version: "baton-loadsim", startedAt: startedAt,
            audit: AuditChainStatus(intact: true, lines: position.lines, head: position.head))
    }

    func apps() -> AppList {
        let now = NIODeadline.now()
        let apps = (try? withState { state in state.apps.keys.sorted().compactMap { Self.status(state, $0, now) } }) ?? []
        return AppList(apps: apps)
    }

    func appStatus(_ app: String) -> AppStatus? {
        let now = NIODeadline.now()
        return try? withState { state in Self.status(state, app, now) }
    }

    private static func status(_ state: State, _ name: String, _ now: NIODeadline) -> AppStatus? {
        guard let app = state.apps[name] else { return nil }
        let last = app.lastDeploymentID.flatMap { state.deployments[$0]?.record(at: now) }
        return AppStatus(
            app: name, current: app.current, previous: app.previous, lastSerial: app.lastSerial,
            lastDeploymentID: app.lastDeploymentID, lastPhase: last?.phase, lastError: last?.error,
            activeDeploymentID: app.active, releases: app.releases, succeededReleases: app.succeeded,
            releaseArtifacts: app.artifacts, held: app.held, liveHistory: app.live, updatedAt: app.updatedAt)
    }

    func artifactSize(_ digest: String) -> UInt64? { try? withState { $0.artifacts[digest] } }

    /// Counts an upload as stored. The simulator trusts the digest in the path: hashing
    /// every byte 2,000 times over would measure this machine, not the controller.
    func storeArtifact(_ digest: String, size: UInt64) {
        _ = try? withState { $0.artifacts[digest] = size }
    }

    /// `POST /v1/deployments`.
    func submit(envelope: [UInt8]) throws(AgentRefusal) -> DeploymentAccepted {
        let start = NIODeadline.now()
        let acceptedAt = Date()
        return try withState { (state: inout State) throws(AgentRefusal) -> DeploymentAccepted in
            var queried: String?
            let verified: VerifiedManifest
            do throws(VerificationError) {
                verified = try ManifestVerifier.verify(
                    envelope: envelope, policy: policy, host: HostIdentity(hostID: hostID, environment: environment),
                    history: { name in
                        queried = name
                        guard let app = state.apps[name] else { return .none }
                        return AppHistory(
                            lastSerial: app.lastSerial, lastPayloadDigest: app.lastPayloadDigest,
                            approvedReleases: Dictionary(app.held.map { ($0.release, $0.approved) }, uniquingKeysWith: { a, _ in a }))
                    }, now: acceptedAt)
            } catch {
                if error.code == .duplicate, let name = queried, let serial = state.apps[name]?.lastSerial {
                    let id = "\(name)-\(serial)"
                    let phase = state.deployments[id]?.record(at: start).phase ?? .accepted
                    return DeploymentAccepted(id: id, phase: phase, existing: true)
                }
                state.appendAudit("refused \(error.code.rawValue)")
                throw AgentRefusal(error.code.httpStatus, error.code.rawValue, error.message)
            }
            let manifest = verified.manifest
            var app = state.apps[manifest.app] ?? App(name: manifest.app)
            if let active = app.active {
                throw AgentRefusal(
                    409, "deployment_in_progress", "deployment \(active) of '\(manifest.app)' is still running; wait for it to end")
            }
            let id = "\(manifest.app)-\(manifest.serial)"
            let deployment = ScriptedDeployment.script(
                id: id, hostID: hostID, verified: verified, previous: app.current,
                holdsArtifact: state.artifacts[manifest.artifact.sha256] != nil || app.artifacts.values.contains { $0.sha256 == manifest.artifact.sha256 },
                settings: settings, acceptedAt: acceptedAt, start: start)
            app.lastSerial = manifest.serial
            app.lastPayloadDigest = verified.payloadDigest
            app.lastDeploymentID = id
            app.active = id
            app.updatedAt = acceptedAt
            state.apps[manifest.app] = app
            state.deployments[id] = deployment
            state.appendAudit("deployment \(id) accepted")
            return DeploymentAccepted(id: id, phase: .accepted, existing: false)
        }
    }

    /// `GET /v1/deployments/{id}`: the record so far, with its receipt once it has ended.
    func record(_ id: String) -> DeploymentRecord? {
        let now = NIODeadline.now()
        return try? withState { state in
            guard let deployment = state.deployments[id] else { return nil }
            var record = deployment.record(at: now)
            if record.phase.isTerminal { record.receipt = Self.receipt(&state, id, key: signingKey, certificates: certificatePEM) }
            return record
        }
    }

    enum ReceiptAnswer {
        case unknown, running(DeploymentPhase), signed(SignedReceipt)
    }

    /// `GET /v1/deployments/{id}/receipt`.
    func receipt(_ id: String) -> ReceiptAnswer {
        let now = NIODeadline.now()
        return (try? withState { state -> ReceiptAnswer in
            guard let deployment = state.deployments[id] else { return .unknown }
            let phase = deployment.record(at: now).phase
            guard phase.isTerminal, let signed = Self.receipt(&state, id, key: signingKey, certificates: certificatePEM) else {
                return .running(phase)
            }
            return .signed(signed)
        }) ?? .unknown
    }

    /// Signs an ended deployment's receipt as the agent does (ECDSA P-256 DSSE with the key
    /// of its fleet certificate), once; later requests get the same one.
    private static func receipt(
        _ state: inout State, _ id: String, key: P256.Signing.PrivateKey, certificates: String
    ) -> SignedReceipt? {
        guard var deployment = state.deployments[id] else { return nil }
        if let kept = deployment.receipt { return kept }
        let signedAt = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let receipt = Receipt(record: deployment.final, live: deployment.live, audit: state.auditPosition, signedAt: signedAt)
        guard let signed = try? SignedReceipt.signing(receipt, key: key, certificates: certificates) else { return nil }
        deployment.receipt = signed
        state.deployments[id] = deployment
        return signed
    }

    /// The events of deployment `id` with the time each is due, for a stream.
    func schedule(_ id: String) -> [(due: NIODeadline, event: DeploymentEvent)]? {
        try? withState { $0.deployments[id]?.schedule }
    }

    /// `GET /v1/audit/head`, signed with this agent's key.
    func auditHead(line: Int?) -> SignedAuditHead? {
        let read: (Receipt.AuditPosition, SignedAuditHead.LineHash?)? = try? withState { state in
            let hash = line.map { SignedAuditHead.LineHash(line: $0, hash: $0 <= state.audit.count ? state.audit[$0 - 1] : nil) }
            return (state.auditPosition, hash)
        }
        guard let read else { return nil }
        let (position, lineHash) = read
        let time = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let text = SignedAuditHead.signedText(hostID: hostID, lines: position.lines, hash: position.head, time: time)
        guard let signature = try? signingKey.signature(for: text).derRepresentation else { return nil }
        return SignedAuditHead(
            hostID: hostID, lines: position.lines, hash: position.head, time: time,
            signature: Base64.encode(Array(signature)), at: lineHash)
    }
}
