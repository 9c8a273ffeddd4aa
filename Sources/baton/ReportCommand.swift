import ArgumentParser
import BatonCLISupport
import BatonController
import BatonProtocol
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Delivery metrics from the history, per app and environment.",
        discussion: """
            Deployment frequency, lead time, change failure rate, time to restore and rework rate \
            over the window, and the last successful drill; the README defines each. Drills are \
            not deployments. Reads the history only; contacts no host.
            """)

    @Argument(help: "Only this app.") var app: String?
    @Option(help: ArgumentHelp("The window, up to now: days (30d) or a duration (12h).", valueName: "duration"))
    var since: ReportWindow = ReportWindow(BatonDuration(milliseconds: 30 * 86_400_000))
    @Flag(help: "One JSON object: the window and a row per app and environment.") var json = false
    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        try checkNames((app, "app"))
        let context = try ControllerContext(controller)
        let history = try context.history()
        guard let drills = history as? any DeliveryHistory else {
            throw CLIError(.internalError, "the history store keeps no drills", exitCode: CLIError.Status.failure)
        }
        let now = Date()
        let report = try reported { () throws(ControllerError) in
            DeliveryReport.make(
                rollouts: try history.rollouts(app: app, limit: 1_000_000),
                drills: try drills.drills(app: app, environment: nil, limit: 1_000_000),
                since: now.addingTimeInterval(-since.duration.seconds), until: now)
        }
        if json {
            Output.json(report)
        } else {
            for line in report.lines(now: now) { Output.line(line) }
            if report.rows.isEmpty { Output.line("(nothing rolled out in this window)") }
        }
    }
}

/// `--since`: whole days or a duration, as trust policies write validities.
struct ReportWindow: ExpressibleByArgument {
    var duration: BatonDuration

    init(_ duration: BatonDuration) { self.duration = duration }

    init?(argument: String) {
        guard let duration = BatonDuration(parsingValidity: argument), duration.milliseconds > 0 else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { "\(duration.milliseconds / 86_400_000)d" }
}
