import Foundation

/// Counts SIGINTs (Ctrl-C) and calls back on each, instead of the default of dying with
/// the lock held and the record unfinished. `stop()` gives SIGINT its default back.
public final class InterruptWatcher: @unchecked Sendable {
    // The dispatch source runs its handler serially, so `count` needs no lock.
    private let source: any DispatchSourceSignal
    private var count = 0

    public init(_ onInterrupt: @escaping @Sendable (Int) -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            count += 1
            onInterrupt(count)
        }
        source.resume()
    }

    public func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
