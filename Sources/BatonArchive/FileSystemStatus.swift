#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `fstatfs(2)` and `statfs(2)`, which the Swift importer does not see (`<sys/vfs.h>`), so
/// both are looked up at run time. `f_type` and `f_bsize` are the first two `long`s of
/// `struct statfs` on every Linux architecture, and the buffer is larger than the whole
/// struct (120 bytes on x86_64 and aarch64).
enum FileSystemStatus {
    struct Fields {
        /// `f_type`: the file system's magic number (linux/magic.h).
        let type: Int64
        /// `f_bsize`: its block size in bytes.
        let blockSize: Int64
    }

    /// The file system of the file open as `fd`.
    static func of(descriptor fd: Int32) -> Fields? {
        guard let fstatfs else { return nil }
        return read { fstatfs(fd, $0) }
    }

    /// The file system `path` is on.
    static func of(path: String) -> Fields? {
        guard let statfs else { return nil }
        return read { statfs(path, $0) }
    }

    private static func read(_ call: (UnsafeMutableRawPointer) -> Int32) -> Fields? {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        guard call(buffer) == 0 else { return nil }
        return Fields(
            type: Int64(buffer.load(as: Int.self)),
            blockSize: Int64(buffer.load(fromByteOffset: MemoryLayout<Int>.size, as: Int.self)))
    }

    private static let fstatfs: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Int32)? = symbol("fstatfs")
    private static let statfs: (@convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32)? = symbol("statfs")

    private static func symbol<T>(_ name: String) -> T? {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: T.self)
    }
}
