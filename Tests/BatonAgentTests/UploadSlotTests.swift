import BatonAgent
import BatonProtocol
import BatonTestSupport
import Foundation
import Testing

/// An upload's slot is free the moment the upload ends, on the task that ended it: the
/// next upload is never refused as busy for a slot that is about to be given back.
@Suite struct UploadSlotTests {
    @Test func anEndedUploadsSlotIsFreeAtOnce() async throws {
        let fixture = try AgentFixture(extraConfig: "limits:\n  maxConcurrentUploads: 1")
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let digest = String(repeating: "c", count: 64)
        for round in 1...50 {
            let upload = try await engine.beginUpload(digest: digest, size: 10)
            do {
                _ = try await engine.beginUpload(digest: String(repeating: "d", count: 64), size: 10)
                Issue.record("round \(round): a second upload got a slot over the limit")
            } catch {
                #expect(error.info.code == "agent_busy")
            }
            // Half the rounds end in a refusal (size), half with the client gone.
            if round % 2 == 0 {
                upload.abort()
            } else {
                #expect(throws: RequestError.self) { try upload.finish() }
            }
            // Straight away, with nothing in between that could hand the slot back later.
            let next = try await engine.beginUpload(digest: digest, size: 10)
            next.abort()
        }
    }
}
