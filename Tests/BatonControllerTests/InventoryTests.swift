import BatonController
import BatonProtocol
import Foundation
import Testing

@Suite struct InventoryTests {
    static let root = #filePath.components(separatedBy: "/Tests/")[0]

    @Test func theExampleFilesParse() throws {
        let fleet = try Fleet.load(Self.root + "/controller/fleet.example.yaml")
        #expect(fleet.hosts.count == 4)
        #expect(fleet.hosts[0].labels["zone"] == "eu-1")
        #expect(fleet.hosts[0].hostname == "10.0.0.11")
        #expect(fleet.hosts[0].port == 7443)
        let app = try AppDefinition.load(Self.root + "/controller/web.app.example.yaml")
        #expect(app.app == "web")
        #expect(app.hooks?.activate?.command == .argv(["systemctl", "restart", "web"]))
        #expect(app.hooks?.prepare?.command == .shell("./bin/check-config"))
        #expect(app.health?.checks.count == 3)
        #expect(app.bake == .minutes(2))
        #expect(app.analysis?.failDifference == 0.02)
    }

    @Test func selections() throws {
        let fleet = try Fleet.load(Self.root + "/controller/fleet.example.yaml")
        #expect(try HostSelection(environment: "production").hosts(in: fleet).map(\.id) == ["web-1", "web-2", "worker-1"])
        let web = HostSelection(environment: "production", selector: HostSelection.parseSelector("role=web")!)
        #expect(try web.hosts(in: fleet).map(\.id) == ["web-1", "web-2"])
        #expect(try HostSelection(hostIDs: ["web-2"]).hosts(in: fleet).map(\.id) == ["web-2"])
        #expect(throws: ConfigurationError.self) { try HostSelection(hostIDs: ["nope"]).hosts(in: fleet) }
        #expect(HostSelection.parseSelector("role") == nil)
    }

    @Test(arguments: [
        ("hosts:\n  - id: a\n    address: nowhere\n    environment: s\n", "invalid_value", 3),
        ("hosts:\n  - id: a\n    address: 1.2.3.4:1\n", "missing_field", 2),
        ("hosts:\n  - id: a\n    address: 1.2.3.4:1\n    environment: s\n  - id: a\n    address: 1.2.3.4:2\n    environment: s\n", "invalid_value", 5),
        ("hosts:\n  - id: a\n    adress: 1.2.3.4:1\n    environment: s\n", "unknown_field", 3),
        ("hosts: []\n", "missing_field", 1),
    ])
    func fleetErrorsNameTheLine(yaml: String, code: String, line: Int) {
        do {
            _ = try Fleet.parse(yaml: yaml, file: "fleet.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.code.rawValue == code, "\(error)")
            #expect(error.line == line, "\(error)")
        }
    }

    @Test(arguments: [
        ("app: web\nenvironments: [s]\nbake: soon\n", "invalid_value", 3),
        ("app: web\nenvironments: [s]\nhooks:\n  activate: {command: []}\n", "invalid_value", 1),
        ("app: web\nenvironments: [s]\nhealth:\n  checks:\n    - {type: udp}\n", "invalid_value", 4),
        ("app: Web\nenvironments: [s]\n", "invalid_value", 1),
        ("app: web\n", "missing_field", 1),
    ])
    func appErrorsNameTheLine(yaml: String, code: String, line: Int) {
        do {
            _ = try AppDefinition.parse(yaml: yaml, file: "web.yaml")
            Issue.record("accepted")
        } catch {
            #expect(error.code.rawValue == code, "\(error)")
            #expect(error.line == line, "\(error)")
        }
    }
}
