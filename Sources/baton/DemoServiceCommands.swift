import ArgumentParser
import BatonCLISupport
import BatonDemo
import Foundation

// The demo app's hidden subcommands: `baton demo` needs nothing but this binary.

struct DemoServe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", shouldDisplay: false)
    @Option var port: Int
    @Option var releaseDir: String
    @Option var pidFile: String
    func run() throws { DemoApp.serve(port: port, releaseDirectory: releaseDir, pidFile: pidFile) }
}

/// The `activate` hook: stop the host's service, start it from the release now live.
struct DemoActivate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "activate", shouldDisplay: false)
    @Option var demoDir: String
    func run() throws { try DemoApp.activate(demoDir: demoDir, baton: CommandLine.arguments[0]) }
}
/// The health check: GET /health on the host's service, over HTTP.
struct DemoProbe: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", shouldDisplay: false)
    @Option var demoDir: String

    func run() throws {
        guard let host = ProcessInfo.processInfo.environment["BATON_HOST"], let port = DemoApp.port(for: host, in: demoDir) else {
            throw CLIError(code: "demo", message: "probe needs BATON_HOST and the ports file", exitCode: 1)
        }
        guard let (status, body) = DemoApp.get(port: port) else {
            Output.line("no answer on 127.0.0.1:\(port)")
            throw ExitCode(1)
        }
        Output.line("GET http://127.0.0.1:\(port)/health: \(status) \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        if status != 200 { throw ExitCode(1) }
    }
}
