#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gives back the pages of batond's own binary that only start-up needed, and keeps the
/// kernel from mapping more of it than the code the agent then runs.
///
/// Most of an idle agent's RSS is not its own memory but clean pages of its binary, and
/// most of those were never executed: on a read fault Linux maps up to 16 neighbouring
/// pages already in the page cache ("fault-around", 64 KiB), and on a miss it reads
/// around the faulting page (read-around, 128 KiB). Measured on a 37 MB static batond:
/// 24 MB of file-backed RSS at idle. `release()` does now what memory pressure would do
/// later, and tries to keep it so (docs/footprint.md has what it achieves):
///
/// 1. `MADV_RANDOM` on the binary's mappings: a later fault reads one page, not the
///    128 KiB around it (measured on 6.18: true of the data, not of the executable text,
///    which the kernel reads ahead regardless);
/// 2. `MADV_PAGEOUT` (Linux 5.4) of their resident pages that are still the file's
///    (by /proc/self/pagemap; the relocated data is the process's own and stays): the
///    pages only this process maps (argument parsing, YAML, certificate loading,
///    reconciliation) leave the RSS and the page cache;
/// 3. `POSIX_FADV_DONTNEED` on the binary: the pages of it that nobody maps leave the
///    page cache, so fault-around finds no neighbour to map besides code the agent ran.
///
/// And first, `malloc_trim(0)` (glibc): the heap's free pages go back to the system, in
/// every arena, not only at the top of the heap (what an upload's or a deployment's
/// buffers left behind once freed).
///
/// What serving needs comes back on the next requests, one page at a time (a few hundred
/// small reads the first time a path runs, e.g. the first deployment). Pages that another
/// process maps (a `batond status` at the same moment, the C library) are not touched.
/// Each step may fail (an older kernel, no permission to page out a file the process
/// does not own); the rest still runs and nothing else changes.
public enum ResidentCode {
    /// What `release()` did, for the log.
    public struct Outcome: Sendable, Equatable {
        /// The binary's mappings found in /proc/self/maps.
        public var mappings = 0
        /// Of them, how many had pages the kernel paged out (MADV_PAGEOUT accepted).
        public var pagedOut = 0
        /// Resident set (VmRSS) before and after, in KiB; 0 where /proc did not say.
        public var residentBefore = 0
        public var residentAfter = 0
    }

    // The values from the kernel's uapi headers, the same on x86_64 and aarch64; the C
    // library's headers may be older than the kernel.
    private static let madvRandom: Int32 = 1
    private static let madvPageout: Int32 = 21
    private static let fadvDontneed: Int32 = 4

    /// glibc's `malloc_trim`, which Swift's Glibc module does not import; nil where the C
    /// library has none (musl).
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// glibc's `mallopt`, looked up like `malloc_trim`; nil where the C library has none.
    static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "mallopt") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// `M_ARENA_MAX` (malloc.h).
    static let mallocArenaMax: Int32 = -8

    /// Advises and pages out the binary's mappings; see the type's comment.
    @discardableResult
    public static func release() -> Outcome {
        var outcome = Outcome()
        outcome.residentBefore = residentKiB()
        _ = mallocTrim?(0)
        #if os(Linux)
        let exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard exe >= 0 else { return outcome }
        defer { close(exe) }
        var info = stat()
        guard fstat(exe, &info) == 0 else { return outcome }
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { if pagemap >= 0 { close(pagemap) } }
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        for range in mappings(inode: UInt64(info.st_ino)) {
            outcome.mappings += 1
            guard let start = UnsafeMutableRawPointer(bitPattern: range.lowerBound) else { continue }
            _ = madvise(start, Int(range.upperBound - range.lowerBound), madvRandom)
            var pagedOut = false
            for run in filePageRuns(range, pageSize: pageSize, pagemap: pagemap) {
                if let base = UnsafeMutableRawPointer(bitPattern: run.lowerBound),
                    madvise(base, Int(run.upperBound - run.lowerBound), madvPageout) == 0
                {
                    pagedOut = true
                }
            }
            if pagedOut { outcome.pagedOut += 1 }
        }
        _ = posix_fadvise(exe, 0, 0, fadvDontneed)
        #endif
        outcome.residentAfter = residentKiB()
        return outcome
    }

    /// The address ranges of every mapping of the file with this inode, from
    /// /proc/self/maps: text, read-only data, and the writable segment (whose pages
    /// that were only read are still the file's).
    static func mappings(inode: UInt64) -> [Range<UInt>] {
        parseMaps(readProcFile("/proc/self/maps"), inode: inode)
    }

    /// Lines "start-end perms offset dev inode path" whose inode is the binary's.
    static func parseMaps(_ text: String, inode: UInt64) -> [Range<UInt>] {
        var ranges: [Range<UInt>] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 6, UInt64(fields[4]) == inode else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16), low < high
            else { continue }
            ranges.append(low..<high)
        }
        return ranges
    }

    /// The runs of pages in `range` that are resident and still pages of the file, by
    /// /proc/self/pagemap (bit 63 present, bit 61 file page). Pages a relocation wrote
    /// are the process's own (anonymous) copies: paging those out would only swap the
    /// agent's data, so they are left alone. Without pagemap: no runs.
    static func filePageRuns(_ range: Range<UInt>, pageSize: UInt, pagemap: Int32) -> [Range<UInt>] {
        guard pagemap >= 0, pageSize > 0 else { return [] }
        let count = Int((range.upperBound - range.lowerBound) / pageSize)
        var entries = [UInt64](repeating: 0, count: count)
        let wanted = count * MemoryLayout<UInt64>.size
        let got = entries.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, wanted, off_t(range.lowerBound / pageSize) * 8) }
        guard got == wanted else { return [] }
        return fileRuns(entries, base: range.lowerBound, pageSize: pageSize)
    }

    /// Joins the pagemap entries (one per page from `base`) that are present file pages
    /// into address ranges.
    static func fileRuns(_ entries: [UInt64], base: UInt, pageSize: UInt) -> [Range<UInt>] {
        let present: UInt64 = 1 << 63, filePage: UInt64 = 1 << 61
        var runs: [Range<UInt>] = []
        var runStart: UInt?
        for (index, entry) in entries.enumerated() {
            let address = base + UInt(index) * pageSize
            if entry & present != 0 && entry & filePage != 0 {
                if runStart == nil { runStart = address }
            } else if let start = runStart {
                runs.append(start..<address)
                runStart = nil
            }
        }
        if let start = runStart { runs.append(start..<(base + UInt(entries.count) * pageSize)) }
        return runs
    }

    /// VmRSS from /proc/self/status, in KiB (0 if absent).
    static func residentKiB() -> Int {
        for line in readProcFile("/proc/self/status").split(separator: "\n") where line.hasPrefix("VmRSS:") {
            // "VmRSS:\t    1234 kB"
            return Int(line.dropFirst("VmRSS:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
        }
        return 0
    }

    /// A /proc file read whole (their size is not known before reading).
    private static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
