import BatonProtocol
import Foundation

extension EvidenceReport {
    /// The report as a change manager reads it: what was rolled out and by whom, who
    /// approved it, what every host signed, then the verdict and each problem.
    public var lines: [String] {
        var out: [String] = []
        if let r = rollout {
            out.append("Rollout \(r.id): \(r.app) \(r.release) to \(r.environment)")
            out.append("  run by \(r.actor), \(RFC3339.format(r.startedAt))\(r.finishedAt.map { " to \(RFC3339.format($0))" } ?? "")"
                + "; outcome \(r.outcome ?? "unknown")\(r.haltReason.map { " (\($0))" } ?? "")\(r.breakGlass ? "; BREAK GLASS" : "")")
            out.append("  artifact sha256:\(r.artifact.sha256) (\(r.artifact.format.rawValue), \(r.artifact.size) bytes)"
                + (r.source.map { ", source \($0)" } ?? ""))
            if r.owner != nil || r.notes != nil {
                out.append("  " + [r.owner.map { "owner \($0)" }, r.notes.map { "notes \"\($0)\"" }].compactMap { $0 }.joined(separator: "; "))
            }
        }
        out.append("Approvals (signed manifests, checked against the trust policy given)")
        for e in envelopes {
            let what = e.role == .rollout ? "rollout" : "revert"
            let manifest = [e.release, e.serial.map { "serial \($0)" }].compactMap { $0 }.joined(separator: ", ")
            if e.valid {
                let names = e.signers.map { $0.names.first ?? String($0.keyid.prefix(12)) }.joined(separator: ", ")
                out.append("  ✓ \(what) \(manifest): signed by \(names); \(e.signers.count) of \(e.required ?? 0) required\(e.isReturn ? " for a return" : "")")
            } else {
                out.append("  ✗ \(what) \(manifest.isEmpty ? "envelope" : manifest): not approved (see below)")
            }
        }
        out.append("Hosts (receipts signed by each agent's fleet certificate)")
        for r in receipts {
            let what = r.role == .rollout ? "ran" : "reverted to"
            var line = "  \(r.valid ? "✓" : "✗") \(r.host) \(what) \(r.release ?? "?") (\(r.deploymentID)): \(r.outcome?.rawValue ?? "not verified")"
            if let error = r.error { line += ": \(error.code)" }
            if let live = r.live { line += "; live: \(live)" }
            if let lines = r.auditLines { line += "; audit line \(lines)" }
            out.append(line)
        }
        if receipts.isEmpty { out.append("  (none)") }
        switch verdict {
        case .verified:
            out.append("Verdict: VERIFIED: every approval meets the trust policy, every receipt is signed by its host's certificate from the fleet CA and matches the manifest it names")
        case .failed:
            out.append("Verdict: FAILED (\(problems.count) problem\(problems.count == 1 ? "" : "s"))")
            for problem in problems {
                out.append("  ✗ \(problem.code.rawValue)\(problem.detail.map { " (\($0))" } ?? ""): \(problem.subject): \(problem.message)")
            }
        }
        return out
    }
}
