import BatonProtocol
import Hummingbird
import NIOCore

/// The request context of the agent API. Keeps the connection's channel so that
/// `PeerIdentityMiddleware` can read the client certificate asynchronously (reading it
/// through the pipeline's synchronous operations off the event loop traps; docs/toolchain-notes.md).
public struct AgentRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel
    /// The controller the client certificate names, once `PeerIdentityMiddleware` checked it.
    public var controller: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        controller = nil
    }

    /// Bodies read whole (the deployment envelope) are capped at the envelope's own cap.
    /// Artifact uploads are streamed and capped by the agent's `maxArtifactSize` instead.
    public var maxUploadSize: Int { Envelope.maxEnvelopeBytes }
}
