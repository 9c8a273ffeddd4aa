import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

/// Which hosts of the environment: `--hosts a,b`, `--selector role=web`.
struct SelectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Only these hosts (comma-separated ids).", valueName: "ids")) var hosts: String?
    @Option(help: ArgumentHelp("Only hosts whose labels match all of these.", valueName: "key=value,...")) var selector: String?

    var hostIDs: [String]? {
        hosts.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    /// The hosts of `fleet` these options (and `environment`) select; none is `no_hosts`.
    func hosts(in fleet: Fleet, environment: String?) throws(CLIError) -> [Fleet.Host] {
        let hosts: [Fleet.Host]
        do {
            hosts = try HostSelection(environment: environment, hostIDs: hostIDs, selector: try labels()).hosts(in: fleet)
        } catch let error as ConfigurationError {
            throw error.cli
        } catch {
            throw CLIError(.invalidSelection, "\(error)")
        }
        guard !hosts.isEmpty else {
            throw ControllerError(
                .noHosts,
                environment.map { "the fleet has no host in '\($0)' matching the selection" } ?? "no host of the fleet matches the selection"
            ).cli
        }
        return hosts
    }

    func labels() throws(CLIError) -> [String: String] {
        guard let selector else { return [:] }
        guard let parsed = HostSelection.parseSelector(selector) else {
            throw CLIError(.invalidSelector, "'\(selector)' is not key=value[,key=value...]")
        }
        return parsed
    }
}
