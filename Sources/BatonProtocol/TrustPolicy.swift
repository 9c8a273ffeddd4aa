/// Who may release what: named Ed25519 public keys, and per environment how many
/// distinct keys must sign (`threshold`), which keys count, and how many suffice to go
/// back to a release the host already ran successfully (`rollbackThreshold`, default 1).
///
/// A policy with no keys refuses every manifest (fail closed).
public struct TrustPolicy: Sendable, Equatable {
    public struct Environment: Sendable, Equatable {
        public var threshold: Int
        /// Names of the keys that count for this environment.
        public var keys: [String]
        public var rollbackThreshold: Int
        /// The longest a manifest for this environment may be valid (`expiresAt` minus
        /// `issuedAt`); nil: the protocol's own bound of 366 days. A signed manifest is a
        /// standing order until it expires, so a short bound limits how long a leaked or
        /// withheld one stays usable.
        public var maxValidity: BatonDuration?
        /// Manifests for this environment must name their `targets`: one without them is
        /// good for every host of the environment, including a new or wiped one that
        /// remembers no serial, so it could be replayed there until it expires.
        public var requireTargets: Bool
        /// Change freezes: while one is in force, only a return to a release the host
        /// holds, or a break-glass manifest, is accepted.
        public var freezes: [FreezeWindow]
        /// Names of the keys that must all sign to break glass during a freeze; nil: any
        /// `threshold + 1` distinct keys of the environment.
        public var breakGlassKeys: [String]?

        public init(
            threshold: Int, keys: [String], rollbackThreshold: Int = 1, maxValidity: BatonDuration? = nil,
            requireTargets: Bool = false, freezes: [FreezeWindow] = [], breakGlassKeys: [String]? = nil
        ) {
            self.threshold = threshold
            self.keys = keys
            self.rollbackThreshold = rollbackThreshold
            self.maxValidity = maxValidity
            self.requireTargets = requireTargets
            self.freezes = freezes
            self.breakGlassKeys = breakGlassKeys
        }

        /// What breaking glass takes, for messages: `3 distinct approvals` or `the
        /// signatures of carol, cto`.
        public var breakGlassRequirement: String {
            if let names = breakGlassKeys { return "the signatures of \(names.joined(separator: ", ")) (and the threshold of \(threshold))" }
            return "\(threshold + 1) distinct approvals (one more than the threshold)"
        }
    }

    /// The shortest `maxValidity` a policy may set. A return the controller signs for a
    /// revert or `baton rollback` is valid for this long, so every environment accepts it.
    public static let minimumMaxValidity = BatonDuration.minutes(60)

    public var keys: [String: VerifyingKey]
    public var environments: [String: Environment]

    public init(keys: [String: VerifyingKey] = [:], environments: [String: Environment] = [:]) {
        self.keys = keys
        self.environments = environments
    }

    /// The policy that trusts nothing.
    public static let empty = TrustPolicy()

    /// The distinct public keys that count for an environment (two names for one key
    /// count once).
    public func verifyingKeys(for environment: String) -> Set<VerifyingKey> {
        guard let env = environments[environment] else { return [] }
        return Set(env.keys.compactMap { keys[$0] })
    }

    /// Names of a key, sorted, for messages and records.
    public func names(of key: VerifyingKey) -> [String] {
        keys.filter { $0.value == key }.map(\.key).sorted()
    }
}

extension TrustPolicy {
    /// Reads a trust policy file:
    /// ```yaml
    /// keys:
    ///   alice: alice.pub        # PEM public key, path relative to this file
    ///   ci: ci.pub
    /// environments:
    ///   staging:    {threshold: 1, keys: [ci, alice]}
    ///   production: {threshold: 2, keys: [alice, bob, ci], rollbackThreshold: 1,
    ///                maxValidity: 7d, requireTargets: true}
    /// ```
    /// plus, per environment, `freezes:` and `breakGlass:` (see `TrustPolicy+Freezes.swift`).
    /// `readKey` is given each key path as written and returns the PEM text (the caller
    /// resolves it relative to the policy file); BatonProtocol itself reads no files.
    public static func parse(
        yaml text: String, file: String, readKey: (String) throws -> String
    ) throws(ConfigurationError) -> TrustPolicy {
        let root = try YAMLDocument(text: text, file: file).root.mapping()
        try root.allowOnly(["keys", "environments"])

        var keys: [String: VerifyingKey] = [:]
        let keysNode = try root.require("keys")
        for entry in try keysNode.mapping().entries {
            guard Name.isValid(entry.key) else {
                throw entry.value.error(.invalidValue, "key name '\(entry.key)' must match \(Name.pattern)")
            }
            let path = try entry.value.string()
            let pem: String
            do {
                pem = try readKey(path)
            } catch let error as ConfigurationError {
                // The reader's own verdict on the file (e.g. its permissions) keeps its code.
                throw error
            } catch {
                throw entry.value.error(.keyUnreadable, "cannot read key file '\(path)': \(error)")
            }
            do {
                keys[entry.key] = try VerifyingKey(pem: pem)
            } catch {
                throw entry.value.error(error.code, "key file '\(path)': \(error.message)")
            }
        }
        if keys.isEmpty {
            throw keysNode.error(.noTrustedKeys, "no keys are listed; a policy that trusts nothing refuses every manifest")
        }

        var environments: [String: Environment] = [:]
        let envNode = try root.require("environments")
        for entry in try envNode.mapping().entries {
            guard Name.isValid(entry.key) else {
                throw entry.value.error(.invalidValue, "environment name '\(entry.key)' must match \(Name.pattern)")
            }
            let env = try entry.value.mapping()
            try env.allowOnly([
                "threshold", "keys", "rollbackThreshold", "maxValidity", "requireTargets", "freezes", "breakGlass",
            ])
            var names: [String] = []
            for item in try env.require("keys").list() {
                let name = try item.string()
                guard keys[name] != nil else {
                    throw item.error(
                        .unknownKey, "key '\(name)' is not listed under 'keys'; add it there or remove it here")
                }
                if names.contains(name) { throw item.error(.invalidValue, "key '\(name)' is listed twice") }
                names.append(name)
            }
            let distinct = Set(names.compactMap { keys[$0] }).count
            let thresholdNode = try env.require("threshold")
            let threshold = try thresholdNode.int(in: 1...100)
            guard threshold <= distinct else {
                throw thresholdNode.error(
                    .invalidValue,
                    "threshold \(threshold) can never be met: only \(distinct) distinct key(s) are listed for '\(entry.key)'")
            }
            var rollbackThreshold = 1
            if let node = env["rollbackThreshold"] {
                rollbackThreshold = try node.int(in: 1...100)
                guard rollbackThreshold <= distinct else {
                    throw node.error(
                        .invalidValue,
                        "rollbackThreshold \(rollbackThreshold) can never be met: only \(distinct) distinct key(s) are listed")
                }
            }
            var maxValidity: BatonDuration?
            if let node = env["maxValidity"] {
                let text = try node.string()
                guard let duration = BatonDuration(parsingValidity: text) else {
                    throw node.error(.invalidValue, "maxValidity '\(text)' is not a duration; write it like 12h or 7d")
                }
                guard duration >= minimumMaxValidity, duration.seconds <= ManifestLimits.maxLifetime else {
                    throw node.error(
                        .invalidValue,
                        "maxValidity \(duration) must be between \(minimumMaxValidity) (how long the controller's returns are valid) and 366d, the protocol's own bound")
                }
                maxValidity = duration
            }
            let requireTargets = try env["requireTargets"]?.bool() ?? false
            let freezes = try env["freezes"].map { (node) throws(ConfigurationError) in try parseFreezes(node) } ?? []
            let breakGlassKeys = try env["breakGlass"].map { (node) throws(ConfigurationError) in
                try parseBreakGlassKeys(node, keys: keys)
            }
            // A freeze that no one can break is not what `freezes` means: the way out must exist.
            if let freezesNode = env["freezes"], !freezes.isEmpty, breakGlassKeys == nil, threshold + 1 > distinct {
                throw freezesNode.error(
                    .invalidValue,
                    "breaking glass during a freeze takes threshold + 1 = \(threshold + 1) distinct keys, but only \(distinct) are listed for '\(entry.key)'; list another key, or name the break-glass keys with breakGlass: {keys: [...]}")
            }
            environments[entry.key] = Environment(
                threshold: threshold, keys: names, rollbackThreshold: rollbackThreshold, maxValidity: maxValidity,
                requireTargets: requireTargets, freezes: freezes, breakGlassKeys: breakGlassKeys)
        }
        return TrustPolicy(keys: keys, environments: environments)
    }
}

/// What a `readKey` closure throws for a key file it cannot read or that is not text.
public struct UnreadableKeyFile: Error, CustomStringConvertible {
    public let path: String
    public init(path: String) { self.path = path }
    public var description: String { "\(path) does not exist or is not readable text" }
}
