import BatonCLISupport
import BatonPKI
import BatonProtocol
import Testing

/// The one mapping from a library's error to the `error: <code>: <message>` line and the
/// exit status of a command.
@Suite("CLI error mapping")
struct CLIErrorMappingTests {
    @Test("a coded error keeps its code and its operator message; usage is the default status")
    func codedErrors() {
        let pki = CLIError(PKIError(.caMissing, "no CA in /ca"))
        #expect(pki.code == "ca_missing")
        #expect(pki.message == "no CA in /ca")
        #expect(pki.exitCode == CLIError.Status.usage)
        #expect(pki.line == "error: ca_missing: no CA in /ca")

        let disk = PKIError(.ioError, "disk").cli
        #expect(disk.code == "io_error")
        // A failing disk is not the operator's input: status 1.
        #expect(disk.exitCode == CLIError.Status.failure)
        // A parser's multi-line text becomes one line.
        #expect(CLIError(PKIError(.badPEM, "bad PEM\nline 2")).message == "bad PEM line 2")

        let verification = CLIError(VerificationError(.expired, "sign a new one"), exitCode: CLIError.Status.failure)
        #expect(verification.line == "error: expired: sign a new one")
        #expect(verification.exitCode == CLIError.Status.failure)
    }

    @Test("the codes that mean more than a usage error carry their own exit status")
    func exitStatusesByCode() {
        #expect(CLIError(ErrorInfo(code: "lock_held", message: "rollout r1 holds it")).exitCode == CLIError.Status.lockHeld)
        #expect(CLIError(ErrorInfo(code: "lock_held", message: "x")).exitCode == 4)
        #expect(CLIError(ErrorInfo(code: "nothing_to_roll_back", message: "x")).exitCode == CLIError.Status.failure)
        #expect(ErrorInfo(code: "no_hosts", message: "x").cli.exitCode == CLIError.Status.usage)
        // An explicit status wins over the code's.
        #expect(CLIError(ErrorInfo(code: "lock_held", message: "x"), exitCode: 1).exitCode == 1)
    }

    @Test("a configuration error is reported with its file and line")
    func configurationError() {
        let error = ConfigurationError(.unknownField, "'colour' is not a field", file: "fleet.yaml", line: 3)
        #expect(CLIError(error).line == "error: unknown_field: fleet.yaml:3: 'colour' is not a field")
        #expect(CLIError(ConfigurationError(.missingField, "no hosts", file: "fleet.yaml")).message == "fleet.yaml: no hosts")
    }

    @Test("a CLIError passes through with its own status")
    func passThrough() {
        let original = CLIError(.invalidStrategy, "--parallel must be at least 1", exitCode: 4)
        let mapped = CLIError(original, exitCode: CLIError.Status.failure)
        #expect(mapped.code == "invalid_strategy")
        #expect(mapped.exitCode == 4)
        #expect(CLIError.reporting(original).exitCode == 4)
    }

    @Test("an error without a code is a bug: internal_error, status 1")
    func uncoded() {
        struct Odd: Error {}
        let mapped = CLIError.reporting(Odd())
        #expect(mapped.code == "internal_error")
        #expect(mapped.exitCode == CLIError.Status.failure)
        #expect(CLIError.reporting(ErrorInfo(code: "agent_busy", message: "later")).code == "agent_busy")
    }

    @Test("the command line's own codes are stable snake_case")
    func ownCodes() {
        for code in CLIError.Code.allCases {
            #expect(code.rawValue.allSatisfy { $0.isLowercase || $0 == "_" }, "\(code)")
        }
    }
}
