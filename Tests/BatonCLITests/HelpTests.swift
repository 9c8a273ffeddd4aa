import BatonTestSupport
import Foundation
import Testing

@Suite("help")
struct HelpTests {
    /// `baton rollout --help` is where a user looks first: it shows the options they type
    /// (they belong to the default subcommand) and every exit status.
    @Test func rolloutHelpShowsTheOptionsAndExitStatuses() throws {
        let help = try ProcessRunner.run(ProcessRunner.executable("baton"), ["rollout", "--help"])
        #expect(help.status == 0)
        for option in ["--canary", "--batch", "--failure-threshold", "--pause-after-canary", "--brief", "resume ROLLOUT_ID", "abort ROLLOUT_ID"] {
            #expect(help.stdout.contains(option), "\(option) in:\n\(help.stdout)")
        }
        for status in ["0 all hosts succeeded", "3 hosts need attention", "4 the rollout lock", "5"] {
            #expect(help.stdout.contains(status), "\(status) in:\n\(help.stdout)")
        }
    }
}
