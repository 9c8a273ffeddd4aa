import BatonProtocol
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import ServiceLifecycle
import UnixSignals

/// SIGHUP: reads the TLS certificate, key and CA, and the trust policy, again, without
/// restarting. New connections use the new TLS material; connections already open keep
/// theirs. Each part is checked before it replaces the old one: a file that is missing,
/// broken, for another host or expired keeps the old material, and the log says why.
struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let configuration: AgentConfiguration
    let engine: DeploymentEngine
    let tls: TLSContextStore
    let metrics: AgentMetrics
    let logger: Logger

    func run() async {
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("reload requested (SIGHUP)")
            let tlsOK = reloadTLS()
            let trustOK = await reloadTrustPolicy()
            logger.notice(
                tlsOK && trustOK ? "reload finished" : "reload finished with errors; the old material stays in use where noted",
                metadata: ["baton.reload.tls": "\(tlsOK ? "ok" : "kept_old")", "baton.reload.trust": "\(trustOK ? "ok" : "kept_old")"])
        }
    }

    private func reloadTLS() -> Bool {
        guard let files = configuration.tls else { return true }
        do {
            let material = try TLSMaterial.load(files, hostID: configuration.hostID, requireCurrent: true)
            tls.replace(with: material)
            metrics.certificateLoaded(notValidAfter: material.notValidAfter)
            metrics.reloaded("tls", ok: true)
            logger.notice(
                "tls material reloaded",
                metadata: [
                    "baton.certificate.serial": "\(material.serial)",
                    "baton.certificate.not_after": "\(RFC3339.format(material.notValidAfter))",
                ])
            return true
        } catch {
            metrics.reloaded("tls", ok: false)
            logger.error(
                "tls reload failed; keeping the previous certificate, key and CA",
                metadata: ["baton.code": "\(error.code.rawValue)", "baton.reason": "\(error.message)"])
            return false
        }
    }

    private func reloadTrustPolicy() async -> Bool {
        do {
            let policy = try configuration.loadTrustPolicy()
            await engine.updatePolicy(policy)
            metrics.reloaded("trust", ok: true)
            logger.notice("trust policy reloaded", metadata: ["baton.trust": "\(configuration.trustPolicyPath)"])
            return true
        } catch {
            metrics.reloaded("trust", ok: false)
            logger.error(
                "trust policy reload failed; keeping the previous policy",
                metadata: ["baton.code": "\(error.code.rawValue)", "baton.reason": "\(error.description)"])
            return false
        }
    }
}
