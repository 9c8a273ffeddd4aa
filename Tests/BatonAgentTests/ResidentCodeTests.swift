@testable import BatonAgent
import Foundation
import Testing

/// Which pages `batond run` gives back after start-up: the resident pages of its own
/// binary that are still the file's, never its relocated data or another file's.
@Suite struct ResidentCodeTests {
    @Test func onlyTheBinarysMappings() {
        let maps = """
            55d0c0000000-55d0c0200000 r--p 00000000 fd:01 4242 /usr/local/bin/batond
            55d0c0200000-55d0c1a00000 r-xp 00200000 fd:01 4242 /usr/local/bin/batond
            55d0c1a00000-55d0c1b00000 rw-p 01a00000 fd:01 4242 /usr/local/bin/batond
            55d0c1b10000-55d0c1c00000 rw-p 00000000 00:00 0 [heap]
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 777 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000200000-7f0000300000 r--p 00000000 fd:01 4242 /usr/local/bin/batond (deleted)
            garbage line
            """
        let ranges = ResidentCode.parseMaps(maps, inode: 4242).map(\.range)
        #expect(
            ranges == [
                0x55d0_c000_0000..<0x55d0_c020_0000, 0x55d0_c020_0000..<0x55d0_c1a0_0000, 0x55d0_c1a0_0000..<0x55d0_c1b0_0000,
                0x7f00_0020_0000..<0x7f00_0030_0000,
            ])
        #expect(ResidentCode.parseMaps(maps, inode: 1).isEmpty)
    }

    /// The text once split into areas reads back as one executable mapping; neighbours
    /// of other permissions, or with a gap between them, stay apart.
    @Test func joinsTheAreasOfTheSplitText() {
        let maps = """
            55d0c0000000-55d0c0200000 r--p 00000000 fd:01 4242 /usr/local/bin/batond
            55d0c0200000-55d0c0204000 r-xp 00200000 fd:01 4242 /usr/local/bin/batond
            55d0c0204000-55d0c0208000 r-xp 00204000 fd:01 4242 /usr/local/bin/batond
            55d0c0208000-55d0c1a00000 r-xp 00208000 fd:01 4242 /usr/local/bin/batond
            55d0c1a00000-55d0c1b00000 r--p 01a00000 fd:01 4242 /usr/local/bin/batond
            55d0c1b00000-55d0c1b01000 rw-p 01b00000 fd:01 4242 /usr/local/bin/batond
            55d0c1b02000-55d0c1b03000 rw-p 01b02000 fd:01 4242 /usr/local/bin/batond
            """
        let mappings = ResidentCode.parseMaps(maps, inode: 4242)
        #expect(
            mappings.map(\.range) == [
                0x55d0_c000_0000..<0x55d0_c020_0000, 0x55d0_c020_0000..<0x55d0_c1a0_0000, 0x55d0_c1a0_0000..<0x55d0_c1b0_0000,
                0x55d0_c1b0_0000..<0x55d0_c1b0_1000, 0x55d0_c1b0_2000..<0x55d0_c1b0_3000,
            ])
        #expect(mappings.map(\.executable) == [false, true, false, false, false])
    }

    /// Present file pages (bits 63 and 61) join into runs; absent pages and anonymous
    /// copies (present, not a file page) end them.
    @Test func runsOfPresentFilePages() {
        let file: UInt64 = 1 << 63 | 1 << 61, anonymous: UInt64 = 1 << 63, absent: UInt64 = 0
        let entries = [file, file, anonymous, file, absent, absent, file, file]
        #expect(
            ResidentCode.fileRuns(entries, base: 0x10000, pageSize: 0x1000) == [
                0x10000..<0x12000, 0x13000..<0x14000, 0x16000..<0x18000,
            ])
        #expect(ResidentCode.fileRuns([anonymous, absent], base: 0x10000, pageSize: 0x1000).isEmpty)
    }

    #if canImport(Glibc)
    /// The heap's free pages are given back through glibc's `malloc_trim`, found at run time.
    @Test func findsMallocTrim() throws {
        let trim = try #require(ResidentCode.mallocTrim)
        #expect(trim(0) >= 0)
    }

    /// `batond run` keeps malloc to one arena; glibc accepts the setting (mallopt answers
    /// 1), and leaves it to the environment when MALLOC_ARENA_MAX is set there.
    @Test func limitsMallocArenas() throws {
        let mallopt = try #require(ResidentCode.mallopt)
        #expect(mallopt(ResidentCode.mallocArenaMax, 8) == 1)
        if getenv("MALLOC_ARENA_MAX") == nil {
            #expect(AgentService.limitMallocArenas(to: 8))
            setenv("MALLOC_ARENA_MAX", "8", 1)
            defer { unsetenv("MALLOC_ARENA_MAX") }
            #expect(!AgentService.limitMallocArenas(to: 8), "the environment decides")
        }
    }
    #endif

    #if os(Linux)
    /// The running test binary has its code mapped, some of it resident as pages of the
    /// file, and /proc says how much is resident.
    @Test func findsThisProcesssOwnCode() throws {
        var info = stat()
        try #require(stat("/proc/self/exe", &info) == 0)  // follows the link to the binary
        let mappings = ResidentCode.mappings(inode: UInt64(info.st_ino))
        #expect(!mappings.isEmpty)
        let pagemap = open("/proc/self/pagemap", O_RDONLY)
        defer { close(pagemap) }
        #expect(mappings.contains { $0.executable })
        let runs = mappings.map(\.range).flatMap { ResidentCode.filePageRuns($0, pageSize: UInt(sysconf(Int32(_SC_PAGESIZE))), pagemap: pagemap) }
        #expect(!runs.isEmpty)
        #expect(ResidentCode.residentKiB() > 0)
    }

    /// A fault in an executable file mapping maps (and reads) no further than the area
    /// `boundReads` put it in: 2 MiB of a file, all in the page cache, mapped
    /// `PROT_READ | PROT_EXEC` twice; the same 16 pages, 128 KiB apart, touched in each.
    /// The split mapping is 128 areas of 16 KiB in /proc/self/maps and has at most 4
    /// pages resident per touch; the one left whole is one area, and has fault-around's
    /// 16 pages (64 KiB) per touch where the kernel's default is in force.
    @Test func splitTextMapsNoFurtherThanItsArea() throws {
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let chunk: UInt = 16 * 1024, length = 2 * 1024 * 1024, spacing = 128 * 1024
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resident-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("text").path
        try Data((0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        var info = stat()
        try #require(fstat(fd, &info) == 0)
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        try #require(pagemap >= 0)
        defer { close(pagemap) }

        func touchAndCount(split: Bool) throws -> (resident: Int, areas: Int) {
            let mapped = mmap(nil, length, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0)
            try #require(mapped != MAP_FAILED)
            let base = try #require(mapped)
            defer { munmap(base, length) }
            let range = UInt(bitPattern: base)..<(UInt(bitPattern: base) + UInt(length))
            if split {
                ResidentCode.boundReads(of: range, chunk: chunk)
                // The next trim advises the areas again: the same split.
                ResidentCode.boundReads(of: range, chunk: chunk)
            }
            for offset in stride(from: 8192, to: length, by: spacing) {
                _ = base.load(fromByteOffset: offset, as: UInt8.self)
            }
            let resident = ResidentCode.filePageRuns(range, pageSize: pageSize, pagemap: pagemap)
                .reduce(0) { $0 + Int(($1.upperBound - $1.lowerBound) / pageSize) }
            let areas = ResidentCode.areaCount(inode: UInt64(info.st_ino))
            return (resident, areas)
        }

        let touches = length / spacing
        let split = try touchAndCount(split: true)
        #expect(split.areas == length / Int(chunk))
        #expect(split.resident >= touches)
        #expect(split.resident <= touches * Int(chunk / pageSize))
        let whole = try touchAndCount(split: false)
        #expect(whole.areas == 1)
        #expect(whole.resident >= touches)
        if whole.resident > touches * Int(chunk / pageSize) {
            #expect(split.resident < whole.resident)
        }
    }
    #endif
}
