import Foundation

/// A TCP proxy on 127.0.0.1 in front of a server (nginx) that cuts its first connections
/// after a given number of bytes from the server: a download broken mid-way, exactly and
/// every time, whatever the timing. Later connections pass through whole. It forwards
/// bytes as they are, so it cuts TLS as well as plain HTTP. Plain sockets and threads:
/// two threads per connection, for a handful of connections in a test.
public final class CuttingProxy: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let upstreamPort: Int
    private let cutAfter: Int
    private let cutConnections: Int
    private let lock = NSLock()
    private var accepted = 0
    private var open: Set<Int32> = []
    private var stopped = false

    /// - Parameters:
    ///   - cutAfter: bytes from the server forwarded on a cut connection before it is closed.
    ///   - cutConnections: how many connections, from the first, are cut.
    public init(upstreamPort: Int, cutAfter: Int, cutConnections: Int = 1) throws {
        self.upstreamPort = upstreamPort
        self.cutAfter = cutAfter
        self.cutConnections = cutConnections
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket: \(String(cString: strerror(errno)))") }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw TestSupportError("bind/listen: \(String(cString: strerror(errno)))")
        }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Connections accepted so far.
    public var connections: Int { lock.withLock { accepted } }

    /// `scheme://127.0.0.1:PORT/path`.
    public func url(_ path: String, scheme: String) -> String { "\(scheme)://127.0.0.1:\(port)\(path)" }

    public func stop() {
        let fds = lock.withLock { () -> [Int32] in
            stopped = true
            return Array(open)
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let index = lock.withLock { () -> Int in
                accepted += 1
                return accepted
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0, register([client, upstream]) else {
                close(client)
                close(upstream)
                continue
            }
            let limit = index <= cutConnections ? cutAfter : Int.max
            // Server to client, counted and cut; client to server, as is. Both sockets are
            // closed once both directions ended.
            let done = DispatchGroup()
            done.enter()
            done.enter()
            Thread.detachNewThread { [self] in
                pump(from: upstream, to: client, limit: limit)
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(upstream, Int32(SHUT_RDWR))
                done.leave()
            }
            Thread.detachNewThread { [self] in
                pump(from: client, to: upstream, limit: Int.max)
                shutdown(upstream, Int32(SHUT_WR))
                done.leave()
            }
            done.notify(queue: .global()) { [self] in
                lock.withLock {
                    open.remove(client)
                    open.remove(upstream)
                }
                close(client)
                close(upstream)
            }
        }
    }

    private func register(_ fds: [Int32]) -> Bool {
        lock.withLock {
            guard !stopped else { return false }
            open.formUnion(fds)
            return true
        }
    }

    private func pump(from source: Int32, to destination: Int32, limit: Int) {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var forwarded = 0
        while forwarded < limit {
            let wanted = min(buffer.count, limit - forwarded)
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress!, wanted, 0) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return }
            var offset = 0
            while offset < n {
                let sent = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + offset, n - offset, Int32(MSG_NOSIGNAL)) }
                if sent < 0, errno == EINTR { continue }
                if sent <= 0 { return }
                offset += sent
            }
            forwarded += n
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return address
    }
}
