import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// A running `batond run` and its state: unreadable state is marked in the API and
/// logged at start, and looking at the host needs no stop.
@Suite("batond run: state on disk") struct DaemonStateTests {
    /// A host serving with v1 deployed through the API.
    static func servingV1() async throws -> (DaemonHost, Daemon, APIClient) {
        let host = try await DaemonHost.make()
        let daemon: Daemon
        do {
            daemon = try await host.start()
        } catch {
            host.remove()
            throw error
        }
        let api = host.client(daemon)
        let v1 = try await host.artifact("v1")
        #expect(try await api.upload(v1).status == 201)
        #expect(try await api.finalPhase(try await api.start(try host.envelope("v1", artifact: v1))) == .succeeded)
        return (host, daemon, api)
    }

    @Test(.timeLimit(.minutes(3)))
    func appsListTheAppWithUnreadableStateAndStartLogsIt() async throws {
        let (host, daemon, api) = try await Self.servingV1()
        defer { host.remove() }
        defer { daemon.stop() }
        let layout = host.fixture.layout
        let statePath = layout.appState("web")
        let good = try Data(contentsOf: URL(fileURLWithPath: statePath))

        for corruption in StateCorruption.allCases {
            try good.write(to: URL(fileURLWithPath: statePath))
            try corruption.apply(to: statePath)
            let list = try await api.get("/v1/apps")
            #expect(list.status == 200)
            let web = try list.decode(AppList.self).apps.first { $0.app == "web" }
            #expect(web?.stateError?.code == "state_corrupt", "\(corruption): \(list.body)")
            #expect(web?.stateError?.message.contains(statePath) == true)
            #expect(web?.current == "v1")
            let one = try await api.get("/v1/apps/web")
            #expect(one.status == 200)
            #expect(try one.decode(AppStatus.self).stateError?.code == "state_corrupt", "\(corruption): \(one.body)")
        }

        // A deployment is refused (409, not retried by a controller) and changes nothing.
        let before = try DirectorySnapshot.take(layout.root + "/apps").merging(try DirectorySnapshot.take(layout.appStateDirectory)) { a, _ in a }
        let v2 = try await host.artifact("v2")
        #expect(try await api.upload(v2).status == 201)
        let refused = try await api.deploy(try host.envelope("v2", artifact: v2))
        #expect(refused.status == 409, "\(refused.body)")
        #expect(refused.errorCode == "state_corrupt")
        let after = try DirectorySnapshot.take(layout.root + "/apps").merging(try DirectorySnapshot.take(layout.appStateDirectory)) { a, _ in a }
        #expect(DirectorySnapshot.difference(before, after).isEmpty, "\(DirectorySnapshot.difference(before, after))")

        // A truncated record of the last deployment: marked too, and GET of it is not a 404.
        try good.write(to: URL(fileURLWithPath: statePath))
        #expect(try await api.app().stateError == nil)
        let record = layout.deployment("web-1")
        try StateCorruption.truncated.apply(to: record)
        let marked = try await api.app()
        #expect(marked.stateError?.code == "state_corrupt")
        #expect(marked.stateError?.message.contains(record) == true)
        let read = try await api.get("/v1/deployments/web-1")
        #expect(read.status == 409)
        #expect(read.errorCode == "state_corrupt")

        // At start, the agent says so loudly, and still serves the app marked.
        try StateCorruption.empty.apply(to: statePath)
        daemon.stop()
        _ = await daemon.waitForExit()
        let restarted = try await host.start()
        defer { restarted.stop() }
        let line = try await restarted.waitForLine(containing: "level=critical", "baton.code=state_corrupt")
        #expect(line.contains(statePath))
        let again = try await host.client(restarted).get("/v1/apps")
        #expect(try again.decode(AppList.self).apps.first?.stateError?.code == "state_corrupt", "\(again.body)")
    }

    @Test("batond status and batond audit verify read while batond run holds the data directory, and write nothing",
          .timeLimit(.minutes(3)))
    func lookingNeedsNoStop() async throws {
        let (host, daemon, _) = try await Self.servingV1()
        defer { host.remove() }
        defer { daemon.stop() }
        let config = host.configPath, root = host.fixture.dataDirectory
        let before = try DirectorySnapshot.take(root)

        let status = try await offThePool { try ProcessRunner.runTool("batond", ["status", "--config", config, "--json"]) }
        #expect(status.status == 0, "\(status.stderr)")
        let web = try #require(try BatonJSON.decode(AppList.self, from: Data(status.stdout.utf8)).apps.first)
        #expect(web.current == "v1")
        #expect(web.lastPhase == .succeeded)
        let text = try await offThePool { try ProcessRunner.runTool("batond", ["status", "--config", config]) }
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("web"))

        let verify = try await offThePool { try ProcessRunner.runTool("batond", ["audit", "verify", "--config", config]) }
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.contains("audit log intact"))

        let after = try DirectorySnapshot.take(root)
        #expect(DirectorySnapshot.difference(before, after).isEmpty, "\(DirectorySnapshot.difference(before, after))")
        // The agent still serves after being looked at.
        #expect(await host.client(daemon).isServing())
    }
}
