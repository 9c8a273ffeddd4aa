import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

@Suite struct KeyTests {
    @Test func keyidIsTheSHA256OfTheRawPublicKey() {
        let key = Fixtures.alice.verifyingKey
        #expect(key.keyid == Digest.sha256Hex(key.raw))
        #expect(key.keyid.count == 64)
    }

    @Test func pemRoundTrips() throws {
        let key = SigningKey()
        let again = try SigningKey(pem: key.pem)
        #expect(again.seed == key.seed)
        #expect(try VerifyingKey(pem: key.verifyingKey.pem) == key.verifyingKey)
        #expect(key.pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(key.verifyingKey.pem.hasPrefix("-----BEGIN PUBLIC KEY-----"))
    }

    @Test func openSSLReadsOurKeysAndWeReadOpenSSLs() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let ours = SigningKey()
        try ours.pem.write(toFile: dir.child("ours.key"), atomically: false, encoding: .utf8)
        let text = try ProcessRunner.run("/usr/bin/openssl", ["pkey", "-in", dir.child("ours.key"), "-noout", "-text"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("ED25519 Private-Key"))
        // OpenSSL derives the same public key we do.
        let pub = try ProcessRunner.run("/usr/bin/openssl", ["pkey", "-in", dir.child("ours.key"), "-pubout"])
        #expect(try VerifyingKey(pem: pub.stdout) == ours.verifyingKey)

        let generated = try ProcessRunner.run(
            "/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", dir.child("theirs.key")])
        #expect(generated.status == 0)
        let theirs = try SigningKey(pem: String(contentsOfFile: dir.child("theirs.key"), encoding: .utf8))
        let theirPub = try ProcessRunner.run("/usr/bin/openssl", ["pkey", "-in", dir.child("theirs.key"), "-pubout"])
        #expect(try VerifyingKey(pem: theirPub.stdout) == theirs.verifyingKey)

        // A signature we make over the PAE verifies with OpenSSL's raw Ed25519 verification.
        let message = Array("DSSEv1 4 test 5 hello".utf8)
        try Data(message).write(to: URL(fileURLWithPath: dir.child("msg")))
        try Data(theirs.signature(for: message)).write(to: URL(fileURLWithPath: dir.child("sig")))
        try theirPub.stdout.write(toFile: dir.child("theirs.pub"), atomically: false, encoding: .utf8)
        let verified = try ProcessRunner.run(
            "/usr/bin/openssl",
            ["pkeyutl", "-verify", "-pubin", "-inkey", dir.child("theirs.pub"), "-rawin", "-in", dir.child("msg"),
             "-sigfile", dir.child("sig")])
        #expect(verified.status == 0, "\(verified.stdout) \(verified.stderr)")
    }

    @Test func wrongKeyTypesAreRefusedWithACode() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        _ = try ProcessRunner.run(
            "/usr/bin/openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", dir.child("ec.key")])
        let ec = try String(contentsOfFile: dir.child("ec.key"), encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try SigningKey(pem: ec) }
        do {
            _ = try SigningKey(pem: ec)
        } catch {
            #expect(error.code == .wrongKeyType)
        }
        do {
            _ = try SigningKey(pem: "garbage")
        } catch {
            #expect(error.code == .badPEM)
        }
        do {
            _ = try SigningKey(pem: Fixtures.alice.verifyingKey.pem)
        } catch {
            #expect(error.code == .wrongKeyType)
        }
    }
}
