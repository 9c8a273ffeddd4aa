import Foundation

/// A tiny HTTP/1.1 server on 127.0.0.1 for health check tests, on plain sockets and one
/// thread: it answers each request as `behavior` says at that moment, which a test may
/// change while it runs.
final class LoopbackServer: @unchecked Sendable {
    enum Behavior: Sendable {
        /// Answers with this status and body, then closes.
        case respond(status: Int, body: String)
        /// Reads the request and never answers (the connection is held open).
        case hang
    }

    /// The port it is bound to (chosen by the kernel).
    let port: Int
    private let socket: Int32
    private let lock = NSLock()
    private var currentBehavior: Behavior
    private var stopped = false
    private var listening = false
    private var heldConnections: [Int32] = []
    private let finished = DispatchSemaphore(value: 0)

    /// Binds 127.0.0.1 on a free port. With `listening: false` the socket is bound but
    /// not listening: connections are refused until `startListening()`, and the port
    /// cannot be taken by anyone else in between.
    init(behavior: Behavior = .respond(status: 200, body: "ok"), listening: Bool = true) throws {
        currentBehavior = behavior
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            throw ServerError("bind: \(String(cString: strerror(errno)))")
        }
        socket = fd
        port = Self.localPort(of: fd)
        if listening { startListening() }
    }

    /// A port on 127.0.0.1 that nothing listens on: connections to it are refused.
    static func closedPort() throws -> Int {
        let server = try LoopbackServer(listening: false)
        server.stop()
        return server.port
    }

    var behavior: Behavior {
        get { lock.withLock { currentBehavior } }
        set { lock.withLock { currentBehavior = newValue } }
    }

    func startListening() {
        let start = lock.withLock { () -> Bool in
            guard !listening, !stopped else { return false }
            listening = true
            return true
        }
        guard start else { return }
        listen(socket, 64)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Stops accepting, closes every connection, and waits for the thread.
    func stop() {
        let (wasListening, held) = lock.withLock { () -> (Bool, [Int32]) in
            guard !stopped else { return (false, []) }
            stopped = true
            defer { heldConnections = [] }
            return (listening, heldConnections)
        }
        for fd in held { close(fd) }
        // Wakes the thread blocked in accept.
        shutdown(socket, Int32(SHUT_RDWR))
        if wasListening { finished.wait() }
        close(socket)
    }

    private func serve() {
        defer { finished.signal() }
        while true {
            let connection = accept(socket, nil, nil)
            if lock.withLock({ stopped }) {
                if connection >= 0 { close(connection) }
                return
            }
            guard connection >= 0 else {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            handle(connection)
        }
    }

    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Read the request head; health probes send no body.
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.ends(with: Array("\r\n\r\n".utf8)), request.count < 65536 {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            request += buffer[..<count]
        }
        switch behavior {
        case .hang:
            let kept = lock.withLock { () -> Bool in
                guard !stopped else { return false }
                heldConnections.append(connection)
                return true
            }
            if !kept { close(connection) }
        case .respond(let status, let body):
            let payload = Array(body.utf8)
            let head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n"
            let bytes = Array(head.utf8) + payload
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard count > 0 else { break }
                sent += count
            }
            close(connection)
        }
    }

    private static func localPort(of socket: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
