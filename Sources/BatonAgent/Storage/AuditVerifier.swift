/// Checks a data directory's audit log (`batond audit verify`).
public enum AuditVerifier {
    public static func verify(dataDirectory: String) -> AuditLog.Verdict {
        AuditLog.verify(layout: DataLayout(root: dataDirectory))
    }
}
