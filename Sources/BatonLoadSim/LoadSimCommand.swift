import ArgumentParser
import BatonPKI
import BatonProtocol
import Foundation
import NIOPosix

/// `baton-loadsim`: stands in for many agents on the wire only, so one machine can show
/// how the controller scales past the agents it could really run (bench/scale.sh).
@main
struct LoadSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-loadsim",
        abstract: "Simulate many Baton agents on 127.0.0.1: real mutual TLS, the real agent API, scripted deployments.",
        discussion: """
            Issues each host a certificate from the fleet CA (baton://agent/<host-id>), listens on one \
            port per host, then writes '<host-id> 127.0.0.1:<port>' lines to --addresses (a host drawn to \
            refuse connections gets a port where nothing listens). Runs until it is terminated.
            """)

    @Option(help: ArgumentHelp("The fleet CA directory (ca.pem, ca.key).", valueName: "dir")) var ca: String
    @Option(help: ArgumentHelp("The trust policy the agents verify envelopes against.", valueName: "file")) var trust: String
    @Option(help: "The environment of every simulated host.") var environment = "staging"
    @Option(name: .customLong("host-prefix"), help: "Host ids are this prefix and a number.") var hostPrefix = "host-"
    @Option(help: "The number of the first host.") var first = 1
    @Option(help: "How many hosts this process simulates.") var count: Int
    @Option(help: ArgumentHelp("Written once every host listens: '<host-id> 127.0.0.1:<port>' per line.", valueName: "file"))
    var addresses: String
    @Option(help: ArgumentHelp("How long each deployment phase takes: a duration or a range.", valueName: "min..max"))
    var latency = "50ms..400ms"
    @Option(name: .customLong("fail-rate"), help: "Fraction of deployments whose health check fails (they roll back).")
    var failRate = 0.0
    @Option(name: .customLong("fail-release"), help: ArgumentHelp("Only deployments of this release fail.", valueName: "name"))
    var failRelease: String?
    @Option(name: .customLong("refuse-rate"), help: "Fraction of hosts that refuse every connection.") var refuseRate = 0.0
    @Option(help: "Seed of every random choice (the same seed, the same run).") var seed: UInt64 = 1
    @Option(help: "Event loop threads shared by every host of this process.") var threads = 1

    func run() async throws {
        do {
            try await serve()
        } catch {
            FileHandle.standardError.write(Data("error: \(error.reportedCode): \(error.message)\n".utf8))
            throw ExitCode(2)
        }
    }

    func serve() async throws(LoadSimError) {
        guard count > 0, first >= 0, threads > 0 else {
            throw LoadSimError(.invalidOption, "--count and --threads must be positive and --first not negative")
        }
        let settings = SimulationSettings(
            latency: try SimulationSettings.parseLatency(latency),
            failRate: try SimulationSettings.checkRate(failRate, "--fail-rate"), failRelease: failRelease,
            refuseRate: try SimulationSettings.checkRate(refuseRate, "--refuse-rate"), seed: seed)
        let fleetCA: FleetCA
        do {
            fleetCA = try FleetCA.load(from: ca)
        } catch {
            throw LoadSimError(.caUnusable, "\(error)")
        }
        let fleet = SimulatorFleet(ca: fleetCA, policy: try loadPolicy(), environment: environment, settings: settings)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let hostIDs = (first..<(first + count)).map { "\(hostPrefix)\($0)" }
        let listening = try await fleet.start(hostIDs: hostIDs, group: group)

        let lines = listening.map { "\($0.hostID) 127.0.0.1:\($0.port)\n" }.joined()
        let temporary = addresses + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(lines.utf8)), rename(temporary, addresses) == 0 else {
            throw LoadSimError(.listenFailed, "cannot write '\(addresses)'")
        }
        let refusing = listening.filter(\.refuses).count
        FileHandle.standardError.write(Data(
            "baton-loadsim: \(listening.count - refusing) hosts listening (\(hostIDs[0])...), \(refusing) refusing connections\n".utf8))
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    /// The trust policy, with key paths relative to the policy file (as the agent reads it).
    func loadPolicy() throws(LoadSimError) -> TrustPolicy {
        guard let text = FileManager.default.contents(atPath: trust).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw LoadSimError(.trustPolicyUnreadable, "cannot read the trust policy '\(trust)'")
        }
        let directory = (trust as NSString).deletingLastPathComponent
        do {
            return try TrustPolicy.parse(yaml: text, file: trust) { path in
                let full = path.hasPrefix("/") || directory.isEmpty ? path : "\(directory)/\(path)"
                guard let data = FileManager.default.contents(atPath: full) else {
                    throw LoadSimError(.trustPolicyUnreadable, "cannot read the key '\(full)' the trust policy names")
                }
                return String(decoding: data, as: UTF8.self)
            }
        } catch {
            throw LoadSimError(.trustPolicyUnreadable, error.operatorMessage)
        }
    }
}
