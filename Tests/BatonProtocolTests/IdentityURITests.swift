import BatonProtocol
import Testing

/// The one grammar of Baton identities, which the PKI and the agent both read by.
@Suite("Identity URIs")
struct IdentityURITests {
    @Test("valid identities parse and print back to the same URI", arguments: [
        ("baton://agent/web-1", IdentityURI.Role.agent, "web-1"),
        ("baton://controller/ci", .controller, "ci"),
        ("baton://agent/db.eu_1", .agent, "db.eu_1"),
        ("baton://controller/" + String(repeating: "a", count: 64), .controller, String(repeating: "a", count: 64)),
    ])
    func valid(uri: String, role: IdentityURI.Role, name: String) throws {
        let identity = try #require(IdentityURI(uri))
        #expect(identity.role == role)
        #expect(identity.name == name)
        #expect(identity.uri == uri)
        #expect("\(identity)" == uri)
        #expect(IdentityURI(role: role, name: name) == identity)
    }

    @Test("anything else is refused", arguments: [
        "", "baton://", "baton://agent", "baton://agent/", "baton://agent/web-1/", "baton://agent//web-1",
        "baton://agent/web-1?x=1", "baton://agent/web-1#f", "baton://agent/web-1:443", "baton://agent/Web-1",
        "baton://agent/../x", "baton://agent/.x", "baton://admin/web-1", "baton://Agent/web-1", "BATON://agent/web-1",
        "Baton://controller/ci", "baton:agent/web-1", "https://agent/web-1", " baton://agent/web-1",
        "baton://agent/web 1", "baton://controller/" + String(repeating: "a", count: 65),
    ])
    func invalid(uri: String) {
        #expect(IdentityURI(uri) == nil)
    }

    @Test("a name that breaks the naming rule makes no identity")
    func invalidNames() {
        #expect(IdentityURI(role: .agent, name: "DB") == nil)
        #expect(IdentityURI(role: .controller, name: "") == nil)
        #expect(IdentityURI(role: .agent, name: "a/b") == nil)
        #expect(IdentityURI.Role.allCases.map(\.rawValue) == ["agent", "controller"])
    }

    @Test("a certificate's identity is its only baton URI, whatever the letter case of the others")
    func single() {
        #expect(
            IdentityURI.single(among: ["https://example.com", "baton://agent/web-1"])
                == .success(IdentityURI(role: .agent, name: "web-1")!))
        #expect(IdentityURI.single(among: []) == .failure(.none))
        #expect(IdentityURI.single(among: ["urn:x", "https://baton/agent"]) == .failure(.none))
        #expect(
            IdentityURI.single(among: ["baton://agent/web-1", "BATON://agent/web-2"])
                == .failure(.several(["baton://agent/web-1", "BATON://agent/web-2"])))
        #expect(IdentityURI.single(among: ["Baton://agent/web-1"]) == .failure(.invalid("Baton://agent/web-1")))
        #expect(IdentityURI.single(among: ["baton:agent/web-1"]) == .failure(.invalid("baton:agent/web-1")))
    }

    @Test("the problems say what is wrong")
    func problems() {
        #expect("\(IdentityURI.Problem.none)".contains("no baton:// identity"))
        #expect("\(IdentityURI.Problem.several(["baton://agent/a", "baton://agent/b"]))".contains("2 baton:// identities"))
        #expect("\(IdentityURI.Problem.invalid("baton://x/y"))".contains("'baton://x/y' is not a Baton identity"))
    }
}
