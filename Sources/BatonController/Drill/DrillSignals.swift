import Foundation
import Synchronization

/// SIGINT and SIGTERM during a drill: neither stops it at once, since a drill must never
/// leave a host on another release. The first is passed to `onSignal`; the drill then
/// starts no new return to the previous release and rolls forward before it exits. `stop()`
/// gives both signals their defaults back.
public final class DrillSignals: @unchecked Sendable {
    // The sources are set once in init and only cancelled after; the first signal is
    // behind a lock of its own.
    private final class First: Sendable {
        let value = Mutex<Int32?>(nil)
    }

    private let sources: [any DispatchSourceSignal]
    private let first: First

    public init(onSignal: @escaping @Sendable (Int32) -> Void) {
        let first = First()
        self.first = first
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                let isFirst = first.value.withLock { value in
                    guard value == nil else { return false }
                    value = number
                    return true
                }
                if isFirst { onSignal(number) }
            }
            source.resume()
            return source
        }
    }

    /// The first signal received, if any.
    public var received: Int32? { first.value.withLock { $0 } }

    public func stop() {
        for source in sources { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}
