import BatonTestSupport
import Foundation
import Testing

/// Mistakes in names and inventory files are refused before any agent is contacted: a
/// name typed on the command line follows the one naming rule (`invalid_name`), an app
/// file must be the app its file name says (`app_file_mismatch`), and a fleet host's
/// environment must be in the trust policy (`unknown_environment`).
///
/// No agent runs here: the fleet's address is the discard port, closed on loopback, so
/// an old `baton` that went on to contact agents would fail differently (unreachable,
/// exit 1).
@Suite("mistakes caught before agents are contacted")
struct InventoryMistakeTests {
    /// A controller directory: trust policy (staging), fleet, apps/web.yaml, baton.yaml.
    private func controllerDirectory(appFile: String = "app: web\nenvironments: [staging]\n",
                                     hostEnvironment: String = "staging") throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "baton-mistakes")
        #expect(try ProcessRunner.runTool("baton", ["keys", "generate", "ci", "--dir", dir.child("keys")]).status == 0)
        try """
            keys: {ci: keys/ci.pub}
            environments:
              staging: {threshold: 1, keys: [ci]}
            """.write(toFile: dir.child("trust-policy.yaml"), atomically: false, encoding: .utf8)
        try """
            hosts:
              - {id: web-1, address: "127.0.0.1:9", environment: \(hostEnvironment)}
            """.write(toFile: dir.child("fleet.yaml"), atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.child("apps"), withIntermediateDirectories: true)
        try appFile.write(toFile: dir.child("apps/web.yaml"), atomically: false, encoding: .utf8)
        // An app file outside apps/, which a name like ../evil would reach.
        try "app: evil\nenvironments: [staging]\n".write(toFile: dir.child("evil.yaml"), atomically: false, encoding: .utf8)
        try "not really a tarball".write(toFile: dir.child("v1.tar.gz"), atomically: false, encoding: .utf8)
        try """
            fleet: fleet.yaml
            apps: apps
            trustPolicy: trust-policy.yaml
            stateDir: state
            tls: {certificate: ci.pem, key: ci.key, ca: ca.pem}
            signingKey: keys/ci.key
            """.write(toFile: dir.child("baton.yaml"), atomically: false, encoding: .utf8)
        return dir
    }

    private func baton(_ arguments: [String], in dir: TemporaryDirectory) throws -> ProcessResult {
        try ProcessRunner.runTool("baton", arguments, currentDirectory: dir.path)
    }

    private func expectRefused(_ result: ProcessResult, code: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 2, "\(result.stdout)\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("error: \(code): "), "\(result.stderr)", sourceLocation: sourceLocation)
    }

    @Test("app and release names on the command line follow the naming rule")
    func invalidNames() throws {
        let dir = try controllerDirectory()
        defer { dir.remove() }
        let release = ["--artifact", "v1.tar.gz", "--environment", "staging"]
        for app in ["../evil", "we/b", "Web"] {
            let result = try baton(["release", "create", app, "--release", "v1"] + release, in: dir)
            expectRefused(result, code: "invalid_name")
            #expect(result.stderr.contains("is not a valid app name"), "\(result.stderr)")
        }
        expectRefused(try baton(["release", "create", "web", "--release", "../v1"] + release, in: dir), code: "invalid_name")
        expectRefused(try baton(["deploy", "we/b", "--release", "v1", "--key", "keys/ci.key"] + release, in: dir), code: "invalid_name")
        expectRefused(try baton(["rollback", "web", "--environment", "staging", "--to", "../v0"], in: dir), code: "invalid_name")
        expectRefused(try baton(["status", "we/b"], in: dir), code: "invalid_name")
        expectRefused(try baton(["history", "../evil"], in: dir), code: "invalid_name")
        expectRefused(try baton(["lock", "break", "web", "prod/uction", "--reason", "test"], in: dir), code: "invalid_name")
        // Nothing was written outside the state directory, nor in it for the bad names.
        #expect(!FileManager.default.fileExists(atPath: dir.child("state/apps/../evil.json")))
        #expect(!FileManager.default.fileExists(atPath: dir.child("evil.json")))
    }

    @Test("an app file whose app: differs from its file name is refused")
    func appFileMismatch() throws {
        let dir = try controllerDirectory(appFile: "app: webb\nenvironments: [staging]\n")
        defer { dir.remove() }
        let result = try baton(
            ["release", "create", "web", "--artifact", "v1.tar.gz", "--release", "v1", "--environment", "staging"], in: dir)
        expectRefused(result, code: "app_file_mismatch")
        #expect(result.stderr.contains("app: webb"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.child("web-v1.manifest.json")))
    }

    @Test("a fleet host in an environment the trust policy does not list is an error")
    func unknownEnvironment() throws {
        let dir = try controllerDirectory(hostEnvironment: "stagin")
        defer { dir.remove() }
        for arguments in [["status"], ["release", "create", "web", "--artifact", "v1.tar.gz", "--release", "v1", "--environment", "staging"]] {
            let result = try baton(arguments, in: dir)
            expectRefused(result, code: "unknown_environment")
            #expect(result.stderr.contains("web-1 (stagin)"), "\(result.stderr)")
        }
    }
}
