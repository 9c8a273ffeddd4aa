import NIOSSL

/// The TLS client context for artifact servers, built from `fetch.trust` for each fetch
/// (so a CA file replaced on disk counts from the next deployment, without a reload).
/// Full verification always: the chain must end in the trusted certificates and name the
/// URL's host (or, for an address, the address connected to). TLS 1.2 or later: artifact
/// servers are ordinary web servers, unlike the agent's own TLS 1.3-only API.
enum FetchTLS {
    static func context(_ trust: FetchSettings.Trust, fleetCA: String?) throws(AgentError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        // When the fetch drops a connection (its deadline, no bytes, a cancellation), it
        // is gone at once: not 5 s of waiting for the server's close_notify while bytes
        // keep arriving.
        configuration.shutdownTimeout = .milliseconds(100)
        switch trust {
        case .system:
            configuration.trustRoots = .default
        case .fleet:
            guard let fleetCA else {
                throw AgentError(
                    .artifactFetchFailed,
                    "fetch.trust is `fleet`, but batond.yaml names no fleet CA (tls.ca); set fetch.trust to `system` or to a CA file")
            }
            configuration.trustRoots = .certificates(try certificates(fleetCA, what: "fleet CA (tls.ca)"))
        case .file(let path):
            configuration.trustRoots = .certificates(try certificates(path, what: "CA file (fetch.trust)"))
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw AgentError(.artifactFetchFailed, "cannot make a TLS context for fetching: \(error)")
        }
    }

    private static func certificates(_ path: String, what: String) throws(AgentError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(path)
        } catch {
            throw AgentError(.artifactFetchFailed, "cannot read the \(what) \(path): \(error)")
        }
        guard !certificates.isEmpty else { throw AgentError(.artifactFetchFailed, "the \(what) \(path) holds no PEM certificate") }
        return certificates
    }
}
