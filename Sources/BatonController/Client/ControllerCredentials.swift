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
    ///
    /// The files are cross-checked first (`check(now:)`), so a wrong key or CA is a
    /// configuration error naming the file rather than a handshake failure with every agent.
    public func tlsConfiguration(now: Date = Date()) throws(ControllerError) -> TLSConfiguration {
        _ = try check(now: now)
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

    /// Everything that can be known about the three files without an agent: each exists
    /// and is readable (`credentials_missing`), parses, and they fit together: the
    /// certificate is a controller's, valid now, issued by the CA, and the key is its key
    /// (`credentials_invalid`). Every command that contacts agents calls this first, so
    /// the controller's own mistakes are never reported as unreachable agents.
    public func check(now: Date = Date()) throws(ControllerError) -> OwnCredentials {
        let ca = String(decoding: try read(caPath, what: "fleet CA certificate"), as: UTF8.self)
        let certificate = String(decoding: try read(certificatePath, what: "controller certificate"), as: UTF8.self)
        let key = String(decoding: try read(keyPath, what: "controller key"), as: UTF8.self)
        let checked: OwnCredentials
        do {
            checked = try OwnCredentials.check(certificatePEM: certificate, keyPEM: key, caPEM: ca, now: now)
        } catch {
            switch error.file {
            case .ca:
                throw ControllerError(
                    .credentialsInvalid,
                    "the fleet CA certificate '\(caPath)' \(error.message); point tls.ca (BATON_TLS_CA, --ca) at the fleet's ca.pem")
            case .certificate:
                throw ControllerError(
                    .credentialsInvalid,
                    "the controller certificate '\(certificatePath)' \(error.message); issue one with `baton pki issue controller NAME` and point tls.certificate (BATON_TLS_CERT, --cert) at it")
            case .key:
                throw ControllerError(
                    .credentialsInvalid,
                    "the controller key '\(keyPath)' \(error.message) (certificate: '\(certificatePath)'); point tls.key (BATON_TLS_KEY, --tls-key) at the key that certificate was issued for")
            }
        }
        guard checked.certificate.identity.role == .controller else {
            throw ControllerError(
                .credentialsInvalid,
                "the controller certificate '\(certificatePath)' carries \(checked.certificate.identity.uri), not a controller identity; agents would answer 403 (issue one with `baton pki issue controller NAME`)")
        }
        return checked
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
