#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SwiftASN1
import X509

/// The DNS names and IP addresses an agent certificate carries next to its identity, so
/// that the controller (and any TLS client) can check it reached the host it dialled.
/// Validated and normalised on the way in: DNS names lower case, IP addresses in their
/// canonical text form, duplicates dropped.
public struct AlternativeNames: Sendable, Hashable {
    /// Lower-case host names, e.g. `web-1.prod.example.com`. No wildcards.
    public private(set) var dnsNames: [String] = []
    /// IPv4 or IPv6 addresses in canonical text form, e.g. `10.0.0.7`, `fd00::7`.
    public private(set) var ipAddresses: [String] = []
    /// The same addresses as network-order bytes (4 or 16), as X.509 encodes them.
    private(set) var ipAddressBytes: [[UInt8]] = []

    /// No names.
    public init() {}

    /// Validates and normalises the names; `invalid_dns_name` or `invalid_ip_address` for
    /// the first one that is not valid.
    public init(dnsNames: [String], ipAddresses: [String]) throws(PKIError) {
        for name in dnsNames { try addDNSName(name) }
        for address in ipAddresses {
            guard let bytes = Self.parseIPAddress(address) else {
                throw PKIError(
                    .invalidIPAddress, "'\(address)' is not an IPv4 or IPv6 address (e.g. 10.0.0.7 or fd00::7)")
            }
            addIPAddress(bytes)
        }
    }

    public var isEmpty: Bool { dnsNames.isEmpty && ipAddresses.isEmpty }

    /// The names as they appear in a subjectAltName extension.
    var generalNames: [GeneralName] {
        dnsNames.map { .dnsName($0) } + ipAddressBytes.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
    }

    mutating func addDNSName(_ name: String) throws(PKIError) {
        let lower = name.lowercased()
        guard Self.isValidDNSName(lower) else {
            throw PKIError(
                .invalidDNSName,
                "'\(name)' is not a valid DNS name: letters, digits and hyphens in dot-separated labels of at most 63 characters, no wildcards")
        }
        if !dnsNames.contains(lower) { dnsNames.append(lower) }
    }

    /// Adds an address given as bytes (from a CSR); false unless it is 4 or 16 bytes long.
    @discardableResult
    mutating func addIPAddress(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 4 || bytes.count == 16, let text = Self.formatIPAddress(bytes) else { return false }
        if !ipAddressBytes.contains(bytes) {
            ipAddressBytes.append(bytes)
            ipAddresses.append(text)
        }
        return true
    }

    /// RFC 1123 host names: at most 253 characters; labels of 1 to 63 letters, digits and
    /// hyphens that neither start nor end with a hyphen. Wildcards are refused: a host
    /// certificate names one host.
    static func isValidDNSName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...253).contains(bytes.count) else { return false }
        return bytes.split(separator: 0x2E, omittingEmptySubsequences: false).allSatisfy { label in
            guard (1...63).contains(label.count), label.first != 0x2D, label.last != 0x2D else { return false }
            return label.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        }
    }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text (no zone ids) into network-order bytes.
    static func parseIPAddress(_ text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }

    static func formatIPAddress(_ bytes: [UInt8]) -> String? {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: 64)
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
