import BatonProtocol
import Testing

/// The YAML reader under every configuration file (libyaml, event by event): the shapes
/// people write, and the inputs it refuses with the line they are on.
@Suite struct YAMLDocumentTests {
    func document(_ text: String) throws(ConfigurationError) -> YAMLDocument {
        try YAMLDocument(text: text, file: "x.yaml")
    }

    func refusal(_ text: String) -> ConfigurationError? {
        do {
            _ = try document(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func blockAndFlowStylesReadAlike() throws {
        let text = """
            # a comment
            name: web
            hosts:
              - web-1
              - "web-2"
            limits: {count: 3, ratio: '50%'}
            notes: |
              two
              lines

            """
        let root = try document(text).root.mapping()
        #expect(root.entries.map(\.key) == ["name", "hosts", "limits", "notes"])
        #expect(try root.require("name").string() == "web")
        #expect(try root.require("hosts").list().map { try $0.string() } == ["web-1", "web-2"])
        let limits = try root.require("limits").mapping()
        #expect(try limits.require("count").int() == 3)
        #expect(try limits.require("ratio").string() == "50%")
        #expect(try root.require("notes").string() == "two\nlines\n")
        #expect(root["hosts"]?.line == 4)  // a block list starts on its first item
        #expect(try root.require("hosts").list()[1].line == 5)
        #expect(try root.require("hosts").list()[1].path == "hosts[1]")
    }

    @Test func plainScalarsAreTypedQuotedOnesAreText() throws {
        let root = try document("a: 1\nb: \"1\"\nc: true\nd: 'true'\ne: ~\nf: !!str 2\n").root
        #expect(
            try root.jsonObject()
                == .object([
                    "a": .number(1), "b": .string("1"), "c": .bool(true), "d": .string("true"), "e": .null,
                    "f": .string("2"),
                ]))
    }

    @Test func anEmptyFileOrOnlyCommentsIsEmpty() {
        for text in ["", "\n", "# nothing here\n"] {
            let error = refusal(text)
            #expect(error?.code == .invalidYAML)
            #expect(error?.description.contains("the file is empty") == true, "\(String(describing: error))")
        }
    }

    @Test(arguments: [
        ("a: [1, 2\nb: 3\n", 2, "did not find expected ',' or ']'"),
        ("a: 1\n  b: 2\n", 2, "mapping values are not allowed"),
        ("a: 1\n---\nb: 2\n", 2, "more than one YAML document"),
        ("base: &b {x: 1}\nother: *b\n", 2, "aliases"),
        ("a: 1\nb: 2\na: 3\n", 3, "'a' appears twice in one mapping (first on line 1)"),
        ("a: \"\\q\"\n", 1, "unknown escape"),
        ("\t- tab\n", 1, "cannot start any token"),
    ])
    func malformedInputNamesItsLine(text: String, line: Int, problem: String) {
        let error = refusal(text)
        #expect(error?.code == .invalidYAML, "\(String(describing: error))")
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.description.contains(problem) == true, "\(String(describing: error))")
        #expect(error?.description.contains("x.yaml:\(line)") == true)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n"
        let error = refusal(deep)
        #expect(error?.code == .invalidYAML)
        #expect(error?.description.contains("nested more than 64 levels") == true, "\(String(describing: error))")
        // Deep but within the bound is fine.
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60) + "\n"
        #expect(refusal(fine) == nil)
    }

    @Test func keysMustBeScalars() {
        #expect(throws: ConfigurationError.self) { try document("? [a, b]\n: 1\n").root.mapping() }
    }
}
