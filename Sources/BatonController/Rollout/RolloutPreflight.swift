import BatonProtocol
import Foundation

/// Everything a rollout checks before it contacts any agent, so bad input costs nothing:
/// the envelope parses and satisfies the trust policy for its environment, the selection
/// names hosts of that environment that the manifest targets, and the artifact bytes
/// (given or stored) match the manifest.
public enum RolloutPreflight {
    public struct Input: Sendable {
        public var envelope: [UInt8]
        public var envelopeFile: String
        public var fleet: Fleet
        /// `--environment`, when given: must equal the manifest's.
        public var environment: String?
        public var hostIDs: [String]?
        public var selector: [String: String]
        /// `--artifact`, when given.
        public var artifactFile: String?
        public var policy: TrustPolicy?
        public var now: Date
        /// `--fetch`: the agents fetch `artifact.url` themselves, even where the controller
        /// could upload; no artifact bytes leave the controller.
        public var fetch = false

        public init(envelope: [UInt8], envelopeFile: String, fleet: Fleet, environment: String? = nil, hostIDs: [String]? = nil,
                    selector: [String: String] = [:], artifactFile: String? = nil, policy: TrustPolicy?, now: Date = Date()) {
            self.envelope = envelope
            self.envelopeFile = envelopeFile
            self.fleet = fleet
            self.environment = environment
            self.hostIDs = hostIDs
            self.selector = selector
            self.artifactFile = artifactFile
            self.policy = policy
            self.now = now
        }
    }

    public struct Checked: Sendable {
        public var manifest: Manifest
        public var hosts: [Fleet.Host]
        /// The file to upload from; nil when agents fetch `artifact.url`.
        public var artifactFile: String?
        public var signers: [Signer]
        /// A change freeze is in force for the environment and the envelope breaks glass.
        public var breakGlass = false

        /// The signers as history names them: their first name in the policy, else the keyid.
        public var signerNames: [String] { signers.map { $0.names.first ?? $0.keyid } }

        /// The rollout of `envelope` these checks allow, under a new id.
        public func request(envelope: [UInt8], strategy: RolloutStrategy, revertKey: SigningKey?) -> RolloutRequest {
            var request = RolloutRequest(
                rolloutID: RolloutRequest.newID(app: manifest.app), envelope: envelope, manifest: manifest, hosts: hosts,
                strategy: strategy, artifactFile: artifactFile, revertKey: revertKey)
            request.breakGlass = breakGlass
            return request
        }
    }

    public static func check(_ input: Input, state: ControllerState) throws(ControllerError) -> Checked {
        let envelope: Envelope
        let manifest: Manifest
        do {
            envelope = try Envelope.parse(input.envelope)
            manifest = try Manifest.parse(payload: envelope.payload)
        } catch {
            throw ControllerError(.envelopeInvalid, "\(input.envelopeFile): \(error.code.rawValue): \(error.message)")
        }
        if let environment = input.environment, environment != manifest.environment {
            throw ControllerError(
                .wrongEnvironment,
                "\(input.envelopeFile) is for environment '\(manifest.environment)', not '\(environment)'; sign a manifest for \(environment)")
        }
        var signers: [Signer] = []
        var breakGlass = false
        if let policy = input.policy {
            guard policy.environments[manifest.environment] != nil else {
                throw ControllerError(
                    .wrongEnvironment, "the trust policy has no environment '\(manifest.environment)'; agents there would refuse \(input.envelopeFile)")
            }
            do {
                let verified = try ManifestVerifier.verify(
                    envelope: envelope, policy: policy, host: HostIdentity(hostID: nil, environment: manifest.environment),
                    history: { _ in .none }, now: input.now)
                signers = verified.signers
                breakGlass = verified.breakGlass
            } catch {
                // A freeze refuses before any agent is contacted, with the agents' own code.
                if error.code == .changeFrozen { throw ControllerError(.changeFrozen, "\(input.envelopeFile): \(error.message)") }
                throw ControllerError(.envelopeInvalid, "\(input.envelopeFile): \(error.code.rawValue): \(error.message)")
            }
        }

        // Hosts: the manifest's environment, narrowed by --hosts / --selector and by targets.
        if let ids = input.hostIDs {
            for id in ids {
                guard let host = input.fleet.hosts.first(where: { $0.id == id }) else {
                    throw ControllerError(.noHosts, "unknown host '\(id)'; check the fleet file")
                }
                if host.environment != manifest.environment {
                    throw ControllerError(
                        .wrongEnvironment, "host '\(id)' is in '\(host.environment)', but \(input.envelopeFile) is for '\(manifest.environment)'")
                }
                if let targets = manifest.targets, !targets.contains(id) {
                    throw ControllerError(.noHosts, "host '\(id)' is not among the manifest's targets (\(targets.joined(separator: ", ")))")
                }
            }
        }
        let selection = HostSelection(environment: manifest.environment, hostIDs: input.hostIDs, selector: input.selector)
        var hosts: [Fleet.Host]
        do { hosts = try selection.hosts(in: input.fleet) } catch {
            throw ControllerError(.noHosts, error.message)
        }
        if let targets = manifest.targets { hosts = hosts.filter { targets.contains($0.id) } }
        guard !hosts.isEmpty else {
            throw ControllerError(.noHosts, "no host of the fleet matches: environment \(manifest.environment)\(input.hostIDs.map { ", hosts \($0.joined(separator: ","))" } ?? "")\(input.selector.isEmpty ? "" : ", selector \(input.selector.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ","))")")
        }

        // The artifact: the operator's file (checked), else the controller's store, else a URL.
        let artifact = manifest.artifact
        var artifactFile: String?
        if input.fetch {
            guard artifact.url != nil else {
                throw ControllerError(
                    .artifactMissing,
                    "--fetch: the manifest has no artifact.url for the agents to fetch from; leave out --fetch to upload the artifact")
            }
        } else if let file = input.artifactFile {
            let (digest, size) = try ControllerState.digest(of: file)
            guard digest == artifact.sha256, size == artifact.size else {
                throw ControllerError(
                    .artifactMismatch,
                    "'\(file)' is sha256:\(digest) (\(size) bytes), but the manifest names sha256:\(artifact.sha256) (\(artifact.size) bytes); it is not the artifact that was signed")
            }
            artifactFile = file
        } else if state.hasArtifact(artifact.sha256) {
            artifactFile = state.artifactPath(artifact.sha256)
        } else if artifact.url == nil {
            throw ControllerError(
                .artifactMissing,
                "the controller does not hold artifact sha256:\(artifact.sha256) and the manifest has no url; pass --artifact FILE")
        }
        return Checked(manifest: manifest, hosts: hosts, artifactFile: artifactFile, signers: signers, breakGlass: breakGlass)
    }
}
