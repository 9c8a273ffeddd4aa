import BatonController
import BatonProtocol
import Foundation
import Synchronization
import Testing

@Suite struct LineRendererTests {
    /// `--brief`: one line per host per phase change; errors and rollout events always.
    @Test func briefPrintsAPhaseOncePerHost() {
        let lines = Mutex<[String]>([])
        let renderer = LineRenderer(brief: true) { text in lines.withLock { $0.append(text) } }
        func event(_ host: String?, _ phase: HostPhase?, _ message: String, error: ErrorInfo? = nil) {
            renderer.handle(RolloutEvent(type: host == nil ? .wave : .host, rolloutID: "r", host: host, phase: phase, message: message, error: error))
        }
        event(nil, nil, "batch 1: web-1, web-2")
        event("web-1", .uploading, "checking for artifact")
        event("web-1", .uploading, "uploaded 203 bytes")
        event("web-2", .uploading, "checking for artifact")
        event("web-1", .activating, "running the activate hook")
        event("web-1", .activating, "activate hook failed", error: ErrorInfo(code: "activate_failed", message: "exit 3"))
        event("web-1", .activating, "still activating")
        let printed = lines.withLock { $0 }
        #expect(printed.count == 5, "\(printed)")
        #expect(printed.filter { $0.contains("web-1") && $0.contains("uploading") }.count == 1)
        #expect(printed.contains { $0.contains("(activate_failed)") })
        #expect(!printed.contains { $0.contains("still activating") })

        let full = Mutex<Int>(0)
        let plain = LineRenderer { _ in full.withLock { $0 += 1 } }
        plain.handle(RolloutEvent(type: .host, rolloutID: "r", host: "web-1", phase: .uploading, message: "a"))
        plain.handle(RolloutEvent(type: .host, rolloutID: "r", host: "web-1", phase: .uploading, message: "b"))
        #expect(full.withLock { $0 } == 2)
    }
}
