import BatonTestSupport
import Foundation
import Testing

/// The README's fleet walk-through works as typed: `scripts/try-readme` takes the ```sh
/// blocks between its walk-through markers from README.md itself and runs them in an
/// empty directory with this build's binaries (three `batond run` on 127.0.0.1, only the
/// documented `base=` line changed to free ports), then checks the outcome the README
/// describes.
@Suite("README walk-through")
struct ReadmeWalkthroughTests {
    @Test("scripts/try-readme runs the README's walk-through blocks as written", .timeLimit(.minutes(5)))
    func walkthrough() async throws {
        let result = try await offThePool {
            try ProcessRunner.run(
                "/bin/bash", ["\(ProcessRunner.packageRoot)/scripts/try-readme"],
                environment: ["BIN": ProcessRunner.productsDirectory])
        }
        #expect(result.status == 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)")
        // The commands the README shows ran, as typed (bash -x prints each one).
        for command in [
            "$ baton pki init pki/ca",
            "$ baton pki issue agent web-2 --ip 127.0.0.1 --ca pki/ca --out hosts/web-2/tls",
            "$ baton deploy web --artifact v1.tar.gz --release v1 --environment staging --key keys/ci.key",
            "$ baton rollout web-v3.manifest.envelope.json --canary 1 --batch 1",
            "$ baton status web",
        ] {
            #expect(result.stdout.contains(command), "missing: \(command)")
        }
        #expect(result.stdout.contains("the README's walk-through ran as written"), "\(result.stdout)")
    }
}
