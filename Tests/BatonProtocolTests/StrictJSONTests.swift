import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `StrictJSON`, the reading every payload gets before the decoder sees it.
@Suite struct StrictJSONTests {
    static func refusal(_ text: String) -> StrictJSON.Refusal? {
        refusal(Array(text.utf8))
    }

    static func refusal(_ bytes: [UInt8]) -> StrictJSON.Refusal? {
        do {
            try StrictJSON.check(bytes)
            return nil
        } catch {
            return error
        }
    }

    static func nested(_ levels: Int, around inner: String = "") -> String {
        String(repeating: "[", count: levels) + inner + String(repeating: "]", count: levels)
    }

    @Test func theDepthLimitIsExactlyMaxDepth() {
        #expect(StrictJSON.maxDepth == 32)
        #expect(Self.refusal(Self.nested(32)) == nil)
        let deep = Self.refusal(Self.nested(33))
        #expect(deep?.problem == .tooDeep)
        #expect(deep?.offset == 32)
        #expect(deep?.path == String(repeating: "[0]", count: 32))
        #expect(Self.refusal(#"{"a":"# + Self.nested(31, around: "1") + "}") == nil)
        #expect(Self.refusal(#"{"a":"# + Self.nested(32, around: "1") + "}")?.problem == .tooDeep)
    }

    /// What the old scanner got wrong: it stopped at depth 512 and took "could not scan"
    /// for "no duplicate", while the decoder read on and kept the first member.
    @Test func aDuplicateBehindDeepPaddingIsRefused() {
        let payload = #"{"padding":"# + Self.nested(511) + #","hooks":{"activate":{"command":"sh -c evil"}},"hooks":{}}"#
        let refusal = Self.refusal(payload)
        #expect(refusal?.problem == .tooDeep)
        #expect(refusal?.path.hasPrefix("padding[0]") == true)
        // Within the bound, the duplicate itself is what is reported, with where it is.
        let shallow = #"{"padding":"# + Self.nested(30) + #","hooks":{"activate":{"command":"x","command":["true"]}}}"#
        let duplicate = Self.refusal(shallow)
        #expect(duplicate?.problem == .duplicateMember("command"))
        #expect(duplicate?.path == "hooks.activate")
        #expect(duplicate?.offset == shallow.utf8.count - #""command":["true"]}}}"#.utf8.count)
        #expect(duplicate?.description.contains("'command' twice in hooks.activate") == true)
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#,
        #"{"a":1,"\u0061":2}"#,
        #"{"\u00e9":1,"é":2}"#,
        // Canonically equivalent spellings are one key to JSONDecoder, so one member here.
        #"{"é":1,"e\u0301":2}"#,
        #"{"\u212b":1,"\u00c5":2}"#,
        #"[{"x":[{"b":1}, {"b":2,"b":3}]}]"#,
        #"{"\ud83d\ude00":1,"😀":2}"#,
    ])
    func duplicatesAtAnyDepthAndSpelling(_ text: String) {
        guard case .duplicateMember? = Self.refusal(text)?.problem else {
            Issue.record("not refused as a duplicate: \(text)")
            return
        }
    }

    @Test(arguments: [
        "", " ", "{", "{}}", "{} {}", "{},", "[1,]", #"{"a":1,}"#, "[01]", "[1.]", "[.5]", "[+1]", "[-]", "[1e]",
        "[NaN]", "[Infinity]", "[-Infinity]", "[tru]", "[nul]", "['a']", #"["\x"]"#, #"["\u12"]"#, #"["\u12G4"]"#,
        #"["\ud800"]"#, #"["\udc00"]"#, #"["\ud800\u0041"]"#, "[\"a\u{01}b\"]", "[1]\u{0B}", "\u{FEFF}[1]",
        "[1\u{00A0}]", "{\"a\" 1}", "{a:1}", "[1 2]",
    ])
    func whatCannotBeReadToTheEndIsRefused(_ text: String) {
        guard case .malformed? = Self.refusal(text)?.problem else {
            Issue.record("not refused as malformed: \(text.debugDescription)")
            return
        }
    }

    @Test func invalidUTF8IsRefused() {
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0xFF]] {
            guard case .malformed? = Self.refusal(bytes)?.problem else {
                Issue.record("not refused: \(bytes)")
                continue
            }
        }
    }

    @Test(arguments: [
        "{}", "[]", " \t\r\n{ } \n", "0", "-0", "-0.0e+00", "1E5", "12345678901234567890", #""\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\""#,
        "[true,false,null]", #"{"a":{"b":[1,{"c":"\u007f"}]},"b":2}"#, #"{"é":1,"e":2}"#,
    ])
    func plainJSONIsAccepted(_ text: String) {
        #expect(Self.refusal(text) == nil, "\(text.debugDescription): \(String(describing: Self.refusal(text)))")
    }

    @Test func messagesNameTheProblemAndThePlace() {
        let trailing = Self.refusal(#"{"app":"web"} x"#)
        #expect(trailing?.description == "the payload is not JSON that can be read to its end: 'x' after the end of the value at the top level (byte 14)")
        let inArray = Self.refusal(#"{"health":{"checks":[{"type":"tcp"},{"port":NaN}]}}"#)
        #expect(inArray?.path == "health.checks[1].port")
        #expect(inArray?.description.contains("in health.checks[1].port") == true)
    }

    /// `Manifest.parse`, which the agent and `baton manifest verify` both use, reads through it.
    @Test func manifestParseRefusesWithInvalidManifest() {
        var payload = Fixtures.payload(Fixtures.manifest())
        payload.removeLast()
        payload += Array(#","padding":"#.utf8) + Array(Self.nested(32).utf8) + [UInt8(ascii: "}")]
        #expect(throws: VerificationError.self) { try Manifest.parse(payload: payload) }
        do {
            _ = try Manifest.parse(payload: payload)
        } catch {
            #expect(error.code == .invalidManifest)
            #expect(error.message.contains("deeper than 32 levels in padding"))
        }
    }
}

/// The Swift reader's verdict against an independent one: Python's `json`, made strict
/// with `object_pairs_hook` and `parse_constant` (`Protocol/interop/strict_json.py`),
/// over generated payloads: deep nesting, duplicates at every depth, odd whitespace,
/// unicode escapes and near misses of each.
@Suite struct StrictJSONDifferentialTests {
    /// SplitMix64: a fixed seed gives the same payloads on every run and platform.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Names that collide in every way a reader may or may not notice: the same text,
    /// escaped spellings, canonically equivalent spellings, surrogate pairs.
    static let names: [[UInt8]] = [
        #""a""#, #""\u0061""#, #""b""#, #""hooks""#, #""ho\u006fks""#, #""é""#, #""\u00e9""#, #""e\u0301""#,
        #""\u212B""#, #""\u00c5""#, #""A\u030a""#, #""😀""#, #""\ud83d\ude00""#, #""""#, #""\u0000""#, #""a\/b""#,
        #""a/b""#,
    ].map { Array($0.utf8) }

    static let scalars: [[UInt8]] = [
        "0", "-0", "7", "-12", "3.25", "-0.5e-3", "1E+2", "6e10", "123456789012345678901234567890", "true", "false",
        "null", #""plain""#, #""\"\\\/\b\f\n\r\t""#, #""\u00e9\u20AC""#, #""\ud83d\ude00""#, #""naïve ☃""#,
        #""\u007f""#, "\"\u{7F}\"", #""""#,
    ].map { Array($0.utf8) }

    /// Near misses: each is refused by a strict reader.
    static let badScalars: [[UInt8]] = [
        "01", "1.", ".5", "+1", "-", "1e", "1e+", "NaN", "Infinity", "-Infinity", "tru", "nul", "'a'", #""\x""#,
        #""\u12""#, #""\u12G4""#, #""\ud800""#, #""\udc00x""#, #""\ud800\u0041""#, "\"a\u{01}b\"", "\"\t\"", #""open"#,
    ].map { Array($0.utf8) } + [[0x22, 0xC3, 0x28, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22]]

    static let spaces: [[UInt8]] = ["", "", "", " ", "\n", "\t", "\r\n", " \t\n "].map { Array($0.utf8) }
    /// Whitespace in other standards, but not in JSON.
    static let badSpaces: [[UInt8]] = [[0x0B], [0x0C], [0xC2, 0xA0], [0xE2, 0x80, 0xA8]]

    struct Writer {
        var rng: Generator
        var out: [UInt8] = []
        /// Probability (per mille) of each kind of near miss.
        var faults: Int

        mutating func chance(_ perMille: Int) -> Bool { Int.random(in: 0..<1000, using: &rng) < perMille }
        mutating func pick(_ options: [[UInt8]]) -> [UInt8] { options.randomElement(using: &rng)! }

        mutating func space() {
            let bytes = chance(faults / 4) ? pick(StrictJSONDifferentialTests.badSpaces) : pick(StrictJSONDifferentialTests.spaces)
            out += bytes
        }

        mutating func value(depth: Int, spine: Int) {
            space()
            if depth < spine {
                // Mostly arrays on a long spine, so that many reach the depth bound before
                // a duplicate name is met on the way.
                chance(250) ? object(depth: depth, spine: spine) : array(depth: depth, spine: spine)
            } else if depth < 6 && chance(350) {
                chance(500) ? object(depth: depth, spine: spine) : array(depth: depth, spine: spine)
            } else {
                let bytes = chance(faults) ? pick(StrictJSONDifferentialTests.badScalars) : pick(StrictJSONDifferentialTests.scalars)
                out += bytes
            }
            space()
        }

        mutating func object(depth: Int, spine: Int) {
            out.append(UInt8(ascii: "{"))
            let count = depth < spine ? Int.random(in: 1...3, using: &rng) : Int.random(in: 0...4, using: &rng)
            let deepest = Int.random(in: 0..<max(count, 1), using: &rng)
            for member in 0..<count {
                if member > 0 { out.append(UInt8(ascii: ",")) }
                space()
                // An unquoted name now and then.
                let name = chance(faults / 4) ? Array("a".utf8) : pick(StrictJSONDifferentialTests.names)
                out += name
                space()
                out.append(UInt8(ascii: ":"))
                value(depth: depth + 1, spine: member == deepest ? spine : 0)
            }
            if count > 0, chance(faults / 4) { out.append(UInt8(ascii: ",")) }
            if count == 0 { space() }
            out.append(UInt8(ascii: "}"))
        }

        mutating func array(depth: Int, spine: Int) {
            out.append(UInt8(ascii: "["))
            let count = depth < spine ? Int.random(in: 1...3, using: &rng) : Int.random(in: 0...4, using: &rng)
            let deepest = Int.random(in: 0..<max(count, 1), using: &rng)
            for element in 0..<count {
                if element > 0 { out.append(UInt8(ascii: ",")) }
                value(depth: depth + 1, spine: element == deepest ? spine : 0)
            }
            if count > 0, chance(faults / 4) { out.append(UInt8(ascii: ",")) }
            if count == 0 { space() }
            out.append(UInt8(ascii: "]"))
        }
    }

    static func nested(_ levels: Int, around inner: String) -> [UInt8] {
        Array((String(repeating: "[", count: levels) + inner + String(repeating: "]", count: levels)).utf8)
    }

    /// Hand-picked payloads around the depth bound, then generated ones.
    static func payloads() -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        for levels in 0...40 {
            payloads.append(nested(levels, around: "1"))
            payloads.append(nested(levels, around: #"{"a":1,"a":2}"#))
            payloads.append(nested(levels, around: #"{"a":1,"b":2}"#))
            payloads.append(Array((#"{"pad":"# + String(decoding: nested(levels, around: ""), as: UTF8.self) + #","a":1,"a":2}"#).utf8))
        }
        payloads.append(Array((#"{"padding":"# + String(decoding: nested(511, around: ""), as: UTF8.self)
            + #","hooks":{"activate":{"command":"sh"}},"hooks":{"activate":{"command":["true"]}}}"#).utf8))
        payloads.append(nested(1000, around: ""))

        var rng = Generator(state: 0xBA70_5EED)
        for round in 0..<4000 {
            // A third are long spines on either side of the depth bound, a third short and
            // clean, a third short with faults.
            let spine = round % 3 == 0 ? Int.random(in: 24...40, using: &rng) : Int.random(in: 0...4, using: &rng)
            var writer = Writer(rng: rng, faults: round % 3 == 2 ? 25 : 0)
            writer.value(depth: 0, spine: spine)
            if writer.chance(writer.faults) {
                let trailer = ["x", "{}", ",", "[1]", "\u{FEFF}"].randomElement(using: &writer.rng)!
                writer.out += Array(trailer.utf8)
            }
            if writer.chance(writer.faults / 2) { writer.out.insert(contentsOf: [0xEF, 0xBB, 0xBF], at: 0) }
            rng = writer.rng
            payloads.append(writer.out)
        }
        return payloads
    }

    @Test func swiftAndPythonReadEveryPayloadAlike() throws {
        try Python.require(["json", "unicodedata"], install: "install Python 3")
        let payloads = Self.payloads()
        let dir = try TemporaryDirectory(prefix: "baton-strict-json")
        defer { dir.remove() }
        let file = dir.child("payloads.hex")
        let hex = payloads.map { $0.map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n") + "\n"
        try Data(hex.utf8).write(to: URL(fileURLWithPath: file))
        let run = try Python.run("interop/strict_json.py", [file])
        try #require(run.status == 0, "strict_json.py failed (\(run.status)): \(run.stderr)")
        let verdicts = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(verdicts.count == payloads.count)

        var accepted = 0, disagreements: [String] = []
        var refusedFor: [String: Int] = [:]
        for (payload, python) in zip(payloads, verdicts) {
            let swift = StrictJSONTests.refusal(payload)
            let pythonAccepts = python == "accept"
            if pythonAccepts { accepted += 1 }
            if let swift {
                switch swift.problem {
                case .duplicateMember: refusedFor["duplicate", default: 0] += 1
                case .tooDeep: refusedFor["depth", default: 0] += 1
                case .malformed: refusedFor["malformed", default: 0] += 1
                }
            }
            if (swift == nil) != pythonAccepts {
                let shown = String(decoding: payload.prefix(160), as: UTF8.self).debugDescription
                disagreements.append("\(shown)\n  swift: \(swift.map(\.description) ?? "accept")\n  python: \(python)")
            }
            // What the strict reader passes, Foundation's parser must read too: the decoder
            // never meets a payload the reader could not vouch for.
            if swift == nil {
                #expect((try? JSONSerialization.jsonObject(with: Data(payload), options: .fragmentsAllowed)) != nil,
                        "Foundation cannot read what StrictJSON accepted: \(String(decoding: payload, as: UTF8.self).debugDescription)")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) of \(payloads.count) payloads judged differently:\n\(disagreements.prefix(5).joined(separator: "\n"))")
        // The generator must exercise every kind of verdict, or agreement proves little.
        #expect(accepted >= 800, "only \(accepted) payloads accepted")
        #expect(accepted + refusedFor.values.reduce(0, +) == payloads.count)
        #expect(refusedFor["duplicate", default: 0] >= 200, "\(refusedFor)")
        #expect(refusedFor["depth", default: 0] >= 200, "\(refusedFor)")
        #expect(refusedFor["malformed", default: 0] >= 200, "\(refusedFor)")
    }
}
