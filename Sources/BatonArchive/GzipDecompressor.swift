import CZlib

/// Streaming gzip decompression through zlib (`inflateInit2` with windowBits 15 + 16, so
/// only the gzip wrapper is accepted and its CRC-32 and length are checked).
///
/// Concatenated members (what `cat a.gz b.gz` or parallel compressors produce) decompress as
/// one stream, as gzip(1) does. Bytes after a member that are not another member are corrupt.
public final class GzipDecompressor {
    // zlib keeps a pointer back to the stream in its state and checks it on every call,
    // so the z_stream lives at a fixed heap address, never in a movable Swift value.
    private let stream: UnsafeMutablePointer<z_stream>
    /// True between members: after a member's trailer, before the next header byte.
    private var atMemberBoundary = false
    private var sawInput = false

    /// Total compressed bytes consumed.
    public private(set) var compressedBytes: UInt64 = 0

    public init() throws(ExtractionError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw ExtractionError(.ioError, "cannot initialise zlib (status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Decompresses from `input` into `output`. Returns how much of each was used; call again
    /// with the rest of the input, and also while `produced == output.count` (zlib may hold
    /// more output). With input and output space available, it always makes progress or throws.
    public func decompress(
        _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) throws(ExtractionError) -> (consumed: Int, produced: Int) {
        guard output.count > 0 else { return (0, 0) }
        if atMemberBoundary {
            guard !input.isEmpty else { return (0, 0) }
            // Another member follows: start over on a fresh gzip header.
            guard inflateReset(stream) == Z_OK else { throw ExtractionError(.ioError, "cannot reset zlib") }
            atMemberBoundary = false
        }
        if !input.isEmpty { sawInput = true }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        stream.pointee.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(output.count)
        let status = inflate(stream, Z_NO_FLUSH)
        let consumed = input.count - Int(stream.pointee.avail_in)
        let produced = output.count - Int(stream.pointee.avail_out)
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        compressedBytes += UInt64(consumed)

        switch status {
        case Z_STREAM_END:
            atMemberBoundary = true
        case Z_OK:
            break
        case Z_BUF_ERROR:
            // No progress was possible: fine when there is no input to work on.
            guard input.isEmpty else { throw corrupt("zlib made no progress") }
        case Z_MEM_ERROR:
            throw ExtractionError(.ioError, "zlib is out of memory")
        default:
            // Z_DATA_ERROR (bad header, bad deflate data, CRC or length mismatch), Z_NEED_DICT.
            let detail = stream.pointee.msg.map { String(cString: $0) } ?? "status \(status)"
            throw corrupt(detail)
        }
        if consumed == 0, produced == 0, !input.isEmpty, status != Z_STREAM_END {
            throw corrupt("zlib made no progress")
        }
        return (consumed, produced)
    }

    /// Checks that the input ended on a member boundary.
    public func finish() throws(ExtractionError) {
        guard atMemberBoundary else {
            throw ExtractionError(
                .truncatedArchive,
                sawInput
                    ? "the gzip stream ends early (after \(compressedBytes) compressed bytes); the upload or the artifact is incomplete, upload it again"
                    : "the archive is empty; expected a gzip stream")
        }
    }

    private func corrupt(_ detail: String) -> ExtractionError {
        ExtractionError(
            .gzipCorrupt,
            "the gzip stream is corrupt near compressed byte \(compressedBytes) (\(detail)); the artifact is damaged or not gzip, rebuild it"
        )
    }
}
