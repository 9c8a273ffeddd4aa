import BatonController
import BatonProtocol
import Foundation
import Testing

/// The generic body and `Protocol/notification.schema.json` describe the same object.
@Suite("Notification schema")
struct NotificationSchemaTests {
    static var schemaFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Protocol/notification.schema.json").path
    }

    static func keys(_ notification: RolloutNotification) throws -> Set<String> {
        let bytes = try WebhookBody.encode(notification, format: .generic)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        return Set(object.keys)
    }

    @Test("every field the body can carry is in the schema, and every required one is always there")
    func bodyMatchesSchema() throws {
        let data = try #require(FileManager.default.contents(atPath: Self.schemaFile))
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let properties = Set(try #require(schema["properties"] as? [String: Any]).keys)
        let required = Set(try #require(schema["required"] as? [String]))
        var full = WebhookDeliveryTests.notification(.finished, severity: .critical)
        full.outcome = "needs_attention"
        full.haltReason = "host-1 is unreachable"
        #expect(try Self.keys(full) == properties)
        var bare = full
        bare.outcome = nil
        bare.haltReason = nil
        #expect(required.isSubset(of: try Self.keys(bare)))
        #expect(properties.subtracting(required) == ["outcome", "haltReason"])
    }
}
