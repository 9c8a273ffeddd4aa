import BatonController
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// `notifications:` in `baton.yaml`: read strictly, with errors that name the file and line.
@Suite("Notification configuration")
struct NotificationConfigurationTests {
    static func load(_ yaml: String, files: [String: String] = [:]) throws -> ControllerConfiguration {
        let dir = try TemporaryDirectory(prefix: "baton-notify-config")
        defer { dir.remove() }
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: dir.child(name))) }
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: dir.child("baton.yaml")))
        return try ControllerConfiguration.load(dir.child("baton.yaml"), stateDefault: "/tmp/state")
    }

    static func failure(_ yaml: String, files: [String: String] = [:]) throws -> ConfigurationError? {
        do {
            _ = try load(yaml, files: files)
            return nil
        } catch let error as ConfigurationError {
            return error
        }
    }

    @Test("every field, read into hooks; defaults are generic, info and every event")
    func readsHooks() throws {
        let configuration = try Self.load("""
            fleet: fleet.yaml
            notifications:
              - url: https://hooks.example.com/T0/B0/abc
                format: slack
                minSeverity: warning
                events: [halted, finished]
                headers: {X-Team: web}
                secretFile: hook.secret
              - url: http://127.0.0.1:9000/baton
            """, files: ["hook.secret": "s3cret\n"])
        let hooks = configuration.notifications
        try #require(hooks.count == 2)
        #expect(hooks[0].url.absoluteString == "https://hooks.example.com/T0/B0/abc")
        #expect(hooks[0].format == .slack && hooks[0].minSeverity == .warning && hooks[0].events == [.halted, .finished])
        #expect(hooks[0].headers == ["X-Team": "web"])
        #expect(hooks[0].secret == Array("s3cret".utf8), "the trailing newline is not part of the secret")
        #expect(hooks[0].hostLabel == "hooks.example.com")
        #expect(hooks[1].format == .generic && hooks[1].minSeverity == .info && hooks[1].events == nil && hooks[1].secret == nil)
    }

    @Test("mistakes are refused with their code, file and line", arguments: [
        ("notifications:\n  - url: https://h.example/x\n    minSeverity: loud\n", ConfigurationError.Code.invalidValue, 3, "loud"),
        ("notifications:\n  - url: ftp://h.example/x\n", .invalidValue, 2, "http"),
        ("notifications:\n  - format: slack\n", .missingField, 2, "url"),
        ("notifications:\n  - url: https://h.example/x\n    event: [started]\n", .unknownField, 3, "event"),
        ("notifications:\n  - url: https://h.example/x\n    events: [started, exploded]\n", .invalidValue, 3, "exploded"),
        ("notifications:\n  - url: https://h.example/x\n    events: []\n", .invalidValue, 3, "empty"),
        ("notifications:\n  - url: https://h.example/x\n    format: teams\n", .invalidValue, 3, "teams"),
        ("notifications:\n  - url: https://h.example/x\n    secretFile: missing.key\n", .keyUnreadable, 3, "missing.key"),
        ("notifications: {url: https://h.example/x}\n", .invalidValue, 1, "list"),
    ])
    func refusesMistakes(yaml: String, code: ConfigurationError.Code, line: Int, mentions: String) throws {
        let error = try #require(try Self.failure(yaml))
        #expect(error.code == code)
        #expect(error.line == line, "\(error)")
        #expect(error.file?.hasSuffix("baton.yaml") == true)
        #expect(error.message.contains(mentions), "\(error)")
    }

    @Test("an empty secret file is refused rather than signing with an empty key")
    func emptySecret() throws {
        let error = try #require(try Self.failure("notifications:\n  - url: https://h.example/x\n    secretFile: empty\n", files: ["empty": "\n"]))
        #expect(error.code == .invalidValue && error.line == 3)
    }
}
