/// A certificate together with the private key it was issued for, as
/// ``FleetCA/issueAgent(hostID:dnsNames:ipAddresses:validityDays:now:)`` and
/// ``FleetCA/issueController(name:validityDays:now:)`` make them.
public struct IssuedCredential: Sendable {
    public let certificate: PeerCertificate
    public let key: IdentityKey

    /// Writes `<directory>/<name>.key` (0600) then `<directory>/<name>.pem` (0644), where
    /// `name` is the host id or controller name. Refuses with `file_exists` (and writes
    /// nothing) if either exists. Returns the two paths.
    @discardableResult
    public func write(to directory: String) throws(PKIError) -> (certificate: String, key: String) {
        let name = certificate.identity.name
        let paths = (certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name).key")
        try PEMFile.writeKeyPair(key: key.pem, to: paths.key, publicMaterial: certificate.pem, to: paths.certificate)
        return paths
    }
}
