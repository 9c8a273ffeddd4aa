#if canImport(Glibc)
import Glibc
#endif
import BatonProtocol
import NIOCore
import NIOPosix

/// Why a network probe failed, in the words an operator reads in a deployment record.
enum ProbeFailure: Error, CustomStringConvertible {
    /// The per-attempt timeout ran out.
    case timedOut(BatonDuration)
    /// The peer closed the connection before a complete response.
    case closedEarly
    /// The checker was given an event loop group NIOPosix cannot bootstrap on.
    case unusableEventLoopGroup
    /// Anything NIO or the system reported.
    case other(any Error)

    var description: String {
        switch self {
        case .timedOut(let timeout): "timed out after \(timeout)"
        case .closedEarly: "connection closed before a complete response"
        case .unusableEventLoopGroup: "the agent's event loop group cannot make connections"
        case .other(let error): Self.describe(error)
        }
    }

    /// Turns the error of a connect or an exchange into a probe failure.
    static func from(_ error: any Error, timeout: BatonDuration) -> ProbeFailure {
        switch error {
        case let failure as ProbeFailure: failure
        case ChannelError.connectTimeout: .timedOut(timeout)
        default: .other(error)
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let connection as NIOConnectionError:
            // Happy eyeballs tried every address of the host; the first failure says why.
            if let first = connection.connectionErrors.first { return describe(first.error) }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil {
                return "cannot resolve \(connection.host)"
            }
            return "cannot connect to \(connection.host):\(connection.port)"
        case let io as IOError:
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset"
            default: return String(cString: strerror(io.errnoCode))
            }
        case ChannelError.connectTimeout:
            return "timed out connecting"
        case ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed:
            return ProbeFailure.closedEarly.description
        default:
            return "\(error)"
        }
    }
}
