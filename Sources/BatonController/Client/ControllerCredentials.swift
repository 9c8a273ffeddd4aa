import BatonPKI
import Foundation
import NIOSSL

/// The controller's side of mutual TLS: its certificate and key, and the fleet CA that
/// is the only root it trusts for agents. Loaded from files that live outside the
/// fleet repository (the controller configuration names them).
public struct ControllerCredentials: Sendable {
    public var certificatePath: String
    public var keyPath: String
    public var caPath: String

    public init(certificatePath: String, keyPath: String, caPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.caPath = caPath
    }

    /// TLS 1.3 only, the fleet CA only (never the system store), our client certificate,
    /// and full verification: chain and name. The name asked for is the agent's identity
    /// name (see ``PeerIdentity/agentTLSName(hostID:)``), so the handshake itself proves
    /// the agent is the host we meant.
    public func tlsConfiguration() throws(ControllerError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.certificateVerification = .fullVerification
        do {
            let ca = try read(caPath, what: "fleet CA certificate")
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca)))
        } catch let error as ControllerError {
            throw error
        } catch {
            throw ControllerError(.credentialsInvalid, "the fleet CA certificate '\(caPath)' is not a PEM certificate: \(error)")
        }
        do {
            let chain = try read(certificatePath, what: "controller certificate")
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(chain)).map { .certificate($0) }
        } catch let error as ControllerError {
            throw error
        } catch {
            throw ControllerError(.credentialsInvalid, "the controller certificate '\(certificatePath)' is not a PEM certificate: \(error)")
        }
        do {
            let key = try read(keyPath, what: "controller key")
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(key), format: .pem))
        } catch let error as ControllerError {
            throw error
        } catch {
            throw ControllerError(.credentialsInvalid, "the controller key '\(keyPath)' is not a PEM private key: \(error)")
        }
        if configuration.certificateChain.isEmpty {
            throw ControllerError(.credentialsInvalid, "'\(certificatePath)' holds no certificate")
        }
        return configuration
    }

    /// The identity our own certificate carries, so a misconfigured controller (an agent
    /// certificate, say) is told so before any agent answers 403.
    public func identity() throws(ControllerError) -> PeerIdentity {
        let pem = String(decoding: try read(certificatePath, what: "controller certificate"), as: UTF8.self)
        do {
            return try PeerCertificate(pem: pem).identity
        } catch {
            throw ControllerError(.credentialsInvalid, "'\(certificatePath)': \(error.message)")
        }
    }

    private func read(_ path: String, what: String) throws(ControllerError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ControllerError(
                .credentialsMissing,
                "the \(what) '\(path)' does not exist; set it in the controller configuration (tls:) or with a flag")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ControllerError(.credentialsMissing, "cannot read the \(what) '\(path)' (permissions?)")
        }
        return data
    }
}
