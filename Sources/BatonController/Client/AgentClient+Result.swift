import BatonProtocol

extension AgentClient {
    /// `uploadArtifact` as a value, so a caller can release what it holds (an upload
    /// slot) before looking at the outcome.
    public func uploadArtifactResult(_ host: Fleet.Host, file: String, sha256: String, size: UInt64) async -> Result<Bool, AgentCallError> {
        do throws(AgentCallError) {
            return .success(try await uploadArtifact(host, file: file, sha256: sha256, size: size))
        } catch {
            return .failure(error)
        }
    }
}
