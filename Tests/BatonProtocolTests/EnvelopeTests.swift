import BatonProtocol
import Foundation
import Testing

@Suite struct EnvelopeTests {
    @Test func preAuthenticationEncodingMatchesTheDSSESpec() {
        // The example from the DSSE v1 protocol document.
        let pae = Envelope.preAuthenticationEncoding(
            payloadType: "http://example.com/HelloWorld", payload: Array("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
        // Lengths are byte counts, not character counts.
        let utf8 = Envelope.preAuthenticationEncoding(payloadType: "t", payload: Array("é".utf8))
        #expect(String(decoding: utf8, as: UTF8.self) == "DSSEv1 1 t 2 é")
    }

    @Test func base64InBothAlphabetsWithOrWithoutPadding() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF, 0x01]
        #expect(Base64.decode("+/+/AQ==") == bytes)
        #expect(Base64.decode("-_-_AQ==") == bytes)
        #expect(Base64.decode("-_-_AQ") == bytes)
        #expect(Base64.decode("+/+/AQ") == bytes)
        #expect(Base64.decode("+_+/AQ==") == nil)  // mixed alphabets
        #expect(Base64.decode("A") == nil)
        #expect(Base64.decode("AQ=A") == nil)
    }

    @Test func unknownFieldsAreIgnoredAndSerializationRoundTrips() throws {
        let envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice, Fixtures.bob])
        var object = try JSONSerialization.jsonObject(with: envelope.serialized()) as! [String: Any]
        object["future"] = ["x": 1]
        var signatures = object["signatures"] as! [[String: Any]]
        signatures[0]["extra"] = true
        object["signatures"] = signatures
        let parsed = try Envelope.parse(try JSONSerialization.data(withJSONObject: object))
        #expect(parsed == envelope)
        #expect(try Envelope.parse(envelope.serialized(pretty: false)) == envelope)
    }

    @Test func signingTwiceWithOneKeyAddsNothing() {
        var envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        envelope.sign(with: Fixtures.alice)
        #expect(envelope.signatures.count == 1)
        envelope.sign(with: Fixtures.bob)
        #expect(envelope.signatures.count == 2)
        #expect(envelope.signatures.map(\.keyid) == [Fixtures.alice.keyid, Fixtures.bob.keyid])
    }

    @Test func tooManySignatures() {
        var envelope = Fixtures.envelope(Fixtures.manifest(), signedBy: [Fixtures.alice])
        envelope.signatures = Array(repeating: envelope.signatures[0], count: Envelope.maxSignatures + 1)
        #expect(Fixtures.verify(envelope).code == .tooLarge)
    }
}
