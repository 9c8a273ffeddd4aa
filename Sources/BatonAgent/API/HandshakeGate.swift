import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Bounds the connections that have not finished their TLS handshake: at most
/// `perPeerLimit` from one address and `limit` in all at once, each for at most
/// `timeout`. Such a connection has shown no certificate yet, so anyone who can reach the
/// port can open one; without a bound, silent or slow handshakes fill every connection
/// slot and a controller's requests wait in the backlog. With it, one address cannot take
/// more than a few places, and half the slots always stay for connections that proved
/// who they are.
public final class HandshakeGate: Sendable {
    public let limit: Int
    public let perPeerLimit: Int
    public let timeout: TimeAmount
    private let handshaking = Mutex<(total: Int, byPeer: [String: Int])>((0, [:]))

    public init(limit: Int, perPeerLimit: Int, timeout: TimeAmount) {
        self.limit = max(1, limit)
        self.perPeerLimit = max(1, perPeerLimit)
        self.timeout = timeout
    }

    /// Connections in their handshake now.
    public var inHandshake: Int { handshaking.withLock { $0.total } }

    func enter(peer: String) -> Bool {
        handshaking.withLock { state in
            guard state.total < limit, state.byPeer[peer, default: 0] < perPeerLimit else { return false }
            state.total += 1
            state.byPeer[peer, default: 0] += 1
            return true
        }
    }

    func leave(peer: String) {
        handshaking.withLock { state in
            state.total -= 1
            let left = state.byPeer[peer, default: 1] - 1
            state.byPeer[peer] = left > 0 ? left : nil
        }
    }
}

/// Sits after the TLS handler of one connection: closes it when the handshake has not
/// completed within the gate's timeout, and gives its place in the gate back once the
/// handshake completes or the connection ends, whichever comes first.
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let gate: HandshakeGate
    private let peer: String
    private let onTimeout: @Sendable () -> Void
    private var deadline: Scheduled<Void>?
    private var inGate = true

    init(gate: HandshakeGate, peer: String, onTimeout: @escaping @Sendable () -> Void) {
        self.gate = gate
        self.peer = peer
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let onTimeout = self.onTimeout
        deadline = context.eventLoop.scheduleTask(in: gate.timeout) {
            onTimeout()
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { done() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { done() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done()
        context.fireChannelInactive()
    }

    private func done() {
        deadline?.cancel()
        deadline = nil
        if inGate {
            inGate = false
            gate.leave(peer: peer)
        }
    }
}
